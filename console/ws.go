package console

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/channels/webchat"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/realtime"
	"github.com/switchboard-acd/switchboard/session"
)

// wsTransport adapts a Fiber WebSocket to webchat.Transport. The library
// recycles its connection object when the handler returns, while writer
// goroutines and shutdown may still hold the transport: retire, deferred
// first in the handler, waits for them and turns later calls into no-ops.
type wsTransport struct {
	c       *websocket.Conn
	writeMu sync.Mutex   // serialises writes
	life    sync.RWMutex // held shared while c is used, exclusively by retire
	dead    bool         // c was handed back to the library; guarded by life
}

var errRetired = errors.New("websocket: connection closed")

// Read implements webchat.Transport.
func (t *wsTransport) Read() ([]byte, error) {
	_, b, err := t.c.ReadMessage() // only the handler's goroutine reads
	return b, err
}

// Write implements webchat.Transport; writes are serialised.
func (t *wsTransport) Write(b []byte) error {
	t.life.RLock()
	defer t.life.RUnlock()
	if t.dead {
		return errRetired
	}
	t.writeMu.Lock()
	defer t.writeMu.Unlock()
	_ = t.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return t.c.WriteMessage(websocket.TextMessage, b)
}

// Close ends the connection: a close frame (1001, going away), then
// deadlines in the past, which end the handler's blocked read and any
// blocked write. The socket itself is closed by fasthttp when the handler
// returns: closing a hijacked connection from here does nothing.
func (t *wsTransport) Close() error {
	t.life.RLock()
	defer t.life.RUnlock()
	if t.dead {
		return nil
	}
	now := time.Now()
	// WriteControl may run beside other writes; the net.Conn's deadlines
	// are safe from any goroutine (the websocket's own setters are not).
	_ = t.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), now.Add(time.Second))
	return t.c.NetConn().SetDeadline(now)
}

// retire ends every use of the connection before the handler returns it.
func (t *wsTransport) retire() {
	_ = t.Close()
	t.life.Lock()
	t.dead = true
	t.life.Unlock()
}

// liveConns are the node's open WebSockets, which Fiber does not track once
// hijacked; shutdown closes them gradually (lame-duck), so that thousands of
// clients do not reconnect to the other nodes in the same instant.
type liveConns struct {
	mu      sync.Mutex
	set     map[*wsTransport]struct{} // guarded by mu
	closing bool                      // guarded by mu
	empty   chan struct{}             // closed when set empties while closing; guarded by mu
}

func (l *liveConns) add(t *wsTransport) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing {
		return false
	}
	if l.set == nil {
		l.set = map[*wsTransport]struct{}{}
	}
	l.set[t] = struct{}{}
	return true
}

func (l *liveConns) remove(t *wsTransport) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.set, t)
	if l.closing && len(l.set) == 0 && l.empty != nil {
		close(l.empty)
		l.empty = nil
	}
}

// drain refuses new connections, closes the open ones spread over period
// and waits until their handlers have finished or ctx ends.
func (l *liveConns) drain(ctx context.Context, period time.Duration) error {
	l.mu.Lock()
	l.closing = true
	conns := make([]*wsTransport, 0, len(l.set))
	for t := range l.set {
		conns = append(conns, t)
	}
	var empty chan struct{}
	if len(l.set) > 0 {
		empty = make(chan struct{})
		l.empty = empty
	}
	l.mu.Unlock()
	if empty == nil {
		return nil
	}
	step := period / time.Duration(len(conns))
	for i, t := range conns {
		_ = t.Close()
		if step > 0 && i < len(conns)-1 {
			select {
			case <-time.After(step):
			case <-ctx.Done():
				for _, rest := range conns[i+1:] {
					_ = rest.Close()
				}
				return ctx.Err()
			}
		}
	}
	select {
	case <-empty:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wsConfig keeps idle connections small: 1 KiB read buffers and write
// buffers taken from a pool only while a frame is written.
var wsConfig = websocket.Config{ReadBufferSize: 1024, WriteBufferSize: 1024, WriteBufferPool: &sync.Pool{}}

// webchatUpgrade authenticates a visitor before the WebSocket upgrade, so a
// bad token is a plain 401.
func (s *Server) webchatUpgrade(c *fiber.Ctx) error {
	if !websocket.IsWebSocketUpgrade(c) {
		return errs.E("webchat ws", errs.Invalid, "WebSocket upgrade required")
	}
	cu, err := s.d.WebChat.Authenticate(c.UserContext(), c.Query("token"))
	if err != nil {
		return err
	}
	c.Locals("customer", cu)
	return c.Next()
}

func (s *Server) webchatWS() fiber.Handler {
	return websocket.New(func(c *websocket.Conn) {
		cu := c.Locals("customer").(session.Customer)
		c.SetReadLimit(webchat.MaxFrameBytes)
		s.d.Metrics.wsConns.WithLabelValues("webchat").Inc()
		defer s.d.Metrics.wsConns.WithLabelValues("webchat").Dec()
		t := &wsTransport{c: c}
		if !s.live.add(t) {
			return // shutting down
		}
		defer s.live.remove(t)
		defer t.retire()
		s.d.WebChat.Serve(s.base, t, cu)
	}, wsConfig)
}

func (s *Server) agentUpgrade(c *fiber.Ctx) error {
	if !websocket.IsWebSocketUpgrade(c) {
		return errs.E("agent ws", errs.Invalid, "WebSocket upgrade required")
	}
	p, err := s.d.Agents.Authenticate(c.UserContext(), c.Query("token"))
	if err != nil {
		return err
	}
	c.Locals(principalKey, p)
	return c.Next()
}

func agentTopic(agentID string) string { return "agent:" + agentID }

const supervisorsTopic = "supervisors"

func (s *Server) agentWS() fiber.Handler {
	return websocket.New(func(c *websocket.Conn) {
		p := c.Locals(principalKey).(agents.Principal)
		c.SetReadLimit(64 << 10)
		s.d.Metrics.wsConns.WithLabelValues("agent").Inc()
		defer s.d.Metrics.wsConns.WithLabelValues("agent").Dec()
		t := &wsTransport{c: c}
		if !s.live.add(t) {
			return // shutting down
		}
		defer s.live.remove(t)
		defer t.retire()
		ac := realtime.NewSender(t.Write, t.Close, 1024)
		defer ac.Close()
		ctx := s.base
		s.d.Bus.Subscribe(p.TenantID, agentTopic(p.AgentID), ac)
		defer s.agentDisconnected(p.TenantID, p.AgentID)
		defer s.d.Bus.Unsubscribe(p.TenantID, agentTopic(p.AgentID), ac)
		if p.Can(agents.RoleSupervisor) {
			s.d.Bus.Subscribe(p.TenantID, supervisorsTopic, ac)
			defer s.d.Bus.Unsubscribe(p.TenantID, supervisorsTopic, ac)
		}
		if a, err := s.d.AgentStore.AgentGet(ctx, p.TenantID, p.AgentID); err == nil {
			ac.Send(event("hello", map[string]any{"agent": a}))
		}
		for {
			_, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			var f struct {
				Type      string `json:"type"`
				SessionID string `json:"session_id"`
				On        bool   `json:"on"`
				Seq       int64  `json:"seq"`
			}
			if err := json.Unmarshal(b, &f); err != nil {
				ac.Send(event("error", map[string]any{"code": errs.Invalid, "message": "malformed frame: " + err.Error()}))
				continue
			}
			switch f.Type {
			case "ping":
				ac.Send([]byte(`{"type":"pong"}`))
			case "typing":
				err = s.d.Engine.AgentTyping(ctx, p.TenantID, f.SessionID, actor(p), f.On)
			case "read":
				err = s.d.Engine.AgentRead(ctx, p.TenantID, f.SessionID, actor(p), f.Seq)
			default:
				err = errs.E("agent ws", errs.Invalid, "unknown frame type %q", f.Type)
			}
			if err != nil {
				ac.Send(event("error", map[string]any{"code": errs.CodeOf(err), "message": errs.MessageOf(err)}))
			}
		}
	}, wsConfig)
}

// agentDisconnected starts the grace period of an agent whose console
// connection closed: if, when it ends, no node holds a connection of
// theirs and they are still logged in, they go offline and their sessions
// go back to the queue head (no session waits on an agent who closed the
// browser). A node shutting down leaves its agents to reconnect elsewhere.
func (s *Server) agentDisconnected(tenantID, agentID string) {
	if s.d.AgentGrace <= 0 || s.draining.Load() {
		return
	}
	time.AfterFunc(s.d.AgentGrace, func() {
		ctx := s.base
		if ctx.Err() != nil || s.draining.Load() {
			return
		}
		on, err := s.d.Bus.Subscribed(ctx, tenantID, agentTopic(agentID))
		if err != nil || on {
			return
		}
		a, err := s.d.AgentStore.AgentGet(ctx, tenantID, agentID)
		if err != nil || a.State == agents.StateOffline {
			return
		}
		s.d.Log.Info("agent console gone past the grace period; going offline", "agent", agentID)
		if err := s.setState(ctx, tenantID, agentID, agents.StateOffline, "", false); err != nil {
			s.d.Log.Error("offline after grace period", "agent", agentID, "err", err)
		}
	})
}

// event encodes a console frame.
func event(typ string, data any) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "data": data})
	return b
}
