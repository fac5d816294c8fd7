package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
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
