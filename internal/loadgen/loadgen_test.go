package loadgen

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestSummarizeNearestRank(t *testing.T) {
	var s []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	l := Summarize(s)
	if l.Count != 100 || l.P50ms != 50 || l.P95ms != 95 || l.P99ms != 99 || l.Maxms != 100 || l.Meanms != 50.5 {
		t.Errorf("Summarize(1..100ms) = %+v", l)
	}
	if l := Summarize([]time.Duration{7 * time.Millisecond}); l.P50ms != 7 || l.P99ms != 7 || l.Maxms != 7 {
		t.Errorf("one sample: %+v", l)
	}
	if l := Summarize(nil); l != (Latency{}) {
		t.Errorf("no samples: %+v", l)
	}
}

func TestCheckLocalURL(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8080", "http://localhost:18080/", "https://[::1]:8443", "http://127.0.0.5"} {
		if _, err := CheckLocalURL(ok); err != nil {
			t.Errorf("CheckLocalURL(%q) = %v, want ok", ok, err)
		}
	}
	for _, bad := range []string{"http://10.0.0.1:8080", "http://example.com", "http://localhost.evil.com", "ftp://127.0.0.1",
		"127.0.0.1:8080", "http://127.0.0.1:8080/api", "http://0.0.0.0:8080"} {
		if _, err := CheckLocalURL(bad); err == nil {
			t.Errorf("CheckLocalURL(%q) accepted", bad)
		}
	}
}

func TestParseMarker(t *testing.T) {
	cases := map[string]int{
		"agent bench-ab12cd-c17":       17,
		"bench-ab12cd-c0 agent":        0,
		"agent bench-ab12cd-c17x":      -1,
		"agent bench-zzzzzz-c3":        -1, // another run's customer
		"agent":                        -1,
		"agent bench-ab12cd-c-1":       -1,
		"please, agent bench-ab12cd-c": -1,
	}
	for text, want := range cases {
		if got := parseMarker(text, "ab12cd"); got != want {
			t.Errorf("parseMarker(%q) = %d, want %d", text, got, want)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	const text = `# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 1.2345678e+07
switchboard_websocket_connections{kind="webchat"} 42
switchboard_websocket_connections{kind="agent"} 3
odd_metric{label="with space } inside"} 5 1700000000
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if m[rssMetric] != 12345678 || m[webchatWSMetric] != 42 || m[`switchboard_websocket_connections{kind="agent"}`] != 3 {
		t.Errorf("parseMetrics = %v", m)
	}
	if m[`odd_metric{label="with space } inside"}`] != 5 {
		t.Errorf("label with brace and space: %v", m)
	}
}

func TestFirstLeaf(t *testing.T) {
	tree := []reasonNode{
		{Code: "billing", Children: []reasonNode{{Code: "billing.refund"}, {Code: "billing.invoice"}}},
		{Code: "other"},
	}
	if got := firstLeaf(tree); got != "billing.refund" {
		t.Errorf("firstLeaf = %q", got)
	}
	if got := firstLeaf(nil); got != "" {
		t.Errorf("firstLeaf(nil) = %q", got)
	}
}

func TestSourceAddr(t *testing.T) {
	cases := []struct {
		host string
		g    int
		want string
	}{
		{"127.0.0.1", 0, ""},
		{"127.0.0.1", connsPerSource - 1, ""},
		{"127.0.0.1", connsPerSource, "127.0.0.2"},
		{"127.0.0.1", 3*connsPerSource + 5, "127.0.0.4"},
		{"localhost", 5 * connsPerSource, ""},
		{"::1", 5 * connsPerSource, ""},
	}
	for _, c := range cases {
		if got, err := sourceAddr(c.host, c.g); err != nil || got != c.want {
			t.Errorf("sourceAddr(%q, %d) = %q, %v; want %q", c.host, c.g, got, err, c.want)
		}
	}
	if _, err := sourceAddr("127.0.0.1", 300*connsPerSource); err == nil {
		t.Error("sourceAddr beyond 127.0.0.254 accepted")
	}
}

func TestPacerSpacesReservations(t *testing.T) {
	p := newPacer(100) // 10ms apart
	now := time.Now()
	a, b, c := p.reserve(now), p.reserve(now), p.reserve(now)
	if b.Sub(a) != 10*time.Millisecond || c.Sub(b) != 10*time.Millisecond {
		t.Errorf("reservations %v %v %v not 10ms apart", a, b, c)
	}
	// Idle time is not made up with a burst.
	later := now.Add(time.Second)
	if d := p.reserve(later); !d.Equal(later) {
		t.Errorf("after idling, reservation %v, want now (%v)", d, later)
	}
	if newPacer(0) != nil {
		t.Error("rate 0 must mean no pacer")
	}
	if err := (*pacer)(nil).wait(context.Background()); err != nil {
		t.Errorf("nil pacer wait: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	base := Config{Customers: 200, Agents: 20, Window: 1, Duration: time.Second, AdminPassword: "x", HandoffWord: "agent"}
	if err := base.validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	if got := base.MaxSessions(); got != 11 {
		t.Errorf("MaxSessions(200/20) = %d, want 11", got)
	}
	c := base
	c.Customers, c.Agents = 201, 20
	if got := c.MaxSessions(); got != 12 {
		t.Errorf("MaxSessions(201/20) = %d, want 12", got)
	}
	c = base
	c.Customers, c.Agents = 2000, 10
	err := c.validate()
	if err == nil || !strings.Contains(err.Error(), "-agents 41") {
		t.Errorf("2000 customers on 10 agents: %v", err)
	}
	c.Agents = 41
	if err := c.validate(); err != nil {
		t.Errorf("2000 customers on 41 agents (50 sessions each) refused: %v", err)
	}
	c = base
	c.AdminPassword = ""
	if err := c.validate(); err == nil {
		t.Error("missing admin password accepted")
	}
}

// TestTrackerLifecycle walks messages through ack, agent receipt and reply,
// and checks the loss, duplicate and window accounting.
func TestTrackerLifecycle(t *testing.T) {
	tr := newTracker(true)
	c := &customer{slots: make(chan struct{}, 4)}
	t0 := time.Now()
	tr.setWindow(t0, t0.Add(time.Hour))

	send := func(cid string, at time.Time) {
		c.slots <- struct{}{}
		tr.sent(cid, c, at)
	}
	// A complete round trip.
	send("b0-1", t0)
	tr.acked("b0-1", t0.Add(time.Millisecond), false)
	if !tr.atAgent("b0-1", t0.Add(2*time.Millisecond)) {
		t.Fatal("first receipt must ask for a reply")
	}
	if tr.atAgent("b0-1", t0.Add(3*time.Millisecond)) {
		t.Fatal("a duplicate must not ask for a reply")
	}
	tr.replySending("b0-1", t0.Add(3*time.Millisecond))
	tr.replyDone("b0-1", nil)
	tr.atCustomer("b0-1", t0.Add(7*time.Millisecond))
	// Acked, never at an agent: lost.
	send("b0-2", t0)
	tr.acked("b0-2", t0.Add(time.Millisecond), false)
	// Refused by the server.
	send("b0-3", t0)
	tr.failed("b0-3")
	// Never acked; its slot times out.
	send("b0-4", t0)
	tr.expire("b0-4")

	if len(c.slots) != 1 {
		t.Errorf("%d slots held, want 1 (the lost message's)", len(c.slots))
	}
	if tr.pending() != 1 {
		t.Errorf("pending = %d, want 1", tr.pending())
	}
	m, r, samples, winAgent, winReply := tr.finish()
	want := MessageCounts{Sent: 4, Acked: 2, ReceivedByAgents: 1, Duplicates: 1, Lost: 1, Errors: 1, Unacked: 1, SlotTimeouts: 1}
	if m != want {
		t.Errorf("counts = %+v\nwant     %+v", m, want)
	}
	if r != (ReplyCounts{Sent: 1, Received: 1}) {
		t.Errorf("replies = %+v", r)
	}
	if winAgent != 1 || winReply != 1 {
		t.Errorf("window receipts %d/%d, want 1/1", winAgent, winReply)
	}
	if len(samples[0]) != 2 || samples[1][0] != 2*time.Millisecond || samples[2][0] != 4*time.Millisecond {
		t.Errorf("samples = %v", samples)
	}
	// After finish nothing is recorded any more.
	tr.acked("b0-4", time.Now(), false)
	if m2, _ := tr.snapshot(); m2.Acked != 2 {
		t.Errorf("acked after finish: %d", m2.Acked)
	}
}

// TestWarmupNotMeasured checks that messages sent before the window are
// answered and free their slots but do not count.
func TestWarmupNotMeasured(t *testing.T) {
	tr := newTracker(false)
	c := &customer{slots: make(chan struct{}, 1)}
	t0 := time.Now()
	tr.setWindow(t0.Add(time.Second), t0.Add(2*time.Second))
	c.slots <- struct{}{}
	tr.sent("b1-1", c, t0)
	tr.acked("b1-1", t0, false)
	tr.atAgent("b1-1", t0.Add(1500*time.Millisecond)) // received inside the window
	if len(c.slots) != 0 {
		t.Error("slot not released without replies")
	}
	m, _, samples, winAgent, _ := tr.finish()
	if m.Sent != 0 || m.ReceivedByAgents != 0 || len(samples[1]) != 0 {
		t.Errorf("warm-up message counted: %+v", m)
	}
	if winAgent != 1 {
		t.Errorf("throughput must count receipts inside the window: %d", winAgent)
	}
}
