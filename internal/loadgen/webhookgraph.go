package loadgen

// The fake WhatsApp Cloud API (Graph API) of `switchboard bench webhook`.
// The server under test answers the bench's customers through its outbox,
// which posts to the account's base_url; pointing that at this in-process
// server keeps the bench off the real provider, lets it count what the
// server sent, and checks that every answer went to one of the run's
// customers with the run's token. It is the bench's own small server (the
// fake in channels/whatsapp/whatsapptest is for tests and needs a
// testing.T).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxGraphBody bounds a send request the fake reads; real sends are a
// few hundred bytes.
const maxGraphBody = 64 << 10

// graphSend is what the fake reads of a Cloud API send request.
type graphSend struct {
	MessagingProduct string `json:"messaging_product"`
	To               string `json:"to"`
	Type             string `json:"type"`
	// Status "read" with MessageID is a read receipt, not a message.
	Status    string `json:"status"`
	MessageID string `json:"message_id"`
	Text      *struct {
		Body string `json:"body"`
	} `json:"text"`
}

// parseGraphSend decodes and checks a send request body the way the
// Cloud API would before accepting it: WhatsApp as the product, and a
// recipient and a type for a message, or a message id for a read receipt.
func parseGraphSend(body []byte) (graphSend, error) {
	var s graphSend
	if err := json.Unmarshal(body, &s); err != nil {
		return s, fmt.Errorf("body is not a JSON object: %v", err)
	}
	if s.MessagingProduct != "whatsapp" {
		return s, errors.New(`messaging_product must be "whatsapp"`)
	}
	if s.Status != "" {
		if s.Status != "read" || s.MessageID == "" {
			return s, errors.New(`a status update must be "read" with a message_id`)
		}
		return s, nil
	}
	if s.To == "" || s.Type == "" {
		return s, errors.New("to and type are required")
	}
	if s.Type == "text" && (s.Text == nil || s.Text.Body == "") {
		return s, errors.New("text.body is required for a text message")
	}
	return s, nil
}

// graphCounts are the fake's counters at one moment.
type graphCounts struct {
	// Sent: messages accepted, to one of the run's customers.
	Sent int64 `json:"sent"`
	// Reads: read receipts accepted.
	Reads int64 `json:"reads"`
	// UnknownRecipient: sends to someone who is not a customer of the run
	// (accepted, as the real API would, but a routing fault).
	UnknownRecipient int64 `json:"unknown_recipient"`
	// Rejected: requests refused (wrong token, path, phone number id or
	// body): the server sent something the real API would refuse too.
	Rejected int64 `json:"rejected"`
}

// fakeGraph is a running fake Graph API.
type fakeGraph struct {
	url     string
	srv     *http.Server
	done    chan struct{}
	version string
	token   string
	runID   string
	// phones are the phone-number ids of the run's accounts.
	phones map[string]bool
	// customer reports whether a wa_id is one of the run's customers.
	customer func(waID string) bool
	latency  time.Duration

	sent, reads, unknown, rejected atomic.Int64
	seq                            atomic.Uint64

	mu       sync.Mutex
	firstBad string // guarded by mu: the first refusal, for the report
}

// startFakeGraph listens on a free loopback port and serves the Graph API
// for the given phone-number ids. Every request is answered after latency.
func startFakeGraph(version, token, runID string, phones []string, customer func(string) bool, latency time.Duration) (*fakeGraph, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fake graph api: %w", err)
	}
	g := &fakeGraph{
		url: "http://" + ln.Addr().String(), done: make(chan struct{}), version: version, token: token, runID: runID,
		phones: map[string]bool{}, customer: customer, latency: latency,
	}
	for _, p := range phones {
		g.phones[p] = true
	}
	g.srv = &http.Server{Handler: http.HandlerFunc(g.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(g.done)
		_ = g.srv.Serve(ln) // ErrServerClosed after close
	}()
	return g, nil
}

// close stops the fake, waiting up to the context for requests in flight.
func (g *fakeGraph) close(ctx context.Context) {
	_ = g.srv.Shutdown(ctx)
	<-g.done
}

func (g *fakeGraph) counts() graphCounts {
	return graphCounts{Sent: g.sent.Load(), Reads: g.reads.Load(), UnknownRecipient: g.unknown.Load(), Rejected: g.rejected.Load()}
}

func (g *fakeGraph) firstRefusal() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.firstBad
}

// refuse answers with a Graph error body and counts the refusal.
func (g *fakeGraph) refuse(w http.ResponseWriter, status, code int, msg string) {
	g.rejected.Add(1)
	g.mu.Lock()
	if g.firstBad == "" {
		g.firstBad = fmt.Sprintf("%d %s", status, msg)
	}
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": "OAuthException", "code": code}})
	_, _ = w.Write(b)
}

// serve handles POST /{version}/{phone-number-id}/messages.
func (g *fakeGraph) serve(w http.ResponseWriter, r *http.Request) {
	if g.latency > 0 {
		t := time.NewTimer(g.latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if r.Method != http.MethodPost || len(parts) != 3 || parts[0] != g.version || parts[2] != "messages" {
		g.refuse(w, http.StatusNotFound, 100, fmt.Sprintf("unsupported request %s %s", r.Method, r.URL.Path))
		return
	}
	if !g.phones[parts[1]] {
		g.refuse(w, http.StatusBadRequest, 100, "unknown phone number id "+parts[1])
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+g.token {
		g.refuse(w, http.StatusUnauthorized, 190, "invalid OAuth access token")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxGraphBody+1))
	if err != nil || len(body) > maxGraphBody {
		g.refuse(w, http.StatusBadRequest, 100, "unreadable or oversized body")
		return
	}
	s, err := parseGraphSend(body)
	if err != nil {
		g.refuse(w, http.StatusBadRequest, 100, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if s.Status != "" {
		g.reads.Add(1)
		_, _ = w.Write([]byte(`{"success":true}`))
		return
	}
	if g.customer(s.To) {
		g.sent.Add(1)
	} else {
		g.unknown.Add(1)
	}
	id := "wamid.out." + g.runID + "." + strconv.FormatUint(g.seq.Add(1), 36)
	resp, _ := json.Marshal(map[string]any{
		"messaging_product": "whatsapp",
		"contacts":          []map[string]string{{"input": s.To, "wa_id": s.To}},
		"messages":          []map[string]string{{"id": id}},
	})
	_, _ = w.Write(resp)
}
