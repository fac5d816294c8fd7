package channelsql

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"time"

	"github.com/switchboard-acd/switchboard/channels/inbox"
	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

var _ inbox.LogStore = (*Store)(nil)

// inboundRow is one row of inbound_log.
type inboundRow struct {
	Seq        int64     `db:"seq"`
	TenantID   string    `db:"tenant_id"`
	AccountID  string    `db:"account_id"`
	DedupeKey  string    `db:"dedupe_key"`
	Payload    string    `db:"payload"`
	Attempts   int       `db:"attempts"`
	NextAt     time.Time `db:"next_at"`
	ReceivedAt time.Time `db:"received_at"`
}

const inboundCols = `seq, tenant_id, account_id, dedupe_key, payload, attempts, next_at, received_at`

// InboundAppend implements inbox.LogStore: one multi-row INSERT, in its
// own transaction, skipping keys already in the log.
func (s *Store) InboundAppend(ctx context.Context, entries []inbox.Entry) ([]int64, error) {
	const op = "channelsql.InboundAppend"
	if len(entries) == 0 {
		return nil, nil
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO inbound_log (tenant_id, account_id, dedupe_key, payload, next_at, received_at) VALUES `)
	args := make([]any, 0, 6*len(entries))
	for i, e := range entries {
		payload, err := json.Marshal(e.Inbound)
		if err != nil {
			return nil, errs.E(op, errs.Invalid, "inbound message: %v", err)
		}
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?)")
		args = append(args, e.TenantID, e.AccountID, e.DedupeKey, string(payload), ts(e.NextAt), ts(e.ReceivedAt))
	}
	q.WriteString(` ON CONFLICT DO NOTHING RETURNING seq, tenant_id, account_id, dedupe_key`)
	var rows []struct {
		Seq       int64  `db:"seq"`
		TenantID  string `db:"tenant_id"`
		AccountID string `db:"account_id"`
		DedupeKey string `db:"dedupe_key"`
	}
	if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(q.String()), args...); err != nil {
		return nil, errs.Wrap(op, db.Translate(err))
	}
	type key struct{ tenant, account, dedupe string }
	written := make(map[key]int64, len(rows))
	for _, r := range rows {
		written[key{r.TenantID, r.AccountID, r.DedupeKey}] = r.Seq
	}
	seqs := make([]int64, len(entries))
	for i, e := range entries {
		k := key{e.TenantID, e.AccountID, e.DedupeKey}
		seqs[i] = written[k]
		delete(written, k) // a second entry with the key in this batch was not written
	}
	return seqs, nil
}

// InboundClaim implements inbox.LogStore. The due entries are walked in
// the due index's order (a spilled entry is due when it was received, so
// one customer's entries keep their order), never over the entries nodes
// hold. On PostgreSQL the candidates are locked with SKIP LOCKED, so the
// sweepers of several nodes take different entries instead of waiting for
// each other.
func (s *Store) InboundClaim(ctx context.Context, now, until time.Time, limit int) ([]inbox.Entry, error) {
	const op = "channelsql.InboundClaim"
	if limit <= 0 {
		return nil, errs.E(op, errs.Invalid, "limit must be positive")
	}
	lock := ""
	if s.db.Dialect == db.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var rows []inboundRow
	err := s.db.SelectContext(ctx, &rows, s.db.Rebind(`UPDATE inbound_log SET next_at = ?, attempts = attempts + 1
		WHERE seq IN (SELECT seq FROM inbound_log WHERE next_at <= ? ORDER BY next_at, seq LIMIT ?`+lock+`)
		RETURNING `+inboundCols), ts(until), ts(now), limit)
	if err != nil {
		return nil, errs.Wrap(op, db.Translate(err))
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Seq < rows[j].Seq })
	out := make([]inbox.Entry, 0, len(rows))
	for _, r := range rows {
		e := inbox.Entry{
			Seq: r.Seq, TenantID: r.TenantID, AccountID: r.AccountID, DedupeKey: r.DedupeKey,
			Attempts: r.Attempts, NextAt: r.NextAt.UTC(), ReceivedAt: r.ReceivedAt.UTC(),
		}
		if err := json.Unmarshal([]byte(r.Payload), &e.Inbound); err != nil {
			// Written by InboundAppend from the same type: a row that does
			// not read back is damaged, and skipping it would lose it.
			return nil, errs.E(op, errs.Internal, "inbound log entry %d: %v", r.Seq, err)
		}
		if string(e.Inbound.Raw) == "null" {
			e.Inbound.Raw = nil // written as null when there was none
		}
		out = append(out, e)
	}
	return out, nil
}

// InboundDone implements inbox.LogStore.
func (s *Store) InboundDone(ctx context.Context, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	q, args := seqList(`DELETE FROM inbound_log WHERE seq IN `, seqs)
	_, err := s.db.ExecContext(ctx, s.db.Rebind(q), args...)
	return errs.Wrap("channelsql.InboundDone", db.Translate(err))
}

// InboundRelease implements inbox.LogStore.
func (s *Store) InboundRelease(ctx context.Context, seqs []int64, at time.Time, reason string) error {
	if len(seqs) == 0 {
		return nil
	}
	q, args := seqList(`UPDATE inbound_log SET next_at = ?, last_error = CASE WHEN ? = '' THEN last_error ELSE ? END WHERE seq IN `, seqs)
	args = append([]any{ts(at), reason, clipReason(reason)}, args...)
	_, err := s.db.ExecContext(ctx, s.db.Rebind(q), args...)
	return errs.Wrap("channelsql.InboundRelease", db.Translate(err))
}

// InboundBacklog implements inbox.LogStore.
func (s *Store) InboundBacklog(ctx context.Context) (int64, time.Time, error) {
	const op = "channelsql.InboundBacklog"
	var n int64
	if err := s.db.GetContext(ctx, &n, `SELECT COUNT(*) FROM inbound_log`); err != nil {
		return 0, time.Time{}, errs.Wrap(op, db.Translate(err))
	}
	if n == 0 {
		return 0, time.Time{}, nil
	}
	// The column itself, not MIN(): SQLite returns an aggregate of a
	// timestamp column as text.
	var oldest time.Time
	err := s.db.GetContext(ctx, &oldest, `SELECT received_at FROM inbound_log ORDER BY seq LIMIT 1`)
	if errs.Is(db.Translate(err), errs.NotFound) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, errs.Wrap(op, db.Translate(err))
	}
	return n, oldest.UTC(), nil
}

// seqList appends "(?, ?, ...)" for seqs to q.
func seqList(q string, seqs []int64) (string, []any) {
	args := make([]any, len(seqs))
	for i, v := range seqs {
		args[i] = v
	}
	return q + "(?" + strings.Repeat(", ?", len(seqs)-1) + ")", args
}

// clipReason bounds a stored failure reason.
func clipReason(s string) string {
	if len(s) > 1000 {
		s = strings.ToValidUTF8(s[:1000], "")
	}
	return s
}
