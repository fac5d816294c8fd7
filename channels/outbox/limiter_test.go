package outbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/outbox"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

func TestLimiterReserve(t *testing.T) {
	for _, kind := range testenv.RedisKinds {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			c := testenv.Redis(t, kind)
			l := outbox.NewLimiter(c, c.Prefix)
			r := outbox.Rate{PerSec: 10, Burst: 3}
			reserve := func(tenantID, account string, now time.Time) time.Duration {
				t.Helper()
				slot, err := l.Reserve(ctx, tenantID, account, r, now)
				if err != nil {
					t.Fatalf("Reserve: %v", err)
				}
				return slot.Sub(t0)
			}
			// A burst of 3 at once, then one every 100 ms.
			var got []time.Duration
			for range 6 {
				got = append(got, reserve(tenant, "wa", t0))
			}
			ms := time.Millisecond
			if d := cmp.Diff([]time.Duration{0, 0, 0, 100 * ms, 200 * ms, 300 * ms}, got); d != "" {
				t.Errorf("slots (-want +got):\n%s", d)
			}
			// Other accounts and tenants have their own pace.
			if s := reserve(tenant, "wb", t0); s != 0 {
				t.Errorf("another account's first slot = %s", s)
			}
			if s := reserve("t2", "wa", t0); s != 0 {
				t.Errorf("another tenant's first slot = %s", s)
			}
			// Idle long enough, the burst is back.
			for i := range 3 {
				if s := reserve(tenant, "wa", t0.Add(10*time.Second)); s != 10*time.Second {
					t.Errorf("burst %d after idling: slot %s", i, s)
				}
			}
			// The key carries the tenant's hash tag and expires.
			key := fmt.Sprintf("%s:{%s}:outbox:rate:wa", c.Prefix, tenant)
			if ttl := c.PTTL(ctx, key).Val(); ttl <= 0 {
				t.Errorf("PTTL %s = %s, want an expiry", key, ttl)
			}
		})
	}
}

// TestLimiterNeverFaster: whatever the request times, the slots in any
// window [a, b] number at most burst + (b-a)·rate.
func TestLimiterNeverFaster(t *testing.T) {
	for _, kind := range testenv.RedisKinds {
		t.Run(kind, func(t *testing.T) {
			c := testenv.Redis(t, kind)
			l := outbox.NewLimiter(c, c.Prefix)
			rng := rand.New(rand.NewPCG(1, 2))
			for _, r := range []outbox.Rate{{PerSec: 80, Burst: 1}, {PerSec: 7, Burst: 5}, {PerSec: 0.5, Burst: 2}} {
				account := fmt.Sprintf("acct-%g-%d", r.PerSec, r.Burst)
				now := t0
				var slots []time.Time
				for range 300 {
					// Requests come in clumps and gaps, faster than the rate.
					now = now.Add(time.Duration(rng.ExpFloat64() / r.PerSec / 3 * float64(time.Second)))
					s, err := l.Reserve(context.Background(), tenant, account, r, now)
					if err != nil {
						t.Fatal(err)
					}
					if s.Before(now) {
						t.Fatalf("slot %s before the request at %s", s, now)
					}
					slots = append(slots, s)
				}
				checkPace(t, fmt.Sprintf("rate %+v", r), slots, r)
			}
		})
	}
}

// checkPace fails when some window of the sorted times holds more than the
// rate allows.
func checkPace(t testing.TB, what string, times []time.Time, r outbox.Rate) {
	t.Helper()
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	for i := range times {
		for j := i; j < len(times); j++ {
			window := times[j].Sub(times[i]).Seconds()
			// The limiter rounds its spacing up to whole microseconds.
			if allowed := float64(r.Burst) + window*r.PerSec + 1e-6; float64(j-i+1) > allowed {
				t.Fatalf("%s: %d sends in %.6fs, at most %.2f allowed", what, j-i+1, window, allowed)
			}
		}
	}
}

// checkCumulative fails when the sends beat the limit counted from start,
// when the backlog was queued: the k-th send (k from 1, in time order) may
// not happen before start + max(0, k-burst)/rate. Each send happens at or
// after a slot of its own and the k-th slot of any reservation sequence
// starting at start is no earlier than that, so the bound is exact; unlike
// a sliding window over send times it does not depend on how late after
// its slot each send was dispatched.
func checkCumulative(t testing.TB, times []time.Time, start time.Time, r outbox.Rate) {
	t.Helper()
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	for i, at := range times {
		k := i + 1
		earliest := start.Add(time.Duration(float64(max(0, k-r.Burst)) / r.PerSec * float64(time.Second)))
		if at.Before(earliest) {
			t.Fatalf("send %d at +%s, before +%s: faster than %g/s with burst %d", k, at.Sub(start), earliest.Sub(start), r.PerSec, r.Burst)
		}
	}
}

func TestRateOf(t *testing.T) {
	settings := func(s string) json.RawMessage { return json.RawMessage(s) }
	for _, tc := range []struct {
		name    string
		acct    channels.Account
		want    outbox.Rate
		wantErr bool
	}{
		{"whatsapp default", channels.Account{Type: channels.WhatsApp}, outbox.Rate{PerSec: 80, Burst: 1}, false},
		{"sms default", channels.Account{Type: channels.SMS, Settings: settings(`{"fallback_account_id":"x"}`)}, outbox.Rate{PerSec: 10, Burst: 1}, false},
		{"set", channels.Account{Type: channels.SMS, Settings: settings(`{"rate_per_sec":2.5,"burst":4}`)}, outbox.Rate{PerSec: 2.5, Burst: 4}, false},
		{"rate only", channels.Account{Type: channels.WeChatOA, Settings: settings(`{"rate_per_sec":5}`)}, outbox.Rate{PerSec: 5, Burst: 1}, false},
		{"bad json", channels.Account{Type: channels.WhatsApp, Settings: settings(`{"rate_per_sec":`)}, outbox.Rate{PerSec: 80, Burst: 1}, true},
		{"negative", channels.Account{Type: channels.WhatsApp, Settings: settings(`{"rate_per_sec":-1}`)}, outbox.Rate{PerSec: 80, Burst: 1}, true},
		{"huge burst", channels.Account{Type: channels.WhatsApp, Settings: settings(`{"burst":1000000}`)}, outbox.Rate{PerSec: 80, Burst: 1}, true},
	} {
		got, err := outbox.RateOf(tc.acct)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("%s: RateOf = %+v, %v; want %+v, error %v", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestWorkersNeverSendFasterThanTheLimit: two nodes drain one account on a
// simulated clock; the send times, read on that clock, never beat the
// account's limit, and the drain takes at least (N - burst) / rate.
func TestWorkersNeverSendFasterThanTheLimit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		r := outbox.Rate{PerSec: 20, Burst: 3}
		e.account(t, "wa", channels.WhatsApp, channels.AccountSettings{RatePerSec: r.PerSec, Burst: r.Burst})
		clk := clock.NewFake(t0)
		wa := newFakeSender(clk)
		snk := newSink()
		senders := map[channels.Type]channels.Sender{channels.WhatsApp: wa}
		var ws []*outbox.Worker
		for _, node := range []string{"node-a", "node-b"} {
			o := e.testOptions(t, node, senders, snk)
			o.Clock = clk
			ws = append(ws, start(t, o))
		}
		const n = 40
		for i := range n {
			e.queue(t, item("wa", fmt.Sprintf("c%02d", i), 1, t0))
		}
		deadline := time.Now().Add(60 * time.Second)
		for snk.distinctSent() < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d sent", snk.distinctSent(), n)
			}
			clk.Advance(5 * time.Millisecond)
			for _, w := range ws {
				w.Notify()
			}
			time.Sleep(time.Millisecond)
		}
		// The simulated clock runs ahead of a loaded machine, so a lease can
		// expire under a send still settling and the row go out again
		// (at-least-once, counted by the sink): every message once at
		// least, and the rate is judged on each message's first send.
		var times []time.Time
		seen := map[string]bool{}
		for _, a := range wa.snapshot() {
			if a.err == nil && !seen[a.msg] {
				seen[a.msg] = true
				times = append(times, a.at)
			}
		}
		if len(times) != n {
			t.Fatalf("%d distinct messages sent, want %d", len(times), n)
		}
		checkCumulative(t, times, t0, r)
		t.Logf("drained %d in %s simulated (the limit allows no less than %s)", n, times[n-1].Sub(t0),
			time.Duration(float64(n-r.Burst)/r.PerSec*float64(time.Second)))
	})
}
