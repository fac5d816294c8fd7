// Package smstest is a fake of the Twilio-compatible Messages API for tests
// of the SMS channel and of whatever sends through it (the outbox, fallback),
// plus helpers that build signed webhook calls the way the provider does.
package smstest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/sms"
)

// Message is one message the fake accepted.
type Message struct {
	SID                 string
	To                  string
	From                string
	MessagingServiceSID string
	Body                string
	MediaURLs           []string
	StatusCallback      string
}

// Failure is an error response the fake gives instead of accepting a
// message: HTTP status, the provider's error code and message, and an
// optional Retry-After header value.
type Failure struct {
	Status     int
	Code       int
	Message    string
	RetryAfter string
}

// Server is the fake Messages API. It checks basic auth against one
// account, validates like the provider (To, From or MessagingServiceSid,
// Body or MediaUrl, Body length), records what it accepted, and can be told
// to fail the next calls or to answer slowly.
type Server struct {
	URL        string
	AccountSID string
	AuthToken  string

	srv *httptest.Server

	mu       sync.Mutex
	messages []Message     // guarded by mu
	failures []Failure     // guarded by mu; consumed front first
	latency  time.Duration // guarded by mu
	calls    int           // guarded by mu
}

// NewServer starts a fake for one provider account; Close stops it.
func NewServer(accountSID, authToken string) *Server {
	s := &Server{AccountSID: accountSID, AuthToken: authToken}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Credentials returns account credentials pointing at the fake.
func (s *Server) Credentials(from, statusCallbackURL string) json.RawMessage {
	b, _ := json.Marshal(sms.Credentials{AccountSID: s.AccountSID, AuthToken: s.AuthToken, From: from, BaseURL: s.URL, StatusCallbackURL: statusCallbackURL})
	return b
}

// FailNext makes the next n calls fail with f.
func (s *Server) FailNext(n int, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, f)
	}
}

// SetLatency delays every response by d (or until the caller gives up).
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	s.latency = d
	s.mu.Unlock()
}

// Messages returns a copy of the accepted messages, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Calls is how many requests reached the Messages endpoint, failed ones
// included.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func writeError(w http.ResponseWriter, f Failure) {
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.Status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"code": f.Code, "message": f.Message, "status": f.Status,
		"more_info": "https://www.twilio.com/docs/errors/" + strconv.Itoa(f.Code),
	})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	want := "/2010-04-01/Accounts/" + s.AccountSID + "/Messages.json"
	if r.URL.Path != want {
		writeError(w, Failure{Status: http.StatusNotFound, Code: 20404, Message: "The requested resource " + r.URL.Path + " was not found"})
		return
	}
	if r.Method != http.MethodPost {
		writeError(w, Failure{Status: http.StatusMethodNotAllowed, Code: 20004, Message: "Method not allowed"})
		return
	}
	// Reading the body first lets the server notice a caller that hangs
	// up during the simulated latency.
	if err := r.ParseForm(); err != nil {
		writeError(w, Failure{Status: http.StatusBadRequest, Code: 20001, Message: err.Error()})
		return
	}
	s.mu.Lock()
	s.calls++
	latency := s.latency
	var fail *Failure
	if len(s.failures) > 0 {
		f := s.failures[0]
		s.failures = s.failures[1:]
		fail = &f
	}
	s.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != s.AccountSID || pass != s.AuthToken {
		writeError(w, Failure{Status: http.StatusUnauthorized, Code: 20003, Message: "Authenticate"})
		return
	}
	if fail != nil {
		writeError(w, *fail)
		return
	}
	m := Message{
		To: r.PostForm.Get("To"), From: r.PostForm.Get("From"), MessagingServiceSID: r.PostForm.Get("MessagingServiceSid"),
		Body: r.PostForm.Get("Body"), MediaURLs: r.PostForm["MediaUrl"], StatusCallback: r.PostForm.Get("StatusCallback"),
	}
	switch {
	case m.To == "":
		writeError(w, Failure{Status: http.StatusBadRequest, Code: 21604, Message: "A 'To' phone number is required."})
		return
	case m.From == "" && m.MessagingServiceSID == "":
		writeError(w, Failure{Status: http.StatusBadRequest, Code: 21603, Message: "A 'From' or 'MessagingServiceSid' parameter is required to send a message"})
		return
	case m.Body == "" && len(m.MediaURLs) == 0:
		writeError(w, Failure{Status: http.StatusBadRequest, Code: 21602, Message: "Message body is required."})
		return
	case len(utf16.Encode([]rune(m.Body))) > sms.MaxBodyLength:
		writeError(w, Failure{Status: http.StatusBadRequest, Code: 21617, Message: "The concatenated message body exceeds the 1600 character limit."})
		return
	}
	m.SID = newSID("SM")
	s.mu.Lock()
	s.messages = append(s.messages, m)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"sid": m.SID, "account_sid": s.AccountSID, "to": m.To, "from": m.From,
		"messaging_service_sid": nilIfEmpty(m.MessagingServiceSID), "body": m.Body, "status": "queued",
		"num_media": strconv.Itoa(len(m.MediaURLs)), "api_version": "2010-04-01",
	})
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// newSID makes a provider-style id: a two-letter prefix and 32 hex digits.
func newSID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// SignedRequest builds the webhook call the provider would make: a
// form-encoded POST of form to rawURL, signed with authToken.
func SignedRequest(authToken, rawURL string, form url.Values) channels.WebhookRequest {
	u, _ := url.Parse(rawURL)
	var q url.Values
	if u != nil {
		q = u.Query()
	}
	return channels.WebhookRequest{
		Method: http.MethodPost,
		URL:    rawURL,
		Query:  q,
		Header: http.Header{
			"Content-Type":      {"application/x-www-form-urlencoded"},
			sms.SignatureHeader: {sms.Signature(authToken, rawURL, form)},
		},
		Body: []byte(form.Encode()),
	}
}

// InboundForm is the form of an inbound SMS (NumMedia 0) as the provider
// posts it, with a fresh MessageSid unless sid is given.
func InboundForm(accountSID, from, to, body, sid string) url.Values {
	if sid == "" {
		sid = newSID("SM")
	}
	return url.Values{
		"ToCountry": {"US"}, "SmsMessageSid": {sid}, "NumMedia": {"0"}, "SmsSid": {sid},
		"SmsStatus": {"received"}, "Body": {body}, "To": {to}, "NumSegments": {"1"},
		"MessageSid": {sid}, "AccountSid": {accountSID}, "From": {from}, "ApiVersion": {"2010-04-01"},
	}
}

// WithMedia adds MMS attachments (URL, content type pairs) to an inbound
// form.
func WithMedia(form url.Values, media ...[2]string) url.Values {
	form.Set("NumMedia", strconv.Itoa(len(media)))
	for i, m := range media {
		form.Set(fmt.Sprintf("MediaUrl%d", i), m[0])
		form.Set(fmt.Sprintf("MediaContentType%d", i), m[1])
	}
	return form
}

// StatusForm is the form of a delivery report for message sid; errorCode is
// set on failed and undelivered reports.
func StatusForm(accountSID, sid, to, status, errorCode string) url.Values {
	f := url.Values{
		"MessageStatus": {status}, "SmsStatus": {status}, "ApiVersion": {"2010-04-01"},
		"SmsSid": {sid}, "MessageSid": {sid}, "AccountSid": {accountSID}, "To": {to}, "From": {"+15005550006"},
	}
	if errorCode != "" {
		f.Set("ErrorCode", errorCode)
	}
	if strings.TrimSpace(to) == "" {
		f.Del("To")
	}
	return f
}
