package acdtest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/internal/clock"
)

// harness calls a queue for one tenant and checks every result against a
// model of what the queue must hold. Its helpers fail the test on an error;
// a test that expects an error calls h.q itself.
type harness struct {
	t      *testing.T
	q      acd.Queue
	clk    *clock.Fake
	tenant string
	m      *model
}

func newHarness(t *testing.T, q acd.Queue, clk *clock.Fake) *harness {
	return &harness{t: t, q: q, clk: clk, tenant: "t1", m: newModel()}
}

// in returns a harness for another tenant on the same queue and model.
func (h *harness) in(tenant string) *harness {
	c := *h
	c.tenant = tenant
	return &c
}

func (h *harness) ctx() context.Context { return h.t.Context() }
func (h *harness) now() time.Time       { return h.clk.Now() }

// ago is a moment d before the simulated now.
func (h *harness) ago(d time.Duration) time.Time { return h.clk.Now().Add(-d) }

func (h *harness) ok(err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
}

// model is what the queue must hold, per tenant.
type model struct {
	sessions map[string]map[string]*msession // tenant -> session id
	agents   map[string]map[string]*magent   // tenant -> agent id
	groups   map[string]map[string]bool      // tenant -> every group used
}

type sessionState int

const (
	waiting sessionState = iota
	assigned
	removed
)

type msession struct {
	group string
	cost  int
	enq   time.Time // to the millisecond, as the queue keeps it
	state sessionState
	agent string
}

type magent struct {
	max, load, missed int
	ready             bool
	groups            map[string]bool
}

func newModel() *model {
	return &model{
		sessions: map[string]map[string]*msession{},
		agents:   map[string]map[string]*magent{},
		groups:   map[string]map[string]bool{},
	}
}

func (h *harness) sessions() map[string]*msession {
	if h.m.sessions[h.tenant] == nil {
		h.m.sessions[h.tenant] = map[string]*msession{}
	}
	return h.m.sessions[h.tenant]
}

func (h *harness) agents() map[string]*magent {
	if h.m.agents[h.tenant] == nil {
		h.m.agents[h.tenant] = map[string]*magent{}
	}
	return h.m.agents[h.tenant]
}

func (h *harness) useGroup(g string) {
	if h.m.groups[h.tenant] == nil {
		h.m.groups[h.tenant] = map[string]bool{}
	}
	h.m.groups[h.tenant][g] = true
}

func unitCost(c int) int {
	if c <= 0 {
		return 1
	}
	return c
}

// record checks assignments against the model and applies them: the
// session was waiting in that group, its cost and Waited are right, the
// agent serves the group, is ready and had room. what names the call.
func (h *harness) record(what string, as []acd.Assignment) {
	h.t.Helper()
	now := h.now()
	for _, x := range as {
		if x.TenantID != h.tenant {
			h.t.Errorf("%s: assignment %+v has tenant %q, want %q", what, x, x.TenantID, h.tenant)
		}
		s := h.sessions()[x.SessionID]
		switch {
		case s == nil:
			h.t.Errorf("%s: assigned session %s was never enqueued", what, x.SessionID)
			continue
		case s.state == assigned:
			h.t.Errorf("%s: session %s assigned twice: to %s and to %s", what, x.SessionID, s.agent, x.AgentID)
		case s.state == removed:
			h.t.Errorf("%s: session %s assigned after it was removed", what, x.SessionID)
		case s.group != x.GroupID:
			h.t.Errorf("%s: session %s assigned from group %s, it waits in %s", what, x.SessionID, x.GroupID, s.group)
		}
		if x.Cost != s.cost {
			h.t.Errorf("%s: session %s assigned with cost %d, want %d", what, x.SessionID, x.Cost, s.cost)
		}
		if want := max(now.Sub(s.enq), 0); x.Waited != want {
			h.t.Errorf("%s: session %s waited %v, want %v", what, x.SessionID, x.Waited, want)
		}
		s.state, s.agent = assigned, x.AgentID
		a := h.agents()[x.AgentID]
		switch {
		case a == nil:
			h.t.Errorf("%s: session %s assigned to unknown agent %q", what, x.SessionID, x.AgentID)
			continue
		case !a.ready:
			h.t.Errorf("%s: session %s assigned to %s, who is not ready", what, x.SessionID, x.AgentID)
		case !a.groups[x.GroupID]:
			h.t.Errorf("%s: session %s of group %s assigned to %s, who does not serve it", what, x.SessionID, x.GroupID, x.AgentID)
		case a.load+x.Cost > a.max:
			h.t.Errorf("%s: session %s (cost %d) assigned to %s at load %d of %d", what, x.SessionID, x.Cost, x.AgentID, a.load, a.max)
		}
		a.load += x.Cost
	}
}

// enq enqueues it (tenant filled in) and checks the result's consistency.
func (h *harness) enq(it acd.Item) acd.Enqueued {
	h.t.Helper()
	it.TenantID = h.tenant
	h.useGroup(it.GroupID)
	e, err := h.q.Enqueue(h.ctx(), it)
	h.ok(err)
	what := "Enqueue " + it.SessionID
	prev := h.sessions()[it.SessionID]
	wasWaiting := prev != nil && prev.state == waiting && prev.group == it.GroupID
	switch {
	case e.Full:
		if e.Added || e.Position != 0 || len(e.Assignments) != 0 {
			h.t.Errorf("%s: refused as full, yet %+v", what, e)
		}
		if wasWaiting {
			h.t.Errorf("%s: a waiting session was refused as full", what)
		}
	case e.Added:
		if wasWaiting {
			h.t.Errorf("%s: added again while waiting", what)
		}
		at := it.EnqueuedAt
		if at.IsZero() {
			at = h.now()
		}
		h.sessions()[it.SessionID] = &msession{group: it.GroupID, cost: unitCost(it.Cost), enq: time.UnixMilli(at.UnixMilli()).UTC()}
	default:
		if !wasWaiting {
			h.t.Errorf("%s: not added, yet it was not waiting", what)
		}
	}
	h.record(what, e.Assignments)
	if e.Full {
		return e
	}
	if slices.ContainsFunc(e.Assignments, func(x acd.Assignment) bool { return x.SessionID == it.SessionID }) {
		if e.Position != 0 {
			h.t.Errorf("%s: assigned at once, yet at position %d", what, e.Position)
		}
	} else if e.Position < 1 || e.Position > e.Length {
		h.t.Errorf("%s: waiting at position %d of %d", what, e.Position, e.Length)
	}
	return e
}

// enqAll enqueues items in turn and returns every assignment they made.
func (h *harness) enqAll(items ...acd.Item) []acd.Assignment {
	h.t.Helper()
	var out []acd.Assignment
	for _, it := range items {
		out = append(out, h.enq(it).Assignments...)
	}
	return out
}

func (h *harness) ready(a acd.Agent) []acd.Assignment {
	h.t.Helper()
	a.TenantID = h.tenant
	ma := &magent{max: a.MaxSessions, load: a.Load, ready: true, groups: map[string]bool{}}
	for _, g := range a.Groups {
		ma.groups[g] = true
		h.useGroup(g)
	}
	h.agents()[a.ID] = ma
	as, err := h.q.AgentReady(h.ctx(), a)
	h.ok(err)
	h.record("AgentReady "+a.ID, as)
	h.onlyAgent("AgentReady", a.ID, as)
	return as
}

func (h *harness) onlyAgent(what, agent string, as []acd.Assignment) {
	h.t.Helper()
	for _, x := range as {
		if x.AgentID != agent {
			h.t.Errorf("%s(%s) returned an assignment for %s", what, agent, x.AgentID)
		}
	}
}

func (h *harness) notReady(agent string) {
	h.t.Helper()
	h.ok(h.q.AgentNotReady(h.ctx(), h.tenant, agent))
	if a := h.agents()[agent]; a != nil {
		a.ready = false
	}
}

func (h *harness) offline(agent string) {
	h.t.Helper()
	h.ok(h.q.AgentOffline(h.ctx(), h.tenant, agent))
	if a := h.agents()[agent]; a != nil {
		a.ready = false
	}
}

func (h *harness) release(agent string, cost int) []acd.Assignment {
	h.t.Helper()
	if a := h.agents()[agent]; a != nil {
		a.load = max(a.load-unitCost(cost), 0)
	}
	as, err := h.q.Release(h.ctx(), h.tenant, agent, cost)
	h.ok(err)
	h.record("Release "+agent, as)
	h.onlyAgent("Release", agent, as)
	return as
}

func (h *harness) matchGroup(group string, limit int) []acd.Assignment {
	h.t.Helper()
	h.useGroup(group)
	as, err := h.q.MatchGroup(h.ctx(), h.tenant, group, limit)
	h.ok(err)
	h.record("MatchGroup "+group, as)
	if len(as) > max(limit, 0) {
		h.t.Errorf("MatchGroup(%s, %d) made %d assignments", group, limit, len(as))
	}
	for _, x := range as {
		if x.GroupID != group {
			h.t.Errorf("MatchGroup(%s) assigned %s of group %s", group, x.SessionID, x.GroupID)
		}
	}
	return as
}

func (h *harness) matchAgent(agent string) []acd.Assignment {
	h.t.Helper()
	as, err := h.q.MatchAgent(h.ctx(), h.tenant, agent)
	h.ok(err)
	h.record("MatchAgent "+agent, as)
	h.onlyAgent("MatchAgent", agent, as)
	return as
}

// claim calls Claim and checks the answer against the model.
func (h *harness) claim(agent string, cost int) bool {
	h.t.Helper()
	got, err := h.q.Claim(h.ctx(), h.tenant, agent, cost)
	h.ok(err)
	a := h.agents()[agent]
	want := a != nil && a.ready && a.load+unitCost(cost) <= a.max
	if got != want {
		h.t.Errorf("Claim(%s, %d) = %v, want %v", agent, cost, got, want)
	}
	if got && a != nil {
		a.load += unitCost(cost)
	}
	return got
}

func (h *harness) remove(group, session string) bool {
	h.t.Helper()
	got, err := h.q.Remove(h.ctx(), h.tenant, group, session)
	h.ok(err)
	s := h.sessions()[session]
	want := s != nil && s.state == waiting && s.group == group
	if got != want {
		h.t.Errorf("Remove(%s, %s) = %v, want %v", group, session, got, want)
	}
	if got && s != nil {
		s.state = removed
	}
	return got
}

// missed calls Missed and checks the count against the model.
func (h *harness) missed(agent string, limit int) (int, bool) {
	h.t.Helper()
	n, made, err := h.q.Missed(h.ctx(), h.tenant, agent, limit)
	h.ok(err)
	wantN, wantMade := 0, false
	if a := h.agents()[agent]; a != nil {
		a.missed++
		wantN = a.missed
		if limit > 0 && a.missed >= limit {
			wantMade, a.missed, a.ready = true, 0, false
		}
	}
	if n != wantN || made != wantMade {
		h.t.Errorf("Missed(%s, %d) = %d, %v; want %d, %v", agent, limit, n, made, wantN, wantMade)
	}
	return n, made
}

func (h *harness) accepted(agent string) {
	h.t.Helper()
	h.ok(h.q.Accepted(h.ctx(), h.tenant, agent))
	if a := h.agents()[agent]; a != nil {
		a.missed = 0
	}
}

func (h *harness) setLoad(agent string, load int) {
	h.t.Helper()
	h.ok(h.q.SetLoad(h.ctx(), h.tenant, agent, load))
	if a := h.agents()[agent]; a != nil {
		a.load = max(load, 0)
	}
}

func (h *harness) configure(g acd.Group) {
	h.t.Helper()
	g.TenantID = h.tenant
	h.useGroup(g.ID)
	h.ok(h.q.Configure(h.ctx(), g))
}

func (h *harness) reset() {
	h.t.Helper()
	h.ok(h.q.Reset(h.ctx(), h.tenant))
	delete(h.m.sessions, h.tenant)
	delete(h.m.agents, h.tenant)
}

func (h *harness) agentLoad(agent string) acd.AgentLoad {
	h.t.Helper()
	l, err := h.q.AgentLoad(h.ctx(), h.tenant, agent)
	h.ok(err)
	return l
}

// audit compares the model with the queue: every group's waiting sessions
// and every agent's load and readiness. It runs after each test that did
// not fail already.
func (h *harness) audit() {
	t := h.t
	t.Helper()
	if t.Failed() {
		return
	}
	for _, tenant := range slices.Sorted(maps.Keys(h.m.groups)) {
		ht := h.in(tenant)
		for _, g := range slices.Sorted(maps.Keys(h.m.groups[tenant])) {
			ids, err := h.q.Waiting(h.ctx(), tenant, g, 100000)
			h.ok(err)
			var want []string
			for id, s := range ht.sessions() {
				if s.state == waiting && s.group == g {
					want = append(want, id)
				}
			}
			if diff := cmp.Diff(want, ids, cmpopts.SortSlices(func(a, b string) bool { return a < b }), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("audit: tenant %s group %s waiting (-model +queue):\n%s", tenant, g, diff)
			}
		}
		for _, id := range slices.Sorted(maps.Keys(ht.agents())) {
			a := ht.agents()[id]
			want := acd.AgentLoad{Known: true, Ready: a.ready, Load: a.load, Max: a.max}
			if got := ht.agentLoad(id); got != want {
				t.Errorf("audit: tenant %s agent %s = %+v, model says %+v", tenant, id, got, want)
			}
		}
	}
}

// x is an expected assignment of cost 1; xc one of the given cost. Tenant
// and Waited are checked by record, not by want.
func x(group, session, agent string) acd.Assignment { return xc(group, session, agent, 1) }

func xc(group, session, agent string, cost int) acd.Assignment {
	return acd.Assignment{GroupID: group, SessionID: session, AgentID: agent, Cost: cost}
}

var ignoreRecorded = cmpopts.IgnoreFields(acd.Assignment{}, "TenantID", "Waited")

func (h *harness) want(what string, got []acd.Assignment, want ...acd.Assignment) {
	h.t.Helper()
	if diff := cmp.Diff(want, got, ignoreRecorded, cmpopts.EquateEmpty()); diff != "" {
		h.t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

func (h *harness) wantNone(what string, got []acd.Assignment) {
	h.t.Helper()
	h.want(what, got)
}

func (h *harness) wantLength(group string, want int) {
	h.t.Helper()
	n, err := h.q.Length(h.ctx(), h.tenant, group)
	h.ok(err)
	if n != want {
		h.t.Errorf("Length(%s) = %d, want %d", group, n, want)
	}
}

// wantWaiting checks a group's waiting sessions in service order.
func (h *harness) wantWaiting(group string, want ...string) {
	h.t.Helper()
	got, err := h.q.Waiting(h.ctx(), h.tenant, group, 1000)
	h.ok(err)
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		h.t.Errorf("Waiting(%s) (-want +got):\n%s", group, diff)
	}
}

func (h *harness) wantPosition(group, session string, pos, length int) {
	h.t.Helper()
	p, n, err := h.q.Position(h.ctx(), h.tenant, group, session)
	h.ok(err)
	if p != pos || n != length {
		h.t.Errorf("Position(%s, %s) = %d of %d, want %d of %d", group, session, p, n, pos, length)
	}
}

func sessionsOf(as []acd.Assignment) []string {
	out := make([]string, len(as))
	for i, x := range as {
		out[i] = x.SessionID
	}
	return out
}

func agentsOf(as []acd.Assignment) []string {
	out := make([]string, len(as))
	for i, x := range as {
		out[i] = x.AgentID
	}
	return out
}

// ids returns prefix0 .. prefix(n-1).
func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}
