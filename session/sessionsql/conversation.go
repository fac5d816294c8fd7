package sessionsql

import (
	"context"
	"time"

	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/session"
)

// ConversationEnsure returns the conversation of a contact on an account,
// creating it on first use; concurrent first uses get the same one.
func (s *Store) ConversationEnsure(ctx context.Context, tenantID, accountID, contactID string, now time.Time) (session.Conversation, error) {
	const op = "sessionsql.ConversationEnsure"
	c, err := s.conversationByContact(ctx, tenantID, accountID, contactID)
	switch {
	case err == nil:
		return c, nil
	case !errs.Is(err, errs.NotFound):
		return session.Conversation{}, errs.Wrap(op, err)
	}
	// A concurrent creator makes this insert do nothing; either way the
	// conversation exists afterwards.
	if _, err := s.exec(ctx, `INSERT INTO conversations (tenant_id, id, account_id, contact_id, created_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (tenant_id, account_id, contact_id) DO NOTHING`,
		tenantID, newID(), accountID, contactID, dbTime(now)); err != nil {
		return session.Conversation{}, errs.Wrap(op, err)
	}
	c, err = s.conversationByContact(ctx, tenantID, accountID, contactID)
	if err != nil {
		return session.Conversation{}, errs.Wrap(op, err)
	}
	return c, nil
}

func (s *Store) conversationByContact(ctx context.Context, tenantID, accountID, contactID string) (session.Conversation, error) {
	var r conversationRow
	err := s.get(ctx, &r, `SELECT `+conversationColumns+` FROM conversations
		WHERE tenant_id = ? AND account_id = ? AND contact_id = ?`, tenantID, accountID, contactID)
	if err != nil {
		return session.Conversation{}, err
	}
	return r.conversation(), nil
}

// ConversationGet returns one conversation.
func (s *Store) ConversationGet(ctx context.Context, tenantID, id string) (session.Conversation, error) {
	var r conversationRow
	err := s.get(ctx, &r, `SELECT `+conversationColumns+` FROM conversations WHERE tenant_id = ? AND id = ?`, tenantID, id)
	if err != nil {
		return session.Conversation{}, errs.Wrap("sessionsql.ConversationGet", err)
	}
	return r.conversation(), nil
}

// ConversationOpenSession implements session.Store with a compare-and-set
// on current_session_id.
func (s *Store) ConversationOpenSession(ctx context.Context, tenantID, id, prevSessionID, sessionID string) error {
	const op = "sessionsql.ConversationOpenSession"
	n, err := s.exec(ctx, `UPDATE conversations SET current_session_id = ?
		WHERE tenant_id = ? AND id = ? AND current_session_id IS NOT DISTINCT FROM ?`,
		sessionID, tenantID, id, nullString(prevSessionID))
	if err != nil {
		return errs.Wrap(op, err)
	}
	if n == 0 {
		if _, err := s.ConversationGet(ctx, tenantID, id); err != nil {
			return errs.Wrap(op, err)
		}
		return errs.E(op, errs.Conflict, "conversation %s has another current session", id)
	}
	return nil
}

// ConversationSetCurrent records the open session of a conversation
// (sessionID "" clears it). lastAgentID and closedAt are written only when
// set: "" and nil keep the stored values, so opening a session keeps the
// previous one's last agent and a bot-only session keeps the last human.
func (s *Store) ConversationSetCurrent(ctx context.Context, tenantID, id, sessionID, lastAgentID string, closedAt *time.Time) error {
	return s.execOne(ctx, "sessionsql.ConversationSetCurrent", "conversation", id,
		`UPDATE conversations SET current_session_id = ?,
			last_agent_id = COALESCE(?, last_agent_id),
			last_closed_at = COALESCE(?, last_closed_at)
		WHERE tenant_id = ? AND id = ?`,
		nullString(sessionID), nullString(lastAgentID), dbNullTime(closedAt), tenantID, id)
}

// readColumns maps a side to its watermark column; never user text in SQL.
var readColumns = map[session.SenderKind]string{
	session.SenderContact: "contact_read_seq",
	session.SenderAgent:   "agent_read_seq",
}

// ConversationMarkRead raises a side's read watermark to seq, capped at the
// conversation's last_seq, never lowering it, and returns the result.
func (s *Store) ConversationMarkRead(ctx context.Context, tenantID, id string, side session.SenderKind, seq int64) (int64, error) {
	const op = "sessionsql.ConversationMarkRead"
	col, ok := readColumns[side]
	if !ok {
		return 0, errs.E(op, errs.Invalid, "read side must be %q or %q, not %q", session.SenderContact, session.SenderAgent, side)
	}
	var v int64
	err := s.get(ctx, &v, `UPDATE conversations
		SET `+col+` = CASE WHEN ? > `+col+` THEN (CASE WHEN ? > last_seq THEN last_seq ELSE ? END) ELSE `+col+` END
		WHERE tenant_id = ? AND id = ?
		RETURNING `+col, seq, seq, seq, tenantID, id)
	if err != nil {
		return 0, errs.Wrap(op, err)
	}
	return v, nil
}
