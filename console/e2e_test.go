package console_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/internal/apptest"
)

// TestConversationEndToEnd walks one conversation through its whole life on
// each backend: a visitor writes, the bot greets and hands off, a ready agent
// gets it with the transcript, they talk, the agent pins, closes and wraps up.
func TestConversationEndToEnd(t *testing.T) {
	for _, backend := range apptest.Backends {
		t.Run(backend, func(t *testing.T) {
			n := apptest.Start(t, backend)
			alice := n.Login(t, "alice")
			agentWS := n.Dial(t, "/api/v1/ws?token="+alice)
			agentWS.Await("hello", apptest.Type("hello"))
			if r := n.Do(t, "PUT", "/api/v1/me/state", alice, map[string]string{"state": "ready"}); r.Status != 200 {
				t.Fatalf("ready: %d %s", r.Status, r.Body)
			}

			vt := n.Visitor(t, nil)
			cust := n.Dial(t, "/webchat/ws?token="+vt)
			cust.Await("hello", apptest.Type("hello"))
			cust.Send(map[string]any{"type": "send", "cid": "c1", "text": "hello there"})
			ack := cust.Await("ack c1", apptest.Type("ack"))
			if ack["seq"].(float64) != 1 || ack["duplicate"] != false {
				t.Fatalf("first ack = %v", ack)
			}
			cust.Await("bot greeting", func(f map[string]any) bool {
				return f["type"] == "message" && apptest.Str(f, "message", "sender_kind") == "bot"
			})
			// The same cid again is the same message, not a second one.
			cust.Send(map[string]any{"type": "send", "cid": "c1", "text": "hello there"})
			dup := cust.Await("dup ack", apptest.Type("ack"))
			if dup["seq"].(float64) != 1 || dup["duplicate"] != true {
				t.Fatalf("duplicate ack = %v", dup)
			}

			cust.Send(map[string]any{"type": "send", "cid": "c2", "text": "I want a human"})
			assigned := agentWS.Await("session.assigned", apptest.Type("session.assigned"))
			sid := apptest.Str(assigned, "data", "session", "id")
			transcript := apptest.Path(assigned, "data", "messages").([]any)
			var texts []string
			for _, m := range transcript {
				texts = append(texts, apptest.Str(m, "body", "text"))
			}
			if !strings.Contains(strings.Join(texts, "|"), "hello there") {
				t.Fatalf("transcript lacks the bot conversation: %q", texts)
			}
			cust.Await("agent joined", func(f map[string]any) bool { return f["type"] == "session" && f["state"] == "active" })

			// Customer → agent in real time.
			cust.Send(map[string]any{"type": "send", "cid": "c3", "text": "my order is late"})
			agentWS.Await("customer message", func(f map[string]any) bool {
				return f["type"] == "message.created" && apptest.Str(f, "data", "message", "body", "text") == "my order is late"
			})
			// Agent → customer.
			r := n.Do(t, "POST", "/api/v1/sessions/"+sid+"/messages", alice, map[string]string{"text": "Let me check.", "client_msg_id": "a1"})
			if r.Status != 201 {
				t.Fatalf("reply: %d %s", r.Status, r.Body)
			}
			var msg struct {
				ID  string `json:"id"`
				Seq int64  `json:"seq"`
			}
			r.JSON(t, &msg)
			cust.Await("agent reply", func(f map[string]any) bool {
				return f["type"] == "message" && apptest.Str(f, "message", "text") == "Let me check." && apptest.Str(f, "message", "sender_name") == "Alice"
			})
			if r := n.Do(t, "POST", "/api/v1/sessions/"+sid+"/messages", alice, map[string]string{"text": "Let me check.", "client_msg_id": "a1"}); r.Status != 200 {
				t.Fatalf("duplicate reply: %d %s", r.Status, r.Body)
			}

			// Pin.
			if r := n.Do(t, "POST", "/api/v1/sessions/"+sid+"/messages/"+msg.ID+"/pin", alice, nil); r.Status != 200 || !strings.Contains(string(r.Body), `"pinned":true`) {
				t.Fatalf("pin: %d %s", r.Status, r.Body)
			}
			// Wrap-up before close is illegal.
			if r := n.Do(t, "POST", "/api/v1/sessions/"+sid+"/wrapup", alice, map[string]any{"reason_codes": []string{"other"}}); r.Status != 409 {
				t.Fatalf("wrapup while active: %d %s", r.Status, r.Body)
			}
			if r := n.Do(t, "POST", "/api/v1/sessions/"+sid+"/close", alice, nil); r.Status != 200 {
				t.Fatalf("close: %d %s", r.Status, r.Body)
			}
			// Closing twice: 409 with the current state.
			r = n.Do(t, "POST", "/api/v1/sessions/"+sid+"/close", alice, nil)
			if r.Status != 409 || !strings.Contains(string(r.Body), `"state":"wrapup"`) {
				t.Fatalf("second close: %d %s", r.Status, r.Body)
			}
			// Mandatory reasons; only leaves.
			if r := n.Do(t, "POST", "/api/v1/sessions/"+sid+"/wrapup", alice, map[string]any{"reason_codes": []string{}}); r.Status != 400 {
				t.Fatalf("wrapup without reasons: %d %s", r.Status, r.Body)
			}
			if r := n.Do(t, "POST", "/api/v1/sessions/"+sid+"/wrapup", alice, map[string]any{"reason_codes": []string{"billing"}}); r.Status != 400 {
				t.Fatalf("wrapup with a branch: %d %s", r.Status, r.Body)
			}
			if r := n.Do(t, "POST", "/api/v1/sessions/"+sid+"/wrapup", alice, map[string]any{"reason_codes": []string{"billing.refund"}}); r.Status != 200 || !strings.Contains(string(r.Body), `"state":"closed"`) {
				t.Fatalf("wrapup: %d %s", r.Status, r.Body)
			}
			// Every transition is an event.
			var evs struct {
				Events []struct {
					Type string `json:"type"`
				} `json:"events"`
			}
			n.Do(t, "GET", "/api/v1/sessions/"+sid+"/events", alice, nil).JSON(t, &evs)
			var types []string
			for _, e := range evs.Events {
				types = append(types, e.Type)
			}
			if got, want := strings.Join(types, ","), "created,handoff,assigned,agent_closed,wrapped_up"; got != want {
				t.Fatalf("events = %s, want %s", got, want)
			}

			// Resume: a new connection replays everything after seq 2 once.
			cust2 := n.Dial(t, "/webchat/ws?token="+vt)
			cust2.Send(map[string]any{"type": "resume", "after": 2})
			seen := map[float64]bool{}
			last := 2.0
			for {
				f := cust2.Await("replay", func(f map[string]any) bool { return f["type"] == "message" || f["type"] == "resumed" })
				if f["type"] == "resumed" {
					break
				}
				seq := apptest.Path(f, "message", "seq").(float64)
				if seen[seq] || seq != last+1 {
					t.Fatalf("replay seq %v after %v (seen %v)", seq, last, seen)
				}
				seen[seq], last = true, seq
			}
			if last < 6 {
				t.Fatalf("replay ended at seq %v, want the whole conversation", last)
			}
		})
	}
}

// TestBadInput checks that malformed, unauthorised and oversized requests get
// clear errors in the one error shape.
func TestBadInput(t *testing.T) {
	n := apptest.Start(t, "embedded")
	alice := n.Login(t, "alice")
	admin := n.Login(t, "admin")
	for _, tc := range []struct {
		name, method, path, token string
		body                      any
		status                    int
		code                      string
	}{
		{"no token", "GET", "/api/v1/me", "", nil, 401, "unauthorized"},
		{"bad token", "GET", "/api/v1/me", "nope", nil, 401, "unauthorized"},
		{"wrong password", "POST", "/api/v1/auth/login", "", map[string]string{"username": "alice", "password": "wrong-one"}, 401, "unauthorized"},
		{"malformed json", "POST", "/api/v1/auth/login", "", "{not json", 400, "invalid"},
		{"agent lists agents", "GET", "/api/v1/agents", alice, nil, 403, "forbidden"},
		{"agent creates group", "POST", "/api/v1/groups", alice, map[string]string{"name": "X"}, 403, "forbidden"},
		{"unknown session", "GET", "/api/v1/sessions/nope", alice, nil, 404, "not_found"},
		{"bad state", "PUT", "/api/v1/me/state", alice, map[string]string{"state": "sleeping"}, 400, "invalid"},
		{"bad reason tree", "PUT", "/api/v1/reason-tree", admin, map[string]any{"nodes": []map[string]string{{"code": "", "label": "x"}}}, 400, "invalid"},
		{"unknown route", "GET", "/api/v1/nothing", alice, nil, 404, "not_found"},
		{"visitor without token", "GET", "/api/v1/webchat/messages", "", nil, 401, "unauthorized"},
		{"forged visitor token", "GET", "/api/v1/webchat/messages", "eyJ0IjoiZGVtbyJ9.AAAA", nil, 401, "unauthorized"},
		{"unknown widget", "POST", "/api/v1/webchat/nope/visitor", "", map[string]any{}, 404, "not_found"},
		{"bad app signature", "POST", "/api/v1/webchat/wc_demo/visitor", "", map[string]any{"user_id": "u1", "ts": 1, "signature": "00"}, 401, "unauthorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := n.Do(t, tc.method, tc.path, tc.token, tc.body)
			if r.Status != tc.status || r.ErrorCode() != tc.code {
				t.Fatalf("got %d %s, want %d %s", r.Status, r.Body, tc.status, tc.code)
			}
		})
	}

	t.Run("oversized body", func(t *testing.T) {
		// The server answers 413 from the headers and closes without reading
		// the body, so speak HTTP by hand to read the answer.
		conn, err := net.Dial("tcp", strings.TrimPrefix(n.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /api/v1/groups HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", admin, 4<<20)
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 413 || !strings.Contains(string(body), `"code":"too_large"`) {
			t.Fatalf("got %d %s, want 413 too_large", res.StatusCode, body)
		}
	})

	t.Run("websocket frames", func(t *testing.T) {
		ws := n.Dial(t, "/webchat/ws?token="+n.Visitor(t, nil))
		ws.Await("hello", apptest.Type("hello"))
		ws.Send("{oops")
		if f := ws.Await("error", apptest.Type("error")); f["code"] != "invalid" {
			t.Fatalf("malformed frame: %v", f)
		}
		ws.Send(map[string]any{"type": "send", "cid": "x", "text": ""})
		if f := ws.Await("error", apptest.Type("error")); f["ref"] != "x" {
			t.Fatalf("empty text: %v", f)
		}
		ws.Send(map[string]any{"type": "send", "cid": "y", "text": strings.Repeat("长", 4001)})
		if f := ws.Await("error", apptest.Type("error")); f["code"] != "too_large" {
			t.Fatalf("long text: %v", f)
		}
		// The connection still works.
		ws.Send(map[string]any{"type": "ping"})
		ws.Await("pong", apptest.Type("pong"))
	})

	t.Run("refused requests change nothing", func(t *testing.T) {
		var bob struct {
			ID          string `json:"id"`
			DisplayName string `json:"display_name"`
		}
		var list struct {
			Agents []struct {
				ID       string `json:"id"`
				Username string `json:"username"`
			} `json:"agents"`
		}
		n.Do(t, "GET", "/api/v1/agents", admin, nil).JSON(t, &list)
		for _, a := range list.Agents {
			if a.Username == "bob" {
				bob.ID = a.ID
			}
		}
		r := n.Do(t, "PATCH", "/api/v1/agents/"+bob.ID, admin, map[string]any{"display_name": "Partial", "password": "short"})
		if r.Status != 400 {
			t.Fatalf("patch with a short password: %d %s", r.Status, r.Body)
		}
		n.Do(t, "GET", "/api/v1/agents/"+bob.ID, admin, nil).JSON(t, &bob)
		if bob.DisplayName != "Bob" {
			t.Fatalf("refused patch saved the name %q", bob.DisplayName)
		}
		if r := n.Do(t, "PATCH", "/api/v1/agents/"+bob.ID, admin, map[string]any{"disabled": true}); r.Status != 200 {
			t.Fatalf("disable: %d %s", r.Status, r.Body)
		}
		if r := n.Do(t, "PUT", "/api/v1/agents/"+bob.ID+"/state", admin, map[string]string{"state": "ready"}); r.Status != 409 {
			t.Fatalf("a disabled agent went ready: %d %s", r.Status, r.Body)
		}
		if r := n.Do(t, "DELETE", "/api/v1/groups/support", admin, nil); r.Status != 409 {
			t.Fatalf("deleting the web-chat account's default group: %d %s", r.Status, r.Body)
		}
	})

	t.Run("visitors are isolated", func(t *testing.T) {
		a := n.Visitor(t, nil)
		b := n.Visitor(t, nil)
		n.Do(t, "POST", "/api/v1/webchat/messages", a, map[string]string{"cid": "s1", "text": "secret of A"})
		r := n.Do(t, "GET", "/api/v1/webchat/messages", b, nil)
		if r.Status != 200 || strings.Contains(string(r.Body), "secret of A") {
			t.Fatalf("B sees A's conversation: %s", r.Body)
		}
	})
}

// TestQueuedCustomerSeesPosition: with nobody ready, a handed-off customer
// waits and is told their place; a reconnecting widget is told again; the
// customer can leave the queue.
func TestQueuedCustomerSeesPosition(t *testing.T) {
	n := apptest.Start(t, "embedded")
	first := n.Visitor(t, nil)
	second := n.Visitor(t, nil)
	for i, tok := range []string{first, second} {
		ws := n.Dial(t, "/webchat/ws?token="+tok)
		ws.Await("hello", apptest.Type("hello"))
		ws.Send(map[string]any{"type": "send", "cid": "c1", "text": "human please"})
		f := ws.Await("queued", func(f map[string]any) bool { return f["type"] == "session" && f["state"] == "queued" })
		if f["queue_position"] != float64(i+1) {
			t.Fatalf("visitor %d: queue position %v, want %d", i+1, f["queue_position"], i+1)
		}
		ws.Close()
	}
	ws := n.Dial(t, "/webchat/ws?token="+second)
	ws.Await("hello", apptest.Type("hello"))
	if f := ws.Await("session", apptest.Type("session")); f["state"] != "queued" || f["queue_position"] != float64(2) {
		t.Fatalf("after reconnecting: %v", f)
	}
	ws.Send(map[string]any{"type": "end"})
	ws.Await("closed", func(f map[string]any) bool { return f["type"] == "session" && f["state"] == "closed" })
	sup := n.Login(t, "supervisor")
	var ov struct {
		Groups []struct {
			ID      string `json:"id"`
			Waiting int    `json:"waiting"`
		} `json:"groups"`
	}
	n.Do(t, "GET", "/api/v1/supervisor/overview", sup, nil).JSON(t, &ov)
	for _, g := range ov.Groups {
		if g.ID == "support" && g.Waiting != 1 {
			t.Fatalf("support queue has %d waiting after one left, want 1", g.Waiting)
		}
	}
}

// TestTenantsAreIsolated: an agent of one tenant cannot see or touch another
// tenant's sessions, messages, agents or groups, even with their ids.
func TestTenantsAreIsolated(t *testing.T) {
	n := apptest.Start(t, "postgres+redis")
	ctx := t.Context()
	if _, err := n.App.DB.ExecContext(ctx, n.App.DB.Rebind(`INSERT INTO tenants (id, name, settings, created_at) VALUES (?, ?, ?, ?)`),
		"other", "Other Co", "{}", time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	if _, err := n.App.Agents.CreateAgent(ctx, "other", agents.NewAgent{Username: "mallory", Password: apptest.Password, Role: agents.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	r := n.Do(t, "POST", "/api/v1/auth/login", "", map[string]string{"tenant": "other", "username": "mallory", "password": apptest.Password})
	var login struct {
		Token string `json:"token"`
	}
	r.JSON(t, &login)
	mallory := login.Token

	// A demo conversation with an agent.
	alice := n.Login(t, "alice")
	n.Do(t, "PUT", "/api/v1/me/state", alice, map[string]string{"state": "ready"})
	ws := n.Dial(t, "/webchat/ws?token="+n.Visitor(t, nil))
	ws.Await("hello", apptest.Type("hello"))
	ws.Send(map[string]any{"type": "send", "cid": "c1", "text": "agent"})
	var mine struct {
		Sessions []struct {
			ID string `json:"id"`
		} `json:"sessions"`
	}
	waitFor(t, n, func() bool {
		n.Do(t, "GET", "/api/v1/me/sessions", alice, nil).JSON(t, &mine)
		return len(mine.Sessions) == 1
	}, "alice's session")
	sid := mine.Sessions[0].ID
	var me struct {
		ID string `json:"id"`
	}
	n.Do(t, "GET", "/api/v1/me", alice, nil).JSON(t, &me)

	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/v1/sessions/" + sid},
		{"GET", "/api/v1/sessions/" + sid + "/messages"},
		{"POST", "/api/v1/sessions/" + sid + "/close"},
		{"GET", "/api/v1/agents/" + me.ID},
		{"PATCH", "/api/v1/groups/support"},
	} {
		var body any
		if tc.method != "GET" {
			body = map[string]any{}
		}
		if r := n.Do(t, tc.method, tc.path, mallory, body); r.Status != 404 {
			t.Errorf("%s %s by another tenant: %d %s, want 404", tc.method, tc.path, r.Status, r.Body)
		}
	}
	for _, path := range []string{"/api/v1/sessions", "/api/v1/agents", "/api/v1/groups"} {
		r := n.Do(t, "GET", path, mallory, nil)
		if r.Status != 200 || strings.Contains(string(r.Body), "alice") || strings.Contains(string(r.Body), sid) || strings.Contains(string(r.Body), `"support"`) {
			t.Errorf("GET %s by another tenant shows demo data: %d %s", path, r.Status, r.Body)
		}
	}
}

// TestShutdownClosesWebSockets: a stopping node closes its WebSockets (so
// clients reconnect elsewhere) and refuses new ones.
func TestShutdownClosesWebSockets(t *testing.T) {
	n := apptest.Start(t, "embedded")
	var conns []*apptest.WS
	for i := 0; i < 3; i++ {
		ws := n.Dial(t, "/webchat/ws?token="+n.Visitor(t, nil))
		ws.Await("hello", apptest.Type("hello"))
		conns = append(conns, ws)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := n.App.Stop(ctx); err != nil {
		buf := make([]byte, 1<<20)
		t.Fatalf("stop: %v\n%s", err, buf[:runtime.Stack(buf, true)])
	}
	for i, ws := range conns {
		select {
		case _, open := <-ws.Frames():
			for open {
				_, open = <-ws.Frames()
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("connection %d still open after shutdown", i)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
}
