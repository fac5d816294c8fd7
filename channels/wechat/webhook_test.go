package wechat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/wechat"
	"github.com/switchboard-acd/switchboard/channels/wechat/wechattest"
	"github.com/switchboard-acd/switchboard/channels/wxcrypt"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// The account the XML samples are pushed to in these tests: the key and
// app id of official vector A, a token of our own.
const (
	testToken  = "pamtest"
	testAESKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	testAppID  = "wxb11529c136998cb6"
)

var now = time.Date(2024, 4, 18, 9, 0, 0, 0, time.UTC)

func account(t testing.TB, token, key, appID string) channels.Account {
	t.Helper()
	creds, err := json.Marshal(wechat.Credentials{AppID: appID, AppSecret: "secret", Token: token, EncodingAESKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return channels.Account{TenantID: "t1", ID: "acct-wx", Type: channels.WeChatOA, Credentials: creds}
}

func webhookAdapter(at time.Time) *wechat.Adapter {
	return wechat.New(nil, wechat.Options{Clock: clock.NewFake(at)})
}

func at(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

var success = channels.WebhookReply{Status: http.StatusOK, ContentType: "text/plain; charset=utf-8", Body: []byte("success")}

func TestVerifyURL(t *testing.T) {
	// Official vector A: token pamtest, timestamp 1409304348, nonce xxxxxx.
	v := wechattest.Vectors(t)["A1"]
	a := webhookAdapter(at(1409304348))
	acct := account(t, v.Token, "", v.ReceiverID)
	get := func(sig, ts, nonce, echostr string) (channels.WebhookResult, error) {
		q := url.Values{"signature": {sig}, "timestamp": {ts}, "nonce": {nonce}, "echostr": {echostr}}
		return a.Webhook(context.Background(), acct, channels.WebhookRequest{Method: http.MethodGet, Query: q})
	}
	res, err := get("76480565cbe296026c53aaacd1ad523a1ddba24f", v.Timestamp, v.Nonce, "5837397520683834467")
	if err != nil {
		t.Fatal(err)
	}
	want := channels.WebhookResult{Reply: channels.WebhookReply{Status: 200, ContentType: "text/plain; charset=utf-8", Body: []byte("5837397520683834467")}}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Fatalf("reply (-want +got):\n%s", diff)
	}
	for name, tc := range map[string][4]string{
		"wrong signature":   {"76480565cbe296026c53aaacd1ad523a1ddba24e", v.Timestamp, v.Nonce, "1"},
		"no signature":      {"", v.Timestamp, v.Nonce, "1"},
		"other nonce":       {"76480565cbe296026c53aaacd1ad523a1ddba24f", v.Timestamp, "yyyyyy", "1"},
		"no timestamp":      {"76480565cbe296026c53aaacd1ad523a1ddba24f", "", v.Nonce, "1"},
		"stale (signed ok)": {wxcrypt.Signature(v.Token, "1409300000", v.Nonce), "1409300000", v.Nonce, "1"},
	} {
		if _, err := get(tc[0], tc[1], tc[2], tc[3]); !errs.Is(err, errs.Unauthorized) {
			t.Errorf("%s: %v, want unauthorized", name, err)
		}
	}
}

func TestStaleCheckCanBeTurnedOff(t *testing.T) {
	p := wechattest.NewPusher(t, testToken, testAppID, testAESKey)
	acct := account(t, testToken, testAESKey, testAppID)
	old := now.Add(-time.Hour)
	body := wechattest.Text("o1", "gh_1", old, 1, "hi")
	if _, err := webhookAdapter(now).Webhook(context.Background(), acct, p.Plain(old, body)); !errs.Is(err, errs.Unauthorized) {
		t.Fatalf("hour-old push: %v, want unauthorized", err)
	}
	a := wechat.New(nil, wechat.Options{Clock: clock.NewFake(now), MaxSkew: -1})
	if _, err := a.Webhook(context.Background(), acct, p.Plain(old, body)); err != nil {
		t.Fatalf("with the check off: %v", err)
	}
	future := now.Add(6 * time.Minute)
	if _, err := webhookAdapter(now).Webhook(context.Background(), acct, p.Plain(future, body)); !errs.Is(err, errs.Unauthorized) {
		t.Fatalf("push from the future: %v", err)
	}
}

// sampleInbound is what each XML sample must become.
func sampleInbound() map[string]channels.Inbound {
	base := func(from string, created int64, typ string) channels.Inbound {
		return channels.Inbound{AccountID: "acct-wx", ExternalID: from, Type: typ, ReceivedAt: at(created)}
	}
	with := func(in channels.Inbound, f func(*channels.Inbound)) channels.Inbound { f(&in); return in }
	return map[string]channels.Inbound{
		"wechat_text.xml": with(base("fromUser", 1348831860, channels.MsgText), func(in *channels.Inbound) {
			in.Text, in.ChannelMsgID = "this is a test", "1234567890123456"
		}),
		"wechat_image.xml": with(base("fromUser", 1348831860, channels.MsgImage), func(in *channels.Inbound) {
			in.Media, in.ChannelMsgID = &channels.Media{ID: "media_id", URL: "this is a url"}, "1234567890123456"
		}),
		"wechat_voice.xml": with(base("fromUser", 1357290913, channels.MsgAudio), func(in *channels.Inbound) {
			in.Media, in.ChannelMsgID = &channels.Media{ID: "media_id", Voice: true}, "1234567890123456"
		}),
		"wechat_voice_recognition.xml": with(base("fromUser", 1357290913, channels.MsgAudio), func(in *channels.Inbound) {
			in.Text, in.ChannelMsgID = "腾讯微信团队", "1234567890123456"
			in.Media = &channels.Media{ID: "media_id", Voice: true, Recognition: "腾讯微信团队"}
		}),
		"wechat_event_subscribe.xml": with(base("FromUser", 123456789, channels.MsgEvent), func(in *channels.Inbound) {
			in.Event, in.ChannelMsgID = &channels.Event{Kind: channels.EventSubscribe}, "event:FromUser:123456789:subscribe:"
		}),
		"wechat_event_subscribe_qrscene.xml": with(base("FromUser", 123456789, channels.MsgEvent), func(in *channels.Inbound) {
			in.Event = &channels.Event{Kind: channels.EventSubscribe, Scene: "123123", Ticket: "TICKET"}
			in.ChannelMsgID = "event:FromUser:123456789:subscribe:qrscene_123123"
		}),
		"wechat_event_unsubscribe.xml": with(base("FromUser", 123456789, channels.MsgEvent), func(in *channels.Inbound) {
			in.Event, in.ChannelMsgID = &channels.Event{Kind: channels.EventUnsubscribe}, "event:FromUser:123456789:unsubscribe:"
		}),
		"wechat_event_scan.xml": with(base("FromUser", 123456789, channels.MsgEvent), func(in *channels.Inbound) {
			in.Event = &channels.Event{Kind: channels.EventScan, Scene: "SCENE_VALUE", Ticket: "TICKET"}
			in.ChannelMsgID = "event:FromUser:123456789:SCAN:SCENE_VALUE"
		}),
		"wechat_event_click.xml": with(base("FromUser", 123456789, channels.MsgEvent), func(in *channels.Inbound) {
			in.Event, in.ChannelMsgID = &channels.Event{Kind: channels.EventClick, Key: "EVENTKEY"}, "event:FromUser:123456789:CLICK:EVENTKEY"
		}),
		"wechat_event_view.xml": with(base("FromUser", 123456789, channels.MsgEvent), func(in *channels.Inbound) {
			in.Event, in.ChannelMsgID = &channels.Event{Kind: channels.EventView, Key: "www.qq.com"}, "event:FromUser:123456789:VIEW:www.qq.com"
		}),
		"wechat_event_location.xml": with(base("fromUser", 123456789, channels.MsgEvent), func(in *channels.Inbound) {
			in.Event = &channels.Event{Kind: channels.EventLocation,
				Location: &channels.Location{Latitude: 23.137466, Longitude: 113.352425, Precision: 119.385040}}
			in.ChannelMsgID = "event:fromUser:123456789:LOCATION:"
		}),
	}
}

// pushModes are the three ways a sample reaches the webhook.
var pushModes = []string{"plain", "compat", "safe"}

func push(p *wechattest.Pusher, mode string, t time.Time, body []byte) channels.WebhookRequest {
	switch mode {
	case "compat":
		return p.Compat(t, body)
	case "safe":
		return p.Safe(t, body)
	}
	return p.Plain(t, body)
}

func TestWebhookSamples(t *testing.T) {
	want := sampleInbound()
	// Every inbound XML sample is covered.
	files, _ := filepath.Glob(filepath.Join(testenv.ChannelSamples(t), "wechat_*.xml"))
	for _, f := range files {
		name := filepath.Base(f)
		if _, ok := want[name]; !ok && !strings.HasPrefix(name, "wechat_reply_") {
			t.Errorf("sample %s has no expectation", name)
		}
	}
	a := webhookAdapter(now)
	acct := account(t, testToken, testAESKey, testAppID)
	p := wechattest.NewPusher(t, testToken, testAppID, testAESKey)
	for name, w := range want {
		body := testenv.ChannelSample(t, name)
		for _, mode := range pushModes {
			t.Run(name+"/"+mode, func(t *testing.T) {
				res, err := a.Webhook(context.Background(), acct, push(p, mode, now, body))
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(success, res.Reply); diff != "" {
					t.Fatalf("reply (-want +got):\n%s", diff)
				}
				if len(res.Inbound) != 1 || len(res.Statuses) != 0 {
					t.Fatalf("got %d inbound, %d statuses", len(res.Inbound), len(res.Statuses))
				}
				got := res.Inbound[0]
				if diff := cmp.Diff(w, got, cmpopts.IgnoreFields(channels.Inbound{}, "Raw")); diff != "" {
					t.Fatalf("inbound (-want +got):\n%s", diff)
				}
				var raw map[string]string
				if err := json.Unmarshal(got.Raw, &raw); err != nil || raw["FromUserName"] != w.ExternalID || raw["MsgType"] == "" {
					t.Fatalf("raw %s (%v)", got.Raw, err)
				}
			})
		}
	}
}

func TestWebhookMessageKinds(t *testing.T) {
	a := webhookAdapter(now)
	acct := account(t, testToken, "", testAppID)
	p := wechattest.NewPusher(t, testToken, testAppID, "")
	x := func(inner string) []byte {
		return []byte("<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>" +
			"<CreateTime>1713430800</CreateTime>" + inner + "</xml>")
	}
	base := channels.Inbound{AccountID: "acct-wx", ExternalID: "o1", ReceivedAt: at(1713430800), ChannelMsgID: "42"}
	with := func(f func(*channels.Inbound)) channels.Inbound { in := base; f(&in); return in }
	tests := []struct {
		name string
		body []byte
		want channels.Inbound
	}{
		{"video", x("<MsgType><![CDATA[video]]></MsgType><MediaId><![CDATA[m1]]></MediaId><ThumbMediaId><![CDATA[t1]]></ThumbMediaId><MsgId>42</MsgId>"),
			with(func(in *channels.Inbound) { in.Type, in.Media = channels.MsgVideo, &channels.Media{ID: "m1"} })},
		{"shortvideo", x("<MsgType><![CDATA[shortvideo]]></MsgType><MediaId><![CDATA[m2]]></MediaId><MsgId>42</MsgId>"),
			with(func(in *channels.Inbound) { in.Type, in.Media = channels.MsgVideo, &channels.Media{ID: "m2"} })},
		{"voice amr", x("<MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[m3]]></MediaId><Format><![CDATA[amr]]></Format><MsgId>42</MsgId>"),
			with(func(in *channels.Inbound) {
				in.Type, in.Media = channels.MsgAudio, &channels.Media{ID: "m3", MIMEType: "audio/amr", Voice: true}
			})},
		{"location", x("<MsgType><![CDATA[location]]></MsgType><Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y>" +
			"<Scale>20</Scale><Label><![CDATA[位置信息]]></Label><MsgId>42</MsgId>"),
			with(func(in *channels.Inbound) {
				in.Type, in.Text = channels.MsgLocation, "位置信息"
				in.Location = &channels.Location{Latitude: 23.134521, Longitude: 113.358803, Scale: 20, Name: "位置信息"}
			})},
		{"link", x("<MsgType><![CDATA[link]]></MsgType><Title><![CDATA[公众平台官网链接]]></Title>" +
			"<Description><![CDATA[公众平台官网链接]]></Description><Url><![CDATA[url]]></Url><MsgId>42</MsgId>"),
			with(func(in *channels.Inbound) {
				in.Type, in.Text = channels.MsgText, "公众平台官网链接\n公众平台官网链接\nurl"
			})},
		{"menu tap", wechattest.MenuTap("o1", "gh_1", at(1713430800), 42, "满意", "101"),
			with(func(in *channels.Inbound) {
				in.Type, in.Text, in.Choice = channels.MsgInteractive, "满意", &channels.Choice{ID: "101", Title: "满意"}
			})},
		{"mini program", x("<MsgType><![CDATA[miniprogrampage]]></MsgType><Title><![CDATA[t]]></Title><MsgId>42</MsgId>"),
			with(func(in *channels.Inbound) { in.Type, in.Text = channels.MsgUnsupported, "t" })},
		{"unionid", x("<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><UnionId><![CDATA[u1]]></UnionId><MsgId>42</MsgId>"),
			with(func(in *channels.Inbound) { in.Type, in.Text, in.UnionID = channels.MsgText, "hi", "u1" })},
		{"other event", wechattest.Event("o1", "gh_1", at(1713430800), "scancode_push", "k1"),
			with(func(in *channels.Inbound) {
				in.Type, in.ChannelMsgID = channels.MsgEvent, "event:o1:1713430800:scancode_push:k1"
				in.Event = &channels.Event{Kind: channels.EventOther, Name: "scancode_push", Key: "k1"}
			})},
		{"long view url", wechattest.Event("o1", "gh_1", at(1713430800), "VIEW", "https://example.com/"+strings.Repeat("a", 100)),
			with(func(in *channels.Inbound) {
				in.Type, in.ChannelMsgID = channels.MsgEvent, "event:o1:1713430800:VIEW:sha1:"
				in.Event = &channels.Event{Kind: channels.EventView, Key: "https://example.com/" + strings.Repeat("a", 100)}
			})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := a.Webhook(context.Background(), acct, p.Plain(now, tc.body))
			if err != nil {
				t.Fatal(err)
			}
			got := res.Inbound[0]
			opts := []cmp.Option{cmpopts.IgnoreFields(channels.Inbound{}, "Raw")}
			if strings.HasSuffix(tc.want.ChannelMsgID, "sha1:") {
				if !strings.HasPrefix(got.ChannelMsgID, tc.want.ChannelMsgID) || len(got.ChannelMsgID) != len(tc.want.ChannelMsgID)+20 {
					t.Fatalf("hashed id %q", got.ChannelMsgID)
				}
				opts = append(opts, cmpopts.IgnoreFields(channels.Inbound{}, "ChannelMsgID"))
			}
			if diff := cmp.Diff(tc.want, got, opts...); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestEventIDsDedupe(t *testing.T) {
	a := webhookAdapter(now)
	acct := account(t, testToken, "", testAppID)
	p := wechattest.NewPusher(t, testToken, testAppID, "")
	id := func(body []byte) string {
		t.Helper()
		res, err := a.Webhook(context.Background(), acct, p.Plain(now, body))
		if err != nil {
			t.Fatal(err)
		}
		return res.Inbound[0].ChannelMsgID
	}
	click := wechattest.Event("o1", "gh", now, "CLICK", "k1")
	// A retry of the push (new nonce, same content) has the same id.
	if a, b := id(click), id(click); a != b {
		t.Fatalf("retry ids differ: %q %q", a, b)
	}
	distinct := map[string]bool{}
	for _, body := range [][]byte{
		click,
		wechattest.Event("o1", "gh", now, "CLICK", "k2"),
		wechattest.Event("o1", "gh", now.Add(time.Second), "CLICK", "k1"),
		wechattest.Event("o2", "gh", now, "CLICK", "k1"),
		wechattest.Event("o1", "gh", now, "VIEW", "k1"),
	} {
		distinct[id(body)] = true
	}
	if len(distinct) != 5 {
		t.Fatalf("distinct events share ids: %v", distinct)
	}
}

func TestTemplateReport(t *testing.T) {
	a := webhookAdapter(now)
	acct := account(t, testToken, "", testAppID)
	p := wechattest.NewPusher(t, testToken, testAppID, "")
	for status, want := range map[string]channels.StatusUpdate{
		"success":               {Status: channels.StatusDelivered},
		"failed:user block":     {Status: channels.StatusFailed, Code: "user_block", Error: "the customer blocked the account's template messages"},
		"failed: system failed": {Status: channels.StatusFailed, Code: "system_failed", Error: "failed: system failed", Retryable: true},
	} {
		res, err := a.Webhook(context.Background(), acct, p.Plain(now, wechattest.TemplateReport("o1", "gh", now, "200163836", status)))
		if err != nil {
			t.Fatal(err)
		}
		want.AccountID, want.ChannelMsgID, want.ExternalID, want.At = "acct-wx", "200163836", "o1", now
		if len(res.Inbound) != 0 || len(res.Statuses) != 1 {
			t.Fatalf("%s: %d inbound, %d statuses", status, len(res.Inbound), len(res.Statuses))
		}
		if diff := cmp.Diff(want, res.Statuses[0]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", status, diff)
		}
	}
}

// The official vectors C (compatible mode) and D (safe mode) through the
// webhook, with their own query signatures.
func TestWebhookOfficialVectors(t *testing.T) {
	vs := wechattest.Vectors(t)
	for _, name := range []string{"C", "D"} {
		v := vs[name]
		t.Run(name, func(t *testing.T) {
			body := v.Body
			if body == nil { // D: the sample's envelope
				body = []byte("<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><Encrypt>" + wechattest.CDATA(v.Encrypt) + "</Encrypt></xml>")
			}
			q := url.Values{"signature": {wxcrypt.Signature(v.Token, v.Timestamp, v.Nonce)}, "timestamp": {v.Timestamp}, "nonce": {v.Nonce},
				"encrypt_type": {"aes"}, "msg_signature": {v.MsgSignature}}
			req := channels.WebhookRequest{Method: http.MethodPost, Query: q, Body: body}
			a := webhookAdapter(at(0).Add(time.Duration(mustInt(t, v.Timestamp)) * time.Second))
			res, err := a.Webhook(context.Background(), account(t, v.Token, v.EncodingAESKey, v.ReceiverID), req)
			if err != nil {
				t.Fatal(err)
			}
			in := res.Inbound[0]
			if in.Type != channels.MsgText || in.Text != "abcdteT" || in.ExternalID != "oyORnuP8q7ou2gfYjqLzSIWZf0rs" || in.ChannelMsgID == "" {
				t.Fatalf("inbound %+v", in)
			}
			if !strings.Contains(string(v.Plain), "<MsgId>"+in.ChannelMsgID+"</MsgId>") {
				t.Fatalf("msg id %s not the vector's", in.ChannelMsgID)
			}

			// Another app id with the same token and key: refused.
			if _, err := a.Webhook(context.Background(), account(t, v.Token, v.EncodingAESKey, "wx0000000000000000"), req); !errs.Is(err, errs.Unauthorized) {
				t.Fatalf("wrong app id: %v", err)
			}
			// A changed msg_signature: refused, even though the plain
			// signature is right.
			bad := url.Values{}
			for k, vv := range q {
				bad[k] = vv
			}
			bad.Set("msg_signature", strings.Repeat("0", 40))
			if _, err := a.Webhook(context.Background(), account(t, v.Token, v.EncodingAESKey, v.ReceiverID),
				channels.WebhookRequest{Method: http.MethodPost, Query: bad, Body: body}); !errs.Is(err, errs.Unauthorized) {
				t.Fatalf("wrong msg_signature: %v", err)
			}
			// The account without its AES key cannot read it.
			if _, err := a.Webhook(context.Background(), account(t, v.Token, "", v.ReceiverID), req); !errs.Is(err, errs.Unauthorized) {
				t.Fatalf("no key: %v", err)
			}
		})
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("not a number: %q", s)
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// In compatible mode the plaintext beside Encrypt is not signed: a forger
// who changes it must not change what we read.
func TestCompatIgnoresPlaintextFields(t *testing.T) {
	a := webhookAdapter(now)
	acct := account(t, testToken, testAESKey, testAppID)
	p := wechattest.NewPusher(t, testToken, testAppID, testAESKey)
	req := p.Compat(now, wechattest.Text("o1", "gh", now, 7, "genuine"))
	req.Body = bytes.Replace(req.Body, []byte("genuine"), []byte("forged!"), 1)
	req.Body = bytes.Replace(req.Body, []byte("[o1]"), []byte("[o2]"), 1)
	res, err := a.Webhook(context.Background(), acct, req)
	if err != nil {
		t.Fatal(err)
	}
	if in := res.Inbound[0]; in.Text != "genuine" || in.ExternalID != "o1" {
		t.Fatalf("read the unsigned plaintext: %+v", in)
	}
}

func TestWebhookRejects(t *testing.T) {
	a := wechat.New(nil, wechat.Options{Clock: clock.NewFake(now), MaxBody: 4096})
	acct := account(t, testToken, testAESKey, testAppID)
	p := wechattest.NewPusher(t, testToken, testAppID, testAESKey)
	other := wechattest.NewPusher(t, "othertoken", testAppID, testAESKey)
	otherApp := wechattest.NewPusher(t, testToken, "wx0000000000000000", testAESKey)
	text := wechattest.Text("o1", "gh", now, 1, "hi")
	tamper := func(r channels.WebhookRequest, f func(*channels.WebhookRequest)) channels.WebhookRequest {
		q := url.Values{}
		for k, v := range r.Query {
			q[k] = v
		}
		r.Query = q
		f(&r)
		return r
	}
	tests := []struct {
		name string
		req  channels.WebhookRequest
		code errs.Code
	}{
		{"plain: other token", other.Plain(now, text), errs.Unauthorized},
		{"plain: no signature", tamper(p.Plain(now, text), func(r *channels.WebhookRequest) { r.Query.Del("signature") }), errs.Unauthorized},
		{"plain: body changed is fine but query changed is not",
			tamper(p.Plain(now, text), func(r *channels.WebhookRequest) { r.Query.Set("nonce", "1") }), errs.Unauthorized},
		{"safe: other token", other.Safe(now, text), errs.Unauthorized},
		{"safe: other app id", otherApp.Safe(now, text), errs.Unauthorized},
		{"compat: other app id", otherApp.Compat(now, text), errs.Unauthorized},
		{"safe: Encrypt changed", tamper(p.Safe(now, text), func(r *channels.WebhookRequest) {
			r.Body = bytes.Replace(r.Body, []byte("<Encrypt><![CDATA["), []byte("<Encrypt><![CDATA[A"), 1)
		}), errs.Unauthorized},
		{"safe: no Encrypt", tamper(p.Safe(now, text), func(r *channels.WebhookRequest) {
			r.Body = []byte("<xml><ToUserName>gh</ToUserName></xml>")
		}), errs.Invalid},
		{"safe: not XML", tamper(p.Safe(now, text), func(r *channels.WebhookRequest) { r.Body = []byte("{}") }), errs.Invalid},
		{"unknown encrypt_type", tamper(p.Safe(now, text), func(r *channels.WebhookRequest) { r.Query.Set("encrypt_type", "rsa") }), errs.Invalid},
		{"plain: not XML", p.Plain(now, []byte("hello")), errs.Invalid},
		{"plain: empty", p.Plain(now, nil), errs.Invalid},
		{"plain: no sender", p.Plain(now, []byte("<xml><MsgType>text</MsgType></xml>")), errs.Invalid},
		{"plain: no type", p.Plain(now, []byte("<xml><FromUserName>o1</FromUserName></xml>")), errs.Invalid},
		{"plain: bad CreateTime", p.Plain(now, []byte("<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType><CreateTime>x</CreateTime></xml>")), errs.Invalid},
		{"plain: bad MsgId", p.Plain(now, []byte("<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType><MsgId>-1</MsgId></xml>")), errs.Invalid},
		{"too large", p.Plain(now, wechattest.Text("o1", "gh", now, 1, strings.Repeat("x", 5000))), errs.TooLarge},
		{"PUT", tamper(p.Plain(now, text), func(r *channels.WebhookRequest) { r.Method = http.MethodPut }), errs.Invalid},
		{"GET without echostr", tamper(p.Verify(now, "x"), func(r *channels.WebhookRequest) { r.Query.Del("echostr") }), errs.Invalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := a.Webhook(context.Background(), acct, tc.req)
			if !errs.Is(err, tc.code) {
				t.Fatalf("%v, want %s", err, tc.code)
			}
			if len(res.Inbound) != 0 || res.Reply.Body != nil {
				t.Fatalf("returned %+v with an error", res)
			}
		})
	}
	// A push signed right is accepted by the same adapter (the cases above
	// fail for their reason, not for a broken set-up).
	for _, mode := range pushModes {
		if _, err := a.Webhook(context.Background(), acct, push(p, mode, now, text)); err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
	}
}

func TestBadCredentials(t *testing.T) {
	a := webhookAdapter(now)
	acct := channels.Account{ID: "x", Credentials: json.RawMessage(`{"app_id":"wx1"}`)}
	p := wechattest.NewPusher(t, testToken, testAppID, "")
	if _, err := a.Webhook(context.Background(), acct, p.Plain(now, wechattest.Text("o", "g", now, 1, "x"))); !errs.Is(err, errs.Invalid) {
		t.Fatalf("%v", err)
	}
}

// FuzzWebhook pushes arbitrary bodies, correctly signed, in plain and safe
// mode: the webhook must parse them or refuse them as Invalid / TooLarge,
// never panic and never call a signed push Unauthorized; what it accepts
// must be a usable Inbound or StatusUpdate. Unsigned calls with the same
// body must be refused.
func FuzzWebhook(f *testing.F) {
	dir := testenv.ChannelSamples(f)
	files, err := filepath.Glob(filepath.Join(dir, "wechat_*.xml"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no wechat samples in %s: %v", dir, err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	for _, v := range wechattest.Vectors(f) {
		if bytes.HasPrefix(v.Plain, []byte("<xml>")) {
			f.Add(v.Plain, true)
		}
	}
	f.Add(wechattest.TemplateReport("o1", "gh", now, "1", "success"), false)
	f.Add(wechattest.MenuTap("o1", "gh", now, 1, "a", "b"), true)
	a := webhookAdapter(now)
	acct := account(f, testToken, testAESKey, testAppID)
	p := wechattest.NewPusher(f, testToken, testAppID, testAESKey)
	f.Fuzz(func(t *testing.T, body []byte, safe bool) {
		req := p.Plain(now, body)
		if safe {
			req = p.Safe(now, body)
		}
		res, err := a.Webhook(context.Background(), acct, req)
		if err != nil {
			if code := errs.CodeOf(err); code != errs.Invalid && code != errs.TooLarge {
				t.Fatalf("signed push refused as %s: %v", code, err)
			}
		} else {
			if string(res.Reply.Body) != "success" || len(res.Inbound)+len(res.Statuses) != 1 {
				t.Fatalf("result %+v", res)
			}
			for _, in := range res.Inbound {
				if in.ExternalID == "" || in.ChannelMsgID == "" || in.Type == "" || !json.Valid(in.Raw) {
					t.Fatalf("unusable inbound %+v", in)
				}
				if _, err := json.Marshal(in); err != nil {
					t.Fatalf("inbound does not encode: %v", err)
				}
			}
		}
		forged := req
		forged.Query = url.Values{"signature": {strings.Repeat("0", 40)}, "timestamp": req.Query["timestamp"], "nonce": req.Query["nonce"],
			"encrypt_type": req.Query["encrypt_type"], "msg_signature": {strings.Repeat("0", 40)}}
		if _, err := a.Webhook(context.Background(), acct, forged); err == nil {
			t.Fatal("forged push accepted")
		} else if code := errs.CodeOf(err); code != errs.Unauthorized && code != errs.Invalid && code != errs.TooLarge {
			t.Fatalf("forged push: %v", err)
		}
	})
}
