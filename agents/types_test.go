package agents_test

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/agents"
)

func TestRoleAtLeast(t *testing.T) {
	roles := []agents.Role{agents.RoleAgent, agents.RoleSupervisor, agents.RoleAdmin} // ascending power
	for i, r := range roles {
		for j, other := range roles {
			if got, want := r.AtLeast(other), i >= j; got != want {
				t.Errorf("%s.AtLeast(%s) = %v, want %v", r, other, got, want)
			}
			p := agents.Principal{Role: r}
			if got, want := p.Can(other), i >= j; got != want {
				t.Errorf("Principal{%s}.Can(%s) = %v, want %v", r, other, got, want)
			}
		}
	}
	// Unknown roles grant nothing and are granted nothing.
	for _, bad := range []agents.Role{"", "root", "Admin"} {
		if bad.Valid() {
			t.Errorf("Role(%q).Valid() = true", bad)
		}
		for _, r := range roles {
			if bad.AtLeast(r) {
				t.Errorf("Role(%q).AtLeast(%s) = true", bad, r)
			}
			if r.AtLeast(bad) {
				t.Errorf("%s.AtLeast(%q) = true", r, bad)
			}
		}
	}
}

func TestStateValid(t *testing.T) {
	for _, s := range []agents.State{agents.StateOffline, agents.StateReady, agents.StateNotReady} {
		if !s.Valid() {
			t.Errorf("%s.Valid() = false", s)
		}
	}
	for _, s := range []agents.State{"", "busy", "READY"} {
		if s.Valid() {
			t.Errorf("State(%q).Valid() = true", s)
		}
	}
}

// TestAgentJSON pins the wire names and that no credential is serialised.
func TestAgentJSON(t *testing.T) {
	a := agents.Agent{TenantID: "t1", ID: "a1", Username: "alice", Skills: []agents.Skill{{GroupID: "g", Proficiency: 2}}}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{"created_at", "disabled", "display_name", "id", "max_sessions", "role", "skills", "state", "state_reason", "state_since", "tenant_id", "username"}
	if d := cmp.Diff(want, keys); d != "" {
		t.Errorf("Agent JSON keys (-want +got):\n%s", d)
	}
	tb, err := json.Marshal(agents.Token{Hash: "secret-hash"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(tb), "secret-hash") {
		t.Errorf("Token JSON leaks the hash: %s", tb)
	}
}
