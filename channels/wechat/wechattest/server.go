package wechattest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/clock"
)

// TokenLifetime is the expires_in the fake hands out, as WeChat does.
const TokenLifetime = 7200

// Window and WindowQuota are WeChat's customer-service rules the fake
// enforces when asked (EnforceWindow): 48 hours after the customer's last
// message, at most 5 messages.
const (
	Window      = 48 * time.Hour
	WindowQuota = 5
)

// Failure is an answer injected into the fake: an errcode (with errmsg)
// in a 200 response, as WeChat answers, or an HTTP status with no JSON.
type Failure struct {
	ErrCode    int
	ErrMsg     string
	HTTPStatus int
}

// Sent is one request the fake accepted on a send API.
type Sent struct {
	Path    string
	Token   string
	ToUser  string
	MsgType string
	Body    json.RawMessage
}

// Server is a fake WeChat API for one Official Account (AppID, AppSecret).
// Tokens behave as stable_token's do: the current token is handed out
// again until it expires or a refresh is forced; /cgi-bin/token replaces
// it on every call. Only the current token is accepted.
type Server struct {
	*httptest.Server
	AppID     string
	AppSecret string

	mu          sync.Mutex
	seq         int                  // guarded by mu
	token       string               // the valid token; guarded by mu
	expired     bool                 // the current token has expired; guarded by mu
	fetches     int                  // guarded by mu
	forced      int                  // guarded by mu
	calls       map[string]int       // requests by path; guarded by mu
	sent        []Sent               // guarded by mu
	users       map[string]any       // user/info answers by openid; guarded by mu
	fails       map[string][]Failure // injected answers by path; guarded by mu
	windowClock clock.Clock          // non-nil: enforce the window; guarded by mu
	lastWrote   map[string]time.Time // guarded by mu
	used        map[string]int       // messages sent in the current window; guarded by mu
	msgID       int64                // template msgids; guarded by mu
}

// New starts a fake closed when the test ends.
func New(t testing.TB, appID, appSecret string) *Server {
	s := &Server{AppID: appID, AppSecret: appSecret, calls: map[string]int{}, users: map[string]any{},
		fails: map[string][]Failure{}, lastWrote: map[string]time.Time{}, used: map[string]int{}, msgID: 1000}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cgi-bin/stable_token", s.stableToken)
	mux.HandleFunc("GET /cgi-bin/token", s.classicToken)
	mux.HandleFunc("POST /cgi-bin/message/custom/send", s.customSend)
	mux.HandleFunc("POST /cgi-bin/message/template/send", s.templateSend)
	mux.HandleFunc("GET /cgi-bin/user/info", s.userInfo)
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// Credentials are account credentials pointing at the fake, with the
// push token and AES key the webhook tests sign with ("" for plain mode).
func (s *Server) Credentials(token, encodingAESKey string) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"app_id": s.AppID, "app_secret": s.AppSecret, "token": token,
		"encoding_aes_key": encodingAESKey, "base_url": s.URL})
	return b
}

// Account is a WeChat account of tenant "t1" using the fake.
func (s *Server) Account(id, token, encodingAESKey string) channels.Account {
	return channels.Account{TenantID: "t1", ID: id, Type: channels.WeChatOA, Name: "wechat " + id, PublicKey: "key-" + id,
		Credentials: s.Credentials(token, encodingAESKey)}
}

// TokenFetches counts token requests (both endpoints); ForcedRefreshes
// those with force_refresh.
func (s *Server) TokenFetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

// ForcedRefreshes counts stable_token calls with force_refresh true.
func (s *Server) ForcedRefreshes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.forced
}

// Calls counts requests to path.
func (s *Server) Calls(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path]
}

// CurrentToken is the token the fake accepts now ("" before the first).
func (s *Server) CurrentToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

// Sent returns what the send APIs accepted, in order.
func (s *Server) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sent(nil), s.sent...)
}

// Fail makes the next n requests to path answer f (after the token is
// checked), e.g. Fail("/cgi-bin/message/custom/send", Failure{ErrCode:
// 40001}, 1) to test a refresh.
func (s *Server) Fail(path string, f Failure, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.fails[path] = append(s.fails[path], f)
	}
}

// ExpireToken makes the current token expired: the API answers 42001 to
// it and stable_token hands out a new one.
func (s *Server) ExpireToken() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expired = true
}

// SetUser sets the user/info answer of openid (a JSON object such as the
// wechat_user_info_unionid.json sample); other openids get 40003.
func (s *Server) SetUser(openid string, info json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[openid] = info
}

// EnforceWindow turns on WeChat's customer-service rules: a custom/send
// to a customer who did not write (CustomerWrote) within Window of clk's
// now gets 45015, the (quota+1)th message of a window 45047.
func (s *Server) EnforceWindow(clk clock.Clock) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.windowClock = clk
}

// CustomerWrote opens (or renews) openid's window at the window clock's
// now, resetting its message allowance.
func (s *Server) CustomerWrote(openid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.windowClock != nil {
		s.lastWrote[openid] = s.windowClock.Now()
		s.used[openid] = 0
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; encoding=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, map[string]any{"errcode": code, "errmsg": fmt.Sprintf("%s rid: fake-%d", msg, code)})
}

// injected answers an injected failure of path, if one is queued; the
// caller holds mu.
func (s *Server) injected(w http.ResponseWriter, path string) bool {
	q := s.fails[path]
	if len(q) == 0 {
		return false
	}
	f := q[0]
	s.fails[path] = q[1:]
	if f.HTTPStatus != 0 && f.ErrCode == 0 {
		http.Error(w, "fake outage", f.HTTPStatus)
		return true
	}
	msg := f.ErrMsg
	if msg == "" {
		msg = "injected"
	}
	writeErr(w, f.ErrCode, msg)
	return true
}

// newToken issues a token; the caller holds mu.
func (s *Server) newToken() {
	s.seq++
	s.token = fmt.Sprintf("ACCESS_TOKEN_%s_%d", s.AppID, s.seq)
	s.expired = false
}

func (s *Server) stableToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[r.URL.Path]++
	s.fetches++
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeErr(w, 47001, "data format error")
		return
	}
	switch {
	case req.GrantType != "client_credential":
		writeErr(w, 40002, "invalid grant_type")
		return
	case req.AppID != s.AppID:
		writeErr(w, 40013, "invalid appid")
		return
	case req.Secret != s.AppSecret:
		writeErr(w, 40125, "invalid appsecret")
		return
	}
	if s.injected(w, r.URL.Path) {
		return
	}
	if req.ForceRefresh {
		s.forced++
	}
	if s.token == "" || s.expired || req.ForceRefresh {
		s.newToken()
	}
	writeJSON(w, map[string]any{"access_token": s.token, "expires_in": TokenLifetime})
}

func (s *Server) classicToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[r.URL.Path]++
	s.fetches++
	switch {
	case q.Get("grant_type") != "client_credential":
		writeErr(w, 40002, "invalid grant_type")
		return
	case q.Get("appid") != s.AppID:
		writeErr(w, 40013, "invalid appid")
		return
	case q.Get("secret") != s.AppSecret:
		writeErr(w, 40125, "invalid appsecret")
		return
	}
	if s.injected(w, r.URL.Path) {
		return
	}
	s.newToken()
	writeJSON(w, map[string]any{"access_token": s.token, "expires_in": TokenLifetime})
}

// authorised checks the access_token of an API call; the caller holds mu.
func (s *Server) authorised(w http.ResponseWriter, r *http.Request) bool {
	tok := r.URL.Query().Get("access_token")
	switch {
	case tok == "":
		writeErr(w, 41001, "access_token missing")
	case tok != s.token:
		writeErr(w, 40001, "invalid credential, access_token is invalid or not latest")
	case s.expired:
		writeErr(w, 42001, "access_token expired")
	default:
		return true
	}
	return false
}

// record reads a send body and keeps it; the caller holds mu.
func (s *Server) record(w http.ResponseWriter, r *http.Request) (Sent, bool) {
	var head struct {
		ToUser  string `json:"touser"`
		MsgType string `json:"msgtype"`
	}
	var raw json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&raw); err != nil || json.Unmarshal(raw, &head) != nil {
		writeErr(w, 47001, "data format error")
		return Sent{}, false
	}
	if head.ToUser == "" {
		writeErr(w, 40003, "invalid openid")
		return Sent{}, false
	}
	return Sent{Path: r.URL.Path, Token: r.URL.Query().Get("access_token"), ToUser: head.ToUser, MsgType: head.MsgType, Body: raw}, true
}

func (s *Server) customSend(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[r.URL.Path]++
	if !s.authorised(w, r) || s.injected(w, r.URL.Path) {
		return
	}
	sent, ok := s.record(w, r)
	if !ok {
		return
	}
	switch sent.MsgType {
	case "text", "image", "voice", "video", "music", "news", "mpnews", "mpnewsarticle", "msgmenu", "wxcard", "miniprogrampage":
	default:
		writeErr(w, 40008, "invalid message type")
		return
	}
	if s.windowClock != nil {
		last, ok := s.lastWrote[sent.ToUser]
		if !ok || s.windowClock.Now().Sub(last) > Window {
			writeErr(w, 45015, "response out of time limit or subscription is canceled")
			return
		}
		if s.used[sent.ToUser] >= WindowQuota {
			writeErr(w, 45047, "out of response count limit")
			return
		}
		s.used[sent.ToUser]++
	}
	s.sent = append(s.sent, sent)
	writeJSON(w, map[string]any{"errcode": 0, "errmsg": "ok"})
}

func (s *Server) templateSend(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[r.URL.Path]++
	if !s.authorised(w, r) || s.injected(w, r.URL.Path) {
		return
	}
	sent, ok := s.record(w, r)
	if !ok {
		return
	}
	var body struct {
		TemplateID string `json:"template_id"`
	}
	if json.Unmarshal(sent.Body, &body) != nil || body.TemplateID == "" {
		writeErr(w, 40037, "invalid template_id")
		return
	}
	s.sent = append(s.sent, sent)
	s.msgID++
	writeJSON(w, map[string]any{"errcode": 0, "errmsg": "ok", "msgid": s.msgID})
}

func (s *Server) userInfo(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[r.URL.Path]++
	if !s.authorised(w, r) || s.injected(w, r.URL.Path) {
		return
	}
	info, ok := s.users[r.URL.Query().Get("openid")]
	if !ok {
		writeErr(w, 40003, "invalid openid")
		return
	}
	writeJSON(w, info)
}

// MsgID returns the last template msgid handed out, as a string.
func (s *Server) MsgID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strconv.FormatInt(s.msgID, 10)
}
