// Package agents owns the people and settings that work sessions: tenants,
// agent accounts with their roles, capacity, skills and presence state, the
// skill groups agents are skilled in, login tokens, and the versioned
// contact-reason tree agents pick dispositions from at wrap-up.
//
// The package holds the domain types and their rules and the Service that
// logs agents in and authenticates requests. It holds no SQL: persistence is
// behind the Store interface declared here and implemented by agentsql, and
// every implementation is checked by the agentstest conformance suite.
package agents

import (
	"time"
)

// Role decides what an account may do. Roles are ordered, so a check names
// the least role that may act (Principal.Can) instead of listing roles.
type Role string

// The roles, from most to least powerful.
const (
	RoleAdmin      Role = "admin"      // configures the tenant: accounts, groups, reason trees
	RoleSupervisor Role = "supervisor" // watches queues and agents, intervenes in sessions
	RoleAgent      Role = "agent"      // works the sessions routed to them
)

// rank orders roles; an unknown role has rank 0 and is below every role.
func (r Role) rank() int {
	switch r {
	case RoleAdmin:
		return 3
	case RoleSupervisor:
		return 2
	case RoleAgent:
		return 1
	}
	return 0
}

// Valid reports whether r is one of the defined roles, so that a stored or
// submitted role outside the set is refused rather than silently ranked.
func (r Role) Valid() bool { return r.rank() > 0 }

// AtLeast reports whether r is as powerful as other or more
// (admin > supervisor > agent). An invalid role is never at least anything,
// so a corrupted role cannot grant access.
func (r Role) AtLeast(other Role) bool {
	return r.Valid() && other.Valid() && r.rank() >= other.rank()
}

// State is an agent's presence as routing sees it: only a ready agent is
// offered new sessions.
type State string

// The presence states.
const (
	StateOffline  State = "offline"   // not logged in to the console
	StateReady    State = "ready"     // takes new sessions up to MaxSessions
	StateNotReady State = "not_ready" // logged in but takes no new sessions (with a reason)
)

// Valid reports whether s is one of the defined states.
func (s State) Valid() bool {
	switch s {
	case StateOffline, StateReady, StateNotReady:
		return true
	}
	return false
}

// Tenant is one customer organisation; every other object belongs to
// exactly one tenant (DESIGN D5).
type Tenant struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Agent is an account that logs in to the console: a human agent, a
// supervisor or an admin. It never carries the password hash, so an Agent can
// be serialised to clients as it is; the hash travels separately
// (Store.AgentGetByUsername).
type Agent struct {
	TenantID    string `json:"tenant_id"`
	ID          string `json:"id"`
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
	Role        Role   `json:"role"`
	// MaxSessions is how many sessions the agent works at once; routing
	// offers no more than this.
	MaxSessions int   `json:"max_sessions"`
	State       State `json:"state"`
	// StateReason says why an agent is not ready (break, training, ...);
	// reports aggregate time per reason.
	StateReason string    `json:"state_reason"`
	StateSince  time.Time `json:"state_since"`
	// Disabled accounts cannot log in and their tokens stop working; the
	// row stays because sessions and reports refer to it.
	Disabled  bool      `json:"disabled"`
	Skills    []Skill   `json:"skills"`
	CreatedAt time.Time `json:"created_at"`
}

// Skill says an agent serves a skill group, and how well: skills-based
// routing prefers higher proficiency and widens to lower ones as a session
// waits.
type Skill struct {
	GroupID     string `json:"group_id"`
	Proficiency int    `json:"proficiency"` // 1 (novice) .. 5 (expert)
}

// Group is a skill group: a queue sessions wait in and the settings that
// decide how they are served. The acd package routes it; this package keeps
// its configuration.
type Group struct {
	TenantID string `json:"tenant_id"`
	ID       string `json:"id"`
	Name     string `json:"name"`
	// Strategy names how an agent is chosen (see Strategies()).
	Strategy string `json:"strategy"`
	// SLThresholdSec is the wait, in seconds, within which a session counts
	// as answered in service level.
	SLThresholdSec int `json:"sl_threshold_sec"`
	// MaxQueue caps the number of waiting sessions; 0 means unlimited.
	MaxQueue  int       `json:"max_queue"`
	CreatedAt time.Time `json:"created_at"`
}

// Token is a stored login token. Only the SHA-256 of the token is kept, so
// a leaked database does not leak usable credentials.
type Token struct {
	// Hash is the hex SHA-256 of the token the client holds.
	Hash      string    `json:"-"`
	TenantID  string    `json:"tenant_id"`
	AgentID   string    `json:"agent_id"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// RevokedAt is set by logout or by revoking all of an agent's tokens.
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// ValidAt reports whether the token authenticates at now: not revoked and
// not yet expired.
func (t Token) ValidAt(now time.Time) bool {
	return t.RevokedAt == nil && now.Before(t.ExpiresAt)
}
