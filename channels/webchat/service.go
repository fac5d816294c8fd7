package webchat

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/realtime"
	"github.com/switchboard-acd/switchboard/session"
)

// TokenTTL is how long a visitor token lasts; the widget renews it by
// presenting the old one.
const TokenTTL = 30 * 24 * time.Hour

// signatureSkew bounds the age of an app's user signature.
const signatureSkew = 10 * time.Minute

// Names resolves an agent's display name for the customer.
type Names interface {
	AgentName(ctx context.Context, tenantID, agentID string) string
}

// Service runs the web-chat channel.
type Service struct {
	accounts channels.AccountStore
	engine   *session.Engine
	bus      *realtime.Bus
	signer   *Signer
	names    Names
	clock    clock.Clock
	log      *slog.Logger

	mu        sync.Mutex
	customers map[string]session.Customer // by tenant|visitor|account; guarded by mu
}

// NewService wires the channel.
func NewService(accounts channels.AccountStore, engine *session.Engine, bus *realtime.Bus, signer *Signer, names Names, clk clock.Clock, log *slog.Logger) *Service {
	return &Service{accounts: accounts, engine: engine, bus: bus, signer: signer, names: names, clock: clk, log: log,
		customers: map[string]session.Customer{}}
}

// VisitorRequest asks for a visitor token (docs/webchat-protocol.md).
type VisitorRequest struct {
	VisitorToken string `json:"visitor_token,omitempty"`
	UserID       string `json:"user_id,omitempty"`
	TS           int64  `json:"ts,omitempty"`
	Signature    string `json:"signature,omitempty"`
	Name         string `json:"name,omitempty"`
}

// VisitorResponse carries a visitor token.
type VisitorResponse struct {
	Token          string    `json:"token"`
	VisitorID      string    `json:"visitor_id"`
	ConversationID string    `json:"conversation_id"`
	ExpiresAt      time.Time `json:"expires_at"`
}

// IssueVisitor returns a token for an anonymous visitor (new, or the one
// named by a still valid old token of the same account) or for an app user
// whose id the app signed.
func (s *Service) IssueVisitor(ctx context.Context, key string, req VisitorRequest) (VisitorResponse, error) {
	const op = "issue visitor token"
	acct, err := s.accounts.AccountByKey(ctx, key)
	if errs.Is(err, errs.NotFound) {
		return VisitorResponse{}, errs.E(op, errs.NotFound, "no web-chat account %q", key)
	}
	if err != nil {
		return VisitorResponse{}, errs.Wrap(op, err)
	}
	if acct.Type != channels.WebChat {
		return VisitorResponse{}, errs.E(op, errs.NotFound, "no web-chat account %q", key)
	}
	now := s.clock.Now()
	c := Claims{TenantID: acct.TenantID, AccountID: acct.ID, Expires: now.Add(TokenTTL).Unix(), Name: trimName(req.Name)}
	switch {
	case req.UserID != "" || req.Signature != "":
		if err := CheckUserSignature(acct.Secret, req.UserID, req.TS, req.Signature, now, signatureSkew); err != nil {
			return VisitorResponse{}, err
		}
		c.VisitorID = "u:" + req.UserID
	case req.VisitorToken != "":
		old, err := s.signer.Verify(req.VisitorToken, now)
		if err != nil || old.AccountID != acct.ID || old.TenantID != acct.TenantID || strings.HasPrefix(old.VisitorID, "u:") {
			c.VisitorID = NewVisitorID() // an invalid or foreign token just starts afresh
		} else {
			c.VisitorID = old.VisitorID
			if c.Name == "" {
				c.Name = old.Name
			}
		}
	default:
		c.VisitorID = NewVisitorID()
	}
	cu, err := s.customer(ctx, c)
	if err != nil {
		return VisitorResponse{}, errs.Wrap(op, err)
	}
	return VisitorResponse{Token: s.signer.Issue(c), VisitorID: c.VisitorID, ConversationID: cu.Conversation.ID,
		ExpiresAt: time.Unix(c.Expires, 0).UTC()}, nil
}

func trimName(n string) string {
	n = strings.TrimSpace(n)
	if r := []rune(n); len(r) > 80 {
		n = string(r[:80])
	}
	return n
}

// Authenticate verifies a visitor token and resolves the customer.
func (s *Service) Authenticate(ctx context.Context, token string) (session.Customer, error) {
	c, err := s.signer.Verify(token, s.clock.Now())
	if err != nil {
		return session.Customer{}, err
	}
	return s.customer(ctx, c)
}

// customer resolves (and caches: identities never move) the conversation of
// a visitor.
func (s *Service) customer(ctx context.Context, c Claims) (session.Customer, error) {
	k := c.TenantID + "|" + c.AccountID + "|" + c.VisitorID
	s.mu.Lock()
	cu, ok := s.customers[k]
	s.mu.Unlock()
	if ok {
		return cu, nil
	}
	name := c.Name
	if name == "" {
		name = "Visitor " + strings.TrimPrefix(strings.TrimPrefix(c.VisitorID, "v_"), "u:")[:min(6, len(c.VisitorID)-2)]
	}
	cu, err := s.engine.ResolveCustomer(ctx, c.TenantID, c.AccountID, string(channels.WebChat), c.VisitorID, name)
	if err != nil {
		return session.Customer{}, err
	}
	s.mu.Lock()
	if len(s.customers) > 100_000 {
		clear(s.customers)
	}
	s.customers[k] = cu
	s.mu.Unlock()
	return cu, nil
}

// Ack confirms a stored customer message.
type Ack struct {
	CID       string `json:"cid"`
	ID        string `json:"id"`
	Seq       int64  `json:"seq"`
	Duplicate bool   `json:"duplicate"`
}

// Send stores a customer message (WebSocket `send` and HTTP fallback).
// stored, if set, receives the ack as soon as the message is committed,
// before the bot answers.
func (s *Service) Send(ctx context.Context, cu session.Customer, cid, text string, stored func(Ack)) (Ack, error) {
	in := session.Incoming{ClientMsgID: cid, Text: text}
	if stored != nil {
		in.Stored = func(m session.Message, dup bool) { stored(Ack{CID: cid, ID: m.ID, Seq: m.Seq, Duplicate: dup}) }
	}
	m, dup, err := s.engine.Receive(ctx, cu, in)
	if err != nil {
		return Ack{}, err
	}
	return Ack{CID: cid, ID: m.ID, Seq: m.Seq, Duplicate: dup}, nil
}

// WireMessage is a message as the widget sees it.
type WireMessage struct {
	ID         string    `json:"id"`
	Seq        int64     `json:"seq"`
	CID        string    `json:"cid,omitempty"`
	Direction  string    `json:"direction"`
	SenderKind string    `json:"sender_kind"`
	SenderName string    `json:"sender_name,omitempty"`
	Type       string    `json:"type"`
	Text       string    `json:"text"`
	CreatedAt  time.Time `json:"created_at"`
}

func (s *Service) wire(ctx context.Context, m session.Message) WireMessage {
	w := WireMessage{ID: m.ID, Seq: m.Seq, CID: m.ClientMsgID, Direction: string(m.Direction), SenderKind: string(m.SenderKind),
		Type: string(m.Type), Text: m.Text(), CreatedAt: m.CreatedAt}
	switch m.SenderKind {
	case session.SenderAgent:
		w.SenderName = s.names.AgentName(ctx, m.TenantID, m.SenderID)
	case session.SenderBot:
		w.SenderName = "Assistant"
	}
	return w
}

// History lists messages after a sequence number.
func (s *Service) History(ctx context.Context, cu session.Customer, after int64, limit int) ([]WireMessage, int64, error) {
	if limit <= 0 || limit > 500 {
		limit = 500
	}
	ms, err := s.engine.Store().MessageListAfter(ctx, cu.TenantID, cu.Conversation.ID, after, limit)
	if err != nil {
		return nil, 0, errs.Wrap("history", err)
	}
	out := make([]WireMessage, len(ms))
	last := after
	for i, m := range ms {
		out[i] = s.wire(ctx, m)
		last = m.Seq
	}
	return out, last, nil
}

// MarkRead records the visitor's read watermark.
func (s *Service) MarkRead(ctx context.Context, cu session.Customer, seq int64) error {
	_, err := s.engine.CustomerRead(ctx, cu, seq)
	return err
}

func convTopic(conversationID string) string { return "conv:" + conversationID }

// frame is a server frame.
type frame map[string]any

// publish sends a frame to the visitor's connections. Only the echo of a
// visitor's own message skips the connection it came from (which has its
// ack); every other frame reaches all of them, so the origin mark is
// dropped here unless echo is set.
func (s *Service) publish(ctx context.Context, tenantID, conversationID string, f frame, echo bool) {
	if !echo {
		ctx = realtime.WithOrigin(ctx, nil)
	}
	b, _ := json.Marshal(f)
	if err := s.bus.Publish(ctx, tenantID, convTopic(conversationID), b); err != nil {
		s.log.Warn("publish to visitor", "conversation", conversationID, "err", err)
	}
}

// Notifier returns the customer-side notifier: it pushes messages, agent
// typing, read watermarks and session changes of web-chat sessions to the
// visitor's connections on whatever node they are.
func (s *Service) Notifier() session.Notifier { return notifier{s} }

type notifier struct{ s *Service }

func (n notifier) ours(se session.Session) bool { return se.Channel == string(channels.WebChat) }

// SessionChanged implements session.Notifier: the visitor sees the state.
func (n notifier) SessionChanged(ctx context.Context, se session.Session, ev session.Event, prevAgentID string) {
	if !n.ours(se) {
		return
	}
	n.s.publish(ctx, se.TenantID, se.ConversationID, n.s.sessionFrame(ctx, se), false)
}

// sessionFrame describes a session to the visitor: its state, the agent's
// name and, while waiting, the place in the queue.
func (s *Service) sessionFrame(ctx context.Context, se session.Session) frame {
	f := frame{"type": "session", "state": se.State}
	if se.AgentID != "" {
		f["agent_name"] = s.names.AgentName(ctx, se.TenantID, se.AgentID)
	}
	if pos, _, err := s.engine.QueuePosition(ctx, se); err == nil && pos > 0 {
		f["queue_position"] = pos
	}
	return f
}

// SessionAssigned implements session.Notifier; SessionChanged tells the visitor.
func (n notifier) SessionAssigned(ctx context.Context, se session.Session, _ []session.Message) {}

// MessageCreated implements session.Notifier: the message reaches every tab.
func (n notifier) MessageCreated(ctx context.Context, se session.Session, m session.Message) {
	if !n.ours(se) {
		return
	}
	n.s.publish(ctx, se.TenantID, se.ConversationID, frame{"type": "message", "message": n.s.wire(ctx, m)}, m.Direction == session.Inbound)
}

// MessageUpdated implements session.Notifier; pins are agent-side only.
func (n notifier) MessageUpdated(ctx context.Context, se session.Session, m session.Message) {}

// Typing implements session.Notifier: the agent's typing reaches the visitor.
func (n notifier) Typing(ctx context.Context, se session.Session, from session.SenderKind, on bool) {
	if !n.ours(se) || from != session.SenderAgent {
		return
	}
	n.s.publish(ctx, se.TenantID, se.ConversationID, frame{"type": "typing", "on": on,
		"name": n.s.names.AgentName(ctx, se.TenantID, se.AgentID)}, false)
}

// Read implements session.Notifier: the agent side's read watermark.
func (n notifier) Read(ctx context.Context, se session.Session, by session.SenderKind, seq int64) {
	if !n.ours(se) || by != session.SenderAgent {
		return
	}
	n.s.publish(ctx, se.TenantID, se.ConversationID, frame{"type": "read", "seq": seq}, false)
}
