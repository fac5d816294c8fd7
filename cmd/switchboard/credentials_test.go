package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/channelsql"
	"github.com/switchboard-acd/switchboard/channels/secretbox"
	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/migrations"
)

// TestCredentialsRekey: after the new key is added in front of the old one
// and rekey ran, the old key can leave the configuration and every
// account's credentials still open.
func TestCredentialsRekey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	spec := func(keys ...secretbox.Key) string {
		var parts []string
		for _, k := range keys {
			parts = append(parts, k.ID+":"+base64.StdEncoding.EncodeToString(k.Secret[:]))
		}
		return strings.Join(parts, ",")
	}
	oldKey, newKey := mustKey(t, "old"), mustKey(t, "new")

	d, err := db.OpenSQLite(ctx, filepath.Join(dir, "switchboard.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrations.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	oldRing, err := secretbox.ParseKeyring(spec(oldKey))
	if err != nil {
		t.Fatal(err)
	}
	creds := json.RawMessage(`{"account_sid":"AC1","auth_token":"secret-token","from":"+15005550006"}`)
	if _, err := d.ExecContext(ctx, `INSERT INTO tenants (id, name, created_at) VALUES ('t1', 'T1', ?)`, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	if err := channelsql.New(d, channelsql.WithKeys(oldRing)).AccountCreate(ctx, channels.Account{
		TenantID: "t1", ID: "sms1", Type: channels.SMS, Name: "SMS", PublicKey: "pk-sms1", Credentials: creds,
		Enabled: true, CreatedAt: time.Now().UTC(),
	}); err != nil {
		t.Fatal(err)
	}
	d.Close()

	var out bytes.Buffer
	err = run([]string{"credentials", "rekey", "--data-dir", dir, "--credentials-key", spec(newKey, oldKey)}, &out, &out)
	if err != nil {
		t.Fatalf("rekey: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "1 account(s) with key new") {
		t.Errorf("rekey said %q", out.String())
	}

	d, err = db.OpenSQLite(ctx, filepath.Join(dir, "switchboard.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	newRing, err := secretbox.ParseKeyring(spec(newKey))
	if err != nil {
		t.Fatal(err)
	}
	got, err := channelsql.New(d, channelsql.WithKeys(newRing)).AccountGet(ctx, "t1", "sms1")
	if err != nil {
		t.Fatalf("reading with the new key alone: %v", err)
	}
	if string(got.Credentials) != string(creds) {
		t.Errorf("credentials = %s, want %s", got.Credentials, creds)
	}
	if err := run([]string{"credentials", "nonsense"}, &out, &out); err == nil {
		t.Error("an unknown subcommand was accepted")
	}
}

func mustKey(t *testing.T, id string) secretbox.Key {
	t.Helper()
	k, err := secretbox.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	k.ID = id
	return k
}
