package acdredis_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/acd/acdredis"
	"github.com/switchboard-acd/switchboard/acd/acdtest"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

func TestConformance(t *testing.T) {
	for _, kind := range testenv.RedisKinds {
		t.Run(kind, func(t *testing.T) {
			acdtest.Run(t, func(t *testing.T) acd.Queue {
				return acdredis.New(testenv.Redis(t, kind))
			})
		})
	}
}

// forEachKind runs fn against a fresh Queue on a simulated clock, once per
// Redis backend.
func forEachKind(t *testing.T, fn func(t *testing.T, q *acdredis.Queue, clk *clock.Fake)) {
	for _, kind := range testenv.RedisKinds {
		t.Run(kind, func(t *testing.T) {
			q := acdredis.New(testenv.Redis(t, kind))
			clk := clock.NewFake(time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC))
			q.Clock = clk
			fn(t, q, clk)
		})
	}
}

func TestWaitedOnSimulatedClock(t *testing.T) {
	forEachKind(t, func(t *testing.T, q *acdredis.Queue, clk *clock.Fake) {
		ctx := t.Context()
		// Zero EnqueuedAt and IdleSince mean now on the queue's clock.
		if err := q.Enqueue(ctx, acd.Item{TenantID: "t", GroupID: "g", SessionID: "s1"}); err != nil {
			t.Fatal(err)
		}
		if err := q.AgentReady(ctx, acd.Agent{TenantID: "t", ID: "a", Groups: []string{"g"}, MaxSessions: 1}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(42*time.Second + 7*time.Millisecond)
		got, err := q.MatchGroup(ctx, "t", "g", 1)
		if err != nil {
			t.Fatal(err)
		}
		want := []acd.Assignment{{TenantID: "t", SessionID: "s1", GroupID: "g", AgentID: "a", Waited: 42*time.Second + 7*time.Millisecond}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("MatchGroup (-want +got):\n%s", diff)
		}
	})
}

func TestPriorityBoundsKeepOrder(t *testing.T) {
	forEachKind(t, func(t *testing.T, q *acdredis.Queue, clk *clock.Fake) {
		ctx := t.Context()
		late := time.Date(2250, 1, 1, 0, 0, 0, 0, time.UTC) // near the end of the ms range
		early := time.Unix(0, 0)
		items := []acd.Item{
			{SessionID: "min-late", Priority: -acdredis.MaxPriority, EnqueuedAt: late},
			{SessionID: "min-early", Priority: -acdredis.MaxPriority, EnqueuedAt: early},
			{SessionID: "max-late", Priority: acdredis.MaxPriority, EnqueuedAt: late},
			{SessionID: "max-early", Priority: acdredis.MaxPriority, EnqueuedAt: early},
			// One millisecond apart at the extremes: the scores must still differ.
			{SessionID: "max-early+1ms", Priority: acdredis.MaxPriority, EnqueuedAt: early.Add(time.Millisecond)},
			{SessionID: "min-late+1ms", Priority: -acdredis.MaxPriority, EnqueuedAt: late.Add(time.Millisecond)},
			{SessionID: "zero", Priority: 0, EnqueuedAt: late},
		}
		for _, it := range items {
			it.TenantID, it.GroupID = "t", "g"
			if err := q.Enqueue(ctx, it); err != nil {
				t.Fatal(err)
			}
		}
		if err := q.AgentReady(ctx, acd.Agent{TenantID: "t", ID: "a", Groups: []string{"g"}, MaxSessions: 100}); err != nil {
			t.Fatal(err)
		}
		got, err := q.MatchGroup(ctx, "t", "g", 100)
		if err != nil {
			t.Fatal(err)
		}
		var order []string
		for _, a := range got {
			order = append(order, a.SessionID)
		}
		want := []string{"max-early", "max-early+1ms", "max-late", "zero", "min-early", "min-late", "min-late+1ms"}
		if diff := cmp.Diff(want, order); diff != "" {
			t.Errorf("order (-want +got):\n%s", diff)
		}
		// Waited comes from the enqueue-time hash, exact to the ms.
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
		cases := map[string]error{
			"priority too high": q.Enqueue(ctx, acd.Item{TenantID: "t", GroupID: "g", SessionID: "s", Priority: acdredis.MaxPriority + 1}),
			"before 1970":       q.Enqueue(ctx, acd.Item{TenantID: "t", GroupID: "g", SessionID: "s", EnqueuedAt: time.Unix(-1, 0)}),
			"empty session":     q.Enqueue(ctx, acd.Item{TenantID: "t", GroupID: "g"}),
			"brace in tenant":   q.Enqueue(ctx, acd.Item{TenantID: "t}x", GroupID: "g", SessionID: "s"}),
			"comma in group":    q.AgentReady(ctx, acd.Agent{TenantID: "t", ID: "a", Groups: []string{"g,h"}, MaxSessions: 1}),
			"empty agent":       q.Release(ctx, "t", ""),
		}
		for name, err := range cases {
			if !errs.Is(err, errs.Invalid) {
				t.Errorf("%s: err = %v, want code %s", name, err, errs.Invalid)
			}
		}
	})
}

func TestUnknownAgent(t *testing.T) {
	forEachKind(t, func(t *testing.T, q *acdredis.Queue, clk *clock.Fake) {
		ctx := t.Context()
		for name, err := range map[string]error{
			"Release": q.Release(ctx, "t", "ghost"),
		} {
			if !errors.Is(err, acdredis.ErrUnknownAgent) || !errs.Is(err, errs.NotFound) {
				t.Errorf("%s: err = %v, want ErrUnknownAgent (not_found)", name, err)
			}
		}
		if err := q.AgentNotReady(ctx, "t", "ghost"); err != nil {
			t.Errorf("AgentNotReady: %v", err)
		}
	})
}

// TestLazyCleanup: an agent filled through one group stays in the other
// group's available set until a match there meets and drops them; that
// match still goes to the next agent.
func TestLazyCleanup(t *testing.T) {
	forEachKind(t, func(t *testing.T, q *acdredis.Queue, clk *clock.Fake) {
		ctx := t.Context()
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		t0 := clk.Now()
		must(q.AgentReady(ctx, acd.Agent{TenantID: "t", ID: "both", Groups: []string{"g1", "g2"}, MaxSessions: 1, IdleSince: t0.Add(-time.Hour)}))
		must(q.AgentReady(ctx, acd.Agent{TenantID: "t", ID: "only2", Groups: []string{"g2"}, MaxSessions: 1, IdleSince: t0}))
		must(q.Enqueue(ctx, acd.Item{TenantID: "t", GroupID: "g1", SessionID: "s1"}))
		must(q.Enqueue(ctx, acd.Item{TenantID: "t", GroupID: "g2", SessionID: "s2"}))
		got, err := q.MatchGroup(ctx, "t", "g1", 1)
		must(err)
		if len(got) != 1 || got[0].AgentID != "both" {
			t.Fatalf("g1 match = %v, want s1 to both", got)
		}
		got, err = q.MatchGroup(ctx, "t", "g2", 5)
		must(err)
		want := []acd.Assignment{{TenantID: "t", SessionID: "s2", GroupID: "g2", AgentID: "only2"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("g2 match (-want +got):\n%s", diff)
		}
		// After a release "both" is back in g2 at the tail.
		must(q.Release(ctx, "t", "both"))
		must(q.Enqueue(ctx, acd.Item{TenantID: "t", GroupID: "g2", SessionID: "s3"}))
		got, err = q.MatchGroup(ctx, "t", "g2", 5)
		must(err)
		if len(got) != 1 || got[0].AgentID != "both" {
			t.Errorf("after release, g2 match = %v, want s3 to both", got)
		}
	})
}

// TestMatchGroupBeyondCandidates makes the walk pass more full agents than
// MatchGroup passes as candidates in its first round.
func TestMatchGroupBeyondCandidates(t *testing.T) {
	forEachKind(t, func(t *testing.T, q *acdredis.Queue, clk *clock.Fake) {
		ctx := t.Context()
		t0 := clk.Now()
		// 100 agents of g2 who are full (filled via g1) sit ahead of the free one in g2.
		for i := range 100 {
			err := q.AgentReady(ctx, acd.Agent{TenantID: "t", ID: fmt.Sprintf("busy%03d", i), Groups: []string{"g1", "g2"},
				MaxSessions: 1, IdleSince: t0.Add(-time.Hour + time.Duration(i)*time.Second)})
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := q.Claim(ctx, "t", fmt.Sprintf("busy%03d", i)); err != nil || !ok {
				t.Fatalf("claim: %v, %v", ok, err)
			}
		}
		if err := q.AgentReady(ctx, acd.Agent{TenantID: "t", ID: "free", Groups: []string{"g2"}, MaxSessions: 2, IdleSince: t0}); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := q.Enqueue(ctx, acd.Item{TenantID: "t", GroupID: "g2", SessionID: fmt.Sprintf("s%d", i), EnqueuedAt: t0.Add(time.Duration(i) * time.Millisecond)}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := q.MatchGroup(ctx, "t", "g2", 1)
		if err != nil {
			t.Fatal(err)
		}
		want := []acd.Assignment{{TenantID: "t", SessionID: "s0", GroupID: "g2", AgentID: "free"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("MatchGroup (-want +got):\n%s", diff)
		}
	})
}

// BenchmarkMatchGroup measures the routing hot path on a real Redis: one
// enqueue, one MatchGroup that assigns it, and the release that frees the
// agent again, over 50 ready agents in one group.
func BenchmarkMatchGroup(b *testing.B) {
	for _, kind := range testenv.RedisKinds {
		b.Run(kind, func(b *testing.B) {
			ctx := b.Context()
			q := acdredis.New(testenv.Redis(b, kind))
			t0 := time.Now()
			for i := range 50 {
				err := q.AgentReady(ctx, acd.Agent{TenantID: "t", ID: fmt.Sprintf("a%02d", i), Groups: []string{"g"},
					MaxSessions: 3, IdleSince: t0.Add(time.Duration(i) * time.Millisecond)})
				if err != nil {
					b.Fatal(err)
				}
			}
			for i := 0; b.Loop(); i++ {
				if err := q.Enqueue(ctx, acd.Item{TenantID: "t", GroupID: "g", SessionID: fmt.Sprintf("s%d", i)}); err != nil {
					b.Fatal(err)
				}
				as, err := q.MatchGroup(ctx, "t", "g", 1)
				if err != nil || len(as) != 1 {
					b.Fatalf("MatchGroup = %v, %v; want one assignment", as, err)
				}
				if err := q.Release(ctx, "t", as[0].AgentID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
