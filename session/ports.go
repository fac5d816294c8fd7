package session

import (
	"context"

	"github.com/switchboard-acd/switchboard/acd"
)

// Notifier is told about every change the engine commits, after the commit,
// so that connected agents, supervisors and end users see it. The console
// implements it over the realtime bus. Calls must not block for long; a
// failed notification loses nothing because clients resume from the store.
type Notifier interface {
	// SessionChanged reports a transition (or a change of agent or group).
	// prevAgentID is the agent who held the session before, if any.
	SessionChanged(ctx context.Context, s Session, ev Event, prevAgentID string)
	// SessionAssigned reports that an agent got a session, with the
	// conversation's transcript so far.
	SessionAssigned(ctx context.Context, s Session, transcript []Message)
	// MessageCreated reports a new message in a session.
	MessageCreated(ctx context.Context, s Session, m Message)
	// MessageUpdated reports a changed message (pin, delivery status).
	MessageUpdated(ctx context.Context, s Session, m Message)
	// Typing relays a typing indicator of one side (contact or agent).
	Typing(ctx context.Context, s Session, from SenderKind, on bool)
	// Read relays a read watermark of one side.
	Read(ctx context.Context, s Session, by SenderKind, seq int64)
}

// Notifiers fans every notification out to several notifiers (the agent
// console and the customer's channel).
type Notifiers []Notifier

var _ Notifier = Notifiers(nil)

// SessionChanged implements Notifier.
func (ns Notifiers) SessionChanged(ctx context.Context, s Session, ev Event, prevAgentID string) {
	for _, n := range ns {
		n.SessionChanged(ctx, s, ev, prevAgentID)
	}
}

// SessionAssigned implements Notifier.
func (ns Notifiers) SessionAssigned(ctx context.Context, s Session, transcript []Message) {
	for _, n := range ns {
		n.SessionAssigned(ctx, s, transcript)
	}
}

// MessageCreated implements Notifier.
func (ns Notifiers) MessageCreated(ctx context.Context, s Session, m Message) {
	for _, n := range ns {
		n.MessageCreated(ctx, s, m)
	}
}

// MessageUpdated implements Notifier.
func (ns Notifiers) MessageUpdated(ctx context.Context, s Session, m Message) {
	for _, n := range ns {
		n.MessageUpdated(ctx, s, m)
	}
}

// Typing implements Notifier.
func (ns Notifiers) Typing(ctx context.Context, s Session, from SenderKind, on bool) {
	for _, n := range ns {
		n.Typing(ctx, s, from, on)
	}
}

// Read implements Notifier.
func (ns Notifiers) Read(ctx context.Context, s Session, by SenderKind, seq int64) {
	for _, n := range ns {
		n.Read(ctx, s, by, seq)
	}
}

// Bot answers customers while a session is in the bot state. The kb package
// implements it; the engine only acts on the reply.
type Bot interface {
	// Greeting is the first bot message of a new session ("" for none).
	Greeting(ctx context.Context, s Session) string
	// Reply answers one customer message.
	Reply(ctx context.Context, s Session, text string) BotReply
}

// BotReply is what the bot decided about one customer message.
type BotReply struct {
	// Text is sent to the customer when not empty.
	Text string
	// Matched reports whether the bot understood the message; misses count
	// towards a handoff.
	Matched bool
	// Handoff asks for a person; GroupID names the group ("" for the
	// account's default).
	Handoff bool
	GroupID string
	// Choices are offered with Text (buttons, or numbers to type).
	Choices []BotChoice
	// Note tells the agent what the bot understood; it is stored with the
	// bot's message.
	Note *BotNote
}

// BotChoice is one button or menu item of a bot message. Value is what the
// customer's client sends back when it is picked (the number otherwise).
type BotChoice struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// BotNote is the bot's account of one customer message: the outcome
// ("rule", "answer", "suggest", "choice", "miss", "handoff"), the entry or
// rule it used and how confident it was.
type BotNote struct {
	Outcome    string  `json:"outcome"`
	Query      string  `json:"query,omitempty"`
	EntryID    string  `json:"entry_id,omitempty"`
	Question   string  `json:"question,omitempty"`
	RuleID     string  `json:"rule_id,omitempty"`
	Keyword    string  `json:"keyword,omitempty"`
	Confidence float64 `json:"confidence,omitempty"`
}

// Directory tells the engine what it needs to know of agents, groups and
// channel accounts without depending on how they are stored.
type Directory interface {
	// RoutingAgent returns an agent as the router sees them (groups, skills,
	// capacity) with their recorded presence; Load is filled by the engine.
	RoutingAgent(ctx context.Context, tenantID, agentID string) (RoutingAgent, error)
	// AgentNotReady records that routing made an agent not ready (missed
	// offers), with the reason shown to them and to supervisors.
	AgentNotReady(ctx context.Context, tenantID, agentID, reason string) error
	// DefaultGroup is the group an account's handoffs go to.
	DefaultGroup(ctx context.Context, tenantID, accountID string) (string, error)
	// SessionCost is the capacity a session on the account takes from its
	// agent (per-channel cost); at least 1.
	SessionCost(ctx context.Context, tenantID, accountID string) int
	// Group returns a group's routing settings; errs.NotFound for none.
	Group(ctx context.Context, tenantID, groupID string) (acd.Group, error)
	// GroupExists reports whether the tenant has the group.
	GroupExists(ctx context.Context, tenantID, groupID string) (bool, error)
	// ReasonCheck validates wrap-up reason codes against the tenant's current
	// reason tree and returns the tree version they were chosen from.
	ReasonCheck(ctx context.Context, tenantID string, codes []string) (version int, err error)
	// AgentName is the display name shown to customers.
	AgentName(ctx context.Context, tenantID, agentID string) string
}
