package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/whatsapp"
	"github.com/switchboard-acd/switchboard/channels/whatsapp/whatsapptest"
	"github.com/switchboard-acd/switchboard/internal/apptest"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// webhookTestConfig is a short run against node n: small enough for the
// embedded backend on a busy machine; its correctness checks are what the
// tests look at, not its speed.
func webhookTestConfig(t *testing.T, n *apptest.Node) WebhookConfig {
	cfg := DefaultWebhookConfig()
	cfg.URL, cfg.AdminPassword = n.URL, apptest.Password
	cfg.Customers, cfg.Accounts, cfg.Concurrency = 40, 2, 8
	cfg.Warmup, cfg.Duration, cfg.Drain = 200*time.Millisecond, time.Second, 20*time.Second
	cfg.DupRatio = 0.5 // every second POST of a worker: re-posts even in a short, slow run
	cfg.Progress = testWriter{t}
	return cfg
}

// runWebhook runs cfg and fails the test on any error or violation.
func runWebhook(t *testing.T, cfg WebhookConfig) *WebhookResult {
	t.Helper()
	res, err := RunWebhook(context.Background(), cfg)
	var b strings.Builder
	if res != nil {
		res.WriteText(&b)
	}
	if err != nil {
		t.Fatalf("RunWebhook: %v\n%s", err, b.String())
	}
	t.Logf("\n%s", b.String())
	ck := res.Check
	if !ck.MetricsRead || len(ck.Violations) > 0 {
		t.Fatalf("checks: %+v", ck)
	}
	// With every POST answered, the server's counters must match exactly.
	if ck.NewFailed != 0 || ck.DupFailed != 0 || ck.Stored != ck.NewAccepted || ck.Duplicate != ck.DupAccepted {
		t.Errorf("bench %d new + %d dup accepted (%d + %d failed), server stored %d, duplicates %d",
			ck.NewAccepted, ck.DupAccepted, ck.NewFailed, ck.DupFailed, ck.Stored, ck.Duplicate)
	}
	// Over the whole run (a slow machine may put the few re-posts of a
	// short run in the warm-up, outside the measured window).
	if ck.DupAccepted == 0 {
		t.Errorf("no duplicate was re-posted: %+v", ck)
	}
	if res.Window.NewAccepted == 0 || res.Latency.New.Count != int(res.Window.NewAccepted) || res.Latency.New.P50ms <= 0 {
		t.Errorf("window %+v, latency %+v", res.Window, res.Latency.New)
	}
	if len(res.Window.NotOK) != 0 {
		t.Errorf("answers other than 200: %v", res.Window.NotOK)
	}
	// The node answers webhooks from its inbound log: the bench must have
	// seen it, counted messages taken in during the window, and waited for
	// the backlog before the checks above.
	in := res.Inbound
	if !in.Log || !in.WindowRead || in.ProcessedWindow <= 0 || in.ProcessedPerSec <= 0 ||
		in.ProcessedWindow != in.Stored+in.Duplicate+in.Refused || in.Refused != 0 {
		t.Errorf("inbound: %+v", in)
	}
	if !in.Drained || in.BacklogAfterDrain != 0 || in.BacklogAtEnd < 0 {
		t.Errorf("inbound backlog not drained: %+v", in)
	}
	// The demo knowledge base answers the default text: the bot's answers
	// leave through the outbox to the fake, and all of them by the end.
	o := res.Outbox
	if o.GraphTotal == 0 || o.PendingAfterDrain != 0 || float64(o.GraphTotal) < o.ServerSent || o.ServerSent == 0 {
		t.Errorf("outbox: %+v", o)
	}
	if !res.CPU.ServerInProcess || res.CPU.Bench <= 0 {
		t.Errorf("cpu: %+v (the node runs in the test process)", res.CPU)
	}
	if c := res.Cleanup; c.Errors != 0 || c.Deleted+c.Disabled != cfg.Accounts {
		t.Errorf("cleanup: %+v", c)
	}
	return res
}

// TestRunWebhook runs the bench briefly against a real node on both
// backends, closed and open loop, and checks that its correctness checks
// pass and that it removed its accounts.
func TestRunWebhook(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts a node")
	}
	for _, backend := range apptest.Backends {
		t.Run(backend, func(t *testing.T) {
			n := apptest.Start(t, backend)
			t.Run("ClosedLoop", func(t *testing.T) {
				cfg := webhookTestConfig(t, n)
				res := runWebhook(t, cfg)
				if res.Mode != "closed" || res.Concurrency != 8 {
					t.Errorf("mode %s, concurrency %d", res.Mode, res.Concurrency)
				}
				// No account of the run may still take webhooks.
				tok := n.Login(t, "admin")
				r := n.Do(t, "GET", "/api/v1/channel-accounts?type=whatsapp&enabled=true", tok, nil)
				if strings.Contains(string(r.Body), "bench-webhook-"+res.RunID) {
					t.Errorf("an account of run %s is still enabled: %s", res.RunID, r.Body)
				}
			})
			t.Run("OpenLoop", func(t *testing.T) {
				cfg := webhookTestConfig(t, n)
				cfg.Rate, cfg.Concurrency = 100, 16
				res := runWebhook(t, cfg)
				if res.Latency.FromSchedule == nil || res.Latency.FromSchedule.Count == 0 {
					t.Errorf("no from-schedule latency")
				}
				// The pacer never runs ahead of the rate; on a loaded
				// machine it may fall behind, so only a stalled pacer fails.
				if res.PostsPerSec > 125 || res.PostsPerSec < 5 {
					t.Errorf("%.0f POSTs/s started, want about 100", res.PostsPerSec)
				}
			})
		})
	}
}

// TestWebhookNotification checks that the bench's notifications are what
// the WhatsApp adapter takes from Meta: the signature verifies, and the
// message comes out with the customer, the wamid and the text.
func TestWebhookNotification(t *testing.T) {
	r := &whRun{cfg: WebhookConfig{Customers: 1000}, id: "abc123", waPrefix: "1234567", wabaID: "102290129340398"}
	r.textJSON, _ = json.Marshal(`say "hi" \ 你好`)
	r.accounts = []whAccount{{Phone: "106540352242922", Secret: "s3cret"}}
	p := r.next()
	p2 := r.next()
	if bytes.Equal(p.body, p2.body) {
		t.Fatal("two notifications are the same")
	}
	// Independent signer (the tests' one) against the bench's.
	if want := whatsapptest.Sign("s3cret", p.body); p.sig != want {
		t.Errorf("signature %s, want %s", p.sig, want)
	}
	ad := whatsapp.New(whatsapp.Options{})
	creds, _ := json.Marshal(map[string]string{"phone_number_id": "106540352242922", "access_token": "t",
		"app_secret": "s3cret", "verify_token": "v"})
	acct := channels.Account{TenantID: "demo", ID: "acc1", Type: channels.WhatsApp, Credentials: creds, Enabled: true}
	res, err := ad.Webhook(context.Background(), acct, whatsapptest.WebhookRequest("s3cret", p2.body))
	if err != nil {
		t.Fatalf("Webhook: %v\n%s", err, p2.body)
	}
	if len(res.Inbound) != 1 {
		t.Fatalf("inbound = %+v", res.Inbound)
	}
	in := res.Inbound[0]
	got := []string{in.ExternalID, in.DisplayName, in.ChannelMsgID, in.Type, in.Text}
	want := []string{"1234567000001", "Bench customer 1", "wamid.bench.abc123.1", channels.MsgText, `say "hi" \ 你好`}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("inbound (-want +got):\n%s", d)
	}
	if !r.isCustomer("1234567000999") || r.isCustomer("1234567001000") || r.isCustomer("7654321000001") || r.isCustomer("123456700001") {
		t.Error("isCustomer is wrong")
	}
	// A body signed with another secret is refused.
	if _, err := ad.Webhook(context.Background(), acct, whatsapptest.WebhookRequest("other", p2.body)); err == nil {
		t.Error("a notification signed with another secret was accepted")
	}
}

// TestWebhookCheck feeds the checks counters that disagree and expects
// each disagreement to be reported.
func TestWebhookCheck(t *testing.T) {
	key := func(outcome string) string {
		return `switchboard_inbound_messages_total{channel="whatsapp",outcome="` + outcome + `"}`
	}
	m0 := map[string]float64{key("stored"): 10, key("duplicate"): 1}
	tests := []struct {
		name    string
		w       whWorker
		m1      map[string]float64
		g       graphCounts
		wantErr []string
	}{
		{"consistent", whWorker{newOK: 100, dupOK: 3}, map[string]float64{key("stored"): 110, key("duplicate"): 4}, graphCounts{}, nil},
		{"acked not stored", whWorker{newOK: 100}, map[string]float64{key("stored"): 105}, graphCounts{}, []string{"acknowledged and not stored"}},
		{"stored twice", whWorker{newOK: 100, dupOK: 2}, map[string]float64{key("stored"): 112, key("duplicate"): 1}, graphCounts{},
			[]string{"stored twice", "only 0 counted as duplicates"}},
		{"failure widens", whWorker{newOK: 100, newBad: 2, firstFail: "503 busy"}, map[string]float64{key("stored"): 111}, graphCounts{},
			[]string{"2 POSTs were not answered 200 (first: 503 busy)"}},
		{"refused", whWorker{newOK: 1}, map[string]float64{key("stored"): 11, key("refused"): 1}, graphCounts{}, []string{"refused 1"}},
		{"graph", whWorker{newOK: 1}, map[string]float64{key("stored"): 11}, graphCounts{UnknownRecipient: 2, Rejected: 1},
			[]string{"2 answers went to", "1 sends were refused by the fake Graph API (first: 401 x)"}},
		{"nothing", whWorker{}, map[string]float64{key("stored"): 10}, graphCounts{}, []string{"no notification was answered 200"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var res WebhookResult
			w := tt.w
			(&whRun{}).check(&res, []*whWorker{&w}, m0, tt.m1, nil, tt.g, "401 x")
			got := strings.Join(res.Check.Violations, "; ")
			if len(tt.wantErr) == 0 && got != "" {
				t.Errorf("violations: %s", got)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(got, want) {
					t.Errorf("violations %q, want one with %q", got, want)
				}
			}
			if tt.name == "failure widens" && strings.Contains(got, "stored twice") {
				t.Errorf("a failed POST may have been stored: %s", got)
			}
		})
	}
	var res WebhookResult
	(&whRun{}).check(&res, []*whWorker{{newOK: 1}}, nil, nil, io.ErrUnexpectedEOF, graphCounts{}, "")
	if res.Check.MetricsRead || !strings.Contains(strings.Join(res.Check.Violations, ";"), "could not be read") {
		t.Errorf("unreadable metrics: %+v", res.Check)
	}
}

// TestWebhookCheckBacklog checks that a count that falls short while
// messages are still in the server's inbound log says so, and that a
// drained log adds nothing.
func TestWebhookCheckBacklog(t *testing.T) {
	key := func(outcome string) string {
		return `switchboard_inbound_messages_total{channel="whatsapp",outcome="` + outcome + `"}`
	}
	m1 := map[string]float64{key("stored"): 90, key("duplicate"): 1}
	tests := []struct {
		name string
		in   WebhookInbound
		want string
	}{
		{"left", WebhookInbound{Log: true, BacklogAfterDrain: 12, DrainSec: 2}, "(12 still in the inbound log after 2.0s of drain: lengthen -drain)"},
		{"unknown", WebhookInbound{Log: true, BacklogAfterDrain: -1, DrainSec: 2}, "(an unknown number still in the inbound log"},
		{"drained", WebhookInbound{Log: true, Drained: true}, ""},
		{"no log", WebhookInbound{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := WebhookResult{Inbound: tt.in}
			(&whRun{}).check(&res, []*whWorker{{newOK: 100, dupOK: 3}}, nil, m1, nil, graphCounts{}, "")
			got := strings.Join(res.Check.Violations, "; ")
			if !strings.Contains(got, "10 acknowledged and not stored") || !strings.Contains(got, "only 1 counted as duplicates") {
				t.Fatalf("violations %q", got)
			}
			if n := strings.Count(got, "still in the inbound log"); tt.want == "" && n != 0 || tt.want != "" && n != 2 {
				t.Errorf("violations %q: the backlog is named %d times", got, n)
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("violations %q, want %q", got, tt.want)
			}
		})
	}
}

// TestWebhookFillInbound checks the second stage's figures from the
// metrics read around the window and at the end of the load.
func TestWebhookFillInbound(t *testing.T) {
	key := func(channel, outcome string) string {
		return `switchboard_inbound_messages_total{channel="` + channel + `",outcome="` + outcome + `"}`
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	snap := func(at time.Duration, m map[string]float64) whSnapshot {
		return whSnapshot{at: t0.Add(at), metrics: m, metricsAt: t0.Add(at + 10*time.Millisecond)}
	}
	before := map[string]float64{key("whatsapp", "stored"): 100, key("whatsapp", "duplicate"): 5, key("whatsapp", "error"): 1,
		key("wecom_kf", "stored"): 7, "switchboard_inbound_backlog": 0}
	after := map[string]float64{key("whatsapp", "stored"): 1100, key("whatsapp", "duplicate"): 25, key("whatsapp", "refused"): 2,
		key("whatsapp", "error"): 9, key("wecom_kf", "stored"): 500, "switchboard_inbound_backlog": 3000}
	end := map[string]float64{"switchboard_inbound_backlog": 3100, "switchboard_inbound_oldest_seconds": 1.5}
	tests := []struct {
		name      string
		m0        map[string]float64
		s0, s1    whSnapshot
		m1        map[string]float64
		want      WebhookInbound
		wantWarns int
	}{
		{"log", before, snap(0, before), snap(2*time.Second, after), end, WebhookInbound{
			Log: true, WindowRead: true, ProcessedWindow: 1022, Stored: 1000, Duplicate: 20, Refused: 2, ProcessedPerSec: 511,
			BacklogWindowEnd: 3000, BacklogAtEnd: 3100, OldestAtEndSec: 1.5,
		}, 0},
		// The gauge missing from some reads (the server's query failed)
		// still tells a server with a log.
		{"log seen once", nil, snap(0, map[string]float64{}), snap(time.Second, map[string]float64{}), end, WebhookInbound{
			Log: true, WindowRead: true, BacklogAtEnd: 3100, OldestAtEndSec: 1.5,
		}, 0},
		{"older server", map[string]float64{}, snap(0, map[string]float64{key("whatsapp", "stored"): 1}),
			snap(time.Second, map[string]float64{key("whatsapp", "stored"): 401}), map[string]float64{}, WebhookInbound{
				WindowRead: true, ProcessedWindow: 400, Stored: 400, ProcessedPerSec: 400,
			}, 0},
		{"window unread", before, snap(0, nil), snap(time.Second, after), nil, WebhookInbound{Log: true}, 1},
		{"interrupted in the warm-up", before, whSnapshot{}, snap(time.Second, after), nil, WebhookInbound{Log: true}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var res WebhookResult
			fillInbound(&res, tt.m0, tt.s0, tt.s1, tt.m1)
			if d := cmp.Diff(tt.want, res.Inbound); d != "" {
				t.Errorf("inbound (-want +got):\n%s", d)
			}
			if len(res.Warnings) != tt.wantWarns {
				t.Errorf("warnings %q, want %d", res.Warnings, tt.wantWarns)
			}
		})
	}
}

// metricsServer serves /metrics with the inbound backlog that backlog
// returns at each scrape (omitted when it returns a negative number, as
// a server without an inbound log, or whose backlog query failed, does);
// status, when not 200, is the answer instead.
func metricsServer(t *testing.T, backlog func(scrape int) (float64, int)) *api {
	t.Helper()
	var mu sync.Mutex
	scrapes := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		n, status := backlog(scrapes)
		scrapes++
		mu.Unlock()
		if status != http.StatusOK {
			w.WriteHeader(status)
			return
		}
		fmt.Fprintln(w, "# TYPE switchboard_outbox_pending gauge")
		fmt.Fprintln(w, `switchboard_outbox_pending{account="a1"} 0`)
		if n >= 0 {
			fmt.Fprintln(w, "# TYPE switchboard_inbound_backlog gauge")
			fmt.Fprintf(w, "switchboard_inbound_backlog %g\n", n)
		}
	}))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return newAPI(u)
}

// TestWebhookDrainInbound waits for backlogs that drain, that do not, and
// that cannot be read, against a /metrics endpoint.
func TestWebhookDrainInbound(t *testing.T) {
	tests := []struct {
		name    string
		backlog func(scrape int) (float64, int)
		drained bool
		left    float64
		warn    string
	}{
		// 1500 at the end of the load (the first read, given), then the
		// server works it off; a scrape without the gauge (a failed
		// query) is not an empty backlog.
		{name: "drains", backlog: func(i int) (float64, int) {
			return []float64{800, -1, 10, 0, 0}[min(i, 4)], http.StatusOK
		}, drained: true},
		{name: "stuck", backlog: func(int) (float64, int) { return 7, http.StatusOK }, left: 7, warn: "7 messages accepted and not yet taken"},
		{name: "missing", backlog: func(int) (float64, int) { return -1, http.StatusOK }, left: -1, warn: "did not report switchboard_inbound_backlog"},
		{name: "unreadable", backlog: func(int) (float64, int) { return 0, http.StatusServiceUnavailable }, left: -1, warn: "GET /metrics: 503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A backlog that drains is given time to spare on a busy
			// machine; one that does not is given a short -drain.
			drain := time.Second
			if tt.drained {
				drain = time.Minute
			}
			r := &whRun{cfg: WebhookConfig{Drain: drain, Progress: testWriter{t}}, api: metricsServer(t, tt.backlog)}
			var res WebhookResult
			start := map[string]float64{"switchboard_inbound_backlog": 1500}
			t0 := time.Now()
			m, err := r.drainInbound(context.Background(), &res, start, nil, t0.Add(drain))
			in := res.Inbound
			if in.Drained != tt.drained || in.BacklogAfterDrain != tt.left {
				t.Errorf("drained %v, left %v; want %v, %v", in.Drained, in.BacklogAfterDrain, tt.drained, tt.left)
			}
			if in.DrainSec <= 0 || in.DrainSec > time.Since(t0).Seconds() {
				t.Errorf("drain took %.3fs", in.DrainSec)
			}
			warns := strings.Join(res.Warnings, "; ")
			if tt.warn == "" && warns != "" || !strings.Contains(warns, tt.warn) {
				t.Errorf("warnings %q, want %q", warns, tt.warn)
			}
			// The last read is handed on to the outbox's drain and the
			// checks.
			if tt.drained && (err != nil || m["switchboard_inbound_backlog"] != 0 || len(m) == 0) {
				t.Errorf("last read %v, %v", m, err)
			}
		})
	}

	// A backlog already empty at the end of the load is not waited for,
	// nor is a server that reads fine and then goes away waited for to
	// the end of -drain.
	r := &whRun{cfg: WebhookConfig{Drain: time.Hour}, api: metricsServer(t, func(int) (float64, int) { return 0, http.StatusBadGateway })}
	var res WebhookResult
	if _, err := r.drainInbound(context.Background(), &res, map[string]float64{"switchboard_inbound_backlog": 0}, nil, time.Now().Add(time.Hour)); err != nil || !res.Inbound.Drained {
		t.Errorf("empty backlog: %+v, %v", res.Inbound, err)
	}
	res = WebhookResult{}
	_, err := r.drainInbound(context.Background(), &res, map[string]float64{"switchboard_inbound_backlog": 4}, nil, time.Now().Add(time.Hour))
	if err == nil || res.Inbound.Drained || res.Inbound.BacklogAfterDrain != -1 {
		t.Errorf("server gone: %+v, %v", res.Inbound, err)
	}
}

// TestWebhookText checks that the report names both stages and the
// backlog's fate.
func TestWebhookText(t *testing.T) {
	res := &WebhookResult{RunID: "r1", Mode: "closed", Window: WebhookCounts{Accepted: 12000, NewAccepted: 11880, DuplicatesAccepted: 120}, AcceptedPerSec: 6000,
		Inbound: WebhookInbound{Log: true, WindowRead: true, ProcessedWindow: 6000, Stored: 5900, Duplicate: 100, ProcessedPerSec: 3000,
			BacklogAtEnd: 6500, OldestAtEndSec: 2.25, Drained: true, DrainSec: 2.5}}
	var b strings.Builder
	res.WriteText(&b)
	for _, want := range []string{
		"accepted (durable, answered 200): 12000 POSTs = 6000/s",
		"(target ≥ 5000/s with PostgreSQL + Redis: met)",
		"taken in: 6000 messages in the window = 3000/s (stored 5900, duplicates 100, refused 0), 50% of the accepted; inbound backlog at the end of the load 6500 (oldest 2.2s), drained in 2.5s",
		"checks (whole run, counted after the drain)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
	for _, tt := range []struct {
		in   WebhookInbound
		want string
	}{
		{WebhookInbound{Log: true, WindowRead: true, BacklogAfterDrain: 40, DrainSec: 120}, "NOT drained: 40 left after 120.0s"},
		{WebhookInbound{Log: true, BacklogAfterDrain: -1, DrainSec: 1}, "taken in: unknown (/metrics not read at both ends of the window); inbound backlog at the end of the load 0 (oldest 0.0s), NOT drained: unknown after 1.0s"},
		{WebhookInbound{WindowRead: true, ProcessedWindow: 50, Stored: 50, ProcessedPerSec: 25}, "taken in: 50 messages in the window = 25/s (stored 50, duplicates 0, refused 0); the server has no inbound log"},
	} {
		if got := tt.in.text(100); !strings.Contains(got, tt.want) {
			t.Errorf("text(%+v) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// The JSON result carries the second stage.
	j, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"inbound":{"log":true,`, `"processed_per_sec":3000`, `"backlog_at_end":6500`, `"drain_sec":2.5`} {
		if !strings.Contains(string(j), want) {
			t.Errorf("JSON lacks %s: %s", want, j)
		}
	}
}

func TestParseMetricKey(t *testing.T) {
	tests := []struct {
		in     string
		name   string
		labels map[string]string
		ok     bool
	}{
		{`up`, "up", nil, true},
		{`switchboard_outbox_pending{account="a1",tenant="demo"}`, "switchboard_outbox_pending", map[string]string{"account": "a1", "tenant": "demo"}, true},
		{`m{a="x,y=\"z\"",b="\\n\n"}`, "m", map[string]string{"a": `x,y="z"`, "b": "\\n\n"}, true},
		{`m{}`, "m", map[string]string{}, true},
		{`m{a="x"`, "", nil, false},
		{`m{a=x}`, "", nil, false},
		{`{a="x"}`, "", nil, false},
		{`m{a="x"b="y"}`, "", nil, false},
		{``, "", nil, false},
	}
	for _, tt := range tests {
		name, labels, ok := parseMetricKey(tt.in)
		if name != tt.name || ok != tt.ok || !cmp.Equal(labels, tt.labels) {
			t.Errorf("parseMetricKey(%q) = %q, %v, %v; want %q, %v, %v", tt.in, name, labels, ok, tt.name, tt.labels, tt.ok)
		}
	}
	m := map[string]float64{
		`switchboard_outbox_pending{account="a1",tenant="demo"}`: 3,
		`switchboard_outbox_pending{account="a2",tenant="demo"}`: 4,
		`switchboard_outbox_pending{account="a1",tenant="t2"}`:   5,
	}
	if got := (whMetric{name: "switchboard_outbox_pending", labels: map[string]string{"account": "a1"}}).sum(m); got != 8 {
		t.Errorf("sum = %v, want 8", got)
	}
}

func TestProcParsing(t *testing.T) {
	stat := []byte("4242 (post gres) (x)) S 1 4242 4242 0 -1 4194560 500 0 0 0 1234 56 0 0 20 0 1 0 100 1000 200 18446744073709551615\n")
	comm, cpu, ok := parseProcStat(stat)
	if !ok || comm != "post gres) (x)" || cpu != (1234+56)*clockTick {
		t.Errorf("parseProcStat = %q, %v, %v", comm, cpu, ok)
	}
	if _, _, ok := parseProcStat([]byte("1 (x) S 1 2")); ok {
		t.Error("a truncated stat line parsed")
	}
	if cpu, ok := procCPU(os.Getpid()); !ok || cpu < 0 {
		t.Errorf("procCPU(self) = %v, %v", cpu, ok)
	}

	tcp := []byte(`  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:46B7 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123456 1 0000000000000000 100 0 0 10 0
   1: 0100007F:46B7 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 20 4 30 10 -1
   2: 00000000:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 888 1 0000000000000000 100 0 0 10 0
`)
	if got := listeningInodes(tcp, 0x46B7); !cmp.Equal(got, []string{"123456"}) {
		t.Errorf("listeningInodes = %v", got)
	}
	if got := listeningInodes(tcp, 1); len(got) != 0 {
		t.Errorf("listeningInodes(other port) = %v", got)
	}

	// A real listener of this process is found through /proc.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if pid := findListenerPID(ln.Addr().(*net.TCPAddr).Port); pid != os.Getpid() {
		t.Errorf("findListenerPID = %d, want this process %d", pid, os.Getpid())
	}
	for _, tt := range []struct {
		host, scheme string
		want         int
	}{{"127.0.0.1:18095", "http", 18095}, {"localhost", "http", 80}, {"[::1]", "https", 443}, {"[::1]:8443", "https", 8443}} {
		if got, err := urlPort(tt.host, tt.scheme); err != nil || got != tt.want {
			t.Errorf("urlPort(%q) = %d, %v; want %d", tt.host, got, err, tt.want)
		}
	}
	before := map[int]time.Duration{1: time.Second, 2: 3 * time.Second}
	after := map[int]time.Duration{1: 2 * time.Second, 3: time.Second} // 2 exited, 3 started
	if got := cpuDelta(before, after); got != 2*time.Second {
		t.Errorf("cpuDelta = %v, want 2s", got)
	}
}

// TestFakeGraph sends the real samples of send requests to the fake and
// checks what it accepts, refuses and counts.
func TestFakeGraph(t *testing.T) {
	g, err := startFakeGraph("v21.0", "tok", "run1", []string{"106540352242922"},
		func(wa string) bool { return wa == "16505555555" }, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer g.close(context.Background())
	send := func(path, token string, body []byte) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("POST", g.url+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	const path = "/v21.0/106540352242922/messages"
	text := testenv.ChannelSample(t, "whatsapp_send_text_request.json") // to +16505555555: not our customer
	if st, b := send(path, "tok", text); st != 200 || !strings.Contains(string(b), `"id":"wamid.out.run1.1"`) {
		t.Errorf("text send: %d %s", st, b)
	}
	ours := bytes.Replace(text, []byte(`"+16505555555"`), []byte(`"16505555555"`), 1)
	if st, _ := send(path, "tok", ours); st != 200 {
		t.Errorf("send to a customer: %d", st)
	}
	for _, f := range []string{"whatsapp_send_interactive_buttons_request.json", "whatsapp_send_template_request.json"} {
		if st, b := send(path, "tok", testenv.ChannelSample(t, f)); st != 200 {
			t.Errorf("%s: %d %s", f, st, b)
		}
	}
	if st, b := send(path, "tok", testenv.ChannelSample(t, "whatsapp_mark_read_request.json")); st != 200 || string(b) != `{"success":true}` {
		t.Errorf("mark read: %d %s", st, b)
	}
	if st, _ := send(path, "wrong", ours); st != 401 {
		t.Errorf("wrong token: %d, want 401", st)
	}
	if st, _ := send("/v21.0/999/messages", "tok", ours); st != 400 {
		t.Errorf("unknown number: %d, want 400", st)
	}
	if st, _ := send(path, "tok", []byte(`{"to":"1"}`)); st != 400 {
		t.Errorf("bad body: %d, want 400", st)
	}
	want := graphCounts{Sent: 1, Reads: 1, UnknownRecipient: 3, Rejected: 3}
	if d := cmp.Diff(want, g.counts()); d != "" {
		t.Errorf("counts (-want +got):\n%s", d)
	}
	if !strings.Contains(g.firstRefusal(), "401") {
		t.Errorf("first refusal %q", g.firstRefusal())
	}
}

func TestWebhookConfigValidate(t *testing.T) {
	cfg := DefaultWebhookConfig()
	cfg.AdminPassword = "x"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	cfg.URL, cfg.Accounts, cfg.Customers, cfg.DupRatio, cfg.SendRate, cfg.Text, cfg.AdminPassword =
		"http://10.0.0.1:80", 0, 0, 0.9, 5000, " ", ""
	err := cfg.Validate()
	for _, want := range []string{"refusing", "-accounts", "-customers", "-dup-ratio", "-send-rate", "-text", "password"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
	if c := (WebhookConfig{Rate: 10}); c.workers() != defaultOpenConcurrency {
		t.Errorf("open-loop default workers = %d", c.workers())
	}
	if c := (WebhookConfig{}); c.workers() != defaultClosedConcurrency {
		t.Errorf("closed-loop default workers = %d", c.workers())
	}
}
