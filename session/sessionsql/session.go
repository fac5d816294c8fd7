package sessionsql

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/session"
)

// SessionInsert stores a new session. An empty ID gets a generated one and
// a zero Version becomes 1 (the schema's default), but note that the caller
// does not learn either: callers should set both.
func (s *Store) SessionInsert(ctx context.Context, se session.Session) error {
	const op = "sessionsql.SessionInsert"
	if se.ID == "" {
		se.ID = newID()
	}
	if se.Version == 0 {
		se.Version = 1
	}
	r, err := sessionToRow(se)
	if err != nil {
		return errs.E(op, errs.Invalid, "encode session: %v", err)
	}
	_, err = s.exec(ctx, `INSERT INTO sessions (`+sessionColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.TenantID, r.ID, r.ConversationID, r.ContactID, r.AccountID, r.Channel, r.State,
		r.GroupID, r.AgentID, r.Priority, r.BotMisses, r.BotOutcome, r.Version, r.CloseReason, r.ReasonCodes,
		r.ReasonTreeVersion, r.CreatedAt, r.QueuedAt, r.AssignedAt, r.WrapupAt, r.ClosedAt,
		r.LastContactAt, r.DeadlineAt, r.Cost, r.OfferedAt)
	return errs.Wrap(op, err)
}

// SessionGet returns one session.
func (s *Store) SessionGet(ctx context.Context, tenantID, id string) (session.Session, error) {
	const op = "sessionsql.SessionGet"
	var r sessionRow
	if err := s.get(ctx, &r, `SELECT `+sessionColumns+` FROM sessions WHERE tenant_id = ? AND id = ?`, tenantID, id); err != nil {
		return session.Session{}, errs.Wrap(op, err)
	}
	se, err := r.session()
	return se, errs.Wrap(op, err)
}

// SessionUpdate writes every mutable column of s if the stored version is
// still prevVersion. Otherwise it returns errs.Conflict whose Details hold
// the stored "state" (session.State) and "version" (int64), or NotFound.
// Identity columns (conversation, contact, account, channel, created_at)
// never change.
func (s *Store) SessionUpdate(ctx context.Context, se session.Session, prevVersion int64) error {
	const op = "sessionsql.SessionUpdate"
	r, err := sessionToRow(se)
	if err != nil {
		return errs.E(op, errs.Invalid, "encode session: %v", err)
	}
	n, err := s.exec(ctx, `UPDATE sessions SET state = ?, group_id = ?, agent_id = ?, priority = ?,
			bot_misses = ?, bot_outcome = ?, close_reason = ?, reason_codes = ?, reason_tree_version = ?,
			queued_at = ?, assigned_at = ?, wrapup_at = ?, closed_at = ?, last_contact_at = ?,
			deadline_at = ?, offered_at = ?, version = ?
		WHERE tenant_id = ? AND id = ? AND version = ?`,
		r.State, r.GroupID, r.AgentID, r.Priority,
		r.BotMisses, r.BotOutcome, r.CloseReason, r.ReasonCodes, r.ReasonTreeVersion,
		r.QueuedAt, r.AssignedAt, r.WrapupAt, r.ClosedAt, r.LastContactAt,
		r.DeadlineAt, r.OfferedAt, r.Version,
		r.TenantID, r.ID, prevVersion)
	if err != nil {
		return errs.Wrap(op, err)
	}
	if n == 1 {
		return nil
	}
	var cur struct {
		State   string `db:"state"`
		Version int64  `db:"version"`
	}
	if err := s.get(ctx, &cur, `SELECT state, version FROM sessions WHERE tenant_id = ? AND id = ?`, r.TenantID, r.ID); err != nil {
		return errs.Wrap(op, err)
	}
	return errs.E(op, errs.Conflict, "session %s is at version %d, not %d", r.ID, cur.Version, prevVersion).
		With("state", session.State(cur.State)).
		With("version", cur.Version)
}

// SessionCurrent returns the current session of a conversation in one read.
func (s *Store) SessionCurrent(ctx context.Context, tenantID, conversationID string) (session.Session, error) {
	var r sessionRow
	err := s.get(ctx, &r, `SELECT `+sessionColumns+` FROM sessions
		WHERE tenant_id = ? AND id = (SELECT current_session_id FROM conversations WHERE tenant_id = ? AND id = ?)`,
		tenantID, tenantID, conversationID)
	if err != nil {
		return session.Session{}, errs.Wrap("sessionsql.SessionCurrent", err)
	}
	return r.session()
}

// SessionTouch records customer activity and the idle deadline; the version
// stays.
func (s *Store) SessionTouch(ctx context.Context, tenantID, id string, lastContactAt time.Time, deadline *time.Time) error {
	return s.execOne(ctx, "sessionsql.SessionTouch", "session", id,
		`UPDATE sessions SET last_contact_at = ?, deadline_at = ? WHERE tenant_id = ? AND id = ?`,
		dbTime(lastContactAt), dbNullTime(deadline), tenantID, id)
}

// SessionList lists a tenant's sessions, newest first.
func (s *Store) SessionList(ctx context.Context, tenantID string, f session.SessionFilter) ([]session.Session, error) {
	const op = "sessionsql.SessionList"
	query := `SELECT ` + sessionColumns + ` FROM sessions WHERE tenant_id = ?`
	args := []any{tenantID}
	if len(f.States) > 0 {
		states := make([]string, len(f.States))
		for i, st := range f.States {
			states[i] = string(st)
		}
		query += ` AND state IN (?)`
		args = append(args, states)
	}
	if f.AgentID != "" {
		query += ` AND agent_id = ?`
		args = append(args, f.AgentID)
	}
	if f.GroupID != "" {
		query += ` AND group_id = ?`
		args = append(args, f.GroupID)
	}
	if f.After != nil {
		query += ` AND (created_at < ? OR (created_at = ? AND id < ?))`
		at := dbTime(f.After.CreatedAt)
		args = append(args, at, at, f.After.ID)
	}
	query += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, clampLimit(f.Limit))
	query, args, err := sqlx.In(query, args...)
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	var rows []sessionRow
	if err := s.sel(ctx, &rows, query, args...); err != nil {
		return nil, errs.Wrap(op, err)
	}
	out, err := sessionsFromRows(rows)
	return out, errs.Wrap(op, err)
}

// SessionListDue lists sessions of every tenant whose deadline is at or
// before now, earliest deadline first.
func (s *Store) SessionListDue(ctx context.Context, now time.Time, limit int) ([]session.Session, error) {
	const op = "sessionsql.SessionListDue"
	var rows []sessionRow
	if err := s.sel(ctx, &rows, `SELECT `+sessionColumns+` FROM sessions
		WHERE deadline_at IS NOT NULL AND deadline_at <= ?
		ORDER BY deadline_at, tenant_id, id
		LIMIT ?`, dbTime(now), clampLimit(limit)); err != nil {
		return nil, errs.Wrap(op, err)
	}
	out, err := sessionsFromRows(rows)
	return out, errs.Wrap(op, err)
}

// SessionCountByState counts a tenant's sessions that are not closed, per
// state; states without sessions are absent.
func (s *Store) SessionCountByState(ctx context.Context, tenantID string) (map[session.State]int, error) {
	var rows []struct {
		State string `db:"state"`
		N     int    `db:"n"`
	}
	if err := s.sel(ctx, &rows, `SELECT state, COUNT(*) AS n FROM sessions
		WHERE tenant_id = ? AND state <> ?
		GROUP BY state`, tenantID, string(session.StateClosed)); err != nil {
		return nil, errs.Wrap("sessionsql.SessionCountByState", err)
	}
	out := make(map[session.State]int, len(rows))
	for _, r := range rows {
		out[session.State(r.State)] = r.N
	}
	return out, nil
}

// SessionCountByBotOutcome counts a tenant's sessions created since, per
// final bot outcome.
func (s *Store) SessionCountByBotOutcome(ctx context.Context, tenantID string, since time.Time) (map[session.BotOutcome]int, error) {
	var rows []struct {
		Outcome string `db:"bot_outcome"`
		N       int    `db:"n"`
	}
	if err := s.sel(ctx, &rows, `SELECT bot_outcome, COUNT(*) AS n FROM sessions
		WHERE tenant_id = ? AND created_at >= ? AND bot_outcome IN (?, ?, ?)
		GROUP BY bot_outcome`, tenantID, dbTime(since),
		string(session.BotResolved), string(session.BotHandedOff), string(session.BotAbandoned)); err != nil {
		return nil, errs.Wrap("sessionsql.SessionCountByBotOutcome", err)
	}
	out := make(map[session.BotOutcome]int, len(rows))
	for _, r := range rows {
		out[session.BotOutcome(r.Outcome)] = r.N
	}
	return out, nil
}

// EventInsert records a session event; the database numbers it.
func (s *Store) EventInsert(ctx context.Context, e session.EventRecord) error {
	const op = "sessionsql.EventInsert"
	data, err := dbJSON(e.Data, "{}")
	if err != nil {
		return errs.E(op, errs.Invalid, "event data is not JSON: %v", err)
	}
	_, err = s.exec(ctx, `INSERT INTO session_events (tenant_id, session_id, type, from_state, to_state,
			agent_id, group_id, actor, data, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.TenantID, e.SessionID, string(e.Type), string(e.FromState), string(e.ToState),
		nullString(e.AgentID), nullString(e.GroupID), e.Actor, data, dbTime(e.At))
	return errs.Wrap(op, err)
}

// EventList lists a session's events in the order they were recorded.
func (s *Store) EventList(ctx context.Context, tenantID, sessionID string) ([]session.EventRecord, error) {
	var rows []eventRow
	if err := s.sel(ctx, &rows, `SELECT `+eventColumns+` FROM session_events
		WHERE tenant_id = ? AND session_id = ?
		ORDER BY id`, tenantID, sessionID); err != nil {
		return nil, errs.Wrap("sessionsql.EventList", err)
	}
	out := make([]session.EventRecord, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.event())
	}
	return out, nil
}
