// Package acd owns automatic contact distribution: skill groups (queues),
// the order in which waiting sessions are served and the choice of agent.
// The live routing state (waiting sessions, agent capacity) sits behind the
// Queue interface; acdredis implements it atomically with Lua scripts so
// that any number of nodes can match concurrently without double assignment.
package acd

import (
	"context"
	"time"
)

// Strategy names how a group picks an agent among those with spare capacity.
type Strategy string

// Strategies. Only LongestIdle is implemented by the routing seam today;
// the others are reserved names accepted in configuration.
const (
	LongestIdle Strategy = "longest_idle" // the agent idle longest (FIFO on the agent side)
)

// Group is a skill group as the router sees it.
type Group struct {
	TenantID string
	ID       string
	Name     string
	Strategy Strategy
	// SLThreshold is the wait within which a session counts as answered in
	// service level (e.g. 20s).
	SLThreshold time.Duration
	// MaxQueue caps waiting sessions; 0 means unlimited.
	MaxQueue int
}

// Item is a waiting session.
type Item struct {
	TenantID  string
	SessionID string
	GroupID   string
	// Priority: higher is served first (VIP levels). 0 is normal.
	Priority int
	// EnqueuedAt orders items of equal priority; a session handed back to the
	// queue keeps its original time so it returns to the head.
	EnqueuedAt time.Time
}

// Agent is an agent as the router sees it: the groups they serve and their
// capacity. Load is the number of sessions they currently hold.
type Agent struct {
	TenantID    string
	ID          string
	Groups      []string
	MaxSessions int
	// Load is used when (re)building routing state from the database.
	Load int
	// IdleSince orders ready agents for longest_idle.
	IdleSince time.Time
}

// Assignment is the outcome of one match: the session now belongs to the
// agent, and the agent's load already counts it.
type Assignment struct {
	TenantID  string
	SessionID string
	GroupID   string
	AgentID   string
	// Waited is how long the session waited in the queue.
	Waited time.Duration
}

// Queue is the live routing state. Every method is atomic with respect to
// every other caller on any node.
type Queue interface {
	// Enqueue adds a waiting session; enqueueing an item already waiting
	// updates nothing and is not an error.
	Enqueue(ctx context.Context, it Item) error
	// Remove takes a session out of its group's queue (abandoned, overflowed,
	// closed). It reports whether the item was waiting.
	Remove(ctx context.Context, tenantID, groupID, sessionID string) (bool, error)
	// Position is the 1-based place of a waiting session and the group's
	// queue length; 0 when it is not waiting.
	Position(ctx context.Context, tenantID, groupID, sessionID string) (pos int, length int, err error)
	// Length is the number of waiting sessions in a group.
	Length(ctx context.Context, tenantID, groupID string) (int, error)

	// AgentReady makes an agent available in all their groups with the given
	// capacity and load.
	AgentReady(ctx context.Context, a Agent) error
	// AgentNotReady removes an agent from routing; their load is kept.
	AgentNotReady(ctx context.Context, tenantID, agentID string) error
	// Release frees one unit of an agent's capacity (session closed or
	// transferred away). Releasing an agent at zero load is a no-op.
	Release(ctx context.Context, tenantID, agentID string) error

	// Claim gives an agent one more session outside matching (a direct
	// transfer, a returning customer's last agent) if and only if they are
	// ready and below capacity, reporting whether it did.
	Claim(ctx context.Context, tenantID, agentID string) (bool, error)

	// MatchGroup assigns waiting sessions of one group to available agents
	// until either runs out or max assignments were made.
	MatchGroup(ctx context.Context, tenantID, groupID string, max int) ([]Assignment, error)
	// MatchAgent gives an agent the waiting sessions they can take from any of
	// their groups, oldest first, up to their spare capacity.
	MatchAgent(ctx context.Context, tenantID, agentID string) ([]Assignment, error)

	// Reset drops all routing state of a tenant; used before a rebuild.
	Reset(ctx context.Context, tenantID string) error
}
