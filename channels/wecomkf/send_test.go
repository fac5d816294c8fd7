package wecomkf_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/wecomkf"
	"github.com/switchboard-acd/switchboard/channels/wxtoken"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// customerWrote makes user a customer who just wrote (window open, 5
// messages allowed).
func (e *env) customerWrote(user string) {
	e.fake.AddMessages(e.fake.Customer("in-"+user+"-"+time.Now().Format("150405.000000000"), user, "text", map[string]any{"content": "hello"}))
}

func TestSendTypes(t *testing.T) {
	forKinds(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.customerWrote("wm1")
		for _, tc := range []struct {
			name    string
			out     channels.Outbound
			msgtype string
			body    string
		}{
			{"text", channels.Outbound{Type: channels.MsgText, Text: "您好，请问有什么可以帮您？"}, "text", `{"content":"您好，请问有什么可以帮您？"}`},
			{"image", channels.Outbound{Type: channels.MsgImage, Media: &channels.Media{ID: "MID1"}}, "image", `{"media_id":"MID1"}`},
			{"document", channels.Outbound{Type: channels.MsgDocument, Media: &channels.Media{ID: "MID2"}}, "file", `{"media_id":"MID2"}`},
			{"menu", channels.Outbound{Type: channels.MsgInteractive, Text: "请评价", Choices: []channels.Choice{{ID: "csat_5", Title: "满意"}, {ID: "csat_1", Title: "不满意"}}}, "msgmenu",
				`{"head_content":"请评价","list":[{"type":"click","click":{"id":"csat_5","content":"满意"}},{"type":"click","click":{"id":"csat_1","content":"不满意"}}]}`},
			{"location", channels.Outbound{Type: channels.MsgLocation, Location: &channels.Location{Latitude: 23.1, Longitude: 113.2, Name: "门店"}}, "location",
				`{"name":"门店","latitude":23.1,"longitude":113.2}`},
		} {
			tc.out.ExternalID, tc.out.MessageID = "wm1", "msg-"+tc.name
			res, err := e.a.Send(ctx, e.acct, tc.out)
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			sent := e.fake.Sent()
			got := sent[len(sent)-1]
			if got.MsgType != tc.msgtype || got.ToUser != "wm1" || got.MsgID != "msg-"+tc.name || res.ChannelMsgID != got.MsgID {
				t.Errorf("%s: sent %+v, result %+v", tc.name, got, res)
			}
			var want, have any
			_ = json.Unmarshal([]byte(tc.body), &want)
			_ = json.Unmarshal(got.Body[tc.msgtype], &have)
			if diff := cmp.Diff(want, have); diff != "" {
				t.Errorf("%s: body (-want +got):\n%s", tc.name, diff)
			}
		}

		// Raw: the provider's own object, addressed by the adapter.
		raw := json.RawMessage(`{"msgtype":"link","touser":"spoofed","link":{"title":"Order","desc":"d","url":"https://x.example","thumb_media_id":"T"}}`)
		e.customerWrote("wm1")
		if _, err := e.a.Send(ctx, e.acct, channels.Outbound{ExternalID: "wm1", MessageID: "raw-1", Type: channels.MsgText, Raw: raw}); err != nil {
			t.Fatal(err)
		}
		sent := e.fake.Sent()
		if got := sent[len(sent)-1]; got.MsgType != "link" || got.ToUser != "wm1" || got.MsgID != "raw-1" {
			t.Errorf("raw send: %+v", got)
		}
	})
}

func TestSendIdempotent(t *testing.T) {
	forKinds(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.customerWrote("wm1")
		out := channels.Outbound{ExternalID: "wm1", MessageID: "m-1", IdempotencyKey: "550e8400-e29b-41d4-a716-446655440000", Type: channels.MsgText, Text: "once"}
		r1, err := e.a.Send(ctx, e.acct, out)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := e.a.Send(ctx, e.acct, out)
		if err != nil {
			t.Fatal(err)
		}
		if r1.ChannelMsgID != wecomkf.MsgID(out.IdempotencyKey) || r2 != r1 || len(r1.ChannelMsgID) != 32 {
			t.Errorf("results %+v %+v", r1, r2)
		}
		if n := len(e.fake.Sent()); n != 1 {
			t.Errorf("%d messages delivered, want 1", n)
		}
	})
}

func TestMsgID(t *testing.T) {
	for key, want := range map[string]string{
		"abc_DEF-123":                          "abc_DEF-123",
		strings.Repeat("a", 32):                strings.Repeat("a", 32),
		"550e8400-e29b-41d4-a716-446655440000": "", // hashed
		strings.Repeat("a", 33):                "",
		"含中文":                                  "",
		"a.b":                                  "",
	} {
		got := wecomkf.MsgID(key)
		if want != "" && got != want {
			t.Errorf("MsgID(%q) = %q, want %q", key, got, want)
		}
		if len(got) == 0 || len(got) > wecomkf.MaxMsgIDLen || strings.Trim(got, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-") != "" {
			t.Errorf("MsgID(%q) = %q: not a valid msgid", key, got)
		}
		if wecomkf.MsgID(key) != got {
			t.Errorf("MsgID(%q) not deterministic", key)
		}
	}
	if wecomkf.MsgID("k1.x") == wecomkf.MsgID("k2.x") {
		t.Error("different keys, same msgid")
	}
}

func TestSendRefusedLocally(t *testing.T) {
	forKinds(t, func(t *testing.T, e *env) {
		for name, out := range map[string]channels.Outbound{
			"no recipient":  {Type: channels.MsgText, Text: "x"},
			"empty text":    {ExternalID: "wm1", Type: channels.MsgText, Text: "  "},
			"long text":     {ExternalID: "wm1", Type: channels.MsgText, Text: strings.Repeat("长", wecomkf.MaxTextBytes/3+1)},
			"media url":     {ExternalID: "wm1", Type: channels.MsgImage, Media: &channels.Media{URL: "https://x/y.png"}},
			"template":      {ExternalID: "wm1", Type: channels.MsgTemplate, Template: &channels.Template{Name: "t"}},
			"no choices":    {ExternalID: "wm1", Type: channels.MsgInteractive, Text: "pick"},
			"raw no type":   {ExternalID: "wm1", Raw: json.RawMessage(`{"text":{"content":"x"}}`)},
			"no location":   {ExternalID: "wm1", Type: channels.MsgLocation},
			"choice no id":  {ExternalID: "wm1", Type: channels.MsgInteractive, Choices: []channels.Choice{{Title: "x"}}},
			"reaction":      {ExternalID: "wm1", Type: channels.MsgReaction},
			"unknown type":  {ExternalID: "wm1", Type: "hologram"},
			"sticker no id": {ExternalID: "wm1", Type: channels.MsgSticker},
		} {
			_, err := e.a.Send(context.Background(), e.acct, out)
			var se *channels.SendError
			if !errors.As(err, &se) || se.Retry || se.Auth || se.WindowClosed {
				t.Errorf("%s: %v, want a permanent SendError", name, err)
			}
		}
		if n := e.fake.Calls("/cgi-bin/kf/send_msg"); n != 0 {
			t.Errorf("%d calls reached send_msg", n)
		}
	})
}

func TestSendProviderRules(t *testing.T) {
	forKinds(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		send := func(user, id string) error {
			_, err := e.a.Send(ctx, e.acct, channels.Outbound{ExternalID: user, MessageID: id, Type: channels.MsgText, Text: "x"})
			return err
		}
		window := func(name string, err error, code string) {
			t.Helper()
			var se *channels.SendError
			if !errors.As(err, &se) || !se.WindowClosed || se.Retry || se.Code != code {
				t.Errorf("%s: %#v, want WindowClosed %s", name, err, code)
			}
		}
		// Never wrote (or over 48 hours ago).
		window("no window", send("wm-silent", "s1"), "95002")
		// Five messages per customer message.
		e.customerWrote("wm1")
		for i := range 5 {
			if err := send("wm1", "q"+string(rune('a'+i))); err != nil {
				t.Fatalf("send %d: %v", i+1, err)
			}
		}
		window("sixth", send("wm1", "q6"), "95001")
		e.customerWrote("wm1")
		if err := send("wm1", "q7"); err != nil {
			t.Errorf("after the customer wrote again: %v", err)
		}
		// With a WeCom servicer the API may not write.
		e.fake.AddServicer("zhangsan")
		if err := e.a.SetState(ctx, e.acct, "wm1", wecomkf.StateHuman, "zhangsan"); err != nil {
			t.Fatal(err)
		}
		window("human state", send("wm1", "q8"), "95018")
	})
}

func TestSendErrorClasses(t *testing.T) {
	forKinds(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.customerWrote("wm1")
		type want struct {
			retry, auth, window bool
			after               time.Duration
		}
		for _, tc := range []struct {
			errcode, n int
			want       want
		}{
			{-1, 1, want{retry: true}},
			{45009, 1, want{retry: true, after: time.Minute}},
			{45033, 1, want{retry: true}},
			{40014, 2, want{retry: true, auth: true}}, // refused again after a refresh
			{48002, 1, want{auth: true}},
			{95017, 1, want{auth: true}},
			{95000, 1, want{auth: true}},
			{95013, 1, want{window: true}},
			{40007, 1, want{}},
			{40096, 1, want{}},
		} {
			e.customerWrote("wm1")
			e.fake.FailNext("/cgi-bin/kf/send_msg", tc.n, tc.errcode, "injected")
			_, err := e.a.Send(ctx, e.acct, channels.Outbound{ExternalID: "wm1", MessageID: "e" + time.Now().Format("150405.000000000"), Type: channels.MsgText, Text: "x"})
			var se *channels.SendError
			if !errors.As(err, &se) {
				t.Errorf("%d: %v is not a SendError", tc.errcode, err)
				continue
			}
			got := want{se.Retry, se.Auth, se.WindowClosed, se.RetryAfter}
			var ae *wecomkf.APIError
			if got != tc.want || !errors.As(err, &ae) || ae.Code != tc.errcode || !strings.Contains(se.Msg, "injected") {
				t.Errorf("%d: got %+v (%v), want %+v", tc.errcode, got, err, tc.want)
			}
		}
	})
}

func TestTokenSharedAndRefreshed(t *testing.T) {
	forKinds(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.customerWrote("wm1")
		send := func(id string) error {
			_, err := e.a.Send(ctx, e.acct, channels.Outbound{ExternalID: "wm1", MessageID: id, Type: channels.MsgText, Text: "x"})
			return err
		}
		for _, id := range []string{"t1", "t2"} {
			if err := send(id); err != nil {
				t.Fatal(err)
			}
		}
		if n := e.fake.TokenCalls(); n != 1 {
			t.Errorf("%d gettoken calls for two sends, want 1", n)
		}
		// The provider expires the token early: refreshed once, at once.
		e.fake.ExpireTokens()
		if err := send("t3"); err != nil {
			t.Fatalf("send after expiry: %v", err)
		}
		if n := e.fake.TokenCalls(); n != 2 {
			t.Errorf("%d gettoken calls after an expiry, want 2", n)
		}
		if n := e.fake.Calls("/cgi-bin/kf/send_msg"); n != 4 {
			t.Errorf("%d send_msg calls, want 4 (one retried)", n)
		}
		// The cache is the cluster's: another node (adapter and cache of
		// its own on the same Redis) needs no fetch.
		other := wecomkf.New(wxtoken.New(e.rc.UniversalClient, e.rc.Prefix, e.clk, testLogger(t)), wecomkf.Options{Logger: testLogger(t)})
		if _, err := other.Send(ctx, e.acct, channels.Outbound{ExternalID: "wm1", MessageID: "t4", Type: channels.MsgText, Text: "x"}); err != nil {
			t.Fatal(err)
		}
		if n := e.fake.TokenCalls(); n != 2 {
			t.Errorf("%d gettoken calls after another node's send, want 2", n)
		}
		// The cache key names the corp but not the secret.
		keys, err := e.rc.Keys(ctx, e.rc.Prefix+":*").Result()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, k := range keys {
			if strings.Contains(k, e.fake.Secret) {
				t.Errorf("redis key %q reveals the secret", k)
			}
			found = found || strings.Contains(k, e.fake.CorpID)
		}
		if !found {
			t.Errorf("no token key for the corp among %v", keys)
		}
	})
}

func TestBadSecret(t *testing.T) {
	forKinds(t, func(t *testing.T, e *env) {
		var c wecomkf.Credentials
		_ = json.Unmarshal(e.acct.Credentials, &c)
		c.Secret = "wrong"
		e.acct.Credentials, _ = json.Marshal(c)
		e.customerWrote("wm1")
		_, err := e.a.Send(context.Background(), e.acct, channels.Outbound{ExternalID: "wm1", Type: channels.MsgText, Text: "x"})
		var se *channels.SendError
		if !errors.As(err, &se) || !se.Auth || se.Retry || se.Code != "40001" {
			t.Errorf("got %#v, want auth 40001 without retry", err)
		}
		if strings.Contains(err.Error(), "wrong") {
			t.Errorf("error reveals the secret: %v", err)
		}
		if _, err := e.a.Pull(context.Background(), e.acct, "", ""); !errs.Is(err, errs.Unauthorized) {
			t.Errorf("pull with a bad secret: %v", err)
		}
	})
}

func TestSendOnEvent(t *testing.T) {
	forKinds(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		res, err := e.a.SendOnEvent(ctx, e.acct, "WELCOME1", channels.Outbound{MessageID: "w-1", Type: channels.MsgText, Text: "欢迎"})
		if err != nil {
			t.Fatal(err)
		}
		sent := e.fake.Sent()
		if len(sent) != 1 || sent[0].Code != "WELCOME1" || sent[0].Text() != "欢迎" || sent[0].Path != "/cgi-bin/kf/send_msg_on_event" || res.ChannelMsgID != "w-1" {
			t.Errorf("sent %+v, result %+v", sent, res)
		}
		for name, tc := range map[string]struct {
			code string
			out  channels.Outbound
		}{
			"no code": {"", channels.Outbound{Type: channels.MsgText, Text: "x"}},
			"image":   {"C", channels.Outbound{Type: channels.MsgImage, Media: &channels.Media{ID: "m"}}},
		} {
			if _, err := e.a.SendOnEvent(ctx, e.acct, tc.code, tc.out); err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
	})
}

func TestCredentials(t *testing.T) {
	const key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
	good := map[string]any{"corp_id": "ww1", "secret": "s", "token": "t", "encoding_aes_key": key, "open_kfid": "wk1"}
	enc := func(m map[string]any) json.RawMessage { b, _ := json.Marshal(m); return b }
	if err := wecomkf.ValidateCredentials(enc(good)); err != nil {
		t.Fatal(err)
	}
	c, err := wecomkf.ParseCredentials(enc(good))
	if err != nil || c.BaseURL != wecomkf.DefaultBaseURL {
		t.Errorf("defaults: %+v %v", c, err)
	}
	for field, bad := range map[string]any{
		"corp_id": "", "secret": "", "token": "a b", "open_kfid": "", "encoding_aes_key": "short", "base_url": "qyapi.weixin.qq.com",
	} {
		m := map[string]any{}
		for k, v := range good {
			m[k] = v
		}
		m[field] = bad
		err := wecomkf.ValidateCredentials(enc(m))
		if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s=%v: %v", field, bad, err)
		}
		if s, ok := bad.(string); ok && len(s) > 2 && strings.Contains(err.Error(), s) {
			t.Errorf("%s: error echoes the value: %v", field, err)
		}
	}
	m := map[string]any{"extra": 1}
	for k, v := range good {
		m[k] = v
	}
	if err := wecomkf.ValidateCredentials(enc(m)); !errs.Is(err, errs.Invalid) {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := wecomkf.ParseCredentials(enc(m)); err != nil {
		t.Errorf("ParseCredentials must tolerate keys a newer node wrote: %v", err)
	}
}

// TestGetStateSampleAnswer reads the documented service_state/get answer.
func TestGetStateSampleAnswer(t *testing.T) {
	var sample struct {
		Response json.RawMessage `json:"response"`
	}
	if err := json.Unmarshal(testenv.ChannelSample(t, "wecom_kf_service_state_get.json"), &sample); err != nil {
		t.Fatal(err)
	}
	var want struct {
		State    int    `json:"service_state"`
		Servicer string `json:"servicer_userid"`
	}
	if err := json.Unmarshal(sample.Response, &want); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cgi-bin/gettoken" {
			_, _ = w.Write([]byte(`{"errcode":0,"errmsg":"ok","access_token":"AT","expires_in":7200}`))
			return
		}
		_, _ = w.Write(sample.Response)
	}))
	defer srv.Close()
	e := newEnv(t, "embedded")
	var c wecomkf.Credentials
	_ = json.Unmarshal(e.acct.Credentials, &c)
	c.BaseURL = srv.URL
	e.acct.Credentials, _ = json.Marshal(c)
	state, servicer, err := e.a.GetState(context.Background(), e.acct, "wm1")
	if err != nil || int(state) != want.State || servicer != want.Servicer || servicer == "" {
		t.Errorf("GetState = %v %q %v, want %d %q", state, servicer, err, want.State, want.Servicer)
	}
}

// TestTransportFailures covers answers that are not the API's: they are
// retryable when the server is down or overloaded, final when a 200 is
// unreadable, and no error quotes the access token or the secret.
func TestTransportFailures(t *testing.T) {
	var mode string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cgi-bin/gettoken" {
			_, _ = w.Write([]byte(`{"errcode":0,"errmsg":"ok","access_token":"AT-SECRETISH","expires_in":7200}`))
			return
		}
		switch mode {
		case "502":
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("<html>bad gateway</html>"))
		case "200 html":
			_, _ = w.Write([]byte("<html>portal</html>"))
		case "429 json":
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"errcode":0}`))
		case "wrong shape":
			_, _ = w.Write([]byte(`{"errcode":0,"errmsg":"ok","msgid":7}`))
		}
	}))
	e := newEnv(t, "embedded")
	var c wecomkf.Credentials
	_ = json.Unmarshal(e.acct.Credentials, &c)
	c.BaseURL = srv.URL
	e.acct.Credentials, _ = json.Marshal(c)
	out := channels.Outbound{ExternalID: "wm1", MessageID: "x", Type: channels.MsgText, Text: "x"}
	for _, tc := range []struct {
		mode  string
		code  string
		retry bool
	}{
		{"502", "http_502", true},
		{"200 html", "invalid_response", false},
		{"429 json", "http_429", true},
		{"wrong shape", "invalid_response", false},
	} {
		mode = tc.mode
		_, err := e.a.Send(context.Background(), e.acct, out)
		var se *channels.SendError
		if !errors.As(err, &se) || se.Code != tc.code || se.Retry != tc.retry {
			t.Errorf("%s: %#v, want %s retry %v", tc.mode, err, tc.code, tc.retry)
		}
		if err != nil && strings.Contains(err.Error(), "AT-SECRETISH") {
			t.Errorf("%s: error quotes the access token: %v", tc.mode, err)
		}
	}
	mode = "502"
	if _, _, err := e.a.GetState(context.Background(), e.acct, "wm1"); !errs.Is(err, errs.Unavailable) {
		t.Errorf("GetState on a 502: %v", err)
	}
	srv.Close()
	_, err := e.a.Send(context.Background(), e.acct, out)
	var se *channels.SendError
	if !errors.As(err, &se) || se.Code != "network" || !se.Retry || strings.Contains(err.Error(), "AT-SECRETISH") {
		t.Errorf("server down: %#v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.a.Send(ctx, e.acct, out); !errors.As(err, &se) || !se.Retry {
		t.Errorf("cancelled: %#v", err)
	}
	// A token fetch that cannot reach WeCom: retryable, no secret quoted.
	fresh := newEnv(t, "embedded")
	c.BaseURL = srv.URL
	fresh.acct.Credentials, _ = json.Marshal(c)
	_, err = fresh.a.Send(context.Background(), fresh.acct, out)
	if !errors.As(err, &se) || !se.Retry || strings.Contains(err.Error(), c.Secret) {
		t.Errorf("token fetch while down: %#v", err)
	}
}
