package console_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/channels/whatsapp/whatsapptest"
	"github.com/switchboard-acd/switchboard/internal/apptest"
)

// webhooksWalk calls the provider webhook operations (part of
// TestOpenAPIWalk): the handshake, a signed delivery, and the refusals.
func webhooksWalk(t *testing.T, n *apptest.Node, admin string) {
	fake := whatsapptest.New(t)
	var acct struct {
		PublicKey string `json:"public_key"`
	}
	want(t, n, 201, "POST", "/api/v1/channel-accounts", admin, map[string]any{
		"type": "whatsapp", "name": "Walk WhatsApp", "credentials": json.RawMessage(fake.Credentials()),
	}).JSON(t, &acct)
	path := "/webhooks/" + acct.PublicKey

	r := wantRaw(t, n, 200, "GET", path+"?hub.mode=subscribe&hub.verify_token="+fake.VerifyToken()+"&hub.challenge=42", "", "", nil, nil)
	if string(r.Body) != "42" {
		t.Errorf("handshake answered %q, want the challenge", r.Body)
	}
	wantRaw(t, n, 403, "GET", path+"?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=42", "", "", nil, nil)
	wantRaw(t, n, 404, "GET", "/webhooks/no-such-key?hub.mode=subscribe", "", "", nil, nil)

	body := whatsapptest.TextNotification(fake.PhoneNumberID(), whatsapptest.Text{
		From: "447700900123", Name: "Walk", ID: "wamid.walk.1", Body: "hello", At: time.Now()})
	sig := map[string]string{"X-Hub-Signature-256": whatsapptest.Sign(fake.AppSecret(), body)}
	wantRaw(t, n, 200, "POST", path, "", "application/json", body, sig)
	wantRaw(t, n, 200, "POST", path, "", "application/json", body, sig) // a retry: stored once
	wantRaw(t, n, 401, "POST", path, "", "application/json", body, map[string]string{"X-Hub-Signature-256": "sha256=00"})
	broken := []byte(`{"object": "whatsapp_business_account", "entry": [`)
	wantRaw(t, n, 400, "POST", path, "", "application/json", broken,
		map[string]string{"X-Hub-Signature-256": whatsapptest.Sign(fake.AppSecret(), broken)})
	wantRaw(t, n, 404, "POST", "/webhooks/no-such-key", "", "application/json", body, sig)
}
