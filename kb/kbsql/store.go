// Package kbsql stores the knowledge base in SQL (PostgreSQL or SQLite)
// for package kb: entries and their change history, keyword rules, bot
// settings, the per-tenant KB revision and the unmatched-question bin.
// Statements are written once with ? placeholders and rebound for the
// driver, with explicit column lists read into private row structs that are
// mapped to the domain types. Lists inside an object (variants, keywords,
// answers, samples) are JSON columns: objects are read and written whole.
//
// Times are written in UTC truncated to microseconds (PostgreSQL's
// precision), so both dialects return what was written.
package kbsql

import (
	"context"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/kb"
)

// Store implements kb.Store on a database or, inside InTx, on one
// transaction of it.
type Store struct {
	db *db.DB
	ex db.Executor // db.DB, or the *sqlx.Tx the store is bound to
	// bumped holds the tenants whose revision this transaction has bumped
	// already: one bump per transaction tells other nodes just as well that
	// the KB changed, and a 20,000-row import does not rewrite the revision
	// row 20,000 times. nil outside a transaction; a tx-bound Store is used
	// by one goroutine, the one running the transaction.
	bumped map[string]bool
}

var _ kb.Store = (*Store)(nil)

// New returns a Store over d, which must be migrated.
func New(d *db.DB) *Store { return &Store{db: d, ex: d.DB} }

// InTx implements kb.Store. On a Store that is already bound to a
// transaction it runs fn with that Store: the outer InTx decides about
// commit and rollback. fn's error is returned as is.
func (s *Store) InTx(ctx context.Context, fn func(tx kb.Store) error) error {
	return s.inTx(ctx, "kbsql.InTx", func(tx *Store) error { return fn(tx) })
}

// inTx is InTx for the store's own multi-statement methods; errors of
// BEGIN and COMMIT are wrapped with op.
func (s *Store) inTx(ctx context.Context, op string, fn func(tx *Store) error) error {
	if s.txBound() {
		return fn(s)
	}
	var fnErr error
	err := s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		fnErr = fn(&Store{db: s.db, ex: tx, bumped: map[string]bool{}})
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

// q rebinds a query written with ? placeholders for the dialect.
func (s *Store) q(query string) string { return s.ex.Rebind(query) }

// get, sel and exec run a ? query, translating driver errors.
func (s *Store) get(ctx context.Context, dest any, query string, args ...any) error {
	return db.Translate(s.ex.GetContext(ctx, dest, s.q(query), args...))
}

func (s *Store) sel(ctx context.Context, dest any, query string, args ...any) error {
	return db.Translate(s.ex.SelectContext(ctx, dest, s.q(query), args...))
}

// exec runs a statement and returns the number of rows it changed.
func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := s.ex.ExecContext(ctx, s.q(query), args...)
	if err != nil {
		return 0, db.Translate(err)
	}
	n, err := res.RowsAffected()
	return n, db.Translate(err)
}

// lockSuffix is appended to a SELECT that must lock the row it reads until
// the transaction ends. SQLite transactions take the database write lock at
// BEGIN (_txlock=immediate), which serialises writers already.
func (s *Store) lockSuffix() string {
	if s.db.Dialect == db.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// collate makes ORDER BY on a text column byte order on PostgreSQL whatever
// the server's locale, as SQLite's default BINARY collation is.
func (s *Store) collate(col string) string {
	if s.db.Dialect == db.Postgres {
		return col + ` COLLATE "C"`
	}
	return col
}

// Revision implements kb.Store.
func (s *Store) Revision(ctx context.Context, tenantID string) (int64, error) {
	var rev int64
	err := s.get(ctx, &rev, `SELECT revision FROM kb_revisions WHERE tenant_id = ?`, tenantID)
	if errs.Is(err, errs.NotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, errs.Wrap("kbsql.Revision", err)
	}
	return rev, nil
}

// bump raises the tenant's revision, once per transaction. It runs first in
// every write, so on PostgreSQL the revision row's lock orders the KB
// writes of one tenant (no deadlock between two promotes touching the same
// objects in different orders) and revisions follow commit order.
func (s *Store) bump(ctx context.Context, tenantID string) error {
	if s.bumped[tenantID] {
		return nil
	}
	if _, err := s.exec(ctx, `INSERT INTO kb_revisions (tenant_id, revision) VALUES (?, 1)
		ON CONFLICT (tenant_id) DO UPDATE SET revision = kb_revisions.revision + 1`, tenantID); err != nil {
		if errs.Is(err, errs.Invalid) { // the foreign key to tenants
			return &errs.Error{Code: errs.NotFound, Msg: "tenant not found", Err: err}
		}
		return err
	}
	if s.bumped != nil {
		s.bumped[tenantID] = true
	}
	return nil
}

// fail wraps err with op, naming what when err is a bare NotFound or
// Duplicate of the driver. An error with a message of its own keeps it.
func fail(op string, err error, what string) error {
	msg := errs.MessageOf(err)
	switch {
	case errs.Is(err, errs.NotFound) && msg == "not found":
		return &errs.Error{Op: op, Code: errs.NotFound, Msg: what + " not found", Err: err}
	case errs.Is(err, errs.Duplicate) && msg == "already exists":
		return &errs.Error{Op: op, Code: errs.Duplicate, Msg: what + " already exists", Err: err}
	}
	return errs.Wrap(op, err)
}

// ts is a time as stored: UTC at microsecond precision. A zero time means
// now.
func ts(t time.Time) time.Time {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().Truncate(time.Microsecond)
}

// encode renders v for a JSON column.
func encode(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", errs.E("kbsql.encode", errs.Internal, "encode JSON column: %v", err)
	}
	return string(b), nil
}

// decode reads a JSON column into v.
func decode(col, s string, v any) error {
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return errs.E("kbsql.decode", errs.Internal, "stored %s is not valid JSON: %v", col, err)
	}
	return nil
}

// strings decodes a JSON list column; the result is never nil, so it
// serialises as [].
func decodeStrings(col, s string) ([]string, error) {
	var out []string
	if err := decode(col, s, &out); err != nil {
		return nil, err
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// capText cuts s to at most max bytes on a rune boundary.
func capText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// requireIDs refuses a write without the ids every row is keyed by.
func requireIDs(op, tenantID, id string) error {
	var p []kb.Problem
	if tenantID == "" {
		p = append(p, kb.Problem{Field: "tenant_id", Message: "must not be empty"})
	}
	if id == "" {
		p = append(p, kb.Problem{Field: "id", Message: "must not be empty"})
	}
	if len(p) == 0 {
		return nil
	}
	return errs.E(op, errs.Invalid, "%s: %s", p[0].Field, p[0].Message).With(errs.ProblemsKey, p)
}
