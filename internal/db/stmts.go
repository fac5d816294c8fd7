package db

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"

	"github.com/jmoiron/sqlx"
)

// maxCachedStmts bounds the statements a DB keeps prepared. Stores build
// queries from a bounded set of fragments; past the bound (a bug, or a
// query built from data) statements simply run unprepared.
const maxCachedStmts = 512

// stmtCache keeps one prepared statement per query text. database/sql
// prepares it once on each connection that runs it, so PostgreSQL parses
// and plans a hot statement once per connection instead of on every call,
// and lib/pq sends it in one round trip instead of two (parse-describe,
// then bind-execute).
type stmtCache struct {
	m  sync.Map // query → *sqlx.Stmt, or preparing{}
	n  atomic.Int32
	wg sync.WaitGroup // background prepares
}

// stmt returns the prepared statement of query, or nil when it is not
// cached (the caller runs it unprepared, which also reports its error).
// Inside a transaction (inTx) a statement not cached yet is prepared in the
// background: preparing takes a connection of its own, and a transaction
// waiting for one while holding its own could wait for ever when every
// connection is held by such a transaction (SQLite's single writer makes
// that likely).
func (d *DB) stmt(ctx context.Context, query string, inTx bool) *sqlx.Stmt {
	if d.stmts == nil {
		return nil
	}
	if v, ok := d.stmts.m.Load(query); ok {
		if st, ok := v.(*sqlx.Stmt); ok {
			return st
		}
		return nil // being prepared
	}
	if d.stmts.n.Load() >= maxCachedStmts {
		return nil
	}
	if inTx {
		if _, loaded := d.stmts.m.LoadOrStore(query, preparing{}); !loaded {
			d.stmts.wg.Go(func() { d.prepare(context.WithoutCancel(ctx), query) })
		}
		return nil
	}
	return d.prepare(ctx, query)
}

// preparing marks a query whose statement is being prepared.
type preparing struct{}

// prepare prepares query and caches the statement; nil on failure, when
// the query is left to run unprepared (and to be tried again).
func (d *DB) prepare(ctx context.Context, query string) *sqlx.Stmt {
	st, err := d.PreparexContext(ctx, query)
	if err != nil {
		d.stmts.m.CompareAndDelete(query, preparing{})
		return nil
	}
	for {
		v, loaded := d.stmts.m.LoadOrStore(query, st)
		if !loaded {
			d.stmts.n.Add(1)
			return st
		}
		if cur, ok := v.(*sqlx.Stmt); ok {
			_ = st.Close()
			return cur
		}
		if d.stmts.m.CompareAndSwap(query, v, st) {
			d.stmts.n.Add(1)
			return st
		}
	}
}

// on binds a cached statement to ex: the statement itself on the database,
// or a transaction's use of it (prepared on the transaction's connection
// once, then reused there). done releases a transaction's use.
func on(ctx context.Context, ex Executor, st *sqlx.Stmt) (s *sqlx.Stmt, done func()) {
	if tx, ok := ex.(*sqlx.Tx); ok {
		ts := tx.StmtxContext(ctx, st)
		return ts, func() { _ = ts.Close() }
	}
	return st, func() {}
}

func isTx(ex Executor) bool {
	_, ok := ex.(*sqlx.Tx)
	return ok
}

// GetStmt runs a rebound query returning one row on ex (d itself or one of
// its transactions) as a prepared statement kept for the next call.
func (d *DB) GetStmt(ctx context.Context, ex Executor, dest any, query string, args ...any) error {
	st := d.stmt(ctx, query, isTx(ex))
	if st == nil {
		return ex.GetContext(ctx, dest, query, args...)
	}
	s, done := on(ctx, ex, st)
	defer done()
	return s.GetContext(ctx, dest, args...)
}

// SelectStmt is GetStmt for many rows.
func (d *DB) SelectStmt(ctx context.Context, ex Executor, dest any, query string, args ...any) error {
	st := d.stmt(ctx, query, isTx(ex))
	if st == nil {
		return ex.SelectContext(ctx, dest, query, args...)
	}
	s, done := on(ctx, ex, st)
	defer done()
	return s.SelectContext(ctx, dest, args...)
}

// ExecStmt is GetStmt for statements without rows.
func (d *DB) ExecStmt(ctx context.Context, ex Executor, query string, args ...any) (sql.Result, error) {
	st := d.stmt(ctx, query, isTx(ex))
	if st == nil {
		return ex.ExecContext(ctx, query, args...)
	}
	s, done := on(ctx, ex, st)
	defer done()
	return s.ExecContext(ctx, args...)
}

// Close waits for statements being prepared, then closes the database
// (and with it every prepared statement).
func (d *DB) Close() error {
	if d.stmts != nil {
		d.stmts.wg.Wait()
	}
	return d.DB.Close()
}
