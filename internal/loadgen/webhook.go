package loadgen

// The WhatsApp webhook ingest bench behind `switchboard bench webhook`. It
// plays Meta's side of a WhatsApp Cloud API integration against a running
// server: it starts a fake Graph API in this process, creates WhatsApp
// channel accounts whose base_url points at it, and posts signed message
// notifications to POST /webhooks/{public_key} as fast as the server takes
// them (closed loop) or at a fixed rate (open loop). The server answers a
// notification once its message is durable in its inbound log, and takes
// it into its conversation (stored, the bot's answer queued in the outbox)
// right after, so the run measures two stages: the accepted POSTs per
// second and their latency, which are what a provider sees, and the
// messages taken in per second, read from the server's counters, with the
// inbound backlog the load left. A server without an inbound log stores a
// message before answering; the two stages are then one.
//
// Besides speed, it checks what the server promises, once the backlog has
// drained: every message answered 200 was stored once (the server's own
// counter, switchboard_inbound_messages_total, moves by exactly the 200s),
// a re-posted notification is answered 200 and stored as a duplicate, not
// a second time, and every answer the server sent went to one of the run's
// customers with the account's token.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/switchboard-acd/switchboard/channels/whatsapp"
)

// TargetWebhookPerSec is the ingest rate the issue sets: accepted
// (durable) WhatsApp notifications per second on the reference machine,
// with PostgreSQL and Redis as the backends. Taking them into their
// conversations follows asynchronously and is reported beside it.
const TargetWebhookPerSec = 5000

// Limits and timings of a webhook run.
const (
	// webhookSlack is added to warm-up, duration and drain to bound the
	// whole run, set-up and clean-up included.
	webhookSlack = 60 * time.Second
	// postTimeout bounds one notification POST; a POST that takes longer
	// counts as failed (its message may still have been stored).
	postTimeout = 30 * time.Second
	// dupRing is how many accepted notifications each worker keeps to
	// re-post as duplicates.
	dupRing = 64
	// maxAccounts bounds -accounts: each is a row and a fake number.
	maxAccounts = 100
	// maxCustomers bounds -customers: the index is six digits of the wa_id.
	maxCustomers = 1_000_000
	// maxAccountRate is the server's bound on an account's rate_per_sec
	// setting (channels.MaxRatePerSec).
	maxAccountRate = 1000
	// defaultClosedConcurrency and defaultOpenConcurrency are the workers
	// when -concurrency is 0: enough in-flight POSTs to keep the server
	// busy in a closed loop, and enough to absorb latency spikes without
	// missing the schedule in an open loop.
	defaultClosedConcurrency = 64
	defaultOpenConcurrency   = 512
)

// WebhookConfig describes a webhook ingest run; DefaultWebhookConfig holds
// the defaults.
type WebhookConfig struct {
	// URL is the server's base URL; it must be on this machine.
	URL string
	// Tenant, AdminUser and AdminPassword sign in the admin who creates
	// and removes the bench's channel accounts.
	Tenant        string
	AdminUser     string
	AdminPassword string
	// Customers is the number of distinct WhatsApp users (wa_ids) writing;
	// notification n comes from customer n mod Customers.
	Customers int
	// Accounts is the number of WhatsApp accounts (business numbers) the
	// customers are spread over. The outbox sends at most SendRate a
	// second per account, so the bot's answers keep up with the ingest only
	// when Accounts*SendRate exceeds the rate of answered messages.
	Accounts int
	// Rate, when positive, selects the open loop: notifications start at
	// this many per second, on at most Concurrency POSTs in flight. Zero
	// is the closed loop: Concurrency workers each post again as soon as
	// their last POST was answered.
	Rate float64
	// Concurrency is the number of workers (0: 64 in the closed loop, 512
	// in the open loop).
	Concurrency int
	// Warmup runs load before measuring; Duration is the measured phase.
	Warmup   time.Duration
	Duration time.Duration
	// DupRatio is the share of POSTs that re-post a notification already
	// accepted (Meta retries deliveries), to check that the server stores
	// it once.
	DupRatio float64
	// Text is every message's text; the default is a question the demo
	// knowledge base answers, so that every message gets a bot answer
	// through the outbox.
	Text string
	// SendRate is the rate_per_sec setting of the bench accounts (sends
	// per second the outbox allows each); 0 leaves the channel's default
	// (WhatsApp: 80/s per number).
	SendRate float64
	// GraphLatency delays every answer of the fake Graph API.
	GraphLatency time.Duration
	// Drain bounds the wait after the load: first for the server's
	// inbound backlog to be taken into its conversations, then for the
	// outbox to send what the run queued, before the checks and the
	// removal of the accounts. A closed loop can leave a backlog of many
	// seconds of processing, hence the long default.
	Drain time.Duration
	// ServerPID is the server's process id, to measure its CPU; 0 finds
	// the process listening on the URL's port through /proc; negative
	// skips the server's CPU.
	ServerPID int
	// Progress receives progress lines; nil discards them.
	Progress io.Writer
}

// DefaultWebhookConfig returns the defaults: 1,000 customers on one
// account, closed loop, 1 % duplicates.
func DefaultWebhookConfig() WebhookConfig {
	return WebhookConfig{
		URL: "http://127.0.0.1:8080", Tenant: "demo", AdminUser: "admin",
		Customers: 1000, Accounts: 1, Warmup: 3 * time.Second, Duration: 15 * time.Second,
		DupRatio: 0.01, Text: "What are your opening hours?", SendRate: maxAccountRate, Drain: 120 * time.Second,
	}
}

// Validate names the flag of every invalid field.
func (c WebhookConfig) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if _, err := CheckLocalURL(c.URL); err != nil {
		errs = append(errs, err)
	}
	if c.Tenant == "" {
		bad("-tenant must not be empty")
	}
	if c.AdminPassword == "" {
		bad("the admin password is required (-admin-password or SWITCHBOARD_DEMO_PASSWORD)")
	}
	if c.Accounts < 1 || c.Accounts > maxAccounts {
		bad("-accounts must be between 1 and %d", maxAccounts)
	}
	if c.Customers < max(1, c.Accounts) || c.Customers > maxCustomers {
		bad("-customers must be between -accounts (%d) and %d", max(1, c.Accounts), maxCustomers)
	}
	if c.Rate < 0 {
		bad("-rate must not be negative")
	}
	if c.Concurrency < 0 {
		bad("-concurrency must not be negative")
	}
	if c.Duration <= 0 {
		bad("-duration must be positive")
	}
	if c.Warmup < 0 {
		bad("-warmup must not be negative")
	}
	if c.DupRatio < 0 || c.DupRatio > 0.5 {
		bad("-dup-ratio must be between 0 and 0.5")
	}
	if strings.TrimSpace(c.Text) == "" || !utf8.ValidString(c.Text) || utf8.RuneCountInString(c.Text) > 4096 {
		bad("-text must be 1 to 4096 characters of valid UTF-8")
	}
	if c.SendRate < 0 || c.SendRate > maxAccountRate {
		bad("-send-rate must be between 0 (the channel's default) and %d", maxAccountRate)
	}
	if c.GraphLatency < 0 {
		bad("-graph-latency must not be negative")
	}
	if c.Drain < 0 {
		bad("-drain must not be negative")
	}
	if c.workers() > 0 {
		if err := checkFDs(c.workers() + c.Accounts); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// workers is the effective concurrency.
func (c WebhookConfig) workers() int {
	switch {
	case c.Concurrency > 0:
		return c.Concurrency
	case c.Rate > 0:
		return defaultOpenConcurrency
	}
	return defaultClosedConcurrency
}

// WebhookCounts are the POSTs started in the measured window.
type WebhookCounts struct {
	// Posts: every POST started in the window that completed.
	Posts int64 `json:"posts"`
	// Accepted: answered 200 (new messages and duplicates).
	Accepted int64 `json:"accepted"`
	// New and NewAccepted: POSTs of messages never posted before.
	New         int64 `json:"new"`
	NewAccepted int64 `json:"new_accepted"`
	// Duplicates and DuplicatesAccepted: re-posts of accepted messages.
	Duplicates         int64 `json:"duplicates"`
	DuplicatesAccepted int64 `json:"duplicates_accepted"`
	// NotOK counts the other answers by HTTP status, or "error" (no
	// answer: connection failure or the POST timeout).
	NotOK map[string]int64 `json:"not_ok,omitempty"`
}

// WebhookCPU is the CPU used in the measured window, in cores (1.0 is one
// core busy for the whole window), from /proc; 0 where unknown.
type WebhookCPU struct {
	Cores int     `json:"cores"`
	Bench float64 `json:"bench"`
	// Server is the server process's; ServerPID the process measured.
	// ServerInProcess: the server runs inside the bench (tests), so its CPU
	// is part of Bench.
	Server          float64 `json:"server,omitempty"`
	ServerPID       int     `json:"server_pid,omitempty"`
	ServerInProcess bool    `json:"server_in_process,omitempty"`
	// Postgres and Redis sum every process named postgres and
	// redis-server on this machine (other databases' work included).
	Postgres float64 `json:"postgres,omitempty"`
	Redis    float64 `json:"redis,omitempty"`
	// Machine is every CPU of the machine (/proc/stat); Other what it has
	// beyond the processes above: load from elsewhere.
	Machine float64 `json:"machine,omitempty"`
	Other   float64 `json:"other,omitempty"`
	// ServerUsPerPost is the server's CPU per accepted POST, in µs.
	ServerUsPerPost float64 `json:"server_us_per_post,omitempty"`
}

// WebhookInbound is the server's second stage: the accepted messages it
// took into their conversations, from its /metrics. A provider's 200 only
// says a message is durable; this says how fast the server turns accepted
// messages into stored ones, and how far it fell behind.
type WebhookInbound struct {
	// Log: the server has an inbound log (it exports
	// switchboard_inbound_backlog). Without one it stores a message before
	// answering, there is no backlog, and the checks are made right after
	// the load.
	Log bool `json:"log"`
	// WindowRead: the counters were read at both ends of the measured
	// window, so the Processed* figures are known.
	WindowRead bool `json:"window_read"`
	// ProcessedWindow is the messages of channel "whatsapp" taken in
	// between the window's two snapshots, by outcome (the server's
	// switchboard_inbound_messages_total stored + duplicate + refused; a
	// retry of a message still in the log counts as a duplicate when it is
	// accepted). ProcessedPerSec is it per second between the two reads.
	ProcessedWindow int64   `json:"processed_window"`
	Stored          int64   `json:"stored_window"`
	Duplicate       int64   `json:"duplicate_window"`
	Refused         int64   `json:"refused_window"`
	ProcessedPerSec float64 `json:"processed_per_sec"`
	// BacklogWindowStart and BacklogWindowEnd are switchboard_inbound_backlog
	// (every tenant, every node) at the window's two snapshots; the
	// difference is how much the accepted rate outran the processed one.
	BacklogWindowStart float64 `json:"backlog_window_start"`
	BacklogWindowEnd   float64 `json:"backlog_window_end"`
	// BacklogAtEnd and OldestAtEndSec are the backlog and the age of its
	// oldest message when the load ended (the last POST answered).
	BacklogAtEnd   float64 `json:"backlog_at_end"`
	OldestAtEndSec float64 `json:"oldest_at_end_sec"`
	// Drained: the backlog reached 0 within -drain, after DrainSec;
	// BacklogAfterDrain is what was left when it did not (-1: unknown, the
	// metric could not be read at the end).
	Drained           bool    `json:"drained"`
	DrainSec          float64 `json:"drain_sec"`
	BacklogAfterDrain float64 `json:"backlog_after_drain"`
}

// WebhookOutbox describes the bot's answers sent through the outbox.
type WebhookOutbox struct {
	// SendRate is the accounts' rate_per_sec (0: the channel's default).
	SendRate float64 `json:"send_rate"`
	// GraphWindow and GraphRun are the sends the fake Graph API accepted
	// in the measured window and from the start of the load to its end.
	GraphWindow int64 `json:"graph_sends_window"`
	GraphRun    int64 `json:"graph_sends_run"`
	// GraphWindowPerSec is GraphWindow per second of the window.
	GraphWindowPerSec float64 `json:"graph_sends_window_per_sec"`
	// PendingAtEnd is switchboard_outbox_pending of the run's accounts when
	// the load ended; PendingAfterDrain after the drain, which took
	// DrainSec (after the inbound backlog's drain: answers are queued when
	// their messages are taken in).
	PendingAtEnd      float64 `json:"pending_at_end"`
	PendingAfterDrain float64 `json:"pending_after_drain"`
	DrainSec          float64 `json:"drain_sec"`
	// GraphTotal is every send the fake accepted, drain included;
	// ServerSent the server's switchboard_outbox_sent_total{channel=
	// "whatsapp"} over the same time (all WhatsApp accounts).
	GraphTotal int64   `json:"graph_sends_total"`
	ServerSent float64 `json:"server_sent"`
	// Reads are read receipts the server sent.
	Reads int64 `json:"reads,omitempty"`
}

// WebhookCheck is what the run verified, over the whole load (warm-up
// included), against the server's metrics. Every count of the server is
// the delta of a counter of channel "whatsapp" between just before the
// load and after the drains (just after the load on a server without an
// inbound log), so that messages accepted and not yet taken in are not
// taken for lost.
type WebhookCheck struct {
	// MetricsRead is false when /metrics could not be read before the
	// load and after the drains: the server-side checks were then not
	// made.
	MetricsRead bool `json:"metrics_read"`
	// The bench's side: new messages and duplicate re-posts answered 200,
	// and those that got another answer or none.
	NewAccepted int64 `json:"new_accepted"`
	NewFailed   int64 `json:"new_failed"`
	DupAccepted int64 `json:"dup_accepted"`
	DupFailed   int64 `json:"dup_failed"`
	// The server's side: switchboard_inbound_messages_total by outcome.
	Stored    int64 `json:"stored"`
	Duplicate int64 `json:"duplicate"`
	Refused   int64 `json:"refused"`
	Errors    int64 `json:"errors"`
	// The fake Graph API's side.
	UnknownRecipient int64  `json:"unknown_recipient"`
	GraphRejected    int64  `json:"graph_rejected"`
	FirstFailure     string `json:"first_failure,omitempty"`
	// Violations describes every check that failed.
	Violations []string `json:"violations,omitempty"`
}

// WebhookCleanup says what became of the run's accounts.
type WebhookCleanup struct {
	Deleted    int    `json:"deleted"`
	Disabled   int    `json:"disabled"`
	Errors     int    `json:"errors"`
	FirstError string `json:"first_error,omitempty"`
}

// WebhookResult is the outcome of RunWebhook.
type WebhookResult struct {
	RunID       string  `json:"run_id"`
	URL         string  `json:"url"`
	Mode        string  `json:"mode"` // "closed" or "open"
	Customers   int     `json:"customers"`
	Accounts    int     `json:"accounts"`
	Concurrency int     `json:"concurrency"`
	RateTarget  float64 `json:"rate_target,omitempty"`
	DupRatio    float64 `json:"dup_ratio"`
	Text        string  `json:"text"`
	WarmupSec   float64 `json:"warmup_sec"`
	DurationSec float64 `json:"duration_sec"`
	SetupSec    float64 `json:"setup_sec"`

	Window WebhookCounts `json:"window"`
	// AcceptedPerSec is Window.Accepted per second of the window: POSTs
	// answered 200, their messages durable (the figure the target is
	// about); NewPerSec the new messages among them; PostsPerSec every
	// POST started (to compare with RateTarget). Inbound.ProcessedPerSec
	// is the rate they were taken into their conversations.
	AcceptedPerSec float64 `json:"accepted_per_sec"`
	NewPerSec      float64 `json:"new_per_sec"`
	PostsPerSec    float64 `json:"posts_per_sec"`

	// Latency of the POSTs of the window answered 200: request written to
	// answer read. FromSchedule (open loop) counts from the POST's slot in
	// the schedule, so it adds the wait for a free worker.
	Latency struct {
		New          ACDLatency  `json:"new"`
		Duplicate    ACDLatency  `json:"duplicate"`
		FromSchedule *ACDLatency `json:"from_schedule,omitempty"`
	} `json:"latency"`

	CPU      WebhookCPU     `json:"cpu"`
	Inbound  WebhookInbound `json:"inbound"`
	Outbox   WebhookOutbox  `json:"outbox"`
	Check    WebhookCheck   `json:"check"`
	Cleanup  WebhookCleanup `json:"cleanup"`
	Warnings []string       `json:"warnings,omitempty"`
}

// whAccount is one WhatsApp account of the run.
type whAccount struct {
	ID, PublicKey, Phone, Secret, VerifyToken string
	hook                                      string // the webhook URL
}

// whPost is one notification, kept to be re-posted as a duplicate.
type whPost struct {
	acct int
	body []byte
	sig  string
}

// whWindow collects a worker's figures of the measured window.
type whWindow struct {
	posts, accepted        int64
	newPosts, newAccepted  int64
	dupPosts, dupAccepted  int64
	notOK                  map[string]int64
	latNew, latDup, latSch []time.Duration
}

// whWorker is one worker's state; only its own goroutine touches it until
// the load is over.
type whWorker struct {
	rng  *mrand.Rand
	ring []whPost
	// dupCredit accumulates DupRatio per POST; a re-post spends 1, so a
	// worker's share of re-posts is DupRatio however short the run.
	dupCredit float64

	newOK, newBad, dupOK, dupBad int64 // whole run
	firstFail                    string
	win                          whWindow
}

// whRun is the state of one RunWebhook.
type whRun struct {
	cfg      WebhookConfig
	id       string
	api      *api
	hc       *http.Client
	accounts []whAccount
	// waPrefix starts every customer's wa_id; a six-digit index follows.
	waPrefix string
	wabaID   string
	textJSON []byte // the message text as a JSON string
	seq      atomic.Uint64

	base             time.Time
	winStart, winEnd time.Duration // measured window, offsets from base
}

// RunWebhook runs the WhatsApp webhook ingest bench as cfg describes (see
// WebhookConfig). The result is returned with an error when the load ran
// but a check failed; an error with a nil result means the run could not
// start. Cancelling ctx ends the load early; POSTs in flight still finish
// and clean-up still runs, so that the checks stay exact.
func RunWebhook(ctx context.Context, cfg WebhookConfig) (*WebhookResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base, _ := CheckLocalURL(cfg.URL)
	workers := cfg.workers()
	start := time.Now()
	global := start.Add(cfg.Warmup + cfg.Duration + cfg.Drain + webhookSlack)
	// Calls run on a context that outlives an interrupt (but not the
	// global deadline): clean-up must still remove the accounts.
	work, cancel := context.WithDeadline(context.WithoutCancel(ctx), global)
	defer cancel()

	textJSON, _ := json.Marshal(cfg.Text)
	r := &whRun{
		cfg: cfg, id: newRunID(), api: newAPI(base), textJSON: textJSON,
		waPrefix: "1" + digits(7), wabaID: "10" + digits(13),
	}
	r.hc = &http.Client{Timeout: postTimeout, Transport: &http.Transport{
		Proxy:       nil, // a local target must never go through a proxy from the environment
		DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		// One kept-alive connection per worker: a smaller idle pool would
		// open and close connections under load and measure TCP set-up.
		MaxIdleConns:        workers + 16,
		MaxIdleConnsPerHost: workers + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
	defer r.hc.CloseIdleConnections()
	res := &WebhookResult{
		RunID: r.id, URL: base.String(), Mode: "closed", Customers: cfg.Customers, Accounts: cfg.Accounts,
		Concurrency: workers, RateTarget: cfg.Rate, DupRatio: cfg.DupRatio, Text: cfg.Text,
		WarmupSec: cfg.Warmup.Seconds(), DurationSec: cfg.Duration.Seconds(),
	}
	res.Outbox.SendRate = cfg.SendRate
	if cfg.Rate > 0 {
		res.Mode = "open"
	}
	if err := r.api.healthz(work); err != nil {
		return nil, err
	}
	token, _, err := r.api.login(work, cfg.Tenant, cfg.AdminUser, cfg.AdminPassword)
	if err != nil {
		return nil, fmt.Errorf("admin login: %w", err)
	}

	phones := make([]string, cfg.Accounts)
	for i := range phones {
		phones[i] = "10" + digits(13)
	}
	graphToken := "EAAbench" + hexToken(24)
	graph, err := startFakeGraph(whatsapp.DefaultAPIVersion, graphToken, r.id, phones, r.isCustomer, cfg.GraphLatency)
	if err != nil {
		return nil, err
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		graph.close(sctx)
	}()
	r.logf("run %s: fake Graph API at %s", r.id, graph.url)

	setupErr := r.createAccounts(work, token, phones, graphToken, graph.url)
	res.SetupSec = time.Since(start).Seconds()
	if setupErr == nil {
		setupErr = r.load(ctx, work, res, graph)
	}
	res.Cleanup = r.removeAccounts(work, token)
	if setupErr != nil && len(r.accounts) == 0 {
		return nil, setupErr
	}
	if setupErr != nil {
		return res, setupErr
	}
	if len(res.Check.Violations) > 0 {
		return res, fmt.Errorf("webhook bench: %d problem(s): %s", len(res.Check.Violations), strings.Join(res.Check.Violations, "; "))
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("interrupted: %w", context.Cause(ctx))
	}
	return res, nil
}

func (r *whRun) logf(format string, a ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "bench webhook: "+format+"\n", a...)
	}
}

// digits returns n random decimal digits, the first not 0.
func digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + mrand.IntN(10))
	}
	if n > 0 && b[0] == '0' {
		b[0] = '1'
	}
	return string(b)
}

// waID is customer i's WhatsApp id.
func (r *whRun) waID(i int) string { return fmt.Sprintf("%s%06d", r.waPrefix, i) }

// isCustomer reports whether waID is one of the run's customers.
func (r *whRun) isCustomer(waID string) bool {
	rest, ok := strings.CutPrefix(waID, r.waPrefix)
	if !ok || len(rest) != 6 {
		return false
	}
	n, err := strconv.Atoi(rest)
	return err == nil && n >= 0 && n < r.cfg.Customers
}

// createAccounts creates the run's WhatsApp accounts, pointed at the fake
// Graph API, and checks each one's webhook with Meta's subscription
// handshake.
func (r *whRun) createAccounts(ctx context.Context, token string, phones []string, graphToken, graphURL string) error {
	var settings map[string]any
	if r.cfg.SendRate > 0 {
		settings = map[string]any{"rate_per_sec": r.cfg.SendRate}
	}
	for i, phone := range phones {
		a := whAccount{Phone: phone, Secret: hexToken(16), VerifyToken: hexToken(8)}
		in := map[string]any{
			"type": "whatsapp", "name": fmt.Sprintf("bench-webhook-%s-%d", r.id, i),
			"credentials": map[string]string{
				"phone_number_id": phone, "access_token": graphToken, "app_secret": a.Secret,
				"verify_token": a.VerifyToken, "base_url": graphURL,
			},
		}
		if settings != nil {
			in["settings"] = settings
		}
		var out struct {
			ID        string `json:"id"`
			PublicKey string `json:"public_key"`
		}
		if err := r.api.do(ctx, http.MethodPost, "/api/v1/channel-accounts", token, in, &out); err != nil {
			return fmt.Errorf("create WhatsApp account: %w", err)
		}
		a.ID, a.PublicKey = out.ID, out.PublicKey
		a.hook = r.api.base.String() + "/webhooks/" + url.PathEscape(out.PublicKey)
		r.accounts = append(r.accounts, a)
		if err := r.handshake(ctx, a); err != nil {
			return err
		}
	}
	r.logf("%d WhatsApp account(s) created, %d customers, webhook %s", len(r.accounts), r.cfg.Customers, r.accounts[0].hook)
	return nil
}

// handshake does Meta's GET subscription request and checks the echo.
func (r *whRun) handshake(ctx context.Context, a whAccount) error {
	challenge := digits(10)
	q := url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {a.VerifyToken}, "hub.challenge": {challenge}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.hook+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return fmt.Errorf("webhook handshake: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || string(b) != challenge {
		return fmt.Errorf("webhook handshake: %d %q, want 200 %q", resp.StatusCode, b, challenge)
	}
	return nil
}

// notification builds the signed-to-be body of message n: a real-shaped
// WhatsApp Cloud API notification with one text message from customer
// cust to account a, compact as Meta sends it.
func (r *whRun) notification(a *whAccount, cust int, wamid string, at time.Time) []byte {
	wa := r.waID(cust)
	b := make([]byte, 0, 560+len(r.textJSON))
	b = append(b, `{"object":"whatsapp_business_account","entry":[{"id":"`...)
	b = append(b, r.wabaID...)
	b = append(b, `","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1555`...)
	b = append(b, a.Phone[len(a.Phone)-7:]...)
	b = append(b, `","phone_number_id":"`...)
	b = append(b, a.Phone...)
	b = append(b, `"},"contacts":[{"profile":{"name":"Bench customer `...)
	b = strconv.AppendInt(b, int64(cust), 10)
	b = append(b, `"},"wa_id":"`...)
	b = append(b, wa...)
	b = append(b, `"}],"messages":[{"from":"`...)
	b = append(b, wa...)
	b = append(b, `","id":"`...)
	b = append(b, wamid...)
	b = append(b, `","timestamp":"`...)
	b = strconv.AppendInt(b, at.Unix(), 10)
	b = append(b, `","text":{"body":`...)
	b = append(b, r.textJSON...)
	b = append(b, `},"type":"text"}]},"field":"messages"}]}]}`...)
	return b
}

// wamid is the provider id of message n: unique per run.
func (r *whRun) wamid(n uint64) string {
	return "wamid.bench." + r.id + "." + strconv.FormatUint(n, 36)
}

// next builds the next new notification.
func (r *whRun) next() whPost {
	n := r.seq.Add(1) - 1
	cust := int(n % uint64(r.cfg.Customers))
	ai := cust % len(r.accounts)
	a := &r.accounts[ai]
	body := r.notification(a, cust, r.wamid(n), time.Now())
	return whPost{acct: ai, body: body, sig: whatsapp.Sign(a.Secret, body)}
}

// post sends one notification and returns the status (0 with an error
// when there was no answer) and, for a non-200, the start of the answer.
func (r *whRun) post(ctx context.Context, p whPost) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.accounts[p.acct].hook, bytes.NewReader(p.body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(whatsapp.SignatureHeader, p.sig)
	req.Header.Set("User-Agent", "facebookexternalua")
	resp, err := r.hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return resp.StatusCode, "", err
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}

// one makes a worker post one notification — a re-post of one it had
// accepted for a DupRatio share of its POSTs, else a new one — and records
// the outcome. sched is the POST's slot in the open loop's schedule.
func (r *whRun) one(ctx context.Context, w *whWorker, sched time.Time) {
	w.dupCredit += r.cfg.DupRatio
	dup := len(w.ring) > 0 && w.dupCredit >= 1
	if dup {
		w.dupCredit--
	}
	var p whPost
	if dup {
		p = w.ring[w.rng.IntN(len(w.ring))]
	} else {
		p = r.next()
	}
	t0 := time.Now()
	status, answer, err := r.post(ctx, p)
	el := time.Since(t0)
	ok := err == nil && status == http.StatusOK
	switch {
	case dup && ok:
		w.dupOK++
	case dup:
		w.dupBad++
	case ok:
		w.newOK++
		if r.cfg.DupRatio > 0 {
			if len(w.ring) < dupRing {
				w.ring = append(w.ring, p)
			} else {
				w.ring[w.rng.IntN(dupRing)] = p
			}
		}
	default:
		w.newBad++
	}
	if !ok && w.firstFail == "" {
		if err != nil {
			w.firstFail = err.Error()
		} else {
			w.firstFail = fmt.Sprintf("%d %s", status, answer)
		}
	}
	if off := t0.Sub(r.base); off < r.winStart || off >= r.winEnd {
		return
	}
	win := &w.win
	win.posts++
	if dup {
		win.dupPosts++
	} else {
		win.newPosts++
	}
	if !ok {
		key := "error"
		if err == nil {
			key = strconv.Itoa(status)
		}
		if win.notOK == nil {
			win.notOK = map[string]int64{}
		}
		win.notOK[key]++
		return
	}
	win.accepted++
	if dup {
		win.dupAccepted++
		win.latDup = append(win.latDup, el)
	} else {
		win.newAccepted++
		win.latNew = append(win.latNew, el)
	}
	if !sched.IsZero() {
		win.latSch = append(win.latSch, time.Since(sched))
	}
}

// whSnapshot holds the CPU counters, the fake's counters and the server's
// metrics at one moment.
type whSnapshot struct {
	at          time.Time
	self        time.Duration
	server      time.Duration
	serverOK    bool
	machineBusy time.Duration
	procs       map[string]map[int]time.Duration
	graph       graphCounts
	// metrics is the server's /metrics (nil when it could not be read),
	// read after the CPU counters; metricsAt is the middle of the request,
	// the best guess of when the server read its counters.
	metrics   map[string]float64
	metricsAt time.Time
}

func (r *whRun) snapshot(ctx context.Context, serverPID int, g *fakeGraph) whSnapshot {
	s := whSnapshot{at: time.Now(), self: selfCPU(), machineBusy: machineBusy(), graph: g.counts()}
	if serverPID > 0 && serverPID != os.Getpid() {
		s.server, s.serverOK = procCPU(serverPID)
	}
	s.procs = cpuByCommand("postgres", "redis-server")
	t := time.Now()
	if m, err := r.api.metrics(ctx); err == nil {
		s.metrics, s.metricsAt = m, t.Add(time.Since(t)/2)
	}
	return s
}

// load runs the measured load, then the checks and the drain, and fills
// res. ctx ends the load early; work carries every call.
func (r *whRun) load(ctx, work context.Context, res *WebhookResult, g *fakeGraph) error {
	cfg := r.cfg
	serverPID := cfg.ServerPID
	if serverPID == 0 {
		if port, err := urlPort(r.api.base.Host, r.api.base.Scheme); err == nil {
			serverPID = findListenerPID(port)
		}
		if serverPID == 0 {
			res.Warnings = append(res.Warnings, "server process not found through /proc (give -server-pid): its CPU is not measured")
		}
	}
	res.CPU.ServerPID = max(serverPID, 0)
	res.CPU.ServerInProcess = serverPID == os.Getpid()
	res.CPU.Cores = runtime.NumCPU()

	m0, merr0 := r.api.metrics(work)

	workers := make([]*whWorker, cfg.workers())
	for i := range workers {
		workers[i] = &whWorker{rng: workerRand(i)}
	}
	r.base = time.Now()
	r.winStart, r.winEnd = cfg.Warmup, cfg.Warmup+cfg.Duration
	end := r.base.Add(r.winEnd)
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
	)
	g0 := g.counts()
	if cfg.Rate > 0 {
		p := newPacer(cfg.Rate)
		for _, w := range workers {
			wg.Go(func() {
				for ctx.Err() == nil && !stop.Load() {
					at := p.reserve(time.Now())
					if !at.Before(end) || !sleepUntil(ctx, at) {
						return
					}
					r.one(work, w, at)
				}
			})
		}
		r.logf("open loop: %g POSTs/s on up to %d in flight, warm-up %s, then %s measured", cfg.Rate, len(workers), cfg.Warmup, cfg.Duration)
	} else {
		for _, w := range workers {
			wg.Go(func() {
				for ctx.Err() == nil && !stop.Load() {
					r.one(work, w, time.Time{})
				}
			})
		}
		r.logf("closed loop: %d workers, warm-up %s, then %s measured", len(workers), cfg.Warmup, cfg.Duration)
	}
	var s0, s1 whSnapshot
	interrupted := !sleepUntil(ctx, r.base.Add(r.winStart))
	if !interrupted {
		s0 = r.snapshot(work, serverPID, g)
		// A customer's first message opens a session and gets a greeting
		// too: it costs more than the steady state the window measures.
		if n := r.seq.Load(); n < uint64(cfg.Customers) {
			res.Warnings = append(res.Warnings, fmt.Sprintf("the first messages of %d customers (which open sessions) fell in the measured window: lengthen -warmup for the steady state",
				uint64(cfg.Customers)-n))
		}
		interrupted = !sleepUntil(ctx, end)
		s1 = r.snapshot(work, serverPID, g)
	}
	stop.Store(true)
	wg.Wait()
	g1 := g.counts()
	r.logf("load done: %d new messages posted", r.seq.Load())

	m1, merr1 := r.api.metrics(work)
	r.fillWindow(res, workers, s0, s1, interrupted)
	fillInbound(res, m0, s0, s1, m1)
	res.Outbox.GraphRun = g1.Sent - g0.Sent
	if !interrupted {
		res.Outbox.GraphWindow = s1.graph.Sent - s0.graph.Sent
		res.Outbox.GraphWindowPerSec = float64(res.Outbox.GraphWindow) / res.DurationSec
	}
	if merr1 == nil {
		res.Outbox.PendingAtEnd = r.pending(m1)
	}
	// One -drain for both waits: the outbox cannot finish before the
	// messages whose answers it sends have been taken in.
	deadline := time.Now().Add(cfg.Drain)
	mEnd, merrEnd := m1, merr1
	if res.Inbound.Log {
		mEnd, merrEnd = r.drainInbound(work, res, mEnd, merrEnd, deadline)
	}
	mEnd, merrEnd = r.drain(work, res, mEnd, merrEnd, deadline)
	g2 := g.counts()
	res.Outbox.GraphTotal = g2.Sent - g0.Sent
	res.Outbox.Reads = g2.Reads - g0.Reads
	if merr0 == nil && merrEnd == nil {
		sent := whMetric{name: "switchboard_outbox_sent_total", labels: map[string]string{"channel": "whatsapp"}}
		res.Outbox.ServerSent = sent.delta(m0, mEnd)
		if float64(res.Outbox.GraphTotal) < res.Outbox.ServerSent {
			res.Warnings = append(res.Warnings, fmt.Sprintf("the server counted %.0f WhatsApp sends, the fake Graph API accepted %d (other WhatsApp accounts sending?)",
				res.Outbox.ServerSent, res.Outbox.GraphTotal))
		}
	}
	// With an inbound log, a message answered 200 may still have been on
	// its way to its conversation right after the load: the checks read
	// the counters after the drains. Without one, as they always did.
	mCheck, merrCheck := m1, merr1
	if res.Inbound.Log {
		mCheck, merrCheck = mEnd, merrEnd
	}
	r.check(res, workers, m0, mCheck, errors.Join(merr0, merrCheck), g2, g.firstRefusal())
	return nil
}

// Metrics of the server's inbound log and ingest.
var (
	inboundBacklog = whMetric{name: "switchboard_inbound_backlog"}
	inboundOldest  = whMetric{name: "switchboard_inbound_oldest_seconds"}
)

// inboundCount selects switchboard_inbound_messages_total of channel
// "whatsapp" with one outcome.
func inboundCount(outcome string) whMetric {
	return whMetric{name: "switchboard_inbound_messages_total",
		labels: map[string]string{"channel": "whatsapp", "outcome": outcome}}
}

// fillInbound fills res.Inbound from the server's metrics read before the
// load (m0), at the window's two snapshots and when the load ended (m1,
// nil when unread): whether the server has an inbound log, the messages it
// took in during the window, and the backlog the load left.
func fillInbound(res *WebhookResult, m0 map[string]float64, s0, s1 whSnapshot, m1 map[string]float64) {
	in := &res.Inbound
	// A read whose backlog query failed on the server lacks the gauge, so
	// any read that has it tells the server has a log.
	for _, m := range []map[string]float64{m0, s0.metrics, s1.metrics, m1} {
		if _, ok := inboundBacklog.value(m); ok {
			in.Log = true
		}
	}
	if s0.metrics != nil && s1.metrics != nil {
		in.WindowRead = true
		in.Stored = int64(inboundCount("stored").delta(s0.metrics, s1.metrics))
		in.Duplicate = int64(inboundCount("duplicate").delta(s0.metrics, s1.metrics))
		in.Refused = int64(inboundCount("refused").delta(s0.metrics, s1.metrics))
		in.ProcessedWindow = in.Stored + in.Duplicate + in.Refused
		if el := s1.metricsAt.Sub(s0.metricsAt).Seconds(); el > 0 {
			in.ProcessedPerSec = float64(in.ProcessedWindow) / el
		}
		in.BacklogWindowStart, _ = inboundBacklog.value(s0.metrics)
		in.BacklogWindowEnd, _ = inboundBacklog.value(s1.metrics)
	} else if !s0.at.IsZero() {
		res.Warnings = append(res.Warnings, "/metrics could not be read at both ends of the measured window: the rate messages were taken in is unknown")
	}
	if b, ok := inboundBacklog.value(m1); ok {
		in.BacklogAtEnd = b
		in.OldestAtEndSec, _ = inboundOldest.value(m1)
	}
}

// Pace of the wait for the inbound backlog.
const (
	// drainPoll is the interval of /metrics reads.
	drainPoll = 250 * time.Millisecond
	// drainReadFailures is how many reads in a row may fail before the
	// bench stops waiting: a server that went away is not waited for
	// the whole -drain.
	drainReadFailures = 5
)

// drainInbound waits until deadline for the server's inbound backlog to
// reach 0 — every message accepted taken into its conversation — and
// returns the last metrics read (m and err are the read the wait starts
// from).
func (r *whRun) drainInbound(ctx context.Context, res *WebhookResult, m map[string]float64, err error, deadline time.Time) (map[string]float64, error) {
	in := &res.Inbound
	t0 := time.Now()
	for fails := 0; ; {
		if err == nil {
			fails = 0
			// A read without the gauge (the server's query failed) is
			// not an empty backlog: read again.
			if b, ok := inboundBacklog.value(m); ok && b <= 0 {
				in.Drained = true
				break
			}
		} else if fails++; fails >= drainReadFailures {
			break
		}
		next := time.Now().Add(drainPoll)
		if next.After(deadline) {
			next = deadline
		}
		if !time.Now().Before(deadline) || !sleepUntil(ctx, next) {
			break
		}
		m, err = r.api.metrics(ctx)
	}
	in.DrainSec = time.Since(t0).Seconds()
	in.BacklogAfterDrain = -1
	if err == nil {
		if b, ok := inboundBacklog.value(m); ok {
			in.BacklogAfterDrain = b
		}
	}
	switch {
	case in.Drained:
		r.logf("inbound backlog drained in %.1fs", in.DrainSec)
	case in.BacklogAfterDrain >= 0:
		res.Warnings = append(res.Warnings, fmt.Sprintf("inbound backlog not drained within -drain (%s): %.0f messages accepted and not yet taken into their conversations after %.1fs",
			r.cfg.Drain, in.BacklogAfterDrain, in.DrainSec))
	default:
		reason := "the server did not report switchboard_inbound_backlog"
		if err != nil {
			reason = err.Error()
		}
		res.Warnings = append(res.Warnings, fmt.Sprintf("inbound backlog unknown after %.1fs of drain: %s", in.DrainSec, reason))
	}
	return m, err
}

// fillWindow merges the workers' figures of the measured window.
func (r *whRun) fillWindow(res *WebhookResult, workers []*whWorker, s0, s1 whSnapshot, interrupted bool) {
	var latNew, latDup, latSch []time.Duration
	c := &res.Window
	for _, w := range workers {
		v := &w.win
		c.Posts += v.posts
		c.Accepted += v.accepted
		c.New += v.newPosts
		c.NewAccepted += v.newAccepted
		c.Duplicates += v.dupPosts
		c.DuplicatesAccepted += v.dupAccepted
		for k, n := range v.notOK {
			if c.NotOK == nil {
				c.NotOK = map[string]int64{}
			}
			c.NotOK[k] += n
		}
		latNew = append(latNew, v.latNew...)
		latDup = append(latDup, v.latDup...)
		latSch = append(latSch, v.latSch...)
	}
	res.Latency.New = summarizeACD(latNew)
	res.Latency.Duplicate = summarizeACD(latDup)
	if r.cfg.Rate > 0 {
		l := summarizeACD(latSch)
		res.Latency.FromSchedule = &l
	}
	if interrupted || s0.at.IsZero() {
		// The window was cut short: rate the part that ran.
		res.DurationSec = max(time.Since(r.base.Add(r.winStart)).Seconds(), 1e-3)
		if s0.at.IsZero() {
			res.Warnings = append(res.Warnings, "interrupted during the warm-up: nothing was measured")
			return
		}
	}
	el := s1.at.Sub(s0.at).Seconds()
	if interrupted {
		res.DurationSec = el
	}
	res.AcceptedPerSec = float64(c.Accepted) / res.DurationSec
	res.NewPerSec = float64(c.NewAccepted) / res.DurationSec
	res.PostsPerSec = float64(c.Posts) / res.DurationSec

	cpu := &res.CPU
	cpu.Bench = (s1.self - s0.self).Seconds() / el
	if s0.serverOK && s1.serverOK {
		cpu.Server = (s1.server - s0.server).Seconds() / el
	}
	cpu.Postgres = cpuDelta(s0.procs["postgres"], s1.procs["postgres"]).Seconds() / el
	cpu.Redis = cpuDelta(s0.procs["redis-server"], s1.procs["redis-server"]).Seconds() / el
	if s0.machineBusy > 0 {
		cpu.Machine = (s1.machineBusy - s0.machineBusy).Seconds() / el
		cpu.Other = max(cpu.Machine-cpu.Bench-cpu.Server-cpu.Postgres-cpu.Redis, 0)
	}
	if res.AcceptedPerSec > 0 {
		server := cpu.Server
		if cpu.ServerInProcess {
			server = cpu.Bench
		}
		cpu.ServerUsPerPost = server / res.AcceptedPerSec * 1e6
	}
}

// pending is switchboard_outbox_pending summed over the run's accounts.
func (r *whRun) pending(m map[string]float64) float64 {
	var n float64
	for _, a := range r.accounts {
		n += whMetric{name: "switchboard_outbox_pending", labels: map[string]string{"account": a.ID}}.sum(m)
	}
	return n
}

// drain waits until deadline for the outbox to send what the run's
// accounts have queued, and returns the last metrics read.
func (r *whRun) drain(ctx context.Context, res *WebhookResult, m map[string]float64, err error, deadline time.Time) (map[string]float64, error) {
	t0 := time.Now()
	for err == nil && r.pending(m) > 0 && time.Now().Before(deadline) {
		if !sleepUntil(ctx, time.Now().Add(250*time.Millisecond)) {
			break
		}
		m, err = r.api.metrics(ctx)
	}
	res.Outbox.DrainSec = time.Since(t0).Seconds()
	if err == nil {
		res.Outbox.PendingAfterDrain = r.pending(m)
		if p := res.Outbox.PendingAfterDrain; p > 0 {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%.0f answers still in the outbox at the end of -drain (%s); disabling the accounts leaves them unsent", p, r.cfg.Drain))
		}
	}
	return m, err
}

// check compares what the bench saw with the server's counters and the
// fake Graph API's, and records every mismatch.
func (r *whRun) check(res *WebhookResult, workers []*whWorker, m0, m1 map[string]float64, merr error, g graphCounts, firstRefusal string) {
	ck := &res.Check
	for _, w := range workers {
		ck.NewAccepted += w.newOK
		ck.NewFailed += w.newBad
		ck.DupAccepted += w.dupOK
		ck.DupFailed += w.dupBad
		if ck.FirstFailure == "" {
			ck.FirstFailure = w.firstFail
		}
	}
	ck.UnknownRecipient, ck.GraphRejected = g.UnknownRecipient, g.Rejected
	v := func(format string, a ...any) { ck.Violations = append(ck.Violations, fmt.Sprintf(format, a...)) }
	if ck.NewAccepted == 0 {
		v("no notification was answered 200")
	}
	if n := ck.NewFailed + ck.DupFailed; n > 0 {
		v("%d POSTs were not answered 200 (first: %s)", n, ck.FirstFailure)
	}
	if merr != nil {
		v("the server's counters could not be read, so storage was not checked: %v", merr)
	} else {
		ck.MetricsRead = true
		inbound := func(outcome string) int64 { return int64(inboundCount(outcome).delta(m0, m1)) }
		ck.Stored, ck.Duplicate, ck.Refused, ck.Errors = inbound("stored"), inbound("duplicate"), inbound("refused"), inbound("error")
		// Messages still in the inbound log are accepted and not yet
		// counted: say so where a count falls short.
		var waiting string
		if in := res.Inbound; in.Log && !in.Drained {
			left := "an unknown number"
			if in.BacklogAfterDrain >= 0 {
				left = fmt.Sprintf("%.0f", in.BacklogAfterDrain)
			}
			waiting = fmt.Sprintf(" (%s still in the inbound log after %.1fs of drain: lengthen -drain)", left, in.DrainSec)
		}
		// A POST that got no 200 may still have stored its message (the
		// answer was lost), so failures widen the allowed range.
		if ck.Stored < ck.NewAccepted {
			v("%d messages answered 200 but the server stored only %d: %d acknowledged and not stored%s", ck.NewAccepted, ck.Stored, ck.NewAccepted-ck.Stored, waiting)
		}
		if hi := ck.NewAccepted + ck.NewFailed; ck.Stored > hi {
			v("the server stored %d messages, the bench posted %d new ones: stored twice, or other WhatsApp traffic during the run", ck.Stored, hi)
		}
		if ck.Duplicate < ck.DupAccepted {
			v("%d re-posted messages answered 200 but only %d counted as duplicates%s", ck.DupAccepted, ck.Duplicate, waiting)
		}
		if hi := ck.DupAccepted + ck.DupFailed; ck.Duplicate > hi {
			v("the server counted %d duplicates, the bench re-posted %d", ck.Duplicate, hi)
		}
		if ck.Refused > 0 {
			v("the server refused %d of the bench's messages as malformed", ck.Refused)
		}
	}
	if ck.UnknownRecipient > 0 {
		v("%d answers went to a WhatsApp user who is not a customer of the run", ck.UnknownRecipient)
	}
	if ck.GraphRejected > 0 {
		v("%d sends were refused by the fake Graph API (first: %s)", ck.GraphRejected, firstRefusal)
	}
}

// removeAccounts deletes the run's accounts or, when the server refuses
// because their sessions are still open (the bot's sessions close on
// their idle timeout), disables them so that nothing reaches them again.
func (r *whRun) removeAccounts(ctx context.Context, token string) WebhookCleanup {
	var c WebhookCleanup
	fail := func(err error) {
		c.Errors++
		if c.FirstError == "" {
			c.FirstError = err.Error()
		}
	}
	for _, a := range r.accounts {
		err := r.api.do(ctx, http.MethodDelete, "/api/v1/channel-accounts/"+url.PathEscape(a.ID), token, nil, nil)
		var ae *apiError
		switch {
		case err == nil:
			c.Deleted++
			continue
		case errors.As(err, &ae) && ae.Status == http.StatusConflict:
		default:
			fail(err)
			continue
		}
		var cur struct {
			Version int64 `json:"version"`
		}
		if err := r.api.do(ctx, http.MethodGet, "/api/v1/channel-accounts/"+url.PathEscape(a.ID), token, nil, &cur); err != nil {
			fail(err)
			continue
		}
		if err := r.api.do(ctx, http.MethodPatch, "/api/v1/channel-accounts/"+url.PathEscape(a.ID), token,
			map[string]any{"enabled": false, "version": cur.Version}, nil); err != nil {
			fail(err)
			continue
		}
		c.Disabled++
	}
	if len(r.accounts) > 0 {
		r.logf("clean-up: %d account(s) deleted, %d disabled, %d errors", c.Deleted, c.Disabled, c.Errors)
	}
	return c
}

// whMetric selects the samples of one metric whose labels include labels.
type whMetric struct {
	name   string
	labels map[string]string
}

// sum adds the matching samples of m (as read by api.metrics).
func (q whMetric) sum(m map[string]float64) float64 {
	n, _ := q.value(m)
	return n
}

// value adds the matching samples of m, and reports whether there was
// one: a gauge at 0 is not a metric the server does not export.
func (q whMetric) value(m map[string]float64) (float64, bool) {
	var (
		n     float64
		found bool
	)
	for key, v := range m {
		name, labels, ok := parseMetricKey(key)
		if !ok || name != q.name {
			continue
		}
		match := true
		for k, want := range q.labels {
			if labels[k] != want {
				match = false
				break
			}
		}
		if match {
			n += v
			found = true
		}
	}
	return n, found
}

// delta is the change of the matching samples from m0 to m1.
func (q whMetric) delta(m0, m1 map[string]float64) float64 { return q.sum(m1) - q.sum(m0) }

// parseMetricKey splits a sample name as printed in the Prometheus text
// format, `name{k="v",...}`, into the name and its labels, undoing the
// format's escapes (\\, \" and \n) in values.
func parseMetricKey(key string) (string, map[string]string, bool) {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key, nil, key != ""
	}
	if open == 0 || !strings.HasSuffix(key, "}") {
		return "", nil, false
	}
	name, rest := key[:open], key[open+1:len(key)-1]
	labels := map[string]string{}
	for rest != "" {
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 || eq+1 >= len(rest) || rest[eq+1] != '"' {
			return "", nil, false
		}
		k := rest[:eq]
		if !validLabelName(k) {
			return "", nil, false
		}
		var v strings.Builder
		i := eq + 2
		closed := false
		for ; i < len(rest); i++ {
			ch := rest[i]
			if ch == '\\' && i+1 < len(rest) {
				i++
				switch rest[i] {
				case 'n':
					v.WriteByte('\n')
				default:
					v.WriteByte(rest[i])
				}
				continue
			}
			if ch == '"' {
				closed = true
				break
			}
			v.WriteByte(ch)
		}
		if !closed {
			return "", nil, false
		}
		labels[k] = v.String()
		rest = rest[i+1:]
		if rest == "" {
			break
		}
		if rest[0] != ',' {
			return "", nil, false
		}
		rest = rest[1:]
	}
	return name, labels, true
}

// validLabelName accepts Prometheus label names: [a-zA-Z_][a-zA-Z0-9_]*.
func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// text is the report's line on the second stage; accepted is the POSTs
// answered 200 in the window, to say how far processing kept up.
func (in WebhookInbound) text(accepted int64) string {
	var b strings.Builder
	b.WriteString("taken in: ")
	if in.WindowRead {
		fmt.Fprintf(&b, "%d messages in the window = %.0f/s (stored %d, duplicates %d, refused %d)",
			in.ProcessedWindow, in.ProcessedPerSec, in.Stored, in.Duplicate, in.Refused)
	} else {
		b.WriteString("unknown (/metrics not read at both ends of the window)")
	}
	if !in.Log {
		b.WriteString("; the server has no inbound log (it stores before answering)")
		return b.String()
	}
	if in.WindowRead && accepted > 0 {
		fmt.Fprintf(&b, ", %.0f%% of the accepted", 100*float64(in.ProcessedWindow)/float64(accepted))
	}
	fmt.Fprintf(&b, "; inbound backlog at the end of the load %.0f (oldest %.1fs)", in.BacklogAtEnd, in.OldestAtEndSec)
	switch {
	case in.Drained:
		fmt.Fprintf(&b, ", drained in %.1fs", in.DrainSec)
	case in.BacklogAfterDrain >= 0:
		fmt.Fprintf(&b, ", NOT drained: %.0f left after %.1fs", in.BacklogAfterDrain, in.DrainSec)
	default:
		fmt.Fprintf(&b, ", NOT drained: unknown after %.1fs", in.DrainSec)
	}
	return b.String()
}

// WriteText prints the result for people.
func (res *WebhookResult) WriteText(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("WhatsApp webhook ingest bench, run %s, %s, %d CPUs", res.RunID, res.URL, res.CPU.Cores)
	p("  %d customers on %d account(s); %.0f%% duplicates; text %q; setup %.1fs", res.Customers, res.Accounts, 100*res.DupRatio, res.Text, res.SetupSec)
	if res.Mode == "open" {
		p("  open loop: %g POSTs/s wanted, %.0f/s started, up to %d in flight; warm-up %.1fs, measured %.1fs",
			res.RateTarget, res.PostsPerSec, res.Concurrency, res.WarmupSec, res.DurationSec)
	} else {
		p("  closed loop: %d workers; warm-up %.1fs, measured %.1fs", res.Concurrency, res.WarmupSec, res.DurationSec)
	}
	p("")
	c := res.Window
	line := fmt.Sprintf("accepted (durable, answered 200): %d POSTs = %.0f/s (%d new messages = %.0f/s, %d duplicates)", c.Accepted, res.AcceptedPerSec,
		c.NewAccepted, res.NewPerSec, c.DuplicatesAccepted)
	verdict := "met"
	if res.AcceptedPerSec < TargetWebhookPerSec || (res.Mode == "open" && res.PostsPerSec < 0.99*res.RateTarget) {
		verdict = "MISSED"
	}
	switch {
	case res.Mode == "closed" || res.RateTarget >= TargetWebhookPerSec:
		line += fmt.Sprintf(" (target ≥ %d/s with PostgreSQL + Redis: %s)", TargetWebhookPerSec, verdict)
	}
	p("%s", line)
	p("%s", res.Inbound.text(c.Accepted))
	if len(c.NotOK) > 0 {
		keys := make([]string, 0, len(c.NotOK))
		for k := range c.NotOK {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s: %d", k, c.NotOK[k]))
		}
		p("  not 200: %s", strings.Join(parts, ", "))
	}
	lat := func(name string, l ACDLatency) {
		p("  %-22s p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f ms  (%d)", name, l.P50ms, l.P90ms, l.P99ms, l.P999ms, l.Maxms, l.Count)
	}
	lat("POST latency, new", res.Latency.New)
	if res.Latency.Duplicate.Count > 0 {
		lat("POST latency, duplicate", res.Latency.Duplicate)
	}
	if res.Latency.FromSchedule != nil {
		lat("from schedule, all 200", *res.Latency.FromSchedule)
	}
	cpu := res.CPU
	s := fmt.Sprintf("  CPU (cores): bench %.2f", cpu.Bench)
	switch {
	case cpu.ServerInProcess:
		s += " (the server runs inside it)"
	case cpu.Server > 0:
		s += fmt.Sprintf(", server %.2f (pid %d)", cpu.Server, cpu.ServerPID)
	}
	if cpu.Postgres > 0 {
		s += fmt.Sprintf(", postgres %.2f", cpu.Postgres)
	}
	if cpu.Redis > 0 {
		s += fmt.Sprintf(", redis %.2f", cpu.Redis)
	}
	if cpu.Machine > 0 {
		s += fmt.Sprintf("; machine %.2f of %d busy, %.2f by other processes", cpu.Machine, cpu.Cores, cpu.Other)
	}
	p("%s", s)
	switch {
	case cpu.ServerUsPerPost > 0 && cpu.ServerInProcess:
		p("  CPU of this process (bench and server) per accepted POST: %.0f µs", cpu.ServerUsPerPost)
	case cpu.ServerUsPerPost > 0:
		p("  server CPU per accepted POST: %.0f µs", cpu.ServerUsPerPost)
	}
	o := res.Outbox
	rate := "the channel's default"
	if o.SendRate > 0 {
		rate = fmt.Sprintf("%g/s per account", o.SendRate)
	}
	p("  bot answers at the fake Graph API: %d in the window (%.0f/s), %d during the load, %d in all; outbox rate %s",
		o.GraphWindow, o.GraphWindowPerSec, o.GraphRun, o.GraphTotal, rate)
	p("  outbox pending: %.0f when the load ended, %.0f after %.1fs of drain; server counted %.0f WhatsApp sends",
		o.PendingAtEnd, o.PendingAfterDrain, o.DrainSec, o.ServerSent)
	ck := res.Check
	p("")
	when := "whole run"
	if res.Inbound.Log {
		when = "whole run, counted after the drain"
	}
	p("checks (%s): bench %d new + %d duplicates answered 200, %d + %d not; server stored %d, duplicates %d, refused %d, errors %d",
		when, ck.NewAccepted, ck.DupAccepted, ck.NewFailed, ck.DupFailed, ck.Stored, ck.Duplicate, ck.Refused, ck.Errors)
	if len(ck.Violations) == 0 {
		p("  OK: every message answered 200 was stored once, every re-post counted as a duplicate, every answer went to a customer of the run")
	}
	for _, v := range ck.Violations {
		p("  PROBLEM: %s", v)
	}
	cl := res.Cleanup
	p("cleanup: %d account(s) deleted, %d disabled (open bot sessions), %d errors", cl.Deleted, cl.Disabled, cl.Errors)
	if cl.FirstError != "" {
		p("  first error: %s", cl.FirstError)
	}
	for _, s := range res.Warnings {
		p("warning: %s", s)
	}
}
