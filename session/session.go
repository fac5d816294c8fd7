// Package session owns conversations: contacts as the engine sees them, the
// lasting conversation thread per contact and channel account, sessions with
// their lifecycle (DESIGN §4), messages with sequence numbers, pins, notes and
// wrap-up. The Engine is the only writer of conversation state (DESIGN D6):
// every transition is one database transaction with optimistic versioning
// that also records a session event, from which KPIs are computed.
package session

import (
	"encoding/json"
	"time"
)

// State is a phase of a session's life.
type State string

// The states (DESIGN §4).
const (
	StateBot     State = "bot"     // the bot answers
	StateQueued  State = "queued"  // waiting in a skill group's queue
	StateOffered State = "offered" // offered to an agent who has not accepted yet
	StateActive  State = "active"  // an agent works it
	StateWrapup  State = "wrapup"  // customer side ended; the agent records reasons
	StateClosed  State = "closed"  // over
)

// Open reports whether a session in this state still takes customer messages.
func (s State) Open() bool {
	return s == StateBot || s == StateQueued || s == StateOffered || s == StateActive
}

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	switch s {
	case StateBot, StateQueued, StateOffered, StateActive, StateWrapup, StateClosed:
		return true
	}
	return false
}

// Event names a transition; it is recorded in session_events.type.
type Event string

// The transition events.
const (
	EvCreated       Event = "created"        // → bot
	EvHandoff       Event = "handoff"        // bot → queued
	EvAssigned      Event = "assigned"       // queued → active
	EvRequeued      Event = "requeued"       // active → queued (agent left, back to the head)
	EvTransferAgent Event = "transfer_agent" // active → active, another agent
	EvTransferGroup Event = "transfer_group" // active → queued, another group
	EvAgentClosed   Event = "agent_closed"   // active → wrapup
	EvCustomerIdle  Event = "customer_idle"  // active → wrapup, bot → closed
	EvAbandoned     Event = "abandoned"      // queued → closed
	EvWrappedUp     Event = "wrapped_up"     // wrapup → closed
	EvWrapupTimeout Event = "wrapup_timeout" // wrapup → closed without reasons
	EvBotResolved   Event = "bot_resolved"   // bot → closed
	EvOffered       Event = "offered"        // queued → offered (offer-with-accept groups)
	EvAccepted      Event = "accepted"       // offered → active
	EvDeclined      Event = "declined"       // offered → queued, the agent said no
	EvOfferExpired  Event = "offer_expired"  // offered → queued, nobody answered in time
	EvOverflow      Event = "overflow"       // queued → queued, another group after the max wait
	EvLeftMessage   Event = "left_message"   // queued → closed after the max wait; the customer may leave a message
	// EvHandoffRefused records a handoff that did not queue (off hours,
	// queue full); the session stays with the bot (bot → bot).
	EvHandoffRefused Event = "handoff_refused"
)

// transitions lists, per event, the states it may start from and the state
// it leads to. Anything else is an illegal transition (409).
var transitions = map[Event]struct {
	from []State
	to   State
}{
	EvHandoff:        {[]State{StateBot}, StateQueued},
	EvAssigned:       {[]State{StateQueued}, StateActive},
	EvRequeued:       {[]State{StateActive, StateOffered}, StateQueued},
	EvTransferAgent:  {[]State{StateActive}, StateActive},
	EvTransferGroup:  {[]State{StateActive}, StateQueued},
	EvAgentClosed:    {[]State{StateActive}, StateWrapup},
	EvCustomerIdle:   {[]State{StateActive}, StateWrapup},
	EvAbandoned:      {[]State{StateQueued, StateOffered}, StateClosed},
	EvWrappedUp:      {[]State{StateWrapup}, StateClosed},
	EvWrapupTimeout:  {[]State{StateWrapup}, StateClosed},
	EvBotResolved:    {[]State{StateBot}, StateClosed},
	EvOffered:        {[]State{StateQueued}, StateOffered},
	EvAccepted:       {[]State{StateOffered}, StateActive},
	EvDeclined:       {[]State{StateOffered}, StateQueued},
	EvOfferExpired:   {[]State{StateOffered}, StateQueued},
	EvOverflow:       {[]State{StateQueued}, StateQueued},
	EvLeftMessage:    {[]State{StateQueued}, StateClosed},
	EvHandoffRefused: {[]State{StateBot}, StateBot},
}

// Next is the state event ev leads to from s, and whether it is allowed.
func Next(s State, ev Event) (State, bool) {
	t, ok := transitions[ev]
	if !ok {
		return "", false
	}
	for _, f := range t.from {
		if f == s {
			return t.to, true
		}
	}
	return "", false
}

// Session is one conversation episode, like one phone call.
type Session struct {
	TenantID       string `json:"tenant_id"`
	ID             string `json:"id"`
	ConversationID string `json:"conversation_id"`
	ContactID      string `json:"contact_id"`
	AccountID      string `json:"account_id"`
	Channel        string `json:"channel"`
	State          State  `json:"state"`
	GroupID        string `json:"group_id,omitempty"`
	AgentID        string `json:"agent_id,omitempty"`
	Priority       int    `json:"priority"`
	BotMisses      int    `json:"bot_misses"`
	// BotOutcome records bot containment for KPIs: what became of the
	// session's bot phase.
	BotOutcome        BotOutcome `json:"bot_outcome,omitempty"`
	Version           int64      `json:"version"`
	CloseReason       string     `json:"close_reason,omitempty"`
	ReasonCodes       []string   `json:"reason_codes"`
	ReasonTreeVersion int        `json:"reason_tree_version,omitempty"`
	CreatedAt         time.Time  `json:"created_at"`
	QueuedAt          *time.Time `json:"queued_at,omitempty"`
	AssignedAt        *time.Time `json:"assigned_at,omitempty"`
	WrapupAt          *time.Time `json:"wrapup_at,omitempty"`
	ClosedAt          *time.Time `json:"closed_at,omitempty"`
	// LastContactAt is the contact's latest activity as of the session's
	// last transition or timer check; Conversation.LastContactAt is exact.
	LastContactAt time.Time `json:"last_contact_at"`
	// DeadlineAt is when the current phase times out (customer idle while
	// active, wrap-up limit), nil when no timer runs. An idle deadline is a
	// lower bound: when it passes, the timer checks the conversation's last
	// contact and moves the deadline if the customer wrote since.
	DeadlineAt *time.Time `json:"deadline_at,omitempty"`
	// Cost is the capacity the session takes from its agent (the channel
	// account's session cost), fixed when the session opens.
	Cost int `json:"cost"`
	// OfferedAt is when the current offer was made (offer-with-accept
	// groups); nil when no offer is pending.
	OfferedAt *time.Time `json:"offered_at,omitempty"`
}

// BotOutcome is what became of a session's bot phase: the containment KPI
// counts sessions the bot resolved against those it handed off or the
// customer abandoned.
type BotOutcome string

// The outcomes. While the bot still talks, the field tells whether its last
// turn answered (so a close then counts as resolved) or missed.
const (
	BotResolved  BotOutcome = "resolved"   // closed in the bot state after an answer
	BotHandedOff BotOutcome = "handed_off" // handed off to a person
	BotAbandoned BotOutcome = "abandoned"  // closed in the bot state after a miss or silence
	botAnswered  BotOutcome = "answered"   // interim: the last bot turn answered
	botMissed    BotOutcome = "missed"     // interim: the last bot turn missed
)

// EventRecord is one persisted transition or occurrence in a session's life.
type EventRecord struct {
	ID        int64           `json:"id"`
	TenantID  string          `json:"tenant_id"`
	SessionID string          `json:"session_id"`
	Type      Event           `json:"type"`
	FromState State           `json:"from_state,omitempty"`
	ToState   State           `json:"to_state,omitempty"`
	AgentID   string          `json:"agent_id,omitempty"`
	GroupID   string          `json:"group_id,omitempty"`
	Actor     string          `json:"actor,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	At        time.Time       `json:"at"`
}

// Direction says which way a message travelled.
type Direction string

// Directions.
const (
	Inbound  Direction = "in"  // from the contact
	Outbound Direction = "out" // to the contact (agent, bot or system)
)

// SenderKind says who wrote a message.
type SenderKind string

// Sender kinds.
const (
	SenderContact SenderKind = "contact"
	SenderAgent   SenderKind = "agent"
	SenderBot     SenderKind = "bot"
	SenderSystem  SenderKind = "system"
)

// MessageType is the content type of a message.
type MessageType string

// Message types.
// Text messages have a TextBody; other types (as providers deliver them:
// image, audio, video, document, sticker, location, contacts, interactive,
// reaction, template, unsupported) a JSON object body whose "text" is what
// can be shown or matched, next to the type's own fields.
const (
	TypeText     MessageType = "text"
	TypeEvent    MessageType = "event"
	TypeTemplate MessageType = "template"
)

// DeliveryStatus is how far an outbound message got; inbound messages are
// "received".
type DeliveryStatus string

// Delivery statuses.
const (
	StatusReceived  DeliveryStatus = "received"
	StatusQueued    DeliveryStatus = "queued"
	StatusSent      DeliveryStatus = "sent"
	StatusDelivered DeliveryStatus = "delivered"
	StatusRead      DeliveryStatus = "read"
	StatusFailed    DeliveryStatus = "failed"
)

// Message is one message in a conversation. Seq numbers the messages of a
// conversation from 1 without gaps in commit order.
type Message struct {
	TenantID       string          `json:"tenant_id"`
	ID             string          `json:"id"`
	ConversationID string          `json:"conversation_id"`
	SessionID      string          `json:"session_id"`
	Seq            int64           `json:"seq"`
	Direction      Direction       `json:"direction"`
	SenderKind     SenderKind      `json:"sender_kind"`
	SenderID       string          `json:"sender_id,omitempty"`
	Type           MessageType     `json:"type"`
	Body           json.RawMessage `json:"body"`
	ClientMsgID    string          `json:"client_msg_id,omitempty"`
	ChannelMsgID   string          `json:"channel_msg_id,omitempty"`
	Status         DeliveryStatus  `json:"status"`
	Error          string          `json:"error,omitempty"`
	Pinned         bool            `json:"pinned"`
	CreatedAt      time.Time       `json:"created_at"`
	// Deliver, when set on an outbound message being appended, makes the
	// store queue it in the durable outbox of the provider channel in the
	// same transaction. It is not stored with the message.
	Deliver *Delivery `json:"-"`
}

// Delivery names the channel account an outbound message leaves through.
type Delivery struct {
	AccountID string
	Channel   string
	// To is the customer's id on the account when the sender knows it
	// (the bot answering the message just received); "" leaves the store
	// to pick the identity that wrote last.
	To string
}

// TextBody is the body of a text message. Bot messages may carry choices
// (menu items, "did you mean" questions), shown as buttons where the channel
// has them and as a numbered list in Text everywhere, and a note of what
// the bot understood, which the agent reads in the transcript after a
// handoff.
type TextBody struct {
	Text    string      `json:"text"`
	Choices []BotChoice `json:"choices,omitempty"`
	Bot     *BotNote    `json:"bot,omitempty"`
	// Template is set on template messages (TypeTemplate): a message the
	// provider approved beforehand, the only kind WhatsApp delivers outside
	// the customer-service window. Text then names it for the transcript.
	Template *Template `json:"template,omitempty"`
}

// Template names a provider-approved message template: its name, language
// code and the provider's components JSON (parameters), passed through.
type Template struct {
	Name       string          `json:"name"`
	Language   string          `json:"language"`
	Components json.RawMessage `json:"components,omitempty"`
}

// Text returns the text of a message: the text of a text message, the
// caption or readable rendering of other types ("" when they have none).
func (m Message) Text() string {
	var b TextBody
	_ = json.Unmarshal(m.Body, &b)
	return b.Text
}

// Note is an internal note on a session, never shown to the contact.
type Note struct {
	TenantID  string    `json:"tenant_id"`
	ID        string    `json:"id"`
	SessionID string    `json:"session_id"`
	AgentID   string    `json:"agent_id"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

// Conversation is the lasting thread between a contact and a channel
// account. LastSeq is the sequence number of its newest message.
type Conversation struct {
	TenantID         string     `json:"tenant_id"`
	ID               string     `json:"id"`
	AccountID        string     `json:"account_id"`
	ContactID        string     `json:"contact_id"`
	LastSeq          int64      `json:"last_seq"`
	ContactReadSeq   int64      `json:"contact_read_seq"`
	AgentReadSeq     int64      `json:"agent_read_seq"`
	CurrentSessionID string     `json:"current_session_id,omitempty"`
	LastAgentID      string     `json:"last_agent_id,omitempty"`
	LastClosedAt     *time.Time `json:"last_closed_at,omitempty"`
	// LastContactAt is when the contact last wrote (idle timers check it).
	LastContactAt *time.Time `json:"last_contact_at,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
}
