package acdtest

import (
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/acd"
)

func testFIFOOrder(h *harness) {
	// Enqueued out of order: the enqueue time decides, not the call order.
	h.enq(acd.Item{GroupID: "g", SessionID: "s2", EnqueuedAt: h.ago(2 * time.Second)})
	h.enq(acd.Item{GroupID: "g", SessionID: "s1", EnqueuedAt: h.ago(3 * time.Second)})
	h.enq(acd.Item{GroupID: "g", SessionID: "s3", EnqueuedAt: h.ago(1 * time.Second)})
	h.wantWaiting("g", "s1", "s2", "s3")

	h.want("AgentReady", h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 10}),
		x("g", "s1", "a1"), x("g", "s2", "a1"), x("g", "s3", "a1"))
	h.wantLength("g", 0)
}

// testEnqueueResult: Added, Position and Length, with and without an
// immediate match.
func testEnqueueResult(h *harness) {
	h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 1})
	got := h.enq(acd.Item{GroupID: "g", SessionID: "s1"})
	h.want("Enqueue s1", got.Assignments, x("g", "s1", "a1"))
	if diff := cmp.Diff(acd.Enqueued{Added: true, Position: 0, Length: 0}, got, ignoreRecorded, cmpIgnoreAssignments); diff != "" {
		h.t.Errorf("Enqueue s1 (-want +got):\n%s", diff)
	}
	// a1 is full now.
	for i, want := range []acd.Enqueued{
		{Added: true, Position: 1, Length: 1},
		{Added: true, Position: 2, Length: 2},
	} {
		id := []string{"s2", "s3"}[i]
		got := h.enq(acd.Item{GroupID: "g", SessionID: id, EnqueuedAt: h.ago(time.Duration(10-i) * time.Second)})
		if diff := cmp.Diff(want, got, cmpIgnoreAssignments); diff != "" {
			h.t.Errorf("Enqueue %s (-want +got):\n%s", id, diff)
		}
	}
	// An earlier session goes ahead of both.
	got = h.enq(acd.Item{GroupID: "g", SessionID: "s0", EnqueuedAt: h.ago(time.Minute)})
	if diff := cmp.Diff(acd.Enqueued{Added: true, Position: 1, Length: 3}, got, cmpIgnoreAssignments); diff != "" {
		h.t.Errorf("Enqueue s0 (-want +got):\n%s", diff)
	}
	// The release hands the head to a1 at once.
	h.want("Release", h.release("a1", 1), x("g", "s0", "a1"))
	h.wantWaiting("g", "s2", "s3")
}

func testEnqueueIdempotent(h *harness) {
	h.enq(acd.Item{GroupID: "g", SessionID: "s1", EnqueuedAt: h.ago(2 * time.Second)})
	h.enq(acd.Item{GroupID: "g", SessionID: "s2", EnqueuedAt: h.ago(1 * time.Second)})
	// Again, with a higher priority, an earlier time and another cost:
	// nothing changes, and the result says where the session already is.
	got := h.enq(acd.Item{GroupID: "g", SessionID: "s2", Priority: 5, Cost: 3, EnqueuedAt: h.ago(time.Hour)})
	if diff := cmp.Diff(acd.Enqueued{Added: false, Position: 2, Length: 2}, got, cmpIgnoreAssignments); diff != "" {
		h.t.Errorf("second Enqueue s2 (-want +got):\n%s", diff)
	}
	h.enq(acd.Item{GroupID: "g", SessionID: "s1", EnqueuedAt: h.ago(2 * time.Second)})
	h.wantLength("g", 2)
	h.wantPosition("g", "s2", 2, 2)

	// The cost is still 1 (record checks it) and the order unchanged.
	h.want("AgentReady", h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 10}),
		x("g", "s1", "a1"), x("g", "s2", "a1"))
}

func testPriorityJumpsQueue(h *harness) {
	// Seconds apart, well inside one priority step (a minute by default):
	// priority decides, then arrival.
	for _, it := range []acd.Item{
		{SessionID: "normal-old", EnqueuedAt: h.ago(9 * time.Second)},
		{SessionID: "low", Priority: -1, EnqueuedAt: h.ago(10 * time.Second)},
		{SessionID: "normal-new", EnqueuedAt: h.ago(8 * time.Second)},
		{SessionID: "vip2", Priority: 2, EnqueuedAt: h.ago(6 * time.Second)},
		{SessionID: "vip1", Priority: 1, EnqueuedAt: h.ago(7 * time.Second)},
		{SessionID: "vip2-later", Priority: 2, EnqueuedAt: h.ago(5 * time.Second)},
	} {
		it.GroupID = "g"
		h.enq(it)
	}
	want := []string{"vip2", "vip2-later", "vip1", "normal-old", "normal-new", "low"}
	h.wantWaiting("g", want...)
	got := sessionsOf(h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 10}))
	if diff := cmp.Diff(want, got); diff != "" {
		h.t.Errorf("match order (-want +got):\n%s", diff)
	}
}

// testPriorityAges: priority p counts as p priority steps of waiting, so a
// session that waited more than a step longer beats one a level higher
// that just arrived, and one that waited less does not.
func testPriorityAges(h *harness) {
	// Default step: one minute.
	h.enq(acd.Item{GroupID: "older", SessionID: "normal-61s", EnqueuedAt: h.ago(61 * time.Second)})
	h.enq(acd.Item{GroupID: "older", SessionID: "vip-now-1", Priority: 1})
	h.wantWaiting("older", "normal-61s", "vip-now-1")

	h.enq(acd.Item{GroupID: "younger", SessionID: "normal-59s", EnqueuedAt: h.ago(59 * time.Second)})
	h.enq(acd.Item{GroupID: "younger", SessionID: "vip-now-2", Priority: 1})
	h.wantWaiting("younger", "vip-now-2", "normal-59s")

	// A configured step of 10 s: priority 2 is worth 20 s.
	h.configure(acd.Group{ID: "step10", PriorityStep: 10 * time.Second})
	h.enq(acd.Item{GroupID: "step10", SessionID: "normal-19s", EnqueuedAt: h.ago(19 * time.Second)})
	h.enq(acd.Item{GroupID: "step10", SessionID: "vip2-now", Priority: 2})
	h.enq(acd.Item{GroupID: "step10", SessionID: "normal-21s", EnqueuedAt: h.ago(21 * time.Second)})
	h.enq(acd.Item{GroupID: "step10", SessionID: "low-now", Priority: -1})
	h.enq(acd.Item{GroupID: "step10", SessionID: "normal-9s", EnqueuedAt: h.ago(9 * time.Second)})
	h.wantWaiting("step10", "normal-21s", "vip2-now", "normal-19s", "normal-9s", "low-now")

	// A step of a day is strict priority in practice.
	h.configure(acd.Group{ID: "strict", PriorityStep: 24 * time.Hour})
	h.enq(acd.Item{GroupID: "strict", SessionID: "normal-1h", EnqueuedAt: h.ago(time.Hour)})
	h.enq(acd.Item{GroupID: "strict", SessionID: "vip-now-3", Priority: 1})
	h.wantWaiting("strict", "vip-now-3", "normal-1h")

	// Matching serves the same order.
	for _, g := range []string{"older", "younger", "step10", "strict"} {
		want, err := h.q.Waiting(h.ctx(), h.tenant, g, 100)
		h.ok(err)
		got := sessionsOf(h.ready(acd.Agent{ID: "a-" + g, Groups: []string{g}, MaxSessions: 10}))
		if diff := cmp.Diff(want, got); diff != "" {
			h.t.Errorf("%s: match order (-want +got):\n%s", g, diff)
		}
	}
}

func testRemove(h *harness) {
	h.enq(acd.Item{GroupID: "g", SessionID: "s1", EnqueuedAt: h.ago(2 * time.Second)})
	h.enq(acd.Item{GroupID: "g", SessionID: "s2", EnqueuedAt: h.ago(1 * time.Second)})

	if !h.remove("g", "s1") {
		h.t.Error("Remove(s1) = false, want true")
	}
	h.remove("g", "s1")    // false: checked by the harness
	h.remove("g", "never") // false
	h.remove("other", "s2")
	h.wantLength("g", 1)

	h.want("AgentReady", h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 10}),
		x("g", "s2", "a1"))
	// An assigned session is no longer waiting: Remove loses the race.
	h.remove("g", "s2")

	// A removed session can be enqueued again (a new handoff).
	h.notReady("a1")
	h.enq(acd.Item{GroupID: "g", SessionID: "s1", EnqueuedAt: h.ago(time.Minute)})
	h.wantLength("g", 1)
}

func testPositionAndLength(h *harness) {
	h.wantLength("g", 0)
	for i, id := range ids("s", 5) {
		h.enq(acd.Item{GroupID: "g", SessionID: id, EnqueuedAt: h.ago(time.Duration(10-i) * time.Second)})
	}
	h.enq(acd.Item{GroupID: "other", SessionID: "x"})
	h.wantLength("g", 5)
	h.wantLength("other", 1)
	for i, id := range ids("s", 5) {
		h.wantPosition("g", id, i+1, 5)
	}
	h.wantPosition("g", "missing", 0, 5)
	h.wantPosition("empty", "missing", 0, 0)

	h.remove("g", "s0")
	h.wantPosition("g", "s4", 4, 4)
}

func testWaitingInServiceOrder(h *harness) {
	h.enq(acd.Item{GroupID: "g", SessionID: "b", EnqueuedAt: h.ago(2 * time.Second)})
	h.enq(acd.Item{GroupID: "g", SessionID: "c", EnqueuedAt: h.ago(1 * time.Second)})
	h.enq(acd.Item{GroupID: "g", SessionID: "a", Priority: 1})
	h.wantWaiting("g", "a", "b", "c")
	got, err := h.q.Waiting(h.ctx(), h.tenant, "g", 2)
	h.ok(err)
	if diff := cmp.Diff([]string{"a", "b"}, got); diff != "" {
		h.t.Errorf("Waiting(limit 2) (-want +got):\n%s", diff)
	}
	for _, limit := range []int{0, -1} {
		got, err := h.q.Waiting(h.ctx(), h.tenant, "g", limit)
		h.ok(err)
		if len(got) != 0 {
			h.t.Errorf("Waiting(limit %d) = %v, want none", limit, got)
		}
	}
	h.wantWaiting("nobody-waits")
}

// testWaited: Waited is exact on the simulated clock, for a session
// matched by AgentReady, MatchAgent and Release alike (record checks every
// one of them against the model).
func testWaited(h *harness) {
	h.enq(acd.Item{GroupID: "g", SessionID: "s1", EnqueuedAt: h.ago(5 * time.Minute)})
	h.enq(acd.Item{GroupID: "h", SessionID: "s2"})
	h.enq(acd.Item{GroupID: "h", SessionID: "s3"})
	h.clk.Advance(42*time.Second + 7*time.Millisecond)
	got := h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 1})
	if len(got) != 1 || got[0].Waited != 5*time.Minute+42*time.Second+7*time.Millisecond {
		h.t.Errorf("AgentReady = %+v, want s1 after 5m42.007s", got)
	}
	h.ready(acd.Agent{ID: "a2", Groups: []string{"h"}, MaxSessions: 1}) // takes s2
	h.clk.Advance(time.Second)
	got = h.release("a2", 1)
	if len(got) != 1 || got[0].Waited != 43*time.Second+7*time.Millisecond {
		h.t.Errorf("Release = %+v, want s3 after 43.007s", got)
	}
}

func testRequeue(h *harness) {
	at := h.ago(time.Minute)
	h.enq(acd.Item{GroupID: "g", SessionID: "s1", EnqueuedAt: at})
	h.enq(acd.Item{GroupID: "g", SessionID: "s2", EnqueuedAt: at.Add(1 * time.Second)})
	h.enq(acd.Item{GroupID: "g", SessionID: "s3", EnqueuedAt: at.Add(2 * time.Second)})
	h.want("AgentReady", h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 1}),
		x("g", "s1", "a1"))

	// The agent drops: s1 returns with its original time and is first again.
	h.notReady("a1")
	h.release("a1", 1)
	got := h.enq(acd.Item{GroupID: "g", SessionID: "s1", EnqueuedAt: at, Force: true})
	if got.Position != 1 || got.Length != 3 {
		h.t.Errorf("requeued s1 at %d of %d, want 1 of 3", got.Position, got.Length)
	}
	got2 := sessionsOf(h.ready(acd.Agent{ID: "a2", Groups: []string{"g"}, MaxSessions: 3}))
	if diff := cmp.Diff([]string{"s1", "s2", "s3"}, got2); diff != "" {
		h.t.Errorf("order after requeue (-want +got):\n%s", diff)
	}
}

// testFlowControl: MaxQueue refuses an enqueue beyond it without storing
// anything; a forced item goes in regardless.
func testFlowControl(h *harness) {
	h.configure(acd.Group{ID: "g", MaxQueue: 2})
	h.enq(acd.Item{GroupID: "g", SessionID: "s1", EnqueuedAt: h.ago(3 * time.Second)})
	h.enq(acd.Item{GroupID: "g", SessionID: "s2", EnqueuedAt: h.ago(2 * time.Second)})
	got := h.enq(acd.Item{GroupID: "g", SessionID: "s3", Priority: 5})
	if diff := cmp.Diff(acd.Enqueued{Full: true, Length: 2}, got, cmpIgnoreAssignments); diff != "" {
		h.t.Errorf("Enqueue beyond MaxQueue (-want +got):\n%s", diff)
	}
	h.wantPosition("g", "s3", 0, 2)
	h.wantWaiting("g", "s1", "s2")

	// A session already waiting is a retry, not a refusal.
	got = h.enq(acd.Item{GroupID: "g", SessionID: "s1"})
	if diff := cmp.Diff(acd.Enqueued{Position: 1, Length: 2}, got, cmpIgnoreAssignments); diff != "" {
		h.t.Errorf("retried Enqueue in a full queue (-want +got):\n%s", diff)
	}

	// Force bypasses the cap (a session handed back was accepted once).
	got = h.enq(acd.Item{GroupID: "g", SessionID: "back", EnqueuedAt: h.ago(time.Minute), Force: true})
	if diff := cmp.Diff(acd.Enqueued{Added: true, Position: 1, Length: 3}, got, cmpIgnoreAssignments); diff != "" {
		h.t.Errorf("forced Enqueue (-want +got):\n%s", diff)
	}
	if got := h.enq(acd.Item{GroupID: "g", SessionID: "s4"}); !got.Full {
		h.t.Errorf("Enqueue s4 with 3 of 2 waiting = %+v, want Full", got)
	}

	// Serving two makes room for one.
	h.want("AgentReady", h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 2}),
		x("g", "back", "a1"), x("g", "s1", "a1"))
	if got := h.enq(acd.Item{GroupID: "g", SessionID: "s5"}); !got.Added || got.Position != 2 {
		h.t.Errorf("Enqueue s5 with 1 of 2 waiting = %+v, want added at 2", got)
	}
	if got := h.enq(acd.Item{GroupID: "g", SessionID: "s6"}); !got.Full {
		h.t.Errorf("Enqueue s6 with 2 of 2 waiting = %+v, want Full", got)
	}
	// Other groups have no cap.
	for _, id := range ids("o", 5) {
		h.enq(acd.Item{GroupID: "uncapped", SessionID: id})
	}
	h.wantLength("uncapped", 5)
}

var cmpIgnoreAssignments = cmp.FilterPath(func(p cmp.Path) bool {
	return p.Last().String() == ".Assignments"
}, cmp.Ignore())
