package console_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/agents/agentsql"
	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/channelsql"
	"github.com/switchboard-acd/switchboard/channels/secretbox"
	"github.com/switchboard-acd/switchboard/internal/apptest"
	"github.com/switchboard-acd/switchboard/internal/config"
)

const accountsPath = "/api/v1/channel-accounts"

// accountDoc is a channel account as the API answers it.
type accountDoc struct {
	ID               string          `json:"id"`
	TenantID         string          `json:"tenant_id"`
	Type             string          `json:"type"`
	Name             string          `json:"name"`
	PublicKey        string          `json:"public_key"`
	DefaultGroupID   string          `json:"default_group_id"`
	Settings         json.RawMessage `json:"settings"`
	SessionCost      int             `json:"session_cost"`
	Enabled          bool            `json:"enabled"`
	Version          int64           `json:"version"`
	CredentialsSet   bool            `json:"credentials_set"`
	CredentialFields []string        `json:"credential_fields"`
	SecretSet        bool            `json:"secret_set"`
	Secret           string          `json:"secret"`
	WebhookURL       string          `json:"webhook_url"`
	UpdatedAt        *time.Time      `json:"updated_at"`
}

// The credentials the tests store; none of these strings may appear in
// any answer.
const (
	smsToken = "tw-auth-token-9f8e7d"
	smsSID   = "AC0123456789abcdef0123456789abcdef"
)

func smsCredentials() map[string]any {
	return map[string]any{"account_sid": smsSID, "auth_token": smsToken, "from": "+14155550100"}
}

// channelAccountsWalk calls every operation of the channel-account API
// with success and typical errors, for TestOpenAPIWalk; the conformance
// hook validates every answer.
func channelAccountsWalk(t *testing.T, n *apptest.Node, admin, sup, alice string) {
	var a accountDoc
	want(t, n, 201, "POST", accountsPath, admin, map[string]any{"type": "sms", "name": "Walk SMS", "credentials": smsCredentials(),
		"settings": map[string]any{"rate_per_sec": 5}}).JSON(t, &a)
	want(t, n, 400, "POST", accountsPath, admin, map[string]any{"type": "fax", "name": ""})
	want(t, n, 403, "POST", accountsPath, sup, map[string]any{"type": "sms", "name": "Nope"})
	want(t, n, 409, "POST", accountsPath, admin, map[string]any{"type": "webchat", "name": "Dup key", "public_key": a.PublicKey})
	want(t, n, 200, "GET", accountsPath+"?enabled=true&type=sms", sup, nil)
	want(t, n, 400, "GET", accountsPath+"?enabled=maybe", admin, nil)
	want(t, n, 200, "GET", accountsPath+"/"+a.ID, sup, nil)
	want(t, n, 403, "GET", accountsPath+"/"+a.ID, alice, nil)
	want(t, n, 404, "GET", accountsPath+"/nope", admin, nil)
	wantRaw(t, n, 200, "PATCH", accountsPath+"/"+a.ID, admin, "application/json", mustJSON(t, map[string]any{"name": "Walk SMS 2"}),
		map[string]string{"If-Match": `"1"`})
	wantRaw(t, n, 409, "PATCH", accountsPath+"/"+a.ID, admin, "application/json", mustJSON(t, map[string]any{"name": "Stale"}),
		map[string]string{"If-Match": `"1"`})
	want(t, n, 400, "PATCH", accountsPath+"/"+a.ID, admin, map[string]any{"name": "No version"})
	want(t, n, 400, "PATCH", accountsPath+"/"+a.ID, admin, map[string]any{"session_cost": 99, "version": 2})
	want(t, n, 403, "PATCH", accountsPath+"/"+a.ID, sup, map[string]any{"name": "x", "version": 2})
	want(t, n, 404, "PATCH", accountsPath+"/nope", admin, map[string]any{"name": "x", "version": 1})
	want(t, n, 403, "DELETE", accountsPath+"/"+a.ID, sup, nil)
	wantRaw(t, n, 409, "DELETE", accountsPath+"/"+a.ID, admin, "", nil, map[string]string{"If-Match": `"1"`})
	want(t, n, 204, "DELETE", accountsPath+"/"+a.ID, admin, nil)
	want(t, n, 404, "DELETE", accountsPath+"/"+a.ID, admin, nil)
}

func TestChannelAccountsAPI(t *testing.T) {
	for _, backend := range apptest.Backends {
		t.Run(backend, func(t *testing.T) {
			n := apptest.Start(t, backend)
			admin, sup, alice := n.Login(t, "admin"), n.Login(t, "supervisor"), n.Login(t, "alice")

			t.Run("walk", func(t *testing.T) { channelAccountsWalk(t, n, admin, sup, alice) })

			var a accountDoc
			t.Run("create", func(t *testing.T) {
				r := want(t, n, 201, "POST", accountsPath, admin, map[string]any{"type": "sms", "name": "  Support SMS ",
					"credentials": smsCredentials(), "session_cost": 2, "default_group_id": "support",
					"settings": map[string]any{"rate_per_sec": 5, "provider_option": "x",
						"hours": map[string]any{"time_zone": "Europe/Paris", "weekly": map[string]any{"mon": []map[string]string{{"start": "09:00", "end": "17:00"}}}}}})
				r.JSON(t, &a)
				if r.Header.Get("ETag") != `"1"` {
					t.Errorf("ETag %q", r.Header.Get("ETag"))
				}
				if a.Name != "Support SMS" || a.Type != "sms" || a.TenantID != "demo" || !a.Enabled || a.Version != 1 || a.SessionCost != 2 ||
					a.DefaultGroupID != "support" || !a.CredentialsSet || !a.SecretSet || a.UpdatedAt != nil {
					t.Errorf("created %s", r.Body)
				}
				if !slices.Equal(a.CredentialFields, []string{"account_sid", "auth_token", "from"}) {
					t.Errorf("credential_fields %v", a.CredentialFields)
				}
				if a.Secret == "" {
					t.Error("the generated secret is not in the create answer")
				}
				if a.WebhookURL != n.URL+"/webhooks/"+a.PublicKey {
					t.Errorf("webhook_url %q, want %q", a.WebhookURL, n.URL+"/webhooks/"+a.PublicKey)
				}
				var st map[string]any
				if err := json.Unmarshal(a.Settings, &st); err != nil {
					t.Fatal(err)
				}
				if h, _ := st["hours"].(string); !strings.Contains(h, "Europe/Paris") || st["provider_option"] != "x" {
					t.Errorf("settings %s", a.Settings)
				}
				// A given secret is not echoed.
				var b accountDoc
				want(t, n, 201, "POST", accountsPath, admin, map[string]any{"type": "webchat", "name": "Widget", "secret": "my-own-secret-1"}).JSON(t, &b)
				if b.Secret != "" || !b.SecretSet || b.WebhookURL != "" || b.CredentialsSet || len(b.CredentialFields) != 0 {
					t.Errorf("web-chat account %+v", b)
				}
			})

			t.Run("credentials never leave", func(t *testing.T) {
				for _, r := range []apptest.Response{
					want(t, n, 200, "GET", accountsPath, admin, nil),
					want(t, n, 200, "GET", accountsPath+"/"+a.ID, admin, nil),
					want(t, n, 200, "GET", accountsPath+"/"+a.ID, sup, nil),
				} {
					for _, s := range []string{smsToken, smsSID, a.Secret, "credentials\""} {
						if strings.Contains(string(r.Body), s) {
							t.Errorf("answer shows %q: %s", s, r.Body)
						}
					}
				}
				// Supervisors do not even see the field names.
				var got accountDoc
				want(t, n, 200, "GET", accountsPath+"/"+a.ID, sup, nil).JSON(t, &got)
				if got.CredentialFields != nil || !got.CredentialsSet || got.Name != a.Name {
					t.Errorf("supervisor view %+v", got)
				}
				// At rest: sealed with the node's key, not the clear text.
				var raw string
				if err := n.App.DB.GetContext(t.Context(), &raw, n.App.DB.Rebind(`SELECT credentials FROM channel_accounts WHERE id = ?`), a.ID); err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(raw, "v1:") || strings.Contains(raw, smsToken) || strings.Contains(raw, smsSID) {
					t.Errorf("credentials column %q", raw)
				}
				// The generated key is in the data directory, readable by its owner only.
				fi, err := os.Stat(filepath.Join(n.App.Cfg.DataDir, secretbox.KeyFileName))
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("key file mode %04o", fi.Mode().Perm())
				}
			})

			t.Run("roles", func(t *testing.T) {
				want(t, n, 403, "GET", accountsPath, alice, nil)
				want(t, n, 403, "GET", accountsPath+"/"+a.ID, alice, nil)
				want(t, n, 403, "POST", accountsPath, sup, map[string]any{"type": "sms", "name": "x"})
				want(t, n, 403, "PATCH", accountsPath+"/"+a.ID, sup, map[string]any{"name": "x", "version": 1})
				want(t, n, 403, "DELETE", accountsPath+"/"+a.ID, alice, nil)
				want(t, n, 401, "GET", accountsPath, "", nil)
			})

			t.Run("invalid lists every problem", func(t *testing.T) {
				r := want(t, n, 400, "POST", accountsPath, admin, map[string]any{"type": "whatsapp", "name": "", "public_key": "a/b",
					"session_cost": 0, "default_group_id": "nope", "credentials": "token",
					"settings": map[string]any{"rate_per_sec": 5000, "entry": "flow", "fallback_account_id": "nope"}})
				var e struct {
					Error struct {
						Code    string `json:"code"`
						Message string `json:"message"`
						Details struct {
							Problems []channels.Problem `json:"problems"`
						} `json:"details"`
					} `json:"error"`
				}
				r.JSON(t, &e)
				var fields []string
				for _, p := range e.Error.Details.Problems {
					fields = append(fields, p.Field)
				}
				for _, f := range []string{"name", "public_key", "default_group_id", "settings.rate_per_sec", "settings.entry", "credentials"} {
					if !slices.Contains(fields, f) {
						t.Errorf("problems %v lack %s", fields, f)
					}
				}
				if e.Error.Code != "invalid" || !strings.HasPrefix(e.Error.Message, "name: ") {
					t.Errorf("error %+v", e.Error)
				}
				want(t, n, 400, "POST", accountsPath, admin, `{"type":`)
				// The type of an account never changes.
				want(t, n, 400, "PATCH", accountsPath+"/"+a.ID, admin, map[string]any{"type": "webchat", "version": 1})
			})

			t.Run("update", func(t *testing.T) {
				var got accountDoc
				r := wantRaw(t, n, 200, "PATCH", accountsPath+"/"+a.ID, admin, "application/json",
					mustJSON(t, map[string]any{"name": "SMS line", "settings": map[string]any{"rate_per_sec": nil, "burst": 20}}),
					map[string]string{"If-Match": `"1"`})
				r.JSON(t, &got)
				if r.Header.Get("ETag") != `"2"` || got.Version != 2 || got.Name != "SMS line" || got.UpdatedAt == nil || got.Secret != "" {
					t.Errorf("updated %s (ETag %s)", r.Body, r.Header.Get("ETag"))
				}
				var st map[string]any
				_ = json.Unmarshal(got.Settings, &st)
				if _, ok := st["rate_per_sec"]; ok || st["burst"] != 20.0 || st["provider_option"] != "x" {
					t.Errorf("merged settings %s", got.Settings)
				}
				// A stale version is refused with the current one.
				r = wantRaw(t, n, 409, "PATCH", accountsPath+"/"+a.ID, admin, "application/json", mustJSON(t, map[string]any{"name": "x"}),
					map[string]string{"If-Match": `"1"`})
				var e struct {
					Error struct {
						Details struct {
							Version int `json:"version"`
						} `json:"details"`
					} `json:"error"`
				}
				r.JSON(t, &e)
				if e.Error.Details.Version != 2 {
					t.Errorf("stale update details %s", r.Body)
				}
				// The body's version and If-Match must agree.
				wantRaw(t, n, 400, "PATCH", accountsPath+"/"+a.ID, admin, "application/json", mustJSON(t, map[string]any{"name": "x", "version": 1}),
					map[string]string{"If-Match": `"2"`})
			})

			t.Run("disable and delete credentials", func(t *testing.T) {
				var got accountDoc
				want(t, n, 200, "PATCH", accountsPath+"/"+a.ID, admin, map[string]any{"credentials": nil, "enabled": false, "version": 2}).JSON(t, &got)
				if got.Enabled || got.CredentialsSet || len(got.CredentialFields) != 0 || got.Version != 3 {
					t.Errorf("disabled without credentials: %+v", got)
				}
				var raw string
				if err := n.App.DB.GetContext(t.Context(), &raw, n.App.DB.Rebind(`SELECT credentials FROM channel_accounts WHERE id = ?`), a.ID); err != nil || raw != "" {
					t.Errorf("credentials column after removal %q, %v", raw, err)
				}
				// The webhook path finds the account and sees it is disabled.
				acct, err := channelsql.New(n.App.DB).AccountByKey(t.Context(), a.PublicKey)
				if err != nil || acct.Enabled {
					t.Errorf("AccountByKey of the disabled account: enabled %v, %v", acct.Enabled, err)
				}
				var list struct {
					Accounts []accountDoc `json:"accounts"`
				}
				want(t, n, 200, "GET", accountsPath+"?enabled=false", admin, nil).JSON(t, &list)
				if !slices.ContainsFunc(list.Accounts, func(x accountDoc) bool { return x.ID == a.ID }) {
					t.Errorf("disabled accounts %+v lack %s", list.Accounts, a.ID)
				}
				for _, x := range list.Accounts {
					if x.Enabled {
						t.Errorf("disabled list holds %+v", x)
					}
				}
				want(t, n, 200, "GET", accountsPath+"?enabled=true", admin, nil).JSON(t, &list)
				for _, x := range list.Accounts {
					if x.ID == a.ID || !x.Enabled {
						t.Errorf("enabled list holds %+v", x)
					}
				}
				want(t, n, 200, "PATCH", accountsPath+"/"+a.ID, admin, map[string]any{"enabled": true, "credentials": smsCredentials(), "version": 3}).JSON(t, &got)
				if !got.Enabled || !got.CredentialsSet || got.Version != 4 {
					t.Errorf("enabled again: %+v", got)
				}
			})

			t.Run("other tenants' ids", func(t *testing.T) {
				ctx := context.Background()
				if _, err := agentsql.New(n.App.DB).TenantCreate(ctx, agents.Tenant{ID: "other", Name: "Other", CreatedAt: time.Now()}); err != nil {
					t.Fatal(err)
				}
				theirs := channels.Account{TenantID: "other", ID: "their-account", Type: channels.WebChat, Name: "Theirs",
					PublicKey: "their-key", Enabled: true, CreatedAt: time.Now()}
				if err := channelsql.New(n.App.DB).AccountCreate(ctx, theirs); err != nil {
					t.Fatal(err)
				}
				p := accountsPath + "/" + theirs.ID
				want(t, n, 404, "GET", p, admin, nil)
				want(t, n, 404, "PATCH", p, admin, map[string]any{"name": "Mine", "version": 1})
				want(t, n, 404, "DELETE", p, admin, nil)
				var list struct {
					Accounts []accountDoc `json:"accounts"`
				}
				want(t, n, 200, "GET", accountsPath, admin, nil).JSON(t, &list)
				for _, x := range list.Accounts {
					if x.TenantID != "demo" {
						t.Errorf("demo admin sees %+v", x)
					}
				}
				// A fallback must be the tenant's own.
				want(t, n, 400, "PATCH", accountsPath+"/"+a.ID, admin, map[string]any{"settings": map[string]any{"fallback_account_id": theirs.ID}, "version": 4})
			})
		})
	}
	if t.Failed() {
		return
	}
	// Every operation of the API succeeded at least once on both backends.
	seenMu.Lock()
	got := seen[t.Name()]
	seenMu.Unlock()
	for path, item := range spec.Paths.Map() {
		if !strings.HasPrefix(path, accountsPath) {
			continue
		}
		for method := range item.Operations() {
			if !slices.ContainsFunc(got[method+" "+path], func(s int) bool { return s >= 200 && s < 300 }) {
				t.Errorf("%s %s never succeeded: %v", method, path, got[method+" "+path])
			}
		}
	}
}

// TestChannelAccountsConfiguredKey starts a node with a configured key,
// checks that credentials are sealed with it and no key file is written,
// then restarts the node on the same data with another key: reading the
// account fails, saying which key it needs.
func TestChannelAccountsConfiguredKey(t *testing.T) {
	k1, err := secretbox.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := secretbox.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.ShutdownGrace = 3 * time.Second
	cfg.CredentialsKey = k1.String()
	t.Setenv("SWITCHBOARD_DEMO_PASSWORD", apptest.Password)
	n := apptest.StartConfig(t, cfg)
	admin := n.Login(t, "admin")
	var a accountDoc
	want(t, n, 201, "POST", accountsPath, admin, map[string]any{"type": "sms", "name": "SMS", "credentials": smsCredentials()}).JSON(t, &a)
	var raw string
	if err := n.App.DB.GetContext(t.Context(), &raw, n.App.DB.Rebind(`SELECT credentials FROM channel_accounts WHERE id = ?`), a.ID); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(raw, "v1:"+k1.ID+":") {
		t.Errorf("credentials %q not sealed with the configured key %s", raw, k1.ID)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, secretbox.KeyFileName)); !os.IsNotExist(err) {
		t.Errorf("a node with a configured key wrote a key file: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.App.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// The same data, a key that is not the one used: a clear failure.
	cfg.CredentialsKey = k2.String()
	n2 := apptest.StartConfig(t, cfg)
	admin = n2.Login(t, "admin")
	r := n2.Do(t, "GET", accountsPath+"/"+a.ID, admin, nil)
	if r.Status != 500 || !strings.Contains(string(r.Body), k1.ID) || !strings.Contains(string(r.Body), "not configured") {
		t.Errorf("reading with the wrong key: %d %s; want 500 naming key %s", r.Status, r.Body, k1.ID)
	}
	// Rotation: the new key first, the old one kept to open old values.
	if err := n2.App.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	cfg.CredentialsKey = k2.String() + "," + k1.String()
	n3 := apptest.StartConfig(t, cfg)
	admin = n3.Login(t, "admin")
	var got accountDoc
	want(t, n3, 200, "GET", accountsPath+"/"+a.ID, admin, nil).JSON(t, &got)
	if !got.CredentialsSet || !slices.Equal(got.CredentialFields, []string{"account_sid", "auth_token", "from"}) {
		t.Errorf("after rotation %+v", got)
	}
	want(t, n3, 200, "PATCH", accountsPath+"/"+a.ID, admin, map[string]any{"name": "SMS 2", "version": 1})
	if err := n3.App.DB.GetContext(t.Context(), &raw, n3.App.DB.Rebind(`SELECT credentials FROM channel_accounts WHERE id = ?`), a.ID); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(raw, "v1:"+k2.ID+":") {
		t.Errorf("credentials %q not re-sealed with the new key %s on update", raw, k2.ID)
	}
}
