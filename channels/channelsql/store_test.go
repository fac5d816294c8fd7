package channelsql_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/channelsql"
	"github.com/switchboard-acd/switchboard/channels/secretbox"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

var at = time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)

// jsonEqual compares JSON columns by value: PostgreSQL's JSONB gives its
// own spacing back.
var jsonEqual = cmp.Comparer(func(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return string(a) == string(b)
	}
	return reflect.DeepEqual(x, y)
})

// forEachDB runs a test on a fresh migrated database of every kind with
// tenants t1 and t2.
func forEachDB(t *testing.T, fn func(t *testing.T, d *db.DB)) {
	for _, kind := range testenv.DBKinds {
		t.Run(kind, func(t *testing.T) {
			d := testenv.DB(t, kind)
			for _, id := range []string{"t1", "t2"} {
				if _, err := d.ExecContext(t.Context(), d.Rebind(`INSERT INTO tenants (id, name, settings, created_at) VALUES (?, ?, ?, ?)`),
					id, id, "{}", at); err != nil {
					t.Fatal(err)
				}
			}
			fn(t, d)
		})
	}
}

func newKey(t *testing.T) secretbox.Key {
	t.Helper()
	k, err := secretbox.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ring(t *testing.T, cur secretbox.Key, old ...secretbox.Key) *secretbox.Keyring {
	t.Helper()
	kr, err := secretbox.NewKeyring(cur, old...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// rawCredentials reads the credentials column as stored.
func rawCredentials(t *testing.T, d *db.DB, tenantID, id string) string {
	t.Helper()
	var s string
	if err := d.GetContext(t.Context(), &s, d.Rebind(`SELECT credentials FROM channel_accounts WHERE tenant_id = ? AND id = ?`), tenantID, id); err != nil {
		t.Fatal(err)
	}
	return s
}

const waCreds = `{"phone_number_id":"106540352242922","access_token":"EAAG-secret-token","app_secret":"0123abcd-app-secret","verify_token":"vt-123"}`

func waAccount(tenantID, id, key string) channels.Account {
	return channels.Account{TenantID: tenantID, ID: id, Type: channels.WhatsApp, Name: "Sales line " + id, PublicKey: key, Secret: "s-" + id,
		Credentials: json.RawMessage(waCreds), DefaultGroupID: "g", Settings: json.RawMessage(`{"rate_per_sec":20}`),
		SessionCost: 2, Enabled: true, Version: 1, CreatedAt: at}
}

func TestAccounts(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		s := channelsql.New(d, channelsql.WithKeys(ring(t, newKey(t))))
		a := channels.Account{TenantID: "t1", ID: "wc1", Type: channels.WebChat, Name: "Site", PublicKey: "k1", Secret: "s",
			DefaultGroupID: "g", Settings: []byte(`{}`), SessionCost: 3, Enabled: true, Version: 1, CreatedAt: at}
		if err := s.AccountCreate(ctx, a); err != nil {
			t.Fatal(err)
		}
		got, err := s.AccountByKey(ctx, "k1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a, got, jsonEqual); diff != "" {
			t.Errorf("AccountByKey (-want +got):\n%s", diff)
		}
		if _, err := s.AccountGet(ctx, "t2", "wc1"); !errs.Is(err, errs.NotFound) {
			t.Errorf("other tenant's account: %v, want not_found", err)
		}
		if _, err := s.AccountByKey(ctx, "nope"); !errs.Is(err, errs.NotFound) {
			t.Errorf("unknown key: %v, want not_found", err)
		}
		dup := a
		dup.ID = "wc2"
		if err := s.AccountCreate(ctx, dup); !errs.Is(err, errs.Duplicate) {
			t.Errorf("duplicate public key: %v, want duplicate", err)
		}
		// A zero session cost is stored as the default; one out of range is
		// refused.
		plain := channels.Account{TenantID: "t1", ID: "wc3", Type: channels.WebChat, Name: "Plain", PublicKey: "k3", Secret: "s", CreatedAt: at}
		if err := s.AccountCreate(ctx, plain); err != nil {
			t.Fatal(err)
		}
		if got, err := s.AccountGet(ctx, "t1", "wc3"); err != nil || got.SessionCost != channels.DefaultSessionCost {
			t.Errorf("session cost of an account created without one = %d, %v, want %d", got.SessionCost, err, channels.DefaultSessionCost)
		}
		for _, cost := range []int{-1, channels.MaxSessionCost + 1} {
			bad := plain
			bad.ID, bad.PublicKey, bad.SessionCost = "wc4", "k4", cost
			if err := s.AccountCreate(ctx, bad); !errs.Is(err, errs.Invalid) {
				t.Errorf("session cost %d: %v, want invalid", cost, err)
			}
		}
		list, err := s.AccountList(ctx, "t1")
		if err != nil || len(list) != 2 {
			t.Fatalf("AccountList = %v, %v", list, err)
		}
		if list, _ := s.AccountList(ctx, "t2"); len(list) != 0 {
			t.Errorf("tenant t2 sees %v", list)
		}
		// An account created disabled (Enabled false) is found by its key,
		// and says it is disabled.
		if got, err := s.AccountByKey(ctx, "k3"); err != nil || got.Enabled {
			t.Errorf("AccountByKey of a disabled account = enabled %v, %v; want disabled, found", got.Enabled, err)
		}
	})
}

func TestCredentialsSealedAtRest(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		k := newKey(t)
		s := channelsql.New(d, channelsql.WithKeys(ring(t, k)))
		a := waAccount("t1", "wa1", "wa-key-1")
		if err := s.AccountCreate(ctx, a); err != nil {
			t.Fatal(err)
		}
		raw := rawCredentials(t, d, "t1", "wa1")
		if !strings.HasPrefix(raw, "v1:"+k.ID+":") {
			t.Errorf("credentials column %q is not v1 sealed with key %s", raw, k.ID)
		}
		for _, secret := range []string{"EAAG-secret-token", "0123abcd-app-secret", "phone_number_id", waCreds} {
			if strings.Contains(raw, secret) {
				t.Errorf("credentials column shows %q: %s", secret, raw)
			}
		}
		for name, get := range map[string]func() (channels.Account, error){
			"get":    func() (channels.Account, error) { return s.AccountGet(ctx, "t1", "wa1") },
			"by key": func() (channels.Account, error) { return s.AccountByKey(ctx, "wa-key-1") },
			"list": func() (channels.Account, error) {
				l, err := s.AccountList(ctx, "t1")
				if err != nil || len(l) != 1 {
					return channels.Account{}, errors.Join(err, errors.New("want one account"))
				}
				return l[0], nil
			},
		} {
			got, err := get()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if diff := cmp.Diff(a, got, jsonEqual); diff != "" {
				t.Errorf("%s (-want +got):\n%s", name, diff)
			}
		}
		// An account without credentials stores none.
		plain := waAccount("t1", "wa2", "wa-key-2")
		plain.Credentials = nil
		if err := s.AccountCreate(ctx, plain); err != nil {
			t.Fatal(err)
		}
		if raw := rawCredentials(t, d, "t1", "wa2"); raw != "" {
			t.Errorf("no credentials stored as %q, want empty", raw)
		}
		if got, err := s.AccountGet(ctx, "t1", "wa2"); err != nil || got.Credentials != nil {
			t.Errorf("account without credentials read back as %s, %v", got.Credentials, err)
		}
		// Malformed credentials never reach the database.
		bad := waAccount("t1", "wa3", "wa-key-3")
		bad.Credentials = json.RawMessage(`{"access_token":`)
		if err := s.AccountCreate(ctx, bad); !errs.Is(err, errs.Invalid) {
			t.Errorf("malformed credentials: %v, want invalid", err)
		}
	})
}

func TestCredentialsWrongKey(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		k := newKey(t)
		s := channelsql.New(d, channelsql.WithKeys(ring(t, k)))
		if err := s.AccountCreate(ctx, waAccount("t1", "wa1", "wa-key-1")); err != nil {
			t.Fatal(err)
		}
		if err := s.AccountCreate(ctx, waAccount("t1", "wa2", "wa-key-2")); err != nil {
			t.Fatal(err)
		}
		// A node with another key: the error names the key the value needs.
		other := channelsql.New(d, channelsql.WithKeys(ring(t, newKey(t))))
		_, err := other.AccountGet(ctx, "t1", "wa1")
		if !errors.Is(err, secretbox.ErrUnknownKey) || !errs.Is(err, errs.Internal) || !strings.Contains(errs.MessageOf(err), k.ID) ||
			!strings.Contains(errs.MessageOf(err), "wa1") {
			t.Errorf("AccountGet with another key: %v (message %q); want internal, ErrUnknownKey, naming key %s and account wa1", err, errs.MessageOf(err), k.ID)
		}
		if _, err := other.AccountList(ctx, "t1"); !errors.Is(err, secretbox.ErrUnknownKey) {
			t.Errorf("AccountList with another key: %v, want ErrUnknownKey", err)
		}
		// Another key under the same id does not authenticate.
		impostor := channelsql.New(d, channelsql.WithKeys(ring(t, secretbox.Key{ID: k.ID, Secret: newKey(t).Secret})))
		if _, err := impostor.AccountByKey(ctx, "wa-key-1"); !errors.Is(err, secretbox.ErrAuth) {
			t.Errorf("AccountByKey with another key under the same id: %v, want ErrAuth", err)
		}
		// No key at all: reading credentials and writing them both say so.
		none := channelsql.New(d)
		if _, err := none.AccountGet(ctx, "t1", "wa1"); err == nil || !strings.Contains(err.Error(), "no credentials key") {
			t.Errorf("AccountGet without a key: %v", err)
		}
		if err := none.AccountCreate(ctx, waAccount("t1", "wa9", "wa-key-9")); err == nil || !strings.Contains(err.Error(), "no credentials key") {
			t.Errorf("AccountCreate with credentials without a key: %v", err)
		}
		// A ciphertext copied into another account's row does not open.
		if _, err := d.ExecContext(ctx, d.Rebind(`UPDATE channel_accounts SET credentials = ? WHERE tenant_id = ? AND id = ?`),
			rawCredentials(t, d, "t1", "wa1"), "t1", "wa2"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AccountGet(ctx, "t1", "wa2"); !errors.Is(err, secretbox.ErrAuth) {
			t.Errorf("credentials copied from another account: %v, want ErrAuth", err)
		}
		// Also across tenants: the same account id in t2 with t1's value.
		twin := waAccount("t2", "wa1", "wa-key-t2")
		twin.Credentials = nil
		if err := s.AccountCreate(ctx, twin); err != nil {
			t.Fatal(err)
		}
		if _, err := d.ExecContext(ctx, d.Rebind(`UPDATE channel_accounts SET credentials = ? WHERE tenant_id = ? AND id = ?`),
			rawCredentials(t, d, "t1", "wa1"), "t2", "wa1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AccountGet(ctx, "t2", "wa1"); !errors.Is(err, secretbox.ErrAuth) {
			t.Errorf("credentials copied from another tenant: %v, want ErrAuth", err)
		}
	})
}

func TestCredentialsRotation(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		oldKey, newKey := newKey(t), newKey(t)
		before := channelsql.New(d, channelsql.WithKeys(ring(t, oldKey)))
		for _, id := range []string{"wa1", "wa2", "wa3"} {
			if err := before.AccountCreate(ctx, waAccount("t1", id, "key-"+id)); err != nil {
				t.Fatal(err)
			}
		}
		plain := waAccount("t2", "wc", "key-wc")
		plain.Type, plain.Credentials = channels.WebChat, nil
		if err := before.AccountCreate(ctx, plain); err != nil {
			t.Fatal(err)
		}
		// The new key is current; the old one still opens.
		after := channelsql.New(d, channelsql.WithKeys(ring(t, newKey, oldKey)))
		a, err := after.AccountGet(ctx, "t1", "wa1")
		if err != nil || string(a.Credentials) != waCreds {
			t.Fatalf("read with the rotated keyring: %s, %v", a.Credentials, err)
		}
		// A write seals with the new key.
		a.Name = "Renamed"
		if _, err := after.AccountUpdate(ctx, a); err != nil {
			t.Fatal(err)
		}
		if raw := rawCredentials(t, d, "t1", "wa1"); !strings.HasPrefix(raw, "v1:"+newKey.ID+":") {
			t.Errorf("updated credentials %q not sealed with the new key %s", raw, newKey.ID)
		}
		// Rekey re-seals the rest; accounts without credentials are left alone.
		n, err := after.CredentialsRekey(ctx)
		if err != nil || n != 2 {
			t.Fatalf("CredentialsRekey = %d, %v; want 2", n, err)
		}
		if n, err := after.CredentialsRekey(ctx); err != nil || n != 0 {
			t.Errorf("second CredentialsRekey = %d, %v; want 0", n, err)
		}
		// Now the old key can go.
		final := channelsql.New(d, channelsql.WithKeys(ring(t, newKey)))
		for _, id := range []string{"wa1", "wa2", "wa3"} {
			a, err := final.AccountGet(ctx, "t1", id)
			if err != nil || string(a.Credentials) != waCreds {
				t.Errorf("%s after rekey, new key only: %s, %v", id, a.Credentials, err)
			}
			if a.Version != map[string]int64{"wa1": 2, "wa2": 1, "wa3": 1}[id] {
				t.Errorf("%s: version %d after rekey; rekey must not count as an update", id, a.Version)
			}
		}
		if raw := rawCredentials(t, d, "t2", "wc"); raw != "" {
			t.Errorf("rekey wrote credentials %q for an account without any", raw)
		}
	})
}

func TestAccountUpdate(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		clk := clock.NewFake(at.Add(time.Hour))
		s := channelsql.New(d, channelsql.WithKeys(ring(t, newKey(t))), channelsql.WithClock(clk))
		a := waAccount("t1", "wa1", "wa-key-1")
		if err := s.AccountCreate(ctx, a); err != nil {
			t.Fatal(err)
		}
		if err := s.AccountCreate(ctx, waAccount("t1", "wa2", "wa-key-2")); err != nil {
			t.Fatal(err)
		}
		edit := a
		edit.Name, edit.PublicKey, edit.Secret, edit.DefaultGroupID = "Renamed", "wa-key-new", "s2", ""
		edit.Settings, edit.SessionCost, edit.Enabled = json.RawMessage(`{"entry":"bot"}`), 1, false
		edit.Credentials = json.RawMessage(`{"access_token":"rotated"}`)
		edit.Type = channels.SMS // the type never changes
		got, err := s.AccountUpdate(ctx, edit)
		if err != nil {
			t.Fatal(err)
		}
		want := edit
		want.Type, want.Version = channels.WhatsApp, 2
		now := at.Add(time.Hour)
		want.UpdatedAt = &now
		if diff := cmp.Diff(want, got, jsonEqual); diff != "" {
			t.Errorf("AccountUpdate (-want +got):\n%s", diff)
		}
		read, err := s.AccountGet(ctx, "t1", "wa1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, read, jsonEqual); diff != "" {
			t.Errorf("read after update (-want +got):\n%s", diff)
		}
		if _, err := s.AccountByKey(ctx, "wa-key-1"); !errs.Is(err, errs.NotFound) {
			t.Errorf("old public key still finds the account: %v", err)
		}
		// The same version again is stale; the details hold the current one.
		_, err = s.AccountUpdate(ctx, edit)
		if !errs.Is(err, errs.Conflict) || errs.DetailsOf(err)["version"] != int64(2) {
			t.Errorf("stale update: %v %v, want conflict with version 2", err, errs.DetailsOf(err))
		}
		// Another tenant's account and a missing one are not found.
		other := read
		other.TenantID = "t2"
		if _, err := s.AccountUpdate(ctx, other); !errs.Is(err, errs.NotFound) {
			t.Errorf("update through another tenant: %v, want not_found", err)
		}
		// A public key taken by another account is a duplicate.
		taken := read
		taken.PublicKey = "wa-key-2"
		if _, err := s.AccountUpdate(ctx, taken); !errs.Is(err, errs.Duplicate) {
			t.Errorf("update to a taken public key: %v, want duplicate", err)
		}
		// Credentials can be removed without removing the account.
		clear := read
		clear.Credentials = json.RawMessage(`null`)
		got, err = s.AccountUpdate(ctx, clear)
		if err != nil || got.Credentials != nil || got.Version != 3 {
			t.Fatalf("clear credentials: %s v%d, %v", got.Credentials, got.Version, err)
		}
		if raw := rawCredentials(t, d, "t1", "wa1"); raw != "" {
			t.Errorf("credentials column after clearing: %q", raw)
		}
	})
}

func TestAccountListFiltered(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		s := channelsql.New(d, channelsql.WithKeys(ring(t, newKey(t))))
		mk := func(tenant, id string, typ channels.Type, enabled bool, created time.Time) {
			a := waAccount(tenant, id, tenant+"-"+id)
			a.Type, a.Enabled, a.CreatedAt = typ, enabled, created
			if err := s.AccountCreate(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		mk("t1", "b", channels.WhatsApp, true, at.Add(2*time.Minute))
		mk("t1", "a", channels.SMS, false, at.Add(time.Minute))
		mk("t1", "c", channels.SMS, true, at.Add(2*time.Minute))
		mk("t2", "x", channels.SMS, true, at)
		yes, no := true, false
		for _, tc := range []struct {
			f    channels.AccountFilter
			want []string
		}{
			{channels.AccountFilter{}, []string{"a", "b", "c"}},
			{channels.AccountFilter{Enabled: &yes}, []string{"b", "c"}},
			{channels.AccountFilter{Enabled: &no}, []string{"a"}},
			{channels.AccountFilter{Type: channels.SMS}, []string{"a", "c"}},
			{channels.AccountFilter{Type: channels.SMS, Enabled: &yes}, []string{"c"}},
			{channels.AccountFilter{Type: channels.WeChatOA}, []string{}},
		} {
			as, err := s.AccountListFiltered(ctx, "t1", tc.f)
			if err != nil {
				t.Fatal(err)
			}
			ids := []string{}
			for _, a := range as {
				ids = append(ids, a.ID)
			}
			if diff := cmp.Diff(tc.want, ids); diff != "" {
				t.Errorf("filter %+v (-want +got):\n%s", tc.f, diff)
			}
		}
	})
}

func TestAccountDelete(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		s := channelsql.New(d, channelsql.WithKeys(ring(t, newKey(t))))
		if err := s.AccountCreate(ctx, waAccount("t1", "wa1", "wa-key-1")); err != nil {
			t.Fatal(err)
		}
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := d.ExecContext(ctx, d.Rebind(q), args...); err != nil {
				t.Fatal(err)
			}
		}
		exec(`INSERT INTO contacts (tenant_id, id, created_at) VALUES ('t1', 'c1', ?)`, at)
		exec(`INSERT INTO conversations (tenant_id, id, account_id, contact_id, created_at) VALUES ('t1', 'cv1', 'wa1', 'c1', ?)`, at)
		exec(`INSERT INTO sessions (tenant_id, id, conversation_id, contact_id, account_id, channel, state, created_at, last_contact_at)
			VALUES ('t1', 's1', 'cv1', 'c1', 'wa1', 'whatsapp', 'active', ?, ?)`, at, at)
		if err := s.CursorSet(ctx, "t1", "wa1", "cursor-1"); err != nil {
			t.Fatal(err)
		}

		// Another tenant cannot delete it; a stale version cannot.
		if err := s.AccountDelete(ctx, "t2", "wa1", 0); !errs.Is(err, errs.NotFound) {
			t.Errorf("delete through another tenant: %v, want not_found", err)
		}
		if err := s.AccountDelete(ctx, "t1", "wa1", 7); !errs.Is(err, errs.Conflict) || errs.DetailsOf(err)["version"] != int64(1) {
			t.Errorf("delete at a stale version: %v, want conflict with version 1", err)
		}
		// An open session keeps the account.
		err := s.AccountDelete(ctx, "t1", "wa1", 1)
		if !errs.Is(err, errs.Conflict) || errs.DetailsOf(err)["open_sessions"] != 1 {
			t.Errorf("delete with an open session: %v %v, want conflict with open_sessions 1", err, errs.DetailsOf(err))
		}
		exec(`UPDATE sessions SET state = 'closed' WHERE tenant_id = 't1' AND id = 's1'`)
		// So does a message waiting in the outbox.
		exec(`INSERT INTO outbox (tenant_id, account_id, conversation_id, message_id, payload, next_at, queued_at, created_at)
			VALUES ('t1', 'wa1', 'cv1', 'm1', '{}', ?, ?, ?)`, at, at, at)
		err = s.AccountDelete(ctx, "t1", "wa1", 1)
		if !errs.Is(err, errs.Conflict) || errs.DetailsOf(err)["unsent_messages"] != 1 {
			t.Errorf("delete with an unsent message: %v %v, want conflict with unsent_messages 1", err, errs.DetailsOf(err))
		}
		exec(`UPDATE outbox SET state = 'sent' WHERE tenant_id = 't1' AND message_id = 'm1'`)

		if err := s.AccountDelete(ctx, "t1", "wa1", 1); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if _, err := s.AccountGet(ctx, "t1", "wa1"); !errs.Is(err, errs.NotFound) {
			t.Errorf("deleted account: %v, want not_found", err)
		}
		var n int
		if err := d.GetContext(ctx, &n, `SELECT COUNT(*) FROM channel_accounts`); err != nil || n != 0 {
			t.Errorf("%d account rows (credentials) left, %v", n, err)
		}
		if err := d.GetContext(ctx, &n, `SELECT COUNT(*) FROM channel_cursors`); err != nil || n != 0 {
			t.Errorf("%d cursor rows left, %v", n, err)
		}
		if err := s.AccountDelete(ctx, "t1", "wa1", 0); !errs.Is(err, errs.NotFound) {
			t.Errorf("second delete: %v, want not_found", err)
		}
	})
}

func TestCursors(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		clk := clock.NewFake(at)
		s := channelsql.New(d, channelsql.WithClock(clk))
		kf := channels.Account{TenantID: "t1", ID: "kf1", Type: channels.WeComKF, Name: "KF", PublicKey: "kf-key", CreatedAt: at, Enabled: true}
		if err := s.AccountCreate(ctx, kf); err != nil {
			t.Fatal(err)
		}
		if c, err := s.CursorGet(ctx, "t1", "kf1"); err != nil || c != "" {
			t.Errorf("cursor before any pull = %q, %v; want empty", c, err)
		}
		if err := s.CursorSet(ctx, "t1", "kf1", "4gw7MepFLfgF2VC5npN"); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
		if err := s.CursorSet(ctx, "t1", "kf1", "4gw7MepFLfgF2VC5npO"); err != nil {
			t.Fatal(err)
		}
		if c, err := s.CursorGet(ctx, "t1", "kf1"); err != nil || c != "4gw7MepFLfgF2VC5npO" {
			t.Errorf("cursor = %q, %v; want the last one set", c, err)
		}
		var updated time.Time
		if err := d.GetContext(ctx, &updated, d.Rebind(`SELECT updated_at FROM channel_cursors WHERE tenant_id = ? AND account_id = ?`), "t1", "kf1"); err != nil {
			t.Fatal(err)
		}
		if !updated.Equal(at.Add(time.Minute)) {
			t.Errorf("cursor updated_at %v, want %v (the clock's)", updated, at.Add(time.Minute))
		}
		// Another tenant's account has no cursor of this one's.
		if c, err := s.CursorGet(ctx, "t2", "kf1"); err != nil || c != "" {
			t.Errorf("other tenant's cursor = %q, %v; want empty", c, err)
		}
		if err := s.CursorSet(ctx, "t2", "kf1", "x"); !errs.Is(err, errs.Invalid) {
			t.Errorf("cursor of a missing account: %v, want invalid", err)
		}
		if err := s.CursorSet(ctx, "", "kf1", "x"); !errs.Is(err, errs.Invalid) {
			t.Errorf("cursor without a tenant: %v, want invalid", err)
		}
	})
}
