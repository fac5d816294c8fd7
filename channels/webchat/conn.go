package webchat

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/realtime"
	"github.com/switchboard-acd/switchboard/session"
)

// MaxFrameBytes is the largest client frame accepted; the transport closes
// the connection on anything bigger.
const MaxFrameBytes = 64 << 10

// sendQueue bounds the frames waiting to be written to one connection; a
// client that falls this far behind is disconnected and resumes later.
const sendQueue = 512

// Transport is one client's socket as the protocol sees it. The HTTP layer
// adapts its WebSocket library to it.
type Transport interface {
	// Read returns the next text frame.
	Read() ([]byte, error)
	// Write sends one text frame.
	Write([]byte) error
	// Close ends the connection.
	Close() error
}

// conn is one visitor connection: the reader loop handles client frames;
// frames to the client go through a realtime.Sender.
type conn struct {
	*realtime.Sender
	s  *Service
	cu session.Customer
}

// reply queues a frame answering the client. Unlike Send it waits for room
// in the queue: it runs on the reader goroutine, so a slow client only slows
// itself (a long resume is paced by the writer).
func (c *conn) reply(f frame) {
	b, _ := json.Marshal(f)
	c.SendWait(b)
}

func (c *conn) fail(code errs.Code, msg, ref string) {
	f := frame{"type": "error", "code": code, "message": msg}
	if ref != "" {
		f["ref"] = ref
	}
	c.reply(f)
}

// clientFrame is any client frame; fields are used per type.
type clientFrame struct {
	Type  string `json:"type"`
	CID   string `json:"cid"`
	Text  string `json:"text"`
	After int64  `json:"after"`
	On    bool   `json:"on"`
	Seq   int64  `json:"seq"`
}

// Serve runs the protocol on an authenticated visitor's connection until it
// closes or ctx ends (node shutdown closes every connection, and clients
// reconnect elsewhere and resume).
func (s *Service) Serve(ctx context.Context, t Transport, cu session.Customer) {
	c := &conn{Sender: realtime.NewSender(t.Write, t.Close, sendQueue), s: s, cu: cu}
	defer c.Close()
	stop := context.AfterFunc(ctx, c.Close)
	defer stop()

	conv, err := s.engine.Store().ConversationGet(ctx, cu.TenantID, cu.Conversation.ID)
	if err != nil {
		c.fail(errs.CodeOf(err), "could not load the conversation", "")
		return
	}
	c.reply(frame{"type": "hello", "conversation_id": conv.ID, "last_seq": conv.LastSeq, "agent_read_seq": conv.AgentReadSeq})
	if se, ok, err := s.engine.CurrentSession(ctx, cu.TenantID, conv.ID); err == nil && ok && se.State.Open() {
		c.reply(s.sessionFrame(ctx, se)) // a reloaded widget shows its status at once
	}
	// Subscribe after queueing hello, so hello is the first frame; anything
	// committed in between is delivered by the client's resume.
	topic := convTopic(cu.Conversation.ID)
	s.bus.Subscribe(cu.TenantID, topic, c)
	defer s.bus.Unsubscribe(cu.TenantID, topic, c)
	for {
		b, err := t.Read()
		if err != nil {
			return
		}
		c.handle(ctx, b)
	}
}

func (c *conn) handle(ctx context.Context, b []byte) {
	var f clientFrame
	if err := json.Unmarshal(b, &f); err != nil {
		c.fail(errs.Invalid, "malformed frame: "+err.Error(), "")
		return
	}
	switch f.Type {
	case "send":
		if strings.TrimSpace(f.CID) == "" {
			c.fail(errs.Invalid, "send needs a cid", "")
			return
		}
		_, err := c.s.Send(realtime.WithOrigin(ctx, c), c.cu, f.CID, f.Text, func(ack Ack) {
			c.reply(frame{"type": "ack", "cid": ack.CID, "id": ack.ID, "seq": ack.Seq, "duplicate": ack.Duplicate})
		})
		if err != nil {
			c.fail(errs.CodeOf(err), errs.MessageOf(err), f.CID)
		}
	case "resume":
		c.resume(ctx, f.After)
	case "typing":
		if err := c.s.engine.CustomerTyping(ctx, c.cu, f.On); err != nil {
			c.fail(errs.CodeOf(err), errs.MessageOf(err), "")
		}
	case "read":
		if err := c.s.MarkRead(ctx, c.cu, f.Seq); err != nil {
			c.fail(errs.CodeOf(err), errs.MessageOf(err), "")
		}
	case "end":
		if err := c.s.engine.CustomerLeft(ctx, c.cu); err != nil {
			c.fail(errs.CodeOf(err), errs.MessageOf(err), "")
		}
	case "ping":
		c.reply(frame{"type": "pong"})
	default:
		c.fail(errs.Invalid, "unknown frame type "+strconvQuote(f.Type), "")
	}
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// resume replays everything after seq in pages, then says resumed.
func (c *conn) resume(ctx context.Context, after int64) {
	if after < 0 {
		after = 0
	}
	for {
		ms, last, err := c.s.History(ctx, c.cu, after, 200)
		if err != nil {
			c.fail(errs.CodeOf(err), errs.MessageOf(err), "")
			return
		}
		for _, m := range ms {
			c.reply(frame{"type": "message", "message": m})
		}
		after = last
		if len(ms) < 200 {
			break
		}
	}
	c.reply(frame{"type": "resumed", "last_seq": after})
}
