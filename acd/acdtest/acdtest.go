// Package acdtest is the conformance suite of acd.Queue: the behaviour every
// implementation must show, written once and run against each of them (the
// Redis one on a real server and on the embedded miniredis), so that
// routing cannot differ between production and the embedded default.
package acdtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchboard-acd/switchboard/acd"
)

// Run runs the suite. newQueue must return a queue with no routing state
// (a fresh key prefix, say) and release it when t ends; it is called once
// per subtest.
//
// The suite cannot set an implementation's clock, so it places enqueue and
// idle times well in the past and checks Waited against bounds instead of
// exact values.
func Run(t *testing.T, newQueue func(t *testing.T) acd.Queue) {
	tests := []struct {
		name string
		fn   func(t *testing.T, q acd.Queue)
	}{
		{"FIFOOrder", testFIFOOrder},
		{"PriorityJumpsQueue", testPriorityJumpsQueue},
		{"EnqueueIdempotent", testEnqueueIdempotent},
		{"Remove", testRemove},
		{"PositionAndLength", testPositionAndLength},
		{"MatchRespectsCapacity", testMatchRespectsCapacity},
		{"MatchGroupLimit", testMatchGroupLimit},
		{"Waited", testWaited},
		{"LongestIdleFirstAndRotates", testLongestIdleFirstAndRotates},
		{"NotReadyGetsNothing", testNotReadyGetsNothing},
		{"ReleaseThenMatchAgentOldestAcrossGroups", testReleaseThenMatchAgent},
		{"MatchAgentPriorityAcrossGroups", testMatchAgentPriorityAcrossGroups},
		{"ReleaseAtZeroIsNoop", testReleaseAtZeroIsNoop},
		{"ClaimChecksReadinessAndCapacity", testClaim},
		{"AgentReadyChangesGroups", testAgentReadyChangesGroups},
		{"RequeueWithOriginalTimeGoesToHead", testRequeue},
		{"TenantsIsolated", testTenantsIsolated},
		{"Reset", testReset},
		{"Concurrent", testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newQueue(t))
		})
	}
}

// base is a moment safely in the past, so that every time the suite
// chooses is older than an implementation's "now".
func base() time.Time {
	return time.Now().Add(-time.Hour).Truncate(time.Millisecond)
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func enqueue(t *testing.T, q acd.Queue, tenant, group, session string, prio int, at time.Time) {
	t.Helper()
	ok(t, q.Enqueue(t.Context(), acd.Item{
		TenantID: tenant, GroupID: group, SessionID: session, Priority: prio, EnqueuedAt: at,
	}))
}

func ready(t *testing.T, q acd.Queue, tenant, agent string, maxSessions, load int, idle time.Time, groups ...string) {
	t.Helper()
	ok(t, q.AgentReady(t.Context(), acd.Agent{
		TenantID: tenant, ID: agent, Groups: groups, MaxSessions: maxSessions, Load: load, IdleSince: idle,
	}))
}

func matchGroup(t *testing.T, q acd.Queue, tenant, group string, limit int) []acd.Assignment {
	t.Helper()
	as, err := q.MatchGroup(t.Context(), tenant, group, limit)
	ok(t, err)
	return as
}

func matchAgent(t *testing.T, q acd.Queue, tenant, agent string) []acd.Assignment {
	t.Helper()
	as, err := q.MatchAgent(t.Context(), tenant, agent)
	ok(t, err)
	return as
}

// a builds the expected assignment; Waited is compared separately.
func a(tenant, group, session, agent string) acd.Assignment {
	return acd.Assignment{TenantID: tenant, GroupID: group, SessionID: session, AgentID: agent}
}

var ignoreWaited = cmpopts.IgnoreFields(acd.Assignment{}, "Waited")

func diffAssignments(t *testing.T, what string, want, got []acd.Assignment) {
	t.Helper()
	if diff := cmp.Diff(want, got, ignoreWaited, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

func sessionsOf(as []acd.Assignment) []string {
	out := make([]string, len(as))
	for i, x := range as {
		out[i] = x.SessionID
	}
	return out
}

func wantLength(t *testing.T, q acd.Queue, tenant, group string, want int) {
	t.Helper()
	n, err := q.Length(t.Context(), tenant, group)
	ok(t, err)
	if n != want {
		t.Errorf("Length(%s) = %d, want %d", group, n, want)
	}
}

func testFIFOOrder(t *testing.T, q acd.Queue) {
	b := base()
	// Enqueued out of order: the time decides, not the call order.
	enqueue(t, q, "t1", "g", "s2", 0, b.Add(2*time.Second))
	enqueue(t, q, "t1", "g", "s1", 0, b.Add(1*time.Second))
	enqueue(t, q, "t1", "g", "s3", 0, b.Add(3*time.Second))
	ready(t, q, "t1", "a1", 10, 0, b, "g")

	got := matchGroup(t, q, "t1", "g", 10)
	diffAssignments(t, "MatchGroup", []acd.Assignment{
		a("t1", "g", "s1", "a1"), a("t1", "g", "s2", "a1"), a("t1", "g", "s3", "a1"),
	}, got)
	wantLength(t, q, "t1", "g", 0)
}

func testPriorityJumpsQueue(t *testing.T, q acd.Queue) {
	b := base()
	enqueue(t, q, "t1", "g", "normal-old", 0, b.Add(1*time.Second))
	enqueue(t, q, "t1", "g", "low", -1, b)
	enqueue(t, q, "t1", "g", "normal-new", 0, b.Add(2*time.Second))
	enqueue(t, q, "t1", "g", "vip2", 2, b.Add(4*time.Second))
	enqueue(t, q, "t1", "g", "vip1", 1, b.Add(3*time.Second))
	enqueue(t, q, "t1", "g", "vip2-later", 2, b.Add(5*time.Second))
	ready(t, q, "t1", "a1", 10, 0, b, "g")

	got := sessionsOf(matchGroup(t, q, "t1", "g", 10))
	want := []string{"vip2", "vip2-later", "vip1", "normal-old", "normal-new", "low"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("match order (-want +got):\n%s", diff)
	}
}

func testEnqueueIdempotent(t *testing.T, q acd.Queue) {
	b := base()
	enqueue(t, q, "t1", "g", "s1", 0, b.Add(1*time.Second))
	enqueue(t, q, "t1", "g", "s2", 0, b.Add(2*time.Second))
	// Again, with a higher priority and an earlier time: nothing changes.
	enqueue(t, q, "t1", "g", "s2", 5, b)
	enqueue(t, q, "t1", "g", "s1", 0, b.Add(1*time.Second))
	wantLength(t, q, "t1", "g", 2)

	pos, n, err := q.Position(t.Context(), "t1", "g", "s2")
	ok(t, err)
	if pos != 2 || n != 2 {
		t.Errorf("Position(s2) = %d of %d, want 2 of 2", pos, n)
	}
	ready(t, q, "t1", "a1", 10, 0, b, "g")
	got := sessionsOf(matchGroup(t, q, "t1", "g", 10))
	if diff := cmp.Diff([]string{"s1", "s2"}, got); diff != "" {
		t.Errorf("match order (-want +got):\n%s", diff)
	}
}

func testRemove(t *testing.T, q acd.Queue) {
	b := base()
	enqueue(t, q, "t1", "g", "s1", 0, b.Add(1*time.Second))
	enqueue(t, q, "t1", "g", "s2", 0, b.Add(2*time.Second))

	removed, err := q.Remove(t.Context(), "t1", "g", "s1")
	ok(t, err)
	if !removed {
		t.Error("Remove(s1) = false, want true")
	}
	removed, err = q.Remove(t.Context(), "t1", "g", "s1")
	ok(t, err)
	if removed {
		t.Error("second Remove(s1) = true, want false")
	}
	removed, err = q.Remove(t.Context(), "t1", "g", "never")
	ok(t, err)
	if removed {
		t.Error("Remove(never) = true, want false")
	}
	wantLength(t, q, "t1", "g", 1)

	ready(t, q, "t1", "a1", 10, 0, b, "g")
	diffAssignments(t, "MatchGroup", []acd.Assignment{a("t1", "g", "s2", "a1")},
		matchGroup(t, q, "t1", "g", 10))

	// A removed session can be enqueued again (a new handoff).
	enqueue(t, q, "t1", "g", "s1", 0, b)
	wantLength(t, q, "t1", "g", 1)
}

func testPositionAndLength(t *testing.T, q acd.Queue) {
	b := base()
	wantLength(t, q, "t1", "g", 0)
	for i := range 5 {
		enqueue(t, q, "t1", "g", fmt.Sprintf("s%d", i), 0, b.Add(time.Duration(i)*time.Second))
	}
	enqueue(t, q, "t1", "other", "x", 0, b)
	wantLength(t, q, "t1", "g", 5)
	wantLength(t, q, "t1", "other", 1)

	type pl struct{ Pos, Len int }
	var got, want []pl
	for i := range 5 {
		pos, n, err := q.Position(t.Context(), "t1", "g", fmt.Sprintf("s%d", i))
		ok(t, err)
		got = append(got, pl{pos, n})
		want = append(want, pl{i + 1, 5})
	}
	pos, n, err := q.Position(t.Context(), "t1", "g", "missing")
	ok(t, err)
	got = append(got, pl{pos, n})
	want = append(want, pl{0, 5})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("positions (-want +got):\n%s", diff)
	}

	_, err = q.Remove(t.Context(), "t1", "g", "s0")
	ok(t, err)
	pos, n, err = q.Position(t.Context(), "t1", "g", "s4")
	ok(t, err)
	if pos != 4 || n != 4 {
		t.Errorf("after Remove, Position(s4) = %d of %d, want 4 of 4", pos, n)
	}
}

func testMatchRespectsCapacity(t *testing.T, q acd.Queue) {
	b := base()
	for i := range 6 {
		enqueue(t, q, "t1", "g", fmt.Sprintf("s%d", i), 0, b.Add(time.Duration(i)*time.Second))
	}
	ready(t, q, "t1", "a1", 2, 0, b, "g")
	ready(t, q, "t1", "a2", 3, 2, b.Add(time.Second), "g") // one unit free
	ready(t, q, "t1", "full", 2, 2, b.Add(-time.Minute), "g")

	got := matchGroup(t, q, "t1", "g", 10)
	if len(got) != 3 {
		t.Fatalf("MatchGroup gave %d sessions, want 3 (2 + 1 spare): %v", len(got), got)
	}
	per := map[string]int{}
	for _, x := range got {
		per[x.AgentID]++
	}
	if diff := cmp.Diff(map[string]int{"a1": 2, "a2": 1}, per); diff != "" {
		t.Errorf("sessions per agent (-want +got):\n%s", diff)
	}
	wantLength(t, q, "t1", "g", 3)
	if more := matchGroup(t, q, "t1", "g", 10); len(more) != 0 {
		t.Errorf("everyone is full, yet MatchGroup gave %v", more)
	}
	for _, id := range []string{"a1", "a2", "full"} {
		if more := matchAgent(t, q, "t1", id); len(more) != 0 {
			t.Errorf("%s is full, yet MatchAgent gave %v", id, more)
		}
	}
}

func testMatchGroupLimit(t *testing.T, q acd.Queue) {
	b := base()
	for i := range 5 {
		enqueue(t, q, "t1", "g", fmt.Sprintf("s%d", i), 0, b.Add(time.Duration(i)*time.Second))
	}
	ready(t, q, "t1", "a1", 10, 0, b, "g")
	if got := sessionsOf(matchGroup(t, q, "t1", "g", 2)); !cmp.Equal(got, []string{"s0", "s1"}) {
		t.Errorf("MatchGroup(limit 2) = %v, want [s0 s1]", got)
	}
	if got := matchGroup(t, q, "t1", "g", 0); len(got) != 0 {
		t.Errorf("MatchGroup(limit 0) = %v, want none", got)
	}
	wantLength(t, q, "t1", "g", 3)
}

func testWaited(t *testing.T, q acd.Queue) {
	start := time.Now()
	enqueue(t, q, "t1", "g", "s1", 0, start.Add(-5*time.Minute))
	enqueue(t, q, "t1", "h", "s2", 0, start.Add(-7*time.Minute))
	ready(t, q, "t1", "a1", 1, 0, start.Add(-time.Hour), "g")
	ready(t, q, "t1", "a2", 1, 0, start.Add(-time.Hour), "h")
	got := append(matchGroup(t, q, "t1", "g", 1), matchAgent(t, q, "t1", "a2")...)
	if len(got) != 2 {
		t.Fatalf("got %v, want two assignments", got)
	}
	slack := time.Since(start) + time.Second
	for i, want := range []time.Duration{5 * time.Minute, 7 * time.Minute} {
		if w := got[i].Waited; w < want-time.Millisecond || w > want+slack {
			t.Errorf("%s waited %v, want %v (+%v)", got[i].SessionID, w, want, slack)
		}
	}
}

func testLongestIdleFirstAndRotates(t *testing.T, q acd.Queue) {
	b := base()
	// Made ready in an order that differs from their idle times, and with
	// ids that sort differently, so only IdleSince can explain the order.
	ready(t, q, "t1", "a-mid", 5, 0, b.Add(-2*time.Minute), "g")
	ready(t, q, "t1", "z-longest", 5, 0, b.Add(-3*time.Minute), "g")
	ready(t, q, "t1", "b-shortest", 5, 0, b.Add(-1*time.Minute), "g")
	for i := range 9 {
		enqueue(t, q, "t1", "g", fmt.Sprintf("s%d", i), 0, b.Add(time.Duration(i)*time.Second))
	}

	// Each match makes the agent the most recently busy, so the agents take
	// turns, within one MatchGroup call as well as across calls.
	got := matchGroup(t, q, "t1", "g", 6)
	for range 3 {
		got = append(got, matchGroup(t, q, "t1", "g", 1)...)
	}
	diffAssignments(t, "rotation", []acd.Assignment{
		a("t1", "g", "s0", "z-longest"),
		a("t1", "g", "s1", "a-mid"),
		a("t1", "g", "s2", "b-shortest"),
		a("t1", "g", "s3", "z-longest"),
		a("t1", "g", "s4", "a-mid"),
		a("t1", "g", "s5", "b-shortest"),
		a("t1", "g", "s6", "z-longest"),
		a("t1", "g", "s7", "a-mid"),
		a("t1", "g", "s8", "b-shortest"),
	}, got)

	// An agent who became ready earlier than everyone's last match is idle
	// the longest and goes first.
	ready(t, q, "t1", "new", 5, 0, b, "g")
	enqueue(t, q, "t1", "g", "s9", 0, b.Add(9*time.Second))
	diffAssignments(t, "newly ready", []acd.Assignment{a("t1", "g", "s9", "new")},
		matchGroup(t, q, "t1", "g", 1))
}

func testNotReadyGetsNothing(t *testing.T, q acd.Queue) {
	b := base()
	enqueue(t, q, "t1", "g", "s1", 0, b)
	ready(t, q, "t1", "a1", 3, 0, b, "g")
	ok(t, q.AgentNotReady(t.Context(), "t1", "a1"))

	if got := matchGroup(t, q, "t1", "g", 10); len(got) != 0 {
		t.Errorf("MatchGroup gave a not-ready agent %v", got)
	}
	if got := matchAgent(t, q, "t1", "a1"); len(got) != 0 {
		t.Errorf("MatchAgent gave a not-ready agent %v", got)
	}
	// Release must not make a not-ready agent available again.
	ready(t, q, "t1", "a1", 3, 1, b, "g") // holding one session...
	ok(t, q.AgentNotReady(t.Context(), "t1", "a1"))
	ok(t, q.Release(t.Context(), "t1", "a1")) // ...which ends while not ready
	if got := matchGroup(t, q, "t1", "g", 10); len(got) != 0 {
		t.Errorf("after Release, MatchGroup gave a not-ready agent %v", got)
	}
	// Not ready for an agent routing never saw is not an error.
	ok(t, q.AgentNotReady(t.Context(), "t1", "nobody"))
	if got := matchAgent(t, q, "t1", "nobody"); len(got) != 0 {
		t.Errorf("MatchAgent gave an unknown agent %v", got)
	}
	wantLength(t, q, "t1", "g", 1)

	ready(t, q, "t1", "a1", 3, 0, b, "g")
	diffAssignments(t, "after ready again", []acd.Assignment{a("t1", "g", "s1", "a1")},
		matchAgent(t, q, "t1", "a1"))
}

func testReleaseThenMatchAgent(t *testing.T, q acd.Queue) {
	b := base()
	// The agent is busy (load 1 of 1) while sessions queue in both groups.
	ready(t, q, "t1", "a1", 1, 1, b, "g1", "g2")
	enqueue(t, q, "t1", "g1", "g1-2s", 0, b.Add(2*time.Second))
	enqueue(t, q, "t1", "g1", "g1-4s", 0, b.Add(4*time.Second))
	enqueue(t, q, "t1", "g2", "g2-1s", 0, b.Add(1*time.Second))
	enqueue(t, q, "t1", "g2", "g2-3s", 0, b.Add(3*time.Second))
	if got := matchAgent(t, q, "t1", "a1"); len(got) != 0 {
		t.Fatalf("full agent got %v", got)
	}

	var got []acd.Assignment
	for range 4 {
		ok(t, q.Release(t.Context(), "t1", "a1"))
		got = append(got, matchAgent(t, q, "t1", "a1")...)
	}
	diffAssignments(t, "oldest across groups", []acd.Assignment{
		a("t1", "g2", "g2-1s", "a1"),
		a("t1", "g1", "g1-2s", "a1"),
		a("t1", "g2", "g2-3s", "a1"),
		a("t1", "g1", "g1-4s", "a1"),
	}, got)

	// With room for two, one MatchAgent takes two at once.
	enqueue(t, q, "t1", "g1", "x1", 0, b.Add(6*time.Second))
	enqueue(t, q, "t1", "g2", "x2", 0, b.Add(5*time.Second))
	enqueue(t, q, "t1", "g2", "x3", 0, b.Add(7*time.Second))
	ready(t, q, "t1", "a1", 3, 1, b, "g1", "g2")
	diffAssignments(t, "two at once", []acd.Assignment{
		a("t1", "g2", "x2", "a1"), a("t1", "g1", "x1", "a1"),
	}, matchAgent(t, q, "t1", "a1"))
}

func testMatchAgentPriorityAcrossGroups(t *testing.T, q acd.Queue) {
	b := base()
	enqueue(t, q, "t1", "g1", "old", 0, b)
	enqueue(t, q, "t1", "g2", "vip", 1, b.Add(time.Minute))
	ready(t, q, "t1", "a1", 1, 0, b, "g1", "g2")
	diffAssignments(t, "priority first", []acd.Assignment{a("t1", "g2", "vip", "a1")},
		matchAgent(t, q, "t1", "a1"))
}

func testReleaseAtZeroIsNoop(t *testing.T, q acd.Queue) {
	b := base()
	ready(t, q, "t1", "a1", 1, 0, b, "g")
	ok(t, q.Release(t.Context(), "t1", "a1"))
	ok(t, q.Release(t.Context(), "t1", "a1"))
	for i := range 3 {
		enqueue(t, q, "t1", "g", fmt.Sprintf("s%d", i), 0, b.Add(time.Duration(i)*time.Second))
	}
	if got := matchAgent(t, q, "t1", "a1"); len(got) != 1 {
		t.Errorf("releases at zero load raised capacity: MatchAgent gave %v, want one", got)
	}
	if got := matchGroup(t, q, "t1", "g", 10); len(got) != 0 {
		t.Errorf("releases at zero load raised capacity: MatchGroup gave %v", got)
	}
}

func testClaim(t *testing.T, q acd.Queue) {
	b := base()
	claim := func(agent string) bool {
		t.Helper()
		got, err := q.Claim(t.Context(), "t1", agent)
		ok(t, err)
		return got
	}
	if claim("ghost") {
		t.Error("an agent unknown to routing was claimed")
	}
	ready(t, q, "t1", "a1", 2, 0, b, "g")
	if !claim("a1") || !claim("a1") {
		t.Fatal("a ready agent below capacity was not claimed")
	}
	if claim("a1") {
		t.Error("an agent at capacity was claimed")
	}
	enqueue(t, q, "t1", "g", "s1", 0, b)
	if got := matchGroup(t, q, "t1", "g", 10); len(got) != 0 {
		t.Errorf("claims did not count as load: match gave %v", got)
	}
	ok(t, q.Release(t.Context(), "t1", "a1"))
	ok(t, q.AgentNotReady(t.Context(), "t1", "a1"))
	if claim("a1") {
		t.Error("a not-ready agent was claimed")
	}
}

func testAgentReadyChangesGroups(t *testing.T, q acd.Queue) {
	b := base()
	ready(t, q, "t1", "a1", 5, 0, b, "g1", "g2")
	ready(t, q, "t1", "a1", 5, 0, b, "g2", "g3")
	enqueue(t, q, "t1", "g1", "s1", 0, b)
	enqueue(t, q, "t1", "g3", "s3", 0, b.Add(time.Second))
	if got := matchGroup(t, q, "t1", "g1", 10); len(got) != 0 {
		t.Errorf("agent left g1 but got %v", got)
	}
	diffAssignments(t, "MatchAgent", []acd.Assignment{a("t1", "g3", "s3", "a1")},
		matchAgent(t, q, "t1", "a1"))
}

func testRequeue(t *testing.T, q acd.Queue) {
	b := base()
	enqueue(t, q, "t1", "g", "s1", 0, b)
	enqueue(t, q, "t1", "g", "s2", 0, b.Add(1*time.Second))
	enqueue(t, q, "t1", "g", "s3", 0, b.Add(2*time.Second))
	ready(t, q, "t1", "a1", 1, 0, b, "g")
	diffAssignments(t, "first match", []acd.Assignment{a("t1", "g", "s1", "a1")},
		matchGroup(t, q, "t1", "g", 10))

	// The agent drops: s1 returns with its original time and is first again.
	ok(t, q.AgentNotReady(t.Context(), "t1", "a1"))
	ok(t, q.Release(t.Context(), "t1", "a1"))
	enqueue(t, q, "t1", "g", "s1", 0, b)
	pos, n, err := q.Position(t.Context(), "t1", "g", "s1")
	ok(t, err)
	if pos != 1 || n != 3 {
		t.Errorf("requeued Position(s1) = %d of %d, want 1 of 3", pos, n)
	}
	ready(t, q, "t1", "a2", 3, 0, b, "g")
	got := sessionsOf(matchGroup(t, q, "t1", "g", 10))
	if diff := cmp.Diff([]string{"s1", "s2", "s3"}, got); diff != "" {
		t.Errorf("order after requeue (-want +got):\n%s", diff)
	}
}

func testTenantsIsolated(t *testing.T, q acd.Queue) {
	b := base()
	// Same group, session and agent ids in two tenants.
	enqueue(t, q, "ta", "g", "s1", 0, b)
	enqueue(t, q, "tb", "g", "s1", 0, b)
	enqueue(t, q, "tb", "g", "s2", 0, b.Add(time.Second))
	wantLength(t, q, "ta", "g", 1)
	wantLength(t, q, "tb", "g", 2)

	ready(t, q, "ta", "a1", 5, 0, b, "g")
	diffAssignments(t, "tenant a", []acd.Assignment{a("ta", "g", "s1", "a1")},
		matchGroup(t, q, "ta", "g", 10))
	wantLength(t, q, "tb", "g", 2)

	// Tenant b's agent with the same id has no state yet.
	if got := matchAgent(t, q, "tb", "a1"); len(got) != 0 {
		t.Errorf("tenant b's a1 got %v", got)
	}
	ok(t, q.AgentNotReady(t.Context(), "tb", "a1"))
	diffAssignments(t, "tenant a's agent is still ready", nil, matchAgent(t, q, "ta", "a1"))
	enqueue(t, q, "ta", "g", "s3", 0, b)
	diffAssignments(t, "tenant a", []acd.Assignment{a("ta", "g", "s3", "a1")},
		matchAgent(t, q, "ta", "a1"))

	ready(t, q, "tb", "a1", 1, 0, b, "g")
	diffAssignments(t, "tenant b", []acd.Assignment{a("tb", "g", "s1", "a1")},
		matchAgent(t, q, "tb", "a1"))
}

func testReset(t *testing.T, q acd.Queue) {
	b := base()
	for _, tenant := range []string{"ta", "tb"} {
		enqueue(t, q, tenant, "g", "s1", 0, b)
		enqueue(t, q, tenant, "g", "s2", 0, b.Add(time.Second))
		ready(t, q, tenant, "a1", 1, 1, b, "g")
	}
	ok(t, q.Reset(t.Context(), "ta"))
	wantLength(t, q, "ta", "g", 0)
	wantLength(t, q, "tb", "g", 2)
	// Tenant a's agent state is gone: a release gives it nothing back. An
	// implementation may report the unknown agent; either is fine here.
	_ = q.Release(t.Context(), "ta", "a1")
	enqueue(t, q, "ta", "g", "s9", 0, b)
	if got := matchGroup(t, q, "ta", "g", 10); len(got) != 0 {
		t.Errorf("after Reset, tenant a matched %v", got)
	}
	// Tenant b is untouched: its agent is still at 1 of 1.
	ok(t, q.Release(t.Context(), "tb", "a1"))
	diffAssignments(t, "tenant b", []acd.Assignment{a("tb", "g", "s1", "a1")},
		matchGroup(t, q, "tb", "g", 10))
}

// testConcurrent runs matches and releases from many goroutines at once and
// checks the two promises of D7: no session is given twice and no agent
// holds more than their capacity.
func testConcurrent(t *testing.T, q acd.Queue) {
	const (
		tenant      = "tc"
		nSessions   = 200
		nAgents     = 10
		capacity    = 3
		nWorkers    = 16
		nGroups     = 3
		maxDuration = 60 * time.Second
	)
	b := base()
	group := func(i int) string { return fmt.Sprintf("g%d", i%nGroups) }
	for i := range nSessions {
		prio := 0
		if i%7 == 0 {
			prio = 1
		}
		enqueue(t, q, tenant, group(i), fmt.Sprintf("s%03d", i), prio, b.Add(time.Duration(i)*time.Millisecond))
	}
	agents := make([]string, nAgents)
	for i := range agents {
		agents[i] = fmt.Sprintf("a%d", i)
		groups := []string{group(i)}
		if i%2 == 0 {
			groups = append(groups, group(i+1))
		}
		ready(t, q, tenant, agents[i], capacity, 0, b.Add(time.Duration(i)*time.Second), groups...)
	}

	// load[i] counts agent i's assignments seen minus releases done. A
	// release holds mu[i] across the Release call and the decrement, so
	// when an assignment is recorded every release that happened in the
	// queue is already subtracted: load[i] never exceeds the agent's true
	// load, and over capacity here means over capacity in the queue.
	var (
		mu       [nAgents]sync.Mutex
		load     [nAgents]int
		index    = map[string]int{}
		seenMu   sync.Mutex
		seen     = map[string]string{} // session -> agent; guarded by seenMu
		assigned atomic.Int64
	)
	for i, id := range agents {
		index[id] = i
	}
	record := func(as []acd.Assignment) {
		for _, x := range as {
			seenMu.Lock()
			if prev, dup := seen[x.SessionID]; dup {
				t.Errorf("session %s assigned twice: to %s and to %s", x.SessionID, prev, x.AgentID)
			}
			seen[x.SessionID] = x.AgentID
			seenMu.Unlock()
			assigned.Add(1)

			i, known := index[x.AgentID]
			if !known {
				t.Errorf("session %s assigned to unknown agent %q", x.SessionID, x.AgentID)
				continue
			}
			mu[i].Lock()
			load[i]++
			if load[i] > capacity {
				t.Errorf("agent %s holds %d sessions, capacity %d", x.AgentID, load[i], capacity)
			}
			mu[i].Unlock()
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), maxDuration)
	defer cancel()
	var wg sync.WaitGroup
	for w := range nWorkers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for assigned.Load() < nSessions && ctx.Err() == nil {
				switch r := rng.IntN(10); {
				case r < 4:
					as, err := q.MatchGroup(ctx, tenant, group(rng.IntN(nGroups)), 1+rng.IntN(4))
					record(as) // made even when err != nil
					if err != nil && ctx.Err() == nil {
						t.Errorf("MatchGroup: %v", err)
						return
					}
				case r < 7:
					agent := agents[rng.IntN(nAgents)]
					as, err := q.MatchAgent(ctx, tenant, agent)
					if err != nil && ctx.Err() == nil {
						t.Errorf("MatchAgent(%s): %v", agent, err)
						return
					}
					for _, x := range as {
						if x.AgentID != agent {
							t.Errorf("MatchAgent(%s) returned an assignment for %s", agent, x.AgentID)
						}
					}
					record(as)
				default:
					i := rng.IntN(nAgents)
					mu[i].Lock()
					if load[i] > 0 {
						if err := q.Release(ctx, tenant, agents[i]); err != nil {
							if ctx.Err() == nil {
								t.Errorf("Release(%s): %v", agents[i], err)
							}
						} else {
							load[i]--
						}
					}
					mu[i].Unlock()
				}
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil && assigned.Load() < nSessions {
		t.Fatalf("only %d of %d sessions assigned within %v", assigned.Load(), nSessions, maxDuration)
	}
	if len(seen) != nSessions {
		t.Errorf("%d distinct sessions assigned, want %d", len(seen), nSessions)
	}
	for g := range nGroups {
		wantLength(t, q, tenant, group(g), 0)
	}
	for i, id := range agents {
		if load[i] > capacity {
			t.Errorf("agent %s ends with %d sessions, capacity %d", id, load[i], capacity)
		}
	}
}
