// Package db opens the SQL database Switchboard keeps its truth in —
// PostgreSQL in production, an SQLite file for the embedded default — and
// gives the store adapters what they share: one executor interface for the
// database and its transactions, a transaction helper and the translation of
// driver errors into errs codes.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/switchboard-acd/switchboard/internal/errs"
)

// Dialect names the SQL flavour in use.
type Dialect string

// The supported dialects.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// Executor runs statements; both *sqlx.DB and *sqlx.Tx satisfy it, so a
// store method runs the same inside or outside a transaction.
type Executor interface {
	sqlx.ExtContext
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
}

// DB is an open database with its dialect.
type DB struct {
	*sqlx.DB
	Dialect Dialect

	stmts *stmtCache // prepared statements of GetStmt, SelectStmt, ExecStmt
}

// maxPostgresConns bounds the connections a node opens. More connections do
// not make a small server faster: PostgreSQL runs a process per connection,
// and past a few per core they only contend; group commit still batches
// the fsyncs of concurrent transactions.
const maxPostgresConns = 16

// Open connects to dsn (postgres://...), or opens (creating) the SQLite file
// switchboard.db in dataDir when dsn is empty.
func Open(ctx context.Context, dsn, dataDir string) (*DB, error) {
	if strings.TrimSpace(dsn) == "" {
		if err := os.MkdirAll(dataDir, 0o750); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		return OpenSQLite(ctx, filepath.Join(dataDir, "switchboard.db"))
	}
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return nil, fmt.Errorf("database url: only postgres:// URLs are supported")
	}
	dsn, err := withCustomPlans(dsn)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	x, err := sqlx.ConnectContext(ctx, "postgres", dsn)
	if err != nil {
		return nil, fmt.Errorf("connect postgres: %w", err)
	}
	x.SetMaxOpenConns(maxPostgresConns)
	x.SetMaxIdleConns(maxPostgresConns)
	return &DB{DB: x, Dialect: Postgres, stmts: &stmtCache{}}, nil
}

// withCustomPlans sets plan_cache_mode=force_custom_plan on the
// connections unless the URL sets it. Stores keep their statements prepared
// (GetStmt): parsed once, sent in one round trip. PostgreSQL's default
// would also switch a statement to a generic plan after five runs, and a
// generic plan made while a table was empty (a new install, a table that
// grew fast before it was analyzed) stays a sequential scan for the
// connection's life: primary-key lookups of messages were seen reading a
// thousand pages each. A custom plan costs tens of microseconds a run and
// follows the table as it grows.
func withCustomPlans(dsn string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", err
	}
	q := u.Query()
	if q.Get("plan_cache_mode") == "" {
		q.Set("plan_cache_mode", "force_custom_plan")
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// OpenSQLite opens an SQLite file in WAL mode with foreign keys and a busy
// timeout, so concurrent writers wait instead of failing.
func OpenSQLite(ctx context.Context, path string) (*DB, error) {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	q.Set("_time_format", "sqlite")
	x, err := sqlx.ConnectContext(ctx, "sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// SQLite has one writer; a few connections let readers proceed in WAL.
	x.SetMaxOpenConns(8)
	x.SetMaxIdleConns(8)
	return &DB{DB: x, Dialect: SQLite, stmts: &stmtCache{}}, nil
}

// InTx runs fn in a transaction, committing when it returns nil and rolling
// back otherwise (also on panic).
func (d *DB) InTx(ctx context.Context, fn func(tx *sqlx.Tx) error) (err error) {
	tx, err := d.BeginTxx(ctx, nil)
	if err != nil {
		return Translate(err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	return Translate(tx.Commit())
}

// Translate maps driver errors onto errs codes: no rows → NotFound, unique
// violation → Duplicate, foreign-key violation → Invalid. Others pass through.
func Translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return &errs.Error{Code: errs.NotFound, Msg: "not found", Err: err}
	}
	var pe *pq.Error
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505":
			return &errs.Error{Code: errs.Duplicate, Msg: "already exists", Err: err}
		case "23503":
			return &errs.Error{Code: errs.Invalid, Msg: "refers to a missing object", Err: err}
		case "40001", "40P01":
			return &errs.Error{Code: errs.Conflict, Msg: "concurrent update, retry", Err: err}
		}
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return &errs.Error{Code: errs.Duplicate, Msg: "already exists", Err: err}
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return &errs.Error{Code: errs.Invalid, Msg: "refers to a missing object", Err: err}
		}
	}
	return err
}
