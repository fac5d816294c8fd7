package sms_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/sms"
	"github.com/switchboard-acd/switchboard/channels/sms/smstest"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const hookURL = "https://sb.example.com/api/v1/hooks/sms/acct-key?x=1"

func newAdapter(t testing.TB) *sms.Adapter {
	return sms.New(sms.Options{Clock: clock.NewFake(testNow), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

func account(t testing.TB, sid, token string) channels.Account {
	t.Helper()
	creds, err := json.Marshal(sms.Credentials{AccountSID: sid, AuthToken: token, From: "+15005550006"})
	if err != nil {
		t.Fatal(err)
	}
	return channels.Account{TenantID: "t1", ID: "a-sms", Type: channels.SMS, Credentials: creds}
}

// signedSample builds a webhook call whose body is the sample file's bytes
// as the provider sent them, signed over the parsed parameters.
func signedSample(t testing.TB, token, rawURL string, body []byte) channels.WebhookRequest {
	t.Helper()
	body = bytes.TrimSpace(body)
	form, err := url.ParseQuery(string(body))
	if err != nil {
		t.Fatal(err)
	}
	return channels.WebhookRequest{
		Method: http.MethodPost,
		URL:    rawURL,
		Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, sms.SignatureHeader: {sms.Signature(token, rawURL, form)}},
		Body:   body,
	}
}

// vector is one entry of twilio_signature_vectors.txt.
type vector struct {
	token, url, sig, wire string
	params                url.Values
}

func readVectors(t *testing.T) []vector {
	t.Helper()
	var out []vector
	var cur *vector
	sc := bufio.NewScanner(bytes.NewReader(testenv.ChannelSample(t, "twilio_signature_vectors.txt")))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			out = append(out, vector{params: url.Values{}})
			cur = &out[len(out)-1]
			continue
		}
		if cur == nil {
			continue
		}
		if w, ok := strings.CutPrefix(line, "# Form body as sent on the wire (one valid encoding): "); ok {
			cur.wire = w
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "auth_token":
			cur.token = v
		case "url":
			cur.url = v
		case "X-Twilio-Signature":
			cur.sig = v
		case "params":
			for _, p := range strings.Split(v, ", ") {
				pk, pv, _ := strings.Cut(p, "=")
				cur.params.Add(pk, pv)
			}
		}
	}
	var full []vector
	for _, v := range out {
		if v.sig != "" && v.url != "" {
			full = append(full, v)
		}
	}
	if len(full) == 0 {
		t.Fatal("no signature vector in twilio_signature_vectors.txt")
	}
	return full
}

func TestSignatureVectors(t *testing.T) {
	for _, v := range readVectors(t) {
		if got := sms.Signature(v.token, v.url, v.params); got != v.sig {
			t.Errorf("Signature(%s) = %s, want %s", v.url, got, v.sig)
		}
		if !sms.ValidSignature(v.token, v.url, v.params, v.sig) {
			t.Errorf("ValidSignature refused the vector for %s", v.url)
		}
		// The provider sometimes signs with the default port, sometimes
		// without: both forms of the URL must verify.
		withPort := strings.Replace(v.url, "https://mycompany.com/", "https://mycompany.com:443/", 1)
		if !sms.ValidSignature(v.token, withPort, v.params, v.sig) {
			t.Errorf("ValidSignature refused %s", withPort)
		}
		for name, bad := range map[string]func() bool{
			"other token": func() bool { return sms.ValidSignature(v.token+"x", v.url, v.params, v.sig) },
			"other url":   func() bool { return sms.ValidSignature(v.token, v.url+"&baz=3", v.params, v.sig) },
			"other port": func() bool {
				return sms.ValidSignature(v.token, strings.Replace(v.url, ".com/", ".com:8443/", 1), v.params, v.sig)
			},
			"no param": func() bool {
				p := url.Values{}
				for k, vs := range v.params {
					if k != "Digits" {
						p[k] = vs
					}
				}
				return sms.ValidSignature(v.token, v.url, p, v.sig)
			},
			"empty sig": func() bool { return sms.ValidSignature(v.token, v.url, v.params, "") },
		} {
			if bad() {
				t.Errorf("%s: ValidSignature accepted", name)
			}
		}
		if v.wire == "" {
			continue
		}
		// Through the webhook: the wire body verifies (the call is a voice
		// call, so it is then refused as malformed, not unauthorised).
		acct := account(t, "AC1234", v.token)
		req := channels.WebhookRequest{Method: http.MethodPost, URL: v.url, Body: []byte(v.wire),
			Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, sms.SignatureHeader: {v.sig}}}
		if _, err := newAdapter(t).Webhook(context.Background(), acct, req); !errs.Is(err, errs.Invalid) {
			t.Errorf("webhook with the vector's wire body: %v, want invalid (signature accepted, no MessageSid)", err)
		}
		req.Body = []byte(strings.Replace(v.wire, "Digits=1234", "Digits=1235", 1))
		if _, err := newAdapter(t).Webhook(context.Background(), acct, req); !errs.Is(err, errs.Unauthorized) {
			t.Errorf("webhook with a tampered body: %v, want unauthorized", err)
		}
	}
}

func TestRepeatedParamsEitherOrder(t *testing.T) {
	p := url.Values{"MediaUrl": {"https://b.example/2", "https://a.example/1"}, "To": {"+1"}}
	sorted := sms.Signature("tok", hookURL, p)
	if !sms.ValidSignature("tok", hookURL, p, sorted) {
		t.Fatal("sorted-values signature refused")
	}
	// Values in received order (b then a), computed by hand.
	inOrder := sms.Signature("tok", hookURL+"MediaUrlhttps://b.example/2MediaUrlhttps://a.example/1To+1", nil)
	if inOrder == sorted {
		t.Fatal("test is vacuous: both orders sign alike")
	}
	if !sms.ValidSignature("tok", hookURL, p, inOrder) {
		t.Error("received-order signature refused")
	}
}

func TestWebhookInboundSample(t *testing.T) {
	const token = "test-token"
	body := testenv.ChannelSample(t, "twilio_sms_inbound.form")
	acct := account(t, "AC58f1e8f2b1c6b88ca90a012a4be0c279", token)
	res, err := newAdapter(t).Webhook(context.Background(), acct, signedSample(t, token, hookURL, body))
	if err != nil {
		t.Fatal(err)
	}
	want := channels.WebhookResult{
		Inbound: []channels.Inbound{{
			AccountID: "a-sms", ExternalID: "+19253920364", Phone: "+19253920364",
			ChannelMsgID: "SM1521fa559fb923c1ed64f56cd1bed8ef", Type: channels.MsgText,
			Text: "twilio-go testing!", ReceivedAt: testNow,
		}},
		Reply: channels.WebhookReply{Status: 200, ContentType: "text/xml", Body: []byte(`<?xml version="1.0" encoding="UTF-8"?><Response/>`)},
	}
	if diff := cmp.Diff(want, res, cmpopts.IgnoreFields(channels.Inbound{}, "Raw")); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	var raw map[string]any
	if err := json.Unmarshal(res.Inbound[0].Raw, &raw); err != nil {
		t.Fatalf("raw: %v", err)
	}
	if raw["FromCity"] != "BRENTWOOD" || raw["NumSegments"] != "1" {
		t.Errorf("raw lost parameters: %v", raw)
	}
}

func TestWebhookStatusSample(t *testing.T) {
	const token = "test-token"
	body := testenv.ChannelSample(t, "twilio_sms_status_callback.form")
	acct := account(t, "AC7ef44158dbb01b972d64d7e5c851c8d7", token)
	res, err := newAdapter(t).Webhook(context.Background(), acct, signedSample(t, token, hookURL, body))
	if err != nil {
		t.Fatal(err)
	}
	want := []channels.StatusUpdate{{AccountID: "a-sms", ChannelMsgID: "SM7ac25b8b7f04410093ff54e1fd2b4256", ExternalID: "+13177933221", Status: channels.StatusSent, At: testNow}}
	if diff := cmp.Diff(want, res.Statuses); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if len(res.Inbound) != 0 || res.Reply.Status != 200 {
		t.Errorf("status callback gave inbound %v, reply %d", res.Inbound, res.Reply.Status)
	}
}

func TestWebhookStatuses(t *testing.T) {
	const sid, token = "ACstatus", "tok"
	acct := account(t, sid, token)
	type want struct {
		status    string // "" for no update
		code      string
		retryable bool
	}
	for _, tc := range []struct {
		status, code string
		want         want
	}{
		{"queued", "", want{}},
		{"accepted", "", want{}},
		{"sending", "", want{}},
		{"scheduled", "", want{}},
		{"partially_delivered", "", want{}},
		{"sent", "", want{status: channels.StatusSent}},
		{"delivered", "", want{status: channels.StatusDelivered}},
		{"read", "", want{status: channels.StatusRead}},
		{"undelivered", "30003", want{channels.StatusFailed, "30003", true}},
		{"undelivered", "30005", want{channels.StatusFailed, "30005", false}},
		{"undelivered", "30006", want{channels.StatusFailed, "30006", false}},
		{"undelivered", "30007", want{channels.StatusFailed, "30007", false}},
		{"failed", "30001", want{channels.StatusFailed, "30001", true}},
		{"failed", "30008", want{channels.StatusFailed, "30008", true}},
		{"failed", "21610", want{channels.StatusFailed, "21610", false}},
		{"failed", "99999", want{channels.StatusFailed, "99999", false}},
		{"failed", "", want{channels.StatusFailed, "", false}},
		{"canceled", "", want{channels.StatusFailed, "canceled", false}},
	} {
		form := smstest.StatusForm(sid, "SMabc", "+14155550100", tc.status, tc.code)
		res, err := newAdapter(t).Webhook(context.Background(), acct, smstest.SignedRequest(token, hookURL, form))
		if err != nil {
			t.Errorf("%s/%s: %v", tc.status, tc.code, err)
			continue
		}
		if tc.want.status == "" {
			if len(res.Statuses)+len(res.Inbound) != 0 {
				t.Errorf("%s: got %+v, want nothing", tc.status, res)
			}
			continue
		}
		if len(res.Statuses) != 1 {
			t.Errorf("%s/%s: %d statuses", tc.status, tc.code, len(res.Statuses))
			continue
		}
		su := res.Statuses[0]
		got := want{su.Status, su.Code, su.Retryable}
		if got != tc.want {
			t.Errorf("%s/%s: got %+v, want %+v", tc.status, tc.code, got, tc.want)
		}
		if su.Status == channels.StatusFailed && su.Error == "" {
			t.Errorf("%s/%s: failure without an error text", tc.status, tc.code)
		}
		if su.ChannelMsgID != "SMabc" || su.ExternalID != "+14155550100" {
			t.Errorf("%s: ids %q %q", tc.status, su.ChannelMsgID, su.ExternalID)
		}
	}
}

func TestWebhookMMS(t *testing.T) {
	const sid, token = "ACmms", "tok"
	form := smstest.WithMedia(smstest.InboundForm(sid, "+447700900123", "+15005550006", "look", "MM1"),
		[2]string{"https://api.twilio.com/media/1", "image/jpeg"},
		[2]string{"https://api.twilio.com/media/2", "application/pdf"})
	res, err := newAdapter(t).Webhook(context.Background(), account(t, sid, token), smstest.SignedRequest(token, hookURL, form))
	if err != nil {
		t.Fatal(err)
	}
	in := res.Inbound[0]
	if in.Type != channels.MsgImage || in.Media == nil || in.Media.URL != "https://api.twilio.com/media/1" || in.Media.MIMEType != "image/jpeg" || in.Media.Caption != "look" {
		t.Errorf("first attachment: type %s media %+v", in.Type, in.Media)
	}
	if !strings.HasPrefix(in.Text, "look\n") || !strings.Contains(in.Text, "https://api.twilio.com/media/2") || !strings.Contains(in.Text, "application/pdf") {
		t.Errorf("text does not mention the second attachment: %q", in.Text)
	}
	if in.ChannelMsgID != "MM1" || in.Phone != "+447700900123" {
		t.Errorf("ids: %q %q", in.ChannelMsgID, in.Phone)
	}

	for ct, typ := range map[string]string{"audio/amr": channels.MsgAudio, "video/mp4": channels.MsgVideo, "text/vcard": channels.MsgDocument} {
		form := smstest.WithMedia(smstest.InboundForm(sid, "+447700900123", "+15005550006", "", ""), [2]string{"https://m.example/x", ct})
		res, err := newAdapter(t).Webhook(context.Background(), account(t, sid, token), smstest.SignedRequest(token, hookURL, form))
		if err != nil || res.Inbound[0].Type != typ || res.Inbound[0].Text != "" {
			t.Errorf("%s: %+v, %v; want type %s", ct, res.Inbound, err, typ)
		}
	}
}

func TestWebhookGET(t *testing.T) {
	const sid, token = "ACget", "tok"
	form := smstest.InboundForm(sid, "+14155550100", "+15005550006", "hi by GET", "SMget")
	u := "https://sb.example.com/hooks/sms?" + form.Encode()
	req := channels.WebhookRequest{Method: http.MethodGet, URL: u, Header: http.Header{sms.SignatureHeader: {sms.Signature(token, u, nil)}}}
	res, err := newAdapter(t).Webhook(context.Background(), account(t, sid, token), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Inbound) != 1 || res.Inbound[0].Text != "hi by GET" || res.Inbound[0].ChannelMsgID != "SMget" {
		t.Errorf("GET inbound: %+v", res.Inbound)
	}
}

func TestWebhookRefusals(t *testing.T) {
	const sid, token = "ACref", "tok"
	acct := account(t, sid, token)
	good := smstest.InboundForm(sid, "+14155550100", "+15005550006", "hello", "SM1")
	signed := func(f url.Values) channels.WebhookRequest { return smstest.SignedRequest(token, hookURL, f) }
	without := func(k string) url.Values {
		f := url.Values{}
		for key, vs := range good {
			if key != k && !(k == "MessageSid" && (key == "SmsSid" || key == "SmsMessageSid")) {
				f[key] = vs
			}
		}
		return f
	}
	for _, tc := range []struct {
		name string
		req  func() channels.WebhookRequest
		code errs.Code
	}{
		{"no signature", func() channels.WebhookRequest { r := signed(good); r.Header.Del(sms.SignatureHeader); return r }, errs.Unauthorized},
		{"wrong token", func() channels.WebhookRequest { return smstest.SignedRequest("other", hookURL, good) }, errs.Unauthorized},
		{"signed for another URL", func() channels.WebhookRequest {
			r := smstest.SignedRequest(token, "https://evil.example/hook", good)
			r.URL = hookURL
			return r
		}, errs.Unauthorized},
		{"tampered body", func() channels.WebhookRequest {
			r := signed(good)
			r.Body = bytes.Replace(r.Body, []byte("hello"), []byte("hellO"), 1)
			return r
		}, errs.Unauthorized},
		{"no URL", func() channels.WebhookRequest { r := signed(good); r.URL = ""; return r }, errs.Unauthorized},
		{"other provider account", func() channels.WebhookRequest {
			f := smstest.InboundForm("ACother", "+14155550100", "+15005550006", "hello", "SM1")
			return signed(f)
		}, errs.Unauthorized},
		{"not a form", func() channels.WebhookRequest {
			r := signed(good)
			r.Body = []byte("Body=%zz")
			return r
		}, errs.Invalid},
		{"json body", func() channels.WebhookRequest {
			r := signed(good)
			r.Header.Set("Content-Type", "application/json")
			return r
		}, errs.Invalid},
		{"no From", func() channels.WebhookRequest { return signed(without("From")) }, errs.Invalid},
		{"no MessageSid", func() channels.WebhookRequest { return signed(without("MessageSid")) }, errs.Invalid},
		{"bad NumMedia", func() channels.WebhookRequest { f := without(""); f.Set("NumMedia", "x"); return signed(f) }, errs.Invalid},
		{"status without sid", func() channels.WebhookRequest {
			f := smstest.StatusForm(sid, "", "+1", "delivered", "")
			f.Del("MessageSid")
			f.Del("SmsSid")
			return signed(f)
		}, errs.Invalid},
		{"PUT", func() channels.WebhookRequest { r := signed(good); r.Method = http.MethodPut; return r }, errs.Invalid},
		{"huge", func() channels.WebhookRequest {
			f := without("")
			f.Set("Body", strings.Repeat("x", sms.MaxWebhookBody))
			return signed(f)
		}, errs.TooLarge},
	} {
		_, err := newAdapter(t).Webhook(context.Background(), acct, tc.req())
		if !errs.Is(err, tc.code) {
			t.Errorf("%s: error %v (code %s), want %s", tc.name, err, errs.CodeOf(err), tc.code)
		}
	}

	bad := acct
	bad.Credentials = json.RawMessage(`{"account_sid":""}`)
	if _, err := newAdapter(t).Webhook(context.Background(), bad, signed(good)); !errs.Is(err, errs.Internal) {
		t.Errorf("broken account credentials: %v, want internal (so the provider retries)", err)
	}
}
