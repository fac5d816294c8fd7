package sessionsql

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/switchboard-acd/switchboard/session"
)

// The row structs mirror the tables column for column; the *Columns
// constants are their explicit select lists.

const contactColumns = `tenant_id, id, display_name, vip_level, created_at`

type contactRow struct {
	TenantID    string    `db:"tenant_id"`
	ID          string    `db:"id"`
	DisplayName string    `db:"display_name"`
	VIPLevel    int       `db:"vip_level"`
	CreatedAt   time.Time `db:"created_at"`
}

func (r contactRow) contact() session.Contact {
	return session.Contact{
		TenantID:    r.TenantID,
		ID:          r.ID,
		DisplayName: r.DisplayName,
		VIPLevel:    r.VIPLevel,
		CreatedAt:   r.CreatedAt.UTC(),
	}
}

const conversationColumns = `tenant_id, id, account_id, contact_id, last_seq, contact_read_seq,
	agent_read_seq, current_session_id, last_agent_id, last_closed_at, last_contact_at, created_at`

type conversationRow struct {
	TenantID         string         `db:"tenant_id"`
	ID               string         `db:"id"`
	AccountID        string         `db:"account_id"`
	ContactID        string         `db:"contact_id"`
	LastSeq          int64          `db:"last_seq"`
	ContactReadSeq   int64          `db:"contact_read_seq"`
	AgentReadSeq     int64          `db:"agent_read_seq"`
	CurrentSessionID sql.NullString `db:"current_session_id"`
	LastAgentID      sql.NullString `db:"last_agent_id"`
	LastClosedAt     sql.NullTime   `db:"last_closed_at"`
	LastContactAt    sql.NullTime   `db:"last_contact_at"`
	CreatedAt        time.Time      `db:"created_at"`
}

func (r conversationRow) conversation() session.Conversation {
	return session.Conversation{
		TenantID:         r.TenantID,
		ID:               r.ID,
		AccountID:        r.AccountID,
		ContactID:        r.ContactID,
		LastSeq:          r.LastSeq,
		ContactReadSeq:   r.ContactReadSeq,
		AgentReadSeq:     r.AgentReadSeq,
		CurrentSessionID: r.CurrentSessionID.String,
		LastAgentID:      r.LastAgentID.String,
		LastClosedAt:     timePtr(r.LastClosedAt),
		LastContactAt:    timePtr(r.LastContactAt),
		CreatedAt:        r.CreatedAt.UTC(),
	}
}

const sessionColumns = `tenant_id, id, conversation_id, contact_id, account_id, channel, state,
	group_id, agent_id, priority, bot_misses, bot_outcome, version, close_reason, reason_codes,
	reason_tree_version, created_at, queued_at, assigned_at, wrapup_at, closed_at,
	last_contact_at, deadline_at, cost, offered_at`

type sessionRow struct {
	TenantID          string         `db:"tenant_id"`
	ID                string         `db:"id"`
	ConversationID    string         `db:"conversation_id"`
	ContactID         string         `db:"contact_id"`
	AccountID         string         `db:"account_id"`
	Channel           string         `db:"channel"`
	State             string         `db:"state"`
	GroupID           sql.NullString `db:"group_id"`
	AgentID           sql.NullString `db:"agent_id"`
	Priority          int            `db:"priority"`
	BotMisses         int            `db:"bot_misses"`
	BotOutcome        string         `db:"bot_outcome"`
	Version           int64          `db:"version"`
	CloseReason       string         `db:"close_reason"`
	ReasonCodes       string         `db:"reason_codes"` // JSON array of strings
	ReasonTreeVersion int            `db:"reason_tree_version"`
	CreatedAt         time.Time      `db:"created_at"`
	QueuedAt          sql.NullTime   `db:"queued_at"`
	AssignedAt        sql.NullTime   `db:"assigned_at"`
	WrapupAt          sql.NullTime   `db:"wrapup_at"`
	ClosedAt          sql.NullTime   `db:"closed_at"`
	LastContactAt     time.Time      `db:"last_contact_at"`
	DeadlineAt        sql.NullTime   `db:"deadline_at"`
	Cost              int            `db:"cost"`
	OfferedAt         sql.NullTime   `db:"offered_at"`
}

func sessionToRow(s session.Session) (sessionRow, error) {
	codes := s.ReasonCodes
	if codes == nil {
		codes = []string{}
	}
	rc, err := json.Marshal(codes)
	if err != nil {
		return sessionRow{}, err
	}
	return sessionRow{
		TenantID:          s.TenantID,
		ID:                s.ID,
		ConversationID:    s.ConversationID,
		ContactID:         s.ContactID,
		AccountID:         s.AccountID,
		Channel:           s.Channel,
		State:             string(s.State),
		GroupID:           nullString(s.GroupID),
		AgentID:           nullString(s.AgentID),
		Priority:          s.Priority,
		BotMisses:         s.BotMisses,
		BotOutcome:        string(s.BotOutcome),
		Version:           s.Version,
		CloseReason:       s.CloseReason,
		ReasonCodes:       string(rc),
		ReasonTreeVersion: s.ReasonTreeVersion,
		CreatedAt:         dbTime(s.CreatedAt),
		QueuedAt:          dbNullTime(s.QueuedAt),
		AssignedAt:        dbNullTime(s.AssignedAt),
		WrapupAt:          dbNullTime(s.WrapupAt),
		ClosedAt:          dbNullTime(s.ClosedAt),
		LastContactAt:     dbTime(s.LastContactAt),
		DeadlineAt:        dbNullTime(s.DeadlineAt),
		Cost:              max(s.Cost, 1),
		OfferedAt:         dbNullTime(s.OfferedAt),
	}, nil
}

func (r sessionRow) session() (session.Session, error) {
	codes := []string{}
	if r.ReasonCodes != "" {
		if err := json.Unmarshal([]byte(r.ReasonCodes), &codes); err != nil {
			return session.Session{}, fmt.Errorf("session %s: reason_codes: %w", r.ID, err)
		}
		if codes == nil { // the column held JSON null
			codes = []string{}
		}
	}
	return session.Session{
		TenantID:          r.TenantID,
		ID:                r.ID,
		ConversationID:    r.ConversationID,
		ContactID:         r.ContactID,
		AccountID:         r.AccountID,
		Channel:           r.Channel,
		State:             session.State(r.State),
		GroupID:           r.GroupID.String,
		AgentID:           r.AgentID.String,
		Priority:          r.Priority,
		BotMisses:         r.BotMisses,
		BotOutcome:        session.BotOutcome(r.BotOutcome),
		Version:           r.Version,
		CloseReason:       r.CloseReason,
		ReasonCodes:       codes,
		ReasonTreeVersion: r.ReasonTreeVersion,
		CreatedAt:         r.CreatedAt.UTC(),
		QueuedAt:          timePtr(r.QueuedAt),
		AssignedAt:        timePtr(r.AssignedAt),
		WrapupAt:          timePtr(r.WrapupAt),
		ClosedAt:          timePtr(r.ClosedAt),
		LastContactAt:     r.LastContactAt.UTC(),
		DeadlineAt:        timePtr(r.DeadlineAt),
		Cost:              max(r.Cost, 1),
		OfferedAt:         timePtr(r.OfferedAt),
	}, nil
}

func sessionsFromRows(rows []sessionRow) ([]session.Session, error) {
	out := make([]session.Session, 0, len(rows))
	for _, r := range rows {
		s, err := r.session()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

const eventColumns = `id, tenant_id, session_id, type, from_state, to_state, agent_id, group_id,
	actor, data, at`

type eventRow struct {
	ID        int64          `db:"id"`
	TenantID  string         `db:"tenant_id"`
	SessionID string         `db:"session_id"`
	Type      string         `db:"type"`
	FromState string         `db:"from_state"`
	ToState   string         `db:"to_state"`
	AgentID   sql.NullString `db:"agent_id"`
	GroupID   sql.NullString `db:"group_id"`
	Actor     string         `db:"actor"`
	Data      string         `db:"data"` // JSON
	At        time.Time      `db:"at"`
}

func (r eventRow) event() session.EventRecord {
	return session.EventRecord{
		ID:        r.ID,
		TenantID:  r.TenantID,
		SessionID: r.SessionID,
		Type:      session.Event(r.Type),
		FromState: session.State(r.FromState),
		ToState:   session.State(r.ToState),
		AgentID:   r.AgentID.String,
		GroupID:   r.GroupID.String,
		Actor:     r.Actor,
		Data:      readJSON(r.Data),
		At:        r.At.UTC(),
	}
}

const messageColumns = `tenant_id, id, conversation_id, session_id, seq, direction, sender_kind,
	sender_id, type, body, client_msg_id, channel_msg_id, status, error, pinned, created_at`

type messageRow struct {
	TenantID       string         `db:"tenant_id"`
	ID             string         `db:"id"`
	ConversationID string         `db:"conversation_id"`
	SessionID      string         `db:"session_id"`
	Seq            int64          `db:"seq"`
	Direction      string         `db:"direction"`
	SenderKind     string         `db:"sender_kind"`
	SenderID       string         `db:"sender_id"`
	Type           string         `db:"type"`
	Body           string         `db:"body"` // JSON
	ClientMsgID    sql.NullString `db:"client_msg_id"`
	ChannelMsgID   sql.NullString `db:"channel_msg_id"`
	Status         string         `db:"status"`
	Error          string         `db:"error"`
	Pinned         bool           `db:"pinned"`
	CreatedAt      time.Time      `db:"created_at"`
}

func (r messageRow) message() session.Message {
	return session.Message{
		TenantID:       r.TenantID,
		ID:             r.ID,
		ConversationID: r.ConversationID,
		SessionID:      r.SessionID,
		Seq:            r.Seq,
		Direction:      session.Direction(r.Direction),
		SenderKind:     session.SenderKind(r.SenderKind),
		SenderID:       r.SenderID,
		Type:           session.MessageType(r.Type),
		Body:           readJSON(r.Body),
		ClientMsgID:    r.ClientMsgID.String,
		ChannelMsgID:   r.ChannelMsgID.String,
		Status:         session.DeliveryStatus(r.Status),
		Error:          r.Error,
		Pinned:         r.Pinned,
		CreatedAt:      r.CreatedAt.UTC(),
	}
}

func messagesFromRows(rows []messageRow) []session.Message {
	out := make([]session.Message, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.message())
	}
	return out
}

const noteColumns = `tenant_id, id, session_id, agent_id, body, created_at`

type noteRow struct {
	TenantID  string    `db:"tenant_id"`
	ID        string    `db:"id"`
	SessionID string    `db:"session_id"`
	AgentID   string    `db:"agent_id"`
	Body      string    `db:"body"`
	CreatedAt time.Time `db:"created_at"`
}

func (r noteRow) note() session.Note {
	return session.Note{
		TenantID:  r.TenantID,
		ID:        r.ID,
		SessionID: r.SessionID,
		AgentID:   r.AgentID,
		Body:      r.Body,
		CreatedAt: r.CreatedAt.UTC(),
	}
}
