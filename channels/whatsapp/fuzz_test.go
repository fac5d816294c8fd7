package whatsapp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/whatsapp"
	"github.com/switchboard-acd/switchboard/channels/whatsapp/whatsapptest"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// whatsappSamples returns every whatsapp_* sample file's bytes.
func whatsappSamples(f *testing.F) [][]byte {
	f.Helper()
	dir := testenv.ChannelSamples(f)
	names, err := filepath.Glob(filepath.Join(dir, "whatsapp_*"))
	if err != nil || len(names) == 0 {
		f.Fatalf("no whatsapp samples in %s: %v", dir, err)
	}
	var out [][]byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

var inboundTypes = map[string]bool{
	channels.MsgText: true, channels.MsgImage: true, channels.MsgAudio: true, channels.MsgVideo: true,
	channels.MsgDocument: true, channels.MsgSticker: true, channels.MsgLocation: true, channels.MsgContacts: true,
	channels.MsgInteractive: true, channels.MsgReaction: true, channels.MsgEvent: true, channels.MsgUnsupported: true,
}

var statusValues = map[string]bool{
	channels.StatusSent: true, channels.StatusDelivered: true, channels.StatusRead: true, channels.StatusFailed: true,
}

// FuzzWebhook posts any body with a valid signature: the adapter never
// panics, fails only with errs.Invalid, and what it returns is complete.
func FuzzWebhook(f *testing.F) {
	for _, b := range whatsappSamples(f) {
		f.Add(b)
	}
	f.Add([]byte(`{"object":"whatsapp_business_account","entry":[]}`))
	f.Add(envelopeWith(samplePhoneNumberID, msg("system", `"system":{"body":"x","type":"customer_identity_changed"}`), "", `{"code":1}`))
	a := newAdapter()
	acct := sampleAccount(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := a.Webhook(context.Background(), acct, whatsapptest.WebhookRequest(sampleAppSecret, body))
		if err != nil {
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("error %v is %s, want invalid", err, errs.CodeOf(err))
			}
			return
		}
		if res.Reply.Status != http.StatusOK {
			t.Fatalf("reply %d", res.Reply.Status)
		}
		for _, in := range res.Inbound {
			if in.AccountID != acct.ID || in.ChannelMsgID == "" || in.ExternalID == "" || !inboundTypes[in.Type] || in.ReceivedAt.IsZero() {
				t.Fatalf("incomplete inbound %+v", in)
			}
			if !json.Valid(in.Raw) {
				t.Fatalf("Raw is not JSON: %q", in.Raw)
			}
			if _, err := whatsapp.InboundExtras(in); err != nil && !errs.Is(err, errs.Invalid) {
				t.Fatalf("InboundExtras: %v", err)
			}
		}
		for _, s := range res.Statuses {
			if s.AccountID != acct.ID || s.ChannelMsgID == "" || !statusValues[s.Status] || s.At.IsZero() {
				t.Fatalf("incomplete status %+v", s)
			}
		}
	})
}

// FuzzVerifySignature checks that only the body's own signature passes.
func FuzzVerifySignature(f *testing.F) {
	for _, b := range whatsappSamples(f) {
		f.Add(b, whatsapp.Sign(sampleAppSecret, b))
	}
	f.Add([]byte("test"), "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914")
	f.Add([]byte("test"), "sha256=")
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		err := whatsapp.VerifySignature(sampleAppSecret, body, header)
		want := whatsapp.Sign(sampleAppSecret, body)
		if err == nil && !strings.EqualFold(header, want) {
			t.Fatalf("accepted %q for a body signed %q", header, want)
		}
		if err != nil && !errs.Is(err, errs.Unauthorized) {
			t.Fatalf("error %v is %s, want unauthorized", err, errs.CodeOf(err))
		}
		if err != nil && header == want {
			t.Fatalf("refused the right signature: %v", err)
		}
	})
}

// FuzzHandshake answers any query: the challenge is echoed only to the
// right token, and only when it is token-like.
func FuzzHandshake(f *testing.F) {
	f.Add("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock")
	f.Add("hub.mode=subscribe&hub.challenge=%3Cb%3E&hub.verify_token=meatyhamhock")
	f.Add("hub.mode=subscribe&hub.verify_token=nope")
	a := newAdapter()
	acct := sampleAccount(f)
	f.Fuzz(func(t *testing.T, rawQuery string) {
		q, _ := url.ParseQuery(rawQuery)
		res, err := a.Webhook(context.Background(), acct, channels.WebhookRequest{Method: http.MethodGet, URL: "https://x/wa", Query: q})
		if err != nil {
			if c := errs.CodeOf(err); c != errs.Invalid && c != errs.Forbidden {
				t.Fatalf("error %v is %s", err, c)
			}
			return
		}
		if q.Get("hub.verify_token") != sampleVerifyToken || string(res.Reply.Body) != q.Get("hub.challenge") {
			t.Fatalf("answered %q to %q", res.Reply.Body, rawQuery)
		}
	})
}

// FuzzValidateCredentials reads any operator input: errors are Invalid
// and never quote the input's token.
func FuzzValidateCredentials(f *testing.F) {
	f.Add([]byte(`{"phone_number_id":"1","access_token":"tok","app_secret":"s","verify_token":"v"}`))
	f.Add([]byte(`{"phone_number_id":"1","access_token":"tok","app_secret":"s","verify_token":"v","api_version":"v1.2","base_url":"http://h:1"}`))
	f.Add([]byte(`{"phone_number_id":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		err := whatsapp.ValidateCredentials(raw)
		if err != nil && !errs.Is(err, errs.Invalid) {
			t.Fatalf("error %v is %s, want invalid", err, errs.CodeOf(err))
		}
		c, perr := whatsapp.ParseCredentials(raw)
		if err == nil && perr != nil {
			t.Fatalf("validated but does not parse: %v", perr)
		}
		if perr == nil && (c.APIVersion == "" || c.BaseURL == "" || c.PhoneNumberID == "") {
			t.Fatalf("parsed without defaults: %+v", c)
		}
		if err != nil && len(c.AccessToken) > 8 && strings.Contains(err.Error(), c.AccessToken) {
			t.Fatalf("error quotes the token: %v", err)
		}
	})
}
