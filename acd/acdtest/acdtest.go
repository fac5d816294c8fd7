// Package acdtest is the conformance suite of acd.Queue: the behaviour every
// implementation must show, written once and run against each of them (the
// Redis one on a real server and on the embedded miniredis, batched and
// unbatched), so that routing cannot differ between production and the
// embedded default.
//
// Every call the suite makes goes through a harness that keeps its own
// model of the routing state (harness.go): which sessions wait where, what
// each agent holds and may hold. Each assignment any call returns is
// checked against that model (the session was waiting in that group, the
// agent serves it, is ready and has room, cost and Waited are right), and
// when a test ends the model is compared with what the queue reports. A
// test therefore cannot ignore an assignment an Enqueue, AgentReady or
// Release made: a session the queue handed out and the test never saw
// shows up as missing from the queue.
package acdtest

import (
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/internal/clock"
)

// Factory returns a queue with no routing state (a fresh key prefix, say)
// that reads the time from clk, and releases it when t ends. It is called
// once per subtest.
type Factory func(t *testing.T, clk clock.Clock) acd.Queue

// start is where every subtest's simulated clock begins: a whole minute, so
// that rate windows are predictable.
var start = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

// Run runs the suite. Subtests run in parallel, each on a queue and a
// simulated clock of its own.
func Run(t *testing.T, newQueue Factory) {
	tests := []struct {
		name string
		fn   func(h *harness)
	}{
		// Order of sessions within a group (order.go).
		{"FIFOOrder", testFIFOOrder},
		{"EnqueueResult", testEnqueueResult},
		{"EnqueueIdempotent", testEnqueueIdempotent},
		{"PriorityJumpsQueue", testPriorityJumpsQueue},
		{"PriorityAges", testPriorityAges},
		{"Remove", testRemove},
		{"PositionAndLength", testPositionAndLength},
		{"WaitingInServiceOrder", testWaitingInServiceOrder},
		{"WaitedOnSimulatedClock", testWaited},
		{"RequeueWithOriginalTimeGoesToHead", testRequeue},
		{"FlowControl", testFlowControl},

		// Capacity, cost and agent state (capacity.go).
		{"AgentReadyTakesWaiting", testAgentReadyTakesWaiting},
		{"MatchRespectsCapacity", testMatchRespectsCapacity},
		{"ReleaseFreesCostAndMatches", testReleaseFreesCost},
		{"ReleaseAtZeroIsNoop", testReleaseAtZeroIsNoop},
		{"CostSkipsLargeOnRelease", testCostSkipsLargeOnRelease},
		{"CostSkipsLargeOnEnqueue", testCostSkipsLargeOnEnqueue},
		{"CostFindsRoomBeyondPartlyBusyAgents", testCostBeyondPartlyBusy},
		{"ClaimChecksReadinessAndCost", testClaim},
		{"NotReadyGetsNothing", testNotReadyGetsNothing},
		{"NotReadyKeepsLoad", testNotReadyKeepsLoad},
		{"AgentReadyAtCapacity", testAgentReadyAtCapacity},
		{"AgentReadyChangesGroups", testAgentReadyChangesGroups},
		{"MissedOffers", testMissed},
		{"AgentLoadAndSetLoad", testAgentLoadAndSetLoad},
		{"SetLoadLosesNoSession", testSetLoadLosesNoSession},

		// Choice across an agent's groups (crossgroup.go).
		{"OldestAcrossGroups", testOldestAcrossGroups},
		{"PriorityAcrossGroups", testPriorityAcrossGroups},
		{"SLThresholdAcrossGroups", testSLThresholdAcrossGroups},
		{"WeightAcrossGroups", testWeightAcrossGroups},

		// Agent choice within a group (strategies.go).
		{"LongestIdleFirstAndRotates", testLongestIdle},
		{"RoundRobinFixedRotation", testRoundRobin},
		{"RoundRobinRotatesWhenAgentsFill", testRoundRobinFull},
		{"LeastBusy", testLeastBusy},
		{"WeightedShares", testWeightedShares},
		{"WeightedRejoinNoBurst", testWeightedRejoin},
		{"WeightedSharesWhenAgentsFill", testWeightedFull},
		{"StickyPreferredAgentAtOnce", testStickyAtOnce},
		{"StickyHoldsForBusyAgent", testStickyHolds},
		{"StickyHoldsForNotReadyAgent", testStickyNotReady},
		{"StickyHoldExpires", testStickyExpires},
		{"StickyFallbackStrategy", testStickyFallback},
		{"StickyIgnoredByOtherStrategies", testStickyIgnored},
		{"StickyHeldSessionsDoNotBlockOthers", testStickyManyHeld},
		{"SkillsRingWidens", testSkillsRing},
		{"SkillsBestProficiencyFirst", testSkillsOrder},
		{"SkillsReleaseRespectsRing", testSkillsRelease},
		{"SkillsMissingProficiencyIsThree", testSkillsDefault},
		{"SkillsPriorityDoesNotHideRing", testSkillsPriority},
		{"EnqueueAssignsOtherSessions", testEnqueueAssignsOthers},
		{"MatchGroupLimit", testMatchGroupLimit},
		{"ConfigureSwitchesStrategy", testConfigureSwitch},
		{"ConfigureRefusesUnknownStrategy", testConfigureInvalid},

		// Live state and administration (admin.go).
		{"Stats", testStats},
		{"StatsOldestBehindPriority", testStatsOldest},
		{"TenantsIsolated", testTenantsIsolated},
		{"BuiltAndReset", testBuiltAndReset},
		{"InvalidIDs", testInvalidIDs},

		// Many callers at once (concurrent.go).
		{"Concurrent", testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(start)
			h := newHarness(t, newQueue(t, clk), clk)
			tt.fn(h)
			h.audit()
		})
	}
}
