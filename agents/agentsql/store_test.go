package agentsql_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/agents/agentsql"
	"github.com/switchboard-acd/switchboard/agents/agentstest"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// TestStore runs the agents.Store conformance suite on every database.
func TestStore(t *testing.T) {
	for _, kind := range testenv.DBKinds {
		t.Run(kind, func(t *testing.T) {
			agentstest.Run(t, func(t *testing.T) agents.Store {
				return agentsql.New(testenv.DB(t, kind))
			})
		})
	}
}

// TestErrorMessages checks that driver errors reach clients as messages
// naming the object, not as driver text.
func TestErrorMessages(t *testing.T) {
	for _, kind := range testenv.DBKinds {
		t.Run(kind, func(t *testing.T) {
			ctx := t.Context()
			s := agentsql.New(testenv.DB(t, kind))
			if _, err := s.TenantCreate(ctx, agents.Tenant{ID: "t1", Name: "T1"}); err != nil {
				t.Fatal(err)
			}
			a := agents.Agent{TenantID: "t1", ID: "a1", Username: "alice", DisplayName: "Alice", Role: agents.RoleAgent, MaxSessions: 1, State: agents.StateOffline}
			if _, err := s.AgentCreate(ctx, a, "h"); err != nil {
				t.Fatal(err)
			}
			type result struct {
				Code errs.Code
				Msg  string
			}
			check := func(what string, err error, want result) {
				t.Helper()
				got := result{errs.CodeOf(err), errs.MessageOf(err)}
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("%s (-want +got):\n%s", what, d)
				}
			}
			_, err := s.AgentGet(ctx, "t1", "nope")
			check("AgentGet missing", err, result{errs.NotFound, "agent not found"})
			a.ID = "a2"
			_, err = s.AgentCreate(ctx, a, "h")
			check("AgentCreate taken username", err, result{errs.Duplicate, "agent already exists: username or id taken"})
			err = s.AgentSetSkills(ctx, "t1", "a1", []agents.Skill{{GroupID: "ghost", Proficiency: 1}})
			check("AgentSetSkills unknown group", err, result{errs.Invalid, "unknown skill group"})
			_, err = s.ReasonTreeSave(ctx, agents.ReasonTree{TenantID: "ghost"})
			check("ReasonTreeSave unknown tenant", err, result{errs.NotFound, "tenant not found"})
			_, err = s.ReasonTreeCurrent(ctx, "t1")
			check("ReasonTreeCurrent none", err, result{errs.NotFound, "reason tree not found"})
			_, err = s.GroupGet(ctx, "t1", "nope")
			check("GroupGet missing", err, result{errs.NotFound, "skill group not found"})
		})
	}
}
