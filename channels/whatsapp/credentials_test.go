package whatsapp_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/channels/whatsapp"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

const secretToken = "EAAGm0PX4ZCpsBAKZBZC-super-secret-token"

func credsJSON(t *testing.T, mutate func(m map[string]any)) json.RawMessage {
	t.Helper()
	m := map[string]any{
		"phone_number_id": "106540352242922", "access_token": secretToken,
		"app_secret": "app-secret", "verify_token": "verify-me",
	}
	if mutate != nil {
		mutate(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseCredentialsDefaults(t *testing.T) {
	c, err := whatsapp.ParseCredentials(credsJSON(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := whatsapp.Credentials{PhoneNumberID: "106540352242922", AccessToken: secretToken, AppSecret: "app-secret",
		VerifyToken: "verify-me", APIVersion: whatsapp.DefaultAPIVersion, BaseURL: whatsapp.DefaultBaseURL}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("credentials (-want +got):\n%s", diff)
	}

	c, err = whatsapp.ParseCredentials(credsJSON(t, func(m map[string]any) {
		m["api_version"], m["base_url"], m["waba_id"] = "v19.0", "http://127.0.0.1:8080/", "102290129340398"
		m["display_name"] = "ignored when reading"
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.APIVersion != "v19.0" || c.BaseURL != "http://127.0.0.1:8080" || c.WABAID != "102290129340398" {
		t.Errorf("got %+v", c)
	}
}

func TestValidateCredentials(t *testing.T) {
	tests := []struct {
		name   string
		raw    json.RawMessage
		field  string // the message must name it
		wantOK bool
	}{
		{name: "complete", raw: credsJSON(t, nil), wantOK: true},
		{name: "all fields", raw: credsJSON(t, func(m map[string]any) {
			m["waba_id"], m["api_version"], m["base_url"] = "1", "v21.0", "https://graph.facebook.com"
		}), wantOK: true},
		{name: "empty", raw: nil, field: "credentials"},
		{name: "not json", raw: json.RawMessage(`{"phone_number_id":`), field: "not valid JSON"},
		{name: "array", raw: json.RawMessage(`[]`), field: "credentials"},
		{name: "trailing", raw: json.RawMessage(string(credsJSON(t, nil)) + `{}`), field: "trailing"},
		{name: "misspelt key", raw: credsJSON(t, func(m map[string]any) { m["acess_token"] = "x" }), field: "acess_token"},
		{name: "number id", raw: credsJSON(t, func(m map[string]any) { m["phone_number_id"] = 106540352242922 }), field: "phone_number_id"},
		{name: "no phone id", raw: credsJSON(t, func(m map[string]any) { delete(m, "phone_number_id") }), field: "phone_number_id"},
		{name: "phone number instead of id", raw: credsJSON(t, func(m map[string]any) { m["phone_number_id"] = "+1 555 0100" }), field: "phone_number_id"},
		{name: "path in id", raw: credsJSON(t, func(m map[string]any) { m["phone_number_id"] = "1/../2" }), field: "phone_number_id"},
		{name: "no token", raw: credsJSON(t, func(m map[string]any) { m["access_token"] = "" }), field: "access_token"},
		{name: "token with newline", raw: credsJSON(t, func(m map[string]any) { m["access_token"] = secretToken + "\r\nX: y" }), field: "access_token"},
		{name: "no app secret", raw: credsJSON(t, func(m map[string]any) { delete(m, "app_secret") }), field: "app_secret"},
		{name: "no verify token", raw: credsJSON(t, func(m map[string]any) { delete(m, "verify_token") }), field: "verify_token"},
		{name: "bad waba", raw: credsJSON(t, func(m map[string]any) { m["waba_id"] = "abc" }), field: "waba_id"},
		{name: "bad version", raw: credsJSON(t, func(m map[string]any) { m["api_version"] = "21" }), field: "api_version"},
		{name: "version path", raw: credsJSON(t, func(m map[string]any) { m["api_version"] = "v1.0/x" }), field: "api_version"},
		{name: "ftp base", raw: credsJSON(t, func(m map[string]any) { m["base_url"] = "ftp://graph.facebook.com" }), field: "base_url"},
		{name: "base with query", raw: credsJSON(t, func(m map[string]any) { m["base_url"] = "https://graph.facebook.com?x=1" }), field: "base_url"},
		{name: "relative base", raw: credsJSON(t, func(m map[string]any) { m["base_url"] = "graph.facebook.com" }), field: "base_url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := whatsapp.ValidateCredentials(tc.raw)
			if tc.wantOK {
				if err != nil {
					t.Fatalf("ValidateCredentials: %v", err)
				}
				return
			}
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("got %v, want invalid", err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name %q", err, tc.field)
			}
			if strings.Contains(err.Error(), secretToken) {
				t.Errorf("error %q leaks the access token", err)
			}
		})
	}
}
