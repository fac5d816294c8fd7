package sms_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
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
)

const (
	fakeSID   = "AC0123456789abcdef0123456789abcdef"
	fakeToken = "secret-token"
	serviceID = "MG0123456789abcdef0123456789abcdef"
)

func fakeAccount(t *testing.T, from, callback string) (*smstest.Server, channels.Account) {
	t.Helper()
	srv := smstest.NewServer(fakeSID, fakeToken)
	t.Cleanup(srv.Close)
	return srv, channels.Account{TenantID: "t1", ID: "a-sms", Type: channels.SMS, Credentials: srv.Credentials(from, callback)}
}

func TestSend(t *testing.T) {
	srv, acct := fakeAccount(t, "+15005550006", "https://sb.example.com/hooks/sms/k")
	a := newAdapter(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		out  channels.Outbound
		want smstest.Message
	}{
		{"text", channels.Outbound{ExternalID: "+14155550100", Type: channels.MsgText, Text: "Hello 你好 👋"},
			smstest.Message{To: "+14155550100", Body: "Hello 你好 👋"}},
		{"image with caption", channels.Outbound{ExternalID: "+14155550100", Type: channels.MsgImage, Media: &channels.Media{URL: "https://cdn.example/a.jpg", Caption: "the invoice"}},
			smstest.Message{To: "+14155550100", Body: "the invoice", MediaURLs: []string{"https://cdn.example/a.jpg"}}},
		{"menu", channels.Outbound{ExternalID: "+14155550100", Type: channels.MsgInteractive, Text: "Pick one:", Choices: []channels.Choice{{ID: "b", Title: "Billing"}, {ID: "s", Title: "Support"}}},
			smstest.Message{To: "+14155550100", Body: "Pick one:\n1. Billing\n2. Support"}},
		{"location", channels.Outbound{ExternalID: "+14155550100", Type: channels.MsgLocation, Location: &channels.Location{Latitude: 52.52, Longitude: 13.405, Name: "Shop", Address: "Main St 1"}},
			smstest.Message{To: "+14155550100", Body: "Shop\nMain St 1\n52.52,13.405"}},
		{"rendered template", channels.Outbound{ExternalID: "+14155550100", Type: channels.MsgTemplate, Text: "Your order shipped", Template: &channels.Template{Name: "shipped"}},
			smstest.Message{To: "+14155550100", Body: "Your order shipped"}},
		{"exactly the limit", channels.Outbound{ExternalID: "+14155550100", Text: strings.Repeat("é", sms.MaxBodyLength)},
			smstest.Message{To: "+14155550100", Body: strings.Repeat("é", sms.MaxBodyLength)}},
	} {
		n := len(srv.Messages())
		res, err := a.Send(ctx, acct, tc.out)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		msgs := srv.Messages()
		if len(msgs) != n+1 {
			t.Errorf("%s: %d messages recorded, want %d", tc.name, len(msgs), n+1)
			continue
		}
		got := msgs[n]
		if res.ChannelMsgID != got.SID || !strings.HasPrefix(got.SID, "SM") {
			t.Errorf("%s: result sid %q, provider sid %q", tc.name, res.ChannelMsgID, got.SID)
		}
		tc.want.From = "+15005550006"
		tc.want.StatusCallback = "https://sb.example.com/hooks/sms/k"
		if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(smstest.Message{}, "SID"), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: sent (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestSendMessagingService(t *testing.T) {
	srv, acct := fakeAccount(t, serviceID, "")
	if _, err := newAdapter(t).Send(context.Background(), acct, channels.Outbound{ExternalID: "+14155550100", Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	m := srv.Messages()[0]
	if m.MessagingServiceSID != serviceID || m.From != "" || m.StatusCallback != "" {
		t.Errorf("sent %+v, want MessagingServiceSid and no From / StatusCallback", m)
	}
}

func TestSendRefusedBeforeCalling(t *testing.T) {
	srv, acct := fakeAccount(t, "+15005550006", "")
	for name, out := range map[string]channels.Outbound{
		"too long":         {ExternalID: "+14155550100", Text: strings.Repeat("a", sms.MaxBodyLength+1)},
		"too long (emoji)": {ExternalID: "+14155550100", Text: strings.Repeat("👋", sms.MaxBodyLength/2) + "a"},
		"empty":            {ExternalID: "+14155550100", Type: channels.MsgText},
		"no recipient":     {Text: "hi"},
		"media id only":    {ExternalID: "+14155550100", Type: channels.MsgImage, Media: &channels.Media{ID: "wamid-media"}},
		"bare template":    {ExternalID: "+14155550100", Type: channels.MsgTemplate, Template: &channels.Template{Name: "x"}},
		"reaction":         {ExternalID: "+14155550100", Type: channels.MsgReaction, Text: "👍"},
	} {
		_, err := newAdapter(t).Send(context.Background(), acct, out)
		var se *channels.SendError
		if !errors.As(err, &se) || se.Retry || se.Auth {
			t.Errorf("%s: %v, want a permanent SendError", name, err)
		}
		if err := sms.ValidateOutbound(out); err == nil {
			t.Errorf("%s: ValidateOutbound accepted", name)
		}
	}
	if n := srv.Calls(); n != 0 {
		t.Errorf("%d calls reached the provider", n)
	}
}

func TestSendErrors(t *testing.T) {
	type want struct {
		code              string
		retry, auth, wind bool
		after             time.Duration
	}
	for _, tc := range []struct {
		name string
		f    smstest.Failure
		want want
	}{
		{"rate limited", smstest.Failure{Status: 429, Code: 20429, Message: "Too Many Requests", RetryAfter: "7"}, want{code: "20429", retry: true, after: 7 * time.Second}},
		{"429 without code", smstest.Failure{Status: 429}, want{code: "429", retry: true}},
		{"server error", smstest.Failure{Status: 500, Code: 20500, Message: "Internal Server Error"}, want{code: "20500", retry: true}},
		{"bad gateway", smstest.Failure{Status: 502}, want{code: "502", retry: true}},
		{"queue full", smstest.Failure{Status: 400, Code: 21611, Message: "queue"}, want{code: "21611", retry: true}},
		{"invalid To", smstest.Failure{Status: 400, Code: 21211, Message: "The 'To' number is not a valid phone number."}, want{code: "21211"}},
		{"unsubscribed", smstest.Failure{Status: 400, Code: 21610, Message: "Attempt to send to unsubscribed recipient"}, want{code: "21610"}},
		{"region", smstest.Failure{Status: 400, Code: 21408, Message: "Permission to send an SMS has not been enabled for the region"}, want{code: "21408"}},
		{"not mobile", smstest.Failure{Status: 400, Code: 21614, Message: "'To' number is not a valid mobile number"}, want{code: "21614"}},
		{"auth", smstest.Failure{Status: 401, Code: 20003, Message: "Authenticate"}, want{code: "20003", auth: true}},
		{"unknown 4xx", smstest.Failure{Status: 400, Code: 29999, Message: "?"}, want{code: "29999"}},
		{"whatsapp window", smstest.Failure{Status: 400, Code: 63016, Message: "outside window"}, want{code: "63016", wind: true}},
	} {
		srv, acct := fakeAccount(t, "+15005550006", "")
		srv.FailNext(1, tc.f)
		a := sms.New(sms.Options{Clock: clock.NewFake(testNow)})
		out := channels.Outbound{ExternalID: "+14155550100", Text: "hi"}
		_, err := a.Send(context.Background(), acct, out)
		var se *channels.SendError
		if !errors.As(err, &se) {
			t.Errorf("%s: error %v is not a SendError", tc.name, err)
			continue
		}
		got := want{se.Code, se.Retry, se.Auth, se.WindowClosed, se.RetryAfter}
		if got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
		if tc.f.Message != "" && se.Msg != tc.f.Message {
			t.Errorf("%s: message %q", tc.name, se.Msg)
		}
		if got := sms.IsOptOut(err); got != (tc.want.code == "21610") {
			t.Errorf("%s: IsOptOut = %v", tc.name, got)
		}
		// The failure was consumed: the next attempt goes through.
		if _, err := a.Send(context.Background(), acct, out); err != nil {
			t.Errorf("%s: retry after the failure: %v", tc.name, err)
		}
	}
}

func TestSendRetryAfterDate(t *testing.T) {
	srv, acct := fakeAccount(t, "+15005550006", "")
	srv.FailNext(1, smstest.Failure{Status: 503, RetryAfter: testNow.Add(90 * time.Second).Format(http.TimeFormat)})
	_, err := sms.New(sms.Options{Clock: clock.NewFake(testNow)}).Send(context.Background(), acct, channels.Outbound{ExternalID: "+1", Text: "x"})
	var se *channels.SendError
	if !errors.As(err, &se) || !se.Retry || se.RetryAfter != 90*time.Second {
		t.Fatalf("got %#v", err)
	}
}

func TestSendWrongCredentials(t *testing.T) {
	srv, acct := fakeAccount(t, "+15005550006", "")
	var c sms.Credentials
	if err := json.Unmarshal(acct.Credentials, &c); err != nil {
		t.Fatal(err)
	}
	c.AuthToken = "wrong"
	acct.Credentials, _ = json.Marshal(c)
	_, err := newAdapter(t).Send(context.Background(), acct, channels.Outbound{ExternalID: "+14155550100", Text: "hi"})
	var se *channels.SendError
	if !errors.As(err, &se) || !se.Auth || se.Retry || se.Code != "20003" {
		t.Errorf("got %#v, want an auth SendError 20003", err)
	}
	if len(srv.Messages()) != 0 {
		t.Error("message accepted with a wrong token")
	}
}

func TestSendTimeoutAndOutage(t *testing.T) {
	srv, acct := fakeAccount(t, "+15005550006", "")
	srv.SetLatency(2 * time.Second)
	a := sms.New(sms.Options{HTTPClient: &http.Client{Timeout: 100 * time.Millisecond}, Clock: clock.NewFake(testNow)})
	_, err := a.Send(context.Background(), acct, channels.Outbound{ExternalID: "+14155550100", Text: "hi"})
	var se *channels.SendError
	if !errors.As(err, &se) || !se.Retry || se.Code != "network" {
		t.Errorf("timeout: %#v, want retryable network error", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = newAdapter(t).Send(ctx, acct, channels.Outbound{ExternalID: "+14155550100", Text: "hi"})
	if !errors.As(err, &se) || !se.Retry || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("caller deadline: %#v, want retryable wrapping DeadlineExceeded", err)
	}

	srv.Close()
	_, err = newAdapter(t).Send(context.Background(), acct, channels.Outbound{ExternalID: "+14155550100", Text: "hi"})
	if !errors.As(err, &se) || !se.Retry {
		t.Errorf("provider down: %#v, want retryable", err)
	}
}

func TestSendBadCredentials(t *testing.T) {
	acct := channels.Account{ID: "a", Credentials: json.RawMessage(`{}`)}
	_, err := newAdapter(t).Send(context.Background(), acct, channels.Outbound{ExternalID: "+1", Text: "x"})
	var se *channels.SendError
	if !errors.As(err, &se) || se.Retry || !se.Auth || !errs.Is(se.Err, errs.Invalid) {
		t.Errorf("got %#v", err)
	}
}

func TestCredentials(t *testing.T) {
	ok := []string{
		`{"account_sid":"AC1","auth_token":"t","from":"+14155550100"}`,
		`{"account_sid":"AC1","auth_token":"t","from":"` + serviceID + `"}`,
		`{"account_sid":"AC1","auth_token":"t","from":"ACME Ltd"}`,
		`{"account_sid":"AC1","auth_token":"t","from":"12345"}`,
		`{"account_sid":"AC1","auth_token":"t","from":"+14155550100","base_url":"http://127.0.0.1:8080/","status_callback_url":"https://sb.example/hook"}`,
	}
	for _, s := range ok {
		if err := sms.ValidateCredentials(json.RawMessage(s)); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	bad := map[string]string{
		``:        "credentials",
		`[]`:      "credentials",
		`{"x":1}`: "credentials",
		`{"auth_token":"t","from":"+14155550100"}`:                                                       "account_sid",
		`{"account_sid":"AC/1","auth_token":"t","from":"+1415555"}`:                                      "account_sid",
		`{"account_sid":"AC1","from":"+14155550100"}`:                                                    "auth_token",
		`{"account_sid":"AC1","auth_token":"t"}`:                                                         "from",
		`{"account_sid":"AC1","auth_token":"t","from":"+0044123"}`:                                       "from",
		`{"account_sid":"AC1","auth_token":"t","from":"TooLongSender1"}`:                                 "from",
		`{"account_sid":"AC1","auth_token":"t","from":"+14155550100","base_url":"api.twilio.com"}`:       "base_url",
		`{"account_sid":"AC1","auth_token":"t","from":"+14155550100","status_callback_url":"ftp://x/y"}`: "status_callback_url",
	}
	for s, field := range bad {
		err := sms.ValidateCredentials(json.RawMessage(s))
		if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v, want invalid naming %s", s, err, field)
		}
	}
	c, err := sms.ParseCredentials(json.RawMessage(`{"account_sid":"AC1","auth_token":"t","from":"+14155550100","base_url":"http://h:1/"}`))
	if err != nil || c.BaseURL != "http://h:1" {
		t.Errorf("base_url not normalised: %q %v", c.BaseURL, err)
	}
}
