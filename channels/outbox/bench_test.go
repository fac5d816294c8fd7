package outbox_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/outbox"
	"github.com/switchboard-acd/switchboard/internal/clock"
)

// BenchmarkDrain measures how fast a backlog drains through accounts with
// rate limits, on real time: per account it reports the achieved rate
// (msgs/s, from the first send to the last) and its ratio to the limit
// (of_limit: 1.0 is exactly the limit; above 1 would be a limit broken,
// which checkCumulative also fails on). Each message is its own
// conversation, so only the rate limit and the provider latency pace the
// drain; "one-conversation" shows the price of strict per-conversation
// order instead. Run with -benchtime=1x; every iteration drains a fresh
// backlog.
func BenchmarkDrain(b *testing.B) {
	type scenario struct {
		name     string
		accounts int
		rate     float64
		burst    int
		n        int // messages per account
		convs    int // conversations per account (0: one per message)
		workers  int
		latency  time.Duration
	}
	for _, bk := range backends {
		for _, sc := range []scenario{
			{name: "1acct-10ps", accounts: 1, rate: 10, burst: 1, n: 50, workers: 1, latency: 20 * time.Millisecond},
			{name: "1acct-80ps", accounts: 1, rate: 80, burst: 1, n: 400, workers: 1, latency: 20 * time.Millisecond},
			{name: "1acct-250ps", accounts: 1, rate: 250, burst: 1, n: 1000, workers: 2, latency: 20 * time.Millisecond},
			{name: "4acct-80ps-2nodes", accounts: 4, rate: 80, burst: 1, n: 400, workers: 2, latency: 20 * time.Millisecond},
			{name: "1acct-1000ps-unbound", accounts: 1, rate: 1000, burst: 50, n: 3000, workers: 2, latency: 5 * time.Millisecond},
			{name: "one-conversation", accounts: 1, rate: 80, burst: 1, n: 100, convs: 1, workers: 2, latency: 20 * time.Millisecond},
			{name: "100conv-x40", accounts: 1, rate: 1000, burst: 50, n: 4000, convs: 100, workers: 2, latency: 5 * time.Millisecond},
		} {
			b.Run(bk.db+"+"+bk.redis+"/"+sc.name, func(b *testing.B) {
				e := newEnv(b, bk.db, bk.redis)
				wa := newFakeSender(clock.Real{})
				wa.latency = sc.latency
				snk := newSink()
				senders := map[channels.Type]channels.Sender{channels.WhatsApp: wa}
				r := outbox.Rate{PerSec: sc.rate, Burst: sc.burst}
				var accounts []string
				for a := range sc.accounts {
					id := fmt.Sprintf("wa%d", a)
					e.account(b, id, channels.WhatsApp, channels.AccountSettings{RatePerSec: sc.rate, Burst: sc.burst})
					accounts = append(accounts, id)
				}
				var ws []*outbox.Worker
				for i := range sc.workers {
					o := e.testOptions(b, fmt.Sprintf("node-%d", i), senders, snk)
					// The production defaults (concurrency, account cache,
					// poll interval), a shorter send timeout, no logs.
					o.Concurrency, o.PollInterval, o.AccountCacheTTL = 0, 0, 0
					o.SendTimeout, o.Lease = 5*time.Second, time.Minute
					o.Log = nil
					ws = append(ws, start(b, o))
				}
				total := 0
				var achieved, ofLimit []float64
				for iter := 0; iter < b.N; iter++ {
					b.StopTimer()
					ctx := context.Background()
					start := time.Now()
					// The backlog appears at once: one transaction.
					err := e.db.InTx(ctx, func(tx *sqlx.Tx) error {
						for i := range sc.n {
							for _, a := range accounts {
								conv := fmt.Sprintf("%s-i%d-c%d", a, iter, i)
								if sc.convs > 0 {
									conv = fmt.Sprintf("%s-i%d-c%d", a, iter, i%sc.convs)
								}
								it := item(a, conv, i, start)
								it.MessageID = fmt.Sprintf("%s/%d/%d", a, iter, i)
								if err := outbox.Insert(ctx, tx, e.db.Dialect, it); err != nil {
									return err
								}
							}
						}
						return nil
					})
					if err != nil {
						b.Fatal(err)
					}
					total += sc.n * sc.accounts
					b.StartTimer()
					notified := time.Now()
					for _, w := range ws {
						w.Notify()
					}
					deadline := time.Now().Add(10*time.Minute + time.Duration(float64(sc.n)/sc.rate*float64(time.Second)))
					for snk.sentCount() < total {
						if time.Now().After(deadline) {
							b.Fatalf("%d of %d sent", snk.sentCount(), total)
						}
						time.Sleep(5 * time.Millisecond)
					}
					b.StopTimer()
					byAccount := map[string][]time.Time{}
					for _, at := range wa.snapshot() {
						if at.err == nil && at.at.After(start) {
							byAccount[at.account] = append(byAccount[at.account], at.at)
						}
					}
					for _, a := range accounts {
						times := byAccount[a]
						sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
						if len(times) < 2 {
							continue
						}
						b.Logf("%s: first send %s after the commit, last %s", a, times[0].Sub(notified), times[len(times)-1].Sub(notified))
						// The limit allows the sends after the burst no less
						// than (n - burst) / rate apart from the first.
						elapsed := times[len(times)-1].Sub(times[0]).Seconds()
						achieved = append(achieved, float64(len(times)-1)/elapsed)
						ofLimit = append(ofLimit, float64(len(times)-sc.burst)/sc.rate/elapsed)
						if sc.convs == 0 {
							checkCumulative(b, times, start, r)
						}
					}
					wa.mu.Lock()
					wa.attempts = wa.attempts[:0]
					wa.mu.Unlock()
					b.StartTimer()
				}
				if len(achieved) > 0 {
					b.ReportMetric(mean(achieved), "msgs/s/acct")
					// of_limit: the limit's shortest drain time over the
					// measured one; 1 is exactly at the limit.
					b.ReportMetric(mean(ofLimit), "of_limit")
					b.ReportMetric(slices.Max(ofLimit), "max_of_limit")
				}
				b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// BenchmarkClaimOverBacklog measures one claim that finds nothing over a
// backlog of 10,000 rows in 100 conversations whose first rows are waiting
// for a retry (a provider outage): with the later rows parked, as the store
// leaves them, and with them due, as they would be without parking.
func BenchmarkClaimOverBacklog(b *testing.B) {
	for _, bk := range backends {
		for _, parked := range []bool{true, false} {
			b.Run(fmt.Sprintf("%s/parked=%v", bk.db, parked), func(b *testing.B) {
				e := newEnv(b, bk.db, bk.redis)
				ctx := context.Background()
				queued := time.Now().Add(-time.Minute)
				err := e.db.InTx(ctx, func(tx *sqlx.Tx) error {
					for i := range 10_000 {
						if err := outbox.Insert(ctx, tx, e.db.Dialect, item("wa", fmt.Sprintf("c%d", i%100), i, queued)); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				heads, err := e.store.Claim(ctx, "n1", time.Now(), time.Minute, 100)
				if err != nil || len(heads) != 100 {
					b.Fatalf("claim heads: %d, %v", len(heads), err)
				}
				retry := time.Now().Add(time.Hour)
				for _, h := range heads {
					if err := e.store.MarkRetry(ctx, h.Lease(), retry, "500", "down"); err != nil {
						b.Fatal(err)
					}
				}
				if !parked {
					if _, err := e.db.ExecContext(ctx, e.db.Rebind(`UPDATE outbox SET next_at = ? WHERE state = 'pending' AND id > 100`), queued); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := e.db.ExecContext(ctx, `ANALYZE`); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for range b.N {
					got, err := e.store.Claim(ctx, "n1", time.Now(), time.Minute, 100)
					if err != nil || len(got) != 0 {
						b.Fatalf("claim: %d rows, %v", len(got), err)
					}
				}
			})
		}
	}
}
