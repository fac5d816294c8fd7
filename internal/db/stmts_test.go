package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// TestStmtCache: statements run through the cache return what the plain
// path returns, inside and outside transactions, are prepared once, and a
// transaction holding the only connection still runs a statement the
// cache has not seen (it must not wait for a second connection).
func TestStmtCache(t *testing.T) {
	for _, kind := range testenv.DBKinds {
		t.Run(kind, func(t *testing.T) {
			d := testenv.DB(t, kind)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			if _, err := d.ExecContext(ctx, `CREATE TABLE stmt_probe (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			before := db.CachedStmts(d)
			ins := d.Rebind(`INSERT INTO stmt_probe (k, v) VALUES (?, ?)`)
			for i, k := range []string{"a", "b", "c"} {
				if _, err := d.ExecStmt(ctx, d, ins, k, i); err != nil {
					t.Fatal(err)
				}
			}
			if got := db.CachedStmts(d) - before; got != 1 {
				t.Errorf("three runs of one statement prepared %d statements, want 1", got)
			}
			var v int
			get := d.Rebind(`SELECT v FROM stmt_probe WHERE k = ?`)
			if err := d.GetStmt(ctx, d, &v, get, "c"); err != nil || v != 2 {
				t.Errorf("GetStmt = %d, %v; want 2", v, err)
			}

			// One connection, held by the transaction: a statement seen for
			// the first time inside it runs unprepared.
			d.SetMaxOpenConns(1)
			err := d.InTx(ctx, func(tx *sqlx.Tx) error {
				if _, err := d.ExecStmt(ctx, tx, d.Rebind(`UPDATE stmt_probe SET v = v + 10 WHERE k = ?`), "a"); err != nil {
					return err
				}
				var ks []string
				if err := d.SelectStmt(ctx, tx, &ks, d.Rebind(`SELECT k FROM stmt_probe WHERE v >= ? ORDER BY k`), 1); err != nil {
					return err
				}
				if len(ks) != 3 || ks[0] != "a" {
					t.Errorf("in the transaction: %v, want [a b c]", ks)
				}
				// The cached statement, used by the transaction.
				return d.GetStmt(ctx, tx, &v, get, "a")
			})
			if err != nil {
				t.Fatalf("transaction on the only connection: %v", err)
			}
			if v != 10 {
				t.Errorf("read in the transaction: %d, want 10", v)
			}
			d.SetMaxOpenConns(4)
			// The statements first seen in the transaction get prepared
			// in the background.
			deadline := time.Now().Add(10 * time.Second)
			for db.CachedStmts(d)-before < 4 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := db.CachedStmts(d) - before; got != 4 {
				t.Errorf("%d statements cached, want 4", got)
			}
			if err := d.GetStmt(ctx, d, &v, get, "a"); err != nil || v != 10 {
				t.Errorf("after commit: %d, %v; want 10", v, err)
			}
			// Errors come back as from the plain path.
			if err := d.GetStmt(ctx, d, &v, get, "zz"); !errs.Is(db.Translate(err), errs.NotFound) {
				t.Errorf("missing row: %v, want not found", err)
			}
			if _, err := d.ExecStmt(ctx, d, `SELEC nonsense`); err == nil {
				t.Error("a malformed statement ran")
			}
		})
	}
}
