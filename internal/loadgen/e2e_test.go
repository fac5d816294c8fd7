package loadgen

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/internal/app"
	"github.com/switchboard-acd/switchboard/internal/config"
)

const testPassword = "bench-pass-1"

// startServer runs a whole Switchboard node (embedded SQLite, in-process
// Redis, demo tenant) on a random local port for the end-to-end tests.
func startServer(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: starts a server")
	}
	t.Setenv("SWITCHBOARD_DEMO_PASSWORD", testPassword)
	cfg := config.Default()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	if err := a.Start(ctx); err != nil {
		_ = a.Stop(context.Background())
		t.Fatalf("app.Start: %v", err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Stop(sctx)
	})
	return "http://" + a.Addr()
}

// TestRunEndToEnd runs a small load against a real server and checks that
// every message and reply made its way and that clean-up left nothing open.
func TestRunEndToEnd(t *testing.T) {
	url := startServer(t)
	cfg := Config{
		URL: url, Tenant: app.DemoTenant, AdminUser: "admin", AdminPassword: testPassword, ChatKey: app.DemoChatKey,
		HandoffWord: "agent", Customers: 6, Agents: 2, Warmup: 200 * time.Millisecond, Duration: time.Second,
		Window: 2, Reply: true, Progress: testWriter{t},
	}
	t0 := time.Now()
	res, err := Run(context.Background(), cfg)
	t.Logf("run took %s", time.Since(t0))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Setup.AgentsReady != 2 || res.Setup.CustomersAssigned != 6 || res.Setup.MaxSessions != 4 {
		t.Errorf("setup = %+v", res.Setup)
	}
	m := res.Messages
	if m.Sent == 0 || m.Acked != m.Sent || m.ReceivedByAgents != m.Sent || m.Lost != 0 || m.Duplicates != 0 || m.Errors != 0 {
		t.Errorf("messages = %+v", m)
	}
	if p := res.Replies; p.Sent != m.Sent || p.Received != p.Sent || p.Lost != 0 || p.Failed != 0 {
		t.Errorf("replies = %+v", p)
	}
	if res.Latency.CustomerToAgent.Count != int(m.Sent) || res.Latency.Handoff.Count != 6 || res.Throughput <= 0 {
		t.Errorf("latency/throughput: %+v, %.1f msg/s", res.Latency, res.Throughput)
	}
	if c := res.Cleanup; c.SessionsClosed != 6 || c.AgentsOffline != 2 || c.SessionErrors+c.AgentErrors != 0 {
		t.Errorf("cleanup = %+v", c)
	}

	// The server must hold no bench session open any more.
	base, _ := CheckLocalURL(url)
	a := newAPI(base)
	tok, _, err := a.login(context.Background(), app.DemoTenant, "admin", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	var open struct {
		Sessions []struct {
			ID string `json:"id"`
		} `json:"sessions"`
	}
	if err := a.do(context.Background(), "GET", "/api/v1/sessions?state=queued,offered,active,wrapup", tok, nil, &open); err != nil {
		t.Fatal(err)
	}
	if len(open.Sessions) != 0 {
		t.Errorf("%d sessions still open after clean-up", len(open.Sessions))
	}
}

// TestRunIdleEndToEnd opens a few idle connections and checks they were
// all open on the server during the hold.
func TestRunIdleEndToEnd(t *testing.T) {
	url := startServer(t)
	res, err := RunIdle(context.Background(), Config{URL: url, ChatKey: app.DemoChatKey, Idle: 20, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatalf("RunIdle: %v", err)
	}
	if res.Opened != 20 || res.Failed != 0 || res.Dropped != 0 {
		t.Errorf("idle = %+v", res)
	}
	if res.MemoryMeasured && res.ServerConnsAfter != 20 {
		t.Errorf("server counted %.0f web-chat connections, want 20", res.ServerConnsAfter)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Logf("%s %s", time.Now().Format("15:04:05.000"), b)
	return len(b), nil
}
