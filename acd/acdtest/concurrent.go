package acdtest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-acd/switchboard/acd"
)

// cAgent is one agent of the concurrent test, as the test's callers see it.
type cAgent struct {
	def acd.Agent // tenant, groups, capacity, skills; fixed

	// mu is held across a Release or a readiness change and the update of
	// the fields below, so that when an assignment is recorded every
	// release the queue has done is already subtracted: load never exceeds
	// the agent's true load, and over capacity here is over capacity in the
	// queue.
	mu    sync.Mutex
	ready bool   // guarded by mu
	held  []held // guarded by mu: sessions and claims not released yet
	load  int    // guarded by mu: the sum of held costs
}

type held struct {
	id   string
	cost int
}

// cSession is one enqueued session of the concurrent test.
type cSession struct {
	group string
	cost  int
	// full is set once the Enqueue returned; a match on another goroutine
	// may assign the session before that.
	full    bool
	removed bool   // Remove reported it was waiting
	agent   string // who got it; "" while not assigned
}

// testConcurrent routes one tenant from many goroutines at once, across
// groups of every strategy, with costs, priorities, sticky holds, skills
// rings on a moving clock, readiness changes, claims, missed offers and
// removals, and checks the promises of D7: no session is given twice, no
// agent ever holds more than their capacity, every enqueued session is
// assigned exactly once, removed or still waiting, and the queue's loads
// equal what the callers were given.
func testConcurrent(h *harness) {
	const (
		tenant       = "tc"
		nAgents      = 12
		nWorkers     = 12
		opsPerWorker = 100
	)
	t, q, ctx := h.t, h.q, h.ctx()
	groups := []acd.Group{
		{ID: "li", Strategy: acd.LongestIdle},
		{ID: "rr", Strategy: acd.RoundRobin, SLThreshold: 5 * time.Second},
		{ID: "lb", Strategy: acd.LeastBusy, MaxQueue: 15, Weight: 2},
		{ID: "wt", Strategy: acd.Weighted},
		{ID: "st", Strategy: acd.Sticky, StickyWait: 2 * time.Second, Fallback: acd.RoundRobin},
		{ID: "sk", Strategy: acd.Skills, RingStep: time.Second, PriorityStep: 10 * time.Second},
	}
	for _, g := range groups {
		g.TenantID = tenant
		h.ok(q.Configure(ctx, g))
	}
	agents := make([]*cAgent, nAgents)
	index := map[string]*cAgent{}
	var stAgents []string
	for i := range agents {
		gs := []string{groups[i%len(groups)].ID, groups[(i+1)%len(groups)].ID}
		if i%3 == 0 {
			gs = append(gs, groups[(i+3)%len(groups)].ID)
		}
		a := &cAgent{def: acd.Agent{TenantID: tenant, ID: fmt.Sprintf("a%02d", i), Groups: gs, MaxSessions: 2 + i%3,
			Proficiency: map[string]int{}, Weight: map[string]int{}}}
		for _, g := range gs {
			a.def.Proficiency[g] = 1 + i%5
			a.def.Weight[g] = 1 + 10*(i%4)
		}
		if slices.Contains(gs, "st") {
			stAgents = append(stAgents, a.def.ID)
		}
		agents[i], index[a.def.ID] = a, a
	}

	var (
		sMu       sync.Mutex
		sessions  = map[string]*cSession{} // guarded by sMu
		nAssigned atomic.Int64
	)
	// record applies assignments; locked is the agent whose mu the caller
	// holds, if any.
	record := func(what string, as []acd.Assignment, locked *cAgent) {
		for _, x := range as {
			nAssigned.Add(1)
			sMu.Lock()
			s := sessions[x.SessionID]
			switch {
			case s == nil:
				t.Errorf("%s: assigned session %s was never enqueued", what, x.SessionID)
			case s.agent != "":
				t.Errorf("%s: session %s assigned twice: to %s and to %s", what, x.SessionID, s.agent, x.AgentID)
			case s.group != x.GroupID || s.cost != x.Cost:
				t.Errorf("%s: session %s of group %s cost %d assigned as %+v", what, x.SessionID, s.group, s.cost, x)
			}
			if s != nil && s.agent == "" {
				s.agent = x.AgentID
			}
			sMu.Unlock()

			a := index[x.AgentID]
			if a == nil {
				t.Errorf("%s: session %s assigned to unknown agent %q", what, x.SessionID, x.AgentID)
				continue
			}
			if !slices.Contains(a.def.Groups, x.GroupID) {
				t.Errorf("%s: session %s of group %s assigned to %s, who does not serve it", what, x.SessionID, x.GroupID, x.AgentID)
			}
			if a != locked {
				a.mu.Lock()
			}
			a.held = append(a.held, held{x.SessionID, x.Cost})
			a.load += x.Cost
			if a.load > a.def.MaxSessions {
				t.Errorf("%s: agent %s holds %d units, capacity %d", what, a.def.ID, a.load, a.def.MaxSessions)
			}
			if a != locked {
				a.mu.Unlock()
			}
		}
	}
	// ready makes a (locked, not ready) ready with the load the queue
	// holds, which no one else can change while a is not ready and locked.
	ready := func(a *cAgent) error {
		l, err := q.AgentLoad(ctx, tenant, a.def.ID)
		if err != nil {
			return err
		}
		if l.Load < a.load || l.Load > a.def.MaxSessions {
			t.Errorf("agent %s not ready: queue load %d, callers hold %d, capacity %d", a.def.ID, l.Load, a.load, a.def.MaxSessions)
		}
		def := a.def
		def.Load = l.Load
		as, err := q.AgentReady(ctx, def)
		if err != nil {
			return err
		}
		a.ready = true
		record("AgentReady "+a.def.ID, as, a)
		return nil
	}
	for _, a := range agents {
		a.mu.Lock()
		h.ok(ready(a))
		a.mu.Unlock()
	}

	var wg sync.WaitGroup
	for w := range nWorkers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			var mine []string
			fail := func(what string, err error) bool {
				if err != nil {
					t.Errorf("worker %d: %s: %v", w, what, err)
					return true
				}
				return false
			}
			for n := range opsPerWorker {
				a := agents[rng.IntN(nAgents)]
				switch r := rng.IntN(100); {
				case r < 35: // a new session
					g := groups[rng.IntN(len(groups))].ID
					it := acd.Item{TenantID: tenant, GroupID: g, SessionID: fmt.Sprintf("w%02d-%03d", w, n), Cost: 1 + rng.IntN(4)/3, Priority: rng.IntN(2)}
					if g == "st" && rng.IntN(3) > 0 {
						it.PreferredAgent = stAgents[rng.IntN(len(stAgents))]
						if rng.IntN(5) == 0 {
							it.PreferredAgent = agents[rng.IntN(nAgents)].def.ID
						}
					}
					s := &cSession{group: g, cost: it.Cost}
					sMu.Lock()
					sessions[it.SessionID] = s
					sMu.Unlock()
					e, err := q.Enqueue(ctx, it)
					if fail("Enqueue", err) {
						return
					}
					sMu.Lock()
					s.full = e.Full
					sMu.Unlock()
					if !e.Added && !e.Full {
						t.Errorf("Enqueue %s: a new session was not added: %+v", it.SessionID, e)
					}
					record("Enqueue "+it.SessionID, e.Assignments, nil)
					mine = append(mine, it.SessionID)
				case r < 55: // a session ends
					a.mu.Lock()
					if len(a.held) > 0 {
						k := rng.IntN(len(a.held))
						x := a.held[k]
						as, err := q.Release(ctx, tenant, a.def.ID, x.cost)
						if fail("Release "+a.def.ID, err) {
							a.mu.Unlock()
							return
						}
						a.held = slices.Delete(a.held, k, k+1)
						a.load -= x.cost
						for _, y := range as {
							if y.AgentID != a.def.ID {
								t.Errorf("Release(%s) assigned %s to %s", a.def.ID, y.SessionID, y.AgentID)
							}
						}
						record("Release "+a.def.ID, as, a)
					}
					a.mu.Unlock()
				case r < 67:
					g := groups[rng.IntN(len(groups))].ID
					as, err := q.MatchGroup(ctx, tenant, g, 1+rng.IntN(4))
					record("MatchGroup "+g, as, nil) // made even when err != nil
					fail("MatchGroup "+g, err)
				case r < 75:
					as, err := q.MatchAgent(ctx, tenant, a.def.ID)
					for _, y := range as {
						if y.AgentID != a.def.ID {
							t.Errorf("MatchAgent(%s) assigned %s to %s", a.def.ID, y.SessionID, y.AgentID)
						}
					}
					record("MatchAgent "+a.def.ID, as, nil)
					fail("MatchAgent "+a.def.ID, err)
				case r < 85: // a readiness change
					a.mu.Lock()
					var err error
					switch {
					case !a.ready:
						err = ready(a)
					case rng.IntN(2) == 0:
						err = q.AgentNotReady(ctx, tenant, a.def.ID)
						a.ready = false
					default:
						err = q.AgentOffline(ctx, tenant, a.def.ID)
						a.ready = false
					}
					a.mu.Unlock()
					if fail("readiness of "+a.def.ID, err) {
						return
					}
				case r < 90: // an offer expires
					a.mu.Lock()
					_, made, err := q.Missed(ctx, tenant, a.def.ID, 2)
					if made {
						a.ready = false
					}
					a.mu.Unlock()
					if fail("Missed "+a.def.ID, err) {
						return
					}
				case r < 95: // a direct transfer
					a.mu.Lock()
					ok, err := q.Claim(ctx, tenant, a.def.ID, 1)
					if ok {
						a.held = append(a.held, held{fmt.Sprintf("claim-w%02d-%03d", w, n), 1})
						a.load++
						if a.load > a.def.MaxSessions {
							t.Errorf("Claim: agent %s holds %d units, capacity %d", a.def.ID, a.load, a.def.MaxSessions)
						}
					}
					a.mu.Unlock()
					if fail("Claim "+a.def.ID, err) {
						return
					}
				case r < 98: // a customer leaves the queue
					if len(mine) == 0 {
						continue
					}
					id := mine[rng.IntN(len(mine))]
					sMu.Lock()
					g := sessions[id].group
					sMu.Unlock()
					ok, err := q.Remove(ctx, tenant, g, id)
					if fail("Remove "+id, err) {
						return
					}
					if ok {
						sMu.Lock()
						sessions[id].removed = true
						sMu.Unlock()
					}
				default: // time passes: sticky holds expire, skills rings widen
					h.clk.Advance(300 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	checkLoads := func(when string) {
		for _, a := range agents {
			l, err := q.AgentLoad(ctx, tenant, a.def.ID)
			h.ok(err)
			if l.Load != a.load {
				t.Errorf("%s: agent %s has load %d in the queue, callers hold %d", when, a.def.ID, l.Load, a.load)
			}
		}
	}
	waitingNow := func() map[string]string {
		out := map[string]string{}
		for _, g := range groups {
			ids, err := q.Waiting(ctx, tenant, g.ID, 100000)
			h.ok(err)
			for _, id := range ids {
				out[id] = g.ID
			}
		}
		return out
	}
	checkSessions := func(when string, waiting map[string]string) {
		for id, s := range sessions {
			g, isWaiting := waiting[id]
			switch {
			case s.full && (s.agent != "" || isWaiting):
				t.Errorf("%s: session %s was refused as full, yet assigned to %q or waiting %v", when, id, s.agent, isWaiting)
			case s.full:
			case s.removed && (s.agent != "" || isWaiting):
				t.Errorf("%s: session %s was removed, yet assigned to %q or waiting %v", when, id, s.agent, isWaiting)
			case s.removed:
			case s.agent != "" && isWaiting:
				t.Errorf("%s: session %s was assigned to %s and still waits", when, id, s.agent)
			case s.agent == "" && !isWaiting:
				t.Errorf("%s: session %s is neither assigned, removed nor waiting", when, id)
			case isWaiting && g != s.group:
				t.Errorf("%s: session %s waits in %s, enqueued in %s", when, id, g, s.group)
			}
		}
	}
	checkLoads("after the workers")
	checkSessions("after the workers", waitingNow())

	// Drain: every agent ready and free, every hold expired and every ring
	// open, and the queues must empty.
	h.clk.Advance(time.Minute)
	for _, a := range agents {
		a.mu.Lock()
		if !a.ready {
			h.ok(ready(a))
		}
		a.mu.Unlock()
	}
	for round := 0; round < 50 && len(waitingNow()) > 0; round++ {
		for _, g := range groups {
			as, err := q.MatchGroup(ctx, tenant, g.ID, 100)
			h.ok(err)
			record("drain MatchGroup "+g.ID, as, nil)
		}
		for _, a := range agents {
			a.mu.Lock()
			for len(a.held) > 0 {
				x := a.held[0]
				as, err := q.Release(ctx, tenant, a.def.ID, x.cost)
				h.ok(err)
				a.held = a.held[1:]
				a.load -= x.cost
				record("drain Release "+a.def.ID, as, a)
			}
			a.mu.Unlock()
		}
	}
	waiting := waitingNow()
	if len(waiting) > 0 {
		t.Errorf("after draining with every agent free, %d sessions still wait: %v", len(waiting), waiting)
	}
	checkLoads("after the drain")
	checkSessions("after the drain", waiting)
	var full, removed int
	for _, s := range sessions {
		if s.full {
			full++
		}
		if s.removed {
			removed++
		}
	}
	t.Logf("%d sessions: %d assignments, %d refused as full, %d removed", len(sessions), nAssigned.Load(), full, removed)
}
