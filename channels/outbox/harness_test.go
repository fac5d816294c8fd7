package outbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/channelsql"
	"github.com/switchboard-acd/switchboard/channels/outbox"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/rdb"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// t0 is where simulated clocks start.
var t0 = time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)

const tenant = "t1"

// backends pairs every database kind with every Redis kind at least once:
// production (PostgreSQL + Redis) and the embedded default (SQLite +
// in-process Redis).
var backends = []struct{ db, redis string }{
	{"postgres", "redis"},
	{"sqlite", "embedded"},
}

// env is one test's database, Redis and stores.
type env struct {
	db       *db.DB
	rdb      *rdb.Client
	store    *outbox.Store
	accounts *channelsql.Store
}

// forEachBackend runs fn on a fresh database and Redis prefix of every
// backend pair, with tenant t1.
func forEachBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, b := range backends {
		t.Run(b.db+"+"+b.redis, func(t *testing.T) {
			fn(t, newEnv(t, b.db, b.redis))
		})
	}
}

func newEnv(t testing.TB, dbKind, redisKind string) *env {
	d := testenv.DB(t, dbKind)
	if _, err := d.ExecContext(context.Background(), d.Rebind(`INSERT INTO tenants (id, name, settings, created_at) VALUES (?, ?, ?, ?)`),
		tenant, tenant, "{}", t0); err != nil {
		t.Fatal(err)
	}
	return &env{db: d, rdb: testenv.Redis(t, redisKind), store: outbox.NewStore(d), accounts: channelsql.New(d)}
}

// account creates an enabled account with settings.
func (e *env) account(t testing.TB, id string, typ channels.Type, settings channels.AccountSettings) channels.Account {
	t.Helper()
	raw, err := json.Marshal(settings)
	if err != nil {
		t.Fatal(err)
	}
	a := channels.Account{TenantID: tenant, ID: id, Type: typ, Name: id, PublicKey: "pk-" + id, Secret: "s",
		Settings: raw, Enabled: true, CreatedAt: t0}
	if err := e.accounts.AccountCreate(context.Background(), a); err != nil {
		t.Fatalf("create account %s: %v", id, err)
	}
	got, err := e.accounts.AccountGet(context.Background(), tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// fast are settings that keep the rate limit out of a test's way.
var fast = channels.AccountSettings{RatePerSec: 1000, Burst: 1000}

// msgID names message n of conversation conv; the fake sender reads both
// back from it.
func msgID(conv string, n int) string { return fmt.Sprintf("%s/%04d", conv, n) }

func parseMsgID(id string) (conv string, n int) {
	conv, num, _ := strings.Cut(id, "/")
	n, _ = strconv.Atoi(num)
	return conv, n
}

// item is message n of conversation conv through account, as a session
// store would queue it; the recipient is the conversation id.
func item(account, conv string, n int, at time.Time) outbox.Item {
	return outbox.Item{
		TenantID: tenant, AccountID: account, ConversationID: conv, MessageID: msgID(conv, n),
		Out:       channels.Outbound{ExternalID: conv, Type: channels.MsgText, Text: fmt.Sprintf("message %d", n)},
		CreatedAt: at,
	}
}

// queue inserts items in one transaction each, like message appends do.
func (e *env) queue(t testing.TB, its ...outbox.Item) {
	t.Helper()
	for _, it := range its {
		if _, err := e.store.Insert(context.Background(), it); err != nil {
			t.Fatalf("insert %s: %v", it.MessageID, err)
		}
	}
}

// attempt is one call the fake sender received.
type attempt struct {
	account string
	msg     string
	at      time.Time // on the sender's clock
	err     error
}

// fakeSender is a scriptable provider: per message a list of errors to
// return before succeeding, a global outage, latency. It records every
// attempt and flags two concurrent sends in one conversation.
type fakeSender struct {
	clock   clock.Clock
	latency time.Duration

	mu sync.Mutex
	// guarded by mu
	script   map[string][]error
	outage   func() error // non-nil: every send fails with what it returns
	attempts []attempt
	inFlight map[string]string // conversation → message being sent
	overlaps []string
	seq      int
}

func newFakeSender(c clock.Clock) *fakeSender {
	return &fakeSender{clock: c, script: map[string][]error{}, inFlight: map[string]string{}}
}

// failFirst makes the first len(errs) sends of msg fail with errs in order.
func (f *fakeSender) failFirst(msg string, errs ...error) {
	f.mu.Lock()
	f.script[msg] = append(f.script[msg], errs...)
	f.mu.Unlock()
}

func (f *fakeSender) setOutage(fn func() error) {
	f.mu.Lock()
	f.outage = fn
	f.mu.Unlock()
}

// Send implements channels.Sender.
func (f *fakeSender) Send(ctx context.Context, acct channels.Account, out channels.Outbound) (channels.SendResult, error) {
	key := acct.ID + ":" + out.ExternalID
	f.mu.Lock()
	if other, busy := f.inFlight[key]; busy {
		f.overlaps = append(f.overlaps, other+" and "+out.MessageID)
	}
	f.inFlight[key] = out.MessageID
	var err error
	switch {
	case f.outage != nil:
		err = f.outage()
	case len(f.script[out.MessageID]) > 0:
		err = f.script[out.MessageID][0]
		f.script[out.MessageID] = f.script[out.MessageID][1:]
	}
	at := f.clock.Now()
	f.mu.Unlock()

	if err == errTimeout {
		<-ctx.Done() // a provider that never answers
		err = ctx.Err()
	} else if f.latency > 0 {
		select {
		case <-time.After(f.latency):
		case <-ctx.Done():
			err = ctx.Err()
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.inFlight, key)
	f.attempts = append(f.attempts, attempt{account: acct.ID, msg: out.MessageID, at: at, err: err})
	if err != nil {
		return channels.SendResult{}, err
	}
	f.seq++
	return channels.SendResult{ChannelMsgID: fmt.Sprintf("pm.%s.%d", acct.ID, f.seq)}, nil
}

// errTimeout scripts a send that hangs until its context ends.
var errTimeout = &channels.SendError{Code: "hang"}

func (f *fakeSender) snapshot() []attempt {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.attempts)
}

// successes counts successful sends per message.
func (f *fakeSender) successes() map[string]int {
	out := map[string]int{}
	for _, a := range f.snapshot() {
		if a.err == nil {
			out[a.msg]++
		}
	}
	return out
}

// checkOrder fails the test when a conversation's messages were tried out
// of order: once message n was tried, no earlier message may be tried
// again, and n+1 only after n's last attempt. skipped lists messages that
// legitimately ended without success (dead letters).
func (f *fakeSender) checkOrder(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	overlaps := slices.Clone(f.overlaps)
	f.mu.Unlock()
	for _, o := range overlaps {
		t.Errorf("two sends of one conversation at once: %s", o)
	}
	last := map[string]int{}
	for _, a := range f.snapshot() {
		conv, n := parseMsgID(a.msg)
		key := a.account + ":" + conv
		if n < last[key] {
			t.Errorf("%s: message %d tried after message %d", key, n, last[key])
		}
		last[key] = n
	}
}

// sink records what a Worker reported.
type sink struct {
	mu sync.Mutex
	// guarded by mu
	sent   map[string][]outbox.Item
	failed []failedCall
}

type failedCall struct {
	it           outbox.Item
	code, reason string
	final        bool
}

func newSink() *sink { return &sink{sent: map[string][]outbox.Item{}} }

func (s *sink) Sent(_ context.Context, it outbox.Item, channelMsgID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it.ChannelMsgID != channelMsgID {
		panic("Sent: item and channel id disagree")
	}
	s.sent[it.MessageID] = append(s.sent[it.MessageID], it)
}

func (s *sink) Failed(_ context.Context, it outbox.Item, code, reason string, final bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed = append(s.failed, failedCall{it: it, code: code, reason: reason, final: final})
}

func (s *sink) sentCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.sent {
		n += len(v)
	}
	return n
}

// distinctSent counts the messages sent at least once.
func (s *sink) distinctSent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sent)
}

func (s *sink) failures() []failedCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.failed)
}

// testOptions are worker options for tests: quick polling and backoff.
func (e *env) testOptions(t testing.TB, node string, senders map[channels.Type]channels.Sender, snk outbox.Sink) outbox.Options {
	return outbox.Options{
		Store: e.store, Accounts: e.accounts, Senders: senders,
		Redis: e.rdb, RedisPrefix: e.rdb.Prefix, Sink: snk,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		// Leases stay long: a test's worker must never lose one (that
		// would be an at-least-once duplicate, tested on its own).
		NodeID: node, Concurrency: 8, PollInterval: 50 * time.Millisecond, SendTimeout: 200 * time.Millisecond,
		Lease: 30 * time.Second, BackoffBase: 5 * time.Millisecond, BackoffCap: 40 * time.Millisecond,
		AccountCacheTTL: -1,
	}
}

// start starts a worker and stops it when the test ends.
func start(t testing.TB, o outbox.Options) *outbox.Worker {
	t.Helper()
	w, err := outbox.NewWorker(o)
	if err != nil {
		t.Fatalf("NewWorker: %v", err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return w
}

// testWriter routes worker logs to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// states counts the rows per state.
func (e *env) states(t testing.TB) map[outbox.State]int {
	t.Helper()
	var rows []struct {
		State string `db:"state"`
		N     int    `db:"n"`
	}
	if err := e.db.SelectContext(context.Background(), &rows, `SELECT state, COUNT(*) AS n FROM outbox GROUP BY state`); err != nil {
		t.Fatal(err)
	}
	out := map[outbox.State]int{}
	for _, r := range rows {
		out[outbox.State(r.State)] = r.N
	}
	return out
}

// byMessage returns the rows of a message, oldest first.
func (e *env) byMessage(t testing.TB, msg string) []outbox.Item {
	t.Helper()
	var ids []int64
	if err := e.db.SelectContext(context.Background(), &ids, e.db.Rebind(`SELECT id FROM outbox WHERE message_id = ? ORDER BY id`), msg); err != nil {
		t.Fatal(err)
	}
	var out []outbox.Item
	for _, id := range ids {
		it, err := e.store.Get(context.Background(), tenant, id)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
