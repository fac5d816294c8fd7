package kbsql_test

import (
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/agents/agentsql"
	"github.com/switchboard-acd/switchboard/internal/testenv"
	"github.com/switchboard-acd/switchboard/kb"
	"github.com/switchboard-acd/switchboard/kb/kbsql"
	"github.com/switchboard-acd/switchboard/kb/kbtest"
)

// TestStore runs the kb.Store conformance suite on every database. A
// database that is not reachable fails the test (testenv), never skips it.
func TestStore(t *testing.T) {
	for _, kind := range testenv.DBKinds {
		t.Run(kind, func(t *testing.T) {
			kbtest.Run(t, func(t *testing.T) kb.Store {
				d := testenv.DB(t, kind)
				tenants := agentsql.New(d)
				for _, id := range []string{kbtest.TenantA, kbtest.TenantB} {
					if _, err := tenants.TenantCreate(t.Context(), agents.Tenant{ID: id, Name: id, CreatedAt: time.Now()}); err != nil {
						t.Fatalf("create tenant %s: %v", id, err)
					}
				}
				return kbsql.New(d)
			})
		})
	}
}
