package sms_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/sms"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// FuzzWebhook feeds arbitrary bodies to the webhook, signed (so parsing is
// reached) or not. It must never panic, must refuse unsigned calls, must
// fail only with unauthorized / invalid / too large, and what it accepts
// must be well formed.
func FuzzWebhook(f *testing.F) {
	for _, name := range []string{"twilio_sms_inbound.form", "twilio_sms_status_callback.form"} {
		f.Add(bytes.TrimSpace(testenv.ChannelSample(f, name)), true)
	}
	f.Add([]byte("NumMedia=3&MediaUrl0=http://x&MediaContentType0=image/png&MediaUrl2=y&From=%2B1&MessageSid=SM1"), true)
	f.Add([]byte("MessageStatus=undelivered&ErrorCode=30003&MessageSid=SM1"), true)
	f.Add([]byte("From=a&MessageSid=b&Latitude=91&Longitude=1e400"), true)
	f.Add([]byte("%zz"), false)
	const token = "fuzz-token"
	a := newAdapter(f)
	f.Fuzz(func(t *testing.T, body []byte, sign bool) {
		req := channels.WebhookRequest{Method: http.MethodPost, URL: hookURL, Body: body,
			Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}}
		form, perr := url.ParseQuery(string(body))
		// The account is the one the body claims, so that signed samples
		// of different provider accounts get past the AccountSid check.
		sid := "ACfuzz"
		if perr == nil && form.Get("AccountSid") != "" && sms.ValidateCredentials([]byte(`{"account_sid":"`+form.Get("AccountSid")+`","auth_token":"x","from":"+15005550006"}`)) == nil {
			sid = form.Get("AccountSid")
		}
		acct := account(t, sid, token)
		if sign && perr == nil {
			req.Header.Set(sms.SignatureHeader, sms.Signature(token, hookURL, form))
		}
		res, err := a.Webhook(context.Background(), acct, req)
		if err != nil {
			if c := errs.CodeOf(err); c != errs.Unauthorized && c != errs.Invalid && c != errs.TooLarge {
				t.Fatalf("error code %s: %v", c, err)
			}
			return
		}
		if !sign {
			t.Fatalf("unsigned body accepted: %q", body)
		}
		if res.Reply.Status != http.StatusOK || len(res.Inbound)+len(res.Statuses) > 1 {
			t.Fatalf("result %+v", res)
		}
		for _, in := range res.Inbound {
			if in.ExternalID == "" || in.ChannelMsgID == "" || in.Type == "" || len(in.Raw) == 0 {
				t.Fatalf("ill-formed inbound %+v", in)
			}
			if (in.Media != nil) != (in.Type != channels.MsgText && in.Type != channels.MsgLocation) {
				t.Fatalf("type %s with media %v", in.Type, in.Media)
			}
		}
		for _, su := range res.Statuses {
			if su.ChannelMsgID == "" {
				t.Fatalf("status without id %+v", su)
			}
			switch su.Status {
			case channels.StatusSent, channels.StatusDelivered, channels.StatusRead, channels.StatusFailed:
			default:
				t.Fatalf("status %q", su.Status)
			}
		}
	})
}
