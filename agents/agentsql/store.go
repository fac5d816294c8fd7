// Package agentsql stores tenants, agents, skill groups, login tokens and
// reason trees in SQL (PostgreSQL or SQLite) for package agents. Statements
// are portable: written with ? placeholders and rebound for the driver, with
// explicit column lists read into private row structs that are mapped to the
// domain types.
package agentsql

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// Store implements agents.Store over a database.
type Store struct {
	db *db.DB
}

var _ agents.Store = (*Store)(nil)

// New returns a Store over d, which must be migrated.
func New(d *db.DB) *Store { return &Store{db: d} }

// lockSuffix is appended to a SELECT that must lock the row it reads until
// the transaction ends. PostgreSQL needs it; SQLite transactions take the
// database write lock at BEGIN (_txlock=immediate), which serialises writers
// already. NO KEY UPDATE does not block foreign-key checks of other rows
// that refer to the locked one.
func (s *Store) lockSuffix() string {
	if s.db.Dialect == db.Postgres {
		return " FOR NO KEY UPDATE"
	}
	return ""
}

func get(ctx context.Context, ex db.Executor, dest any, query string, args ...any) error {
	return ex.GetContext(ctx, dest, ex.Rebind(query), args...)
}

func sel(ctx context.Context, ex db.Executor, dest any, query string, args ...any) error {
	return ex.SelectContext(ctx, dest, ex.Rebind(query), args...)
}

func exec(ctx context.Context, ex db.Executor, query string, args ...any) (sql.Result, error) {
	return ex.ExecContext(ctx, ex.Rebind(query), args...)
}

// execOne runs an UPDATE or DELETE that must hit a row; none is
// sql.ErrNoRows, which translates to NotFound.
func execOne(ctx context.Context, ex db.Executor, query string, args ...any) error {
	n, err := execN(ctx, ex, query, args...)
	if err == nil && n == 0 {
		return sql.ErrNoRows
	}
	return err
}

// execN runs a statement and returns the number of rows it affected.
func execN(ctx context.Context, ex db.Executor, query string, args ...any) (int, error) {
	res, err := exec(ctx, ex, query, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// fail translates a driver error into an errs code and wraps it with op.
// what names the object for the NotFound and Duplicate messages. An error
// that already carries a code (from a nested step) keeps its message.
func fail(op string, err error, what string) error {
	if e := (*errs.Error)(nil); errors.As(err, &e) {
		return errs.Wrap(op, err)
	}
	err = db.Translate(err)
	switch errs.CodeOf(err) {
	case errs.NotFound:
		return &errs.Error{Op: op, Code: errs.NotFound, Msg: what + " not found", Err: err}
	case errs.Duplicate:
		return &errs.Error{Op: op, Code: errs.Duplicate, Msg: what + " already exists", Err: err}
	}
	return errs.Wrap(op, err)
}

// ts is a time as stored: UTC at the microsecond precision PostgreSQL keeps,
// so a value written equals the value read back on every dialect. A zero
// time means "now".
func ts(t time.Time) time.Time {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC().Truncate(time.Microsecond)
}
