package console_test

import (
	"strings"
	"testing"

	"github.com/switchboard-acd/switchboard/internal/apptest"
)

// TestMetricsAndProbes checks /healthz, /readyz and that /metrics stays
// valid after many requests with different methods and routes (label
// values must not alias reused request buffers).
func TestMetricsAndProbes(t *testing.T) {
	n := apptest.Start(t, "embedded")
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := n.Do(t, "GET", p, "", nil); r.Status != 200 {
			t.Fatalf("%s: %d %s", p, r.Status, r.Body)
		}
	}
	tok := n.Login(t, "alice")
	ws := n.Dial(t, "/api/v1/ws?token="+tok)
	ws.Await("hello", apptest.Type("hello"))
	for i := 0; i < 300; i++ {
		n.Do(t, "PUT", "/api/v1/me/state", tok, map[string]string{"state": "not_ready"})
		if i%15 == 0 { // bcrypt is slow on purpose: a few are enough
			n.Do(t, "POST", "/api/v1/auth/login", "", map[string]string{"username": "alice", "password": "wrong-password"})
		}
		n.Do(t, "GET", "/api/v1/me", tok, nil)
		n.Do(t, "GET", "/api/v1/nothing/here", tok, nil)
	}
	r := n.Do(t, "GET", "/metrics", "", nil)
	if r.Status != 200 {
		t.Fatalf("/metrics: %d %.500s", r.Status, r.Body)
	}
	body := string(r.Body)
	for _, want := range []string{
		`switchboard_http_requests_total{method="PUT",route="/api/v1/me/state",status="200"} 300`,
		`switchboard_http_requests_total{method="POST",route="/api/v1/auth/login",status="401"} 20`,
		`switchboard_websocket_connections{kind="agent"} 1`,
		`switchboard_sessions{state="queued",tenant="demo"}`,
		`switchboard_queue_length{group="Support",tenant="demo"} 0`,
		`switchboard_routing_latency_seconds_bucket`,
		`switchboard_realtime_deliveries_total{path="local"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
