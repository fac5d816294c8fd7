package acdredis_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/acd/acdredis"
	"github.com/switchboard-acd/switchboard/acd/acdtest"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/rdb"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// modes are the ways a Queue talks to Redis: program calls batched into
// pipelines (the default) and one round trip per call; and, batched, with
// the program run as a script where the server would take it as a
// function library (the real Redis; the embedded one has scripts only).
var modes = []struct {
	name string
	new  func(c *rdb.Client) *acdredis.Queue
}{
	{"batched", acdredis.New},
	{"unbatched", func(c *rdb.Client) *acdredis.Queue {
		return acdredis.NewWithOptions(c, acdredis.Options{PipelineConns: 0})
	}},
	{"scripts", func(c *rdb.Client) *acdredis.Queue {
		q := acdredis.New(c)
		acdredis.ForceScripts(q)
		return q
	}},
}

// modesFor lists the modes worth running on a kind of Redis: on the
// embedded one, "scripts" is "batched" again.
func modesFor(kind string) []string {
	if kind == "embedded" {
		return []string{"batched", "unbatched"}
	}
	return []string{"batched", "unbatched", "scripts"}
}

func TestConformance(t *testing.T) {
	for _, kind := range testenv.RedisKinds {
		for _, mode := range modes {
			if !slices.Contains(modesFor(kind), mode.name) {
				continue
			}
			t.Run(kind+"/"+mode.name, func(t *testing.T) {
				acdtest.Run(t, func(t *testing.T, clk clock.Clock) acd.Queue {
					q := mode.new(testenv.Redis(t, kind))
					q.Clock = clk
					t.Cleanup(q.Close)
					return q
				})
			})
		}
	}
}

// forEachKind runs fn against a fresh Queue on a simulated clock, once per
// Redis backend and mode.
func forEachKind(t *testing.T, fn func(t *testing.T, q *acdredis.Queue, clk *clock.Fake)) {
	for _, kind := range testenv.RedisKinds {
		for _, mode := range modes {
			if !slices.Contains(modesFor(kind), mode.name) {
				continue
			}
			t.Run(kind+"/"+mode.name, func(t *testing.T) {
				t.Parallel()
				q := mode.new(testenv.Redis(t, kind))
				t.Cleanup(q.Close)
				clk := clock.NewFake(time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC))
				q.Clock = clk
				fn(t, q, clk)
			})
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func enqueue(t *testing.T, q *acdredis.Queue, it acd.Item) acd.Enqueued {
	t.Helper()
	it.TenantID = "t"
	e, err := q.Enqueue(t.Context(), it)
	must(t, err)
	return e
}

func ready(t *testing.T, q *acdredis.Queue, a acd.Agent) []acd.Assignment {
	t.Helper()
	a.TenantID = "t"
	as, err := q.AgentReady(t.Context(), a)
	must(t, err)
	return as
}

func TestPriorityBoundsKeepOrder(t *testing.T) {
	forEachKind(t, func(t *testing.T, q *acdredis.Queue, clk *clock.Fake) {
		must(t, q.Configure(t.Context(), acd.Group{TenantID: "t", ID: "g", PriorityStep: 24 * time.Hour}))
		late := time.Date(2250, 1, 1, 0, 0, 0, 0, time.UTC) // near the end of the ms range
		early := time.Unix(0, 0)
		for _, it := range []acd.Item{
			{SessionID: "min-late", Priority: -acdredis.MaxPriority, EnqueuedAt: late},
			{SessionID: "min-early", Priority: -acdredis.MaxPriority, EnqueuedAt: early},
			{SessionID: "max-late", Priority: acdredis.MaxPriority, EnqueuedAt: late},
			{SessionID: "max-early", Priority: acdredis.MaxPriority, EnqueuedAt: early},
			// One millisecond apart at the extremes: the ranks must still differ.
			{SessionID: "max-early+1ms", Priority: acdredis.MaxPriority, EnqueuedAt: early.Add(time.Millisecond)},
			{SessionID: "min-late+1ms", Priority: -acdredis.MaxPriority, EnqueuedAt: late.Add(time.Millisecond)},
			{SessionID: "zero", Priority: 0, EnqueuedAt: late},
		} {
			it.GroupID = "g"
			enqueue(t, q, it)
		}
		got := ready(t, q, acd.Agent{ID: "a", Groups: []string{"g"}, MaxSessions: 100})
		var order []string
		for _, a := range got {
			order = append(order, a.SessionID)
		}
		// Priority is time (800 days at most), so 280 years of arrival
		// outweigh it.
		want := []string{"max-early", "max-early+1ms", "min-early", "max-late", "zero", "min-late", "min-late+1ms"}
		if diff := cmp.Diff(want, order); diff != "" {
			t.Errorf("order (-want +got):\n%s", diff)
		}
		// Waited comes from the stored enqueue time, exact to the ms.
		for _, a := range got {
			if a.SessionID == "max-early+1ms" && a.Waited != clk.Now().Sub(early.Add(time.Millisecond)) {
				t.Errorf("Waited of %s = %v", a.SessionID, a.Waited)
			}
		}
	})
}

func TestInvalidInput(t *testing.T) {
	forEachKind(t, func(t *testing.T, q *acdredis.Queue, clk *clock.Fake) {
		ctx := t.Context()
		item := func(mod func(*acd.Item)) error {
			it := acd.Item{TenantID: "t", GroupID: "g", SessionID: "s"}
			mod(&it)
			_, err := q.Enqueue(ctx, it)
			return err
		}
		agent := func(mod func(*acd.Agent)) error {
			a := acd.Agent{TenantID: "t", ID: "a", Groups: []string{"g"}, MaxSessions: 1}
			mod(&a)
			_, err := q.AgentReady(ctx, a)
			return err
		}
		_, releaseErr := q.Release(ctx, "t", "", 1)
		cases := map[string]error{
			"priority too high": item(func(it *acd.Item) { it.Priority = acdredis.MaxPriority + 1 }),
			"priority too low":  item(func(it *acd.Item) { it.Priority = -acdredis.MaxPriority - 1 }),
			"before 1970":       item(func(it *acd.Item) { it.EnqueuedAt = time.Unix(-1, 0) }),
			"negative cost":     item(func(it *acd.Item) { it.Cost = -1 }),
			"cost too high":     item(func(it *acd.Item) { it.Cost = 1001 }),
			"negative max":      agent(func(a *acd.Agent) { a.MaxSessions = -1 }),
			"negative load":     agent(func(a *acd.Agent) { a.Load = -1 }),
			"idle before 1970":  agent(func(a *acd.Agent) { a.IdleSince = time.Unix(-5, 0) }),
			"step over a day":   q.Configure(ctx, acd.Group{TenantID: "t", ID: "g", PriorityStep: 25 * time.Hour}),
			"empty agent":       releaseErr,
		}
		for name, err := range cases {
			if !errs.Is(err, errs.Invalid) {
				t.Errorf("%s: err = %v, want code %s", name, err, errs.Invalid)
			}
		}
		if n, err := q.Length(ctx, "t", "g"); err != nil || n != 0 {
			t.Errorf("refused enqueues left %d sessions (%v)", n, err)
		}
	})
}

func TestUnknownAgent(t *testing.T) {
	forEachKind(t, func(t *testing.T, q *acdredis.Queue, clk *clock.Fake) {
		ctx := t.Context()
		as, err := q.Release(ctx, "t", "ghost", 1)
		if !errors.Is(err, acdredis.ErrUnknownAgent) || !errs.Is(err, errs.NotFound) || len(as) != 0 {
			t.Errorf("Release(ghost) = %v, %v; want ErrUnknownAgent (not_found)", as, err)
		}
		if as, err := q.MatchAgent(ctx, "t", "ghost"); err != nil || len(as) != 0 {
			t.Errorf("MatchAgent(ghost) = %v, %v; want nothing", as, err)
		}
		if ok, err := q.Claim(ctx, "t", "ghost", 1); err != nil || ok {
			t.Errorf("Claim(ghost) = %v, %v; want false", ok, err)
		}
		if n, made, err := q.Missed(ctx, "t", "ghost", 1); err != nil || n != 0 || made {
			t.Errorf("Missed(ghost) = %d, %v, %v; want 0, false", n, made, err)
		}
		must(t, q.AgentNotReady(ctx, "t", "ghost"))
		must(t, q.AgentOffline(ctx, "t", "ghost"))
		must(t, q.Accepted(ctx, "t", "ghost"))
	})
}

// TestLazyCleanup: an agent filled through one group leaves every group's
// available set, so a match there goes to the next agent; after a release
// they are back.
func TestLazyCleanup(t *testing.T) {
	forEachKind(t, func(t *testing.T, q *acdredis.Queue, clk *clock.Fake) {
		t0 := clk.Now()
		ready(t, q, acd.Agent{ID: "both", Groups: []string{"g1", "g2"}, MaxSessions: 1, IdleSince: t0.Add(-time.Hour)})
		ready(t, q, acd.Agent{ID: "only2", Groups: []string{"g2"}, MaxSessions: 1, IdleSince: t0})
		if got := enqueue(t, q, acd.Item{GroupID: "g1", SessionID: "s1"}).Assignments; len(got) != 1 || got[0].AgentID != "both" {
			t.Fatalf("g1 enqueue = %v, want s1 to both", got)
		}
		got := enqueue(t, q, acd.Item{GroupID: "g2", SessionID: "s2"}).Assignments
		want := []acd.Assignment{{TenantID: "t", SessionID: "s2", GroupID: "g2", AgentID: "only2", Cost: 1}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("g2 enqueue (-want +got):\n%s", diff)
		}
		as, err := q.Release(t.Context(), "t", "both", 1)
		must(t, err)
		if len(as) != 0 {
			t.Errorf("Release(both) = %v, nothing waits", as)
		}
		if got := enqueue(t, q, acd.Item{GroupID: "g2", SessionID: "s3"}).Assignments; len(got) != 1 || got[0].AgentID != "both" {
			t.Errorf("after release, g2 enqueue = %v, want s3 to both", got)
		}
	})
}

// TestMatchGroupBeyondCandidates puts more full agents ahead of the free
// one than a match looks at in one step.
func TestMatchGroupBeyondCandidates(t *testing.T) {
	forEachKind(t, func(t *testing.T, q *acdredis.Queue, clk *clock.Fake) {
		ctx := t.Context()
		t0 := clk.Now()
		for i := range 100 {
			id := fmt.Sprintf("busy%03d", i)
			ready(t, q, acd.Agent{ID: id, Groups: []string{"g1", "g2"}, MaxSessions: 1, IdleSince: t0.Add(-time.Hour + time.Duration(i)*time.Second)})
			if ok, err := q.Claim(ctx, "t", id, 1); err != nil || !ok {
				t.Fatalf("claim: %v, %v", ok, err)
			}
		}
		ready(t, q, acd.Agent{ID: "free", Groups: []string{"g2"}, MaxSessions: 2, IdleSince: t0})
		var got []acd.Assignment
		for i := range 3 {
			got = append(got, enqueue(t, q, acd.Item{GroupID: "g2", SessionID: fmt.Sprintf("s%d", i), EnqueuedAt: t0.Add(time.Duration(i) * time.Millisecond)}).Assignments...)
		}
		want := []acd.Assignment{
			{TenantID: "t", SessionID: "s0", GroupID: "g2", AgentID: "free", Cost: 1},
			{TenantID: "t", SessionID: "s1", GroupID: "g2", AgentID: "free", Cost: 1},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("enqueues (-want +got):\n%s", diff)
		}
	})
}

// TestMatchLimit: Options.MatchLimit caps what the match after one enqueue
// assigns; the rest waits for the next match.
func TestMatchLimit(t *testing.T) {
	for _, kind := range testenv.RedisKinds {
		t.Run(kind, func(t *testing.T) {
			q := acdredis.NewWithOptions(testenv.Redis(t, kind), acdredis.Options{PipelineConns: 1, MatchLimit: 2})
			t.Cleanup(q.Close)
			clk := clock.NewFake(time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC))
			q.Clock = clk
			must(t, q.Configure(t.Context(), acd.Group{TenantID: "t", ID: "g", Strategy: acd.Skills, RingStep: time.Second}))
			ready(t, q, acd.Agent{ID: "a", Groups: []string{"g"}, MaxSessions: 10, Proficiency: map[string]int{"g": 1}})
			for i := range 5 {
				enqueue(t, q, acd.Item{GroupID: "g", SessionID: fmt.Sprintf("s%d", i), EnqueuedAt: clk.Now().Add(time.Duration(i-10) * time.Millisecond)})
			}
			clk.Advance(time.Minute) // every ring open
			e := enqueue(t, q, acd.Item{GroupID: "g", SessionID: "s5"})
			if len(e.Assignments) != 2 || e.Assignments[0].SessionID != "s0" || e.Assignments[1].SessionID != "s1" || e.Length != 4 || e.Position != 4 {
				t.Errorf("Enqueue with MatchLimit 2 = %+v, want s0 and s1 assigned, s5 at 4 of 4", e)
			}
		})
	}
}

// TestScriptCacheFlushed: the batcher reloads scripts a server forgot (a
// restart, SCRIPT FLUSH) in the middle of a pipeline. Only on the embedded
// server: flushing the shared one would disturb other tests.
func TestScriptCacheFlushed(t *testing.T) {
	c := testenv.Redis(t, "embedded")
	q := acdredis.New(c)
	t.Cleanup(q.Close)
	ctx := t.Context()
	ready(t, q, acd.Agent{ID: "a", Groups: []string{"g"}, MaxSessions: 1000})
	must(t, c.ScriptFlush(ctx).Err()) // as a restarted server would

	var (
		wg sync.WaitGroup
		mu sync.Mutex
		n  int
	)
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				e, err := q.Enqueue(ctx, acd.Item{TenantID: "t", GroupID: "g", SessionID: fmt.Sprintf("s%d-%d", w, i)})
				if err != nil {
					t.Errorf("Enqueue after SCRIPT FLUSH: %v", err)
					return
				}
				mu.Lock()
				n += len(e.Assignments)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if l, err := q.Length(ctx, "t", "g"); err != nil || l != 0 || n != 160 {
		t.Errorf("after SCRIPT FLUSH: %d waiting, %d assigned (%v); want 0, 160", l, n, err)
	}
}

// TestClose: a closed batched Queue fails calls instead of hanging.
func TestClose(t *testing.T) {
	q := acdredis.New(testenv.Redis(t, "embedded"))
	q.Close()
	q.Close() // idempotent
	_, err := q.Enqueue(t.Context(), acd.Item{TenantID: "t", GroupID: "g", SessionID: "s"})
	if err == nil {
		t.Error("Enqueue on a closed queue succeeded")
	}
}

// BenchmarkMatchGroup measures the routing hot path: an enqueue that
// assigns at once, and the release that frees the agent again, over 50
// ready agents in one group.
func BenchmarkMatchGroup(b *testing.B) {
	for _, kind := range testenv.RedisKinds {
		for _, mode := range modes {
			if !slices.Contains(modesFor(kind), mode.name) {
				continue
			}
			b.Run(kind+"/"+mode.name, func(b *testing.B) {
				ctx := b.Context()
				q := mode.new(testenv.Redis(b, kind))
				b.Cleanup(q.Close)
				t0 := time.Now()
				for i := range 50 {
					_, err := q.AgentReady(ctx, acd.Agent{TenantID: "t", ID: fmt.Sprintf("a%02d", i), Groups: []string{"g"},
						MaxSessions: 3, IdleSince: t0.Add(time.Duration(i) * time.Millisecond)})
					if err != nil {
						b.Fatal(err)
					}
				}
				for i := 0; b.Loop(); i++ {
					e, err := q.Enqueue(ctx, acd.Item{TenantID: "t", GroupID: "g", SessionID: fmt.Sprintf("s%d", i)})
					if err != nil || len(e.Assignments) != 1 {
						b.Fatalf("Enqueue = %+v, %v; want one assignment", e, err)
					}
					if _, err := q.Release(ctx, "t", e.Assignments[0].AgentID, 1); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
