// Package loadgen is the load generator behind `switchboard bench`. It runs
// in its own process against a running Switchboard server and drives it the
// way real clients do — customers over the web-chat WebSocket, agents over
// the console WebSocket and the REST API — so that the figures include the
// whole path: HTTP and WebSocket handling, the session engine, the database
// and the fan-out bus.
//
// A load run creates bench agents through the admin API, signs them in,
// connects their consoles and makes them ready; connects customers, has
// each ask the bot for a person and waits until every session is assigned;
// then lets every customer send messages for the measured phase while the
// agents answer each one. It reports counts (sent, acked, received, lost,
// duplicated) and exact latency percentiles for send→ack, customer→agent
// and agent→customer, and finally closes and wraps up every session and
// signs the agents out.
//
// An idle run only opens web-chat connections and holds them, to measure
// what an idle connection costs the server in resident memory.
//
// Every latency is measured inside this one process with the monotonic
// clock, so client and server clocks never need to agree.
package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Timing rules of a run.
const (
	// slotTimeout frees a customer's window slot when a message has not
	// completed in this time, so a lost message costs its customer this
	// much and no more.
	slotTimeout = 5 * time.Second
	// drainTime is how long after the measured phase the bench waits for
	// messages still on their way; a message acked but not received by then
	// is lost.
	drainTime = 5 * time.Second
	// Slack is added to warm-up plus duration to form the global deadline
	// that bounds the whole run, set-up and clean-up included.
	Slack = 60 * time.Second
	// cleanupReserve is the part of the global deadline kept for closing
	// sessions and signing agents out, whatever happened before.
	cleanupReserve = 15 * time.Second
	// maxServerSessions is the server's cap on an agent's max_sessions.
	maxServerSessions = 50
	// fdReserve is the file descriptors kept for other uses than
	// connections under test (HTTP pool, stdio, the runtime).
	fdReserve = 200
)

// Config describes a run. The zero value is not valid; the bench command
// fills it from flags.
type Config struct {
	// URL is the server's base URL; it must be on this machine.
	URL           string
	Tenant        string
	AdminUser     string
	AdminPassword string
	// ChatKey is the web-chat account's public key.
	ChatKey string
	// HandoffWord is a word the server's bot hands off on.
	HandoffWord string

	Customers int
	Agents    int
	Warmup    time.Duration
	Duration  time.Duration
	// Rate is the total customer messages per second to aim at; 0 sends as
	// fast as each customer's window allows.
	Rate float64
	// Window is the messages one customer may have in flight. A message is
	// in flight until its reply reaches the customer (with Reply) or until
	// an agent receives it (without), or until slotTimeout.
	Window int
	// Reply makes agents answer every message, measuring agent→customer too.
	Reply bool

	// Idle, when positive, selects an idle run of this many connections.
	Idle int
	// ConnOffset is this process's first global connection index in an idle
	// run spread over several processes; it picks the local source address
	// (see sourceAddr) so that processes together do not run out of
	// ephemeral ports.
	ConnOffset int

	// Progress receives progress lines; nil discards them.
	Progress io.Writer
}

// MaxSessions is the capacity each bench agent gets: enough for an even
// share of the customers plus one, so routing never waits for a free agent
// because of rounding.
func (c Config) MaxSessions() int {
	if c.Agents <= 0 {
		return 0
	}
	return (c.Customers+c.Agents-1)/c.Agents + 1
}

func (c Config) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Customers < 1 {
		bad("-customers must be at least 1")
	}
	if c.Agents < 1 {
		bad("-agents must be at least 1")
	}
	if c.Window < 1 {
		bad("-window must be at least 1")
	}
	if c.Duration <= 0 {
		bad("-duration must be positive")
	}
	if c.Warmup < 0 {
		bad("-warmup must not be negative")
	}
	if c.Rate < 0 {
		bad("-rate must not be negative")
	}
	if c.AdminPassword == "" {
		bad("the admin password is required (-admin-password or SWITCHBOARD_DEMO_PASSWORD)")
	}
	if c.HandoffWord == "" {
		bad("-handoff-word must not be empty")
	}
	if c.Agents >= 1 && c.MaxSessions() > maxServerSessions {
		bad("%d customers on %d agents needs %d sessions per agent, the server allows at most %d: use -agents %d or more",
			c.Customers, c.Agents, c.MaxSessions(), maxServerSessions, (c.Customers+maxServerSessions-2)/(maxServerSessions-1))
	}
	if err := checkFDs(c.Customers + c.Agents*2); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkFDs refuses a run that would exceed this process's open-file limit:
// every WebSocket is a descriptor, and running out mid-run makes dials fail
// in ways that look like server faults. (Go raises the soft limit to the
// hard one at start, so the soft limit is what we can have.)
func checkFDs(conns int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil // unknown: let the run find out
	}
	if uint64(conns+fdReserve) > lim.Cur {
		return fmt.Errorf("%d connections need about %d file descriptors, this process may open %d: split the load over several processes (see -conn-offset)",
			conns, conns+fdReserve, lim.Cur)
	}
	return nil
}

// run is the state of one load run.
type run struct {
	cfg      Config
	id       string
	api      *api
	tr       *tracker
	progress io.Writer
	// readCtx bounds the connections' reader goroutines and the replies;
	// it outlives the work deadline so that clean-up can still use them.
	readCtx context.Context
	leaf    string // reason code for wrap-up, "" when the tree is empty

	mu        sync.Mutex
	customers []*customer // all, by index; fixed before any connects
	agents    []*agent    // those created; grows during set-up
	sessions  map[string]*customer
	connected []*customer
	assignedN int
	foreign   int
	firstErr  error
	errCount  int

	agentReconnects    atomic.Int64
	customerReconnects atomic.Int64
	outOfOrder         atomic.Int64
	removedN           atomic.Int64
}

func (r *run) logf(format string, a ...any) {
	if r.progress != nil {
		fmt.Fprintf(r.progress, "bench: "+format+"\n", a...)
	}
}

// noteError keeps the first of the errors that do not stop the run, for
// the report.
func (r *run) noteError(what string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errCount++
	if r.firstErr == nil {
		r.firstErr = fmt.Errorf("%s: %w", what, err)
	}
}

// assigned is called by an agent for every session.assigned frame. idx is
// the customer named by the marker in the transcript, -1 for none.
func (r *run) assigned(a *agent, sessionID string, idx int, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if idx < 0 || idx >= len(r.customers) {
		r.foreign++
		return
	}
	c := r.customers[idx]
	first := c.sessionID == ""
	c.sessionID, c.agent = sessionID, a
	r.sessions[sessionID] = c
	if first {
		r.assignedN++
		if !c.handoffAt.IsZero() {
			r.tr.handoffDone(now.Sub(c.handoffAt))
		}
		c.assignedOnce.Do(func() { close(c.assigned) })
	}
}

// removed is called for every session.removed frame.
func (r *run) removed(sessionID string) {
	r.mu.Lock()
	_, ours := r.sessions[sessionID]
	r.mu.Unlock()
	if ours {
		r.removedN.Add(1)
	}
}

func newRunID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomPassword() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Run performs a load run. It returns a result whenever set-up got far
// enough to clean up after, together with an error when the run could not
// be completed.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	base, err := CheckLocalURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	global := start.Add(cfg.Warmup + cfg.Duration + Slack)
	workCtx, cancelWork := context.WithDeadline(ctx, global.Add(-cleanupReserve))
	defer cancelWork()
	// Readers must survive an interrupt long enough for clean-up, which
	// needs the agents' sessions, but never the global deadline.
	readCtx, cancelRead := context.WithDeadline(context.WithoutCancel(ctx), global.Add(5*time.Second))
	defer cancelRead()

	r := &run{
		cfg: cfg, id: newRunID(), api: newAPI(base), tr: newTracker(cfg.Reply), progress: cfg.Progress,
		readCtx: readCtx, sessions: map[string]*customer{},
	}
	if err := r.api.healthz(workCtx); err != nil {
		return nil, err
	}
	res := &Result{
		RunID: r.id, URL: base.String(), Customers: cfg.Customers, Agents: cfg.Agents,
		WarmupSec: cfg.Warmup.Seconds(), DurationSec: cfg.Duration.Seconds(), RateTarget: cfg.Rate,
		Window: cfg.Window, Reply: cfg.Reply,
	}
	setupDeadline := global.Add(-cleanupReserve - drainTime - cfg.Warmup - cfg.Duration)
	setupErr := r.setup(workCtx, setupDeadline, res)
	res.Setup.Seconds = time.Since(start).Seconds()
	if setupErr == nil {
		r.load(workCtx, res)
	}
	// Clean-up gets the rest of the global deadline; after an interrupt it
	// still gets a short, bounded time of its own.
	cdl := global
	if ctx.Err() != nil {
		cdl = time.Now().Add(cleanupReserve)
	}
	cctx, cancelClean := context.WithDeadline(context.WithoutCancel(ctx), cdl)
	defer cancelClean()
	r.cleanup(cctx, res)

	r.mu.Lock()
	if setupErr != nil && len(r.agents) == 0 {
		r.mu.Unlock()
		return nil, setupErr // nothing was created: a result would be all zeros
	}
	res.Setup.ForeignSessions = r.foreign
	if r.firstErr != nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d errors during the run; first: %v", r.errCount, r.firstErr))
	}
	r.mu.Unlock()
	res.AgentReconnects = r.agentReconnects.Load()
	res.CustomerReconnects = r.customerReconnects.Load()
	res.OutOfOrder = r.outOfOrder.Load()
	res.SessionsRemoved = r.removedN.Load()
	if setupErr == nil && ctx.Err() != nil {
		setupErr = fmt.Errorf("interrupted: %w", context.Cause(ctx))
	}
	return res, setupErr
}

// parallel runs fn for 0..n-1 on at most workers goroutines.
func parallel(n, workers int, fn func(i int)) {
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range min(n, workers) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}

// setup creates and readies the agents, connects the customers and waits
// until each connected customer's session is assigned to a bench agent.
func (r *run) setup(ctx context.Context, deadline time.Time, res *Result) error {
	cfg := r.cfg
	adminToken, _, err := r.api.login(ctx, cfg.Tenant, cfg.AdminUser, cfg.AdminPassword)
	if err != nil {
		return fmt.Errorf("admin login: %w", err)
	}
	groups, err := r.api.groups(ctx, adminToken)
	if err != nil {
		return fmt.Errorf("list groups: %w", err)
	}
	if len(groups) == 0 {
		return errors.New("the tenant has no skill groups; sessions could not be routed")
	}
	// Skills in every group: the bench measures the server, not the
	// routing configuration, so any hand-off must find a bench agent.
	skills := make([]skill, len(groups))
	for i, g := range groups {
		skills[i] = skill{GroupID: g.ID, Proficiency: 3}
	}
	if r.leaf, err = r.api.reasonLeaf(ctx, adminToken); err != nil {
		return fmt.Errorf("read reason tree: %w", err)
	}
	res.Setup.MaxSessions = cfg.MaxSessions()

	r.logf("run %s: creating %d agents (max %d sessions each, skills in %d groups)", r.id, cfg.Agents, cfg.MaxSessions(), len(groups))
	var ready atomic.Int64
	var agentErr error
	var agentErrOnce sync.Once
	parallel(cfg.Agents, 8, func(i int) {
		if ctx.Err() != nil {
			return
		}
		a := &agent{r: r, idx: i, username: fmt.Sprintf("bench-%s-%d", r.id, i), password: randomPassword(), hello: make(chan struct{})}
		err := r.startAgent(ctx, adminToken, a, skills)
		if err != nil {
			agentErrOnce.Do(func() { agentErr = fmt.Errorf("agent %s: %w", a.username, err) })
			return
		}
		ready.Add(1)
	})
	res.Setup.AgentsReady = int(ready.Load())
	if agentErr != nil {
		return agentErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	r.logf("connecting %d customers", cfg.Customers)
	customers := make([]*customer, cfg.Customers)
	for i := range customers {
		customers[i] = newCustomer(r, i, cfg.Window)
	}
	r.mu.Lock() // agents' readers already look customers up
	r.customers = customers
	r.mu.Unlock()
	var connErr error
	var connErrN atomic.Int64
	var connErrOnce sync.Once
	stopProgress := r.every(2*time.Second, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.logf("%d/%d customers connected, %d assigned", len(r.connected), cfg.Customers, r.assignedN)
	})
	parallel(cfg.Customers, 32, func(i int) {
		if ctx.Err() != nil {
			return
		}
		c := customers[i]
		if err := c.connect(ctx); err != nil {
			connErrN.Add(1)
			connErrOnce.Do(func() { connErr = err })
			return
		}
		r.mu.Lock()
		r.connected = append(r.connected, c)
		c.handoffAt = time.Now()
		r.mu.Unlock()
		c.send("h"+fmt.Sprint(i), c.handoffText())
	})
	if connErr != nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d customers failed to connect; first: %v", connErrN.Load(), connErr))
	}
	r.mu.Lock()
	connected := slices.Clone(r.connected)
	r.mu.Unlock()
	res.Setup.CustomersConnected = len(connected)
	if len(connected) == 0 {
		stopProgress()
		if connErr != nil {
			return fmt.Errorf("no customer could connect: %w", connErr)
		}
		return ctx.Err()
	}

	// Wait for the assignments, up to the set-up deadline.
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	for _, c := range connected {
		select {
		case <-c.assigned:
		case <-wctx.Done():
		}
	}
	stopProgress()
	r.mu.Lock()
	res.Setup.CustomersAssigned = r.assignedN
	r.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if res.Setup.CustomersAssigned == 0 {
		return errors.New("no session was assigned to a bench agent before the set-up deadline (are other agents ready and taking them?)")
	}
	if n := res.Setup.CustomersAssigned; n < len(connected) {
		res.Warnings = append(res.Warnings, fmt.Sprintf("only %d of %d customers were assigned to bench agents by the set-up deadline; the rest do not send", n, len(connected)))
	}
	return nil
}

// startAgent creates the account, signs in, connects the console and turns
// ready. Connecting before turning ready matters: a session assigned before
// the console listens would never be seen.
func (r *run) startAgent(ctx context.Context, adminToken string, a *agent, skills []skill) error {
	id, err := r.api.createAgent(ctx, adminToken, newAgent{
		Username: a.username, DisplayName: fmt.Sprintf("Bench %s #%d", r.id, a.idx), Password: a.password,
		Role: "agent", MaxSessions: r.cfg.MaxSessions(), Skills: skills,
	})
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	a.id = id
	if a.token, _, err = r.api.login(ctx, r.cfg.Tenant, a.username, a.password); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	r.mu.Lock()
	r.agents = append(r.agents, a) // from here on clean-up signs it out
	r.mu.Unlock()
	if err := a.connect(ctx); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	if err := r.api.setState(ctx, a.token, "ready"); err != nil {
		return fmt.Errorf("ready: %w", err)
	}
	return nil
}

// every calls fn every d until the returned stop is called.
func (r *run) every(d time.Duration, fn func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fn()
			case <-done:
				return
			}
		}
	})
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// load runs warm-up and the measured phase, then drains.
func (r *run) load(ctx context.Context, res *Result) {
	var senders []*customer
	r.mu.Lock()
	for _, c := range r.connected {
		if c.sessionID != "" {
			senders = append(senders, c)
		}
	}
	r.mu.Unlock()

	loadStart := time.Now()
	winStart := loadStart.Add(r.cfg.Warmup)
	winEnd := winStart.Add(r.cfg.Duration)
	r.tr.setWindow(winStart, winEnd)
	r.logf("%d customers sending: %s warm-up, then %s measured", len(senders), r.cfg.Warmup, r.cfg.Duration)
	sendCtx, stopSending := context.WithDeadline(ctx, winEnd)
	defer stopSending()
	stopProgress := r.every(5*time.Second, func() {
		m, p := r.tr.snapshot()
		phase := "measuring"
		if time.Now().Before(winStart) {
			phase = "warming up"
		}
		r.logf("%s %.0fs: sent %d, at agents %d, replies at customers %d", phase, time.Since(loadStart).Seconds(), m.Sent, m.ReceivedByAgents, p.Received)
	})
	p := newPacer(r.cfg.Rate)
	var wg sync.WaitGroup
	for _, c := range senders {
		wg.Go(func() { c.sendLoop(sendCtx, p) })
	}
	wg.Wait()
	sendEnd := time.Now()
	stopProgress()

	// Drain: wait for messages still on their way.
	drainEnd := time.Now().Add(drainTime)
	for r.tr.pending() > 0 && time.Now().Before(drainEnd) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	counts, replies, samples, winAgent, winReply := r.tr.finish()
	res.Messages, res.Replies = counts, replies
	res.Latency.Ack = Summarize(samples[0])
	res.Latency.CustomerToAgent = Summarize(samples[1])
	res.Latency.AgentToCustomer = Summarize(samples[2])
	res.Latency.Handoff = Summarize(samples[3])
	if sendEnd.After(winEnd) {
		sendEnd = winEnd
	}
	if measured := sendEnd.Sub(winStart).Seconds(); measured > 0 {
		res.DurationSec = measured
		res.Throughput = float64(winAgent) / measured
		res.ReplyThroughput = float64(winReply) / measured
		res.SendRate = float64(counts.Sent) / measured
	} else {
		res.DurationSec = 0
		res.Warnings = append(res.Warnings, "the run ended before the measured window began")
	}
	if counts.Lost > 0 || replies.Lost > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("messages lost: %d customer→agent, %d agent→customer (acked or accepted, not delivered within %s after the end)",
			counts.Lost, replies.Lost, drainTime))
	}
}

// cleanup closes the customers' connections, closes and wraps up every
// bench session with its agent, and signs the agents out, so a run leaves
// the tenant as it found it apart from the (offline) bench accounts and
// the closed sessions' history.
func (r *run) cleanup(ctx context.Context, res *Result) {
	r.logf("cleaning up")
	r.mu.Lock()
	connected := slices.Clone(r.connected)
	agents := slices.Clone(r.agents)
	type sess struct {
		id string
		a  *agent
	}
	var ss []sess
	for id, c := range r.sessions {
		if c.sessionID == id && c.agent != nil {
			ss = append(ss, sess{id, c.agent})
		}
	}
	r.mu.Unlock()

	parallel(len(connected), 64, func(i int) { connected[i].close() })

	codes := []string{}
	if r.leaf != "" {
		codes = []string{r.leaf}
	}
	var mu sync.Mutex
	fail := func(counter *int, err error) {
		mu.Lock()
		defer mu.Unlock()
		*counter++
		if res.Cleanup.FirstError == "" {
			res.Cleanup.FirstError = err.Error()
		}
	}
	parallel(len(ss), 16, func(i int) {
		s := ss[i]
		err := r.api.closeSession(ctx, s.a.token, s.id)
		var ae *apiError
		if err != nil && !(errors.As(err, &ae) && ae.Code == "conflict") {
			fail(&res.Cleanup.SessionErrors, err)
			return // a conflict may mean it is in wrap-up already: try that
		}
		if err := r.api.wrapup(ctx, s.a.token, s.id, codes); err != nil {
			fail(&res.Cleanup.SessionErrors, err)
			return
		}
		mu.Lock()
		res.Cleanup.SessionsClosed++
		mu.Unlock()
	})
	parallel(len(agents), 16, func(i int) {
		a := agents[i]
		err := r.api.setState(ctx, a.token, "offline")
		if err == nil {
			err = r.api.logout(ctx, a.token)
		}
		a.close()
		if err != nil {
			fail(&res.Cleanup.AgentErrors, fmt.Errorf("agent %s: %w", a.username, err))
			return
		}
		mu.Lock()
		res.Cleanup.AgentsOffline++
		mu.Unlock()
	})
}
