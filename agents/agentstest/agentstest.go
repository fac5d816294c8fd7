// Package agentstest is the conformance suite for agents.Store: one set of
// tests that every implementation must pass, so adapters cannot drift apart
// in the contract the rest of the server relies on (NotFound across
// tenants, Duplicate on taken keys, atomic reason-tree versions...).
package agentstest

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// Run runs the suite. newStore must return an empty store of its own for
// each subtest; it is called from parallel subtests.
func Run(t *testing.T, newStore func(t *testing.T) agents.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s agents.Store)
	}{
		{"Tenants", testTenants},
		{"AgentCreateGet", testAgentCreateGet},
		{"AgentCreateInvalid", testAgentCreateInvalid},
		{"AgentDuplicate", testAgentDuplicate},
		{"AgentGetByUsername", testAgentGetByUsername},
		{"AgentFindByUsername", testAgentFindByUsername},
		{"AgentList", testAgentList},
		{"AgentUpdate", testAgentUpdate},
		{"AgentSetPassword", testAgentSetPassword},
		{"AgentSetState", testAgentSetState},
		{"AgentSetSkills", testAgentSetSkills},
		{"AgentSetSkillsConcurrent", testAgentSetSkillsConcurrent},
		{"Groups", testGroups},
		{"GroupNormalize", testGroupNormalize},
		{"GroupInvalid", testGroupInvalid},
		{"GroupDeleteCascadesSkills", testGroupDeleteCascadesSkills},
		{"TenantIsolation", testTenantIsolation},
		{"Tokens", testTokens},
		{"TokenRevokeAgent", testTokenRevokeAgent},
		{"TokenDeleteExpired", testTokenDeleteExpired},
		{"ReasonTrees", testReasonTrees},
		{"ReasonTreeConcurrentSave", testReasonTreeConcurrentSave},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// t0 has microsecond precision, what every store must keep.
var t0 = time.Date(2025, 3, 1, 9, 30, 15, 123456000, time.UTC)

func wantCode(t *testing.T, what string, err error, code errs.Code) {
	t.Helper()
	if got := errs.CodeOf(err); got != code {
		t.Fatalf("%s: error code = %q (%v), want %q", what, got, err, code)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func diff(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

func mustTenant(t *testing.T, s agents.Store, id string) agents.Tenant {
	t.Helper()
	tn, err := s.TenantCreate(t.Context(), agents.Tenant{ID: id, Name: "Tenant " + id, CreatedAt: t0})
	must(t, "TenantCreate "+id, err)
	return tn
}

func mustGroup(t *testing.T, s agents.Store, tenantID, id string) agents.Group {
	t.Helper()
	g, err := s.GroupCreate(t.Context(), newGroup(tenantID, id))
	must(t, "GroupCreate "+id, err)
	return g
}

func newGroup(tenantID, id string) agents.Group {
	g := agents.NewGroup(tenantID, id, "Group "+id)
	g.MaxQueue = 10
	g.CreatedAt = t0
	return g
}

func newAgent(tenantID, id, username string, skills ...agents.Skill) agents.Agent {
	if skills == nil {
		skills = []agents.Skill{}
	}
	return agents.Agent{
		TenantID:    tenantID,
		ID:          id,
		Username:    username,
		DisplayName: "Agent " + username,
		Role:        agents.RoleAgent,
		MaxSessions: 3,
		State:       agents.StateOffline,
		StateSince:  t0,
		Skills:      skills,
		CreatedAt:   t0,
	}
}

func mustAgent(t *testing.T, s agents.Store, a agents.Agent) agents.Agent {
	t.Helper()
	got, err := s.AgentCreate(t.Context(), a, "hash-"+a.ID)
	must(t, "AgentCreate "+a.ID, err)
	return got
}

func testTenants(t *testing.T, s agents.Store) {
	ctx := t.Context()
	b := mustTenant(t, s, "t-b")
	a := mustTenant(t, s, "t-a")
	diff(t, "created tenant", agents.Tenant{ID: "t-a", Name: "Tenant t-a", CreatedAt: t0}, a)

	got, err := s.TenantGet(ctx, "t-a")
	must(t, "TenantGet", err)
	diff(t, "TenantGet", a, got)

	list, err := s.TenantList(ctx)
	must(t, "TenantList", err)
	diff(t, "TenantList (ordered by id)", []agents.Tenant{a, b}, list)

	_, err = s.TenantGet(ctx, "nope")
	wantCode(t, "TenantGet missing", err, errs.NotFound)
	_, err = s.TenantCreate(ctx, agents.Tenant{ID: "t-a", Name: "again", CreatedAt: t0})
	wantCode(t, "TenantCreate duplicate", err, errs.Duplicate)
	_, err = s.TenantCreate(ctx, agents.Tenant{ID: "", Name: "x"})
	wantCode(t, "TenantCreate empty id", err, errs.Invalid)
	_, err = s.TenantCreate(ctx, agents.Tenant{ID: "t-c", Name: ""})
	wantCode(t, "TenantCreate empty name", err, errs.Invalid)
}

func testAgentCreateGet(t *testing.T, s agents.Store) {
	ctx := t.Context()
	mustTenant(t, s, "t1")
	mustGroup(t, s, "t1", "sales")
	mustGroup(t, s, "t1", "billing")

	in := newAgent("t1", "a1", "alice",
		agents.Skill{GroupID: "sales", Proficiency: 2, Weight: 60},
		agents.Skill{GroupID: "billing", Proficiency: 5}) // weight 0: the default
	in.Role = agents.RoleSupervisor
	in.State = agents.StateNotReady
	in.StateReason = "training"
	created := mustAgent(t, s, in)

	want := in
	want.Skills = []agents.Skill{ // ordered by group
		{GroupID: "billing", Proficiency: 5, Weight: agents.DefaultSkillWeight},
		{GroupID: "sales", Proficiency: 2, Weight: 60},
	}
	diff(t, "AgentCreate result", want, created)

	got, err := s.AgentGet(ctx, "t1", "a1")
	must(t, "AgentGet", err)
	diff(t, "AgentGet", want, got)

	bare := mustAgent(t, s, newAgent("t1", "a2", "bob"))
	if bare.Skills == nil || len(bare.Skills) != 0 {
		t.Errorf("agent without skills: Skills = %#v, want empty non-nil slice", bare.Skills)
	}

	// A zero CreatedAt is stamped by the store.
	stamped := newAgent("t1", "a3", "carol")
	stamped.CreatedAt = time.Time{}
	got, err = s.AgentCreate(ctx, stamped, "h")
	must(t, "AgentCreate zero time", err)
	if got.CreatedAt.IsZero() || got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt = %v, want a UTC time set by the store", got.CreatedAt)
	}

	_, err = s.AgentGet(ctx, "t1", "missing")
	wantCode(t, "AgentGet missing", err, errs.NotFound)
}

func testAgentCreateInvalid(t *testing.T, s agents.Store) {
	ctx := t.Context()
	mustTenant(t, s, "t1")
	mustGroup(t, s, "t1", "sales")

	cases := []struct {
		name   string
		mutate func(a *agents.Agent)
		hash   string
		code   errs.Code
	}{
		{"missing tenant", func(a *agents.Agent) { a.TenantID = "ghost" }, "h", errs.Invalid},
		{"bad username", func(a *agents.Agent) { a.Username = "A" }, "h", errs.Invalid},
		{"bad role", func(a *agents.Agent) { a.Role = "root" }, "h", errs.Invalid},
		{"max sessions 0", func(a *agents.Agent) { a.MaxSessions = 0 }, "h", errs.Invalid},
		{"max sessions 51", func(a *agents.Agent) { a.MaxSessions = 51 }, "h", errs.Invalid},
		{"bad state", func(a *agents.Agent) { a.State = "busy" }, "h", errs.Invalid},
		{"proficiency 6", func(a *agents.Agent) { a.Skills = []agents.Skill{{GroupID: "sales", Proficiency: 6}} }, "h", errs.Invalid},
		{"skill weight 101", func(a *agents.Agent) { a.Skills = []agents.Skill{{GroupID: "sales", Proficiency: 3, Weight: 101}} }, "h", errs.Invalid},
		{"skill weight -1", func(a *agents.Agent) { a.Skills = []agents.Skill{{GroupID: "sales", Proficiency: 3, Weight: -1}} }, "h", errs.Invalid},
		{"unknown group", func(a *agents.Agent) { a.Skills = []agents.Skill{{GroupID: "ghost", Proficiency: 3}} }, "h", errs.Invalid},
		{"empty hash", func(a *agents.Agent) {}, "", errs.Invalid},
	}
	for _, c := range cases {
		a := newAgent("t1", "a1", "alice")
		c.mutate(&a)
		_, err := s.AgentCreate(ctx, a, c.hash)
		wantCode(t, "AgentCreate "+c.name, err, c.code)
	}
	// Nothing of the failed attempts is left behind.
	list, err := s.AgentList(ctx, "t1")
	must(t, "AgentList", err)
	diff(t, "agents after failed creates", []agents.Agent{}, list)
}

func testAgentDuplicate(t *testing.T, s agents.Store) {
	ctx := t.Context()
	mustTenant(t, s, "t1")
	mustTenant(t, s, "t2")
	mustAgent(t, s, newAgent("t1", "a1", "alice"))

	_, err := s.AgentCreate(ctx, newAgent("t1", "a2", "alice"), "h")
	wantCode(t, "same username, same tenant", err, errs.Duplicate)
	_, err = s.AgentCreate(ctx, newAgent("t1", "a1", "alicia"), "h")
	wantCode(t, "same id, same tenant", err, errs.Duplicate)

	// Usernames and ids are per tenant.
	_, err = s.AgentCreate(ctx, newAgent("t2", "a1", "alice"), "h")
	must(t, "same username and id in another tenant", err)
}

func testAgentGetByUsername(t *testing.T, s agents.Store) {
	ctx := t.Context()
	mustTenant(t, s, "t1")
	mustTenant(t, s, "t2")
	mustGroup(t, s, "t1", "sales")
	alice := mustAgent(t, s, newAgent("t1", "a1", "alice", agents.Skill{GroupID: "sales", Proficiency: 4}))

	got, hash, err := s.AgentGetByUsername(ctx, "t1", "alice")
	must(t, "AgentGetByUsername", err)
	diff(t, "agent", alice, got)
	if hash != "hash-a1" {
		t.Errorf("hash = %q, want %q", hash, "hash-a1")
	}

	_, _, err = s.AgentGetByUsername(ctx, "t1", "nobody")
	wantCode(t, "unknown username", err, errs.NotFound)
	_, _, err = s.AgentGetByUsername(ctx, "t2", "alice")
	wantCode(t, "username of another tenant", err, errs.NotFound)
}

func testAgentFindByUsername(t *testing.T, s agents.Store) {
	ctx := t.Context()
	mustTenant(t, s, "t2")
	mustTenant(t, s, "t1")
	mustGroup(t, s, "t1", "sales")
	mustGroup(t, s, "t2", "sales")
	a1 := mustAgent(t, s, newAgent("t1", "a1", "alice", agents.Skill{GroupID: "sales", Proficiency: 1}))
	a2 := mustAgent(t, s, newAgent("t2", "x9", "alice", agents.Skill{GroupID: "sales", Proficiency: 5}))
	mustAgent(t, s, newAgent("t1", "b1", "bob"))

	got, err := s.AgentFindByUsername(ctx, "alice")
	must(t, "AgentFindByUsername", err)
	diff(t, "agents named alice (ordered by tenant)", []agents.Agent{a1, a2}, got)

	got, err = s.AgentFindByUsername(ctx, "carol")
	must(t, "AgentFindByUsername none", err)
	if len(got) != 0 {
		t.Errorf("AgentFindByUsername(carol) = %v, want none", got)
	}
}

func testAgentList(t *testing.T, s agents.Store) {
	ctx := t.Context()
	mustTenant(t, s, "t1")
	mustTenant(t, s, "t2")
	mustGroup(t, s, "t1", "sales")
	mustGroup(t, s, "t1", "billing")
	mustGroup(t, s, "t2", "sales")
	zed := mustAgent(t, s, newAgent("t1", "a1", "zed", agents.Skill{GroupID: "sales", Proficiency: 3}))
	amy := mustAgent(t, s, newAgent("t1", "a2", "amy",
		agents.Skill{GroupID: "sales", Proficiency: 1}, agents.Skill{GroupID: "billing", Proficiency: 2}))
	max := mustAgent(t, s, newAgent("t1", "a3", "max"))
	other := mustAgent(t, s, newAgent("t2", "a1", "amy", agents.Skill{GroupID: "sales", Proficiency: 5}))

	got, err := s.AgentList(ctx, "t1")
	must(t, "AgentList t1", err)
	diff(t, "AgentList t1 (ordered by username)", []agents.Agent{amy, max, zed}, got)

	got, err = s.AgentList(ctx, "t2")
	must(t, "AgentList t2", err)
	diff(t, "AgentList t2", []agents.Agent{other}, got)

	got, err = s.AgentList(ctx, "empty")
	must(t, "AgentList unknown tenant", err)
	if len(got) != 0 {
		t.Errorf("AgentList(unknown tenant) = %v, want none", got)
	}
}

func testAgentUpdate(t *testing.T, s agents.Store) {
	ctx := t.Context()
	mustTenant(t, s, "t1")
	mustGroup(t, s, "t1", "sales")
	orig := mustAgent(t, s, newAgent("t1", "a1", "alice", agents.Skill{GroupID: "sales", Proficiency: 3}))

	upd := orig
	upd.DisplayName = "Alice A."
	upd.Role = agents.RoleAdmin
	upd.MaxSessions = 7
	upd.Disabled = true
	// Not part of the profile: must be ignored.
	upd.Username = "mallory"
	upd.State = agents.StateReady
	upd.Skills = nil
	upd.CreatedAt = t0.Add(time.Hour)

	got, err := s.AgentUpdate(ctx, upd)
	must(t, "AgentUpdate", err)
	want := orig
	want.DisplayName, want.Role, want.MaxSessions, want.Disabled = "Alice A.", agents.RoleAdmin, 7, true
	diff(t, "AgentUpdate result", want, got)
	read, err := s.AgentGet(ctx, "t1", "a1")
	must(t, "AgentGet", err)
	diff(t, "AgentGet after update", want, read)

	missing := want
	missing.ID = "nope"
	_, err = s.AgentUpdate(ctx, missing)
	wantCode(t, "AgentUpdate missing", err, errs.NotFound)

	bad := want
	bad.Role = "root"
	_, err = s.AgentUpdate(ctx, bad)
	wantCode(t, "AgentUpdate bad role", err, errs.Invalid)
	bad = want
	bad.MaxSessions = 0
	_, err = s.AgentUpdate(ctx, bad)
	wantCode(t, "AgentUpdate max sessions 0", err, errs.Invalid)
	bad = want
	bad.DisplayName = ""
	_, err = s.AgentUpdate(ctx, bad)
	wantCode(t, "AgentUpdate empty display name", err, errs.Invalid)
}

func testAgentSetPassword(t *testing.T, s agents.Store) {
	ctx := t.Context()
	mustTenant(t, s, "t1")
	mustAgent(t, s, newAgent("t1", "a1", "alice"))

	must(t, "AgentSetPassword", s.AgentSetPassword(ctx, "t1", "a1", "new-hash"))
	_, hash, err := s.AgentGetByUsername(ctx, "t1", "alice")
	must(t, "AgentGetByUsername", err)
	if hash != "new-hash" {
		t.Errorf("hash = %q, want new-hash", hash)
	}
	wantCode(t, "AgentSetPassword missing", s.AgentSetPassword(ctx, "t1", "nope", "h"), errs.NotFound)
	wantCode(t, "AgentSetPassword empty", s.AgentSetPassword(ctx, "t1", "a1", ""), errs.Invalid)
}

func testAgentSetState(t *testing.T, s agents.Store) {
	ctx := t.Context()
	mustTenant(t, s, "t1")
	orig := mustAgent(t, s, newAgent("t1", "a1", "alice"))

	since := t0.Add(90 * time.Minute)
	must(t, "AgentSetState", s.AgentSetState(ctx, "t1", "a1", agents.StateNotReady, "lunch", since))
	got, err := s.AgentGet(ctx, "t1", "a1")
	must(t, "AgentGet", err)
	want := orig
	want.State, want.StateReason, want.StateSince = agents.StateNotReady, "lunch", since
	diff(t, "agent after AgentSetState", want, got)

	// Times in another zone are stored as the same instant.
	local := time.FixedZone("UTC+8", 8*3600)
	must(t, "AgentSetState ready", s.AgentSetState(ctx, "t1", "a1", agents.StateReady, "", since.In(local)))
	got, err = s.AgentGet(ctx, "t1", "a1")
	must(t, "AgentGet", err)
	if !got.StateSince.Equal(since) || got.StateSince.Location() != time.UTC {
		t.Errorf("StateSince = %v, want %v in UTC", got.StateSince, since)
	}

	wantCode(t, "AgentSetState missing", s.AgentSetState(ctx, "t1", "nope", agents.StateReady, "", since), errs.NotFound)
	wantCode(t, "AgentSetState invalid", s.AgentSetState(ctx, "t1", "a1", "busy", "", since), errs.Invalid)
}

func testAgentSetSkills(t *testing.T, s agents.Store) {
	ctx := t.Context()
	mustTenant(t, s, "t1")
	mustTenant(t, s, "t2")
	for _, g := range []string{"g1", "g2", "g3"} {
		mustGroup(t, s, "t1", g)
	}
	mustGroup(t, s, "t2", "foreign")
	mustAgent(t, s, newAgent("t1", "a1", "alice", agents.Skill{GroupID: "g1", Proficiency: 1}))

	skills := func() []agents.Skill {
		a, err := s.AgentGet(ctx, "t1", "a1")
		must(t, "AgentGet", err)
		return a.Skills
	}

	must(t, "AgentSetSkills replace", s.AgentSetSkills(ctx, "t1", "a1", []agents.Skill{
		{GroupID: "g3", Proficiency: 5, Weight: 100}, {GroupID: "g2", Proficiency: 2},
	}))
	diff(t, "skills after replace", []agents.Skill{
		{GroupID: "g2", Proficiency: 2, Weight: agents.DefaultSkillWeight},
		{GroupID: "g3", Proficiency: 5, Weight: 100},
	}, skills())

	must(t, "AgentSetSkills clear", s.AgentSetSkills(ctx, "t1", "a1", nil))
	diff(t, "skills after clear", []agents.Skill{}, skills())

	must(t, "AgentSetSkills again", s.AgentSetSkills(ctx, "t1", "a1", []agents.Skill{{GroupID: "g1", Proficiency: 4, Weight: 7}}))

	wantCode(t, "unknown group", s.AgentSetSkills(ctx, "t1", "a1", []agents.Skill{{GroupID: "ghost", Proficiency: 3}}), errs.Invalid)
	wantCode(t, "group of another tenant", s.AgentSetSkills(ctx, "t1", "a1", []agents.Skill{{GroupID: "foreign", Proficiency: 3}}), errs.Invalid)
	wantCode(t, "duplicate group", s.AgentSetSkills(ctx, "t1", "a1", []agents.Skill{{GroupID: "g1", Proficiency: 3}, {GroupID: "g1", Proficiency: 2}}), errs.Invalid)
	wantCode(t, "proficiency 0", s.AgentSetSkills(ctx, "t1", "a1", []agents.Skill{{GroupID: "g1", Proficiency: 0}}), errs.Invalid)
	wantCode(t, "weight 101", s.AgentSetSkills(ctx, "t1", "a1", []agents.Skill{{GroupID: "g1", Proficiency: 3, Weight: 101}}), errs.Invalid)
	wantCode(t, "missing agent", s.AgentSetSkills(ctx, "t1", "nope", []agents.Skill{{GroupID: "g1", Proficiency: 3}}), errs.NotFound)
	// A failed replacement leaves the previous skills.
	diff(t, "skills after failed replacements", []agents.Skill{{GroupID: "g1", Proficiency: 4, Weight: 7}}, skills())
}

func testAgentSetSkillsConcurrent(t *testing.T, s agents.Store) {
	ctx := t.Context()
	mustTenant(t, s, "t1")
	const n = 8
	for i := range n {
		mustGroup(t, s, "t1", fmt.Sprintf("g%d", i))
	}
	mustAgent(t, s, newAgent("t1", "a1", "alice"))

	sets := make([][]agents.Skill, n)
	for i := range n {
		// Overlapping sets, so interleaved deletes and inserts would collide.
		sets[i] = []agents.Skill{{GroupID: fmt.Sprintf("g%d", i), Proficiency: 1, Weight: 1}, {GroupID: fmt.Sprintf("g%d", (i+1)%n), Proficiency: 2, Weight: i + 1}}
	}
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for i := range n {
		wg.Go(func() { errc <- s.AgentSetSkills(ctx, "t1", "a1", sets[i]) })
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		must(t, "concurrent AgentSetSkills", err)
	}
	a, err := s.AgentGet(ctx, "t1", "a1")
	must(t, "AgentGet", err)
	for _, set := range sets {
		want := append([]agents.Skill(nil), set...)
		sort.Slice(want, func(i, j int) bool { return want[i].GroupID < want[j].GroupID })
		if cmp.Equal(want, a.Skills) {
			return
		}
	}
	t.Errorf("skills after concurrent replacements = %v, want exactly one of the submitted sets", a.Skills)
}

func testGroups(t *testing.T, s agents.Store) {
	ctx := t.Context()
	mustTenant(t, s, "t1")
	in := newGroup("t1", "g2")
	in.Name = "Sales"
	in.Strategy = "round_robin"
	in.SLThresholdSec = 30
	in.MaxQueue = 0
	in.FallbackStrategy = "least_busy"
	in.Weight = 2.5
	in.PriorityStepSec = 90
	in.MaxWaitSec = 600
	in.OverflowAction = agents.OverflowWithMessage
	in.StickyWaitSec = 45
	in.RingStepSec = 20
	in.OfferTimeoutSec = 30
	in.MaxMissedOffers = 3
	in.Hours = berlinHours
	in.OffHoursMessage = "We are closed / 已下班"
	in.BusyMessage = "All agents are busy"
	sales, err := s.GroupCreate(ctx, in)
	must(t, "GroupCreate", err)
	diff(t, "GroupCreate result", in, sales)
	billing := mustGroup(t, s, "t1", "g1")
	billing.Name = "Group g1"

	got, err := s.GroupGet(ctx, "t1", "g2")
	must(t, "GroupGet", err)
	diff(t, "GroupGet", sales, got)

	list, err := s.GroupList(ctx, "t1")
	must(t, "GroupList", err)
	diff(t, "GroupList (ordered by name)", []agents.Group{billing, sales}, list)

	_, err = s.GroupCreate(ctx, newGroup("t1", "g2"))
	wantCode(t, "GroupCreate duplicate id", err, errs.Duplicate)
	dupName := newGroup("t1", "g3")
	dupName.Name = "Sales"
	_, err = s.GroupCreate(ctx, dupName)
	wantCode(t, "GroupCreate duplicate name", err, errs.Duplicate)
	_, err = s.GroupCreate(ctx, newGroup("ghost", "g1"))
	wantCode(t, "GroupCreate missing tenant", err, errs.Invalid)
	badStrategy := newGroup("t1", "g4")
	badStrategy.Strategy = "random"
	_, err = s.GroupCreate(ctx, badStrategy)
	wantCode(t, "GroupCreate unknown strategy", err, errs.Invalid)
	badSL := newGroup("t1", "g4")
	badSL.SLThresholdSec = 0
	_, err = s.GroupCreate(ctx, badSL)
	wantCode(t, "GroupCreate sl 0", err, errs.Invalid)

	upd := sales
	upd.Name = "Sales EU"
	upd.Strategy = "sticky"
	upd.SLThresholdSec = 45
	upd.MaxQueue = 100
	upd.FallbackStrategy = "skills"
	upd.Weight = 100
	upd.PriorityStepSec = 0
	upd.MaxWaitSec = 86400
	upd.OverflowAction = agents.OverflowToGroup
	upd.OverflowGroupID = "g1"
	upd.StickyWaitSec = 3600
	upd.RingStepSec = 1
	upd.OfferTimeoutSec = 600
	upd.MaxMissedOffers = 100
	upd.Hours = ""
	upd.OffHoursMessage = ""
	upd.BusyMessage = strings.Repeat("忙", agents.MaxMessageLen)
	upd.CreatedAt = t0.Add(time.Hour) // ignored
	got, err = s.GroupUpdate(ctx, upd)
	must(t, "GroupUpdate", err)
	want := upd
	want.CreatedAt = sales.CreatedAt
	diff(t, "GroupUpdate result", want, got)
	got, err = s.GroupGet(ctx, "t1", "g2")
	must(t, "GroupGet after update", err)
	diff(t, "GroupGet after update", want, got)

	clash := want
	clash.Name = "Group g1"
	_, err = s.GroupUpdate(ctx, clash)
	wantCode(t, "GroupUpdate to a taken name", err, errs.Duplicate)
	missing := want
	missing.ID = "nope"
	_, err = s.GroupUpdate(ctx, missing)
	wantCode(t, "GroupUpdate missing", err, errs.NotFound)

	must(t, "GroupDelete", s.GroupDelete(ctx, "t1", "g2"))
	_, err = s.GroupGet(ctx, "t1", "g2")
	wantCode(t, "GroupGet deleted", err, errs.NotFound)
	wantCode(t, "GroupDelete again", s.GroupDelete(ctx, "t1", "g2"), errs.NotFound)

	list, err = s.GroupList(ctx, "t1")
	must(t, "GroupList", err)
	diff(t, "GroupList after delete", []agents.Group{billing}, list)
	list, err = s.GroupList(ctx, "empty")
	must(t, "GroupList unknown tenant", err)
	if len(list) != 0 {
		t.Errorf("GroupList(unknown tenant) = %v, want none", list)
	}
}

// berlinHours is a schedule in the canonical text acd.ParseHours and
// Hours.String agree on.
const berlinHours agents.HoursJSON = `{"time_zone":"Europe/Berlin","weekly":{"fri":[{"start":"09:00","end":"15:00"}],"mon":[{"start":"09:00","end":"17:00"}]}}`

// testGroupNormalize checks what a store makes of a group built before the
// routing settings existed, of aliases and of hours in another spelling.
func testGroupNormalize(t *testing.T, s agents.Store) {
	ctx := t.Context()
	mustTenant(t, s, "t1")
	const messy = ` { "weekly": {"mon": [{"start":"13:00","end":"17:00"}, {"start":"09:00","end":"12:00"}], "tue": []},
		"time_zone": "UTC" } `
	parsed, err := acd.ParseHours(messy)
	must(t, "ParseHours", err)
	canonical := agents.HoursJSON(parsed.String())
	if canonical == messy {
		t.Fatalf("the test schedule is already canonical")
	}

	old := agents.Group{TenantID: "t1", ID: "g1", Name: "Old", Strategy: "fifo", SLThresholdSec: 20, Hours: messy, CreatedAt: t0}
	got, err := s.GroupCreate(ctx, old)
	must(t, "GroupCreate", err)
	want := old
	want.Strategy = "longest_idle"
	want.FallbackStrategy = agents.DefaultFallbackStrategy
	want.Weight = agents.DefaultGroupWeight
	want.RingStepSec = agents.DefaultRingStepSec
	want.Hours = canonical
	// Zero is a valid aging step and sticky wait: they stay zero.
	diff(t, "GroupCreate of a zero-settings group", want, got)
	read, err := s.GroupGet(ctx, "t1", "g1")
	must(t, "GroupGet", err)
	diff(t, "GroupGet of a zero-settings group", want, read)

	upd := read
	upd.Strategy = "sticky"
	upd.FallbackStrategy = "fifo"
	upd.Weight = 0
	upd.RingStepSec = 0
	upd.Hours = "null"
	got, err = s.GroupUpdate(ctx, upd)
	must(t, "GroupUpdate", err)
	want = read
	want.Strategy = "sticky"
	want.Hours = ""
	diff(t, "GroupUpdate with zero settings", want, got)
}

// testGroupInvalid checks that the store applies Group.Validate to the
// routing settings; agents' own tests cover every rule.
func testGroupInvalid(t *testing.T, s agents.Store) {
	ctx := t.Context()
	mustTenant(t, s, "t1")
	mustGroup(t, s, "t1", "other")
	cases := []struct {
		name   string
		mutate func(g *agents.Group)
	}{
		{"fallback sticky", func(g *agents.Group) { g.FallbackStrategy = "sticky" }},
		{"weight over 100", func(g *agents.Group) { g.Weight = 100.5 }},
		{"negative weight", func(g *agents.Group) { g.Weight = -1 }},
		{"priority step over a day", func(g *agents.Group) { g.PriorityStepSec = 86401 }},
		{"negative max wait", func(g *agents.Group) { g.MaxWaitSec = -1 }},
		{"unknown overflow action", func(g *agents.Group) { g.OverflowAction = "drop" }},
		{"overflow to no group", func(g *agents.Group) { g.OverflowAction = agents.OverflowToGroup }},
		{"overflow to itself", func(g *agents.Group) { g.OverflowAction, g.OverflowGroupID = agents.OverflowToGroup, g.ID }},
		{"sticky wait over an hour", func(g *agents.Group) { g.StickyWaitSec = 3601 }},
		{"ring step over an hour", func(g *agents.Group) { g.RingStepSec = 3601 }},
		{"offer timeout 4", func(g *agents.Group) { g.OfferTimeoutSec = 4 }},
		{"max missed offers 101", func(g *agents.Group) { g.MaxMissedOffers = 101 }},
		{"hours not JSON", func(g *agents.Group) { g.Hours = "9 to 5" }},
		{"hours bad zone", func(g *agents.Group) { g.Hours = `{"time_zone":"Mars/Olympus","weekly":{}}` }},
		{"busy message too long", func(g *agents.Group) { g.BusyMessage = strings.Repeat("x", agents.MaxMessageLen+1) }},
	}
	for _, c := range cases {
		g := newGroup("t1", "g1")
		c.mutate(&g)
		_, err := s.GroupCreate(ctx, g)
		wantCode(t, "GroupCreate "+c.name, err, errs.Invalid)
		upd, err := s.GroupGet(ctx, "t1", "other")
		must(t, "GroupGet", err)
		upd.Name = "Other"
		c.mutate(&upd)
		_, err = s.GroupUpdate(ctx, upd)
		wantCode(t, "GroupUpdate "+c.name, err, errs.Invalid)
	}
	list, err := s.GroupList(ctx, "t1")
	must(t, "GroupList", err)
	diff(t, "groups after failed writes", []agents.Group{newGroup("t1", "other")}, list)
}

func testGroupDeleteCascadesSkills(t *testing.T, s agents.Store) {
	ctx := t.Context()
	mustTenant(t, s, "t1")
	mustGroup(t, s, "t1", "g1")
	mustGroup(t, s, "t1", "g2")
	mustAgent(t, s, newAgent("t1", "a1", "alice",
		agents.Skill{GroupID: "g1", Proficiency: 3, Weight: 2}, agents.Skill{GroupID: "g2", Proficiency: 4, Weight: 5}))

	must(t, "GroupDelete", s.GroupDelete(ctx, "t1", "g1"))
	a, err := s.AgentGet(ctx, "t1", "a1")
	must(t, "AgentGet", err)
	diff(t, "skills after group delete", []agents.Skill{{GroupID: "g2", Proficiency: 4, Weight: 5}}, a.Skills)
}

func testTenantIsolation(t *testing.T, s agents.Store) {
	ctx := t.Context()
	mustTenant(t, s, "ta")
	mustTenant(t, s, "tb")
	mustGroup(t, s, "ta", "ga")
	mustGroup(t, s, "tb", "gb")
	alice := mustAgent(t, s, newAgent("ta", "a1", "alice", agents.Skill{GroupID: "ga", Proficiency: 3}))
	groupA, err := s.GroupGet(ctx, "ta", "ga")
	must(t, "GroupGet", err)
	tree, err := s.ReasonTreeSave(ctx, agents.ReasonTree{TenantID: "ta", Nodes: []agents.ReasonNode{{Code: "x", Label: "X"}}, CreatedAt: t0})
	must(t, "ReasonTreeSave", err)
	must(t, "TokenCreate", s.TokenCreate(ctx, agents.Token{Hash: "tok-a", TenantID: "ta", AgentID: "a1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))

	// Tenant B uses tenant A's ids.
	_, err = s.AgentGet(ctx, "tb", "a1")
	wantCode(t, "AgentGet across tenants", err, errs.NotFound)
	_, _, err = s.AgentGetByUsername(ctx, "tb", "alice")
	wantCode(t, "AgentGetByUsername across tenants", err, errs.NotFound)
	hijack := alice
	hijack.TenantID = "tb"
	hijack.Role = agents.RoleAdmin
	hijack.Disabled = true
	_, err = s.AgentUpdate(ctx, hijack)
	wantCode(t, "AgentUpdate across tenants", err, errs.NotFound)
	wantCode(t, "AgentSetPassword across tenants", s.AgentSetPassword(ctx, "tb", "a1", "x"), errs.NotFound)
	wantCode(t, "AgentSetState across tenants", s.AgentSetState(ctx, "tb", "a1", agents.StateReady, "", t0), errs.NotFound)
	wantCode(t, "AgentSetSkills across tenants", s.AgentSetSkills(ctx, "tb", "a1", []agents.Skill{{GroupID: "gb", Proficiency: 1}}), errs.NotFound)
	list, err := s.AgentList(ctx, "tb")
	must(t, "AgentList tb", err)
	if len(list) != 0 {
		t.Errorf("AgentList(tb) = %v, want none", list)
	}

	_, err = s.GroupGet(ctx, "tb", "ga")
	wantCode(t, "GroupGet across tenants", err, errs.NotFound)
	g := groupA
	g.TenantID = "tb"
	g.Name = "stolen"
	_, err = s.GroupUpdate(ctx, g)
	wantCode(t, "GroupUpdate across tenants", err, errs.NotFound)
	wantCode(t, "GroupDelete across tenants", s.GroupDelete(ctx, "tb", "ga"), errs.NotFound)
	groups, err := s.GroupList(ctx, "tb")
	must(t, "GroupList tb", err)
	diff(t, "GroupList tb", []string{"gb"}, groupIDs(groups))

	_, err = s.ReasonTreeCurrent(ctx, "tb")
	wantCode(t, "ReasonTreeCurrent across tenants", err, errs.NotFound)
	_, err = s.ReasonTreeGet(ctx, "tb", tree.Version)
	wantCode(t, "ReasonTreeGet across tenants", err, errs.NotFound)

	n, err := s.TokenRevokeAgent(ctx, "tb", "a1", t0)
	must(t, "TokenRevokeAgent across tenants", err)
	if n != 0 {
		t.Errorf("TokenRevokeAgent(tb, a1) revoked %d tokens, want 0", n)
	}

	// Tenant A's objects are untouched.
	got, err := s.AgentGet(ctx, "ta", "a1")
	must(t, "AgentGet ta", err)
	diff(t, "tenant A's agent", alice, got)
	_, hash, err := s.AgentGetByUsername(ctx, "ta", "alice")
	must(t, "AgentGetByUsername ta", err)
	if hash != "hash-a1" {
		t.Errorf("tenant A's hash = %q, want unchanged", hash)
	}
	gotGroup, err := s.GroupGet(ctx, "ta", "ga")
	must(t, "GroupGet ta", err)
	diff(t, "tenant A's group", groupA, gotGroup)
	tok, err := s.TokenGet(ctx, "tok-a")
	must(t, "TokenGet", err)
	if tok.RevokedAt != nil {
		t.Errorf("tenant A's token was revoked by tenant B")
	}
}

func groupIDs(gs []agents.Group) []string {
	ids := make([]string, len(gs))
	for i, g := range gs {
		ids[i] = g.ID
	}
	return ids
}

func testTokens(t *testing.T, s agents.Store) {
	ctx := t.Context()
	mustTenant(t, s, "t1")
	mustAgent(t, s, newAgent("t1", "a1", "alice"))

	tok := agents.Token{Hash: "h1", TenantID: "t1", AgentID: "a1", CreatedAt: t0, ExpiresAt: t0.Add(12 * time.Hour)}
	must(t, "TokenCreate", s.TokenCreate(ctx, tok))
	got, err := s.TokenGet(ctx, "h1")
	must(t, "TokenGet", err)
	diff(t, "TokenGet", tok, got)

	wantCode(t, "TokenCreate duplicate", s.TokenCreate(ctx, tok), errs.Duplicate)
	wantCode(t, "TokenCreate unknown agent", s.TokenCreate(ctx, agents.Token{Hash: "h2", TenantID: "t1", AgentID: "ghost", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}), errs.Invalid)
	wantCode(t, "TokenCreate no hash", s.TokenCreate(ctx, agents.Token{TenantID: "t1", AgentID: "a1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}), errs.Invalid)
	_, err = s.TokenGet(ctx, "unknown")
	wantCode(t, "TokenGet unknown", err, errs.NotFound)

	revokedAt := t0.Add(time.Hour)
	must(t, "TokenRevoke", s.TokenRevoke(ctx, "h1", revokedAt))
	must(t, "TokenRevoke again", s.TokenRevoke(ctx, "h1", revokedAt.Add(time.Hour)))
	got, err = s.TokenGet(ctx, "h1")
	must(t, "TokenGet revoked", err)
	want := tok
	want.RevokedAt = &revokedAt
	diff(t, "revoked token keeps the first revocation time", want, got)
	if got.ValidAt(t0) {
		t.Errorf("revoked token is valid")
	}
	wantCode(t, "TokenRevoke unknown", s.TokenRevoke(ctx, "unknown", revokedAt), errs.NotFound)
}

func testTokenRevokeAgent(t *testing.T, s agents.Store) {
	ctx := t.Context()
	mustTenant(t, s, "t1")
	mustAgent(t, s, newAgent("t1", "a1", "alice"))
	mustAgent(t, s, newAgent("t1", "a2", "bob"))
	for _, tk := range []agents.Token{
		{Hash: "a1-1", TenantID: "t1", AgentID: "a1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)},
		{Hash: "a1-2", TenantID: "t1", AgentID: "a1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)},
		{Hash: "a1-3", TenantID: "t1", AgentID: "a1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)},
		{Hash: "a2-1", TenantID: "t1", AgentID: "a2", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)},
	} {
		must(t, "TokenCreate "+tk.Hash, s.TokenCreate(ctx, tk))
	}
	early := t0.Add(time.Minute)
	must(t, "TokenRevoke a1-3", s.TokenRevoke(ctx, "a1-3", early))

	at := t0.Add(30 * time.Minute)
	n, err := s.TokenRevokeAgent(ctx, "t1", "a1", at)
	must(t, "TokenRevokeAgent", err)
	if n != 2 {
		t.Errorf("TokenRevokeAgent revoked %d, want 2 (one was revoked already)", n)
	}
	wantRevoked := map[string]*time.Time{"a1-1": &at, "a1-2": &at, "a1-3": &early, "a2-1": nil}
	for hash, want := range wantRevoked {
		got, err := s.TokenGet(ctx, hash)
		must(t, "TokenGet "+hash, err)
		diff(t, "RevokedAt of "+hash, want, got.RevokedAt)
	}
}

func testTokenDeleteExpired(t *testing.T, s agents.Store) {
	ctx := t.Context()
	mustTenant(t, s, "t1")
	mustAgent(t, s, newAgent("t1", "a1", "alice"))
	for i, exp := range []time.Duration{-time.Hour, -time.Microsecond, 0, time.Hour} {
		must(t, "TokenCreate", s.TokenCreate(ctx, agents.Token{
			Hash: fmt.Sprintf("h%d", i), TenantID: "t1", AgentID: "a1", CreatedAt: t0.Add(-2 * time.Hour), ExpiresAt: t0.Add(exp),
		}))
	}
	n, err := s.TokenDeleteExpired(ctx, t0)
	must(t, "TokenDeleteExpired", err)
	if n != 2 {
		t.Errorf("TokenDeleteExpired deleted %d, want 2", n)
	}
	for i, wantCodeV := range []errs.Code{errs.NotFound, errs.NotFound, "", ""} {
		_, err := s.TokenGet(ctx, fmt.Sprintf("h%d", i))
		wantCode(t, fmt.Sprintf("TokenGet h%d", i), err, wantCodeV)
	}
}

func sampleTree(tenantID string) agents.ReasonTree {
	return agents.ReasonTree{
		TenantID: tenantID,
		Nodes: []agents.ReasonNode{
			{Code: "billing", Label: "Billing", Children: []agents.ReasonNode{
				{Code: "billing.refund", Label: "Refund"},
				{Code: "billing.invoice", Label: "Invoice copy"},
			}},
			{Code: "other", Label: "Other / 其他"},
		},
		Mandatory: true,
		CreatedBy: "admin1",
		CreatedAt: t0,
	}
}

func testReasonTrees(t *testing.T, s agents.Store) {
	ctx := t.Context()
	mustTenant(t, s, "t1")
	mustTenant(t, s, "t2")

	_, err := s.ReasonTreeCurrent(ctx, "t1")
	wantCode(t, "ReasonTreeCurrent before any save", err, errs.NotFound)
	list, err := s.ReasonTreeList(ctx, "t1")
	must(t, "ReasonTreeList empty", err)
	if len(list) != 0 {
		t.Errorf("ReasonTreeList before any save = %v, want none", list)
	}

	in := sampleTree("t1")
	in.Version = 42 // ignored: the store assigns versions
	v1, err := s.ReasonTreeSave(ctx, in)
	must(t, "ReasonTreeSave v1", err)
	want1 := sampleTree("t1")
	want1.Version = 1
	diff(t, "saved v1", want1, v1)

	in2 := agents.ReasonTree{TenantID: "t1", Nodes: nil, CreatedBy: "admin2", CreatedAt: t0.Add(time.Hour)}
	v2, err := s.ReasonTreeSave(ctx, in2)
	must(t, "ReasonTreeSave v2", err)
	want2 := in2
	want2.Version = 2
	want2.Nodes = []agents.ReasonNode{} // an empty tree reads back as [], never null
	diff(t, "saved v2 (empty tree)", want2, v2)

	cur, err := s.ReasonTreeCurrent(ctx, "t1")
	must(t, "ReasonTreeCurrent", err)
	diff(t, "current", want2, cur)
	got, err := s.ReasonTreeGet(ctx, "t1", 1)
	must(t, "ReasonTreeGet 1", err)
	diff(t, "version 1", want1, got)
	if !got.IsLeaf("billing.refund") || got.IsLeaf("billing") {
		t.Errorf("read-back tree lost its shape: %+v", got.Nodes)
	}
	list, err = s.ReasonTreeList(ctx, "t1")
	must(t, "ReasonTreeList", err)
	diff(t, "ReasonTreeList (newest first)", []agents.ReasonTree{want2, want1}, list)

	_, err = s.ReasonTreeGet(ctx, "t1", 3)
	wantCode(t, "ReasonTreeGet missing version", err, errs.NotFound)

	// Versions are per tenant.
	other, err := s.ReasonTreeSave(ctx, sampleTree("t2"))
	must(t, "ReasonTreeSave t2", err)
	if other.Version != 1 {
		t.Errorf("first version of t2 = %d, want 1", other.Version)
	}

	bad := sampleTree("t1")
	bad.Nodes[1].Code = "billing.refund"
	_, err = s.ReasonTreeSave(ctx, bad)
	wantCode(t, "ReasonTreeSave duplicate code", err, errs.Invalid)
	_, err = s.ReasonTreeSave(ctx, sampleTree("ghost"))
	wantCode(t, "ReasonTreeSave missing tenant", err, errs.NotFound)
	_, err = s.ReasonTreeSave(ctx, sampleTree(""))
	wantCode(t, "ReasonTreeSave no tenant", err, errs.Invalid)
	cur, err = s.ReasonTreeCurrent(ctx, "t1")
	must(t, "ReasonTreeCurrent", err)
	if cur.Version != 2 {
		t.Errorf("failed saves changed the current version to %d", cur.Version)
	}
}

func testReasonTreeConcurrentSave(t *testing.T, s agents.Store) {
	ctx := t.Context()
	mustTenant(t, s, "t1")
	const n = 10
	versions := make([]int, n)
	errsc := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			tree := sampleTree("t1")
			tree.CreatedBy = fmt.Sprintf("admin%d", i)
			saved, err := s.ReasonTreeSave(ctx, tree)
			versions[i], errsc[i] = saved.Version, err
		})
	}
	wg.Wait()
	for i, err := range errsc {
		must(t, fmt.Sprintf("concurrent save %d", i), err)
	}
	sort.Ints(versions)
	want := make([]int, n)
	for i := range want {
		want[i] = i + 1
	}
	diff(t, "versions of concurrent saves", want, versions)

	cur, err := s.ReasonTreeCurrent(ctx, "t1")
	must(t, "ReasonTreeCurrent", err)
	if cur.Version != n {
		t.Errorf("current version = %d, want %d", cur.Version, n)
	}
}
