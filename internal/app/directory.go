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

	mu    sync.Mutex
	names map[string]nameEntry // tenant|agent → display name; guarded by mu
}

type nameEntry struct {
	name string
	at   time.Time
}

var _ session.Directory = (*directory)(nil)

func newDirectory(a agents.Store, c channels.AccountStore) *directory {
	return &directory{agents: a, accounts: c, names: map[string]nameEntry{}}
}

// RoutingAgent implements session.Directory; disabled agents are refused.
func (d *directory) RoutingAgent(ctx context.Context, tenantID, agentID string) (acd.Agent, error) {
	a, err := d.agents.AgentGet(ctx, tenantID, agentID)
	if err != nil {
		return acd.Agent{}, err
	}
	if a.Disabled {
		return acd.Agent{}, errs.E("routing agent", errs.Conflict, "agent %s is disabled", agentID)
	}
	return routingAgent(a), nil
}

func routingAgent(a agents.Agent) acd.Agent {
	groups := make([]string, 0, len(a.Skills))
	for _, s := range a.Skills {
		groups = append(groups, s.GroupID)
	}
	return acd.Agent{TenantID: a.TenantID, ID: a.ID, Groups: groups, MaxSessions: a.MaxSessions, IdleSince: a.StateSince}
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
