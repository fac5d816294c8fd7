package agents

import (
	"context"
	"time"
)

// Store persists tenants, agents, skill groups, login tokens and reason
// trees. It is declared here, by its consumer, and implemented by adapters
// (agentsql); agentstest.Run checks an implementation against the contract
// written on each method.
//
// Common contract: every tenant-scoped method filters on the tenant, so an
// id of another tenant is NotFound, never visible. Missing objects are
// errs.NotFound, taken unique keys errs.Duplicate, references to missing
// objects and input failing the domain rules errs.Invalid. Times come back
// in UTC, truncated to microseconds (what PostgreSQL keeps); a zero
// CreatedAt or StateSince is set to the time of the write. Methods that write
// return the object as stored, so it equals what a later read returns.
// Writes check the domain rules (Agent.Validate, Group.Validate,
// ReasonTree.Validate...) themselves, so no caller can store what the rules
// forbid. Groups and skills are normalized first (Group.Normalize,
// NormalizeSkills): a zero weight, ring step or fallback strategy is
// stored as its default, like a column default would fill it.
type Store interface {
	// TenantCreate stores a new tenant.
	TenantCreate(ctx context.Context, t Tenant) (Tenant, error)
	// TenantGet returns one tenant.
	TenantGet(ctx context.Context, id string) (Tenant, error)
	// TenantList returns every tenant ordered by id.
	TenantList(ctx context.Context) ([]Tenant, error)

	// AgentCreate stores a new agent with its skills and password hash.
	AgentCreate(ctx context.Context, a Agent, passwordHash string) (Agent, error)
	// AgentGet returns one agent with its skills.
	AgentGet(ctx context.Context, tenantID, id string) (Agent, error)
	// AgentGetByUsername returns an agent and its password hash, for login.
	AgentGetByUsername(ctx context.Context, tenantID, username string) (Agent, string, error)
	// AgentFindByUsername returns the agents of every tenant that have
	// username, ordered by tenant, so a login without a tenant can tell
	// whether the name is unambiguous. No match is an empty list, not an
	// error.
	AgentFindByUsername(ctx context.Context, username string) ([]Agent, error)
	// AgentList returns a tenant's agents with their skills, ordered by
	// username.
	AgentList(ctx context.Context, tenantID string) ([]Agent, error)
	// AgentUpdate changes the profile of a.TenantID/a.ID: display name,
	// role, max sessions and disabled. Other fields of a are ignored; they
	// have their own methods because they change for other reasons.
	AgentUpdate(ctx context.Context, a Agent) (Agent, error)
	// AgentSetPassword replaces an agent's password hash.
	AgentSetPassword(ctx context.Context, tenantID, id, passwordHash string) error
	// AgentSetState records an agent's presence state, its reason and since
	// when it holds.
	AgentSetState(ctx context.Context, tenantID, id string, state State, reason string, since time.Time) error
	// AgentSetSkills replaces an agent's skills with skills (empty clears
	// them). A group of another tenant is Invalid.
	AgentSetSkills(ctx context.Context, tenantID, id string, skills []Skill) error

	// GroupCreate stores a new skill group; names are unique per tenant.
	GroupCreate(ctx context.Context, g Group) (Group, error)
	// GroupGet returns one skill group.
	GroupGet(ctx context.Context, tenantID, id string) (Group, error)
	// GroupList returns a tenant's skill groups ordered by name.
	GroupList(ctx context.Context, tenantID string) ([]Group, error)
	// GroupUpdate changes every setting of g.TenantID/g.ID (all fields
	// but CreatedAt).
	GroupUpdate(ctx context.Context, g Group) (Group, error)
	// GroupDelete removes a skill group and every agent's skill in it.
	GroupDelete(ctx context.Context, tenantID, id string) error

	// TokenCreate stores a login token (by hash) for an existing agent.
	TokenCreate(ctx context.Context, t Token) error
	// TokenGet returns a token by its hash, whether or not it is still
	// valid; the caller judges expiry against its clock.
	TokenGet(ctx context.Context, hash string) (Token, error)
	// TokenRevoke marks a token revoked at at. Revoking a revoked token
	// keeps the first time and is not an error.
	TokenRevoke(ctx context.Context, hash string, at time.Time) error
	// TokenRevokeAgent revokes every unrevoked token of an agent and
	// returns how many it revoked.
	TokenRevokeAgent(ctx context.Context, tenantID, agentID string, at time.Time) (int, error)
	// TokenDeleteExpired removes tokens that expired before before, so the
	// table does not grow with every login ever made; it returns how many.
	TokenDeleteExpired(ctx context.Context, before time.Time) (int, error)

	// ReasonTreeSave stores tree as the tenant's next version, assigned
	// atomically (concurrent saves get distinct versions), and returns it
	// with Version set. tree.Version is ignored.
	ReasonTreeSave(ctx context.Context, tree ReasonTree) (ReasonTree, error)
	// ReasonTreeCurrent returns the newest version; NotFound if the tenant
	// has none.
	ReasonTreeCurrent(ctx context.Context, tenantID string) (ReasonTree, error)
	// ReasonTreeGet returns one version, for wrap-ups recorded against it.
	ReasonTreeGet(ctx context.Context, tenantID string, version int) (ReasonTree, error)
	// ReasonTreeList returns every version, newest first, with its nodes.
	ReasonTreeList(ctx context.Context, tenantID string) ([]ReasonTree, error)
}
