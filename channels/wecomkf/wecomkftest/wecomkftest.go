// Package wecomkftest is a fake of the WeCom customer-service API for tests
// of the wecomkf channel and of what runs on it (the pull worker, the
// outbox): gettoken (counted), sync_msg serving a message log in cursor
// pages, send_msg with msgid deduplication and the provider's sending
// rules, service_state trans/get with the provider's transition table,
// and injectable errcodes. It also builds the encrypted callbacks WeCom
// posts.
package wecomkftest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/wecomkf"
	"github.com/switchboard-acd/switchboard/channels/wxcrypt"
)

// Sent is one message the fake accepted from send_msg or
// send_msg_on_event.
type Sent struct {
	Path     string
	MsgID    string
	ToUser   string
	Code     string
	MsgType  string
	Body     map[string]json.RawMessage
	Accepted time.Time
}

// Text returns the text content of a text message ("" otherwise).
func (s Sent) Text() string {
	var t struct {
		Content string `json:"content"`
	}
	_ = json.Unmarshal(s.Body["text"], &t)
	return t.Content
}

// SyncCall is one sync_msg request as the fake received it.
type SyncCall struct {
	Cursor      string `json:"cursor"`
	Token       string `json:"token"`
	Limit       int    `json:"limit"`
	VoiceFormat int    `json:"voice_format"`
	OpenKfID    string `json:"open_kfid"`
}

// Failure is an errcode answer injected instead of the normal one.
type Failure struct {
	ErrCode int
	ErrMsg  string
}

// customer is the fake's view of one customer.
type customer struct {
	state    int
	servicer string
	wrote    bool // has written: the API may send to them
	budget   int  // sends left since their last message
	codes    int  // msg_codes handed out
}

// Server is the fake WeCom API for one corp, one app and one
// customer-service account.
type Server struct {
	URL            string
	CorpID         string
	Secret         string
	Token          string
	EncodingAESKey string
	OpenKfID       string
	// PageSize caps a sync_msg page below the request's limit (default
	// 1000), so tests can page through a short log.
	PageSize int
	// Now stamps accepted messages and built items; time.Now when nil.
	Now func() time.Time

	srv     *httptest.Server
	crypter *wxcrypt.Crypter

	mu          sync.Mutex
	tokenCalls  int                        // guarded by mu
	seq         int                        // guarded by mu; numbers tokens, cursors, codes
	tokens      map[string]bool            // guarded by mu; access token → still valid
	syncTokens  map[string]bool            // guarded by mu; callback tokens
	log         []json.RawMessage          // guarded by mu; what sync_msg serves
	cursors     map[string]int             // guarded by mu; cursor → log index
	syncCalls   []SyncCall                 // guarded by mu
	sent        []Sent                     // guarded by mu
	sentIDs     map[string]string          // guarded by mu; msgid seen
	customers   map[string]*customer       // guarded by mu
	servicers   map[string]bool            // guarded by mu; receptionists
	failures    map[string][]Failure       // guarded by mu; by path, front first
	pathCalls   map[string]int             // guarded by mu
	lastRequest map[string]json.RawMessage // guarded by mu; last body by path
}

// NewServer starts a fake with fresh ids and keys; Close stops it.
func NewServer() *Server {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s := &Server{
		CorpID:         "ww" + randHex(8),
		Secret:         "secret-" + randHex(16),
		Token:          "tok" + randHex(6),
		EncodingAESKey: base64.StdEncoding.EncodeToString(key)[:wxcrypt.KeyLen],
		OpenKfID:       "wk" + randHex(12),
		PageSize:       wecomkf.SyncLimit,
		tokens:         map[string]bool{},
		syncTokens:     map[string]bool{},
		cursors:        map[string]int{},
		sentIDs:        map[string]string{},
		customers:      map[string]*customer{},
		servicers:      map[string]bool{},
		failures:       map[string][]Failure{},
		pathCalls:      map[string]int{},
		lastRequest:    map[string]json.RawMessage{},
	}
	// Base64 of 32 bytes is 43 characters and one "=": the key without
	// its padding is an EncodingAESKey.
	c, err := wxcrypt.New(s.Token, s.EncodingAESKey, s.CorpID)
	if err != nil {
		panic(err)
	}
	s.crypter = c
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)[:n]
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Credentials returns account credentials pointing at the fake.
func (s *Server) Credentials() json.RawMessage {
	b, _ := json.Marshal(wecomkf.Credentials{CorpID: s.CorpID, Secret: s.Secret, Token: s.Token,
		EncodingAESKey: s.EncodingAESKey, OpenKfID: s.OpenKfID, BaseURL: s.URL})
	return b
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// TokenCalls is how many times gettoken was called.
func (s *Server) TokenCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenCalls
}

// Calls is how many requests reached path (failed ones included).
func (s *Server) Calls(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pathCalls[path]
}

// LastRequest is the last JSON body posted to path.
func (s *Server) LastRequest(path string) json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastRequest[path]
}

// ExpireTokens makes every access token handed out so far expired: the
// next call with one gets 42001.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.tokens {
		s.tokens[t] = false
	}
}

// FailNext makes the next n calls to path (e.g. "/cgi-bin/kf/send_msg")
// answer errcode instead.
func (s *Server) FailNext(path string, n int, errcode int, errmsg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures[path] = append(s.failures[path], Failure{ErrCode: errcode, ErrMsg: errmsg})
	}
}

// AddServicer makes userid an activated receptionist of the account.
func (s *Server) AddServicer(userid string) {
	s.mu.Lock()
	s.servicers[userid] = true
	s.mu.Unlock()
}

// AddMessages appends items to the log sync_msg serves. A customer
// message (origin 3) opens the customer's sending window and resets their
// allowance to 5 messages, as a real one does.
func (s *Server) AddMessages(items ...json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range items {
		var m struct {
			Origin int    `json:"origin"`
			User   string `json:"external_userid"`
		}
		_ = json.Unmarshal(it, &m)
		if m.Origin == wecomkf.OriginCustomer && m.User != "" {
			c := s.customerLocked(m.User)
			c.wrote, c.budget = true, 5
			if c.state == 4 {
				c.state, c.servicer = 0, ""
			}
		}
		s.log = append(s.log, it)
	}
}

// SyncCalls returns the sync_msg requests received, oldest first.
func (s *Server) SyncCalls() []SyncCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SyncCall(nil), s.syncCalls...)
}

// Sent returns the accepted messages, oldest first.
func (s *Server) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sent(nil), s.sent...)
}

// State returns a customer's service state and servicer.
func (s *Server) State(user string) (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.customerLocked(user)
	return c.state, c.servicer
}

func (s *Server) customerLocked(user string) *customer {
	c := s.customers[user]
	if c == nil {
		c = &customer{}
		s.customers[user] = c
	}
	return c
}

// Customer builds a customer message (origin 3) of msgtype with its body,
// e.g. Customer("m1", "wm1", "text", map[string]any{"content": "hi"}).
func (s *Server) Customer(msgid, user, msgtype string, body any) json.RawMessage {
	return s.item(msgid, user, "", wecomkf.OriginCustomer, msgtype, body)
}

// Servicer builds a text a receptionist sent from the WeCom client
// (origin 5).
func (s *Server) Servicer(msgid, user, servicer, content string) json.RawMessage {
	return s.item(msgid, user, servicer, wecomkf.OriginServicer, "text", map[string]any{"content": content})
}

// SystemEvent builds a system event (origin 4); event holds event_type
// and its fields. Like the real API, the item carries no open_kfid or
// external_userid of its own; the event body names them.
func (s *Server) SystemEvent(msgid string, event map[string]any) json.RawMessage {
	if _, ok := event["open_kfid"]; !ok {
		event["open_kfid"] = s.OpenKfID
	}
	b, _ := json.Marshal(map[string]any{"msgid": msgid, "send_time": s.now().Unix(), "origin": wecomkf.OriginSystem,
		"msgtype": "event", "event": event})
	return b
}

func (s *Server) item(msgid, user, servicer string, origin int, msgtype string, body any) json.RawMessage {
	m := map[string]any{"msgid": msgid, "open_kfid": s.OpenKfID, "external_userid": user, "send_time": s.now().Unix(),
		"origin": origin, "msgtype": msgtype, msgtype: body}
	if servicer != "" {
		m["servicer_userid"] = servicer
	}
	b, _ := json.Marshal(m)
	return b
}

// CallbackXML is the decrypted kf_msg_or_event callback WeCom posts.
func CallbackXML(corpID, openKfID, token string, at time.Time) []byte {
	return fmt.Appendf(nil, "<xml><ToUserName><![CDATA[%s]]></ToUserName><CreateTime>%d</CreateTime><MsgType><![CDATA[event]]></MsgType>"+
		"<Event><![CDATA[kf_msg_or_event]]></Event><Token><![CDATA[%s]]></Token><OpenKfId><![CDATA[%s]]></OpenKfId></xml>",
		corpID, at.Unix(), token, openKfID)
}

// EncryptedPost builds the callback WeCom would post to hookURL with plain
// encrypted for corpID under the app's token and key.
func EncryptedPost(t testing.TB, token, encodingAESKey, corpID, hookURL string, plain []byte) channels.WebhookRequest {
	t.Helper()
	c, err := wxcrypt.New(token, encodingAESKey, corpID)
	if err != nil {
		t.Fatalf("wecomkftest: %v", err)
	}
	ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), randHex(10)
	enc, sig, err := c.Encrypt(plain, ts, nonce)
	if err != nil {
		t.Fatalf("wecomkftest: %v", err)
	}
	q := url.Values{"msg_signature": {sig}, "timestamp": {ts}, "nonce": {nonce}}
	body := fmt.Appendf(nil, "<xml><ToUserName><![CDATA[%s]]></ToUserName><AgentID><![CDATA[1000002]]></AgentID><Encrypt><![CDATA[%s]]></Encrypt></xml>", corpID, enc)
	return channels.WebhookRequest{Method: http.MethodPost, URL: hookURL + "?" + q.Encode(), Query: q,
		Header: http.Header{"Content-Type": {"text/xml"}}, Body: body}
}

// Doorbell builds a kf_msg_or_event callback for the fake's account and
// registers its token with sync_msg; it returns the request and the token.
func (s *Server) Doorbell(t testing.TB, hookURL string) (channels.WebhookRequest, string) {
	t.Helper()
	s.mu.Lock()
	s.seq++
	tok := fmt.Sprintf("ENC%dsynctoken%s", s.seq, randHex(8))
	s.syncTokens[tok] = true
	s.mu.Unlock()
	return EncryptedPost(t, s.Token, s.EncodingAESKey, s.CorpID, hookURL, CallbackXML(s.CorpID, s.OpenKfID, tok, s.now())), tok
}

// VerifyRequest builds the URL verification WeCom sends when the callback
// URL is saved; the answer must be echo.
func (s *Server) VerifyRequest(t testing.TB, hookURL, echo string) channels.WebhookRequest {
	t.Helper()
	ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), randHex(10)
	enc, sig, err := s.crypter.Encrypt([]byte(echo), ts, nonce)
	if err != nil {
		t.Fatalf("wecomkftest: %v", err)
	}
	q := url.Values{"msg_signature": {sig}, "timestamp": {ts}, "nonce": {nonce}, "echostr": {enc}}
	return channels.WebhookRequest{Method: http.MethodGet, URL: hookURL + "?" + q.Encode(), Query: q}
}

// answer writes a JSON answer with errcode 0 plus fields.
func answer(w http.ResponseWriter, fields map[string]any) {
	if fields == nil {
		fields = map[string]any{}
	}
	if _, ok := fields["errcode"]; !ok {
		fields["errcode"], fields["errmsg"] = 0, "ok"
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(fields)
}

func fail(w http.ResponseWriter, code int, msg string) {
	answer(w, map[string]any{"errcode": code, "errmsg": msg + ", hint: [fake], more info at https://open.work.weixin.qq.com/devtool/query?e=" + strconv.Itoa(code)})
}

var msgIDRe = regexp.MustCompile(`^[0-9A-Za-z_-]{0,32}$`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pathCalls[r.URL.Path]++
	if r.URL.Path == "/cgi-bin/gettoken" {
		s.tokenCalls++
		q := r.URL.Query()
		switch {
		case q.Get("corpid") != s.CorpID:
			fail(w, 40013, "invalid corpid")
		case q.Get("corpsecret") != s.Secret:
			fail(w, 40001, "invalid secret")
		default:
			s.seq++
			tok := fmt.Sprintf("at-%d-%s", s.seq, randHex(12))
			s.tokens[tok] = true
			answer(w, map[string]any{"access_token": tok, "expires_in": 7200})
		}
		return
	}
	if r.Method != http.MethodPost {
		fail(w, 43002, "require POST method")
		return
	}
	tok := r.URL.Query().Get("access_token")
	valid, known := s.tokens[tok]
	switch {
	case tok == "":
		fail(w, 41001, "access_token missing")
		return
	case !known:
		fail(w, 40014, "invalid access_token")
		return
	case !valid:
		fail(w, 42001, "access_token expired")
		return
	}
	if fs := s.failures[r.URL.Path]; len(fs) > 0 {
		s.failures[r.URL.Path] = fs[1:]
		fail(w, fs[0].ErrCode, fs[0].ErrMsg)
		return
	}
	var body map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		fail(w, 47001, "data format error")
		return
	}
	raw, _ := json.Marshal(body)
	s.lastRequest[r.URL.Path] = raw
	str := func(k string) string {
		var v string
		_ = json.Unmarshal(body[k], &v)
		return v
	}
	switch r.URL.Path {
	case "/cgi-bin/kf/sync_msg":
		s.syncMsg(w, raw)
	case "/cgi-bin/kf/send_msg", "/cgi-bin/kf/send_msg_on_event":
		s.sendMsg(w, r.URL.Path, body, str)
	case "/cgi-bin/kf/service_state/trans":
		s.trans(w, body, str)
	case "/cgi-bin/kf/service_state/get":
		if str("open_kfid") != s.OpenKfID {
			fail(w, 95000, "invalid open_kfid")
			return
		}
		c := s.customerLocked(str("external_userid"))
		answer(w, map[string]any{"service_state": c.state, "servicer_userid": c.servicer})
	default:
		fail(w, 404, "no such API in the fake")
	}
}

func (s *Server) syncMsg(w http.ResponseWriter, raw []byte) {
	var req SyncCall
	_ = json.Unmarshal(raw, &req)
	s.syncCalls = append(s.syncCalls, req)
	if req.OpenKfID != "" && req.OpenKfID != s.OpenKfID {
		fail(w, 95000, "invalid open_kfid")
		return
	}
	if req.Token != "" && !s.syncTokens[req.Token] {
		fail(w, 95007, "invalid msg token")
		return
	}
	if req.Limit < 0 || req.Limit > wecomkf.SyncLimit {
		fail(w, 40058, "invalid limit")
		return
	}
	start := 0
	if req.Cursor != "" {
		i, ok := s.cursors[req.Cursor]
		if !ok {
			fail(w, 40058, "invalid cursor")
			return
		}
		start = i
	}
	n := req.Limit
	if n == 0 {
		n = wecomkf.SyncLimit
	}
	if s.PageSize > 0 && s.PageSize < n {
		n = s.PageSize
	}
	end := min(start+n, len(s.log))
	s.seq++
	next := fmt.Sprintf("cur%d_%d", s.seq, end)
	s.cursors[next] = end
	hasMore := 0
	if end < len(s.log) {
		hasMore = 1
	}
	answer(w, map[string]any{"next_cursor": next, "has_more": hasMore, "msg_list": append([]json.RawMessage{}, s.log[start:end]...)})
}

func (s *Server) sendMsg(w http.ResponseWriter, path string, body map[string]json.RawMessage, str func(string) string) {
	msgid, msgtype := str("msgid"), str("msgtype")
	if !msgIDRe.MatchString(msgid) {
		fail(w, 40058, "invalid msgid")
		return
	}
	if msgid != "" {
		if _, dup := s.sentIDs[msgid]; dup {
			answer(w, map[string]any{"msgid": msgid})
			return
		}
	}
	switch msgtype {
	case "text", "image", "voice", "video", "file", "link", "miniprogram", "msgmenu", "location":
	default:
		fail(w, 40008, "invalid message type")
		return
	}
	if len(body[msgtype]) == 0 {
		fail(w, 40058, "missing "+msgtype)
		return
	}
	if msgtype == "text" {
		var t struct {
			Content string `json:"content"`
		}
		_ = json.Unmarshal(body["text"], &t)
		if t.Content == "" || len(t.Content) > wecomkf.MaxTextBytes {
			fail(w, 40058, "invalid text content size")
			return
		}
	}
	sent := Sent{Path: path, MsgID: msgid, MsgType: msgtype, Body: body, Accepted: s.now()}
	if path == "/cgi-bin/kf/send_msg" {
		if str("open_kfid") != s.OpenKfID {
			fail(w, 95000, "invalid open_kfid")
			return
		}
		user := str("touser")
		if user == "" {
			fail(w, 40096, "invalid external userid")
			return
		}
		c := s.customerLocked(user)
		switch {
		case c.state != 0 && c.state != 1:
			fail(w, 95018, "send msg session status invalid")
			return
		case !c.wrote:
			fail(w, 95002, "send msg time limit")
			return
		case c.budget <= 0:
			fail(w, 95001, "send msg count limit")
			return
		}
		c.budget--
		sent.ToUser = user
	} else {
		sent.Code = str("code")
		if sent.Code == "" {
			fail(w, 40058, "missing code")
			return
		}
	}
	if msgid == "" {
		s.seq++
		msgid = fmt.Sprintf("fake_msgid_%d", s.seq)
		sent.MsgID = msgid
	}
	s.sentIDs[msgid] = msgid
	s.sent = append(s.sent, sent)
	answer(w, map[string]any{"msgid": msgid})
}

// transitions is the provider's table of API moves.
var transitions = map[int][]int{0: {1, 2, 3}, 1: {2, 3}, 2: {3}, 3: {3, 4}}

func (s *Server) trans(w http.ResponseWriter, body map[string]json.RawMessage, str func(string) string) {
	if str("open_kfid") != s.OpenKfID {
		fail(w, 95000, "invalid open_kfid")
		return
	}
	user := str("external_userid")
	var target *int
	_ = json.Unmarshal(body["service_state"], &target)
	if user == "" || target == nil {
		fail(w, 40058, "missing external_userid or service_state")
		return
	}
	c := s.customerLocked(user)
	allowed := false
	for _, to := range transitions[c.state] {
		allowed = allowed || to == *target
	}
	if !allowed {
		fail(w, 95016, "invalid service state transition")
		return
	}
	servicer := ""
	if *target == 3 {
		servicer = str("servicer_userid")
		if !s.servicers[servicer] {
			fail(w, 95014, "servicer_userid is not a receptionist")
			return
		}
	}
	fields := map[string]any{}
	if (*target == 2 || *target == 3) && c.state != *target || *target == 4 {
		s.seq++
		c.codes++
		fields["msg_code"] = fmt.Sprintf("MSGCODE_%d_%d", *target, s.seq)
	}
	c.state, c.servicer = *target, servicer
	answer(w, fields)
}
