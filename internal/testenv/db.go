package testenv

import (
	"context"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/migrations"
)

// DBKinds lists the database backends every store test runs against.
var DBKinds = []string{"postgres", "sqlite"}

// DB opens a migrated database of its own for a test: a fresh schema on the
// shared PostgreSQL server (dropped afterwards) or an SQLite file in a temp
// directory.
func DB(t testing.TB, kind string) *db.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var d *db.DB
	switch kind {
	case "sqlite":
		var err error
		d, err = db.OpenSQLite(ctx, filepath.Join(t.TempDir(), "test.db"))
		if err != nil {
			t.Fatalf("open sqlite: %v", err)
		}
		t.Cleanup(func() { d.Close() })
	case "postgres":
		dsn, schema := PostgresSchema(t)
		var err error
		d, err = db.Open(ctx, dsn, "")
		if err != nil {
			t.Fatalf("postgres not reachable: %v", err)
		}
		_ = schema
		t.Cleanup(func() { d.Close() })
	default:
		t.Fatalf("unknown db kind %q", kind)
	}
	if _, err := migrations.Apply(ctx, d); err != nil {
		t.Fatalf("migrate %s: %v", kind, err)
	}
	return d
}

// PostgresSchema creates an empty schema on the test server and returns a
// DSN whose search_path points at it; the schema is dropped when the test
// ends.
func PostgresSchema(t testing.TB) (dsn, schema string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := db.Open(ctx, PostgresURL(), "")
	if err != nil {
		t.Fatalf("postgres not reachable at %s: %v", PostgresURL(), err)
	}
	schema = UniqueName("sbt_")
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	u, err := url.Parse(PostgresURL())
	if err != nil {
		t.Fatalf("parse postgres url: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), schema
}
