package db_test

import (
	"testing"

	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// TestCustomPlans: PostgreSQL connections plan every run of a prepared
// statement for its parameters (see withCustomPlans).
func TestCustomPlans(t *testing.T) {
	d, err := db.Open(t.Context(), testenv.PostgresURL(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var mode string
	if err := d.GetContext(t.Context(), &mode, `SHOW plan_cache_mode`); err != nil {
		t.Fatal(err)
	}
	if mode != "force_custom_plan" {
		t.Errorf("plan_cache_mode = %q, want force_custom_plan", mode)
	}
}
