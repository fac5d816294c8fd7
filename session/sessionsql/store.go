// Package sessionsql is the SQL adapter of session.Store for PostgreSQL and
// SQLite. It owns the SQL for contacts, identities, conversations, sessions,
// session events, messages and notes; the queries are written once with `?`
// placeholders and rebound for the dialect in use.
//
// Times are written in UTC, truncated to microseconds (PostgreSQL's
// precision, so both dialects return the same value), and read back in UTC.
// On SQLite they are stored as text in one fixed format, so comparing and
// ordering them in SQL stays correct.
package sessionsql

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/session"
)

// Store implements session.Store on a database or, inside InTx, on one
// transaction of it.
type Store struct {
	db *db.DB
	ex db.Executor // d.DB, or the *sqlx.Tx the store is bound to
}

var _ session.Store = (*Store)(nil)

// New returns a Store on d.
func New(d *db.DB) *Store {
	return &Store{db: d, ex: d.DB}
}

// Limits of the list methods.
const (
	defaultLimit = 100
	maxLimit     = 1000
)

// InTx runs fn with a Store bound to one transaction, committing when fn
// returns nil. On a Store that is already bound to a transaction it runs fn
// with that Store: the outer InTx decides about commit and rollback.
// fn's error is returned as is.
func (s *Store) InTx(ctx context.Context, fn func(tx session.Store) error) error {
	return s.inTx(ctx, "sessionsql.InTx", func(tx *Store) error { return fn(tx) })
}

// inTx is InTx for the store's own multi-statement methods; errors of
// BEGIN and COMMIT are wrapped with op.
func (s *Store) inTx(ctx context.Context, op string, fn func(tx *Store) error) error {
	if s.txBound() {
		return fn(s)
	}
	var fnErr error
	err := s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		fnErr = fn(&Store{db: s.db, ex: tx})
		return fnErr
	})
	// Identity, not errors.Is: only BEGIN and COMMIT failures get op.
	if err != nil && err != fnErr {
		return errs.Wrap(op, err)
	}
	return err
}

func (s *Store) txBound() bool {
	_, ok := s.ex.(*sqlx.Tx)
	return ok
}

// q rebinds a query written with `?` placeholders for the dialect.
func (s *Store) q(query string) string { return s.ex.Rebind(query) }

// get, sel and exec run a `?` query as a prepared statement kept for the
// next call (db.GetStmt), translating driver errors.
func (s *Store) get(ctx context.Context, dest any, query string, args ...any) error {
	return db.Translate(s.db.GetStmt(ctx, s.ex, dest, s.q(query), args...))
}

func (s *Store) sel(ctx context.Context, dest any, query string, args ...any) error {
	return db.Translate(s.db.SelectStmt(ctx, s.ex, dest, s.q(query), args...))
}

// exec runs a statement and returns the number of rows it changed.
func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := s.db.ExecStmt(ctx, s.ex, s.q(query), args...)
	if err != nil {
		return 0, db.Translate(err)
	}
	n, err := res.RowsAffected()
	return n, db.Translate(err)
}

// execOne runs an UPDATE that must hit one row; none is NotFound.
func (s *Store) execOne(ctx context.Context, op, what, id, query string, args ...any) error {
	n, err := s.exec(ctx, query, args...)
	if err != nil {
		return errs.Wrap(op, err)
	}
	if n == 0 {
		return errs.E(op, errs.NotFound, "%s %s not found", what, id)
	}
	return nil
}

func clampLimit(n int) int {
	switch {
	case n <= 0:
		return defaultLimit
	case n > maxLimit:
		return maxLimit
	}
	return n
}

// dbTime is how a time is written: UTC with microsecond precision.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func dbNullTime(t *time.Time) sql.NullTime {
	if t == nil {
		return sql.NullTime{}
	}
	return sql.NullTime{Time: dbTime(*t), Valid: true}
}

func timePtr(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

// nullString maps "" to NULL for the nullable text columns.
func nullString(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}

// dbJSON validates and compacts a JSON document for a JSON column; empty
// means def.
func dbJSON(raw json.RawMessage, def string) (string, error) {
	if len(raw) == 0 {
		return def, nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return "", err
	}
	return b.String(), nil
}

// readJSON returns a JSON column's text compacted: PostgreSQL renders jsonb
// with spaces, SQLite returns what was written.
func readJSON(s string) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		return json.RawMessage(s)
	}
	return json.RawMessage(b.Bytes())
}
