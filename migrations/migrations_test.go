package migrations_test

import (
	"context"
	"testing"

	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/testenv"
	"github.com/switchboard-acd/switchboard/migrations"
)

func TestApplyIsIdempotent(t *testing.T) {
	for _, kind := range testenv.DBKinds {
		t.Run(kind, func(t *testing.T) {
			d := testenv.DB(t, kind) // applies everything once
			again, err := migrations.Apply(context.Background(), d)
			if err != nil {
				t.Fatalf("second apply: %v", err)
			}
			if len(again) != 0 {
				t.Fatalf("second apply ran %v, want nothing", again)
			}
			var n int
			if err := d.GetContext(context.Background(), &n, `SELECT COUNT(*) FROM schema_migrations`); err != nil {
				t.Fatal(err)
			}
			ms, _ := migrations.List(d.Dialect)
			if n != len(ms) {
				t.Fatalf("schema_migrations has %d rows, want %d", n, len(ms))
			}
		})
	}
}

func TestDialectsHaveTheSameMigrations(t *testing.T) {
	pg, err := migrations.List(db.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	lite, err := migrations.List(db.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	if len(pg) != len(lite) {
		t.Fatalf("postgres has %d migrations, sqlite %d", len(pg), len(lite))
	}
	for i := range pg {
		if pg[i].Name != lite[i].Name {
			t.Errorf("migration %d: postgres %s, sqlite %s", i+1, pg[i].Name, lite[i].Name)
		}
	}
}
