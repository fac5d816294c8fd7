package app

import (
	"context"
	"sync"
	"time"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/session"
)

// directory answers the session engine's questions about agents, groups and
// accounts from their stores.
type directory struct {
	agents   agents.Store
	accounts channels.AccountStore

	mu     sync.Mutex
	names  map[string]nameEntry  // tenant|agent → display name; guarded by mu
	groups map[string]groupEntry // tenant|group → routing settings; guarded by mu
}

type groupEntry struct {
	g  acd.Group
	at time.Time
}

type nameEntry struct {
	name string
	at   time.Time
}

var _ session.Directory = (*directory)(nil)

func newDirectory(a agents.Store, c channels.AccountStore) *directory {
	return &directory{agents: a, accounts: c, names: map[string]nameEntry{}, groups: map[string]groupEntry{}}
}

// RoutingAgent implements session.Directory; disabled agents are refused.
func (d *directory) RoutingAgent(ctx context.Context, tenantID, agentID string) (session.RoutingAgent, error) {
	a, err := d.agents.AgentGet(ctx, tenantID, agentID)
	if err != nil {
		return session.RoutingAgent{}, err
	}
	if a.Disabled {
		return session.RoutingAgent{}, errs.E("routing agent", errs.Conflict, "agent %s is disabled", agentID)
	}
	return session.RoutingAgent{Agent: routingAgent(a), Ready: a.State == agents.StateReady, Online: a.State != agents.StateOffline}, nil
}

func routingAgent(a agents.Agent) acd.Agent {
	out := acd.Agent{TenantID: a.TenantID, ID: a.ID, MaxSessions: a.MaxSessions, IdleSince: a.StateSince,
		Groups: make([]string, 0, len(a.Skills)), Proficiency: map[string]int{}, Weight: map[string]int{}}
	for _, s := range a.Skills {
		out.Groups = append(out.Groups, s.GroupID)
		out.Proficiency[s.GroupID] = s.Proficiency
		out.Weight[s.GroupID] = s.Weight
	}
	return out
}

// AgentNotReady implements session.Directory.
func (d *directory) AgentNotReady(ctx context.Context, tenantID, agentID, reason string) error {
	return d.agents.AgentSetState(ctx, tenantID, agentID, agents.StateNotReady, reason, time.Now().UTC())
}

// groupTTL bounds how long a node routes with a group's old settings after
// an admin changed them on another node.
const groupTTL = 2 * time.Second

// Group implements session.Directory, cached for groupTTL: it is read on
// every handoff and assignment.
func (d *directory) Group(ctx context.Context, tenantID, groupID string) (acd.Group, error) {
	k := tenantID + "|" + groupID
	d.mu.Lock()
	e, ok := d.groups[k]
	d.mu.Unlock()
	if ok && time.Since(e.at) < groupTTL {
		return e.g, nil
	}
	g, err := d.agents.GroupGet(ctx, tenantID, groupID)
	if err != nil {
		return acd.Group{}, err
	}
	rg := routingGroup(g)
	d.mu.Lock()
	if len(d.groups) > 10000 {
		clear(d.groups)
	}
	d.groups[k] = groupEntry{g: rg, at: time.Now()}
	d.mu.Unlock()
	return rg, nil
}

// forgetGroup drops a cached group after a change on this node.
func (d *directory) forgetGroup(tenantID, groupID string) {
	d.mu.Lock()
	delete(d.groups, tenantID+"|"+groupID)
	d.mu.Unlock()
}

// routingGroup maps a stored group to the router's view. A priority step
// of 0 ("no aging") is a day: strict priority in practice.
func routingGroup(g agents.Group) acd.Group {
	step := time.Duration(g.PriorityStepSec) * time.Second
	if step <= 0 {
		step = 24 * time.Hour
	}
	hours, err := acd.ParseHours(string(g.Hours))
	if err != nil {
		hours = nil // validated on save; an unreadable schedule must not close the group
	}
	return acd.Group{
		TenantID: g.TenantID, ID: g.ID, Name: g.Name,
		Strategy: acd.Strategy(g.Strategy), Fallback: acd.Strategy(g.FallbackStrategy),
		SLThreshold:     time.Duration(g.SLThresholdSec) * time.Second,
		Weight:          g.Weight,
		PriorityStep:    step,
		MaxQueue:        g.MaxQueue,
		MaxWait:         time.Duration(g.MaxWaitSec) * time.Second,
		Overflow:        g.OverflowAction,
		OverflowGroup:   g.OverflowGroupID,
		StickyWait:      time.Duration(g.StickyWaitSec) * time.Second,
		RingStep:        time.Duration(g.RingStepSec) * time.Second,
		OfferTimeout:    time.Duration(g.OfferTimeoutSec) * time.Second,
		MaxMissedOffers: g.MaxMissedOffers,
		Hours:           hours,
		OffHoursMessage: g.OffHoursMessage,
		BusyMessage:     g.BusyMessage,
	}
}

// SessionCost implements session.Directory: the account's cost, 1 when
// the account cannot be read.
func (d *directory) SessionCost(ctx context.Context, tenantID, accountID string) int {
	acct, err := d.accounts.AccountGet(ctx, tenantID, accountID)
	if err != nil || acct.SessionCost < 1 {
		return 1
	}
	return acct.SessionCost
}

// DefaultGroup implements session.Directory: the account's group, else the tenant's first.
func (d *directory) DefaultGroup(ctx context.Context, tenantID, accountID string) (string, error) {
	acct, err := d.accounts.AccountGet(ctx, tenantID, accountID)
	if err != nil {
		return "", err
	}
	if acct.DefaultGroupID != "" {
		return acct.DefaultGroupID, nil
	}
	gs, err := d.agents.GroupList(ctx, tenantID)
	if err != nil {
		return "", err
	}
	if len(gs) == 0 {
		return "", errs.E("default group", errs.Conflict, "the tenant has no skill group to hand off to")
	}
	return gs[0].ID, nil
}

// GroupExists implements session.Directory.
func (d *directory) GroupExists(ctx context.Context, tenantID, groupID string) (bool, error) {
	_, err := d.agents.GroupGet(ctx, tenantID, groupID)
	if errs.Is(err, errs.NotFound) {
		return false, nil
	}
	return err == nil, err
}

// ReasonCheck implements session.Directory: leaf codes of the current tree, once each.
func (d *directory) ReasonCheck(ctx context.Context, tenantID string, codes []string) (int, error) {
	const op = "check reasons"
	t, err := d.agents.ReasonTreeCurrent(ctx, tenantID)
	if errs.Is(err, errs.NotFound) {
		if len(codes) > 0 {
			return 0, errs.E(op, errs.Invalid, "the tenant has no contact-reason tree")
		}
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if t.Mandatory && len(codes) == 0 {
		return 0, errs.E(op, errs.Invalid, "at least one contact reason is required")
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if seen[c] {
			return 0, errs.E(op, errs.Invalid, "reason %q given twice", c)
		}
		seen[c] = true
		if !t.IsLeaf(c) {
			return 0, errs.E(op, errs.Invalid, "%q is not a leaf of the contact-reason tree (version %d)", c, t.Version)
		}
	}
	return t.Version, nil
}

// AgentName is cached for a minute: it is shown on every agent message.
func (d *directory) AgentName(ctx context.Context, tenantID, agentID string) string {
	k := tenantID + "|" + agentID
	d.mu.Lock()
	e, ok := d.names[k]
	d.mu.Unlock()
	if ok && time.Since(e.at) < time.Minute {
		return e.name
	}
	a, err := d.agents.AgentGet(ctx, tenantID, agentID)
	if err != nil {
		return "Agent"
	}
	d.mu.Lock()
	if len(d.names) > 10000 {
		clear(d.names)
	}
	d.names[k] = nameEntry{name: a.DisplayName, at: time.Now()}
	d.mu.Unlock()
	return a.DisplayName
}
