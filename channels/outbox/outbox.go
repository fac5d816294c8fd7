// Package outbox owns the durable outbox of outbound channel messages
// (DESIGN D8): an agent's or the bot's reply to a WhatsApp, WeChat, WeCom or
// SMS customer is written to the outbox table in the same transaction as its
// message row (Insert), and Workers on any node send it through the
// account's channels.Sender.
//
// What it promises:
//
//   - nothing is lost: a row leaves the table's live states only as sent or
//     dead (a dead-letter an operator can requeue); a node that dies while
//     sending loses its lease and another node takes the row over;
//   - order per conversation: a conversation's next row waits until the
//     previous one is sent or dead, also across retries and nodes;
//   - per-account rate limits shared by all nodes (a GCRA in Redis): an
//     account never sends faster than its limit;
//   - retries with exponential backoff and full jitter for what may pass
//     later (throttling, outages, refused credentials), a fallback to the
//     account's SMS account when the customer-service window is closed or
//     the send failed for good, and a dead-letter otherwise;
//   - a disabled account's rows wait, untried, until it is enabled again.
//
// Delivery is at least once: a send whose outcome could not be recorded
// (the node died after the provider accepted, or the lease ran out during
// the call) is sent again. Every Outbound carries an IdempotencyKey for the
// providers that honour one. docs/outbox.md describes the whole life of a
// row.
package outbox

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// State is where a row is in its life.
type State string

// The states of a row. Pending and Sending are live: they hold up the later
// rows of their conversation. Sent and Dead are final.
const (
	// StatePending waits for NextAt.
	StatePending State = "pending"
	// StateSending is claimed by a worker until its lease runs out.
	StateSending State = "sending"
	// StateSent was accepted by the provider.
	StateSent State = "sent"
	// StateDead will not be tried again unless an operator requeues it.
	StateDead State = "dead"
)

// Final reports whether no worker will touch a row in state s again.
func (s State) Final() bool { return s == StateSent || s == StateDead }

// Item is one row of the outbox: one outbound message through one account.
type Item struct {
	// ID orders the rows of a conversation; it is assigned by Insert.
	ID             int64
	TenantID       string
	AccountID      string
	ConversationID string
	// MessageID is the session message this row sends; with AccountID it is
	// unique, so inserting the same message twice is refused.
	MessageID string
	// Out is what is handed to the Sender.
	Out      channels.Outbound
	State    State
	Attempts int
	// NextAt is when a pending row becomes due; for a sending row it equals
	// LeaseUntil; for a final row it is when it became final.
	NextAt time.Time
	// LeaseOwner and LeaseUntil are the claim of a sending row.
	LeaseOwner string
	LeaseUntil *time.Time
	// SlotAt is a send slot the account's rate limiter reserved for the
	// row; claimed at or after it, the row is sent without another slot.
	SlotAt *time.Time
	// LastCode and LastError describe the latest failure (the provider's
	// code and message), or why the row is dead.
	LastCode  string
	LastError string
	// ChannelMsgID is the provider's id of the sent message.
	ChannelMsgID string
	// FallbackOf is the ID of the row this one replaces as an SMS fallback
	// (0: none). It takes that row's place in the conversation's order.
	FallbackOf int64
	// QueuedAt starts the row's maximum age: the insert, or an operator's
	// requeue. CreatedAt is the insert.
	QueuedAt  time.Time
	CreatedAt time.Time
	SentAt    *time.Time
}

// Lease names one claim of a row: the worker holding it and the attempt it
// is on. Changes after a send are fenced by it, so a worker whose lease ran
// out cannot overwrite the work of the worker that took the row over.
type Lease struct {
	ID      int64
	Owner   string
	Attempt int
}

// Lease returns the claim a worker holds on it.
func (it Item) Lease() Lease { return Lease{ID: it.ID, Owner: it.LeaseOwner, Attempt: it.Attempts} }

// Insert queues it in the outbox through ex, normally the transaction that
// stores the message, so that the row exists exactly when the message does.
// Call it after the message append: that append locks the conversation row
// until commit, which makes the conversation's outbox ids follow its message
// order. A row queued behind a live row of its conversation starts parked
// until that row's outcome releases it; ex must be a transaction for that
// decision to be ordered against the release (outside one, a row queued
// just as its predecessor is sent may wait for the park horizon).
//
// TenantID, AccountID, ConversationID, MessageID, Out.Type and CreatedAt are
// required (errs.Invalid otherwise). Out.AccountID and Out.MessageID are set
// from the item, Out.IdempotencyKey defaults to the message id, NextAt
// defaults to CreatedAt. The row starts pending with no attempts. A message
// already queued through the account is errs.Duplicate; on PostgreSQL the
// refusal does not abort ex's transaction.
func Insert(ctx context.Context, ex db.Executor, d db.Dialect, it Item) error {
	_, err := insert(ctx, ex, d, it)
	return errs.Wrap("outbox.Insert", err)
}

// lockConversation takes the transaction-scoped lock that orders parking
// a new row of a conversation against releasing its next row (PostgreSQL;
// SQLite runs one writer at a time). Outside a transaction the lock would
// end with the statement: Insert must run in one (the message's own).
func lockConversation(ctx context.Context, ex db.Executor, d db.Dialect, tenantID, conversationID string) error {
	if _, ok := ex.(*sqlx.Tx); !ok || d != db.Postgres {
		return nil
	}
	_, err := ex.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))`, tenantID, conversationID)
	return db.Translate(err)
}

// insert is Insert returning the new row's id.
func insert(ctx context.Context, ex db.Executor, d db.Dialect, it Item) (int64, error) {
	it, payload, err := prepare(it)
	if err != nil {
		return 0, err
	}
	var fallback *int64
	if it.FallbackOf != 0 {
		fallback = &it.FallbackOf
	}
	// A row queued behind a live row of its conversation is parked at once
	// (see Store.Claim): that row's final outcome releases it. The
	// conversation's outbox lock orders this check against the release
	// (Store.release). An SMS fallback takes its dead row's place and is
	// due at once.
	parked := it.NextAt
	if it.FallbackOf == 0 {
		parked = it.NextAt.Add(parkHorizon)
		if err := lockConversation(ctx, ex, d, it.TenantID, it.ConversationID); err != nil {
			return 0, err
		}
	}
	ts := "?" // PostgreSQL types a CASE of parameters as text
	if d == db.Postgres {
		ts = "?::timestamptz"
	}
	var id int64
	err = ex.QueryRowxContext(ctx, rebind(d, `INSERT INTO outbox (tenant_id, account_id, conversation_id, message_id,
			payload, state, attempts, next_at, lease_owner, last_code, last_error, fallback_of, queued_at, created_at)
		SELECT ?, ?, ?, ?, ?, 'pending', 0,
			CASE WHEN EXISTS (SELECT 1 FROM outbox p WHERE p.tenant_id = ? AND p.conversation_id = ?
				AND p.state IN ('pending', 'sending')) THEN `+ts+` ELSE `+ts+` END,
			'', '', '', ?, ?, ?
		WHERE 1 = 1
		ON CONFLICT (tenant_id, message_id, account_id) DO NOTHING
		RETURNING id`),
		it.TenantID, it.AccountID, it.ConversationID, it.MessageID, payload,
		it.TenantID, it.ConversationID, dbTime(parked), dbTime(it.NextAt),
		fallback, dbTime(it.QueuedAt), dbTime(it.CreatedAt)).Scan(&id)
	if err != nil {
		if errs.Is(db.Translate(err), errs.NotFound) {
			return 0, errs.E("", errs.Duplicate, "message %s is already in the outbox of account %s", it.MessageID, it.AccountID)
		}
		return 0, db.Translate(err)
	}
	return id, nil
}

// prepare validates it for Insert, fills its defaults and encodes Out.
func prepare(it Item) (Item, string, error) {
	for _, f := range []struct{ name, v string }{
		{"tenant_id", it.TenantID}, {"account_id", it.AccountID},
		{"conversation_id", it.ConversationID}, {"message_id", it.MessageID}, {"out.type", it.Out.Type},
	} {
		if strings.TrimSpace(f.v) == "" {
			return it, "", errs.E("", errs.Invalid, "%s: required", f.name)
		}
	}
	if it.CreatedAt.IsZero() {
		return it, "", errs.E("", errs.Invalid, "created_at: required")
	}
	if it.NextAt.IsZero() {
		it.NextAt = it.CreatedAt
	}
	if it.QueuedAt.IsZero() {
		it.QueuedAt = it.CreatedAt
	}
	it.Out.AccountID = it.AccountID
	it.Out.MessageID = it.MessageID
	if it.Out.IdempotencyKey == "" {
		it.Out.IdempotencyKey = it.MessageID
	}
	b, err := json.Marshal(it.Out)
	if err != nil {
		return it, "", errs.E("", errs.Invalid, "out: %v", err)
	}
	return it, string(b), nil
}

// rebind turns the ? placeholders of q into d's.
func rebind(d db.Dialect, q string) string {
	if d == db.Postgres {
		return sqlx.Rebind(sqlx.DOLLAR, q)
	}
	return sqlx.Rebind(sqlx.QUESTION, q)
}

// dbTime is how times are written: UTC, at PostgreSQL's microsecond
// precision, so both dialects read back the same value and SQLite's text
// form compares correctly.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
