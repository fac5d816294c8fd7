package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// agent is one bench agent account with its console WebSocket. It maps
// assigned sessions to customers, observes customer messages and, with
// replies on, answers each over REST like the web console does.
type agent struct {
	r        *run
	idx      int
	username string
	password string
	id       string
	token    string

	helloOnce sync.Once
	hello     chan struct{}
	closing   atomic.Bool

	mu       sync.Mutex
	conn     *websocket.Conn
	sessions []string // bench sessions assigned to this agent, for cleanup
}

// consoleFrame is a console server frame (docs/console-protocol.md).
type consoleFrame struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

type consoleMessage struct {
	SessionID   string `json:"session_id"`
	Direction   string `json:"direction"`
	SenderKind  string `json:"sender_kind"`
	ClientMsgID string `json:"client_msg_id"`
	Body        struct {
		Text string `json:"text"`
	} `json:"body"`
}

// connect dials the console WebSocket and waits for hello, so that the
// agent is listening before it turns ready and can be assigned sessions.
func (a *agent) connect(ctx context.Context) error {
	conn, err := a.r.api.dialWS(ctx, "/api/v1/ws", a.token, "")
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.conn = conn
	a.mu.Unlock()
	go a.readLoop(a.r.readCtx)
	select {
	case <-a.hello:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(10 * time.Second):
		return fmt.Errorf("agent %s: no hello within 10s", a.username)
	}
}

// readLoop handles frames until the run ends. A dropped console
// connection is re-dialled; the console protocol has no resume, so
// messages pushed meanwhile are missed and show up as lost, which is the
// truth about what an agent would have seen.
func (a *agent) readLoop(ctx context.Context) {
	for {
		a.mu.Lock()
		conn := a.conn
		a.mu.Unlock()
		for {
			_, b, err := conn.Read(ctx)
			if err != nil {
				break
			}
			a.handle(ctx, b, time.Now())
		}
		if a.closing.Load() || ctx.Err() != nil {
			return
		}
		a.r.agentReconnects.Add(1)
		backoff := 100 * time.Millisecond
		for {
			conn, err := a.r.api.dialWS(ctx, "/api/v1/ws", a.token, "")
			if err == nil {
				a.mu.Lock()
				a.conn = conn
				a.mu.Unlock()
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			if a.closing.Load() {
				return
			}
			backoff = min(2*backoff, 2*time.Second)
		}
	}
}

// handle does as little as possible on the reader goroutine: the server
// disconnects a console that falls 1024 frames behind, so replies run on
// their own goroutines.
func (a *agent) handle(ctx context.Context, b []byte, now time.Time) {
	var f consoleFrame
	if err := json.Unmarshal(b, &f); err != nil {
		return
	}
	switch f.Type {
	case "hello":
		a.helloOnce.Do(func() { close(a.hello) })
	case "session.assigned":
		var d struct {
			Session struct {
				ID string `json:"id"`
			} `json:"session"`
			Messages []consoleMessage `json:"messages"`
		}
		if json.Unmarshal(f.Data, &d) != nil {
			return
		}
		idx := -1
		for _, m := range d.Messages {
			if m.Direction == "in" {
				if idx = parseMarker(m.Body.Text, a.r.id); idx >= 0 {
					break
				}
			}
		}
		a.r.assigned(a, d.Session.ID, idx, now)
	case "message.created":
		var d struct {
			Message consoleMessage `json:"message"`
		}
		if json.Unmarshal(f.Data, &d) != nil {
			return
		}
		m := d.Message
		if m.Direction != "in" || m.SenderKind != "contact" || !strings.HasPrefix(m.ClientMsgID, "b") {
			return
		}
		if a.r.tr.atAgent(m.ClientMsgID, now) {
			go a.reply(ctx, m.SessionID, m.ClientMsgID)
		}
	case "session.removed":
		var d struct {
			SessionID string `json:"session_id"`
		}
		if json.Unmarshal(f.Data, &d) == nil {
			a.r.removed(d.SessionID)
		}
	}
}

// reply answers customer message cid. The reply's client_msg_id is "r"+cid
// so the customer can match it, and a retried POST would be deduplicated
// by the server.
func (a *agent) reply(ctx context.Context, sessionID, cid string) {
	now := time.Now()
	a.r.tr.replySending(cid, now)
	err := a.r.api.reply(ctx, a.token, sessionID, fmt.Sprintf("r %s %d", cid, now.UnixNano()), "r"+cid)
	a.r.tr.replyDone(cid, err)
	if err != nil {
		a.r.noteError("reply", err)
	}
}

// close ends the console connection without reconnecting.
func (a *agent) close() {
	a.closing.Store(true)
	a.mu.Lock()
	conn := a.conn
	a.mu.Unlock()
	if conn != nil {
		_ = conn.Close(websocket.StatusNormalClosure, "bench done")
	}
}
