package wechat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/wechat"
	"github.com/switchboard-acd/switchboard/channels/wechat/wechattest"
	"github.com/switchboard-acd/switchboard/channels/wxtoken"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/rdb"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

const custom = "/cgi-bin/message/custom/send"

// tlog routes a component's logs to the test's log.
type tlog struct{ t testing.TB }

func (w tlog) Write(p []byte) (int, error) { w.t.Log(strings.TrimSpace(string(p))); return len(p), nil }

func testLogger(t testing.TB) *slog.Logger { return slog.New(slog.NewTextHandler(tlog{t}, nil)) }

// sendEnv is a fake WeChat API, a Redis of the given kind and adapters
// ("nodes") sharing it.
type sendEnv struct {
	t    *testing.T
	rdb  *rdb.Client
	fake *wechattest.Server
	clk  *clock.Fake
	acct channels.Account
}

func newSendEnv(t *testing.T, kind string) *sendEnv {
	fake := wechattest.New(t, "wx5f1d2c3b4a5e6f70", "the-app-secret")
	return &sendEnv{t: t, rdb: testenv.Redis(t, kind), fake: fake, clk: clock.NewFake(now),
		acct: fake.Account("acct-wx", testToken, testAESKey)}
}

// node is one adapter with its own Redis client and token cache.
func (e *sendEnv) node() *wechat.Adapter {
	var cl redis.UniversalClient = e.rdb.UniversalClient
	if e.rdb.Embedded != nil {
		cl = redis.NewClient(&redis.Options{Addr: e.rdb.Embedded.Addr()})
	} else {
		opt, err := redis.ParseURL(testenv.RedisURL())
		if err != nil {
			e.t.Fatal(err)
		}
		cl = redis.NewClient(opt)
	}
	e.t.Cleanup(func() { cl.Close() })
	tokens := wxtoken.New(cl, e.rdb.Prefix, e.clk, testLogger(e.t))
	return wechat.New(tokens, wechat.Options{Clock: e.clk, Logger: testLogger(e.t)})
}

func forKinds(t *testing.T, f func(t *testing.T, e *sendEnv)) {
	for _, kind := range testenv.RedisKinds {
		t.Run(kind, func(t *testing.T) { f(t, newSendEnv(t, kind)) })
	}
}

func jsonValue(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return v
}

func text(to, s string) channels.Outbound {
	return channels.Outbound{ExternalID: to, Type: channels.MsgText, Text: s}
}

func TestSendBodies(t *testing.T) {
	e := newSendEnv(t, "embedded")
	a := e.node()
	tests := []struct {
		name string
		out  channels.Outbound
		want string // JSON, or a sample file
	}{
		{"text", text("OPENID", "Hello World"), "wechat_custom_send_text.json"},
		{"image", channels.Outbound{ExternalID: "OPENID", Type: channels.MsgImage, Media: &channels.Media{ID: "MEDIA_ID"}}, "wechat_custom_send_image.json"},
		{"voice", channels.Outbound{ExternalID: "o1", Type: channels.MsgAudio, Media: &channels.Media{ID: "v1"}},
			`{"touser":"o1","msgtype":"voice","voice":{"media_id":"v1"}}`},
		{"video", channels.Outbound{ExternalID: "o1", Type: channels.MsgVideo, Media: &channels.Media{ID: "m1", Caption: "look"}},
			`{"touser":"o1","msgtype":"video","video":{"media_id":"m1","description":"look"}}`},
		{"menu", channels.Outbound{ExternalID: "o1", Type: channels.MsgInteractive, Text: "您对本次服务是否满意呢?",
			Choices: []channels.Choice{{ID: "101", Title: "满意"}, {ID: "102", Title: "不满意"}}},
			`{"touser":"o1","msgtype":"msgmenu","msgmenu":{"head_content":"您对本次服务是否满意呢?","list":[{"id":"101","content":"满意"},{"id":"102","content":"不满意"}],"tail_content":""}}`},
		{"location as text", channels.Outbound{ExternalID: "o1", Type: channels.MsgLocation,
			Location: &channels.Location{Latitude: 23.1, Longitude: 113.3, Name: "Canton Tower", Address: "Guangzhou"}},
			`{"touser":"o1","msgtype":"text","text":{"content":"Canton Tower\nGuangzhou"}}`},
		{"bare location", channels.Outbound{ExternalID: "o1", Type: channels.MsgLocation, Location: &channels.Location{Latitude: 23.1, Longitude: 113.3}},
			`{"touser":"o1","msgtype":"text","text":{"content":"23.1,113.3"}}`},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := a.Send(context.Background(), e.acct, tc.out)
			if err != nil {
				t.Fatal(err)
			}
			if res.ChannelMsgID != "" {
				t.Fatalf("custom send has no message id, got %q", res.ChannelMsgID)
			}
			sent := e.fake.Sent()
			if len(sent) != i+1 {
				t.Fatalf("%d sent", len(sent))
			}
			want := []byte(tc.want)
			if strings.HasSuffix(tc.want, ".json") {
				want = testenv.ChannelSample(t, tc.want)
			}
			if diff := cmp.Diff(jsonValue(t, want), jsonValue(t, sent[i].Body)); diff != "" {
				t.Fatalf("body (-want +got):\n%s", diff)
			}
			if sent[i].Token != e.fake.CurrentToken() {
				t.Fatalf("sent with token %q", sent[i].Token)
			}
		})
	}
	if n := e.fake.TokenFetches(); n != 1 {
		t.Fatalf("%d token fetches for %d sends", n, len(tests))
	}
}

func TestSendRefusesWhatWeChatCannotCarry(t *testing.T) {
	e := newSendEnv(t, "embedded")
	a := e.node()
	for name, out := range map[string]channels.Outbound{
		"no recipient":       {Type: channels.MsgText, Text: "x"},
		"empty text":         text("o1", " "),
		"image by url":       {ExternalID: "o1", Type: channels.MsgImage, Media: &channels.Media{URL: "https://x/y.png"}},
		"document":           {ExternalID: "o1", Type: channels.MsgDocument, Media: &channels.Media{ID: "d"}},
		"menu without items": {ExternalID: "o1", Type: channels.MsgInteractive, Text: "pick"},
		"menu item no id":    {ExternalID: "o1", Type: channels.MsgInteractive, Text: "pick", Choices: []channels.Choice{{Title: "a"}}},
		"template no id":     {ExternalID: "o1", Type: channels.MsgTemplate, Template: &channels.Template{}},
	} {
		_, err := a.Send(context.Background(), e.acct, out)
		var se *channels.SendError
		if !errors.As(err, &se) || se.Retry || se.Auth || se.WindowClosed || se.Code != "invalid_message" {
			t.Errorf("%s: %#v", name, err)
		}
	}
	if len(e.fake.Sent()) != 0 {
		t.Fatal("an invalid message reached the API")
	}
}

// classification of the send API's errcodes.
func TestSendErrorClasses(t *testing.T) {
	beijingMidnight := time.Date(2024, 4, 18, 16, 0, 0, 0, time.UTC) // 00:00 on the 19th in UTC+8
	tests := []struct {
		name string
		fail wechattest.Failure
		want channels.SendError
	}{
		{"window closed", wechattest.Failure{ErrCode: 45015, ErrMsg: "response out of time limit or subscription is canceled"},
			channels.SendError{Code: "45015", WindowClosed: true}},
		{"not following", wechattest.Failure{ErrCode: 43004, ErrMsg: "require subscribe"}, channels.SendError{Code: "43004", WindowClosed: true}},
		{"window quota", wechattest.Failure{ErrCode: 45047, ErrMsg: "out of response count limit"}, channels.SendError{Code: "45047"}},
		{"busy", wechattest.Failure{ErrCode: -1, ErrMsg: "system error"}, channels.SendError{Code: "-1", Retry: true}},
		{"daily quota", wechattest.Failure{ErrCode: 45009, ErrMsg: "reach max api daily quota limit"},
			channels.SendError{Code: "45009", Retry: true, RetryAfter: beijingMidnight.Sub(now)}},
		{"minute quota", wechattest.Failure{ErrCode: 45011, ErrMsg: "api minute-quota reach limit"},
			channels.SendError{Code: "45011", Retry: true, RetryAfter: time.Minute}},
		{"invalid openid", wechattest.Failure{ErrCode: 40003, ErrMsg: "invalid openid"}, channels.SendError{Code: "40003"}},
		{"api unauthorized", wechattest.Failure{ErrCode: 48001, ErrMsg: "api unauthorized"}, channels.SendError{Code: "48001"}},
		{"unknown", wechattest.Failure{ErrCode: 12345, ErrMsg: "new"}, channels.SendError{Code: "12345"}},
		{"bad gateway", wechattest.Failure{HTTPStatus: 502}, channels.SendError{Code: "http_502", Retry: true}},
		{"not found", wechattest.Failure{HTTPStatus: 404}, channels.SendError{Code: "http_404"}},
	}
	e := newSendEnv(t, "embedded")
	a := e.node()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.fake.Fail(custom, tc.fail, 1)
			_, err := a.Send(context.Background(), e.acct, text("o1", "hi"))
			var se *channels.SendError
			if !errors.As(err, &se) {
				t.Fatalf("%#v", err)
			}
			got := channels.SendError{Code: se.Code, Retry: se.Retry, RetryAfter: se.RetryAfter, WindowClosed: se.WindowClosed, Auth: se.Auth}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s\n%v", diff, err)
			}
			if tc.fail.ErrCode != 0 && !strings.Contains(se.Error(), tc.fail.ErrMsg) {
				t.Fatalf("message %q lost WeChat's errmsg", se.Error())
			}
			var ae *wechat.APIError
			if tc.fail.ErrCode != 0 && (!errors.As(err, &ae) || ae.Code != tc.fail.ErrCode) {
				t.Fatalf("cause %v", err)
			}
		})
	}
	if got := e.fake.Calls(custom); got != len(tests) {
		t.Fatalf("%d calls for %d sends: no error may be retried inside Send", got, len(tests))
	}
}

func TestTokenRefusedRefreshesOnce(t *testing.T) {
	forKinds(t, func(t *testing.T, e *sendEnv) {
		ctx := context.Background()
		a := e.node()
		if _, err := a.Send(ctx, e.acct, text("o1", "first")); err != nil {
			t.Fatal(err)
		}
		first := e.fake.CurrentToken()

		// Expired (42001): a normal fetch gets a new token, the send goes
		// through on the second try.
		e.fake.ExpireToken()
		if _, err := a.Send(ctx, e.acct, text("o1", "after expiry")); err != nil {
			t.Fatal(err)
		}
		second := e.fake.CurrentToken()
		if second == first || e.fake.TokenFetches() != 2 || e.fake.ForcedRefreshes() != 0 {
			t.Fatalf("after 42001: token %q→%q, %d fetches, %d forced", first, second, e.fake.TokenFetches(), e.fake.ForcedRefreshes())
		}

		// 40001 for a token stable_token still hands out: the adapter
		// forces a refresh instead of retrying with the same token.
		e.fake.Fail(custom, wechattest.Failure{ErrCode: 40001, ErrMsg: "invalid credential, access_token is invalid or not latest"}, 1)
		if _, err := a.Send(ctx, e.acct, text("o1", "after 40001")); err != nil {
			t.Fatal(err)
		}
		if e.fake.ForcedRefreshes() != 1 || e.fake.CurrentToken() == second {
			t.Fatalf("after 40001: %d forced refreshes, token %q", e.fake.ForcedRefreshes(), e.fake.CurrentToken())
		}
		sent := e.fake.Sent()
		if len(sent) != 3 || sent[2].Token != e.fake.CurrentToken() {
			t.Fatalf("sent %+v", sent)
		}

		// Refused twice: one retry only, then an Auth error for the outbox.
		calls := e.fake.Calls(custom)
		e.fake.Fail(custom, wechattest.Failure{ErrCode: 40014, ErrMsg: "invalid access_token"}, 2)
		_, err := a.Send(ctx, e.acct, text("o1", "twice"))
		var se *channels.SendError
		if !errors.As(err, &se) || !se.Auth || se.Code != "40014" {
			t.Fatalf("refused twice: %#v", err)
		}
		if n := e.fake.Calls(custom) - calls; n != 2 {
			t.Fatalf("%d calls, want 2 (one retry)", n)
		}
	})
}

// Two nodes, many concurrent sends, a token refused under all of them:
// one fetch at the start and one refresh, whatever the number of senders.
func TestSendTokenSharedByNodes(t *testing.T) {
	forKinds(t, func(t *testing.T, e *sendEnv) {
		ctx := context.Background()
		nodes := []*wechat.Adapter{e.node(), e.node()}
		burst := func(label string) {
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := nodes[i%2].Send(ctx, e.acct, text(fmt.Sprintf("o%d", i), label)); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
		}
		burst("one")
		if n := e.fake.TokenFetches(); n != 1 {
			t.Fatalf("%d token fetches for 20 sends on 2 nodes", n)
		}
		e.fake.ExpireToken()
		burst("two")
		if n := e.fake.TokenFetches(); n != 2 {
			t.Fatalf("%d token fetches after expiry, want 2 in all", n)
		}
		if n := len(e.fake.Sent()); n != 40 {
			t.Fatalf("%d sent", n)
		}
	})
}

func TestTokenEndpointFailures(t *testing.T) {
	e := newSendEnv(t, "embedded")
	ctx := context.Background()
	// A wrong secret: WeChat refuses the credentials; nothing is sent.
	wrong := e.acct
	wrong.Credentials = json.RawMessage(strings.Replace(string(e.acct.Credentials), "the-app-secret", "wrong", 1))
	_, err := e.node().Send(ctx, wrong, text("o1", "x"))
	var se *channels.SendError
	if !errors.As(err, &se) || !se.Auth || se.Code != "40125" {
		t.Fatalf("wrong secret: %#v", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("error shows the secret: %v", err)
	}
	// IP allow-list and busy token endpoint.
	e.fake.Fail("/cgi-bin/stable_token", wechattest.Failure{ErrCode: 40164, ErrMsg: "invalid ip 1.2.3.4, not in whitelist"}, 1)
	if _, err := e.node().Send(ctx, e.acct, text("o1", "x")); !errors.As(err, &se) || !se.Auth || se.Code != "40164" {
		t.Fatalf("ip: %#v", err)
	}
	e.fake.Fail("/cgi-bin/stable_token", wechattest.Failure{ErrCode: -1, ErrMsg: "system error"}, 1)
	if _, err := e.node().Send(ctx, e.acct, text("o1", "x")); !errors.As(err, &se) || !se.Retry || se.Auth {
		t.Fatalf("busy: %#v", err)
	}
	// Then it works.
	if _, err := e.node().Send(ctx, e.acct, text("o1", "x")); err != nil {
		t.Fatal(err)
	}
	if len(e.fake.Sent()) != 1 {
		t.Fatalf("sent %d", len(e.fake.Sent()))
	}
}

func TestNetworkErrorsHideTheToken(t *testing.T) {
	e := newSendEnv(t, "embedded")
	a := e.node()
	if _, err := a.Send(context.Background(), e.acct, text("o1", "x")); err != nil {
		t.Fatal(err)
	}
	tok := e.fake.CurrentToken()
	e.fake.Close()
	_, err := a.Send(context.Background(), e.acct, text("o1", "x"))
	var se *channels.SendError
	if !errors.As(err, &se) || !se.Retry || se.Code != "network" {
		t.Fatalf("%#v", err)
	}
	if strings.Contains(err.Error(), tok) || strings.Contains(err.Error(), "access_token") {
		t.Fatalf("error shows the access token: %v", err)
	}
}

func TestWindowEnforcedByFake(t *testing.T) {
	e := newSendEnv(t, "embedded")
	a := e.node()
	ctx := context.Background()
	e.fake.EnforceWindow(e.clk)
	var se *channels.SendError
	if _, err := a.Send(ctx, e.acct, text("o1", "cold")); !errors.As(err, &se) || !se.WindowClosed {
		t.Fatalf("never wrote: %#v", err)
	}
	e.fake.CustomerWrote("o1")
	for i := range wechattest.WindowQuota {
		if _, err := a.Send(ctx, e.acct, text("o1", fmt.Sprint(i))); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	_, err := a.Send(ctx, e.acct, text("o1", "one too many"))
	if !errors.As(err, &se) || se.Code != "45047" || se.Retry || se.WindowClosed || !strings.Contains(se.Error(), "allowance") {
		t.Fatalf("over quota: %#v", err)
	}
	e.fake.CustomerWrote("o1")
	e.clk.Advance(wechattest.Window + time.Second)
	if _, err := a.Send(ctx, e.acct, text("o1", "late")); !errors.As(err, &se) || !se.WindowClosed {
		t.Fatalf("after 48h: %#v", err)
	}
}

func TestSendTemplate(t *testing.T) {
	e := newSendEnv(t, "embedded")
	a := e.node()
	ctx := context.Background()
	res, err := a.Send(ctx, e.acct, channels.Outbound{ExternalID: "o1", Type: channels.MsgTemplate,
		Template: &channels.Template{Name: "tmpl-1", Components: json.RawMessage(`{"first":{"value":"hi"}}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if res.ChannelMsgID == "" || res.ChannelMsgID != e.fake.MsgID() {
		t.Fatalf("msgid %q, fake gave %q", res.ChannelMsgID, e.fake.MsgID())
	}
	want := `{"touser":"o1","template_id":"tmpl-1","data":{"first":{"value":"hi"}}}`
	if diff := cmp.Diff(jsonValue(t, []byte(want)), jsonValue(t, e.fake.Sent()[0].Body)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	// Raw is the whole body; the recipient is always the Outbound's.
	_, err = a.Send(ctx, e.acct, channels.Outbound{ExternalID: "o2", Type: channels.MsgTemplate,
		Raw: json.RawMessage(`{"touser":"someone-else","template_id":"tmpl-2","url":"https://example.com","data":{}}`)})
	if err != nil {
		t.Fatal(err)
	}
	want = `{"touser":"o2","template_id":"tmpl-2","url":"https://example.com","data":{}}`
	if diff := cmp.Diff(jsonValue(t, []byte(want)), jsonValue(t, e.fake.Sent()[1].Body)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

func TestUserInfo(t *testing.T) {
	forKinds(t, func(t *testing.T, e *sendEnv) {
		ctx := context.Background()
		a := e.node()
		sample := testenv.ChannelSample(t, "wechat_user_info_unionid.json")
		e.fake.SetUser("o6_bmjrPTlm6_2sgVt7hMZOPfL2M", sample)
		got, err := a.UserInfo(ctx, e.acct, "o6_bmjrPTlm6_2sgVt7hMZOPfL2M")
		if err != nil {
			t.Fatal(err)
		}
		want := wechat.UserInfo{OpenID: "o6_bmjrPTlm6_2sgVt7hMZOPfL2M", UnionID: "o6_bmasdasdsad6_2sgVt7hMZOPfL", Subscribed: true,
			SubscribedAt: time.Unix(1382694957, 0), Language: "zh_CN", TagIDs: []int{128, 2}, SubscribeScene: "ADD_SCENE_QR_CODE", QRScene: 98765}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("(-want +got):\n%s", diff)
		}
		if _, err := a.UserInfo(ctx, e.acct, "nobody"); !errs.Is(err, errs.NotFound) {
			t.Fatalf("unknown openid: %v", err)
		}
		if _, err := a.UserInfo(ctx, e.acct, ""); !errs.Is(err, errs.Invalid) {
			t.Fatalf("empty openid: %v", err)
		}
		// A refused token is refreshed here too.
		e.fake.ExpireToken()
		if _, err := a.UserInfo(ctx, e.acct, "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"); err != nil {
			t.Fatalf("after expiry: %v", err)
		}
		e.fake.Fail("/cgi-bin/user/info", wechattest.Failure{ErrCode: -1, ErrMsg: "busy"}, 1)
		if _, err := a.UserInfo(ctx, e.acct, "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"); !errs.Is(err, errs.Unavailable) {
			t.Fatalf("busy: %v", err)
		}
	})
}

func TestCredentials(t *testing.T) {
	good := `{"app_id":"wx1","app_secret":"s","token":"t","encoding_aes_key":"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}`
	if err := wechat.ValidateCredentials(json.RawMessage(good)); err != nil {
		t.Fatal(err)
	}
	c, err := wechat.ParseCredentials(json.RawMessage(`{"app_id":" wx1 ","app_secret":"s","token":"t","base_url":"http://127.0.0.1:1/"}`))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wechat.Credentials{AppID: "wx1", AppSecret: "s", Token: "t", BaseURL: "http://127.0.0.1:1"}, c); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if c, _ := wechat.ParseCredentials(json.RawMessage(`{"app_id":"wx1","app_secret":"s","token":"t"}`)); c.BaseURL != wechat.DefaultBaseURL {
		t.Fatalf("default base url %q", c.BaseURL)
	}
	for name, raw := range map[string]string{
		"empty":         ``,
		"not json":      `{`,
		"no app id":     `{"app_secret":"s","token":"t"}`,
		"no secret":     `{"app_id":"wx1","token":"t"}`,
		"no token":      `{"app_id":"wx1","app_secret":"s"}`,
		"short key":     `{"app_id":"wx1","app_secret":"s","token":"t","encoding_aes_key":"abc"}`,
		"bad base url":  `{"app_id":"wx1","app_secret":"s","token":"t","base_url":"ftp://x"}`,
		"unknown field": `{"app_id":"wx1","app_secret":"s","token":"t","appsecret":"x"}`,
		"token spaces":  `{"app_id":"wx1","app_secret":"s","token":"a b"}`,
		"wrong type":    `{"app_id":1,"app_secret":"s","token":"t"}`,
	} {
		err := wechat.ValidateCredentials(json.RawMessage(raw))
		if !errs.Is(err, errs.Invalid) {
			t.Errorf("%s: %v", name, err)
		} else if strings.Contains(err.Error(), `"s"`) {
			t.Errorf("%s: message echoes the secret: %v", name, err)
		}
	}
}
