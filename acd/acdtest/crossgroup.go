package acdtest

import (
	"time"

	"github.com/switchboard-acd/switchboard/acd"
)

// testOldestAcrossGroups: with equal thresholds and weights, an agent of
// several groups takes the session that waited longest among them.
func testOldestAcrossGroups(h *harness) {
	// The agent is busy (load 1 of 1) while sessions queue in both groups.
	h.ready(acd.Agent{ID: "a1", Groups: []string{"g1", "g2"}, MaxSessions: 1, Load: 1})
	h.enq(acd.Item{GroupID: "g1", SessionID: "g1-9s", EnqueuedAt: h.ago(9 * time.Second)})
	h.enq(acd.Item{GroupID: "g1", SessionID: "g1-7s", EnqueuedAt: h.ago(7 * time.Second)})
	h.enq(acd.Item{GroupID: "g2", SessionID: "g2-10s", EnqueuedAt: h.ago(10 * time.Second)})
	h.enq(acd.Item{GroupID: "g2", SessionID: "g2-8s", EnqueuedAt: h.ago(8 * time.Second)})
	h.wantNone("MatchAgent while full", h.matchAgent("a1"))

	var got []acd.Assignment
	for range 4 {
		got = append(got, h.release("a1", 1)...)
	}
	h.want("one per release, oldest across groups", got,
		x("g2", "g2-10s", "a1"), x("g1", "g1-9s", "a1"), x("g2", "g2-8s", "a1"), x("g1", "g1-7s", "a1"))

	// Still busy with g1-7s. With room for two, one AgentReady takes two
	// at once.
	h.enq(acd.Item{GroupID: "g1", SessionID: "x1", EnqueuedAt: h.ago(5 * time.Second)})
	h.enq(acd.Item{GroupID: "g2", SessionID: "x2", EnqueuedAt: h.ago(6 * time.Second)})
	h.enq(acd.Item{GroupID: "g2", SessionID: "x3", EnqueuedAt: h.ago(4 * time.Second)})
	h.notReady("a1")
	h.want("two at once", h.ready(acd.Agent{ID: "a1", Groups: []string{"g1", "g2"}, MaxSessions: 3, Load: 1}),
		x("g2", "x2", "a1"), x("g1", "x1", "a1"))
}

// testPriorityAcrossGroups: priority credit counts across groups as it
// does within one, aging included.
func testPriorityAcrossGroups(h *harness) {
	// vip (priority 1, 10 s) ranks as 70 s of waiting: ahead of 30 s.
	h.enq(acd.Item{GroupID: "g1", SessionID: "normal-30s", EnqueuedAt: h.ago(30 * time.Second)})
	h.enq(acd.Item{GroupID: "g2", SessionID: "vip-10s", Priority: 1, EnqueuedAt: h.ago(10 * time.Second)})
	h.want("priority first", h.ready(acd.Agent{ID: "a1", Groups: []string{"g1", "g2"}, MaxSessions: 1}),
		x("g2", "vip-10s", "a1"))
	h.want("then the other", h.release("a1", 1), x("g1", "normal-30s", "a1"))

	// 90 s of waiting beats the same vip credit.
	h.ready(acd.Agent{ID: "a1", Groups: []string{"g1", "g2"}, MaxSessions: 1, Load: 1})
	h.enq(acd.Item{GroupID: "g1", SessionID: "normal-90s", EnqueuedAt: h.ago(90 * time.Second)})
	h.enq(acd.Item{GroupID: "g2", SessionID: "vip2-10s", Priority: 1, EnqueuedAt: h.ago(10 * time.Second)})
	h.want("aged normal first", h.release("a1", 1), x("g1", "normal-90s", "a1"))
	h.want("then the vip", h.release("a1", 1), x("g2", "vip2-10s", "a1"))
}

// testSLThresholdAcrossGroups: waits are compared relative to each group's
// service-level threshold, so a short wait in a group with a short
// threshold beats a longer one in a group with a long threshold.
func testSLThresholdAcrossGroups(h *harness) {
	h.configure(acd.Group{ID: "slow", SLThreshold: 5 * time.Minute})
	h.configure(acd.Group{ID: "fast", SLThreshold: 10 * time.Second})
	// slow: 60 s / 300 s = 0.2; fast: 5 s / 10 s = 0.5.
	h.enq(acd.Item{GroupID: "slow", SessionID: "slow-60s", EnqueuedAt: h.ago(60 * time.Second)})
	h.enq(acd.Item{GroupID: "fast", SessionID: "fast-5s", EnqueuedAt: h.ago(5 * time.Second)})
	h.want("AgentReady", h.ready(acd.Agent{ID: "a1", Groups: []string{"slow", "fast"}, MaxSessions: 1}),
		x("fast", "fast-5s", "a1"))
	// Through Release and MatchAgent too: slow 0.2 against fast 0.3.
	h.enq(acd.Item{GroupID: "fast", SessionID: "fast-3s", EnqueuedAt: h.ago(3 * time.Second)})
	h.want("Release", h.release("a1", 1), x("fast", "fast-3s", "a1"))
	// Once fast's head waited less than 2 s (0.1), slow's 0.2 wins.
	h.enq(acd.Item{GroupID: "fast", SessionID: "fast-1s", EnqueuedAt: h.ago(1 * time.Second)})
	h.notReady("a1")
	h.release("a1", 1)
	h.want("MatchAgent after ready", h.ready(acd.Agent{ID: "a1", Groups: []string{"fast", "slow"}, MaxSessions: 1}),
		x("slow", "slow-60s", "a1"))
}

// testWeightAcrossGroups: a group's weight scales its urgency and so
// changes the choice the thresholds alone would make.
func testWeightAcrossGroups(h *harness) {
	h.configure(acd.Group{ID: "slow", SLThreshold: 5 * time.Minute})
	h.configure(acd.Group{ID: "fast", SLThreshold: 10 * time.Second})
	h.ready(acd.Agent{ID: "a1", Groups: []string{"slow", "fast"}, MaxSessions: 1, Load: 1})
	h.enq(acd.Item{GroupID: "slow", SessionID: "slow-1", EnqueuedAt: h.ago(60 * time.Second)})
	h.enq(acd.Item{GroupID: "fast", SessionID: "fast-1", EnqueuedAt: h.ago(5 * time.Second)})
	h.want("weight 1: fast (0.5 > 0.2)", h.release("a1", 1), x("fast", "fast-1", "a1"))

	// Weight 5 makes slow 60 s / 300 s * 5 = 1.0 against fast 0.5.
	h.configure(acd.Group{ID: "slow", SLThreshold: 5 * time.Minute, Weight: 5})
	h.enq(acd.Item{GroupID: "fast", SessionID: "fast-2", EnqueuedAt: h.ago(5 * time.Second)})
	h.want("weight 5: slow", h.release("a1", 1), x("slow", "slow-1", "a1"))
	h.want("then fast", h.release("a1", 1), x("fast", "fast-2", "a1"))

	// Weighting the fast group back up to 3 (1.5) beats slow's 1.0 again.
	h.configure(acd.Group{ID: "fast", SLThreshold: 10 * time.Second, Weight: 3})
	h.enq(acd.Item{GroupID: "slow", SessionID: "slow-2", EnqueuedAt: h.ago(60 * time.Second)})
	h.enq(acd.Item{GroupID: "fast", SessionID: "fast-3", EnqueuedAt: h.ago(5 * time.Second)})
	h.want("fast weight 3: fast", h.release("a1", 1), x("fast", "fast-3", "a1"))
	h.want("then slow", h.release("a1", 1), x("slow", "slow-2", "a1"))
}
