package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/internal/apptest"
	"github.com/switchboard-acd/switchboard/internal/rdb"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// TestTwoNodes runs real server processes on one PostgreSQL and one Redis and
// carries a conversation across them (DESIGN D4: presence in Redis, events
// published on the channel of the node holding the connection):
//
//   - alice's console is on node B, the customer's chat on node A: the
//     handoff, the customer's message and alice's reply cross nodes;
//   - node A is killed with SIGKILL; alice replies while the customer is
//     offline; the customer reconnects to B, resumes after the last seq it
//     saw and gets every missed message exactly once; a resent cid is
//     deduplicated; its new message reaches alice;
//   - node C starts, alice's console moves there: customer on B ↔ agent on C,
//     and a second visitor's handoff routed on B is assigned to alice on C.
func TestTwoNodes(t *testing.T) {
	dsn, _ := testenv.PostgresSchema(t) // fails, never skips, without PostgreSQL
	prefix := testenv.UniqueName("sbt")
	redisCleanup(t, prefix) // fails, never skips, without Redis
	bin := buildBinary(t)

	env := []string{
		"SWITCHBOARD_DATABASE_URL=" + dsn,
		"SWITCHBOARD_REDIS_URL=" + testenv.RedisURL(),
		"SWITCHBOARD_REDIS_PREFIX=" + prefix,
		"SWITCHBOARD_DEMO_PASSWORD=" + apptest.Password,
		"SWITCHBOARD_WRAPUP_TIMEOUT=1h",
		"SWITCHBOARD_SHUTDOWN_GRACE=2s",
	}
	procA := startNode(t, bin, "A", env)
	procB := startNode(t, bin, "B", env)
	a, b := procA.node(), procB.node()

	// Alice works on node B.
	alice := b.Login(t, "alice")
	agentB := b.Dial(t, "/api/v1/ws?token="+alice)
	agentB.Await("agent hello on B", apptest.Type("hello"))
	if r := b.Do(t, "PUT", "/api/v1/me/state", alice, map[string]string{"state": "ready"}); r.Status != 200 {
		t.Fatalf("ready on B: %d %s", r.Status, r.Body)
	}

	// The customer chats on node A.
	vt := a.Visitor(t, nil)
	view := &custView{}
	cust := a.Dial(t, "/webchat/ws?token="+vt)
	hello := cust.Await("customer hello on A", apptest.Type("hello"))
	convID := apptest.Str(hello, "conversation_id")
	cust.Send(map[string]any{"type": "send", "cid": "c1", "text": "hello"})
	view.ackOf(t, cust, "c1")
	cust.Await("bot greeting", view.watch(func(f map[string]any) bool {
		return f["type"] == "message" && apptest.Str(f, "message", "sender_kind") == "bot"
	}))
	cust.Send(map[string]any{"type": "send", "cid": "c2", "text": "agent"})
	view.ackOf(t, cust, "c2")

	// Routed on A, delivered to alice's console on B.
	assigned := agentB.Await("session.assigned on B", apptest.Type("session.assigned"))
	sid := apptest.Str(assigned, "data", "session", "id")
	if got := apptest.Str(assigned, "data", "session", "conversation_id"); got != convID {
		t.Fatalf("assigned session's conversation = %s, want %s", got, convID)
	}
	var texts []string
	for _, m := range asSlice(apptest.Path(assigned, "data", "messages")) {
		texts = append(texts, apptest.Str(m, "body", "text"))
	}
	if !strings.Contains(strings.Join(texts, "|"), "hello") {
		t.Fatalf("transcript lacks the bot conversation: %q", texts)
	}
	cust.Await("agent joined", view.watch(func(f map[string]any) bool {
		return f["type"] == "session" && f["state"] == "active" && f["agent_name"] == "Alice"
	}))

	// Customer on A → agent on B.
	cust.Send(map[string]any{"type": "send", "cid": "c3", "text": "my order is late"})
	c3 := view.ackOf(t, cust, "c3")
	agentB.Await("customer message on B", messageCreated("my order is late"))

	// Agent on B → customer on A.
	r1 := reply(t, b, alice, sid, "a1", "Let me check.")
	cust.Await("agent reply on A", view.watch(customerMessage("Let me check.")))
	if view.last != float64(r1) {
		t.Fatalf("customer saw up to seq %v, want the reply's seq %d", view.last, r1)
	}

	// Node A crashes.
	procA.kill(t)
	view.drainUntilClosed(t, cust)
	if _, err := http.Get(a.URL + "/readyz"); err == nil {
		t.Fatalf("node A still answers after SIGKILL")
	}
	lastSeen := view.last

	// Alice keeps talking while the customer is offline.
	m1 := reply(t, b, alice, sid, "a2", "Found it: it ships today.")
	m2 := reply(t, b, alice, sid, "a3", "Are you still there?")

	// The customer reconnects to B with the same token and resumes.
	cust2 := b.Dial(t, "/webchat/ws?token="+vt)
	hello2 := cust2.Await("customer hello on B", apptest.Type("hello"))
	if got := apptest.Str(hello2, "conversation_id"); got != convID {
		t.Fatalf("conversation after reconnect = %s, want %s", got, convID)
	}
	if got := apptest.Path(hello2, "last_seq"); got != float64(m2) {
		t.Fatalf("hello last_seq after reconnect = %v, want %d", got, m2)
	}
	cust2.Send(map[string]any{"type": "resume", "after": lastSeen})
	replayed := map[float64]string{}
	next := lastSeen + 1
	for {
		f := cust2.Await("replay", func(f map[string]any) bool { return f["type"] == "message" || f["type"] == "resumed" })
		if f["type"] == "resumed" {
			if got := apptest.Path(f, "last_seq"); got != float64(m2) {
				t.Fatalf("resumed last_seq = %v, want %d", got, m2)
			}
			break
		}
		seq, _ := apptest.Path(f, "message", "seq").(float64)
		if _, dup := replayed[seq]; dup || seq != next {
			t.Fatalf("replay gave seq %v, want %v (replayed so far %v)", seq, next, replayed)
		}
		replayed[seq] = apptest.Str(f, "message", "text")
		next++
	}
	want := map[float64]string{float64(m1): "Found it: it ships today.", float64(m2): "Are you still there?"}
	if fmt.Sprint(replayed) != fmt.Sprint(want) {
		t.Fatalf("replayed %v, want exactly %v", replayed, want)
	}
	// Nothing replayed arrives a second time.
	cust2.Send(map[string]any{"type": "ping"})
	cust2.Await("pong", func(f map[string]any) bool {
		if f["type"] == "message" {
			t.Fatalf("message after the replay: %v", f)
		}
		return f["type"] == "pong"
	})
	view2 := &custView{last: float64(m2)}

	// The client resends c3 (say its ack had been lost): stored once.
	cust2.Send(map[string]any{"type": "send", "cid": "c3", "text": "my order is late"})
	dup := cust2.Await("ack of resent c3", func(f map[string]any) bool { return f["type"] == "ack" && f["cid"] == "c3" })
	if dup["duplicate"] != true || dup["seq"] != c3["seq"] || dup["id"] != c3["id"] {
		t.Fatalf("resent c3 on B: %v, first ack on A: %v", dup, c3)
	}
	// A new message from the customer on B reaches alice on B.
	cust2.Send(map[string]any{"type": "send", "cid": "c4", "text": "yes, thanks!"})
	if ack := view2.ackOf(t, cust2, "c4"); ack["seq"] != float64(m2+1) || ack["duplicate"] != false {
		t.Fatalf("c4 ack = %v, want seq %d", ack, m2+1)
	}
	agentB.Await("customer message after failover", messageCreated("yes, thanks!"))

	// Reverse direction: node C starts, alice's console moves there while
	// the customer stays on B.
	procC := startNode(t, bin, "C", env)
	c := procC.node()
	agentC := c.Dial(t, "/api/v1/ws?token="+alice)
	agentC.Await("agent hello on C", apptest.Type("hello"))
	agentB.Close()

	cust2.Send(map[string]any{"type": "send", "cid": "c5", "text": "one more question"})
	view2.ackOf(t, cust2, "c5")
	agentC.Await("customer message on C", messageCreated("one more question"))
	reply(t, c, alice, sid, "a4", "Sure, go ahead.")
	cust2.Await("agent reply from C", view2.watch(customerMessage("Sure, go ahead.")))

	// A second visitor on B: routed on B, assigned to alice's console on C.
	vt2 := b.Visitor(t, nil)
	other := b.Dial(t, "/webchat/ws?token="+vt2)
	otherHello := other.Await("second visitor hello", apptest.Type("hello"))
	other.Send(map[string]any{"type": "send", "cid": "d1", "text": "hi"})
	other.Await("second visitor bot greeting", func(f map[string]any) bool {
		return f["type"] == "message" && apptest.Str(f, "message", "sender_kind") == "bot"
	})
	other.Send(map[string]any{"type": "send", "cid": "d2", "text": "agent"})
	assigned2 := agentC.Await("second session.assigned on C", func(f map[string]any) bool {
		return f["type"] == "session.assigned" && apptest.Str(f, "data", "session", "id") != sid
	})
	if got, want := apptest.Str(assigned2, "data", "session", "conversation_id"), apptest.Str(otherHello, "conversation_id"); got != want {
		t.Fatalf("second assigned conversation = %s, want %s", got, want)
	}
	sid2 := apptest.Str(assigned2, "data", "session", "id")
	other.Await("second visitor: agent joined", func(f map[string]any) bool {
		return f["type"] == "session" && f["state"] == "active"
	})
	reply(t, c, alice, sid2, "b1", "Hello from node C.")
	other.Await("reply to second visitor", customerMessage("Hello from node C."))
}

// custView tracks the highest seq a chat client has seen.
type custView struct{ last float64 }

func (v *custView) see(f map[string]any) {
	var seq any
	switch f["type"] {
	case "message":
		seq = apptest.Path(f, "message", "seq")
	case "ack":
		seq = f["seq"]
	}
	if s, ok := seq.(float64); ok && s > v.last {
		v.last = s
	}
}

// watch wraps a matcher so that every frame it looks at is seen.
func (v *custView) watch(match func(map[string]any) bool) func(map[string]any) bool {
	return func(f map[string]any) bool { v.see(f); return match(f) }
}

// ackOf waits for the ack of cid and fails on an error frame about it.
func (v *custView) ackOf(t *testing.T, ws *apptest.WS, cid string) map[string]any {
	t.Helper()
	f := ws.Await("ack "+cid, v.watch(func(f map[string]any) bool {
		return (f["type"] == "ack" || f["type"] == "error") && (f["cid"] == cid || f["ref"] == cid)
	}))
	if f["type"] != "ack" {
		t.Fatalf("send %s: %v", cid, f)
	}
	return f
}

// drainUntilClosed reads what the dead connection still delivered.
func (v *custView) drainUntilClosed(t *testing.T, ws *apptest.WS) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case f, ok := <-ws.Frames():
			if !ok {
				return
			}
			v.see(f)
		case <-deadline:
			t.Fatalf("customer connection still open 10s after its node was killed")
		}
	}
}

func messageCreated(text string) func(map[string]any) bool {
	return func(f map[string]any) bool {
		return f["type"] == "message.created" && apptest.Str(f, "data", "message", "body", "text") == text
	}
}

func customerMessage(text string) func(map[string]any) bool {
	return func(f map[string]any) bool {
		return f["type"] == "message" && apptest.Str(f, "message", "text") == text &&
			apptest.Str(f, "message", "sender_name") == "Alice"
	}
}

// reply posts an agent message through REST and returns its seq.
func reply(t *testing.T, n *apptest.Node, token, sid, cid, text string) int64 {
	t.Helper()
	r := n.Do(t, "POST", "/api/v1/sessions/"+sid+"/messages", token, map[string]string{"text": text, "client_msg_id": cid})
	if r.Status != 201 {
		t.Fatalf("reply %q via %s: %d %s", text, n.URL, r.Status, r.Body)
	}
	var m struct {
		Seq int64 `json:"seq"`
	}
	r.JSON(t, &m)
	if m.Seq == 0 {
		t.Fatalf("reply %q has no seq: %s", text, r.Body)
	}
	return m.Seq
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

// redisCleanup checks Redis answers and deletes the test's keys at the end
// (after the nodes are gone: cleanups run in reverse order).
func redisCleanup(t *testing.T, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := rdb.Open(ctx, testenv.RedisURL(), prefix)
	if err != nil {
		t.Fatalf("redis not reachable at %s: %v", testenv.RedisURL(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		c.Close()
	})
}

// buildBinary compiles this command once into a temp dir.
func buildBinary(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "switchboard")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// syncBuffer is a bytes.Buffer safe for the process's writers and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is one `switchboard serve` process.
type proc struct {
	name string
	url  string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

func (p *proc) node() *apptest.Node { return &apptest.Node{URL: p.url} }

// startNode runs `switchboard serve` on a free port with env (plus its node
// id, address and data dir) and waits until /readyz answers 200. The
// process is killed when the test ends; its output is logged if it failed.
func startNode(t *testing.T, bin, name string, env []string) *proc {
	t.Helper()
	addr := freeAddr(t)
	p := &proc{name: name, url: "http://" + addr, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve")
	p.cmd.Env = append(childEnv(), env...)
	p.cmd.Env = append(p.cmd.Env,
		"SWITCHBOARD_HTTP_ADDR="+addr,
		"SWITCHBOARD_NODE_ID=node-"+name,
		"SWITCHBOARD_DATA_DIR="+t.TempDir(),
	)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start node %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill(t)
		if t.Failed() {
			t.Logf("----- node %s (%s) output -----\n%s", name, addr, p.out.String())
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-p.done:
			t.Fatalf("node %s exited during start-up: %v", name, p.cmd.ProcessState)
		default:
		}
		if res, err := client.Get(p.url + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s not ready within 30s", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("node %s did not exit after SIGKILL", p.name)
	}
}

// childEnv is this process's environment without SWITCHBOARD_* settings, so
// that only the test's configuration reaches the nodes.
func childEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SWITCHBOARD_") {
			out = append(out, kv)
		}
	}
	return out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
