package agents_test

import (
	"encoding/base64"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/bcrypt"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/agents/agentsql"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

var start = time.Date(2025, 6, 2, 8, 0, 0, 0, time.UTC)

const (
	tokenTTL = time.Hour
	cacheTTL = 5 * time.Second
)

type fixture struct {
	store *agentsql.Store
	clk   *clock.Fake
	svc   *agents.Service
}

// newFixture gives a service over SQLite with two tenants, t1 and t2, each
// with a group "sales".
func newFixture(t *testing.T) fixture {
	t.Helper()
	st := agentsql.New(testenv.DB(t, "sqlite"))
	clk := clock.NewFake(start)
	for _, id := range []string{"t1", "t2"} {
		if _, err := st.TenantCreate(t.Context(), agents.Tenant{ID: id, Name: id, CreatedAt: start}); err != nil {
			t.Fatal(err)
		}
		g := agents.NewGroup(id, "sales", "Sales")
		g.CreatedAt = start
		if _, err := st.GroupCreate(t.Context(), g); err != nil {
			t.Fatal(err)
		}
	}
	svc := agents.NewService(st, clk, agents.ServiceOptions{TokenTTL: tokenTTL, BcryptCost: bcrypt.MinCost, CacheTTL: cacheTTL})
	return fixture{store: st, clk: clk, svc: svc}
}

func (f fixture) create(t *testing.T, tenantID, username, password string) agents.Agent {
	t.Helper()
	a, err := f.svc.CreateAgent(t.Context(), tenantID, agents.NewAgent{Username: username, Password: password})
	if err != nil {
		t.Fatalf("CreateAgent %s/%s: %v", tenantID, username, err)
	}
	return a
}

func (f fixture) login(t *testing.T, tenantID, username, password string) string {
	t.Helper()
	tok, _, _, err := f.svc.Login(t.Context(), tenantID, username, password)
	if err != nil {
		t.Fatalf("Login %s/%s: %v", tenantID, username, err)
	}
	return tok
}

func wantErr(t *testing.T, what string, err error, code errs.Code, msg string) {
	t.Helper()
	type e struct {
		Code errs.Code
		Msg  string
	}
	got := e{errs.CodeOf(err), ""}
	if err != nil {
		got.Msg = errs.MessageOf(err)
	}
	if d := cmp.Diff(e{code, msg}, got); d != "" {
		t.Errorf("%s: error mismatch (-want +got):\n%s\n(error: %v)", what, d, err)
	}
}

func TestCreateAgent(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	a, err := f.svc.CreateAgent(ctx, "t1", agents.NewAgent{
		Username: "  Alice ",
		Password: "correct horse",
		Skills:   []agents.Skill{{GroupID: "sales", Proficiency: 4}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := agents.Agent{
		TenantID: "t1", ID: a.ID, Username: "alice", DisplayName: "alice", Role: agents.RoleAgent,
		MaxSessions: agents.DefaultMaxSessions, State: agents.StateOffline, StateSince: start,
		Skills: []agents.Skill{{GroupID: "sales", Proficiency: 4, Weight: agents.DefaultSkillWeight}}, CreatedAt: start,
	}
	if d := cmp.Diff(want, a); d != "" {
		t.Errorf("created agent (-want +got):\n%s", d)
	}
	if a.ID == "" {
		t.Error("agent has no id")
	}
	_, hash, err := f.store.AgentGetByUsername(ctx, "t1", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if hash == "correct horse" || bcrypt.CompareHashAndPassword([]byte(hash), []byte("correct horse")) != nil {
		t.Errorf("stored hash %q is not a bcrypt hash of the password", hash)
	}

	bad := []struct {
		name string
		in   agents.NewAgent
		msg  string
	}{
		{"short password", agents.NewAgent{Username: "bob", Password: "short"}, "password: must be at least 8 characters"},
		{"bad username", agents.NewAgent{Username: "b", Password: "long enough"}, "username: must be 2-64 characters of a-z, 0-9, '_', '.', '-'"},
		{"too many sessions", agents.NewAgent{Username: "bob", Password: "long enough", MaxSessions: 51}, "max_sessions: must be between 1 and 50"},
		{"bad role", agents.NewAgent{Username: "bob", Password: "long enough", Role: "root"}, "role: must be one of admin, supervisor, agent"},
		{"bad skill", agents.NewAgent{Username: "bob", Password: "long enough", Skills: []agents.Skill{{GroupID: "sales", Proficiency: 9}}}, "skills[0].proficiency: must be between 1 and 5"},
		{"bad skill weight", agents.NewAgent{Username: "bob", Password: "long enough", Skills: []agents.Skill{{GroupID: "sales", Proficiency: 3, Weight: 101}}}, "skills[0].weight: must be between 1 and 100"},
	}
	for _, c := range bad {
		_, err := f.svc.CreateAgent(ctx, "t1", c.in)
		wantErr(t, c.name, err, errs.Invalid, c.msg)
	}
	_, err = f.svc.CreateAgent(ctx, "t1", agents.NewAgent{Username: "ALICE", Password: "another one"})
	if !errs.Is(err, errs.Duplicate) {
		t.Errorf("duplicate username: error = %v, want duplicate", err)
	}
}

func TestLogin(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	alice := f.create(t, "t1", "alice", "alice-pass")
	f.create(t, "t1", "sam", "sam-pass-1")
	f.create(t, "t2", "sam", "sam-pass-2")
	dis := f.create(t, "t2", "dave", "dave-pass")
	dis.Disabled = true
	if _, err := f.store.AgentUpdate(ctx, dis); err != nil {
		t.Fatal(err)
	}

	t.Run("success with tenant", func(t *testing.T) {
		tok, exp, a, err := f.svc.Login(ctx, "t1", "alice", "alice-pass")
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(alice, a); d != "" {
			t.Errorf("agent (-want +got):\n%s", d)
		}
		if !exp.Equal(start.Add(tokenTTL)) {
			t.Errorf("expires = %v, want %v", exp, start.Add(tokenTTL))
		}
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(raw) != 32 {
			t.Errorf("token %q is not 32 bytes of base64url (%v)", tok, err)
		}
		// Only the hash is stored.
		if _, err := f.store.TokenGet(ctx, tok); !errs.Is(err, errs.NotFound) {
			t.Errorf("token stored in plain: TokenGet(token) error = %v", err)
		}
		st, err := f.store.TokenGet(ctx, agents.HashToken(tok))
		if err != nil {
			t.Fatal(err)
		}
		if st.TenantID != "t1" || st.AgentID != alice.ID || !st.ExpiresAt.Equal(exp) {
			t.Errorf("stored token = %+v", st)
		}
	})
	t.Run("success without tenant when unique", func(t *testing.T) {
		_, _, a, err := f.svc.Login(ctx, "", " Alice", "alice-pass")
		if err != nil {
			t.Fatal(err)
		}
		if a.ID != alice.ID {
			t.Errorf("logged in as %s, want %s", a.ID, alice.ID)
		}
	})
	t.Run("ambiguous without tenant", func(t *testing.T) {
		_, _, _, err := f.svc.Login(ctx, "", "sam", "sam-pass-1")
		wantErr(t, "Login", err, errs.Invalid, "tenant required: the username exists in more than one tenant")
		_, _, a, err := f.svc.Login(ctx, "t2", "sam", "sam-pass-2")
		if err != nil || a.TenantID != "t2" {
			t.Errorf("Login with tenant: %v, %+v", err, a)
		}
	})
	t.Run("wrong password and unknown user look the same", func(t *testing.T) {
		const msg = "invalid username or password"
		for _, c := range []struct{ tenant, user, pass string }{
			{"t1", "alice", "wrong-pass"},
			{"t1", "nobody", "alice-pass"},
			{"", "nobody", "alice-pass"},
			{"t2", "alice", "alice-pass"}, // right credentials, wrong tenant
			{"ghost", "alice", "alice-pass"},
			{"t1", "alice", ""},
		} {
			_, _, _, err := f.svc.Login(ctx, c.tenant, c.user, c.pass)
			wantErr(t, "Login "+c.tenant+"/"+c.user, err, errs.Unauthorized, msg)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		_, _, _, err := f.svc.Login(ctx, "t2", "dave", "dave-pass")
		wantErr(t, "Login disabled", err, errs.Unauthorized, "account disabled")
		_, _, _, err = f.svc.Login(ctx, "t2", "dave", "wrong-pass")
		wantErr(t, "Login disabled, wrong password", err, errs.Unauthorized, "invalid username or password")
	})
}

func TestAuthenticate(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	alice := f.create(t, "t1", "alice", "alice-pass")
	tok := f.login(t, "t1", "alice", "alice-pass")

	p, err := f.svc.Authenticate(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(agents.Principal{TenantID: "t1", AgentID: alice.ID, Role: agents.RoleAgent}, p); d != "" {
		t.Errorf("principal (-want +got):\n%s", d)
	}
	if !p.Can(agents.RoleAgent) || p.Can(agents.RoleSupervisor) {
		t.Errorf("agent principal: Can(agent)=%v Can(supervisor)=%v", p.Can(agents.RoleAgent), p.Can(agents.RoleSupervisor))
	}

	for _, bad := range []string{"", "short", tok + "x", tok[:len(tok)-1] + "!", base64.RawURLEncoding.EncodeToString(make([]byte, 32))} {
		_, err := f.svc.Authenticate(ctx, bad)
		wantErr(t, "Authenticate "+bad, err, errs.Unauthorized, "invalid token")
	}
}

func TestAuthenticateExpired(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.create(t, "t1", "alice", "alice-pass")
	tok := f.login(t, "t1", "alice", "alice-pass")

	// Cached just before expiry: the cache must not outlive the token.
	f.clk.Advance(tokenTTL - time.Second)
	if _, err := f.svc.Authenticate(ctx, tok); err != nil {
		t.Fatalf("Authenticate before expiry: %v", err)
	}
	f.clk.Advance(time.Second)
	_, err := f.svc.Authenticate(ctx, tok)
	wantErr(t, "Authenticate at expiry", err, errs.Unauthorized, "token expired")
}

func TestAuthenticateRevokedElsewhere(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.create(t, "t1", "alice", "alice-pass")
	tok := f.login(t, "t1", "alice", "alice-pass")
	if _, err := f.svc.Authenticate(ctx, tok); err != nil {
		t.Fatal(err)
	}
	// Another node revokes the token: this node may serve its cached answer
	// for at most CacheTTL.
	if err := f.store.TokenRevoke(ctx, agents.HashToken(tok), f.clk.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(ctx, tok); err != nil {
		t.Errorf("within the cache TTL: %v (cached answer expected)", err)
	}
	f.clk.Advance(cacheTTL)
	_, err := f.svc.Authenticate(ctx, tok)
	wantErr(t, "Authenticate after cache TTL", err, errs.Unauthorized, "token revoked")
}

func TestAuthenticateDisabledAndRoleChange(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	a := f.create(t, "t1", "alice", "alice-pass")
	tok := f.login(t, "t1", "alice", "alice-pass")
	if _, err := f.svc.Authenticate(ctx, tok); err != nil {
		t.Fatal(err)
	}

	a.Role = agents.RoleSupervisor
	if _, err := f.store.AgentUpdate(ctx, a); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(cacheTTL)
	p, err := f.svc.Authenticate(ctx, tok)
	if err != nil || p.Role != agents.RoleSupervisor {
		t.Errorf("after role change: %+v, %v; want role supervisor", p, err)
	}

	a.Disabled = true
	if _, err := f.store.AgentUpdate(ctx, a); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(cacheTTL)
	_, err = f.svc.Authenticate(ctx, tok)
	wantErr(t, "Authenticate disabled", err, errs.Unauthorized, "account disabled")
}

func TestLogout(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.create(t, "t1", "alice", "alice-pass")
	tok := f.login(t, "t1", "alice", "alice-pass")
	other := f.login(t, "t1", "alice", "alice-pass")
	if _, err := f.svc.Authenticate(ctx, tok); err != nil {
		t.Fatal(err)
	}

	if err := f.svc.Logout(ctx, tok); err != nil {
		t.Fatal(err)
	}
	// No clock advance: the cached entry must be gone at once.
	_, err := f.svc.Authenticate(ctx, tok)
	wantErr(t, "Authenticate after logout", err, errs.Unauthorized, "token revoked")
	if _, err := f.svc.Authenticate(ctx, other); err != nil {
		t.Errorf("the agent's other token stopped working: %v", err)
	}
	if err := f.svc.Logout(ctx, tok); err != nil {
		t.Errorf("second logout: %v", err)
	}
	wantErr(t, "Logout unknown", f.svc.Logout(ctx, base64.RawURLEncoding.EncodeToString(make([]byte, 32))), errs.Unauthorized, "invalid token")
	wantErr(t, "Logout garbage", f.svc.Logout(ctx, "garbage"), errs.Unauthorized, "invalid token")
}

func TestRevokeAllAndSetPassword(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	alice := f.create(t, "t1", "alice", "alice-pass")
	bob := f.create(t, "t1", "bob", "bob-pass1")
	t1 := f.login(t, "t1", "alice", "alice-pass")
	t2 := f.login(t, "t1", "alice", "alice-pass")
	tb := f.login(t, "t1", "bob", "bob-pass1")
	for _, tok := range []string{t1, t2, tb} {
		if _, err := f.svc.Authenticate(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}

	n, err := f.svc.RevokeAll(ctx, "t1", alice.ID)
	if err != nil || n != 2 {
		t.Fatalf("RevokeAll = %d, %v; want 2", n, err)
	}
	for _, tok := range []string{t1, t2} {
		_, err := f.svc.Authenticate(ctx, tok)
		wantErr(t, "Authenticate after RevokeAll", err, errs.Unauthorized, "token revoked")
	}
	if _, err := f.svc.Authenticate(ctx, tb); err != nil {
		t.Errorf("another agent's token stopped working: %v", err)
	}

	if err := f.svc.SetPassword(ctx, "t1", bob.ID, "bob-pass2"); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Authenticate(ctx, tb)
	wantErr(t, "Authenticate after password change", err, errs.Unauthorized, "token revoked")
	_, _, _, err = f.svc.Login(ctx, "t1", "bob", "bob-pass1")
	wantErr(t, "Login with old password", err, errs.Unauthorized, "invalid username or password")
	f.login(t, "t1", "bob", "bob-pass2")
	wantErr(t, "SetPassword short", f.svc.SetPassword(ctx, "t1", bob.ID, "short"), errs.Invalid, "password: must be at least 8 characters")
	if err := f.svc.SetPassword(ctx, "t2", bob.ID, "bob-pass3"); !errs.Is(err, errs.NotFound) {
		t.Errorf("SetPassword across tenants: %v, want not_found", err)
	}
}

// TestAuthenticateConcurrent exercises the cache under the race detector.
func TestAuthenticateConcurrent(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	a := f.create(t, "t1", "alice", "alice-pass")
	toks := []string{f.login(t, "t1", "alice", "alice-pass"), f.login(t, "t1", "alice", "alice-pass")}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for range 20 {
				p, err := f.svc.Authenticate(ctx, toks[i%2])
				if err == nil && p.AgentID != a.ID {
					t.Errorf("principal %+v", p)
				}
				if err != nil && !errs.Is(err, errs.Unauthorized) {
					t.Errorf("Authenticate: %v", err)
				}
			}
		})
	}
	wg.Go(func() {
		if _, err := f.svc.RevokeAll(ctx, "t1", a.ID); err != nil {
			t.Errorf("RevokeAll: %v", err)
		}
	})
	wg.Wait()
	for _, tok := range toks {
		if _, err := f.svc.Authenticate(ctx, tok); !errs.Is(err, errs.Unauthorized) {
			t.Errorf("after RevokeAll: %v, want unauthorized", err)
		}
	}
}
