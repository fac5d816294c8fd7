package acdtest

import (
	"fmt"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/acd"
)

// testAgentReadyTakesWaiting: a ready agent takes the waiting sessions
// they have room for at once, most urgent first across their groups.
func testAgentReadyTakesWaiting(h *harness) {
	h.enq(acd.Item{GroupID: "g1", SessionID: "g1-old", EnqueuedAt: h.ago(40 * time.Second)})
	h.enq(acd.Item{GroupID: "g1", SessionID: "g1-new", EnqueuedAt: h.ago(10 * time.Second)})
	h.enq(acd.Item{GroupID: "g2", SessionID: "g2-mid", EnqueuedAt: h.ago(30 * time.Second)})
	h.enq(acd.Item{GroupID: "g2", SessionID: "g2-new", EnqueuedAt: h.ago(5 * time.Second)})
	h.wantNone("AgentReady with no capacity", h.ready(acd.Agent{ID: "none", Groups: []string{"g1", "g2"}}))
	h.want("AgentReady", h.ready(acd.Agent{ID: "a1", Groups: []string{"g2", "g1"}, MaxSessions: 3}),
		x("g1", "g1-old", "a1"), x("g2", "g2-mid", "a1"), x("g1", "g1-new", "a1"))
	h.wantWaiting("g2", "g2-new")
}

func testMatchRespectsCapacity(h *harness) {
	for i, id := range ids("s", 6) {
		h.enq(acd.Item{GroupID: "g", SessionID: id, EnqueuedAt: h.ago(time.Duration(10-i) * time.Second)})
	}
	h.want("a1", h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 2}),
		x("g", "s0", "a1"), x("g", "s1", "a1"))
	h.want("a2 (one unit free)", h.ready(acd.Agent{ID: "a2", Groups: []string{"g"}, MaxSessions: 3, Load: 2}),
		x("g", "s2", "a2"))
	h.wantNone("full", h.ready(acd.Agent{ID: "full", Groups: []string{"g"}, MaxSessions: 2, Load: 2}))
	h.wantLength("g", 3)
	h.wantNone("MatchGroup with everyone full", h.matchGroup("g", 10))
	for _, id := range []string{"a1", "a2", "full"} {
		h.wantNone("MatchAgent "+id, h.matchAgent(id))
	}
}

// testReleaseFreesCost: Release frees the cost it is given and matches the
// agent at once; the load never goes below zero, so an over-release does
// not raise capacity.
func testReleaseFreesCost(h *harness) {
	h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 3})
	got := h.enqAll(
		acd.Item{GroupID: "g", SessionID: "s1", EnqueuedAt: h.ago(9 * time.Second)},
		acd.Item{GroupID: "g", SessionID: "s2", EnqueuedAt: h.ago(8 * time.Second), Cost: 2},
		acd.Item{GroupID: "g", SessionID: "s3", EnqueuedAt: h.ago(7 * time.Second)},
		acd.Item{GroupID: "g", SessionID: "s4", EnqueuedAt: h.ago(6 * time.Second)},
		acd.Item{GroupID: "g", SessionID: "s5", EnqueuedAt: h.ago(5 * time.Second)},
	)
	h.want("enqueues", got, x("g", "s1", "a1"), xc("g", "s2", "a1", 2))
	if l := h.agentLoad("a1"); l.Load != 3 {
		h.t.Errorf("load after cost 1 + 2 = %d, want 3", l.Load)
	}
	h.want("Release(2)", h.release("a1", 2), x("g", "s3", "a1"), x("g", "s4", "a1"))
	h.want("Release(0) frees one", h.release("a1", 0), x("g", "s5", "a1"))
	h.wantNone("Release(10)", h.release("a1", 10))
	if l := h.agentLoad("a1"); l.Load != 0 {
		h.t.Errorf("load after over-release = %d, want 0", l.Load)
	}
	got = h.enqAll(
		acd.Item{GroupID: "g", SessionID: "t1"},
		acd.Item{GroupID: "g", SessionID: "t2"},
		acd.Item{GroupID: "g", SessionID: "t3"},
		acd.Item{GroupID: "g", SessionID: "t4"},
	)
	if len(got) != 3 {
		h.t.Errorf("after an over-release, %d of 4 sessions were assigned to an agent of capacity 3", len(got))
	}
}

func testReleaseAtZeroIsNoop(h *harness) {
	h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 1})
	h.release("a1", 1)
	h.release("a1", 1)
	got := h.enqAll(
		acd.Item{GroupID: "g", SessionID: "s0", EnqueuedAt: h.ago(3 * time.Second)},
		acd.Item{GroupID: "g", SessionID: "s1", EnqueuedAt: h.ago(2 * time.Second)},
		acd.Item{GroupID: "g", SessionID: "s2", EnqueuedAt: h.ago(1 * time.Second)},
	)
	h.want("enqueues", got, x("g", "s0", "a1"))
	h.wantNone("MatchAgent", h.matchAgent("a1"))
	h.wantNone("MatchGroup", h.matchGroup("g", 10))
}

// testCostSkipsLargeOnRelease: an agent with one unit left passes over a
// cost-2 session for a later cost-1 one, and takes the large one when two
// units are free.
func testCostSkipsLargeOnRelease(h *harness) {
	h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 2, Load: 2})
	h.enq(acd.Item{GroupID: "g", SessionID: "big", Cost: 2, EnqueuedAt: h.ago(10 * time.Second)})
	h.enq(acd.Item{GroupID: "g", SessionID: "small", EnqueuedAt: h.ago(5 * time.Second)})
	h.want("Release(1)", h.release("a1", 1), x("g", "small", "a1"))
	h.wantNone("Release(1) again: one unit free", h.release("a1", 1))
	h.want("Release(1) with two free", h.release("a1", 1), xc("g", "big", "a1", 2))
}

// testCostSkipsLargeOnEnqueue is the same through the group's match: a
// session nobody has room for must not hold up a smaller one behind it
// that an available agent can take.
func testCostSkipsLargeOnEnqueue(h *harness) {
	h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 2})
	h.claim("a1", 1) // one unit left
	h.wantNone("Enqueue big", h.enq(acd.Item{GroupID: "g", SessionID: "big", Cost: 2, EnqueuedAt: h.ago(10 * time.Second)}).Assignments)
	got := h.enq(acd.Item{GroupID: "g", SessionID: "small"}).Assignments
	got = append(got, h.matchGroup("g", 10)...)
	h.want("Enqueue small, then MatchGroup", got, x("g", "small", "a1"))
}

// testCostBeyondPartlyBusy: a cost-2 session goes to the one agent with
// two units free even when many agents ahead of them (longer idle) have
// one unit left: a large contact centre with most agents in one chat.
func testCostBeyondPartlyBusy(h *harness) {
	const busy = 100
	for i := range busy {
		h.ready(acd.Agent{ID: fmt.Sprintf("busy%03d", i), Groups: []string{"g"}, MaxSessions: 2, Load: 1,
			IdleSince: h.ago(time.Hour - time.Duration(i)*time.Second)})
	}
	h.ready(acd.Agent{ID: "free", Groups: []string{"g"}, MaxSessions: 2})
	got := h.enq(acd.Item{GroupID: "g", SessionID: "call", Cost: 2}).Assignments
	got = append(got, h.matchGroup("g", 1)...)
	h.want("Enqueue, then MatchGroup", got, xc("g", "call", "free", 2))
}

func testClaim(h *harness) {
	h.claim("ghost", 1) // false: checked by the harness
	h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 3})
	if !h.claim("a1", 2) {
		h.t.Fatal("a ready agent with room was not claimed")
	}
	h.claim("a1", 2) // false: one unit left
	h.claim("a1", 0) // true: cost 0 means 1
	h.claim("a1", 1) // false: full
	h.wantNone("Enqueue s1", h.enq(acd.Item{GroupID: "g", SessionID: "s1"}).Assignments)
	h.want("Release(2)", h.release("a1", 2), x("g", "s1", "a1"))
	h.notReady("a1")
	h.claim("a1", 1) // false: not ready
	if l := h.agentLoad("a1"); l.Load != 2 {
		h.t.Errorf("load = %d, want 2", l.Load)
	}
}

func testNotReadyGetsNothing(h *harness) {
	h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 3})
	h.notReady("a1")
	h.wantNone("Enqueue", h.enq(acd.Item{GroupID: "g", SessionID: "s1"}).Assignments)
	h.wantNone("MatchGroup", h.matchGroup("g", 10))
	h.wantNone("MatchAgent", h.matchAgent("a1"))

	// A release while not ready does not make the agent available again.
	h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 1, Load: 1})
	h.notReady("a1")
	h.wantNone("Release while not ready", h.release("a1", 1))
	h.wantNone("MatchGroup after release", h.matchGroup("g", 10))

	// Not ready for an agent routing never saw is not an error.
	h.notReady("nobody")
	h.offline("nobody")
	h.wantNone("MatchAgent nobody", h.matchAgent("nobody"))
	h.wantLength("g", 1)

	h.want("ready again", h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 3}), x("g", "s1", "a1"))
}

func testNotReadyKeepsLoad(h *harness) {
	h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 3})
	h.enqAll(acd.Item{GroupID: "g", SessionID: "s1"}, acd.Item{GroupID: "g", SessionID: "s2"})
	h.notReady("a1")
	if diff := cmp.Diff(acd.AgentLoad{Known: true, Ready: false, Load: 2, Max: 3}, h.agentLoad("a1")); diff != "" {
		h.t.Errorf("AgentLoad after not ready (-want +got):\n%s", diff)
	}
	h.enq(acd.Item{GroupID: "g", SessionID: "s3"})
	h.wantNone("Release while not ready", h.release("a1", 1))
	h.offline("a1")
	if diff := cmp.Diff(acd.AgentLoad{Known: true, Ready: false, Load: 1, Max: 3}, h.agentLoad("a1")); diff != "" {
		h.t.Errorf("AgentLoad after offline (-want +got):\n%s", diff)
	}
	h.want("ready with load 1", h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 2, Load: 1}), x("g", "s3", "a1"))
}

func testAgentReadyAtCapacity(h *harness) {
	h.enq(acd.Item{GroupID: "g", SessionID: "s1"})
	h.wantNone("AgentReady at capacity", h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 2, Load: 2}))
	h.wantNone("MatchGroup", h.matchGroup("g", 1))
	if l := h.agentLoad("a1"); !l.Ready {
		h.t.Errorf("an agent at capacity is ready: %+v", l)
	}
	h.want("Release", h.release("a1", 1), x("g", "s1", "a1"))
}

func testAgentReadyChangesGroups(h *harness) {
	h.ready(acd.Agent{ID: "a1", Groups: []string{"g1", "g2"}, MaxSessions: 5})
	h.ready(acd.Agent{ID: "a1", Groups: []string{"g2", "g3"}, MaxSessions: 5})
	h.wantNone("Enqueue in a group the agent left", h.enq(acd.Item{GroupID: "g1", SessionID: "s1"}).Assignments)
	h.want("Enqueue in a new group", h.enq(acd.Item{GroupID: "g3", SessionID: "s3"}).Assignments, x("g3", "s3", "a1"))
	h.wantNone("MatchGroup g1", h.matchGroup("g1", 10))
	st, err := h.q.Stats(h.ctx(), h.tenant, []string{"g1", "g2", "g3"})
	h.ok(err)
	for i, want := range []int{0, 1, 1} {
		if st[i].Online != want {
			h.t.Errorf("Stats(%s).Online = %d, want %d", st[i].GroupID, st[i].Online, want)
		}
	}
}

// testMissed: expired offers count; at the limit the agent is made not
// ready and the count starts again; Accepted and AgentReady reset it.
func testMissed(h *harness) {
	h.missed("ghost", 3) // 0, false: checked by the harness
	h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 2})
	h.missed("a1", 3)
	h.missed("a1", 3)
	h.accepted("a1")
	h.missed("a1", 3) // 1 again
	h.missed("a1", 3)
	if _, made := h.missed("a1", 3); !made {
		h.t.Fatal("third missed offer did not make the agent not ready")
	}
	if l := h.agentLoad("a1"); l.Ready {
		h.t.Errorf("AgentLoad after the limit = %+v, want not ready", l)
	}
	h.wantNone("Enqueue", h.enq(acd.Item{GroupID: "g", SessionID: "s1"}).Assignments)
	h.wantNone("MatchGroup", h.matchGroup("g", 10))
	h.wantNone("MatchAgent", h.matchAgent("a1"))
	h.missed("a1", 3) // 1: the count reset at the limit

	h.want("AgentReady", h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 2}), x("g", "s1", "a1"))
	h.missed("a1", 3) // 1: AgentReady reset it
	// A limit of 0 never makes the agent not ready.
	for range 5 {
		h.missed("a1", 0)
	}
	h.want("still ready", h.enq(acd.Item{GroupID: "g", SessionID: "s2"}).Assignments, x("g", "s2", "a1"))
}

func testAgentLoadAndSetLoad(h *harness) {
	if diff := cmp.Diff(acd.AgentLoad{}, h.agentLoad("ghost")); diff != "" {
		h.t.Errorf("AgentLoad(ghost) (-want +got):\n%s", diff)
	}
	h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 4, Load: 1})
	if diff := cmp.Diff(acd.AgentLoad{Known: true, Ready: true, Load: 1, Max: 4}, h.agentLoad("a1")); diff != "" {
		h.t.Errorf("AgentLoad(a1) (-want +got):\n%s", diff)
	}
	h.setLoad("a1", 3)
	if got := h.agentLoad("a1").Load; got != 3 {
		h.t.Errorf("after SetLoad(3), load = %d", got)
	}
	h.setLoad("a1", -2)
	if got := h.agentLoad("a1").Load; got != 0 {
		h.t.Errorf("after SetLoad(-2), load = %d, want 0", got)
	}
	h.setLoad("a1", 4)
	h.wantNone("Enqueue with the agent set full", h.enq(acd.Item{GroupID: "g", SessionID: "s1"}).Assignments)
	h.want("Release", h.release("a1", 1), x("g", "s1", "a1"))

	h.setLoad("ghost", 2) // nothing to repair: not an error
	if l := h.agentLoad("ghost"); l.Known {
		h.t.Errorf("SetLoad created state for an unknown agent: %+v", l)
	}
}

// testSetLoadLosesNoSession: SetLoad returns no assignments, so it must
// not make any; a session waiting for the agent stays waiting until a
// match that reports it.
func testSetLoadLosesNoSession(h *harness) {
	h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 1, Load: 1})
	h.enq(acd.Item{GroupID: "g", SessionID: "s1"})
	h.setLoad("a1", 0)
	h.wantWaiting("g", "s1")
	h.want("MatchAgent after SetLoad", h.matchAgent("a1"), x("g", "s1", "a1"))
}
