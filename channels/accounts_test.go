package channels_test

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/agents/agentsql"
	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/channelsql"
	"github.com/switchboard-acd/switchboard/channels/secretbox"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

var start = time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)

// groups answers GroupExists from the agents store, as the node's
// directory does.
type groups struct{ s *agentsql.Store }

func (g groups) GroupExists(ctx context.Context, tenantID, groupID string) (bool, error) {
	_, err := g.s.GroupGet(ctx, tenantID, groupID)
	if errs.Is(err, errs.NotFound) {
		return false, nil
	}
	return err == nil, err
}

// validateWA stands in for a provider's ValidateCredentials: it names the
// field, as the provider packages do.
func validateWA(raw json.RawMessage) error {
	var c struct {
		AccessToken string `json:"access_token"`
		AppSecret   string `json:"app_secret"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return errs.E("wa", errs.Invalid, "credentials: %v", err)
	}
	if c.AccessToken == "" {
		return errs.E("wa", errs.Invalid, "credentials.access_token: required")
	}
	if c.AppSecret == "" {
		return errs.E("wa", errs.Invalid, "credentials.app_secret: required")
	}
	return nil
}

type fixture struct {
	svc   *channels.AccountService
	store *channelsql.Store
	clock *clock.Fake
}

// forEachDB runs fn with a service on every database kind, tenants t1 and
// t2 and a group "support" in t1.
func forEachDB(t *testing.T, fn func(t *testing.T, f fixture)) {
	for _, kind := range testenv.DBKinds {
		t.Run(kind, func(t *testing.T) {
			ctx := t.Context()
			d := testenv.DB(t, kind)
			as := agentsql.New(d)
			for _, id := range []string{"t1", "t2"} {
				if _, err := as.TenantCreate(ctx, agents.Tenant{ID: id, Name: id, CreatedAt: start}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := as.GroupCreate(ctx, agents.NewGroup("t1", "support", "Support")); err != nil {
				t.Fatal(err)
			}
			k, err := secretbox.GenerateKey()
			if err != nil {
				t.Fatal(err)
			}
			kr, err := secretbox.NewKeyring(k)
			if err != nil {
				t.Fatal(err)
			}
			clk := clock.NewFake(start)
			store := channelsql.New(d, channelsql.WithKeys(kr), channelsql.WithClock(clk))
			svc := channels.NewAccountService(store, groups{as}, channels.CredentialValidators{channels.WhatsApp: validateWA}, clk)
			fn(t, fixture{svc: svc, store: store, clock: clk})
		})
	}
}

func fields(ps []channels.Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Field
	}
	return out
}

var urlSafe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func TestCreate(t *testing.T) {
	forEachDB(t, func(t *testing.T, f fixture) {
		ctx := t.Context()
		a, err := f.svc.Create(ctx, "t1", channels.NewAccount{Type: channels.WebChat, Name: "  Website  "})
		if err != nil {
			t.Fatal(err)
		}
		if a.ID == "" || a.Name != "Website" || !a.Enabled || a.Version != 1 || a.SessionCost != channels.DefaultSessionCost ||
			!a.CreatedAt.Equal(start) || a.UpdatedAt != nil {
			t.Errorf("created %+v", a)
		}
		if len(a.PublicKey) != 24 || !urlSafe.MatchString(a.PublicKey) {
			t.Errorf("generated public key %q is not 24 URL-safe characters", a.PublicKey)
		}
		if len(a.Secret) != 64 {
			t.Errorf("generated secret %q", a.Secret)
		}
		got, err := f.svc.Get(ctx, "t1", a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.PublicKey != a.PublicKey || string(got.Settings) != "{}" {
			t.Errorf("read back %+v", got)
		}
		b, err := f.svc.Create(ctx, "t1", channels.NewAccount{Type: channels.WebChat, Name: "Other"})
		if err != nil {
			t.Fatal(err)
		}
		if b.PublicKey == a.PublicKey || b.ID == a.ID || b.Secret == a.Secret {
			t.Error("two accounts share a generated id, key or secret")
		}

		// Everything given: hours as an object come back canonical.
		disabled := false
		wa, err := f.svc.Create(ctx, "t1", channels.NewAccount{Type: channels.WhatsApp, Name: "Sales", PublicKey: "sales-wa",
			Credentials:    json.RawMessage(`{ "access_token": "EAAG", "app_secret": "as" }`),
			DefaultGroupID: "support", SessionCost: 2, Enabled: &disabled,
			Settings: json.RawMessage(`{"rate_per_sec": 20, "burst": 40, "entry": "group", "provider_thing": {"x": 1},
				"hours": {"time_zone": "Asia/Shanghai", "weekly": {"mon": [{"start": "09:00", "end": "18:00"}]}}}`)})
		if err != nil {
			t.Fatal(err)
		}
		if wa.Enabled || wa.SessionCost != 2 || string(wa.Credentials) != `{"access_token":"EAAG","app_secret":"as"}` {
			t.Errorf("created %+v creds %s", wa, wa.Credentials)
		}
		st, err := channels.ParseAccountSettings(wa.Settings)
		if err != nil {
			t.Fatal(err)
		}
		if st.RatePerSec != 20 || st.Burst != 40 || st.Entry != channels.EntryGroup || !strings.HasPrefix(st.Hours, `{"time_zone":"Asia/Shanghai"`) {
			t.Errorf("settings %+v from %s", st, wa.Settings)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(wa.Settings, &raw); err != nil || string(raw["provider_thing"]) != `{"x":1}` {
			t.Errorf("provider settings not kept: %s", wa.Settings)
		}
		// A taken public key is a duplicate naming the field.
		_, err = f.svc.Create(ctx, "t1", channels.NewAccount{Type: channels.WebChat, Name: "Dup", PublicKey: "sales-wa"})
		if !errs.Is(err, errs.Duplicate) || !strings.Contains(errs.MessageOf(err), "public_key") {
			t.Errorf("taken public key: %v", err)
		}
	})
}

func TestValidationListsEveryProblem(t *testing.T) {
	forEachDB(t, func(t *testing.T, f fixture) {
		ctx := t.Context()
		webchat, err := f.svc.Create(ctx, "t1", channels.NewAccount{Type: channels.WebChat, Name: "Chat"})
		if err != nil {
			t.Fatal(err)
		}
		sms, err := f.svc.Create(ctx, "t1", channels.NewAccount{Type: channels.SMS, Name: "SMS"})
		if err != nil {
			t.Fatal(err)
		}
		otherTenantSMS, err := f.svc.Create(ctx, "t2", channels.NewAccount{Type: channels.SMS, Name: "Their SMS"})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			in   channels.NewAccount
			want []string
		}{
			{"everything wrong", channels.NewAccount{Type: "fax", Name: "", PublicKey: "a b", SessionCost: 11, DefaultGroupID: "nope",
				Secret: strings.Repeat("s", channels.MaxSecretLen+1)},
				[]string{"name", "type", "public_key", "secret", "session_cost", "default_group_id"}},
			{"settings wrong", channels.NewAccount{Type: channels.WhatsApp, Name: "WA", Enabled: new(bool),
				Settings: json.RawMessage(`{"rate_per_sec": 1001, "burst": -1, "entry": "flow", "hours": "{\"weekly\":{\"mon\":[{\"start\":\"10:00\",\"end\":\"09:00\"}]}}"}`)},
				[]string{"settings.rate_per_sec", "settings.burst", "settings.hours", "settings.entry"}},
			{"settings types", channels.NewAccount{Type: channels.WhatsApp, Name: "WA", Enabled: new(bool),
				Settings: json.RawMessage(`{"rate_per_sec": "fast", "burst": 1.5, "entry": 3, "fallback_account_id": 7}`)},
				[]string{"settings.rate_per_sec", "settings.burst", "settings.fallback_account_id", "settings.entry"}},
			{"settings not an object", channels.NewAccount{Type: channels.WebChat, Name: "W", Settings: json.RawMessage(`[1]`)},
				[]string{"settings"}},
			{"entry group without a group", channels.NewAccount{Type: channels.WebChat, Name: "W", Settings: json.RawMessage(`{"entry":"group"}`)},
				[]string{"settings.entry"}},
			{"fallback missing", channels.NewAccount{Type: channels.WhatsApp, Name: "WA", Enabled: new(bool),
				Settings: json.RawMessage(`{"fallback_account_id":"nope"}`)}, []string{"settings.fallback_account_id"}},
			{"fallback not sms", channels.NewAccount{Type: channels.WhatsApp, Name: "WA", Enabled: new(bool),
				Settings: json.RawMessage(`{"fallback_account_id":"` + webchat.ID + `"}`)}, []string{"settings.fallback_account_id"}},
			{"fallback of another tenant", channels.NewAccount{Type: channels.WhatsApp, Name: "WA", Enabled: new(bool),
				Settings: json.RawMessage(`{"fallback_account_id":"` + otherTenantSMS.ID + `"}`)}, []string{"settings.fallback_account_id"}},
			{"credentials not an object", channels.NewAccount{Type: channels.WebChat, Name: "W", Credentials: json.RawMessage(`"token"`)},
				[]string{"credentials"}},
			{"credentials refused by the provider", channels.NewAccount{Type: channels.WhatsApp, Name: "WA",
				Credentials: json.RawMessage(`{"access_token":"x"}`)}, []string{"credentials.app_secret"}},
			{"enabled without credentials", channels.NewAccount{Type: channels.WhatsApp, Name: "WA"}, []string{"credentials.access_token"}},
			{"name with a newline", channels.NewAccount{Type: channels.WebChat, Name: "a\nb"}, []string{"name"}},
			{"name too long", channels.NewAccount{Type: channels.WebChat, Name: strings.Repeat("名", channels.MaxAccountNameLen+1)}, []string{"name"}},
			{"public key too short", channels.NewAccount{Type: channels.WebChat, Name: "W", PublicKey: "abc"}, []string{"public_key"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := f.svc.Create(ctx, "t1", tc.in)
				if !errs.Is(err, errs.Invalid) {
					t.Fatalf("Create = %v, want invalid", err)
				}
				got := fields(channels.ProblemsOf(err))
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("problems (-want +got):\n%s\n%v", diff, channels.ProblemsOf(err))
				}
				if !strings.HasPrefix(errs.MessageOf(err), tc.want[0]+": ") {
					t.Errorf("message %q does not name the first problem %s", errs.MessageOf(err), tc.want[0])
				}
			})
		}
		// The valid neighbours of those cases pass: an SMS fallback, a
		// disabled account without credentials, a group entry with a group.
		off := false
		if _, err := f.svc.Create(ctx, "t1", channels.NewAccount{Type: channels.WhatsApp, Name: "WA", Enabled: &off,
			DefaultGroupID: "support", Settings: json.RawMessage(`{"fallback_account_id":"` + sms.ID + `","entry":"group","rate_per_sec":0.5}`)}); err != nil {
			t.Errorf("valid account refused: %v", err)
		}
		if list, err := f.svc.List(ctx, "t1", channels.AccountFilter{}); err != nil || len(list) != 3 {
			t.Errorf("List = %d accounts, %v; invalid ones must not be stored", len(list), err)
		}
		if _, err := f.svc.List(ctx, "t1", channels.AccountFilter{Type: "fax"}); !errs.Is(err, errs.Invalid) {
			t.Errorf("List by an unknown type: %v, want invalid", err)
		}
	})
}

func TestUpdate(t *testing.T) {
	forEachDB(t, func(t *testing.T, f fixture) {
		ctx := t.Context()
		a, err := f.svc.Create(ctx, "t1", channels.NewAccount{Type: channels.WhatsApp, Name: "WA",
			Credentials: json.RawMessage(`{"access_token":"t","app_secret":"s"}`),
			Settings:    json.RawMessage(`{"rate_per_sec":20,"burst":5,"provider_thing":1}`)})
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Minute)
		name := "WA renamed"
		settings := json.RawMessage(`{"burst":null,"entry":"bot","hours":""}`)
		got, err := f.svc.Update(ctx, "t1", a.ID, 1, channels.AccountPatch{Name: &name, Settings: &settings})
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != name || got.Version != 2 || got.UpdatedAt == nil || !got.UpdatedAt.Equal(start.Add(time.Minute)) ||
			string(got.Credentials) != `{"access_token":"t","app_secret":"s"}` || got.PublicKey != a.PublicKey {
			t.Errorf("updated %+v", got)
		}
		var st map[string]any
		if err := json.Unmarshal(got.Settings, &st); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]any{"rate_per_sec": 20.0, "entry": "bot", "provider_thing": 1.0}, st); diff != "" {
			t.Errorf("merged settings (-want +got):\n%s", diff)
		}
		// Stale, other tenant, invalid.
		if _, err := f.svc.Update(ctx, "t1", a.ID, 1, channels.AccountPatch{Name: &name}); !errs.Is(err, errs.Conflict) ||
			errs.DetailsOf(err)["version"] != int64(2) {
			t.Errorf("stale update: %v %v", err, errs.DetailsOf(err))
		}
		if _, err := f.svc.Update(ctx, "t2", a.ID, 2, channels.AccountPatch{Name: &name}); !errs.Is(err, errs.NotFound) {
			t.Errorf("update through another tenant: %v, want not_found", err)
		}
		bad := json.RawMessage(`{"app_secret":"only"}`)
		cost := 0
		_, err = f.svc.Update(ctx, "t1", a.ID, 2, channels.AccountPatch{Credentials: &bad, SessionCost: &cost})
		if diff := cmp.Diff([]string{"session_cost", "credentials.access_token"}, fields(channels.ProblemsOf(err))); diff != "" {
			t.Errorf("invalid update problems (-want +got):\n%s", diff)
		}
		notObject := json.RawMessage(`"x"`)
		empty := ""
		_, err = f.svc.Update(ctx, "t1", a.ID, 2, channels.AccountPatch{Settings: &notObject, Name: &empty})
		if diff := cmp.Diff([]string{"settings", "name"}, fields(channels.ProblemsOf(err))); diff != "" {
			t.Errorf("settings patch that is not an object, and no name (-want +got):\n%s", diff)
		}
		// Credentials cannot be removed while enabled (the provider needs
		// them); disabled, they can.
		null := json.RawMessage(`null`)
		if _, err := f.svc.Update(ctx, "t1", a.ID, 2, channels.AccountPatch{Credentials: &null}); !errs.Is(err, errs.Invalid) {
			t.Errorf("removing the credentials of an enabled account: %v, want invalid", err)
		}
		off := false
		got, err = f.svc.Update(ctx, "t1", a.ID, 2, channels.AccountPatch{Credentials: &null, Enabled: &off})
		if err != nil || got.Credentials != nil || got.Enabled || got.Version != 3 {
			t.Fatalf("disable and remove credentials: %+v, %v", got, err)
		}
		if read, err := f.svc.Get(ctx, "t1", a.ID); err != nil || read.Credentials != nil {
			t.Errorf("credentials after removal: %s, %v", read.Credentials, err)
		}
	})
}

func TestDelete(t *testing.T) {
	forEachDB(t, func(t *testing.T, f fixture) {
		ctx := t.Context()
		sms, err := f.svc.Create(ctx, "t1", channels.NewAccount{Type: channels.SMS, Name: "SMS"})
		if err != nil {
			t.Fatal(err)
		}
		off := false
		wa, err := f.svc.Create(ctx, "t1", channels.NewAccount{Type: channels.WhatsApp, Name: "WA", Enabled: &off,
			Settings: json.RawMessage(`{"fallback_account_id":"` + sms.ID + `"}`)})
		if err != nil {
			t.Fatal(err)
		}
		err = f.svc.Delete(ctx, "t1", sms.ID, 0)
		if users, _ := errs.DetailsOf(err)["fallback_of"].([]string); !errs.Is(err, errs.Conflict) || !slices.Equal(users, []string{"WA"}) {
			t.Errorf("deleting a fallback in use: %v %v", err, errs.DetailsOf(err))
		}
		if err := f.svc.Delete(ctx, "t2", wa.ID, 0); !errs.Is(err, errs.NotFound) {
			t.Errorf("delete through another tenant: %v", err)
		}
		if err := f.svc.Delete(ctx, "t1", wa.ID, 5); !errs.Is(err, errs.Conflict) {
			t.Errorf("delete at a stale version: %v", err)
		}
		if err := f.svc.Delete(ctx, "t1", wa.ID, 1); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.Delete(ctx, "t1", sms.ID, 0); err != nil {
			t.Errorf("the fallback, no longer used: %v", err)
		}
		if list, _ := f.svc.List(ctx, "t1", channels.AccountFilter{}); len(list) != 0 {
			t.Errorf("left: %v", list)
		}
	})
}

func TestCredentialFields(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want []string
	}{
		{``, []string{}},
		{`null`, []string{}},
		{`[]`, []string{}},
		{`{"b":"x","a":"y","empty":"","none":null,"n":0,"o":{}}`, []string{"a", "b", "n", "o"}},
	} {
		if diff := cmp.Diff(tc.want, channels.CredentialFields(json.RawMessage(tc.raw))); diff != "" {
			t.Errorf("CredentialFields(%s) (-want +got):\n%s", tc.raw, diff)
		}
	}
}

func TestTypes(t *testing.T) {
	for _, ty := range channels.Types {
		if !ty.Valid() {
			t.Errorf("%s not valid", ty)
		}
	}
	if channels.Type("fax").Valid() || channels.Type("").Valid() {
		t.Error("unknown types valid")
	}
}
