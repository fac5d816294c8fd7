package wecomkf_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/wecomkf"
	"github.com/switchboard-acd/switchboard/channels/wecomkf/wecomkftest"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// FuzzSyncResponse feeds arbitrary sync_msg answers to the parser: it must
// not panic, must fail only as the API's errcode classes or invalid, and
// what it returns must be well formed.
func FuzzSyncResponse(f *testing.F) {
	f.Add(testenv.ChannelSample(f, "wecom_kf_sync_msg_response.json"))
	fake := wecomkftest.NewServer()
	defer fake.Close()
	page, _ := json.Marshal(map[string]any{"errcode": 0, "errmsg": "ok", "next_cursor": "c1", "has_more": 0, "msg_list": richLog(fake)})
	f.Add(page)
	f.Add([]byte(`{"errcode":95007,"errmsg":"invalid msg token"}`))
	f.Add([]byte(`{"errcode":0,"msg_list":[{"msgid":"x","origin":3,"external_userid":"u","msgtype":"text","text":"not an object"}]}`))
	f.Add([]byte(`{"errcode":0,"msg_list":[{"msgid":"x","origin":4,"msgtype":"event","event":{"event_type":"msg_send_fail","fail_msgid":"m","fail_type":99}}]}`))
	openKfID := fake.OpenKfID
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := wecomkf.ParseSyncResponse("acct", openKfID, body, start)
		if err != nil {
			if errs.CodeOf(err) == errs.Internal {
				t.Fatalf("internal error: %v", err)
			}
			return
		}
		var r struct {
			Next string `json:"next_cursor"`
		}
		_ = json.Unmarshal(body, &r)
		if p.Next != r.Next {
			t.Fatalf("next %q, answer said %q", p.Next, r.Next)
		}
		for _, in := range p.Inbound {
			if in.AccountID != "acct" || in.ExternalID == "" || in.ChannelMsgID == "" || in.Type == "" || len(in.Raw) == 0 || in.ReceivedAt.IsZero() {
				t.Fatalf("ill-formed inbound %+v", in)
			}
			if (in.Type == channels.MsgEvent) != (in.Event != nil) {
				t.Fatalf("event mismatch %+v", in)
			}
			if !json.Valid(in.Raw) {
				t.Fatalf("raw is not JSON: %q", in.Raw)
			}
		}
		for _, su := range p.Statuses {
			if su.ChannelMsgID == "" || su.Status != channels.StatusFailed || su.Retryable {
				t.Fatalf("ill-formed status %+v", su)
			}
		}
		for _, ev := range p.Events {
			if ev.MsgID == "" || !json.Valid(ev.Raw) {
				t.Fatalf("ill-formed event %+v", ev)
			}
		}
	})
}

// FuzzWebhook feeds arbitrary plaintexts (encrypted and signed, so that
// parsing is reached) and arbitrary raw bodies (unsigned) to the webhook.
// It must not panic; signed plaintexts fail only as invalid, unsigned
// bodies never pass, and a pull is asked only for a doorbell of this
// account.
func FuzzWebhook(f *testing.F) {
	f.Add(testenv.ChannelSample(f, "wecom_kf_callback_event.xml"), true)
	_, b2 := readWeComVectors(f)
	f.Add([]byte(b2.body), false)
	f.Add([]byte("<xml><MsgType>event</MsgType><Event>kf_msg_or_event</Event><Token>T</Token></xml>"), true)
	f.Add([]byte("<xml><Encrypt>!!!</Encrypt></xml>"), false)
	f.Add([]byte("<xml><Encrypt>AAAAAAAAAAAAAAAAAAAAAA==</Encrypt></xml>"), false)
	fake := wecomkftest.NewServer()
	defer fake.Close()
	acct := channels.Account{ID: "a", Credentials: fake.Credentials()}
	a := wecomkf.New(nil, wecomkf.Options{})
	f.Fuzz(func(t *testing.T, data []byte, encrypt bool) {
		var req channels.WebhookRequest
		if encrypt {
			req = wecomkftest.EncryptedPost(t, fake.Token, fake.EncodingAESKey, fake.CorpID, hookURL, data)
		} else {
			q := url.Values{"msg_signature": {"0123456789abcdef0123456789abcdef01234567"}, "timestamp": {"1"}, "nonce": {"n"}}
			req = channels.WebhookRequest{Method: http.MethodPost, URL: hookURL + "?" + q.Encode(), Query: q, Body: data}
		}
		res, err := a.Webhook(context.Background(), acct, req)
		if err != nil {
			c := errs.CodeOf(err)
			if encrypt && c != errs.Invalid && c != errs.TooLarge {
				t.Fatalf("signed plaintext: %v (code %s)", err, c)
			}
			if c != errs.Invalid && c != errs.Unauthorized && c != errs.TooLarge {
				t.Fatalf("code %s: %v", c, err)
			}
			return
		}
		if !encrypt {
			t.Fatalf("unsigned body accepted: %q", data)
		}
		if res.Reply.Status != http.StatusOK || len(res.Inbound) != 0 {
			t.Fatalf("result %+v", res)
		}
		if res.Pull {
			cb, err := wecomkf.ParseCallback(data)
			if err != nil || cb.Event != "kf_msg_or_event" || cb.MsgType != "event" || (cb.OpenKfID != "" && cb.OpenKfID != fake.OpenKfID) || res.PullToken != cb.Token {
				t.Fatalf("pull for %+v (%v)", cb, err)
			}
		}
	})
}
