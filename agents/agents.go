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
	"bytes"
	"encoding/json"
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
	// Weight is the agent's share of the group's sessions when the group
	// routes by the weighted strategy: an agent with weight 3 is offered
	// three sessions for every one of an agent with weight 1. 1..100; 0 on
	// input takes DefaultSkillWeight (see Skill.Normalize).
	Weight int `json:"weight"`
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
	MaxQueue int `json:"max_queue"`
	// FallbackStrategy chooses the agent when Strategy cannot: a sticky
	// session whose last agent did not become free within StickyWaitSec.
	// Any strategy but sticky.
	FallbackStrategy string `json:"fallback_strategy"`
	// Weight scales the urgency of this group's waiting sessions against
	// other groups' when an agent who serves several frees a slot: higher
	// is served sooner. (0, 100].
	Weight float64 `json:"weight"`
	// PriorityStepSec is the aging rate: every PriorityStepSec seconds of
	// waiting count as one more priority level, so long waiters overtake
	// fresh VIP sessions eventually. 0 turns aging off.
	PriorityStepSec int `json:"priority_step_sec"`
	// MaxWaitSec is how long a session may wait before OverflowAction
	// applies; 0 means no limit.
	MaxWaitSec int `json:"max_wait_sec"`
	// OverflowAction is what happens to a session that waited MaxWaitSec:
	// "" (it keeps waiting), OverflowToGroup (it moves to OverflowGroupID)
	// or OverflowWithMessage (the customer gets BusyMessage).
	OverflowAction string `json:"overflow_action"`
	// OverflowGroupID is the group sessions move to; set exactly when
	// OverflowAction is OverflowToGroup.
	OverflowGroupID string `json:"overflow_group_id"`
	// StickyWaitSec is how long a sticky session waits for its last agent
	// before FallbackStrategy picks another.
	StickyWaitSec int `json:"sticky_wait_sec"`
	// RingStepSec is how long the skills strategy offers to one proficiency
	// ring before widening to the next lower one.
	RingStepSec int `json:"ring_step_sec"`
	// OfferTimeoutSec is how long an agent has to accept an offered
	// session; 0 assigns without asking.
	OfferTimeoutSec int `json:"offer_timeout_sec"`
	// MaxMissedOffers is how many offers in a row an agent may let time out
	// before routing sets them not ready; 0 never does.
	MaxMissedOffers int `json:"max_missed_offers"`
	// Hours are the business hours in the canonical text of
	// acd.ParseHours; "" means always open.
	Hours HoursJSON `json:"hours"`
	// OffHoursMessage is what a customer who reaches the group outside
	// Hours is told.
	OffHoursMessage string `json:"off_hours_message"`
	// BusyMessage is what the customer is told when the group cannot take
	// the session (overflow with OverflowWithMessage).
	BusyMessage string    `json:"busy_message"`
	CreatedAt   time.Time `json:"created_at"`
}

// The overflow actions of a group.
const (
	OverflowToGroup     = "group"   // move the session to another group's queue
	OverflowWithMessage = "message" // answer with the busy message, leave the queue
)

// HoursJSON is business hours as JSON text; "" means always open. It is a
// string so Group stays comparable and maps to a TEXT column as it is, yet
// it appears in the API as the JSON object itself, or null when empty,
// rather than as a string holding JSON.
type HoursJSON string

// MarshalJSON writes the hours object, or null for always open.
func (h HoursJSON) MarshalJSON() ([]byte, error) {
	if h == "" {
		return []byte("null"), nil
	}
	return []byte(h), nil
}

// UnmarshalJSON keeps the value as compact JSON text; null is always open.
// Whether the text is valid business hours is Group.Validate's to say.
func (h *HoursJSON) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*h = ""
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return err
	}
	*h = HoursJSON(buf.String())
	return nil
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
