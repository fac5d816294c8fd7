package session

import (
	"context"
	"time"
)

// Store is the persistence the Engine needs. The SQL adapter (sessionsql)
// implements it for PostgreSQL and SQLite; InTx hands fn a Store bound to
// one transaction so that a transition, its event and its messages commit
// together or not at all.
type Store interface {
	// InTx runs fn in one transaction.
	InTx(ctx context.Context, fn func(tx Store) error) error

	// ContactResolve returns the contact behind an identity (account +
	// external id), creating contact and identity on first sight.
	ContactResolve(ctx context.Context, tenantID, accountID, externalID, displayName string, now time.Time) (Contact, error)
	// ContactGet returns one contact.
	ContactGet(ctx context.Context, tenantID, id string) (Contact, error)
	// ContactSetVIP sets a contact's VIP level (routing priority).
	ContactSetVIP(ctx context.Context, tenantID, id string, level int) error
	// ContactStore: contact profiles, identities and their facts, merges
	// with undo, history, export, erasure and settings (contacts.go).
	ContactStore

	// ConversationEnsure returns the conversation of a contact on an account,
	// creating it on first use.
	ConversationEnsure(ctx context.Context, tenantID, accountID, contactID string, now time.Time) (Conversation, error)
	// ConversationGet returns one conversation.
	ConversationGet(ctx context.Context, tenantID, id string) (Conversation, error)
	// ConversationSetCurrent records the open session of a conversation
	// (sessionID "" when none) and, on close, the last agent and close time.
	ConversationSetCurrent(ctx context.Context, tenantID, id, sessionID, lastAgentID string, closedAt *time.Time) error
	// ConversationOpenSession makes sessionID the conversation's current
	// session if the current one is still prevSessionID ("" for none), and
	// returns errs.Conflict otherwise: two first messages racing to open a
	// session end with one session.
	ConversationOpenSession(ctx context.Context, tenantID, id, prevSessionID, sessionID string) error
	// ConversationMarkRead raises the contact's or the agent side's read
	// watermark (never lowers it) and returns the resulting value.
	ConversationMarkRead(ctx context.Context, tenantID, id string, side SenderKind, seq int64) (int64, error)

	// SessionInsert stores a new session.
	SessionInsert(ctx context.Context, s Session) error
	// SessionGet returns one session.
	SessionGet(ctx context.Context, tenantID, id string) (Session, error)
	// SessionCurrent returns the current session of a conversation in one
	// read; errs.NotFound when the conversation has none.
	SessionCurrent(ctx context.Context, tenantID, conversationID string) (Session, error)
	// SessionUpdate writes s if the stored version is still prevVersion and
	// returns errs.Conflict otherwise (optimistic concurrency). s.Version must
	// already hold the new version.
	SessionUpdate(ctx context.Context, s Session, prevVersion int64) error
	// SessionTouch records customer activity and the new idle deadline without
	// changing the version (not a transition).
	SessionTouch(ctx context.Context, tenantID, id string, lastContactAt time.Time, deadline *time.Time) error
	// SessionList lists a tenant's sessions, newest first.
	SessionList(ctx context.Context, tenantID string, f SessionFilter) ([]Session, error)
	// SessionListDue lists sessions of any tenant whose deadline has passed.
	SessionListDue(ctx context.Context, now time.Time, limit int) ([]Session, error)
	// SessionCountByState counts a tenant's sessions per state (closed excluded).
	SessionCountByState(ctx context.Context, tenantID string) (map[State]int, error)
	// SessionCountByBotOutcome counts a tenant's sessions created at or
	// after since per final bot outcome (resolved, handed_off, abandoned);
	// sessions still with the bot and outcomes without sessions are absent.
	SessionCountByBotOutcome(ctx context.Context, tenantID string, since time.Time) (map[BotOutcome]int, error)

	// EventInsert records a session event.
	EventInsert(ctx context.Context, e EventRecord) error
	// EventList lists a session's events in order.
	EventList(ctx context.Context, tenantID, sessionID string) ([]EventRecord, error)

	// MessageAppend gives m the next sequence number of its conversation and
	// stores it. A client message id already used in the conversation yields
	// errs.Duplicate and stores nothing.
	MessageAppend(ctx context.Context, m Message) (Message, error)
	// MessageAppendOpen appends the contact's message m to its
	// conversation's current session if that session is open, records
	// m.CreatedAt as the conversation's last contact, and returns the message
	// (with SessionID and Seq set) and the session. It returns errs.NotFound
	// when the conversation has no open session and errs.Duplicate for a
	// used client message id, changing nothing then. It is the hot path of
	// every inbound message: adapters make it as cheap as their database
	// allows (it writes no session row).
	MessageAppendOpen(ctx context.Context, m Message) (Message, Session, error)
	// MessageGet returns one message.
	MessageGet(ctx context.Context, tenantID, id string) (Message, error)
	// MessageGetByClientID finds a message by its client message id.
	MessageGetByClientID(ctx context.Context, tenantID, conversationID, clientMsgID string) (Message, error)
	// MessageGetByChannelID finds a message by the provider's message id.
	MessageGetByChannelID(ctx context.Context, tenantID, conversationID, channelMsgID string) (Message, error)
	// MessageListAfter lists a conversation's messages with seq > afterSeq,
	// oldest first, at most limit.
	MessageListAfter(ctx context.Context, tenantID, conversationID string, afterSeq int64, limit int) ([]Message, error)
	// MessageListBefore lists up to limit messages with seq < beforeSeq,
	// returned oldest first (for paging history backwards).
	MessageListBefore(ctx context.Context, tenantID, conversationID string, beforeSeq int64, limit int) ([]Message, error)
	// MessageListBySession lists a session's messages, oldest first.
	MessageListBySession(ctx context.Context, tenantID, sessionID string) ([]Message, error)
	// MessageSetPinned pins or unpins a message.
	MessageSetPinned(ctx context.Context, tenantID, id string, pinned bool) error
	// MessageSetStatus records the delivery status of a message.
	MessageSetStatus(ctx context.Context, tenantID, id string, status DeliveryStatus, errText string) error
	// MessageAdvanceStatus moves an outbound message's delivery status
	// forward (queued < sent < failed < delivered < read) and records the
	// provider's id for it when it has none; a status that is not ahead
	// changes nothing and reports false. Unknown messages are NotFound.
	MessageAdvanceStatus(ctx context.Context, tenantID, id string, status DeliveryStatus, errText, channelMsgID string) (bool, error)

	// NoteInsert stores an internal note.
	NoteInsert(ctx context.Context, n Note) error
	// NoteList lists a session's notes, oldest first.
	NoteList(ctx context.Context, tenantID, sessionID string) ([]Note, error)
}

// SessionFilter narrows SessionList; zero fields match everything.
type SessionFilter struct {
	States  []State
	AgentID string
	GroupID string
	// After continues a listing after the last session of the previous
	// page (results are ordered newest first); nil starts at the newest.
	After *Session
	// Limit caps the result (default 100, max 1000).
	Limit int
}
