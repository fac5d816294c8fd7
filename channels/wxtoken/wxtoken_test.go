package wxtoken_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-acd/switchboard/channels/wxtoken"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/rdb"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

var start = time.Date(2024, 4, 18, 9, 0, 0, 0, time.UTC)

// tlog routes a component's logs to the test's log.
type tlog struct{ t testing.TB }

func (w tlog) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// env is one Redis server seen by several nodes: every node has its own
// client and its own Cache, as separate processes would.
type env struct {
	t     *testing.T
	c     *rdb.Client
	clk   *clock.Fake
	fetch atomic.Int64
}

func newEnv(t *testing.T, kind string) *env {
	return &env{t: t, c: testenv.Redis(t, kind), clk: clock.NewFake(start)}
}

// node opens another client on the same server and a Cache on it.
func (e *env) node() *wxtoken.Cache {
	var cl redis.UniversalClient
	if e.c.Embedded != nil {
		cl = redis.NewClient(&redis.Options{Addr: e.c.Embedded.Addr()})
	} else {
		opt, err := redis.ParseURL(testenv.RedisURL())
		if err != nil {
			e.t.Fatal(err)
		}
		cl = redis.NewClient(opt)
	}
	e.t.Cleanup(func() { cl.Close() })
	return wxtoken.New(cl, e.c.Prefix, e.clk, testLogger(e.t))
}

// fetcher counts calls and hands out tok-1, tok-2... after a delay, so
// that concurrent callers really overlap.
func (e *env) fetcher(delay time.Duration) wxtoken.Fetch {
	return func(ctx context.Context) (string, time.Duration, error) {
		n := e.fetch.Add(1)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return "", 0, ctx.Err()
		}
		return fmt.Sprintf("tok-%d", n), 7200 * time.Second, nil
	}
}

func forKinds(t *testing.T, f func(t *testing.T, e *env)) {
	for _, kind := range testenv.RedisKinds {
		t.Run(kind, func(t *testing.T) { f(t, newEnv(t, kind)) })
	}
}

func TestOneFetchAcrossGoroutinesAndNodes(t *testing.T) {
	forKinds(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		nodes := []*wxtoken.Cache{e.node(), e.node(), e.node()}
		fetch := e.fetcher(150 * time.Millisecond)
		const per = 20
		var wg sync.WaitGroup
		got := make(chan string, per*len(nodes))
		for _, n := range nodes {
			for range per {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tok, err := n.Token(ctx, "oa:wx1", fetch)
					if err != nil {
						t.Error(err)
						return
					}
					got <- tok
				}()
			}
		}
		wg.Wait()
		close(got)
		for tok := range got {
			if tok != "tok-1" {
				t.Fatalf("a caller got %q", tok)
			}
		}
		if n := e.fetch.Load(); n != 1 {
			t.Fatalf("%d fetches, want exactly 1", n)
		}
		// Another key is another token.
		if tok, err := nodes[0].Token(ctx, "oa:wx2", fetch); err != nil || tok != "tok-2" {
			t.Fatalf("second key: %q %v", tok, err)
		}
	})
}

func TestStoredLifetimeAndExpiry(t *testing.T) {
	forKinds(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		a := e.node()
		fetch := e.fetcher(0)
		if _, err := a.Token(ctx, "k", fetch); err != nil {
			t.Fatal(err)
		}
		ttl, err := e.c.PTTL(ctx, a.Key("k")).Result()
		if err != nil {
			t.Fatal(err)
		}
		want := 7200*time.Second - wxtoken.DefaultMargin
		if ttl > want || ttl < want-5*time.Second {
			t.Fatalf("redis TTL %s, want about %s", ttl, want)
		}
		exp, _ := e.c.HGet(ctx, a.Key("k"), "exp").Int64()
		if got := time.UnixMilli(exp); !got.Equal(start.Add(want)) {
			t.Fatalf("stored expiry %s, want %s", got, start.Add(want))
		}

		// A node that never saw it reads it from Redis, no fetch.
		b := e.node()
		if tok, _ := b.Token(ctx, "k", fetch); tok != "tok-1" || e.fetch.Load() != 1 {
			t.Fatalf("second node: %q after %d fetches", tok, e.fetch.Load())
		}
		// Just before expiry (by the clock) it is still used; at expiry it
		// is fetched again although Redis (embedded) may still hold it.
		e.clk.Advance(want - time.Second)
		if tok, _ := b.Token(ctx, "k", fetch); tok != "tok-1" {
			t.Fatalf("before expiry: %q", tok)
		}
		e.clk.Advance(time.Second)
		if tok, _ := b.Token(ctx, "k", fetch); tok != "tok-2" {
			t.Fatalf("at expiry: %q", tok)
		}
		if tok, _ := a.Token(ctx, "k", fetch); tok != "tok-2" || e.fetch.Load() != 2 {
			t.Fatalf("other node after refresh: %q, %d fetches", tok, e.fetch.Load())
		}
	})
}

func TestShortLifetimeKeepsHalf(t *testing.T) {
	forKinds(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		a := e.node()
		fetch := func(context.Context) (string, time.Duration, error) { return "short", 4 * time.Minute, nil }
		if _, err := a.Token(ctx, "k", fetch); err != nil {
			t.Fatal(err)
		}
		exp, _ := e.c.HGet(ctx, a.Key("k"), "exp").Int64()
		if got := time.UnixMilli(exp).Sub(start); got != 2*time.Minute {
			t.Fatalf("a 4-minute token is kept %s, want 2m", got)
		}
	})
}

func TestMemoSavesRoundTrips(t *testing.T) {
	forKinds(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		a := e.node()
		fetch := e.fetcher(0)
		if _, err := a.Token(ctx, "k", fetch); err != nil {
			t.Fatal(err)
		}
		// Remove it behind the node's back: within MemoTTL the node does
		// not ask Redis, so it still answers from memory.
		e.c.Del(ctx, a.Key("k"))
		if tok, _ := a.Token(ctx, "k", fetch); tok != "tok-1" || e.fetch.Load() != 1 {
			t.Fatalf("memo: %q, %d fetches", tok, e.fetch.Load())
		}
		e.clk.Advance(wxtoken.DefaultMemoTTL)
		if tok, _ := a.Token(ctx, "k", fetch); tok != "tok-2" {
			t.Fatalf("after the memo lapsed: %q", tok)
		}
	})
}

func TestInvalidateOnceAcrossNodes(t *testing.T) {
	forKinds(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		nodes := []*wxtoken.Cache{e.node(), e.node(), e.node(), e.node()}
		fetch := e.fetcher(50 * time.Millisecond)
		for _, n := range nodes {
			if tok, err := n.Token(ctx, "k", fetch); err != nil || tok != "tok-1" {
				t.Fatalf("%q %v", tok, err)
			}
		}
		// Every node sees tok-1 refused at once and asks again.
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := n.Invalidate(ctx, "k", "tok-1"); err != nil {
					t.Error(err)
				}
				tok, err := n.Token(ctx, "k", fetch)
				if err != nil || tok != "tok-2" {
					t.Errorf("after invalidation: %q %v", tok, err)
				}
			}()
		}
		wg.Wait()
		if n := e.fetch.Load(); n != 2 {
			t.Fatalf("%d fetches, want 2 (one refresh for all nodes)", n)
		}
		// A late node still holding tok-1 does not knock out tok-2.
		if err := nodes[0].Invalidate(ctx, "k", "tok-1"); err != nil {
			t.Fatal(err)
		}
		if tok, _ := e.c.HGet(ctx, nodes[0].Key("k"), "token").Result(); tok != "tok-2" {
			t.Fatalf("a stale invalidation removed the fresh token: redis has %q", tok)
		}
		if err := nodes[0].Invalidate(ctx, "k", ""); !errs.Is(err, errs.Invalid) {
			t.Fatalf("empty stale token: %v", err)
		}
	})
}

func TestFetchErrorReleasesLock(t *testing.T) {
	forKinds(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		a, b := e.node(), e.node()
		boom := errors.New("provider says no")
		var calls atomic.Int64
		failing := func(context.Context) (string, time.Duration, error) {
			calls.Add(1)
			time.Sleep(50 * time.Millisecond)
			return "", 0, boom
		}
		var wg sync.WaitGroup
		errsSeen := make(chan error, 10)
		for range 5 {
			wg.Add(1)
			go func() { defer wg.Done(); _, err := a.Token(ctx, "k", failing); errsSeen <- err }()
		}
		wg.Wait()
		close(errsSeen)
		for err := range errsSeen {
			if !errors.Is(err, boom) {
				t.Fatalf("error %v does not carry the fetch's error", err)
			}
		}
		if n := calls.Load(); n != 1 {
			t.Fatalf("%d fetches for 5 callers of one node, want 1", n)
		}
		if n, _ := e.c.Exists(ctx, a.Key("k")+":lock").Result(); n != 0 {
			t.Fatal("lock left behind after a failed fetch")
		}
		// The next caller (another node) tries at once.
		if tok, err := b.Token(ctx, "k", e.fetcher(0)); err != nil || tok != "tok-1" {
			t.Fatalf("after a failure: %q %v", tok, err)
		}
		// A provider answer without a token is an error, not a cached "".
		empty := func(context.Context) (string, time.Duration, error) { return "", 7200 * time.Second, nil }
		if _, err := b.Token(ctx, "other", empty); !errs.Is(err, errs.Unavailable) {
			t.Fatalf("empty token: %v", err)
		}
	})
}

func TestDeadNodeLockExpires(t *testing.T) {
	forKinds(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		a := e.node()
		a.Poll = 5 * time.Millisecond
		// A node took the lock and died.
		if err := e.c.Set(ctx, a.Key("k")+":lock", "dead-node", 300*time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
		if m := e.c.Embedded; m != nil {
			// The in-process server moves its clock only when told to.
			go func() { time.Sleep(300 * time.Millisecond); m.FastForward(time.Second) }()
		}
		began := time.Now()
		tok, err := a.Token(ctx, "k", e.fetcher(0))
		if err != nil || tok != "tok-1" {
			t.Fatalf("%q %v", tok, err)
		}
		if waited := time.Since(began); waited < 250*time.Millisecond {
			t.Fatalf("did not wait for the lock (%s)", waited)
		}
	})
}

func TestWaitIsBounded(t *testing.T) {
	forKinds(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		a := e.node()
		a.MaxWait = 100 * time.Millisecond
		if err := e.c.Set(ctx, a.Key("k")+":lock", "slow-node", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Token(ctx, "k", e.fetcher(0)); !errs.Is(err, errs.Unavailable) {
			t.Fatalf("held lock: %v, want unavailable", err)
		}
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		a.MaxWait = time.Minute
		if _, err := a.Token(cctx, "k", e.fetcher(0)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ctx deadline: %v", err)
		}
		if e.fetch.Load() != 0 {
			t.Fatal("fetched while another node held the lock")
		}
	})
}

// A waiter in the same process whose loader's ctx ends takes over.
func TestWaiterOutlivesCancelledLoader(t *testing.T) {
	forKinds(t, func(t *testing.T, e *env) {
		a := e.node()
		lctx, cancel := context.WithCancel(context.Background())
		started := make(chan struct{})
		slow := func(ctx context.Context) (string, time.Duration, error) {
			close(started)
			<-ctx.Done()
			return "", 0, ctx.Err()
		}
		go func() { _, _ = a.Token(lctx, "k", slow) }()
		<-started
		res := make(chan string)
		go func() {
			tok, err := a.Token(context.Background(), "k", e.fetcher(0))
			if err != nil {
				t.Error(err)
			}
			res <- tok
		}()
		time.Sleep(20 * time.Millisecond)
		cancel()
		select {
		case tok := <-res:
			if tok != "tok-1" {
				t.Fatalf("waiter got %q", tok)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("waiter stuck after the loader gave up")
		}
	})
}

// A fetch that panics must not leave the other callers of its process
// waiting forever, nor the lock held.
func TestPanickingFetchReleasesWaiters(t *testing.T) {
	forKinds(t, func(t *testing.T, e *env) {
		a := e.node()
		started, release := make(chan struct{}), make(chan struct{})
		bad := func(context.Context) (string, time.Duration, error) {
			close(started)
			<-release
			panic("fetch bug")
		}
		go func() {
			defer func() { _ = recover() }()
			_, _ = a.Token(context.Background(), "k", bad)
		}()
		<-started
		res := make(chan error, 1)
		go func() { _, err := a.Token(context.Background(), "k", e.fetcher(0)); res <- err }()
		time.Sleep(20 * time.Millisecond)
		close(release)
		select {
		case err := <-res:
			if !errs.Is(err, errs.Internal) {
				t.Fatalf("waiter: %v, want the unfinished-load error", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("waiter stuck after the fetch panicked")
		}
		if tok, err := a.Token(context.Background(), "k", e.fetcher(0)); err != nil || tok != "tok-1" {
			t.Fatalf("next call: %q %v", tok, err)
		}
	})
}
