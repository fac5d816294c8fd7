// Package whatsapptest is a fake WhatsApp Cloud API (Graph API) for tests
// of everything that sends through the WhatsApp adapter (the outbox, the
// console) and a builder of signed webhook notifications for tests and
// benchmarks of the inbound side.
//
// The fake checks requests as the real API does where it matters to a
// client (bearer token, phone-number id, JSON shape and provider limits),
// answers with real-shaped bodies, records what was accepted, and can be
// told to fail (a status and Graph error, N times), to be slow, or to
// treat a recipient's 24-hour window as closed.
package whatsapptest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/whatsapp"
)

// Defaults of a new Server's account.
const (
	PhoneNumberID = "106540352242922"
	AccessToken   = "EAAtest-access-token"
	AppSecret     = "test_app_secret"
	VerifyToken   = "meatyhamhock"
	APIVersion    = "v21.0"
	WABAID        = "102290129340398"
)

// Message is a message the fake accepted.
type Message struct {
	// ID is the wamid returned to the sender.
	ID string
	To string
	// Type is the Cloud API type (text, image, interactive, template...).
	Type string
	// Text is text.body for text messages, the body of interactive ones.
	Text string
	// ReplyTo is context.message_id.
	ReplyTo string
	// Body is the request as sent.
	Body json.RawMessage
	At   time.Time
}

// Fault makes the fake answer message sends with an error.
type Fault struct {
	// Status is the HTTP status (e.g. 429, 400, 500).
	Status int
	// Body is the response body, usually one of the *Error helpers; a
	// generic Graph error when nil.
	Body []byte
	// Header is added to the response (Retry-After...).
	Header http.Header
	// Times is how many sends fail; 0 means once, a negative value
	// forever (until ClearFaults).
	Times int
	// To limits the fault to sends to one recipient.
	To string
}

type mediaFile struct {
	mime string
	data []byte
}

// Server is a running fake Graph API for one business phone number.
type Server struct {
	// URL is the server's origin, the account's base_url.
	URL string

	srv *httptest.Server

	// The account the fake serves: fixed, but for the token.
	phoneNumberID string
	appSecret     string
	verifyToken   string
	apiVersion    string

	mu          sync.Mutex
	accessToken string               // guarded by mu
	sent        []Message            // guarded by mu
	reads       []string             // guarded by mu
	rejected    []string             // guarded by mu
	faults      []*Fault             // guarded by mu
	latency     time.Duration        // guarded by mu
	closed      map[string]bool      // guarded by mu
	media       map[string]mediaFile // guarded by mu
	requests    int                  // guarded by mu
	seq         uint64               // guarded by mu
}

// New starts a fake Graph API, closed when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		phoneNumberID: PhoneNumberID, accessToken: AccessToken, appSecret: AppSecret,
		verifyToken: VerifyToken, apiVersion: APIVersion,
		closed: map[string]bool{}, media: map[string]mediaFile{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// PhoneNumberID is the business number's Graph id the fake serves.
func (s *Server) PhoneNumberID() string { return s.phoneNumberID }

// AppSecret signs the account's webhook notifications.
func (s *Server) AppSecret() string { return s.appSecret }

// VerifyToken answers the account's subscription handshake.
func (s *Server) VerifyToken() string { return s.verifyToken }

// AccessToken is the bearer token the fake accepts now.
func (s *Server) AccessToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accessToken
}

// SetAccessToken makes the fake accept only tok from now on, as when a
// token is rotated or revoked: accounts still holding the old one get
// code 190.
func (s *Server) SetAccessToken(tok string) {
	s.mu.Lock()
	s.accessToken = tok
	s.mu.Unlock()
}

// Client returns an HTTP client for the fake.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Credentials are the account's credentials JSON, pointing at the fake.
func (s *Server) Credentials() json.RawMessage {
	b, err := json.Marshal(whatsapp.Credentials{
		PhoneNumberID: s.phoneNumberID, AccessToken: s.AccessToken(), AppSecret: s.appSecret,
		VerifyToken: s.verifyToken, WABAID: WABAID, APIVersion: s.apiVersion, BaseURL: s.URL,
	})
	if err != nil {
		panic(err) // a struct of strings always encodes
	}
	return b
}

// Account is a WhatsApp channel account of tenantID using the fake.
func (s *Server) Account(tenantID, id string) channels.Account {
	return channels.Account{
		TenantID: tenantID, ID: id, Type: channels.WhatsApp, Name: "WhatsApp " + s.phoneNumberID,
		PublicKey: "wa-" + id, Credentials: s.Credentials(), SessionCost: channels.DefaultSessionCost, Enabled: true,
	}
}

// Sent returns the messages accepted so far, oldest first.
func (s *Server) Sent() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.sent...)
}

// Reads returns the message ids marked read so far.
func (s *Server) Reads() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.reads...)
}

// Rejected returns why requests were refused as invalid (auth, shape,
// limits), for test failure messages.
func (s *Server) Rejected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.rejected...)
}

// Requests counts every request the fake received.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Fail queues a fault for the next message sends.
func (s *Server) Fail(f Fault) {
	if f.Times == 0 {
		f.Times = 1
	}
	s.mu.Lock()
	s.faults = append(s.faults, &f)
	s.mu.Unlock()
}

// FailNext makes the next n sends answer status with body.
func (s *Server) FailNext(n, status int, body []byte) {
	s.Fail(Fault{Status: status, Body: body, Times: n})
}

// ClearFaults drops every queued fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// SetLatency delays every answer by d (0 for none).
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	s.latency = d
	s.mu.Unlock()
}

// CloseWindow makes free-form sends to a recipient fail with 131047, as
// when the customer last wrote more than 24 hours ago; templates still go.
func (s *Server) CloseWindow(to string) {
	s.mu.Lock()
	s.closed[normalise(to)] = true
	s.mu.Unlock()
}

// OpenWindow undoes CloseWindow.
func (s *Server) OpenWindow(to string) {
	s.mu.Lock()
	delete(s.closed, normalise(to))
	s.mu.Unlock()
}

// AddMedia stores a file the fake serves through the two-step media
// download.
func (s *Server) AddMedia(id, mime string, data []byte) {
	s.mu.Lock()
	s.media[id] = mediaFile{mime: mime, data: append([]byte(nil), data...)}
	s.mu.Unlock()
}

// serve routes a request.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	// Read the body first: the server notices a client that gave up only
	// once the body is consumed, and latency must end with the client.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		s.reject(w, http.StatusRequestEntityTooLarge, InvalidParameterError("request body over 1 MiB"), "body: "+err.Error())
		return
	}
	s.mu.Lock()
	s.requests++
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
	}
	if !s.authorized(r) {
		s.reject(w, http.StatusUnauthorized, OAuthError(190, 0, "Invalid OAuth access token - Cannot parse access token"),
			"bad or missing bearer token")
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 2 && parts[0] == "media" && r.Method == http.MethodGet:
		s.download(w, parts[1])
	case len(parts) == 2 && parts[0] == s.apiVersion && r.Method == http.MethodGet:
		s.mediaInfo(w, parts[1])
	case len(parts) == 3 && parts[0] == s.apiVersion && parts[2] == "messages" && r.Method == http.MethodPost:
		if parts[1] != s.phoneNumberID {
			s.reject(w, http.StatusBadRequest, unknownObject("post", parts[1]), "unknown phone number id "+parts[1])
			return
		}
		s.messages(w, r, body)
	default:
		s.reject(w, http.StatusBadRequest, GraphError(100, "GraphMethodException", "Unsupported request",
			"Unknown path components: "+r.URL.Path), r.Method+" "+r.URL.Path+" is not a Graph API route of the fake")
	}
}

func (s *Server) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && tok == s.AccessToken()
}

// reject answers an invalid request and remembers why.
func (s *Server) reject(w http.ResponseWriter, status int, body []byte, why string) {
	s.mu.Lock()
	s.rejected = append(s.rejected, why)
	s.mu.Unlock()
	writeJSON(w, status, nil, body)
}

// messages handles POST /{version}/{phone-number-id}/messages: a send or
// a mark-as-read.
func (s *Server) messages(w http.ResponseWriter, r *http.Request, raw []byte) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		s.reject(w, http.StatusBadRequest, InvalidParameterError("Content-Type must be application/json"), "content type "+ct)
		return
	}
	var body json.RawMessage
	if err := json.Unmarshal(raw, &body); err != nil {
		s.reject(w, http.StatusBadRequest, InvalidParameterError("request body is not JSON"), "body: "+err.Error())
		return
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		s.reject(w, http.StatusBadRequest, InvalidParameterError("request body has wrongly typed fields"), "body: "+err.Error())
		return
	}
	if req.MessagingProduct != "whatsapp" {
		s.reject(w, http.StatusBadRequest, InvalidParameterError("The parameter messaging_product is required."), "messaging_product missing")
		return
	}
	if req.Status != "" {
		if req.Status != "read" || req.MessageID == "" {
			s.reject(w, http.StatusBadRequest, InvalidParameterError("status must be read with a message_id"), "bad mark read")
			return
		}
		s.mu.Lock()
		s.reads = append(s.reads, req.MessageID)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, nil, []byte(`{"success":true}`))
		return
	}
	if why := req.validate(); why != "" {
		s.reject(w, http.StatusBadRequest, InvalidParameterError(why), why)
		return
	}
	to := normalise(req.To)
	s.mu.Lock()
	if f := s.takeFault(to); f != nil {
		s.mu.Unlock()
		b := f.Body
		if b == nil {
			b = GraphError(131000, "OAuthException", "Something went wrong", "injected failure")
		}
		writeJSON(w, f.Status, f.Header, b)
		return
	}
	if s.closed[to] && req.Type != "template" {
		s.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, nil, ReengagementError())
		return
	}
	s.seq++
	id := wamid(s.seq)
	m := Message{ID: id, To: req.To, Type: req.Type, Body: body, At: time.Now()}
	if req.Text != nil {
		m.Text = req.Text.Body
	}
	if req.Interactive != nil {
		m.Text = req.Interactive.Body.Text
	}
	if req.Context != nil {
		m.ReplyTo = req.Context.MessageID
	}
	s.sent = append(s.sent, m)
	s.mu.Unlock()
	resp, _ := json.Marshal(map[string]any{
		"messaging_product": "whatsapp",
		"contacts":          []map[string]string{{"input": req.To, "wa_id": to}},
		"messages":          []map[string]string{{"id": id}},
	})
	writeJSON(w, http.StatusOK, nil, resp)
}

// takeFault consumes the next fault that applies to a send to to.
// s.mu must be held.
func (s *Server) takeFault(to string) *Fault {
	for i, f := range s.faults {
		if f.To != "" && normalise(f.To) != to {
			continue
		}
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
			}
		}
		return f
	}
	return nil
}

// mediaInfo handles GET /{version}/{media-id}.
func (s *Server) mediaInfo(w http.ResponseWriter, id string) {
	s.mu.Lock()
	f, ok := s.media[id]
	s.mu.Unlock()
	if !ok {
		s.reject(w, http.StatusBadRequest, unknownObject("get", id), "unknown media id "+id)
		return
	}
	sum := sha256.Sum256(f.data)
	b, _ := json.Marshal(map[string]any{
		"url":               s.URL + "/media/" + id,
		"mime_type":         f.mime,
		"sha256":            hex.EncodeToString(sum[:]),
		"file_size":         len(f.data),
		"id":                id,
		"messaging_product": "whatsapp",
	})
	writeJSON(w, http.StatusOK, nil, b)
}

// download serves a media file's bytes.
func (s *Server) download(w http.ResponseWriter, id string) {
	s.mu.Lock()
	f, ok := s.media[id]
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, nil)
		return
	}
	w.Header().Set("Content-Type", f.mime)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(f.data)
}

func writeJSON(w http.ResponseWriter, status int, hdr http.Header, body []byte) {
	for k, vs := range hdr {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// wamid builds a message id shaped like WhatsApp's.
func wamid(seq uint64) string {
	var b [12]byte
	copy(b[:4], "HBgL")
	binary.BigEndian.PutUint64(b[4:], seq)
	return "wamid." + base64.StdEncoding.EncodeToString(b[:])
}

// normalise compares recipients as WhatsApp does: digits only.
func normalise(to string) string {
	var b strings.Builder
	for _, r := range to {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// fbtrace is a constant trace id: real ones are opaque too.
const fbtrace = "AbCdEfGhIjKlMnOpQrStUvW"

// GraphError is a Graph API error body: {"error": {...}}.
func GraphError(code int, typ, message, details string) []byte {
	e := map[string]any{"message": message, "type": typ, "code": code, "fbtrace_id": fbtrace}
	if details != "" {
		e["error_data"] = map[string]string{"messaging_product": "whatsapp", "details": details}
	}
	b, _ := json.Marshal(map[string]any{"error": e})
	return b
}

// OAuthError is an authentication failure body (code 190: the token is
// invalid or expired; subcode 463: expired).
func OAuthError(code, subcode int, message string) []byte {
	e := map[string]any{"message": message, "type": "OAuthException", "code": code, "fbtrace_id": fbtrace}
	if subcode != 0 {
		e["error_subcode"] = subcode
	}
	b, _ := json.Marshal(map[string]any{"error": e})
	return b
}

// ExpiredTokenError is the answer to an expired access token (HTTP 401).
func ExpiredTokenError() []byte {
	return OAuthError(190, 463, "Error validating access token: Session has expired.")
}

// InvalidParameterError is code 100, the answer to a malformed request (HTTP 400).
func InvalidParameterError(details string) []byte {
	return GraphError(100, "OAuthException", "(#100) Invalid parameter", details)
}

// ReengagementError is code 131047: more than 24 hours since the customer
// last wrote (HTTP 400).
func ReengagementError() []byte {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{
		"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
		"error_data": map[string]string{"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
		"href":       "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
		"fbtrace_id": fbtrace,
	}})
	return b
}

// ThroughputError is code 130429: the number's messages-per-second
// throughput was exceeded (HTTP 429).
func ThroughputError() []byte {
	return GraphError(130429, "OAuthException", "(#130429) Rate limit hit",
		"Cloud API message throughput has been reached.")
}

// PairRateError is code 131056: too many messages to the same customer in
// a short time (HTTP 429).
func PairRateError() []byte {
	return GraphError(131056, "OAuthException", "(#131056) (Business Account, Consumer Account) pair rate limit hit",
		"Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.")
}

// UndeliverableError is code 131026: the recipient cannot receive
// WhatsApp messages (HTTP 400).
func UndeliverableError() []byte {
	return GraphError(131026, "OAuthException", "(#131026) Message Undeliverable",
		"Message failed to send because the recipient is not a WhatsApp user or has not accepted the terms.")
}

// unknownObject is Graph's answer to an id that does not exist.
func unknownObject(verb, id string) []byte {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{
		"message": fmt.Sprintf("Unsupported %s request. Object with ID '%s' does not exist, cannot be loaded due to missing permissions, or does not support this operation.", verb, id),
		"type":    "GraphMethodException", "code": 100, "error_subcode": 33, "fbtrace_id": fbtrace,
	}})
	return b
}
