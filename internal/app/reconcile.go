package app

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/internal/rdb"
	"github.com/switchboard-acd/switchboard/session"
)

// reconciler keeps the routing state in Redis in step with the database,
// the source of truth (DESIGN D3). A full pass — at start, and whenever a
// tenant's state is missing (a flushed or fresh Redis) — rebuilds queues,
// agent loads and group settings from the database. A drift pass repairs
// what differs between the two, but only what differed the same way on
// the previous pass too, so that a change in flight (a match committed in
// Redis and not yet in the database) is never "repaired".
type reconciler struct {
	a *App

	mu   sync.Mutex
	seen map[string]string // drift observed on the last pass: key → what
	// Repairs counts repairs by kind, for metrics and tests.
	repairs map[string]int
}

func newReconciler(a *App) *reconciler {
	return &reconciler{a: a, seen: map[string]string{}, repairs: map[string]int{}}
}

// lockTTL bounds how long one node holds a tenant's reconcile lock.
const lockTTL = 30 * time.Second

// run reconciles every tenant; full forces a rebuild.
func (r *reconciler) run(ctx context.Context, full bool) error {
	ts, err := r.a.agentDB.TenantList(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	next := map[string]string{}
	for _, t := range ts {
		if err := r.tenant(ctx, t.ID, full, next); err != nil {
			return fmt.Errorf("reconcile tenant %s: %w", t.ID, err)
		}
	}
	r.seen = next
	return nil
}

// confirmed records an observation and reports whether the last pass saw
// the same.
func (r *reconciler) confirmed(next map[string]string, key, what string) bool {
	next[key] = what
	return r.seen[key] == what
}

func (r *reconciler) repaired(kind string, n int) {
	if n > 0 {
		r.repairs[kind] += n
		r.a.Log.Warn("routing drift repaired", "kind", kind, "count", n)
	}
}

func (r *reconciler) tenant(ctx context.Context, tenantID string, full bool, next map[string]string) error {
	a := r.a
	// One node at a time per tenant; the others skip this round.
	lock := rdb.TenantKey(a.Redis.Prefix, tenantID, "reconcile")
	if ok, err := a.Redis.SetNX(ctx, lock, a.Bus.Node(), lockTTL).Result(); err != nil || !ok {
		return err
	}
	defer a.Redis.Del(context.WithoutCancel(ctx), lock)

	built, err := a.Queue.Built(ctx, tenantID)
	if err != nil {
		return err
	}
	if !built && !full {
		a.Log.Warn("routing state missing; rebuilding from the database", "tenant", tenantID)
		full = true
		r.repaired("rebuild", 1)
	}
	groups, err := a.agentDB.GroupList(ctx, tenantID)
	if err != nil {
		return err
	}
	for _, g := range groups {
		if err := a.Queue.Configure(ctx, routingGroup(g)); err != nil {
			return err
		}
	}
	if err := r.sessions(ctx, tenantID, groups, full, next); err != nil {
		return err
	}
	if err := r.agents(ctx, tenantID, full, next); err != nil {
		return err
	}
	for _, g := range groups {
		if err := a.Engine.MatchGroup(ctx, tenantID, g.ID); err != nil {
			return err
		}
	}
	if full {
		return a.Queue.MarkBuilt(ctx, tenantID)
	}
	return nil
}

// sessions puts queued sessions routing lost back in their queues and
// takes out waiting items the database no longer has queued there.
func (r *reconciler) sessions(ctx context.Context, tenantID string, groups []agents.Group, full bool, next map[string]string) error {
	a := r.a
	store := a.Engine.Store()
	queued := map[string]session.Session{}
	f := session.SessionFilter{States: []session.State{session.StateQueued}, Limit: 1000}
	for {
		page, err := store.SessionList(ctx, tenantID, f)
		if err != nil {
			return err
		}
		for _, s := range page {
			queued[s.ID] = s
		}
		if len(page) < f.Limit {
			break
		}
		f.After = &page[len(page)-1]
	}
	enqueued := 0
	for _, s := range queued {
		if !full {
			pos, _, err := a.Queue.Position(ctx, tenantID, s.GroupID, s.ID)
			if err != nil {
				return err
			}
			if pos > 0 || !r.confirmed(next, "q|"+tenantID+"|"+s.ID, strconv.FormatInt(s.Version, 10)) {
				continue
			}
		}
		at := s.CreatedAt
		if s.QueuedAt != nil {
			at = *s.QueuedAt
		}
		res, err := a.Queue.Enqueue(ctx, acd.Item{TenantID: tenantID, SessionID: s.ID, GroupID: s.GroupID,
			Priority: s.Priority, Cost: s.Cost, EnqueuedAt: at, Force: true})
		if err != nil {
			return fmt.Errorf("rebuild queue: %w", err)
		}
		if res.Added {
			enqueued++
		}
		a.Engine.Deliver(ctx, res.Assignments)
	}
	if !full {
		r.repaired("session_requeued", enqueued)
	}
	removed := 0
	for _, g := range groups {
		ids, err := a.Queue.Waiting(ctx, tenantID, g.ID, 100_000)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if s, ok := queued[id]; ok && s.GroupID == g.ID {
				continue
			}
			if !r.confirmed(next, "w|"+tenantID+"|"+g.ID+"|"+id, "stale") {
				continue
			}
			cur, err := store.SessionGet(ctx, tenantID, id)
			if err == nil && cur.State == session.StateQueued && cur.GroupID == g.ID {
				continue // queued since the list was read
			}
			if ok, err := a.Queue.Remove(ctx, tenantID, g.ID, id); err != nil {
				return err
			} else if ok {
				removed++
			}
		}
	}
	r.repaired("stale_item_removed", removed)
	return nil
}

// agents makes routing agree with each agent's recorded state and with the
// load their sessions take.
func (r *reconciler) agents(ctx context.Context, tenantID string, full bool, next map[string]string) error {
	a := r.a
	list, err := a.agentDB.AgentList(ctx, tenantID)
	if err != nil {
		return err
	}
	fixed := map[string]int{}
	for _, ag := range list {
		if ag.Disabled {
			continue
		}
		ready := ag.State == agents.StateReady
		if full {
			if ready {
				if err := a.Engine.AgentReady(ctx, tenantID, ag.ID); err != nil {
					return fmt.Errorf("rebuild agent %s: %w", ag.ID, err)
				}
			}
			continue
		}
		rl, err := a.Queue.AgentLoad(ctx, tenantID, ag.ID)
		if err != nil {
			return err
		}
		switch {
		case ready && (!rl.Known || !rl.Ready):
			if r.confirmed(next, "a|"+tenantID+"|"+ag.ID, "missing") {
				if err := a.Engine.AgentReady(ctx, tenantID, ag.ID); err != nil {
					return err
				}
				fixed["agent_readied"]++
			}
			continue
		case !ready && rl.Ready:
			if r.confirmed(next, "a|"+tenantID+"|"+ag.ID, "not ready") {
				if err := a.Queue.AgentNotReady(ctx, tenantID, ag.ID); err != nil {
					return err
				}
				fixed["agent_unreadied"]++
			}
			continue
		case !rl.Known:
			continue
		}
		load, err := a.Engine.AgentLoad(ctx, tenantID, ag.ID)
		if err != nil {
			return err
		}
		if load != rl.Load && r.confirmed(next, "l|"+tenantID+"|"+ag.ID, fmt.Sprintf("%d/%d", rl.Load, load)) {
			if err := a.Queue.SetLoad(ctx, tenantID, ag.ID, load); err != nil {
				return err
			}
			fixed["load_corrected"]++
		}
	}
	for k, n := range fixed {
		r.repaired(k, n)
	}
	return nil
}

// loop reconciles every interval until ctx ends.
func (r *reconciler) loop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.run(ctx, false); err != nil && ctx.Err() == nil {
				r.a.Log.Warn("reconcile", "err", err)
			}
		}
	}
}
