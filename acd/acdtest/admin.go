package acdtest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

func (h *harness) stats(groups ...string) []acd.GroupStats {
	h.t.Helper()
	st, err := h.q.Stats(h.ctx(), h.tenant, groups)
	h.ok(err)
	return st
}

var ignoreRate = cmpopts.IgnoreFields(acd.GroupStats{}, "ServiceRate")

func testStats(h *harness) {
	t0 := h.now()
	h.ready(acd.Agent{ID: "full", Groups: []string{"g"}, MaxSessions: 1, Load: 1})
	h.ready(acd.Agent{ID: "away", Groups: []string{"g", "h"}, MaxSessions: 1})
	h.notReady("away")
	h.ready(acd.Agent{ID: "gone", Groups: []string{"g"}, MaxSessions: 1})
	h.offline("gone")
	h.enq(acd.Item{GroupID: "g", SessionID: "s-old", EnqueuedAt: t0.Add(-30 * time.Second)})
	h.enq(acd.Item{GroupID: "g", SessionID: "s-new", EnqueuedAt: t0.Add(-10 * time.Second)})
	// The longest wait is the oldest session's, not the head's.
	h.enq(acd.Item{GroupID: "g", SessionID: "vip", Priority: 1})
	h.clk.Advance(15 * time.Second)

	got := h.stats("g", "h")
	want := []acd.GroupStats{
		{GroupID: "g", Waiting: 3, OldestSince: t0.Add(-30 * time.Second), LongestWait: 45 * time.Second, Online: 2, Available: 0},
		{GroupID: "h", Online: 1},
	}
	if diff := cmp.Diff(want, got, ignoreRate); diff != "" {
		h.t.Errorf("Stats (-want +got):\n%s", diff)
	}
	for _, s := range got {
		if s.ServiceRate != 0 {
			h.t.Errorf("Stats(%s).ServiceRate = %v before any assignment", s.GroupID, s.ServiceRate)
		}
		if _, ok := s.ExpectedWait(1); ok {
			h.t.Errorf("Stats(%s).ExpectedWait(1) has an estimate before any assignment", s.GroupID)
		}
	}

	h.want("AgentReady a1", h.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 2}),
		x("g", "vip", "a1"), x("g", "s-old", "a1"))
	h.want("AgentReady a2", h.ready(acd.Agent{ID: "a2", Groups: []string{"g"}, MaxSessions: 1}),
		x("g", "s-new", "a2"))
	h.enq(acd.Item{GroupID: "g", SessionID: "s-later", EnqueuedAt: t0})
	h.offline("a2")
	h.clk.Advance(5 * time.Second)
	got = h.stats("g")
	want = []acd.GroupStats{{GroupID: "g", Waiting: 1, OldestSince: t0, LongestWait: 20 * time.Second, Online: 3, Available: 0}}
	if diff := cmp.Diff(want, got, ignoreRate); diff != "" {
		h.t.Errorf("Stats after assignments (-want +got):\n%s", diff)
	}
	// Three assignments within the last minute: a positive rate, at most
	// three per minute, and an estimate.
	if r := got[0].ServiceRate; r <= 0 || r > 3.0/60 {
		h.t.Errorf("ServiceRate = %v after 3 assignments in 20s, want in (0, 0.05]", r)
	}
	if w, ok := got[0].ExpectedWait(2); !ok || w <= 0 {
		h.t.Errorf("ExpectedWait(2) = %v, %v; want a positive estimate", w, ok)
	}
	// Ten minutes later the assignments no longer count.
	h.clk.Advance(10 * time.Minute)
	if r := h.stats("g")[0].ServiceRate; r != 0 {
		h.t.Errorf("ServiceRate = %v ten minutes after the last assignment, want 0", r)
	}

	h.ready(acd.Agent{ID: "a2", Groups: []string{"g"}, MaxSessions: 5, Load: 1})
	got = h.stats("g")
	if got[0].Waiting != 0 || !got[0].OldestSince.IsZero() || got[0].LongestWait != 0 || got[0].Available != 1 || got[0].Online != 4 {
		h.t.Errorf("Stats with an empty queue = %+v", got[0])
	}
	if st := h.stats(); len(st) != 0 {
		h.t.Errorf("Stats() = %+v, want none", st)
	}
}

// testStatsOldestBehindPriority: the longest wait is found wherever the
// oldest session stands in the queue, also behind many priority ones.
func testStatsOldest(h *harness) {
	h.enq(acd.Item{GroupID: "g", SessionID: "old", EnqueuedAt: h.ago(50 * time.Second)})
	for _, id := range ids("vip", 40) {
		h.enq(acd.Item{GroupID: "g", SessionID: id, Priority: 1})
	}
	st := h.stats("g")[0]
	if st.Waiting != 41 || !st.OldestSince.Equal(h.ago(50*time.Second)) || st.LongestWait != 50*time.Second {
		h.t.Errorf("Stats = %+v, want 41 waiting, the oldest for 50s", st)
	}
}

func testTenantsIsolated(h *harness) {
	ha, hb := h.in("ta"), h.in("tb")
	// Same group, session and agent ids in two tenants.
	ha.enq(acd.Item{GroupID: "g", SessionID: "s1", EnqueuedAt: h.ago(time.Minute)})
	hb.enq(acd.Item{GroupID: "g", SessionID: "s1", EnqueuedAt: h.ago(time.Minute)})
	hb.enq(acd.Item{GroupID: "g", SessionID: "s2"})
	ha.wantLength("g", 1)
	hb.wantLength("g", 2)

	ha.want("tenant a", ha.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 5}), x("g", "s1", "a1"))
	hb.wantLength("g", 2)
	// Tenant b's agent with the same id has no state yet.
	hb.wantNone("tenant b's a1", hb.matchAgent("a1"))
	hb.notReady("a1")
	if l := hb.agentLoad("a1"); l.Known {
		hb.t.Errorf("tenant b's a1 = %+v, want unknown", l)
	}
	ha.want("tenant a's agent is still ready", ha.enq(acd.Item{GroupID: "g", SessionID: "s3"}).Assignments, x("g", "s3", "a1"))
	hb.want("tenant b", hb.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 1}), x("g", "s1", "a1"))
	if st := ha.stats("g"); st[0].Online != 1 || st[0].Available != 1 || st[0].Waiting != 0 {
		ha.t.Errorf("tenant a stats = %+v", st[0])
	}
	if st := hb.stats("g"); st[0].Online != 1 || st[0].Available != 0 || st[0].Waiting != 1 {
		hb.t.Errorf("tenant b stats = %+v", st[0])
	}
}

func testBuiltAndReset(h *harness) {
	built := func(tenant string) bool {
		h.t.Helper()
		b, err := h.q.Built(h.ctx(), tenant)
		h.ok(err)
		return b
	}
	ha, hb := h.in("ta"), h.in("tb")
	if built("ta") {
		h.t.Error("Built before MarkBuilt")
	}
	h.ok(h.q.MarkBuilt(h.ctx(), "ta"))
	h.ok(h.q.MarkBuilt(h.ctx(), "tb"))
	if !built("ta") || !built("tb") {
		h.t.Error("not Built after MarkBuilt")
	}
	for _, ht := range []*harness{ha, hb} {
		ht.configure(acd.Group{ID: "g", Strategy: acd.RoundRobin, MaxQueue: 2})
		ht.enq(acd.Item{GroupID: "g", SessionID: "s1", EnqueuedAt: h.ago(time.Minute)})
		ht.enq(acd.Item{GroupID: "g", SessionID: "s2"})
		ht.ready(acd.Agent{ID: "a1", Groups: []string{"g"}, MaxSessions: 1, Load: 1})
	}
	ha.reset()
	if built("ta") || !built("tb") {
		h.t.Errorf("after Reset(ta): Built(ta) = %v, Built(tb) = %v; want false, true", built("ta"), built("tb"))
	}
	ha.wantLength("g", 0)
	hb.wantLength("g", 2)
	if l := ha.agentLoad("a1"); l.Known {
		h.t.Errorf("after Reset, AgentLoad(a1) = %+v, want unknown", l)
	}
	// Tenant a's agent state is gone: a release gives nothing back. An
	// implementation may report the unknown agent.
	as, _ := h.q.Release(h.ctx(), "ta", "a1", 1)
	ha.record("Release after Reset", as)
	ha.wantNone("Release after Reset", as)
	// Its configuration is gone too: no cap of 2 any more.
	for _, id := range ids("n", 3) {
		ha.enq(acd.Item{GroupID: "g", SessionID: id})
	}
	ha.wantLength("g", 3)
	ha.wantNone("MatchGroup after Reset", ha.matchGroup("g", 10))
	// Tenant b is untouched: its agent is still at 1 of 1, its cap still 2.
	if e := hb.enq(acd.Item{GroupID: "g", SessionID: "s3"}); !e.Full {
		h.t.Errorf("tenant b's cap is gone: %+v", e)
	}
	hb.want("tenant b", hb.release("a1", 1), x("g", "s1", "a1"))
}

// testInvalidIDs: ids the key layout and the scripts' separators cannot
// carry are refused with errs.Invalid by every method, before anything is
// stored.
func testInvalidIDs(h *harness) {
	ctx, q := h.ctx(), h.q
	const tn = "t1"
	badIDs := []string{"a:own", "a,b", "a|b", "a{b", "a}b", "a\tb", ""}
	badTenants := []string{"t{x", "t}x", ""}
	cases := []struct {
		name string
		bad  []string
		call func(id string) error
	}{
		{"Configure/group", badIDs, func(id string) error { return q.Configure(ctx, acd.Group{TenantID: tn, ID: id}) }},
		{"Configure/tenant", badTenants, func(id string) error { return q.Configure(ctx, acd.Group{TenantID: id, ID: "g"}) }},
		{"Enqueue/group", badIDs, func(id string) error {
			_, err := q.Enqueue(ctx, acd.Item{TenantID: tn, GroupID: id, SessionID: "s"})
			return err
		}},
		{"Enqueue/session", badIDs, func(id string) error {
			_, err := q.Enqueue(ctx, acd.Item{TenantID: tn, GroupID: "g", SessionID: id})
			return err
		}},
		{"Enqueue/preferred_agent", badIDs[:len(badIDs)-1], func(id string) error {
			_, err := q.Enqueue(ctx, acd.Item{TenantID: tn, GroupID: "g", SessionID: "s", PreferredAgent: id})
			return err
		}},
		{"Enqueue/tenant", badTenants, func(id string) error {
			_, err := q.Enqueue(ctx, acd.Item{TenantID: id, GroupID: "g", SessionID: "s"})
			return err
		}},
		{"Remove/group", badIDs, func(id string) error { _, err := q.Remove(ctx, tn, id, "s"); return err }},
		{"Remove/session", badIDs, func(id string) error { _, err := q.Remove(ctx, tn, "g", id); return err }},
		{"Position/session", badIDs, func(id string) error { _, _, err := q.Position(ctx, tn, "g", id); return err }},
		{"Length/group", badIDs, func(id string) error { _, err := q.Length(ctx, tn, id); return err }},
		{"Waiting/group", badIDs, func(id string) error { _, err := q.Waiting(ctx, tn, id, 10); return err }},
		{"AgentReady/agent", badIDs, func(id string) error {
			_, err := q.AgentReady(ctx, acd.Agent{TenantID: tn, ID: id, Groups: []string{"g"}, MaxSessions: 1})
			return err
		}},
		{"AgentReady/group", badIDs, func(id string) error {
			_, err := q.AgentReady(ctx, acd.Agent{TenantID: tn, ID: "a", Groups: []string{"g", id}, MaxSessions: 1})
			return err
		}},
		{"AgentReady/tenant", badTenants, func(id string) error {
			_, err := q.AgentReady(ctx, acd.Agent{TenantID: id, ID: "a", Groups: []string{"g"}, MaxSessions: 1})
			return err
		}},
		{"AgentNotReady/agent", badIDs, func(id string) error { return q.AgentNotReady(ctx, tn, id) }},
		{"AgentOffline/agent", badIDs, func(id string) error { return q.AgentOffline(ctx, tn, id) }},
		{"Release/agent", badIDs, func(id string) error { _, err := q.Release(ctx, tn, id, 1); return err }},
		{"Claim/agent", badIDs, func(id string) error { _, err := q.Claim(ctx, tn, id, 1); return err }},
		{"Missed/agent", badIDs, func(id string) error { _, _, err := q.Missed(ctx, tn, id, 3); return err }},
		{"Accepted/agent", badIDs, func(id string) error { return q.Accepted(ctx, tn, id) }},
		{"AgentLoad/agent", badIDs, func(id string) error { _, err := q.AgentLoad(ctx, tn, id); return err }},
		{"SetLoad/agent", badIDs, func(id string) error { return q.SetLoad(ctx, tn, id, 1) }},
		{"MatchGroup/group", badIDs, func(id string) error { _, err := q.MatchGroup(ctx, tn, id, 1); return err }},
		{"MatchAgent/agent", badIDs, func(id string) error { _, err := q.MatchAgent(ctx, tn, id); return err }},
		{"Stats/group", badIDs, func(id string) error { _, err := q.Stats(ctx, tn, []string{"g", id}); return err }},
		{"Stats/tenant", badTenants, func(id string) error { _, err := q.Stats(ctx, id, []string{"g"}); return err }},
		{"Built/tenant", badTenants, func(id string) error { _, err := q.Built(ctx, id); return err }},
		{"MarkBuilt/tenant", badTenants, func(id string) error { return q.MarkBuilt(ctx, id) }},
		{"Reset/tenant", badTenants, func(id string) error { return q.Reset(ctx, id) }},
	}
	// State the refused calls must leave alone; an id with ':' could
	// otherwise name another key ("a:own" is an agent's sticky set).
	h.configure(acd.Group{ID: "g", Strategy: acd.Sticky, StickyWait: time.Hour})
	h.ready(acd.Agent{ID: "a", Groups: []string{"g"}, MaxSessions: 1, Load: 1})
	h.enq(acd.Item{GroupID: "g", SessionID: "s", PreferredAgent: "a"})
	for _, c := range cases {
		h.t.Run(c.name, func(t *testing.T) {
			for _, id := range c.bad {
				if err := c.call(id); !errs.Is(err, errs.Invalid) {
					t.Errorf("id %q: err = %v, want code %s", id, err, errs.Invalid)
				}
			}
		})
	}
}
