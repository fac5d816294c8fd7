package acdtest

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// oneByOne enqueues sessions prefix0.. into group one at a time, advancing
// the clock by step before each, and returns who got each one (every
// enqueue must assign its own session at once).
func (h *harness) oneByOne(group, prefix string, n int, step time.Duration) []string {
	h.t.Helper()
	var out []string
	for _, id := range ids(prefix, n) {
		h.clk.Advance(step)
		as := h.enq(acd.Item{GroupID: group, SessionID: id}).Assignments
		if len(as) != 1 || as[0].SessionID != id {
			h.t.Fatalf("Enqueue %s: assignments %+v, want it assigned at once", id, as)
		}
		out = append(out, as[0].AgentID)
	}
	return out
}

func (h *harness) wantAgents(what string, got []string, want ...string) {
	h.t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		h.t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

func testLongestIdle(h *harness) {
	// Made ready in an order that differs from their idle times, and with
	// ids that sort differently, so only IdleSince can explain the order.
	h.ready(acd.Agent{ID: "a-mid", Groups: []string{"g"}, MaxSessions: 5, IdleSince: h.ago(2 * time.Minute)})
	h.ready(acd.Agent{ID: "z-longest", Groups: []string{"g"}, MaxSessions: 5, IdleSince: h.ago(3 * time.Minute)})
	h.ready(acd.Agent{ID: "b-shortest", Groups: []string{"g"}, MaxSessions: 5, IdleSince: h.ago(1 * time.Minute)})
	// Each assignment makes the agent the most recently busy, so the agents
	// take turns; the simulated clock does not move, so only the move to
	// the tail explains it.
	h.wantAgents("rotation", h.oneByOne("g", "s", 9, 0),
		"z-longest", "a-mid", "b-shortest", "z-longest", "a-mid", "b-shortest", "z-longest", "a-mid", "b-shortest")
	// A release keeps the agent's place.
	h.release("z-longest", 1)
	// An agent idle since before everyone's last assignment goes first.
	h.ready(acd.Agent{ID: "new", Groups: []string{"g"}, MaxSessions: 5, IdleSince: h.ago(time.Hour)})
	h.wantAgents("newly ready", h.oneByOne("g", "t", 4, time.Second), "new", "z-longest", "a-mid", "b-shortest")
}

// testRoundRobin: a fixed rotation in join order, whatever the idle times;
// the group remembers whose turn it is; an agent who cannot take the
// session is skipped and the rotation continues after the one who took it.
func testRoundRobin(h *harness) {
	h.configure(acd.Group{ID: "g", Strategy: acd.RoundRobin})
	h.ready(acd.Agent{ID: "zed", Groups: []string{"g"}, MaxSessions: 10, IdleSince: h.ago(time.Minute)})
	h.ready(acd.Agent{ID: "amy", Groups: []string{"g"}, MaxSessions: 10, IdleSince: h.ago(time.Hour)})
	h.ready(acd.Agent{ID: "kim", Groups: []string{"g"}, MaxSessions: 10, IdleSince: h.ago(2 * time.Hour)})
	h.wantAgents("rotation", h.oneByOne("g", "a", 6, time.Second), "zed", "amy", "kim", "zed", "amy", "kim")

	h.notReady("amy")
	h.wantAgents("amy not ready", h.oneByOne("g", "b", 3, time.Second), "zed", "kim", "zed")
	h.ready(acd.Agent{ID: "amy", Groups: []string{"g"}, MaxSessions: 10, Load: 2})
	h.wantAgents("amy back: her turn after zed", h.oneByOne("g", "c", 2, time.Second), "amy", "kim")

	// A newcomer joins the end of the rotation.
	h.ready(acd.Agent{ID: "bob", Groups: []string{"g"}, MaxSessions: 10})
	h.wantAgents("bob joins", h.oneByOne("g", "d", 2, time.Second), "bob", "zed")

	// amy's turn, but one unit left: a cost-2 session skips her, and the
	// rotation goes on after kim, who took it.
	h.ready(acd.Agent{ID: "amy", Groups: []string{"g"}, MaxSessions: 4, Load: 3})
	h.want("cost 2", h.enq(acd.Item{GroupID: "g", SessionID: "big", Cost: 2}).Assignments, xc("g", "big", "kim", 2))
	h.wantAgents("after the skip", h.oneByOne("g", "e", 3, time.Second), "bob", "zed", "amy")
}

// testRoundRobinFull: the rotation must move on when the agent who got the
// session is full afterwards (one session at a time, the usual voice
// setting), or the first agent in join order gets every session.
func testRoundRobinFull(h *harness) {
	h.configure(acd.Group{ID: "g", Strategy: acd.RoundRobin})
	for _, id := range []string{"zed", "amy", "kim"} {
		h.ready(acd.Agent{ID: id, Groups: []string{"g"}, MaxSessions: 1})
	}
	var got []string
	for _, id := range ids("s", 6) {
		h.clk.Advance(time.Second)
		as := h.enq(acd.Item{GroupID: "g", SessionID: id}).Assignments
		if len(as) != 1 {
			h.t.Fatalf("Enqueue %s: %+v, want it assigned at once", id, as)
		}
		got = append(got, as[0].AgentID)
		h.release(as[0].AgentID, 1) // the session ends before the next arrives
	}
	h.wantAgents("rotation with MaxSessions 1", got, "zed", "amy", "kim", "zed", "amy", "kim")
}

// testLeastBusy: the fewest sessions first, then the longest idle.
func testLeastBusy(h *harness) {
	h.configure(acd.Group{ID: "g", Strategy: acd.LeastBusy})
	h.ready(acd.Agent{ID: "a", Groups: []string{"g"}, MaxSessions: 5, Load: 2, IdleSince: h.ago(5 * time.Minute)})
	h.ready(acd.Agent{ID: "b", Groups: []string{"g"}, MaxSessions: 5, IdleSince: h.ago(10 * time.Second)})
	h.ready(acd.Agent{ID: "c", Groups: []string{"g"}, MaxSessions: 5, IdleSince: h.ago(100 * time.Second)})
	h.wantAgents("least busy", h.oneByOne("g", "s", 6, time.Second), "c", "b", "c", "b", "a", "c")
	// Loads a 3, b 2, c 3: a release makes a the least busy.
	h.release("a", 2)
	h.wantAgents("after release", h.oneByOne("g", "t", 2, time.Second), "a", "b")
}

// shareDeviation is the worst |observed share - target share| of any agent
// over every prefix and every window of at least minWindow consecutive
// assignments of seq.
func shareDeviation(seq []string, target map[string]float64, minWindow int) (prefix, window float64) {
	agents := slices.Sorted(maps.Keys(target))
	// cum[a][i] = assignments to agent a among seq[:i].
	cum := make([][]int, len(agents))
	for k, a := range agents {
		cum[k] = make([]int, len(seq)+1)
		for i, s := range seq {
			cum[k][i+1] = cum[k][i]
			if s == a {
				cum[k][i+1]++
			}
		}
	}
	for k, a := range agents {
		for i := 0; i <= len(seq); i++ {
			for j := i + minWindow; j <= len(seq); j++ {
				d := math.Abs(float64(cum[k][j]-cum[k][i])/float64(j-i) - target[a])
				window = max(window, d)
				if i == 0 {
					prefix = max(prefix, d)
				}
			}
		}
	}
	return prefix, window
}

// testWeightedShares measures how closely the weighted strategy keeps to
// the agents' shares, with every agent always able to take more.
//
// The bound: stride scheduling gives the agent with the lowest pass the
// next session and advances its pass by its stride s_i = S/w_i. Passes
// start equal, the lowest pass m never decreases, and an agent's pass only
// grows when it is the lowest, so after every assignment each pass lies in
// [m, m+s_i]: agent i has had between m/s_i and m/s_i + 1 sessions. Writing
// count_i = m/s_i + e_i with e_i in [0, 1], the lag count_i - n·share_i
// equals e_i - share_i·Σe_j, which lies in [-(k-1)·share_i, 1-share_i] for
// k agents. Over a window (the difference of two prefixes) the error in
// count is at most the width of that range, 1 + (k-2)·share_i, and over a
// prefix at most max(1-share_i, (k-1)·share_i). With k = 3 and shares
// 0.6/0.3/0.1 that is 1.6 and 1.2 sessions, so the share deviation over
// windows of at least 10 is at most 0.16, over prefixes of at least 10 at
// most 0.12, and over windows of at least 100 at most 0.016.
func testWeightedShares(h *harness) {
	const n = 500
	h.configure(acd.Group{ID: "g", Strategy: acd.Weighted})
	target := map[string]float64{"w60": 0.6, "w30": 0.3, "w10": 0.1}
	for id, share := range target {
		h.ready(acd.Agent{ID: id, Groups: []string{"g"}, MaxSessions: n, Weight: map[string]int{"g": int(share * 100)}})
	}
	seq := h.oneByOne("g", "s", n, 0)

	counts := map[string]int{}
	for _, a := range seq {
		counts[a]++
	}
	prefix, window := shareDeviation(seq, target, 10)
	_, window100 := shareDeviation(seq, target, 100)
	h.t.Logf("weighted 60/30/10, %d assignments: counts %v; worst share deviation %.4f over prefixes of ≥10, %.4f over windows of ≥10, %.4f over windows of ≥100",
		n, counts, prefix, window, window100)
	if prefix > 0.12+1e-9 || window > 0.16+1e-9 || window100 > 0.016+1e-9 {
		h.t.Errorf("share deviation %.4f (prefixes ≥10, bound 0.12), %.4f (windows ≥10, bound 0.16), %.4f (windows ≥100, bound 0.016)",
			prefix, window, window100)
	}
	for id, share := range target {
		if d := math.Abs(float64(counts[id]) - share*n); d > 1.2+1e-9 {
			h.t.Errorf("%s got %d of %d, target %.0f", id, counts[id], n, share*n)
		}
	}
}

// testWeightedRejoin: an agent back from a break starts at the group's
// current pass instead of being paid the time away in a burst.
func testWeightedRejoin(h *harness) {
	h.configure(acd.Group{ID: "g", Strategy: acd.Weighted})
	for _, id := range []string{"a", "b"} {
		h.ready(acd.Agent{ID: id, Groups: []string{"g"}, MaxSessions: 100}) // weight 1 by default
	}
	count := func(seq []string, id string) int {
		return len(slices.DeleteFunc(slices.Clone(seq), func(s string) bool { return s != id }))
	}
	if got := count(h.oneByOne("g", "s", 10, 0), "a"); got != 5 {
		h.t.Errorf("equal weights: a got %d of 10", got)
	}
	h.notReady("a")
	if got := count(h.oneByOne("g", "t", 10, 0), "b"); got != 10 {
		h.t.Errorf("a away: b got %d of 10", got)
	}
	h.ready(acd.Agent{ID: "a", Groups: []string{"g"}, MaxSessions: 100, Load: 5})
	if got := count(h.oneByOne("g", "u", 10, 0), "a"); got < 4 || got > 6 {
		h.t.Errorf("a back: a got %d of the next 10, want about half", got)
	}
}

// testWeightedFull: each assignment advances the agent's pass, including
// the one that fills the agent; otherwise agents with one session at a
// time never advance and the first free one in id order gets everything.
func testWeightedFull(h *harness) {
	h.configure(acd.Group{ID: "g", Strategy: acd.Weighted})
	for _, id := range []string{"a", "b"} {
		h.ready(acd.Agent{ID: id, Groups: []string{"g"}, MaxSessions: 1})
	}
	counts := map[string]int{}
	for _, id := range ids("s", 20) {
		as := h.enq(acd.Item{GroupID: "g", SessionID: id}).Assignments
		if len(as) != 1 {
			h.t.Fatalf("Enqueue %s: %+v, want it assigned at once", id, as)
		}
		counts[as[0].AgentID]++
		h.release(as[0].AgentID, 1)
	}
	if counts["a"] < 8 || counts["b"] < 8 {
		h.t.Errorf("equal weights, MaxSessions 1: %v of 20, want about 10 each", counts)
	}
}

func stickyGroup(fallback acd.Strategy) acd.Group {
	return acd.Group{ID: "g", Strategy: acd.Sticky, StickyWait: 30 * time.Second, Fallback: fallback}
}

// testStickyAtOnce: the preferred agent gets the session when they can take
// it, whoever is idle longer; sessions without a preference use the
// fallback.
func testStickyAtOnce(h *harness) {
	h.configure(stickyGroup(acd.LongestIdle))
	h.ready(acd.Agent{ID: "other", Groups: []string{"g"}, MaxSessions: 2, IdleSince: h.ago(time.Hour)})
	h.ready(acd.Agent{ID: "pref", Groups: []string{"g"}, MaxSessions: 2})
	h.want("preferred", h.enq(acd.Item{GroupID: "g", SessionID: "s1", PreferredAgent: "pref"}).Assignments, x("g", "s1", "pref"))
	h.want("no preference", h.enq(acd.Item{GroupID: "g", SessionID: "s2"}).Assignments, x("g", "s2", "other"))
	h.want("other preferred", h.enq(acd.Item{GroupID: "g", SessionID: "s3", PreferredAgent: "other"}).Assignments, x("g", "s3", "other"))
}

// testStickyHolds: while the preferred agent is full the session waits for
// them only; everyone else passes over it, and they get it on release.
func testStickyHolds(h *harness) {
	h.configure(stickyGroup(acd.LongestIdle))
	h.ready(acd.Agent{ID: "pref", Groups: []string{"g"}, MaxSessions: 1, Load: 1})
	h.ready(acd.Agent{ID: "other", Groups: []string{"g"}, MaxSessions: 2, IdleSince: h.ago(time.Hour)})
	e := h.enq(acd.Item{GroupID: "g", SessionID: "held", PreferredAgent: "pref"})
	if len(e.Assignments) != 0 || e.Position != 1 {
		h.t.Errorf("Enqueue held = %+v, want waiting at 1", e)
	}
	h.wantNone("MatchGroup", h.matchGroup("g", 10))
	h.wantNone("MatchAgent other", h.matchAgent("other"))
	h.want("a later session skips the held one", h.enq(acd.Item{GroupID: "g", SessionID: "free"}).Assignments,
		x("g", "free", "other"))
	h.wantNone("Release other", h.release("other", 1))
	h.wantNone("AgentReady third", h.ready(acd.Agent{ID: "third", Groups: []string{"g"}, MaxSessions: 1}))
	h.clk.Advance(10 * time.Second)
	h.want("Release pref", h.release("pref", 1), x("g", "held", "pref"))
}

// testStickyNotReady: the hold stands for a preferred agent who is not
// ready, or not yet known to routing, and they get it when they become
// ready.
func testStickyNotReady(h *harness) {
	h.configure(stickyGroup(acd.LongestIdle))
	h.ready(acd.Agent{ID: "pref", Groups: []string{"g"}, MaxSessions: 1})
	h.notReady("pref")
	h.ready(acd.Agent{ID: "other", Groups: []string{"g"}, MaxSessions: 3})
	h.wantNone("held for pref", h.enq(acd.Item{GroupID: "g", SessionID: "s1", PreferredAgent: "pref"}).Assignments)
	h.wantNone("held for newbie", h.enq(acd.Item{GroupID: "g", SessionID: "s2", PreferredAgent: "newbie"}).Assignments)
	h.wantNone("MatchAgent other", h.matchAgent("other"))
	h.clk.Advance(5 * time.Second)
	h.want("pref ready", h.ready(acd.Agent{ID: "pref", Groups: []string{"g"}, MaxSessions: 1}), x("g", "s1", "pref"))
	h.want("newbie ready", h.ready(acd.Agent{ID: "newbie", Groups: []string{"g"}, MaxSessions: 1}), x("g", "s2", "newbie"))
}

// testStickyHoldExpires: after StickyWait the session goes to anyone by
// the fallback, through every kind of match.
func testStickyExpires(h *harness) {
	h.configure(stickyGroup(acd.LongestIdle))
	h.ready(acd.Agent{ID: "pref", Groups: []string{"g"}, MaxSessions: 1, Load: 1})
	h.ready(acd.Agent{ID: "other", Groups: []string{"g"}, MaxSessions: 3})
	h.enq(acd.Item{GroupID: "g", SessionID: "s1", PreferredAgent: "pref"})
	h.clk.Advance(30*time.Second - time.Millisecond)
	h.wantNone("MatchGroup just before expiry", h.matchGroup("g", 10))
	h.wantNone("MatchAgent just before expiry", h.matchAgent("other"))
	h.clk.Advance(time.Millisecond)
	h.want("MatchGroup at expiry", h.matchGroup("g", 10), x("g", "s1", "other"))

	// Through Release.
	h.enq(acd.Item{GroupID: "g", SessionID: "s2", PreferredAgent: "pref"})
	h.clk.Advance(30 * time.Second)
	h.want("Release after expiry", h.release("other", 1), x("g", "s2", "other"))

	// Through the match of a later enqueue, which serves the expired one
	// first.
	h.enq(acd.Item{GroupID: "g", SessionID: "s3", PreferredAgent: "pref"})
	h.clk.Advance(31 * time.Second)
	h.want("Enqueue after expiry", h.enq(acd.Item{GroupID: "g", SessionID: "s4"}).Assignments,
		x("g", "s3", "other"), x("g", "s4", "other"))

	// An expired hold does not stop the preferred agent from getting it
	// either, if they are the fallback's choice.
	h.enq(acd.Item{GroupID: "g", SessionID: "s5", PreferredAgent: "pref"})
	h.clk.Advance(time.Minute)
	h.want("Release pref after expiry", h.release("pref", 1), x("g", "s5", "pref"))
}

// testStickyFallback: sessions without a preference are routed by the
// group's fallback strategy.
func testStickyFallback(h *harness) {
	h.configure(stickyGroup(acd.RoundRobin))
	for i, id := range []string{"zed", "amy", "kim"} {
		h.ready(acd.Agent{ID: id, Groups: []string{"g"}, MaxSessions: 5, IdleSince: h.ago(time.Duration(i) * time.Hour)})
	}
	h.wantAgents("round robin fallback", h.oneByOne("g", "s", 4, time.Second), "zed", "amy", "kim", "zed")

	h.configure(acd.Group{ID: "lb", Strategy: acd.Sticky, StickyWait: time.Minute, Fallback: acd.LeastBusy})
	h.ready(acd.Agent{ID: "busy", Groups: []string{"lb"}, MaxSessions: 5, Load: 3, IdleSince: h.ago(time.Hour)})
	h.ready(acd.Agent{ID: "light", Groups: []string{"lb"}, MaxSessions: 5, Load: 1})
	h.wantAgents("least busy fallback", h.oneByOne("lb", "t", 3, time.Second), "light", "light", "busy")
}

// testStickyIgnored: only sticky groups hold sessions for an agent.
func testStickyIgnored(h *harness) {
	h.ready(acd.Agent{ID: "pref", Groups: []string{"g"}, MaxSessions: 1, Load: 1})
	h.ready(acd.Agent{ID: "other", Groups: []string{"g"}, MaxSessions: 1})
	h.want("longest idle group", h.enq(acd.Item{GroupID: "g", SessionID: "s1", PreferredAgent: "pref"}).Assignments,
		x("g", "s1", "other"))
}

// testStickyManyHeld: many sessions held for one busy agent must not hide
// a free session behind them from the other agents.
func testStickyManyHeld(h *harness) {
	h.configure(acd.Group{ID: "g", Strategy: acd.Sticky, StickyWait: 5 * time.Minute})
	h.ready(acd.Agent{ID: "star", Groups: []string{"g"}, MaxSessions: 1, Load: 1})
	for i, id := range ids("held", 20) {
		h.enq(acd.Item{GroupID: "g", SessionID: id, PreferredAgent: "star", EnqueuedAt: h.ago(time.Duration(60-i) * time.Second)})
	}
	h.enq(acd.Item{GroupID: "g", SessionID: "free"})
	got := h.ready(acd.Agent{ID: "other", Groups: []string{"g"}, MaxSessions: 1})
	got = append(got, h.matchGroup("g", 10)...)
	h.want("AgentReady other, then MatchGroup", got, x("g", "free", "other"))
}

func skillsGroup() acd.Group {
	return acd.Group{ID: "g", Strategy: acd.Skills, RingStep: 10 * time.Second}
}

func prof(p int) map[string]int { return map[string]int{"g": p} }

// testSkillsRing: at first only proficiency 5 qualifies; one level more
// every RingStep of waiting.
func testSkillsRing(h *harness) {
	h.configure(skillsGroup())
	h.ready(acd.Agent{ID: "expert", Groups: []string{"g"}, MaxSessions: 1, Load: 1, Proficiency: prof(5)})
	h.ready(acd.Agent{ID: "senior", Groups: []string{"g"}, MaxSessions: 1, Proficiency: prof(4)})
	h.ready(acd.Agent{ID: "junior", Groups: []string{"g"}, MaxSessions: 1, Proficiency: prof(2)})
	h.wantNone("Enqueue s1: only 5 qualifies", h.enq(acd.Item{GroupID: "g", SessionID: "s1"}).Assignments)
	h.clk.Advance(10*time.Second - time.Millisecond)
	h.wantNone("MatchGroup after 9.999s", h.matchGroup("g", 10))
	h.clk.Advance(time.Millisecond)
	h.want("MatchGroup after 10s: 4 qualifies", h.matchGroup("g", 10), x("g", "s1", "senior"))

	h.wantNone("Enqueue s2", h.enq(acd.Item{GroupID: "g", SessionID: "s2"}).Assignments)
	h.clk.Advance(20 * time.Second)
	h.wantNone("MatchGroup after 20s: 3 qualifies", h.matchGroup("g", 10))
	h.clk.Advance(10 * time.Second)
	h.want("MatchGroup after 30s: 2 qualifies", h.matchGroup("g", 10), x("g", "s2", "junior"))

	// The expert takes a fresh session as soon as they are free.
	h.enq(acd.Item{GroupID: "g", SessionID: "s3"})
	h.want("Release expert", h.release("expert", 1), x("g", "s3", "expert"))
}

// testSkillsOrder: among those who qualify, the highest proficiency first,
// then the longest idle.
func testSkillsOrder(h *harness) {
	h.configure(skillsGroup())
	h.ready(acd.Agent{ID: "c-long", Groups: []string{"g"}, MaxSessions: 1, Proficiency: prof(3), IdleSince: h.ago(3 * time.Hour)})
	h.ready(acd.Agent{ID: "a-recent", Groups: []string{"g"}, MaxSessions: 1, Proficiency: prof(5), IdleSince: h.ago(time.Minute)})
	h.ready(acd.Agent{ID: "b-older", Groups: []string{"g"}, MaxSessions: 1, Proficiency: prof(5), IdleSince: h.ago(2 * time.Hour)})
	h.ready(acd.Agent{ID: "d", Groups: []string{"g"}, MaxSessions: 1, Proficiency: prof(4), IdleSince: h.ago(4 * time.Hour)})
	var got []string
	for _, id := range ids("s", 4) {
		// Waited an hour: every ring is open.
		as := h.enq(acd.Item{GroupID: "g", SessionID: id, EnqueuedAt: h.ago(time.Hour)}).Assignments
		got = append(got, agentsOf(as)...)
	}
	h.wantAgents("proficiency, then idle", got, "b-older", "a-recent", "d", "c-long")
}

// testSkillsRelease: an agent's own match (Release, MatchAgent) respects
// the ring too.
func testSkillsRelease(h *harness) {
	h.configure(skillsGroup())
	h.ready(acd.Agent{ID: "junior", Groups: []string{"g"}, MaxSessions: 1, Load: 1, Proficiency: prof(3)})
	h.enq(acd.Item{GroupID: "g", SessionID: "s1"})
	h.wantNone("Release at 0s", h.release("junior", 1))
	h.clk.Advance(10 * time.Second)
	h.wantNone("MatchAgent at 10s", h.matchAgent("junior"))
	h.clk.Advance(10 * time.Second)
	h.want("MatchAgent at 20s", h.matchAgent("junior"), x("g", "s1", "junior"))
}

// testSkillsDefault: a missing proficiency is 3; out-of-range values are
// clamped to 1..5.
func testSkillsDefault(h *harness) {
	h.configure(skillsGroup())
	h.ready(acd.Agent{ID: "plain", Groups: []string{"g"}, MaxSessions: 1, Proficiency: map[string]int{"other": 5}})
	h.enq(acd.Item{GroupID: "g", SessionID: "s1"})
	h.clk.Advance(10 * time.Second)
	h.wantNone("at 10s", h.matchGroup("g", 10))
	h.clk.Advance(10 * time.Second)
	h.want("at 20s", h.matchGroup("g", 10), x("g", "s1", "plain"))

	h.ready(acd.Agent{ID: "over", Groups: []string{"g"}, MaxSessions: 1, Proficiency: prof(9)})
	h.want("proficiency 9 counts as 5", h.enq(acd.Item{GroupID: "g", SessionID: "s2"}).Assignments, x("g", "s2", "over"))
	h.ready(acd.Agent{ID: "under", Groups: []string{"g"}, MaxSessions: 1, Proficiency: prof(-3)})
	h.enq(acd.Item{GroupID: "g", SessionID: "s3"})
	h.clk.Advance(30 * time.Second)
	h.wantNone("proficiency -3 counts as 1: not at 30s", h.matchGroup("g", 10))
	h.clk.Advance(10 * time.Second)
	h.want("at 40s", h.matchGroup("g", 10), x("g", "s3", "under"))
}

// testSkillsPriorityBehindRing: a priority session at the head that no
// free agent qualifies for yet must not hide a longer-waiting session
// behind it that one does: the queue is in priority order, not in order
// of waiting, so the later session may need a wider ring.
func testSkillsPriority(h *harness) {
	h.configure(skillsGroup())
	h.ready(acd.Agent{ID: "junior", Groups: []string{"g"}, MaxSessions: 2, Load: 2, Proficiency: prof(3)})
	h.enq(acd.Item{GroupID: "g", SessionID: "normal-30s", EnqueuedAt: h.ago(30 * time.Second)})
	h.enq(acd.Item{GroupID: "g", SessionID: "vip-now", Priority: 1})
	h.wantWaiting("g", "vip-now", "normal-30s")
	// 30 s of waiting opens the ring to 2; the vip still needs 5.
	h.want("Release junior", h.release("junior", 1), x("g", "normal-30s", "junior"))
	h.wantNone("Release junior again: only the vip waits", h.release("junior", 1))
	h.want("Enqueue another 30 s session", h.enq(acd.Item{GroupID: "g", SessionID: "normal2-30s", EnqueuedAt: h.ago(30 * time.Second)}).Assignments,
		x("g", "normal2-30s", "junior"))
}

// testEnqueueAssignsOthers: the match after an enqueue serves the whole
// group, so it may assign sessions that waited before.
func testEnqueueAssignsOthers(h *harness) {
	h.configure(skillsGroup())
	h.ready(acd.Agent{ID: "junior", Groups: []string{"g"}, MaxSessions: 5, Proficiency: prof(3)})
	h.enq(acd.Item{GroupID: "g", SessionID: "s1"})
	h.clk.Advance(20 * time.Second)
	e := h.enq(acd.Item{GroupID: "g", SessionID: "s2"})
	h.want("Enqueue s2", e.Assignments, x("g", "s1", "junior"))
	if e.Position != 1 || e.Length != 1 {
		h.t.Errorf("s2 at %d of %d, want 1 of 1", e.Position, e.Length)
	}
}

func testMatchGroupLimit(h *harness) {
	h.configure(skillsGroup())
	h.ready(acd.Agent{ID: "junior", Groups: []string{"g"}, MaxSessions: 10, Proficiency: prof(3)})
	for i, id := range ids("s", 5) {
		h.enq(acd.Item{GroupID: "g", SessionID: id, EnqueuedAt: h.ago(time.Duration(5-i) * time.Millisecond)})
	}
	h.clk.Advance(20 * time.Second)
	h.want("limit 2", h.matchGroup("g", 2), x("g", "s0", "junior"), x("g", "s1", "junior"))
	h.wantNone("limit 0", h.matchGroup("g", 0))
	h.wantNone("limit -1", h.matchGroup("g", -1))
	h.wantLength("g", 3)
	h.want("limit 10", h.matchGroup("g", 10), x("g", "s2", "junior"), x("g", "s3", "junior"), x("g", "s4", "junior"))
}

// testConfigureSwitch: switching a group's strategy places its agents
// again under the new order; matching goes on working, ready agents with
// room stay available and the others stay out.
func testConfigureSwitch(h *harness) {
	for i, id := range []string{"a1", "a2", "a3"} {
		h.ready(acd.Agent{ID: id, Groups: []string{"g"}, MaxSessions: 10, IdleSince: h.ago(time.Duration(3-i) * time.Hour)})
	}
	h.ready(acd.Agent{ID: "away", Groups: []string{"g"}, MaxSessions: 10})
	h.notReady("away")
	h.ready(acd.Agent{ID: "full", Groups: []string{"g"}, MaxSessions: 1, Load: 1})
	for round, g := range []acd.Group{
		{ID: "g", Strategy: acd.RoundRobin},
		{ID: "g", Strategy: acd.LeastBusy},
		{ID: "g", Strategy: acd.Weighted},
		{ID: "g", Strategy: acd.Skills, RingStep: 10 * time.Second},
		{ID: "g", Strategy: acd.Sticky, Fallback: acd.RoundRobin},
		{ID: "g", Strategy: acd.LongestIdle},
		{ID: "g", Strategy: acd.Sticky, Fallback: acd.LongestIdle},
	} {
		h.configure(g)
		st, err := h.q.Stats(h.ctx(), h.tenant, []string{"g"})
		h.ok(err)
		if st[0].Available != 3 || st[0].Online != 5 {
			h.t.Errorf("after switching to %s/%s: %d available, %d online; want 3, 5", g.Strategy, g.Fallback, st[0].Available, st[0].Online)
		}
		var got []string
		for i := range 3 {
			h.clk.Advance(time.Second)
			id := fmt.Sprintf("r%d-%d", round, i)
			// Waited an hour, so that every skills ring is open.
			as := h.enq(acd.Item{GroupID: "g", SessionID: id, EnqueuedAt: h.ago(time.Hour)}).Assignments
			got = append(got, agentsOf(as)...)
		}
		slices.Sort(got)
		if diff := cmp.Diff([]string{"a1", "a2", "a3"}, got); diff != "" {
			h.t.Errorf("after switching to %s/%s, agents of three sessions (-want +got):\n%s", g.Strategy, g.Fallback, diff)
		}
	}
}

func testConfigureInvalid(h *harness) {
	for name, g := range map[string]acd.Group{
		"unknown strategy": {ID: "g", Strategy: "random"},
		"unknown fallback": {ID: "g", Strategy: acd.Sticky, Fallback: "bogus"},
		"negative step":    {ID: "g", PriorityStep: -time.Second},
	} {
		g.TenantID = h.tenant
		if err := h.q.Configure(h.ctx(), g); !errs.Is(err, errs.Invalid) {
			h.t.Errorf("%s: err = %v, want code %s", name, err, errs.Invalid)
		}
	}
	// A refused configuration changed nothing: the group routes with the
	// defaults (longest idle).
	h.ready(acd.Agent{ID: "recent", Groups: []string{"g"}, MaxSessions: 1})
	h.ready(acd.Agent{ID: "long", Groups: []string{"g"}, MaxSessions: 1, IdleSince: h.ago(time.Hour)})
	h.want("default strategy", h.enq(acd.Item{GroupID: "g", SessionID: "s1"}).Assignments, x("g", "s1", "long"))
}
