package sessionsql

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/session"
)

// MessageAppend gives m the next seq of its conversation and stores it, in
// one transaction (its own, or the one the store is bound to). Raising
// conversations.last_seq locks the conversation row until commit, so
// appenders to one conversation are serialised and seqs follow commit order
// without gaps. An empty ID gets a generated one; the stored message is
// returned.
//
// A client message id already used in the conversation gives errs.Duplicate
// and stores nothing. That case is absorbed with ON CONFLICT DO NOTHING and
// the seq is handed back, so a caller's PostgreSQL transaction stays usable
// (e.g. to MessageGetByClientID the original). Any other unique violation
// (a reused message ID) is also Duplicate, but it aborts a PostgreSQL
// transaction: the caller must roll back.
func (s *Store) MessageAppend(ctx context.Context, m session.Message) (session.Message, error) {
	return s.messageAppend(ctx, "sessionsql.MessageAppend", m, false)
}

// MessageAppendOpen implements session.Store. On PostgreSQL outside a
// transaction it is one statement; elsewhere a transaction.
func (s *Store) MessageAppendOpen(ctx context.Context, m session.Message) (session.Message, session.Session, error) {
	const op = "sessionsql.MessageAppendOpen"
	if s.db.Dialect == db.Postgres && !s.txBound() {
		return s.messageAppendOpenStatement(ctx, op, m)
	}
	var se session.Session
	err := s.inTx(ctx, op, func(tx *Store) error {
		var err error
		if se, err = tx.SessionCurrent(ctx, m.TenantID, m.ConversationID); err != nil {
			return err
		}
		if !se.State.Open() {
			return errs.E("", errs.NotFound, "conversation %s has no open session", m.ConversationID)
		}
		m.SessionID = se.ID
		m, err = tx.messageAppend(ctx, op, m, true)
		return err
	})
	if err != nil {
		return session.Message{}, session.Session{}, errs.Wrap(op, err)
	}
	return m, se, nil
}

// messageAppendOpenStatement is the PostgreSQL form of MessageAppendOpen:
// find the open current session (locking the conversation row), take the
// next seq and record the contact time (a HOT update: no indexed column
// changes), insert — one round trip, atomic, so a duplicate client id fails
// the whole statement and leaves no gap.
func (s *Store) messageAppendOpenStatement(ctx context.Context, op string, m session.Message) (session.Message, session.Session, error) {
	if m.ID == "" {
		m.ID = newID()
	}
	body, err := dbJSON(m.Body, "{}")
	if err != nil {
		return session.Message{}, session.Session{}, errs.E(op, errs.Invalid, "message body is not JSON: %v", err)
	}
	m.Body = json.RawMessage(body)
	m.CreatedAt = dbTime(m.CreatedAt)
	var row struct {
		Seq int64 `db:"seq"`
		sessionRow
	}
	err = s.get(ctx, &row, `WITH cur AS (
			SELECT `+prefixed("s", sessionColumns)+` FROM conversations c
			-- A primary-key lookup: joined plainly, the planner walks every
			-- open session of the tenant through sessions_state instead.
			JOIN LATERAL (SELECT * FROM sessions s WHERE s.tenant_id = c.tenant_id AND s.id = c.current_session_id OFFSET 0) s ON TRUE
			WHERE c.tenant_id = ? AND c.id = ? AND s.state IN ('bot', 'queued', 'offered', 'active')
			FOR UPDATE OF c),
		c AS (UPDATE conversations SET last_seq = last_seq + 1, last_contact_at = ? FROM cur
			WHERE conversations.tenant_id = ? AND conversations.id = ?
			RETURNING conversations.last_seq, cur.id AS sid),
		ins AS (INSERT INTO messages (`+messageColumns+`)
			SELECT ?, ?, ?, c.sid, c.last_seq, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM c
			RETURNING seq)
		SELECT ins.seq, cur.* FROM ins, cur`,
		m.TenantID, m.ConversationID,
		m.CreatedAt, m.TenantID, m.ConversationID,
		m.TenantID, m.ID, m.ConversationID, string(m.Direction), string(m.SenderKind),
		m.SenderID, string(m.Type), body, nullString(m.ClientMsgID), nullString(m.ChannelMsgID),
		string(m.Status), m.Error, m.Pinned, m.CreatedAt)
	switch {
	case errs.Is(err, errs.NotFound):
		return session.Message{}, session.Session{}, errs.E(op, errs.NotFound, "conversation %s has no open session", m.ConversationID)
	case errs.Is(err, errs.Duplicate) && m.ClientMsgID != "":
		return session.Message{}, session.Session{}, errs.E(op, errs.Duplicate, "client message id %q already used in conversation %s",
			m.ClientMsgID, m.ConversationID)
	case errs.Is(err, errs.Duplicate) && m.ChannelMsgID != "":
		return session.Message{}, session.Session{}, errs.E(op, errs.Duplicate, "channel message id %q already stored in conversation %s",
			m.ChannelMsgID, m.ConversationID)
	case err != nil:
		return session.Message{}, session.Session{}, errs.Wrap(op, err)
	}
	se, err := row.sessionRow.session()
	if err != nil {
		return session.Message{}, session.Session{}, errs.Wrap(op, err)
	}
	m.Seq, m.SessionID = row.Seq, se.ID
	return m, se, nil
}

// prefixed qualifies each column of a column list with a table alias.
func prefixed(alias, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = alias + "." + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

// messageAppend appends m; contact records m.CreatedAt as the
// conversation's last contact.
func (s *Store) messageAppend(ctx context.Context, op string, m session.Message, contact bool) (session.Message, error) {
	if m.ID == "" {
		m.ID = newID()
	}
	body, err := dbJSON(m.Body, "{}")
	if err != nil {
		return session.Message{}, errs.E(op, errs.Invalid, "message body is not JSON: %v", err)
	}
	m.Body = json.RawMessage(body)
	m.CreatedAt = dbTime(m.CreatedAt)
	if s.db.Dialect == db.Postgres && !s.txBound() && m.Deliver == nil {
		return s.messageAppendStatement(ctx, op, m, body, contact)
	}
	err = s.inTx(ctx, op, func(tx *Store) error {
		var seq int64
		if err := tx.get(ctx, &seq, `UPDATE conversations SET last_seq = last_seq + 1,
				last_contact_at = CASE WHEN ? THEN ? ELSE last_contact_at END
			WHERE tenant_id = ? AND id = ?
			RETURNING last_seq`, contact, m.CreatedAt, m.TenantID, m.ConversationID); err != nil {
			if errs.Is(err, errs.NotFound) {
				return errs.E("", errs.NotFound, "conversation %s not found", m.ConversationID)
			}
			return err
		}
		n, err := tx.exec(ctx, `INSERT INTO messages (`+messageColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (tenant_id, conversation_id, client_msg_id) DO NOTHING`,
			m.TenantID, m.ID, m.ConversationID, m.SessionID, seq, string(m.Direction), string(m.SenderKind),
			m.SenderID, string(m.Type), body, nullString(m.ClientMsgID), nullString(m.ChannelMsgID),
			string(m.Status), m.Error, m.Pinned, m.CreatedAt)
		if err != nil {
			return err
		}
		if n == 0 {
			// We still hold the conversation row, so nobody took a seq since.
			if _, err := tx.exec(ctx, `UPDATE conversations SET last_seq = last_seq - 1
				WHERE tenant_id = ? AND id = ?`, m.TenantID, m.ConversationID); err != nil {
				return err
			}
			return errs.E("", errs.Duplicate, "client message id %q already used in conversation %s",
				m.ClientMsgID, m.ConversationID)
		}
		m.Seq = seq
		if m.Deliver != nil {
			return tx.queueOutbound(ctx, m)
		}
		return nil
	})
	if err != nil {
		return session.Message{}, errs.Wrap(op, err)
	}
	return m, nil
}

// messageAppendStatement is the PostgreSQL form: the seq increment, the
// insert and the activity update in one statement, which is atomic — a
// duplicate client id fails the whole statement and leaves no gap.
func (s *Store) messageAppendStatement(ctx context.Context, op string, m session.Message, body string, contact bool) (session.Message, error) {
	args := []any{contact, m.CreatedAt, m.TenantID, m.ConversationID,
		m.TenantID, m.ID, m.ConversationID, m.SessionID, string(m.Direction), string(m.SenderKind),
		m.SenderID, string(m.Type), body, nullString(m.ClientMsgID), nullString(m.ChannelMsgID),
		string(m.Status), m.Error, m.Pinned, m.CreatedAt}
	var seq int64
	err := s.get(ctx, &seq, `WITH c AS (UPDATE conversations SET last_seq = last_seq + 1,
				last_contact_at = CASE WHEN ? THEN ?::timestamptz ELSE last_contact_at END
			WHERE tenant_id = ? AND id = ? RETURNING last_seq)
		INSERT INTO messages (`+messageColumns+`)
		SELECT ?, ?, ?, ?, c.last_seq, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM c
		RETURNING seq`, args...)
	switch {
	case errs.Is(err, errs.NotFound):
		return session.Message{}, errs.E(op, errs.NotFound, "conversation %s not found", m.ConversationID)
	case errs.Is(err, errs.Duplicate) && m.ClientMsgID != "":
		return session.Message{}, errs.E(op, errs.Duplicate, "client message id %q already used in conversation %s",
			m.ClientMsgID, m.ConversationID)
	case err != nil:
		return session.Message{}, errs.Wrap(op, err)
	}
	m.Seq = seq
	return m, nil
}

// MessageGet returns one message.
func (s *Store) MessageGet(ctx context.Context, tenantID, id string) (session.Message, error) {
	var r messageRow
	if err := s.get(ctx, &r, `SELECT `+messageColumns+` FROM messages WHERE tenant_id = ? AND id = ?`, tenantID, id); err != nil {
		return session.Message{}, errs.Wrap("sessionsql.MessageGet", err)
	}
	return r.message(), nil
}

// MessageGetByChannelID finds a message by the provider's message id.
func (s *Store) MessageGetByChannelID(ctx context.Context, tenantID, conversationID, channelMsgID string) (session.Message, error) {
	const op = "sessionsql.MessageGetByChannelID"
	if channelMsgID == "" {
		return session.Message{}, errs.E(op, errs.NotFound, "no channel message id")
	}
	var r messageRow
	if err := s.get(ctx, &r, `SELECT `+messageColumns+` FROM messages
		WHERE tenant_id = ? AND conversation_id = ? AND channel_msg_id = ?`,
		tenantID, conversationID, channelMsgID); err != nil {
		return session.Message{}, errs.Wrap(op, err)
	}
	return r.message(), nil
}

// MessageGetByClientID finds a message by its client message id.
func (s *Store) MessageGetByClientID(ctx context.Context, tenantID, conversationID, clientMsgID string) (session.Message, error) {
	const op = "sessionsql.MessageGetByClientID"
	if clientMsgID == "" {
		return session.Message{}, errs.E(op, errs.NotFound, "no client message id")
	}
	var r messageRow
	if err := s.get(ctx, &r, `SELECT `+messageColumns+` FROM messages
		WHERE tenant_id = ? AND conversation_id = ? AND client_msg_id = ?`,
		tenantID, conversationID, clientMsgID); err != nil {
		return session.Message{}, errs.Wrap(op, err)
	}
	return r.message(), nil
}

// MessageListAfter lists messages with seq > afterSeq, oldest first. A
// limit of 0 means 100; at most 1000 are returned.
func (s *Store) MessageListAfter(ctx context.Context, tenantID, conversationID string, afterSeq int64, limit int) ([]session.Message, error) {
	var rows []messageRow
	if err := s.sel(ctx, &rows, `SELECT `+messageColumns+` FROM messages
		WHERE tenant_id = ? AND conversation_id = ? AND seq > ?
		ORDER BY seq
		LIMIT ?`, tenantID, conversationID, afterSeq, clampLimit(limit)); err != nil {
		return nil, errs.Wrap("sessionsql.MessageListAfter", err)
	}
	return messagesFromRows(rows), nil
}

// MessageListBefore lists the newest messages with seq < beforeSeq, up to
// limit (0 means 100, at most 1000), returned oldest first.
func (s *Store) MessageListBefore(ctx context.Context, tenantID, conversationID string, beforeSeq int64, limit int) ([]session.Message, error) {
	var rows []messageRow
	if err := s.sel(ctx, &rows, `SELECT `+messageColumns+` FROM messages
		WHERE tenant_id = ? AND conversation_id = ? AND seq < ?
		ORDER BY seq DESC
		LIMIT ?`, tenantID, conversationID, beforeSeq, clampLimit(limit)); err != nil {
		return nil, errs.Wrap("sessionsql.MessageListBefore", err)
	}
	slices.Reverse(rows)
	return messagesFromRows(rows), nil
}

// MessageListBySession lists a session's messages, oldest first.
func (s *Store) MessageListBySession(ctx context.Context, tenantID, sessionID string) ([]session.Message, error) {
	var rows []messageRow
	if err := s.sel(ctx, &rows, `SELECT `+messageColumns+` FROM messages
		WHERE tenant_id = ? AND session_id = ?
		ORDER BY seq`, tenantID, sessionID); err != nil {
		return nil, errs.Wrap("sessionsql.MessageListBySession", err)
	}
	return messagesFromRows(rows), nil
}

// MessageSetPinned pins or unpins a message.
func (s *Store) MessageSetPinned(ctx context.Context, tenantID, id string, pinned bool) error {
	return s.execOne(ctx, "sessionsql.MessageSetPinned", "message", id,
		`UPDATE messages SET pinned = ? WHERE tenant_id = ? AND id = ?`, pinned, tenantID, id)
}

// MessageSetStatus records the delivery status of a message and its error
// text ("" clears it).
func (s *Store) MessageSetStatus(ctx context.Context, tenantID, id string, status session.DeliveryStatus, errText string) error {
	return s.execOne(ctx, "sessionsql.MessageSetStatus", "message", id,
		`UPDATE messages SET status = ?, error = ? WHERE tenant_id = ? AND id = ?`,
		string(status), errText, tenantID, id)
}

// statusRank orders delivery statuses in SQL: a status update applies only
// when it moves a message forward, so callbacks that arrive out of order
// (read before delivered) or twice change nothing.
const statusRank = `CASE %s WHEN 'queued' THEN 1 WHEN 'sent' THEN 2 WHEN 'failed' THEN 3
	WHEN 'delivered' THEN 4 WHEN 'read' THEN 5 ELSE 0 END`

// MessageAdvanceStatus implements session.Store: one conditional UPDATE, so
// concurrent callbacks cannot move a status backwards.
func (s *Store) MessageAdvanceStatus(ctx context.Context, tenantID, id string, status session.DeliveryStatus, errText, channelMsgID string) (bool, error) {
	const op = "sessionsql.MessageAdvanceStatus"
	n, err := s.exec(ctx, `UPDATE messages SET status = ?, error = ?,
			channel_msg_id = COALESCE(channel_msg_id, ?)
		WHERE tenant_id = ? AND id = ? AND direction = 'out'
			AND `+fmt.Sprintf(statusRank, "status")+` < `+fmt.Sprintf(statusRank, "?"),
		string(status), errText, nullString(channelMsgID), tenantID, id, string(status))
	if err != nil {
		return false, errs.Wrap(op, err)
	}
	if n == 0 {
		if _, err := s.MessageGet(ctx, tenantID, id); err != nil {
			return false, errs.Wrap(op, err)
		}
	}
	return n > 0, nil
}

// NoteInsert stores an internal note; an empty ID gets a generated one.
func (s *Store) NoteInsert(ctx context.Context, n session.Note) error {
	if n.ID == "" {
		n.ID = newID()
	}
	_, err := s.exec(ctx, `INSERT INTO notes (`+noteColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		n.TenantID, n.ID, n.SessionID, n.AgentID, n.Body, dbTime(n.CreatedAt))
	return errs.Wrap("sessionsql.NoteInsert", err)
}

// NoteList lists a session's notes, oldest first.
func (s *Store) NoteList(ctx context.Context, tenantID, sessionID string) ([]session.Note, error) {
	var rows []noteRow
	if err := s.sel(ctx, &rows, `SELECT `+noteColumns+` FROM notes
		WHERE tenant_id = ? AND session_id = ?
		ORDER BY created_at, id`, tenantID, sessionID); err != nil {
		return nil, errs.Wrap("sessionsql.NoteList", err)
	}
	out := make([]session.Note, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.note())
	}
	return out, nil
}
