// Package acd owns automatic contact distribution: skill groups (queues),
// the order in which waiting sessions are served and the choice of agent.
// The live routing state (waiting sessions, agent capacity) sits behind the
// Queue interface; acdredis implements it atomically with Lua scripts so
// that any number of nodes can match concurrently without double assignment.
//
// Two orders decide a match (docs/routing.md): which waiting session goes
// first — priority with aging, then arrival, and across the groups an agent
// serves the one that waited longest relative to its group's service-level
// threshold — and which agent gets it, chosen by the group's Strategy.
package acd

import (
	"context"
	"slices"
	"time"
)

// Strategy names how a group picks an agent among those with spare capacity.
type Strategy string

// The strategies (docs/routing.md maps each to its nearest Asterisk,
// FreeSWITCH, Rocket.Chat and Chatwoot name).
const (
	// LongestIdle: the ready agent idle longest gets the session (FIFO on
	// the agent side). The default.
	LongestIdle Strategy = "longest_idle"
	// RoundRobin: agents in a fixed rotation; the group remembers whose turn
	// it is, and an agent who cannot take the session is skipped.
	RoundRobin Strategy = "round_robin"
	// LeastBusy: fewest sessions held, then longest idle (even distribution).
	LeastBusy Strategy = "least_busy"
	// Weighted: proportional shares per agent (Skill weight), kept exact by
	// stride scheduling: each assignment advances the agent's pass by
	// 1/weight and the lowest pass goes next.
	Weighted Strategy = "weighted"
	// Sticky: the contact's last agent, if they can take the session within
	// the group's StickyWait; otherwise, and for anyone else's sessions, the
	// group's Fallback strategy.
	Sticky Strategy = "sticky"
	// Skills: proficiency rings that widen with waiting time (bullseye):
	// at first only proficiency 5 agents qualify, one level more every
	// RingStep, longest idle first among those who qualify.
	Skills Strategy = "skills"
)

// Strategies lists every strategy, the default first.
func Strategies() []Strategy {
	return []Strategy{LongestIdle, RoundRobin, LeastBusy, Weighted, Sticky, Skills}
}

// Valid reports whether s is a known strategy.
func (s Strategy) Valid() bool { return slices.Contains(Strategies(), s) }

// Overflow actions for a session that waited a group's MaxWait.
const (
	OverflowNone    = ""        // keep waiting
	OverflowGroup   = "group"   // move to OverflowGroup, keeping its place in time
	OverflowMessage = "message" // leave the queue; the customer is asked to leave a message
)

// Group is a skill group as the router sees it: how it orders and serves
// sessions, and what the customer is told when it cannot.
type Group struct {
	TenantID string
	ID       string
	Name     string
	Strategy Strategy
	// Fallback is the strategy a Sticky group uses when the last agent
	// cannot take the session; never Sticky itself.
	Fallback Strategy
	// SLThreshold is the wait within which a session counts as answered in
	// service level (e.g. 20s). Cross-group choice divides waits by it.
	SLThreshold time.Duration
	// Weight scales the group's urgency in cross-group choice (default 1).
	Weight float64
	// PriorityStep is how much waiting one priority level is worth: a
	// session of priority p ranks as if it arrived p*PriorityStep earlier.
	// Low priority therefore never starves (aging); a step of a day is, in
	// practice, strict priority. 0 means one minute.
	PriorityStep time.Duration
	// MaxQueue caps waiting sessions; 0 means unlimited. Enqueue refuses
	// beyond it (flow control) unless the item is forced (requeue).
	MaxQueue int
	// MaxWait sends a session that waited this long to Overflow; 0: never.
	MaxWait time.Duration
	// Overflow is one of the Overflow* actions; OverflowGroup names the
	// target group.
	Overflow      string
	OverflowGroup string
	// StickyWait is how long a Sticky group holds a session for the
	// contact's last agent.
	StickyWait time.Duration
	// RingStep is how often a Skills group widens its ring by one
	// proficiency level.
	RingStep time.Duration
	// OfferTimeout, when positive, makes assignments offers the agent must
	// accept within it; 0 assigns at once.
	OfferTimeout time.Duration
	// MaxMissedOffers sets an agent not ready after this many offers in a
	// row expired; 0: never.
	MaxMissedOffers int
	// Hours is the group's opening schedule; nil is always open.
	Hours *Hours
	// OffHoursMessage and BusyMessage are told to customers when the group
	// is closed or its queue is full ("" for the built-in text).
	OffHoursMessage string
	BusyMessage     string
}

// Item is a waiting session.
type Item struct {
	TenantID  string
	SessionID string
	GroupID   string
	// Priority: higher is served first (VIP levels). 0 is normal.
	Priority int
	// Cost is the capacity the session takes from its agent (per-channel
	// cost); 0 means 1.
	Cost int
	// PreferredAgent is the contact's last agent, held for by Sticky groups.
	PreferredAgent string
	// Force enqueues even when the group's queue is full: a session handed
	// back or overflowed was already accepted once.
	Force bool
	// EnqueuedAt orders items of equal priority; a session handed back to the
	// queue keeps its original time so it returns to the head.
	EnqueuedAt time.Time
}

// Enqueued is the outcome of an Enqueue.
type Enqueued struct {
	// Added is false when the session was already waiting (a retry) or the
	// queue was full.
	Added bool
	// Full reports a refusal by the group's MaxQueue.
	Full bool
	// Position is the session's 1-based place after the immediate match (0
	// when it was assigned at once or refused); Length the queue length.
	Position, Length int
	// Assignments made by the match that followed the enqueue; the caller
	// must deliver them (they may include other sessions of the group).
	Assignments []Assignment
}

// Agent is an agent as the router sees it: the groups they serve and their
// capacity. Load is the capacity their sessions use now.
type Agent struct {
	TenantID    string
	ID          string
	Groups      []string
	MaxSessions int
	// Proficiency per group, 1..5 (Skills strategy); a missing group is 3.
	Proficiency map[string]int
	// Weight per group, 1..100 (Weighted strategy); a missing group is 1.
	Weight map[string]int
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
	// Cost is the capacity the assignment reserved.
	Cost int
	// Waited is how long the session waited in the queue.
	Waited time.Duration
}

// GroupStats is the live state of one group's queue.
type GroupStats struct {
	GroupID string
	// Waiting sessions and the enqueue time of the one waiting longest
	// (zero when none).
	Waiting     int
	OldestSince time.Time
	LongestWait time.Duration
	// Online agents are logged in with the skill (ready or not);
	// Available are ready with spare capacity, as far as routing knows.
	Online    int
	Available int
	// ServiceRate is assignments per second over the last minutes; it
	// drives the expected wait.
	ServiceRate float64
}

// ExpectedWait estimates how long the session at 1-based position pos
// will wait: pos / service rate. ok is false when there is no recent
// service to estimate from.
func (s GroupStats) ExpectedWait(pos int) (time.Duration, bool) {
	if pos <= 0 {
		return 0, true
	}
	if s.ServiceRate <= 0 {
		return 0, false
	}
	return time.Duration(float64(pos) / s.ServiceRate * float64(time.Second)), true
}

// AgentLoad is what routing holds about one agent, for the reconciler.
type AgentLoad struct {
	Known bool
	Ready bool
	Load  int
	Max   int
}

// Queue is the live routing state. Every method is atomic with respect to
// every other caller on any node.
type Queue interface {
	// Configure stores a group's routing settings; scripts read them on
	// every match. A group never configured routes with the defaults
	// (longest_idle, 20 s threshold, weight 1, 60 s priority step).
	Configure(ctx context.Context, g Group) error

	// Enqueue adds a waiting session and matches the group at once. An item
	// already waiting updates nothing and is not an error.
	Enqueue(ctx context.Context, it Item) (Enqueued, error)
	// Remove takes a session out of its group's queue (abandoned, overflowed,
	// closed). It reports whether the item was waiting.
	Remove(ctx context.Context, tenantID, groupID, sessionID string) (bool, error)
	// Position is the 1-based place of a waiting session and the group's
	// queue length; 0 when it is not waiting.
	Position(ctx context.Context, tenantID, groupID, sessionID string) (pos int, length int, err error)
	// Length is the number of waiting sessions in a group.
	Length(ctx context.Context, tenantID, groupID string) (int, error)
	// Waiting lists up to limit waiting session ids of a group, first
	// served first (for the reconciler).
	Waiting(ctx context.Context, tenantID, groupID string, limit int) ([]string, error)

	// AgentReady makes an agent available in all their groups with the given
	// capacity and load, and gives them the waiting sessions they can take;
	// the caller must deliver those assignments.
	AgentReady(ctx context.Context, a Agent) ([]Assignment, error)
	// AgentNotReady removes an agent from routing; their load is kept and
	// they still count as logged in.
	AgentNotReady(ctx context.Context, tenantID, agentID string) error
	// AgentOffline is AgentNotReady for an agent who logged out.
	AgentOffline(ctx context.Context, tenantID, agentID string) error
	// Release frees cost units of an agent's capacity (session closed or
	// transferred away) and gives the agent the waiting sessions they can
	// now take. The load never goes below zero.
	Release(ctx context.Context, tenantID, agentID string, cost int) ([]Assignment, error)
	// Claim gives an agent one more session outside matching (a direct
	// transfer, a returning customer's last agent) if and only if they are
	// ready and have room for cost, reporting whether it did.
	Claim(ctx context.Context, tenantID, agentID string, cost int) (bool, error)
	// Missed counts an expired offer against an agent; when the count
	// reaches limit (> 0) the agent is made not ready and the count resets.
	Missed(ctx context.Context, tenantID, agentID string, limit int) (count int, madeNotReady bool, err error)
	// Accepted resets an agent's missed-offer count.
	Accepted(ctx context.Context, tenantID, agentID string) error
	// AgentLoad reads what routing holds about an agent.
	AgentLoad(ctx context.Context, tenantID, agentID string) (AgentLoad, error)
	// SetLoad overwrites an agent's load (the reconciler repairing drift).
	SetLoad(ctx context.Context, tenantID, agentID string, load int) error

	// MatchGroup assigns waiting sessions of one group to available agents
	// until either runs out or max assignments were made.
	MatchGroup(ctx context.Context, tenantID, groupID string, max int) ([]Assignment, error)
	// MatchAgent gives an agent the waiting sessions they can take from any of
	// their groups, most urgent first, up to their spare capacity.
	MatchAgent(ctx context.Context, tenantID, agentID string) ([]Assignment, error)

	// Stats reads the live state of groups' queues.
	Stats(ctx context.Context, tenantID string, groupIDs []string) ([]GroupStats, error)
	// Built reports whether the tenant's routing state exists (false after
	// Redis lost it); MarkBuilt records a finished rebuild.
	Built(ctx context.Context, tenantID string) (bool, error)
	MarkBuilt(ctx context.Context, tenantID string) error
	// Reset drops all routing state of a tenant; used before a rebuild.
	Reset(ctx context.Context, tenantID string) error
}
