package realtime

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/internal/testenv"
)

type collect chan []byte

func (c collect) Send(b []byte) bool {
	select {
	case c <- b:
		return true
	default:
		return false
	}
}

func startBus(t *testing.T, node string, shareWith *Bus, kind string) *Bus {
	t.Helper()
	var b *Bus
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if shareWith != nil {
		b = NewBus(shareWith.rdb, node, log)
	} else {
		b = NewBus(testenv.Redis(t, kind), node, log)
	}
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Stop(ctx)
	})
	return b
}

func receive(t *testing.T, c collect, want string) {
	t.Helper()
	select {
	case got := <-c:
		if string(got) != want {
			t.Fatalf("received %q, want %q", got, want)
		}
	case <-time.After(time.Second):
		t.Fatalf("did not receive %q", want)
	}
}

// TestBusAcrossNodes: an event reaches a subscriber on another node through
// that node's channel, and a node that cached "nobody subscribes" learns of
// a new subscriber at once, not after the cache expires.
func TestBusAcrossNodes(t *testing.T) {
	for _, kind := range testenv.RedisKinds {
		t.Run(kind, func(t *testing.T) {
			a := startBus(t, "node-a", nil, kind)
			b := startBus(t, "node-b", a, kind)
			ctx := t.Context()

			// b publishes while nobody listens: its cache now says "none".
			if err := b.Publish(ctx, "t1", "agent:1", []byte("lost")); err != nil {
				t.Fatal(err)
			}
			got := make(collect, 16)
			a.Subscribe("t1", "agent:1", got)
			// The notice reaches b quickly; poll well under the cache TTL.
			deadline := time.Now().Add(presenceCacheTTL / 2)
			for {
				if err := b.Publish(ctx, "t1", "agent:1", []byte("hello")); err != nil {
					t.Fatal(err)
				}
				select {
				case m := <-got:
					if string(m) != "hello" {
						t.Fatalf("received %q", m)
					}
				case <-time.After(20 * time.Millisecond):
					if time.Now().After(deadline) {
						t.Fatal("the new subscriber on a was not reached before the cache expired")
					}
					continue
				}
				break
			}
			// Local subscribers are reached directly; tenants are separate.
			local := make(collect, 16)
			b.Subscribe("t1", "conv:9", local)
			if err := b.Publish(ctx, "t1", "conv:9", []byte("local")); err != nil {
				t.Fatal(err)
			}
			receive(t, local, "local")
			if err := b.Publish(ctx, "t2", "conv:9", []byte("other tenant")); err != nil {
				t.Fatal(err)
			}
			select {
			case m := <-local:
				t.Fatalf("another tenant's event arrived: %q", m)
			case <-time.After(100 * time.Millisecond):
			}
		})
	}
}

// TestOriginIsNotEchoed: an event caused by a connection's own request
// reaches the client's other connections, not that one.
func TestOriginIsNotEchoed(t *testing.T) {
	b := startBus(t, "node-a", nil, "embedded")
	tab1, tab2 := make(collect, 4), make(collect, 4)
	b.Subscribe("t1", "conv:1", tab1)
	b.Subscribe("t1", "conv:1", tab2)
	if err := b.Publish(WithOrigin(t.Context(), tab1), "t1", "conv:1", []byte("echo")); err != nil {
		t.Fatal(err)
	}
	receive(t, tab2, "echo")
	select {
	case m := <-tab1:
		t.Fatalf("the origin got its own echo %q", m)
	case <-time.After(50 * time.Millisecond):
	}
	if err := b.Publish(WithOrigin(t.Context(), nil), "t1", "conv:1", []byte("all")); err != nil {
		t.Fatal(err)
	}
	receive(t, tab1, "all")
	receive(t, tab2, "all")
}
