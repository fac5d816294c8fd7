package wecomkf_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/wecomkf"
	"github.com/switchboard-acd/switchboard/channels/wecomkf/wecomkftest"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// adapterOnly is an adapter for webhook tests, which never fetch a token.
func adapterOnly(t testing.TB) *wecomkf.Adapter {
	return wecomkf.New(nil, wecomkf.Options{Logger: testLogger(t)})
}

func TestWebhookURLVerificationVector(t *testing.T) {
	b, _ := readWeComVectors(t)
	acct := channels.Account{ID: "a", Credentials: credsJSON(t, b.corpID, b.token, b.key, "wkx")}
	get := func(q url.Values) channels.WebhookRequest {
		return channels.WebhookRequest{Method: http.MethodGet, URL: hookURL + "?" + q.Encode(), Query: q}
	}
	q := url.Values{}
	for k, v := range b.query {
		q[k] = v
	}
	q.Set("echostr", b.echostr)
	res, err := adapterOnly(t).Webhook(context.Background(), acct, get(q))
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Reply.Body) != b.echoPlain || res.Reply.Status != 200 || res.Pull || len(res.Inbound) != 0 {
		t.Fatalf("reply %q (%d), pull %v; want %q", res.Reply.Body, res.Reply.Status, res.Pull, b.echoPlain)
	}

	// The same call read from the URL alone, with the echostr's "+"
	// unescaped (decoded as spaces by a form parser).
	raw := hookURL + "?msg_signature=" + q.Get("msg_signature") + "&timestamp=" + q.Get("timestamp") + "&nonce=" + q.Get("nonce") + "&echostr=" + b.echostr
	res, err = adapterOnly(t).Webhook(context.Background(), acct, channels.WebhookRequest{Method: http.MethodGet, URL: raw})
	if err != nil || string(res.Reply.Body) != b.echoPlain {
		t.Errorf("unescaped echostr: %q, %v", res.Reply.Body, err)
	}

	bad := url.Values{}
	for k, v := range q {
		bad[k] = v
	}
	bad.Set("msg_signature", strings.Repeat("0", 40))
	if _, err := adapterOnly(t).Webhook(context.Background(), acct, get(bad)); !errs.Is(err, errs.Unauthorized) {
		t.Errorf("bad signature: %v, want unauthorized", err)
	}
	other := acct
	other.Credentials = credsJSON(t, "wwother", b.token, b.key, "wkx")
	if _, err := adapterOnly(t).Webhook(context.Background(), other, get(q)); !errs.Is(err, errs.Unauthorized) {
		t.Errorf("echostr for another corp: %v, want unauthorized", err)
	}
	q.Del("echostr")
	if _, err := adapterOnly(t).Webhook(context.Background(), acct, get(q)); !errs.Is(err, errs.Invalid) {
		t.Errorf("no echostr: %v, want invalid", err)
	}
}

func TestWebhookOfficialPostVector(t *testing.T) {
	_, b2 := readWeComVectors(t)
	acct := channels.Account{ID: "a", Credentials: credsJSON(t, b2.corpID, b2.token, b2.key, "wkx")}
	req := channels.WebhookRequest{Method: http.MethodPost, URL: hookURL + "?" + b2.query.Encode(), Query: b2.query, Body: []byte(b2.body)}
	res, err := adapterOnly(t).Webhook(context.Background(), acct, req)
	if err != nil {
		t.Fatalf("official encrypted POST refused: %v", err)
	}
	// It is a WeCom app text message, not a customer-service doorbell:
	// acknowledged, nothing to pull.
	if res.Pull || string(res.Reply.Body) != "success" || res.Reply.Status != 200 {
		t.Errorf("got pull %v reply %q", res.Pull, res.Reply.Body)
	}
	req.Body = []byte(strings.Replace(b2.body, "RypEvHKD", "RypEvHKE", 1))
	if _, err := adapterOnly(t).Webhook(context.Background(), acct, req); !errs.Is(err, errs.Unauthorized) {
		t.Errorf("tampered ciphertext: %v, want unauthorized", err)
	}
}

func TestWebhookSampleDoorbell(t *testing.T) {
	plain := testenv.ChannelSample(t, "wecom_kf_callback_event.xml")
	cb, err := wecomkf.ParseCallback(plain)
	if err != nil {
		t.Fatal(err)
	}
	if cb.Event != "kf_msg_or_event" || cb.Token == "" || cb.OpenKfID == "" || cb.ToUserName == "" {
		t.Fatalf("sample parsed as %+v", cb)
	}
	fake := wecomkftest.NewServer() // for its generated token and key
	defer fake.Close()
	acct := channels.Account{ID: "a", Credentials: credsJSON(t, cb.ToUserName, fake.Token, fake.EncodingAESKey, cb.OpenKfID)}
	req := wecomkftest.EncryptedPost(t, fake.Token, fake.EncodingAESKey, cb.ToUserName, hookURL, plain)
	res, err := adapterOnly(t).Webhook(context.Background(), acct, req)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pull || res.PullToken != cb.Token || len(res.Inbound) != 0 || string(res.Reply.Body) != "success" {
		t.Errorf("got %+v, want a pull with token %q", res, cb.Token)
	}
}

func TestWebhookRefusalsAndIgnores(t *testing.T) {
	fake := wecomkftest.NewServer()
	defer fake.Close()
	acct := channels.Account{ID: "a", Credentials: fake.Credentials()}
	a := adapterOnly(t)
	ctx := context.Background()

	door, tok := fake.Doorbell(t, hookURL)
	res, err := a.Webhook(ctx, acct, door)
	if err != nil || !res.Pull || res.PullToken != tok {
		t.Fatalf("doorbell: %+v, %v", res, err)
	}

	for name, tc := range map[string]struct {
		req  func() channels.WebhookRequest
		code errs.Code
	}{
		"bad signature": {func() channels.WebhookRequest {
			r, _ := fake.Doorbell(t, hookURL)
			r.Query.Set("msg_signature", strings.Repeat("a", 40))
			return r
		}, errs.Unauthorized},
		"no signature": {func() channels.WebhookRequest {
			r, _ := fake.Doorbell(t, hookURL)
			r.Query.Del("msg_signature")
			return r
		}, errs.Unauthorized},
		"other corp": {func() channels.WebhookRequest {
			return wecomkftest.EncryptedPost(t, fake.Token, fake.EncodingAESKey, "wwintruder", hookURL, wecomkftest.CallbackXML("wwintruder", fake.OpenKfID, "x", start))
		}, errs.Unauthorized},
		"other token": {func() channels.WebhookRequest {
			return wecomkftest.EncryptedPost(t, "another", fake.EncodingAESKey, fake.CorpID, hookURL, wecomkftest.CallbackXML(fake.CorpID, fake.OpenKfID, "x", start))
		}, errs.Unauthorized},
		"not xml": {func() channels.WebhookRequest {
			r, _ := fake.Doorbell(t, hookURL)
			r.Body = []byte("{}")
			return r
		}, errs.Invalid},
		"no Encrypt": {func() channels.WebhookRequest {
			r, _ := fake.Doorbell(t, hookURL)
			r.Body = []byte("<xml><ToUserName>x</ToUserName></xml>")
			return r
		}, errs.Invalid},
		"plaintext not xml": {func() channels.WebhookRequest {
			return wecomkftest.EncryptedPost(t, fake.Token, fake.EncodingAESKey, fake.CorpID, hookURL, []byte("{not xml"))
		}, errs.Invalid},
		"huge": {func() channels.WebhookRequest {
			r, _ := fake.Doorbell(t, hookURL)
			r.Body = []byte(strings.Repeat("x", wecomkf.MaxCallbackBody+1))
			return r
		}, errs.TooLarge},
		"PUT": {func() channels.WebhookRequest {
			r, _ := fake.Doorbell(t, hookURL)
			r.Method = http.MethodPut
			return r
		}, errs.Invalid},
	} {
		if _, err := a.Webhook(ctx, acct, tc.req()); !errs.Is(err, tc.code) {
			t.Errorf("%s: %v (code %s), want %s", name, err, errs.CodeOf(err), tc.code)
		}
	}

	// Acknowledged without a pull: another customer-service account of
	// the app, and other callbacks of the app.
	for name, plain := range map[string][]byte{
		"other open_kfid": wecomkftest.CallbackXML(fake.CorpID, "wkanother", "tok", start),
		"other event":     []byte("<xml><ToUserName>" + fake.CorpID + "</ToUserName><MsgType>event</MsgType><Event>change_contact</Event></xml>"),
	} {
		res, err := a.Webhook(ctx, acct, wecomkftest.EncryptedPost(t, fake.Token, fake.EncodingAESKey, fake.CorpID, hookURL, plain))
		if err != nil || res.Pull || res.Reply.Status != 200 {
			t.Errorf("%s: %+v, %v; want an acknowledgement without pull", name, res, err)
		}
	}
	// A doorbell naming no account (older callbacks) pulls.
	plain := []byte("<xml><ToUserName>" + fake.CorpID + "</ToUserName><MsgType>event</MsgType><Event>kf_msg_or_event</Event><Token>T1</Token></xml>")
	if res, err := a.Webhook(ctx, acct, wecomkftest.EncryptedPost(t, fake.Token, fake.EncodingAESKey, fake.CorpID, hookURL, plain)); err != nil || !res.Pull || res.PullToken != "T1" {
		t.Errorf("doorbell without OpenKfId: %+v, %v", res, err)
	}

	verify := fake.VerifyRequest(t, hookURL, "echo-4711")
	if res, err := a.Webhook(ctx, acct, verify); err != nil || string(res.Reply.Body) != "echo-4711" {
		t.Errorf("verification through the fake: %q, %v", res.Reply.Body, err)
	}

	broken := acct
	broken.Credentials = []byte(`{"corp_id":"x"}`)
	if _, err := a.Webhook(ctx, broken, door); !errs.Is(err, errs.Internal) {
		t.Errorf("broken credentials: %v, want internal", err)
	}
}
