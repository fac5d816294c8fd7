package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// customer is one web-chat visitor with its WebSocket. It follows the
// protocol's reliability rules (docs/webchat-protocol.md) rather than the
// happy path only: a dropped connection is re-dialled, resumed after the
// last contiguous seq and its unacknowledged sends are sent again with the
// same cid, so a server that drops connections shows up as reconnects and
// latency, not as a bench crash.
type customer struct {
	r      *run
	idx    int
	marker string // unique word in the hand-off text, see handoffText
	token  string
	// slots holds one token per message in flight; its capacity is the
	// window. The tracker takes a token out when a message completes.
	slots chan struct{}

	helloOnce sync.Once
	hello     chan struct{}
	closing   atomic.Bool

	mu      sync.Mutex
	conn    *websocket.Conn
	seen    map[int64]struct{} // seqs received
	contig  int64              // every seq ≤ contig has been received
	maxSeq  int64
	unacked map[string][]byte // cid → send frame, until acked or refused

	// Set under run.mu by the agent side.
	sessionID    string
	agent        *agent
	handoffAt    time.Time
	assignedOnce sync.Once
	assigned     chan struct{}
}

func newCustomer(r *run, idx, window int) *customer {
	return &customer{
		r: r, idx: idx, marker: fmt.Sprintf("bench-%s-c%d", r.id, idx),
		slots: make(chan struct{}, window), hello: make(chan struct{}),
		seen: map[int64]struct{}{}, unacked: map[string][]byte{}, assigned: make(chan struct{}),
	}
}

// handoffText asks the bot for a person: the hand-off word must be a
// separate word (the bot matches whole words), and the marker lets the
// agent that receives the session tell which customer it belongs to from
// the transcript in session.assigned.
func (c *customer) handoffText() string {
	return c.r.cfg.HandoffWord + " " + c.marker
}

// parseMarker returns the customer index named by a bench marker of run id
// in text, or -1.
func parseMarker(text, runID string) int {
	prefix := "bench-" + runID + "-c"
	for _, f := range strings.Fields(text) {
		if rest, ok := strings.CutPrefix(f, prefix); ok {
			n := 0
			if _, err := fmt.Sscanf(rest, "%d", &n); err == nil && fmt.Sprint(n) == rest {
				return n
			}
		}
	}
	return -1
}

// connect obtains a visitor token, dials the WebSocket and waits for hello.
func (c *customer) connect(ctx context.Context) error {
	tok, err := c.r.api.visitor(ctx, c.r.cfg.ChatKey)
	if err != nil {
		return err
	}
	c.token = tok
	conn, err := c.r.api.dialWS(ctx, "/webchat/ws", tok, "")
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.conn = conn
	c.mu.Unlock()
	go c.readLoop(c.r.readCtx)
	select {
	case <-c.hello:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(10 * time.Second):
		err = fmt.Errorf("customer %d: no hello within 10s", c.idx)
	}
	c.close() // not counted as connected, so clean-up would not close it
	return err
}

type sendFrame struct {
	Type string `json:"type"`
	CID  string `json:"cid"`
	Text string `json:"text"`
}

// send writes a send frame and keeps it for a resend until it is acked. A
// write error is not reported: the reader notices the broken connection
// and the resend after reconnecting delivers the message.
func (c *customer) send(cid, text string) {
	b, _ := json.Marshal(sendFrame{Type: "send", CID: cid, Text: text})
	c.mu.Lock()
	c.unacked[cid] = b
	conn := c.conn
	c.mu.Unlock()
	c.write(conn, b)
}

func (c *customer) write(conn *websocket.Conn, b []byte) {
	if conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(c.r.readCtx, 10*time.Second)
	defer cancel()
	_ = conn.Write(ctx, websocket.MessageText, b)
}

// sendLoop sends measured-phase messages until ctx ends, each only when a
// window slot is free and, with a rate target, when the pacer allows.
func (c *customer) sendLoop(ctx context.Context, p *pacer) {
	for n := 1; ; n++ {
		select {
		case c.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		if err := p.wait(ctx); err != nil {
			return
		}
		cid := fmt.Sprintf("b%d-%d", c.idx, n)
		now := time.Now()
		c.r.tr.sent(cid, c, now)
		time.AfterFunc(slotTimeout, func() { c.r.tr.expire(cid) })
		c.send(cid, fmt.Sprintf("m %d %d %d", c.idx, n, now.UnixNano()))
	}
}

// serverFrame is any web-chat server frame; fields are used per type.
// "message" is an object in message frames and a string in error frames,
// hence the raw field.
type serverFrame struct {
	Type      string          `json:"type"`
	CID       string          `json:"cid"`
	Seq       int64           `json:"seq"`
	Duplicate bool            `json:"duplicate"`
	Ref       string          `json:"ref"`
	Code      string          `json:"code"`
	Message   json.RawMessage `json:"message"`
	LastSeq   int64           `json:"last_seq"`
}

type wireMessage struct {
	Seq        int64  `json:"seq"`
	CID        string `json:"cid"`
	Direction  string `json:"direction"`
	SenderKind string `json:"sender_kind"`
}

func (c *customer) readLoop(ctx context.Context) {
	for {
		c.mu.Lock()
		conn := c.conn
		c.mu.Unlock()
		for {
			_, b, err := conn.Read(ctx)
			if err != nil {
				break
			}
			c.handle(b, time.Now())
		}
		if c.closing.Load() || ctx.Err() != nil {
			return
		}
		c.r.customerReconnects.Add(1)
		if !c.reconnect(ctx) {
			return
		}
	}
}

// reconnect re-dials with backoff, resumes after the last contiguous seq
// and resends every unacknowledged message with its original cid.
func (c *customer) reconnect(ctx context.Context) bool {
	backoff := 100 * time.Millisecond
	for {
		conn, err := c.r.api.dialWS(ctx, "/webchat/ws", c.token, "")
		if err == nil {
			c.mu.Lock()
			c.conn = conn
			after := c.contig
			pending := make([]string, 0, len(c.unacked))
			for cid := range c.unacked {
				pending = append(pending, cid)
			}
			slices.Sort(pending)
			frames := make([][]byte, len(pending))
			for i, cid := range pending {
				frames[i] = c.unacked[cid]
			}
			c.mu.Unlock()
			b, _ := json.Marshal(map[string]any{"type": "resume", "after": after})
			c.write(conn, b)
			for _, f := range frames {
				c.write(conn, f)
			}
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		if c.closing.Load() {
			return false
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (c *customer) handle(b []byte, now time.Time) {
	var f serverFrame
	if err := json.Unmarshal(b, &f); err != nil {
		c.r.tr.otherError()
		return
	}
	switch f.Type {
	case "hello":
		c.helloOnce.Do(func() {
			c.mu.Lock()
			c.contig = max(c.contig, f.LastSeq) // history before this run is not ours to track
			c.mu.Unlock()
			close(c.hello)
		})
	case "ack":
		c.mu.Lock()
		delete(c.unacked, f.CID)
		c.mu.Unlock()
		c.r.tr.acked(f.CID, now, f.Duplicate)
	case "message":
		var m wireMessage
		if json.Unmarshal(f.Message, &m) != nil {
			return
		}
		if !c.see(m.Seq) {
			return // a re-delivery during resume: the protocol says drop it
		}
		if m.Direction == "out" && m.SenderKind == "agent" {
			if cid, ok := strings.CutPrefix(m.CID, "r"); ok {
				c.r.tr.atCustomer(cid, now)
			}
		}
	case "error":
		if f.Ref == "" {
			c.r.tr.otherError()
			return
		}
		c.mu.Lock()
		delete(c.unacked, f.Ref)
		c.mu.Unlock()
		c.r.tr.failed(f.Ref)
	}
}

// see records seq and reports whether it is new.
func (c *customer) see(seq int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.seen[seq]; dup || seq <= c.contig {
		return false
	}
	c.seen[seq] = struct{}{}
	if seq < c.maxSeq {
		c.r.outOfOrder.Add(1)
	}
	c.maxSeq = max(c.maxSeq, seq)
	for {
		if _, ok := c.seen[c.contig+1]; !ok {
			break
		}
		delete(c.seen, c.contig+1) // below contig the watermark says it all
		c.contig++
	}
	return true
}

// close ends the connection without reconnecting.
func (c *customer) close() {
	c.closing.Store(true)
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		_ = conn.Close(websocket.StatusNormalClosure, "bench done")
	}
}
