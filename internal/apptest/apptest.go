// Package apptest starts real Switchboard nodes inside a test — on
// PostgreSQL + Redis (own schema and key prefix) or on the embedded SQLite +
// in-process Redis — and gives tests small HTTP and WebSocket clients that
// speak the public protocols, so end-to-end tests read like a user's steps.
package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-acd/switchboard/internal/app"
	"github.com/switchboard-acd/switchboard/internal/config"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// Password is the password of every seeded demo login in tests.
const Password = "demo-pass-1"

// Backends are the two backends end-to-end tests run on.
var Backends = []string{"postgres+redis", "embedded"}

// Node is a running node.
type Node struct {
	App *app.App
	URL string
}

// Start runs a node on backend until the test ends.
func Start(t testing.TB, backend string) *Node {
	t.Helper()
	t.Setenv("SWITCHBOARD_DEMO_PASSWORD", Password)
	cfg := config.Default()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.WrapupTimeout = time.Hour
	cfg.ShutdownGrace = 3 * time.Second
	switch backend {
	case "postgres+redis":
		dsn, _ := testenv.PostgresSchema(t)
		cfg.DatabaseURL = dsn
		rc := testenv.Redis(t, "redis") // its prefix is deleted when the test ends
		cfg.RedisURL = testenv.RedisURL()
		cfg.RedisPrefix = rc.Prefix
	case "embedded":
	default:
		t.Fatalf("unknown backend %q", backend)
	}
	return StartConfig(t, cfg)
}

// StartConfig runs a node with cfg until the test ends.
func StartConfig(t testing.TB, cfg config.Config) *Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Stop(ctx)
	})
	return &Node{App: a, URL: "http://" + a.Addr()}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Response is an HTTP answer with its decoded JSON body.
type Response struct {
	Status int
	Body   []byte
	Header http.Header
}

// JSON decodes the body into v, failing the test on error.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// ErrorCode is the code of a JSON error body, "" when there is none.
func (r Response) ErrorCode() string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Code
}

// Observer, when set, sees every request and response the helpers make
// (the OpenAPI conformance check hooks in here).
var Observer func(t testing.TB, req *http.Request, reqBody []byte, res Response)

// Do sends a request with an optional bearer token and JSON body (a string
// or []byte is sent as is).
func (n *Node) Do(t testing.TB, method, path, token string, body any) Response {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, n.URL+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := Response{Status: res.StatusCode, Body: b, Header: res.Header}
	if Observer != nil {
		Observer(t, req, raw, out)
	}
	return out
}

// Login signs a demo user in and returns the token.
func (n *Node) Login(t testing.TB, username string) string {
	t.Helper()
	r := n.Do(t, "POST", "/api/v1/auth/login", "", map[string]string{"tenant": "demo", "username": username, "password": Password})
	if r.Status != 200 {
		t.Fatalf("login %s: %d %s", username, r.Status, r.Body)
	}
	var out struct {
		Token string `json:"token"`
	}
	r.JSON(t, &out)
	return out.Token
}

// Visitor obtains a visitor token for the demo web-chat account.
func (n *Node) Visitor(t testing.TB, body any) string {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	r := n.Do(t, "POST", "/api/v1/webchat/wc_demo/visitor", "", body)
	if r.Status != 200 {
		t.Fatalf("visitor: %d %s", r.Status, r.Body)
	}
	var out struct {
		Token string `json:"token"`
	}
	r.JSON(t, &out)
	return out.Token
}

// WS is a WebSocket client that collects JSON frames.
type WS struct {
	t      testing.TB
	c      *websocket.Conn
	frames chan map[string]any
}

// Dial opens a WebSocket to path (e.g. "/webchat/ws?token=...").
func (n *Node) Dial(t testing.TB, path string) *WS {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.URL, "http")+path, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	c.SetReadLimit(1 << 20)
	w := &WS{t: t, c: c, frames: make(chan map[string]any, 1024)}
	go func() {
		defer close(w.frames)
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				return
			}
			var f map[string]any
			if json.Unmarshal(b, &f) == nil {
				w.frames <- f
			}
		}
	}()
	t.Cleanup(func() { c.CloseNow() })
	return w
}

// Send writes one JSON frame (a string is sent raw).
func (w *WS) Send(v any) {
	w.t.Helper()
	var b []byte
	if s, ok := v.(string); ok {
		b = []byte(s)
	} else {
		b, _ = json.Marshal(v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, b); err != nil {
		w.t.Fatalf("ws write: %v", err)
	}
}

// Close closes the connection.
func (w *WS) Close() { w.c.CloseNow() }

// Await returns the first frame for which match is true, skipping others,
// failing the test after 10 seconds.
func (w *WS) Await(what string, match func(f map[string]any) bool) map[string]any {
	w.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case f, ok := <-w.frames:
			if !ok {
				w.t.Fatalf("connection closed while waiting for %s", what)
			}
			if match(f) {
				return f
			}
		case <-deadline:
			w.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Type matches frames of one type.
func Type(typ string) func(map[string]any) bool {
	return func(f map[string]any) bool { return f["type"] == typ }
}

// Path digs into nested JSON maps: Path(f, "data", "session", "id").
func Path(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// Str is Path as a string.
func Str(v any, keys ...string) string { return fmt.Sprint(Path(v, keys...)) }

// Frames exposes the raw frame channel (for debugging tests).
func (w *WS) Frames() <-chan map[string]any { return w.frames }
