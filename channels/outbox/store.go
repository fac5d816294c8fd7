package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// Store is the outbox table on PostgreSQL or SQLite. The workers use it to
// claim and settle rows; the console uses it for dead letters and status
// callbacks.
type Store struct{ db *db.DB }

// NewStore returns a Store over d.
func NewStore(d *db.DB) *Store { return &Store{db: d} }

// Insert queues it outside any other transaction; see the package-level
// Insert for the rules. It returns the row's id.
func (s *Store) Insert(ctx context.Context, it Item) (int64, error) {
	var id int64
	err := s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		id, err = insert(ctx, tx, s.db.Dialect, it)
		return err
	})
	return id, errs.Wrap("outbox.Store.Insert", err)
}

const itemCols = `id, tenant_id, account_id, conversation_id, message_id, payload, state, attempts,
	next_at, lease_until, lease_owner, slot_at, last_code, last_error, channel_msg_id, fallback_of,
	queued_at, created_at, sent_at`

// itemRow is a row as the drivers return it. Times go through timeScan:
// SQLite hands back text wherever a column's declared type is lost (an
// UPDATE's RETURNING, an aggregate).
type itemRow struct {
	ID             int64          `db:"id"`
	TenantID       string         `db:"tenant_id"`
	AccountID      string         `db:"account_id"`
	ConversationID string         `db:"conversation_id"`
	MessageID      string         `db:"message_id"`
	Payload        string         `db:"payload"`
	State          string         `db:"state"`
	Attempts       int            `db:"attempts"`
	NextAt         timeScan       `db:"next_at"`
	LeaseUntil     timeScan       `db:"lease_until"`
	LeaseOwner     string         `db:"lease_owner"`
	SlotAt         timeScan       `db:"slot_at"`
	LastCode       string         `db:"last_code"`
	LastError      string         `db:"last_error"`
	ChannelMsgID   sql.NullString `db:"channel_msg_id"`
	FallbackOf     sql.NullInt64  `db:"fallback_of"`
	QueuedAt       timeScan       `db:"queued_at"`
	CreatedAt      timeScan       `db:"created_at"`
	SentAt         timeScan       `db:"sent_at"`
}

func (r itemRow) item() (Item, error) {
	it := Item{
		ID: r.ID, TenantID: r.TenantID, AccountID: r.AccountID, ConversationID: r.ConversationID,
		MessageID: r.MessageID, State: State(r.State), Attempts: r.Attempts, NextAt: r.NextAt.t,
		LeaseUntil: r.LeaseUntil.ptr(), LeaseOwner: r.LeaseOwner, SlotAt: r.SlotAt.ptr(),
		LastCode: r.LastCode, LastError: r.LastError, ChannelMsgID: r.ChannelMsgID.String,
		FallbackOf: r.FallbackOf.Int64, QueuedAt: r.QueuedAt.t, CreatedAt: r.CreatedAt.t, SentAt: r.SentAt.ptr(),
	}
	if err := json.Unmarshal([]byte(r.Payload), &it.Out); err != nil {
		return it, fmt.Errorf("outbox row %d: payload: %w", r.ID, err)
	}
	return it, nil
}

func items(rows []itemRow) ([]Item, error) {
	out := make([]Item, 0, len(rows))
	for _, r := range rows {
		it, err := r.item()
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, nil
}

func (s *Store) q(query string) string { return rebind(s.db.Dialect, query) }

// live is the SQL list of the states that hold up a conversation.
const live = `('pending', 'sending')`

// claimSQL picks due rows (pending and due, or sending with an expired
// lease: both have next_at <= now) that are the first live row of their
// conversation, and leases them. A row's place in the order is its id, or
// for an SMS fallback the id of the row it replaces. On PostgreSQL the
// candidate rows are locked with SKIP LOCKED, so concurrent claimers on
// other nodes take other rows instead of waiting; a candidate whose
// predecessor another claimer is settling at that moment is still seen as
// blocked, because the predecessor is live in every snapshot until the
// settling commits. SQLite has a single writer: the statement is atomic.
const claimSQL = `UPDATE outbox SET state = 'sending', attempts = attempts + 1,
		lease_owner = ?, lease_until = ?, next_at = ?
	WHERE id IN (
		SELECT o.id FROM outbox o
		WHERE o.state IN ` + live + ` AND o.next_at <= ?
			AND NOT EXISTS (SELECT 1 FROM outbox p
				WHERE p.tenant_id = o.tenant_id AND p.conversation_id = o.conversation_id
					AND p.state IN ` + live + `
					AND COALESCE(p.fallback_of, p.id) < COALESCE(o.fallback_of, o.id))
		ORDER BY o.next_at, o.id
		LIMIT ?%s)
	RETURNING ` + itemCols

// Claim leases up to limit due rows to owner until now+lease and returns
// them in id order. Each is the first live row of its conversation, so a
// conversation has at most one row claimed at a time. Claiming counts an
// attempt. A row whose lease runs out (its worker died) becomes due again
// and is claimed by whoever polls next.
//
// The later rows of a claimed row's conversation are parked until
// parkHorizon past the lease end (next_at), and the row's final outcome
// releases the next one (release): they cannot go before the claimed row
// anyway, and parked they stay out of the due range that claims walk, so a
// long backlog in a few conversations does not make every claim step over
// it. Rows parked already are not written again by the next claim of
// their conversation, so a conversation's backlog costs one write per row
// per horizon, not one per send. Parking is only an optimisation: order is
// kept by the claim's own condition, and a parked row whose release never
// came (its predecessor's outcome was lost) is due again at most
// parkHorizon after its predecessor was.
func (s *Store) Claim(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]Item, error) {
	const op = "outbox.Store.Claim"
	if owner == "" || lease <= 0 || limit <= 0 {
		return nil, errs.E(op, errs.Invalid, "owner, lease and limit are required")
	}
	lock := ""
	if s.db.Dialect == db.Postgres {
		lock = " FOR UPDATE OF o SKIP LOCKED"
	}
	until := dbTime(now.Add(lease))
	parked := until.Add(parkHorizon)
	var rows []itemRow
	err := s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		rows = nil
		if err := s.db.SelectStmt(ctx, tx, &rows, s.q(fmt.Sprintf(claimSQL, lock)), owner, until, until, dbTime(now), limit); err != nil {
			return db.Translate(err)
		}
		// Park the followers, one statement per tenant: an IN list of
		// conversations is an index lookup for any planner, whatever the
		// statistics say (with the partial index's condition stated, see
		// park).
		convs := map[string][]any{}
		for _, r := range rows {
			convs[r.TenantID] = append(convs[r.TenantID], r.ConversationID)
		}
		for tenantID, cs := range convs {
			args := append([]any{parked, tenantID}, cs...)
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE outbox SET next_at = ?
				WHERE tenant_id = ? AND conversation_id IN (?`+strings.Repeat(", ?", len(cs)-1)+`)
					AND state IN `+live+` AND state = 'pending' AND next_at < ?`), append(args, until)...); err != nil {
				return db.Translate(err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, errs.Wrap(op, err)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	out, err := items(rows)
	return out, errs.Wrap(op, err)
}

// settled is what the settling updates return about their row: where it
// stands in its conversation.
type settled struct {
	TenantID       string `db:"tenant_id"`
	ConversationID string `db:"conversation_id"`
	Rank           int64  `db:"rank"`
}

const settledCols = `tenant_id, conversation_id, COALESCE(fallback_of, id) AS rank`

// parkHorizon is how far past its predecessor's own due time a parked
// row is set: its predecessor's final outcome releases it before that.
const parkHorizon = 5 * time.Minute

// park sets the later pending rows of r's conversation that would be due
// before next due parkHorizon after it, when r goes back to the table until
// then; r's claim at next leaves them parked, and its final outcome
// releases the next one. Rows parked later already are not written again.
//
// The queries here repeat the partial index's own condition (state IN
// ('pending', 'sending')) next to state = 'pending': SQLite uses a partial
// index only when the query states its WHERE clause literally, and without
// it scans the whole table, which grows with every message sent.
func (s *Store) park(ctx context.Context, ex db.Executor, r settled, next time.Time) error {
	_, err := s.db.ExecStmt(ctx, ex, s.q(`UPDATE outbox SET next_at = ?
		WHERE tenant_id = ? AND conversation_id = ? AND state IN ('pending', 'sending') AND state = 'pending'
			AND COALESCE(fallback_of, id) > ? AND next_at < ?`),
		dbTime(next.Add(parkHorizon)), r.TenantID, r.ConversationID, r.Rank, dbTime(next))
	return db.Translate(err)
}

// release makes the next row of r's conversation due at once, when r
// became final. It holds the conversation's outbox lock, as Insert does
// while it decides whether to park a new row: a row queued concurrently is
// either committed and seen here, or queued after r is final and not
// parked at all.
func (s *Store) release(ctx context.Context, ex db.Executor, r settled, at time.Time) error {
	if err := lockConversation(ctx, ex, s.db.Dialect, r.TenantID, r.ConversationID); err != nil {
		return err
	}
	_, err := s.db.ExecStmt(ctx, ex, s.q(`UPDATE outbox SET next_at = ?
		WHERE next_at > ? AND id = (SELECT id FROM outbox
			WHERE tenant_id = ? AND conversation_id = ? AND state IN ('pending', 'sending') AND state = 'pending'
			ORDER BY COALESCE(fallback_of, id) LIMIT 1)`),
		dbTime(at), dbTime(at), r.TenantID, r.ConversationID)
	return db.Translate(err)
}

// fence is the condition that l is still the current claim of its row.
const fence = `id = ? AND state = 'sending' AND lease_owner = ? AND attempts = ?`

// settle runs one fenced update; a claim that is no longer current is
// errs.Conflict.
func (s *Store) settle(ctx context.Context, ex db.Executor, op string, l Lease, set string, args ...any) (settled, error) {
	args = append(args, l.ID, l.Owner, l.Attempt)
	var r settled
	err := s.db.GetStmt(ctx, ex, &r, s.q(`UPDATE outbox SET `+set+` WHERE `+fence+` RETURNING `+settledCols), args...)
	if errs.Is(db.Translate(err), errs.NotFound) {
		return r, errs.E(op, errs.Conflict, "row %d: lease of %s (attempt %d) is no longer current", l.ID, l.Owner, l.Attempt)
	}
	return r, errs.Wrap(op, db.Translate(err))
}

// MarkSent records that the provider accepted row id under channelMsgID.
// It is not fenced by a lease: a send that succeeded is the truth even when
// its worker's lease ran out meanwhile, and recording it stops the row from
// being sent again. A row that is already sent is errs.Conflict (it was
// sent twice), an unknown one errs.NotFound.
func (s *Store) MarkSent(ctx context.Context, id int64, channelMsgID string, at time.Time) error {
	const op = "outbox.Store.MarkSent"
	var cmid *string
	if channelMsgID != "" {
		cmid = &channelMsgID
	}
	err := s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		var r settled
		err := s.db.GetStmt(ctx, tx, &r, s.q(`UPDATE outbox SET state = 'sent', channel_msg_id = ?, sent_at = ?,
				lease_until = NULL, lease_owner = '', slot_at = NULL, next_at = ?
			WHERE id = ? AND state <> 'sent'
			RETURNING `+settledCols), cmid, dbTime(at), dbTime(at), id)
		if errs.Is(db.Translate(err), errs.NotFound) {
			if _, err := s.byID(ctx, tx, id); err != nil {
				return err
			}
			return errs.E("", errs.Conflict, "row %d is already sent", id)
		}
		if err != nil {
			return db.Translate(err)
		}
		return s.release(ctx, tx, r, at)
	})
	return errs.Wrap(op, err)
}

// MarkRetry puts the claimed row back to pending until nextAt, recording
// the failure. errs.Conflict when l is no longer the row's current claim.
func (s *Store) MarkRetry(ctx context.Context, l Lease, nextAt time.Time, code, reason string) error {
	return s.putBack(ctx, "outbox.Store.MarkRetry", l, nextAt,
		`state = 'pending', next_at = ?, lease_until = NULL, lease_owner = '', slot_at = NULL, last_code = ?, last_error = ?`,
		dbTime(nextAt), clip(code, maxCode), clip(reason, maxReason))
}

// MarkDeferred puts the claimed row back to pending until nextAt without
// counting the attempt: nothing was sent (the account's rate limit, a
// disabled account, a stopping worker). With reserved, nextAt is a send
// slot the rate limiter reserved for the row (Item.SlotAt).
func (s *Store) MarkDeferred(ctx context.Context, l Lease, nextAt time.Time, reserved bool) error {
	var slot *time.Time
	if reserved {
		t := dbTime(nextAt)
		slot = &t
	}
	return s.putBack(ctx, "outbox.Store.MarkDeferred", l, nextAt,
		`state = 'pending', next_at = ?, lease_until = NULL, lease_owner = '', slot_at = ?, attempts = attempts - 1`,
		dbTime(nextAt), slot)
}

// putBack runs a fenced update that returns the row to pending until
// next, and parks the conversation's later rows until then.
func (s *Store) putBack(ctx context.Context, op string, l Lease, next time.Time, set string, args ...any) error {
	return s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		r, err := s.settle(ctx, tx, op, l, set, args...)
		if err != nil {
			return err
		}
		return errs.Wrap(op, s.park(ctx, tx, r, next))
	})
}

// MarkDead gives the claimed row up with a code and reason. errs.Conflict
// when l is no longer the row's current claim.
func (s *Store) MarkDead(ctx context.Context, l Lease, at time.Time, code, reason string) error {
	return s.db.InTx(ctx, func(tx *sqlx.Tx) error { return s.markDead(ctx, tx, l, at, code, reason) })
}

func (s *Store) markDead(ctx context.Context, ex db.Executor, l Lease, at time.Time, code, reason string) error {
	const op = "outbox.Store.MarkDead"
	r, err := s.settle(ctx, ex, op, l,
		`state = 'dead', next_at = ?, lease_until = NULL, lease_owner = '', slot_at = NULL, last_code = ?, last_error = ?`,
		dbTime(at), clip(code, maxCode), clip(reason, maxReason))
	if err != nil {
		return err
	}
	return errs.Wrap(op, s.release(ctx, ex, r, at))
}

// Fallback gives the claimed row up and queues fb in its place, in one
// transaction, so that the message is never both lost and never queued
// twice: either the row is dead and fb pending, or nothing changed.
// fb.FallbackOf is set to the row's id. It returns fb as stored.
func (s *Store) Fallback(ctx context.Context, l Lease, at time.Time, code, reason string, fb Item) (Item, error) {
	const op = "outbox.Store.Fallback"
	fb.FallbackOf = l.ID
	err := s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := s.markDead(ctx, tx, l, at, code, reason); err != nil {
			return err
		}
		id, err := insert(ctx, tx, s.db.Dialect, fb)
		fb.ID = id
		return err
	})
	if err != nil {
		return Item{}, errs.Wrap(op, err)
	}
	out, err := s.byID(ctx, s.db, fb.ID)
	return out, errs.Wrap(op, err)
}

// Get returns one row of a tenant.
func (s *Store) Get(ctx context.Context, tenantID string, id int64) (Item, error) {
	const op = "outbox.Store.Get"
	var r itemRow
	if err := s.db.GetContext(ctx, &r, s.q(`SELECT `+itemCols+` FROM outbox WHERE tenant_id = ? AND id = ?`), tenantID, id); err != nil {
		return Item{}, errs.Wrap(op, db.Translate(err))
	}
	it, err := r.item()
	return it, errs.Wrap(op, err)
}

func (s *Store) byID(ctx context.Context, ex db.Executor, id int64) (Item, error) {
	var r itemRow
	if err := s.db.GetStmt(ctx, ex, &r, s.q(`SELECT `+itemCols+` FROM outbox WHERE id = ?`), id); err != nil {
		return Item{}, db.Translate(err)
	}
	return r.item()
}

// ByChannelMsgID finds the row a provider's delivery-status callback is
// about: the latest row of the account sent under channelMsgID.
func (s *Store) ByChannelMsgID(ctx context.Context, tenantID, accountID, channelMsgID string) (Item, error) {
	const op = "outbox.Store.ByChannelMsgID"
	if channelMsgID == "" {
		return Item{}, errs.E(op, errs.NotFound, "no channel message id")
	}
	var r itemRow
	if err := s.db.GetContext(ctx, &r, s.q(`SELECT `+itemCols+` FROM outbox
		WHERE tenant_id = ? AND account_id = ? AND channel_msg_id = ? ORDER BY id DESC LIMIT 1`),
		tenantID, accountID, channelMsgID); err != nil {
		return Item{}, errs.Wrap(op, db.Translate(err))
	}
	it, err := r.item()
	return it, errs.Wrap(op, err)
}

// DeadFilter selects dead letters. Empty fields match everything;
// BeforeID pages backwards (rows with a smaller id).
type DeadFilter struct {
	AccountID      string
	ConversationID string
	BeforeID       int64
	// Limit defaults to 100 and is at most 1000.
	Limit int
}

// ListDead lists a tenant's dead letters, newest first.
func (s *Store) ListDead(ctx context.Context, tenantID string, f DeadFilter) ([]Item, error) {
	const op = "outbox.Store.ListDead"
	switch {
	case f.Limit <= 0:
		f.Limit = 100
	case f.Limit > 1000:
		f.Limit = 1000
	}
	q := `SELECT ` + itemCols + ` FROM outbox WHERE tenant_id = ? AND state = 'dead'`
	args := []any{tenantID}
	if f.AccountID != "" {
		q += ` AND account_id = ?`
		args = append(args, f.AccountID)
	}
	if f.ConversationID != "" {
		q += ` AND conversation_id = ?`
		args = append(args, f.ConversationID)
	}
	if f.BeforeID > 0 {
		q += ` AND id < ?`
		args = append(args, f.BeforeID)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, f.Limit)
	var rows []itemRow
	if err := s.db.SelectContext(ctx, &rows, s.q(q), args...); err != nil {
		return nil, errs.Wrap(op, db.Translate(err))
	}
	out, err := items(rows)
	return out, errs.Wrap(op, err)
}

// Requeue gives a dead row another life, for an operator: pending, due at
// now, attempts and maximum age starting over. Its conversation's later
// rows that are still live wait for it again; rows already sent stay sent,
// so the requeued message arrives after them. A row that is not dead is
// errs.Conflict.
func (s *Store) Requeue(ctx context.Context, tenantID string, id int64, now time.Time) error {
	const op = "outbox.Store.Requeue"
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE outbox SET state = 'pending', attempts = 0, next_at = ?, queued_at = ?,
			lease_until = NULL, lease_owner = '', slot_at = NULL
		WHERE tenant_id = ? AND id = ? AND state = 'dead'`), dbTime(now), dbTime(now), tenantID, id)
	if err != nil {
		return errs.Wrap(op, db.Translate(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return errs.Wrap(op, err)
	} else if n == 0 {
		it, err := s.Get(ctx, tenantID, id)
		if err != nil {
			return errs.Wrap(op, err)
		}
		return errs.E(op, errs.Conflict, "row %d is %s, not dead", id, it.State)
	}
	return nil
}

// AccountStats is the backlog of one account.
type AccountStats struct {
	TenantID  string
	AccountID string
	// Pending counts live rows (pending or sending); OldestPending is the
	// age of the oldest one's QueuedAt (0 when none).
	Pending       int
	OldestPending time.Duration
	// Dead counts dead letters.
	Dead int
}

// Stats returns the backlog of every account with live or dead rows, for
// metrics, ordered by tenant and account.
func (s *Store) Stats(ctx context.Context, now time.Time) ([]AccountStats, error) {
	const op = "outbox.Store.Stats"
	var rows []struct {
		TenantID  string   `db:"tenant_id"`
		AccountID string   `db:"account_id"`
		Live      bool     `db:"live"`
		N         int      `db:"n"`
		Oldest    timeScan `db:"oldest"`
	}
	err := s.db.SelectContext(ctx, &rows, `SELECT tenant_id, account_id, state <> 'dead' AS live, COUNT(*) AS n, MIN(queued_at) AS oldest
		FROM outbox WHERE state IN ('pending', 'sending', 'dead')
		GROUP BY tenant_id, account_id, state <> 'dead'
		ORDER BY tenant_id, account_id`)
	if err != nil {
		return nil, errs.Wrap(op, db.Translate(err))
	}
	var out []AccountStats
	for _, r := range rows {
		if len(out) == 0 || out[len(out)-1].TenantID != r.TenantID || out[len(out)-1].AccountID != r.AccountID {
			out = append(out, AccountStats{TenantID: r.TenantID, AccountID: r.AccountID})
		}
		st := &out[len(out)-1]
		if !r.Live {
			st.Dead = r.N
			continue
		}
		st.Pending = r.N
		if r.Oldest.valid {
			st.OldestPending = max(0, now.Sub(r.Oldest.t))
		}
	}
	return out, nil
}

// PurgeSent deletes up to limit rows sent before before and returns how
// many it deleted. Sent rows are kept a while for delivery-status callbacks
// (ByChannelMsgID); dead rows stay until requeued.
func (s *Store) PurgeSent(ctx context.Context, before time.Time, limit int) (int, error) {
	const op = "outbox.Store.PurgeSent"
	if limit <= 0 {
		return 0, errs.E(op, errs.Invalid, "limit must be > 0")
	}
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM outbox WHERE id IN (
		SELECT id FROM outbox WHERE state = 'sent' AND sent_at < ? LIMIT ?)`), dbTime(before), limit)
	if err != nil {
		return 0, errs.Wrap(op, db.Translate(err))
	}
	n, err := res.RowsAffected()
	return int(n), errs.Wrap(op, err)
}

// Limits of the recorded failure.
const (
	maxCode   = 64
	maxReason = 1000
)

// clip bounds s to n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// timeScan reads a time column from either driver: time.Time from
// PostgreSQL and from SQLite columns it knows to be times, text where
// SQLite lost the declared type.
type timeScan struct {
	t     time.Time
	valid bool
}

// sqliteLayouts are the text forms SQLite may return: the driver's own
// (_time_format=sqlite) first.
var sqliteLayouts = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
}

// Scan implements sql.Scanner.
func (ts *timeScan) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*ts = timeScan{}
		return nil
	case time.Time:
		*ts = timeScan{t: x.UTC(), valid: true}
		return nil
	case []byte:
		return ts.parse(string(x))
	case string:
		return ts.parse(x)
	}
	return fmt.Errorf("outbox: cannot read %T as a time", v)
}

func (ts *timeScan) parse(s string) error {
	for _, l := range sqliteLayouts {
		if t, err := time.Parse(l, s); err == nil {
			*ts = timeScan{t: t.UTC(), valid: true}
			return nil
		}
	}
	return fmt.Errorf("outbox: cannot parse time %q", s)
}

func (ts timeScan) ptr() *time.Time {
	if !ts.valid {
		return nil
	}
	t := ts.t
	return &t
}
