package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/outbox"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// TestWorkerSendsOnlyCommittedRows: a row whose transaction rolled back is
// never sent; the committed one next to it is.
func TestWorkerSendsOnlyCommittedRows(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.account(t, "wa", channels.WhatsApp, fast)
		wa := newFakeSender(clock.Real{})
		snk := newSink()
		w := start(t, e.testOptions(t, "n1", map[channels.Type]channels.Sender{channels.WhatsApp: wa}, snk))

		now := time.Now()
		rollback := errors.New("rollback")
		if err := e.db.InTx(ctx, func(tx *sqlx.Tx) error {
			if err := outbox.Insert(ctx, tx, e.db.Dialect, item("wa", "c1", 1, now)); err != nil {
				return err
			}
			return rollback
		}); err != rollback {
			t.Fatalf("InTx = %v", err)
		}
		if err := e.db.InTx(ctx, func(tx *sqlx.Tx) error {
			return outbox.Insert(ctx, tx, e.db.Dialect, item("wa", "c2", 1, now))
		}); err != nil {
			t.Fatal(err)
		}
		w.Notify()
		waitFor(t, 5*time.Second, "the committed row to be sent", func() bool { return snk.sentCount() == 1 })
		// Another poll round passes; still only the committed row.
		time.Sleep(150 * time.Millisecond)
		if got := wa.successes(); len(got) != 1 || got["c2/0001"] != 1 {
			t.Errorf("sends = %v, want only c2/0001", got)
		}
		it := e.byMessage(t, "c2/0001")[0]
		if it.State != outbox.StateSent || it.ChannelMsgID == "" || it.SentAt == nil {
			t.Errorf("sent row = %+v", it)
		}
	})
}

// TestWorkerKeepsOrderUnderRetries: a conversation's next message is never
// tried before the previous one is sent, however often it fails.
func TestWorkerKeepsOrderUnderRetries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.account(t, "wa", channels.WhatsApp, fast)
		wa := newFakeSender(clock.Real{})
		throttled := &channels.SendError{Code: "130429", Msg: "rate limit hit", Retry: true}
		unavailable := &channels.SendError{Code: "131016", Msg: "service unavailable", Retry: true, RetryAfter: 20 * time.Millisecond}
		wa.failFirst("A/0001", throttled, throttled, unavailable)
		wa.failFirst("A/0003", errors.New("connection reset by peer"))
		wa.failFirst("B/0002", errTimeout, throttled)
		wa.failFirst("C/0006", unavailable, unavailable, unavailable, unavailable)
		snk := newSink()
		w := start(t, e.testOptions(t, "n1", map[channels.Type]channels.Sender{channels.WhatsApp: wa}, snk))

		now := time.Now()
		for _, conv := range []string{"A", "B", "C"} {
			for n := 1; n <= 6; n++ {
				e.queue(t, item("wa", conv, n, now))
			}
		}
		w.Notify()
		waitFor(t, 15*time.Second, "18 sends", func() bool { return snk.sentCount() == 18 })
		wa.checkOrder(t)
		for msg, n := range wa.successes() {
			if n != 1 {
				t.Errorf("%s sent %d times", msg, n)
			}
		}
		if s := e.states(t); s[outbox.StateSent] != 18 {
			t.Errorf("states = %v, want 18 sent", s)
		}
		it := e.byMessage(t, "A/0001")[0]
		if it.Attempts != 4 || it.LastCode != "131016" {
			t.Errorf("A/0001 after 3 failures: attempts %d, last code %q", it.Attempts, it.LastCode)
		}
		if it := e.byMessage(t, "B/0002")[0]; it.Attempts != 3 {
			t.Errorf("B/0002 attempts = %d, want 3 (timeout, throttled, sent)", it.Attempts)
		}
		var retries, finals int
		for _, f := range snk.failures() {
			if f.final {
				finals++
			} else {
				retries++
			}
		}
		if retries != 10 || finals != 0 {
			t.Errorf("sink heard %d retries and %d final failures, want 10 and 0", retries, finals)
		}
	})
}

// TestWorkerRidesOutAnOutage: the provider fails everything for a while
// (5xx, 429 with Retry-After, network errors, timeouts); nothing is lost
// and the backlog drains in order once it is back.
func TestWorkerRidesOutAnOutage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.account(t, "wa", channels.WhatsApp, fast)
		wa := newFakeSender(clock.Real{})
		var calls atomic.Int64
		wa.setOutage(func() error {
			switch calls.Add(1) % 4 {
			case 0:
				return &channels.SendError{Code: "500", Msg: "internal error", Retry: true}
			case 1:
				return &channels.SendError{Code: "429", Msg: "too many requests", Retry: true, RetryAfter: 30 * time.Millisecond}
			case 2:
				return fmt.Errorf("dial tcp: connection refused")
			default:
				return errTimeout
			}
		})
		snk := newSink()
		o := e.testOptions(t, "n1", map[channels.Type]channels.Sender{channels.WhatsApp: wa}, snk)
		o.SendTimeout = 50 * time.Millisecond
		w := start(t, o)

		now := time.Now()
		const convs, per = 8, 8
		for n := 1; n <= per; n++ {
			for c := range convs {
				e.queue(t, item("wa", fmt.Sprintf("c%d", c), n, now))
			}
		}
		w.Notify()
		waitFor(t, 10*time.Second, "failed attempts during the outage", func() bool { return calls.Load() >= 60 })
		if n := snk.sentCount(); n != 0 {
			t.Fatalf("%d sent during the outage", n)
		}
		if s := e.states(t); s[outbox.StatePending]+s[outbox.StateSending] != convs*per {
			t.Fatalf("states during the outage = %v, want all %d live", s, convs*per)
		}
		wa.setOutage(nil)
		waitFor(t, 20*time.Second, "the backlog to drain", func() bool { return snk.sentCount() == convs*per })
		wa.checkOrder(t)
		for msg, n := range wa.successes() {
			if n != 1 {
				t.Errorf("%s sent %d times", msg, n)
			}
		}
		if s := e.states(t); s[outbox.StateSent] != convs*per {
			t.Errorf("states = %v", s)
		}
		stats, err := e.store.Stats(context.Background(), time.Now())
		if err != nil || len(stats) != 0 {
			t.Errorf("Stats after the drain = %+v, %v; want no backlog", stats, err)
		}
	})
}

// TestWorkerPermanentFailureIsDead: a permanent error makes a dead letter
// with the provider's code and reason, lets the conversation go on, and an
// operator's requeue sends it.
func TestWorkerPermanentFailureIsDead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.account(t, "wa", channels.WhatsApp, fast)
		wa := newFakeSender(clock.Real{})
		wa.failFirst("A/0001", &channels.SendError{Code: "131026", Msg: "message undeliverable"})
		snk := newSink()
		w := start(t, e.testOptions(t, "n1", map[channels.Type]channels.Sender{channels.WhatsApp: wa}, snk))
		now := time.Now()
		e.queue(t, item("wa", "A", 1, now), item("wa", "A", 2, now))
		w.Notify()
		waitFor(t, 5*time.Second, "A/0002 to be sent", func() bool { return wa.successes()["A/0002"] == 1 })

		it := e.byMessage(t, "A/0001")[0]
		if it.State != outbox.StateDead || it.LastCode != "131026" || !strings.Contains(it.LastError, "message undeliverable") || it.Attempts != 1 {
			t.Errorf("dead row = %+v", it)
		}
		f := snk.failures()
		if len(f) != 1 || !f[0].final || f[0].code != "131026" || f[0].it.MessageID != "A/0001" || f[0].it.State != outbox.StateDead {
			t.Errorf("sink failures = %+v", f)
		}
		dead, err := e.store.ListDead(context.Background(), tenant, outbox.DeadFilter{AccountID: "wa"})
		if err != nil || len(dead) != 1 || dead[0].ID != it.ID {
			t.Fatalf("ListDead = %v, %v", ids(dead), err)
		}
		if err := e.store.Requeue(context.Background(), tenant, it.ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		w.Notify()
		waitFor(t, 5*time.Second, "the requeued row to be sent", func() bool { return wa.successes()["A/0001"] == 1 })
	})
}

// TestWorkerGivesUpAfterMaxAge: retries stop at the maximum age; refused
// credentials are retried slowly until then.
func TestWorkerGivesUpAfterMaxAge(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.account(t, "wa", channels.WhatsApp, fast)
		wa := newFakeSender(clock.Real{})
		wa.setOutage(func() error {
			return &channels.SendError{Code: "190", Msg: "access token expired", Auth: true}
		})
		snk := newSink()
		o := e.testOptions(t, "n1", map[channels.Type]channels.Sender{channels.WhatsApp: wa}, snk)
		o.AuthRetry = 100 * time.Millisecond
		o.MaxAge = 450 * time.Millisecond
		w := start(t, o)
		e.queue(t, item("wa", "A", 1, time.Now()))
		w.Notify()
		waitFor(t, 5*time.Second, "the row to die", func() bool { return e.states(t)[outbox.StateDead] == 1 })
		it := e.byMessage(t, "A/0001")[0]
		// Attempts at least 100 ms apart: at most five fit before the next
		// would fall past 450 ms; a slow machine makes fewer.
		if it.Attempts < 2 || it.Attempts > 5 || it.LastCode != "190" || !strings.HasPrefix(it.LastError, "gave up after") {
			t.Errorf("expired row: attempts %d, code %q, error %q", it.Attempts, it.LastCode, it.LastError)
		}
		at := wa.snapshot()
		for i := 1; i < len(at); i++ {
			if gap := at[i].at.Sub(at[i-1].at); gap < 100*time.Millisecond {
				t.Errorf("auth retry %d came %s after the previous, want >= 100ms", i, gap)
			}
		}
	})
}

// TestWorkerFallsBackToSMS: a closed window moves the message to the
// account's SMS fallback as text, when the contact has a phone number.
func TestWorkerFallsBackToSMS(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.account(t, "wa", channels.WhatsApp, channels.AccountSettings{RatePerSec: 1000, Burst: 1000, FallbackAccountID: "sms"})
		e.account(t, "sms", channels.SMS, fast)
		wa, sms := newFakeSender(clock.Real{}), newFakeSender(clock.Real{})
		closed := &channels.SendError{Code: "131047", Msg: "Re-engagement message", WindowClosed: true}
		wa.failFirst("A/0001", closed)
		wa.failFirst("A/0002", closed)
		wa.failFirst("B/0001", closed)
		snk := newSink()
		o := e.testOptions(t, "n1", map[channels.Type]channels.Sender{channels.WhatsApp: wa, channels.SMS: sms}, snk)
		o.Phones = outbox.PhonesFunc(func(_ context.Context, tenantID, conv string) (string, bool, error) {
			if tenantID == tenant && conv == "A" {
				return "+15551230000", true, nil
			}
			return "", false, nil
		})
		w := start(t, o)
		now := time.Now()
		img := item("wa", "A", 2, now)
		img.Out.Type, img.Out.Text = channels.MsgImage, ""
		img.Out.Media = &channels.Media{URL: "https://cdn.example.com/receipt.jpg", Caption: "Your receipt"}
		e.queue(t, item("wa", "A", 1, now), img, item("wa", "A", 3, now), item("wa", "B", 1, now))
		w.Notify()
		waitFor(t, 5*time.Second, "the fallbacks and A/0003", func() bool {
			s := sms.successes()
			return s["A/0001"] == 1 && s["A/0002"] == 1 && wa.successes()["A/0003"] == 1 && e.states(t)[outbox.StateDead] == 3
		})

		rows := e.byMessage(t, "A/0002")
		if len(rows) != 2 {
			t.Fatalf("rows of A/0002 = %+v", rows)
		}
		orig, fb := rows[0], rows[1]
		if orig.State != outbox.StateDead || orig.LastCode != "131047" || !strings.HasPrefix(orig.LastError, outbox.ReasonFellBack) {
			t.Errorf("replaced row = %+v", orig)
		}
		if fb.State != outbox.StateSent || fb.FallbackOf != orig.ID || fb.AccountID != "sms" || fb.Out.Type != channels.MsgText ||
			fb.Out.ExternalID != "+15551230000" || fb.Out.Text != "Your receipt\nhttps://cdn.example.com/receipt.jpg" {
			t.Errorf("fallback row = %+v", fb)
		}
		// No phone for B: a dead letter.
		b := e.byMessage(t, "B/0001")
		if len(b) != 1 || b[0].State != outbox.StateDead || b[0].LastCode != "131047" || strings.HasPrefix(b[0].LastError, outbox.ReasonFellBack) {
			t.Errorf("rows of B/0001 = %+v", b)
		}
		var finals []string
		for _, f := range snk.failures() {
			if f.final {
				finals = append(finals, f.it.MessageID)
			}
		}
		if len(finals) != 1 || finals[0] != "B/0001" {
			t.Errorf("final failures = %v, want only B/0001", finals)
		}
		snk.mu.Lock()
		sentFB := snk.sent["A/0002"]
		snk.mu.Unlock()
		if len(sentFB) != 1 || sentFB[0].AccountID != "sms" {
			t.Errorf("sink Sent for A/0002 = %+v", sentFB)
		}
		// The SMS went out before A/0003 on WhatsApp: the fallback kept
		// its place in the conversation.
		var smsAt, waAt time.Time
		for _, a := range sms.snapshot() {
			if a.msg == "A/0002" {
				smsAt = a.at
			}
		}
		for _, a := range wa.snapshot() {
			if a.msg == "A/0003" {
				waAt = a.at
			}
		}
		if !smsAt.Before(waAt) {
			t.Errorf("A/0003 sent at %v, before the fallback of A/0002 at %v", waAt, smsAt)
		}
	})
}

// TestTwoWorkersSendEachMessageOnce: two nodes on one database and Redis
// share the work; every message goes out exactly once, in order.
func TestTwoWorkersSendEachMessageOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.account(t, "wa", channels.WhatsApp, fast)
		wa := newFakeSender(clock.Real{})
		wa.latency = 2 * time.Millisecond
		// A few failures so that rows move between nodes.
		for c := range 20 {
			wa.failFirst(msgID(fmt.Sprintf("c%02d", c), 3), &channels.SendError{Code: "500", Retry: true})
		}
		snk := newSink()
		senders := map[channels.Type]channels.Sender{channels.WhatsApp: wa}
		w1 := start(t, e.testOptions(t, "node-a", senders, snk))
		w2 := start(t, e.testOptions(t, "node-b", senders, snk))
		now := time.Now()
		const convs, per = 20, 10
		for n := 1; n <= per; n++ {
			for c := range convs {
				e.queue(t, item("wa", fmt.Sprintf("c%02d", c), n, now))
			}
		}
		w1.Notify()
		w2.Notify()
		waitFor(t, 30*time.Second, "every message", func() bool { return snk.sentCount() >= convs*per })
		time.Sleep(100 * time.Millisecond) // a duplicate would show now
		wa.checkOrder(t)
		succ := wa.successes()
		if len(succ) != convs*per {
			t.Errorf("%d messages sent, want %d", len(succ), convs*per)
		}
		for msg, n := range succ {
			if n != 1 {
				t.Errorf("%s sent %d times", msg, n)
			}
		}
		var owners []string
		if err := e.db.SelectContext(context.Background(), &owners, `SELECT DISTINCT lease_owner FROM outbox`); err != nil {
			t.Fatal(err)
		}
		if len(owners) != 1 || owners[0] != "" {
			t.Errorf("lease owners left = %q, want none", owners)
		}
	})
}

// TestLeaseExpiryRecoversACrashedWorker: rows claimed by a node that died
// wait for its lease, then another node sends them.
func TestLeaseExpiryRecoversACrashedWorker(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.account(t, "wa", channels.WhatsApp, fast)
		clk := clock.NewFake(t0)
		wa := newFakeSender(clk)
		e.queue(t, item("wa", "A", 1, t0), item("wa", "A", 2, t0), item("wa", "B", 1, t0))
		crashed, err := e.store.Claim(ctx, "dead-node", t0, 20*time.Second, 10)
		if err != nil || len(crashed) != 2 {
			t.Fatalf("crashed node's claim = %v, %v", ids(crashed), err)
		}
		snk := newSink()
		o := e.testOptions(t, "n1", map[channels.Type]channels.Sender{channels.WhatsApp: wa}, snk)
		o.Clock = clk
		w := start(t, o)
		w.Notify()
		time.Sleep(200 * time.Millisecond) // several poll rounds
		if n := len(wa.snapshot()); n != 0 {
			t.Fatalf("%d sends while the dead node's lease holds", n)
		}
		clk.Advance(20 * time.Second)
		w.Notify()
		waitFor(t, 5*time.Second, "the recovered rows", func() bool { return snk.sentCount() == 3 })
		wa.checkOrder(t)
		for _, m := range []string{"A/0001", "B/0001"} {
			if it := e.byMessage(t, m)[0]; it.Attempts != 2 || it.State != outbox.StateSent {
				t.Errorf("%s: attempts %d state %s, want 2 sent", m, it.Attempts, it.State)
			}
		}
	})
}

// TestWorkerWaitsForDisabledAccount: a disabled account's rows wait
// untried and go once it is enabled.
func TestWorkerWaitsForDisabledAccount(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.account(t, "wa", channels.WhatsApp, fast)
		if _, err := e.db.ExecContext(ctx, e.db.Rebind(`UPDATE channel_accounts SET enabled = ? WHERE id = 'wa'`), false); err != nil {
			t.Fatal(err)
		}
		wa := newFakeSender(clock.Real{})
		snk := newSink()
		o := e.testOptions(t, "n1", map[channels.Type]channels.Sender{channels.WhatsApp: wa}, snk)
		o.DisabledRecheck = time.Second
		w := start(t, o)
		e.queue(t, item("wa", "A", 1, time.Now()))
		w.Notify()
		// Put back once (for a second), looked at again after it.
		waitFor(t, 5*time.Second, "the row to be put back", func() bool {
			it := e.byMessage(t, "A/0001")[0]
			return it.State == outbox.StatePending && it.NextAt.After(it.CreatedAt)
		})
		if n := len(wa.snapshot()); n != 0 {
			t.Fatalf("%d sends through a disabled account", n)
		}
		if it := e.byMessage(t, "A/0001")[0]; it.Attempts != 0 || it.State != outbox.StatePending {
			t.Errorf("waiting row: attempts %d state %s, want 0 pending", it.Attempts, it.State)
		}
		if _, err := e.db.ExecContext(ctx, e.db.Rebind(`UPDATE channel_accounts SET enabled = ? WHERE id = 'wa'`), true); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "the send after enabling", func() bool { return snk.sentCount() == 1 })
	})
}

// TestWorkerDeadWithoutSenderOrAccount: rows that no sender can take, or
// whose account is gone, are dead letters, not a loop.
func TestWorkerDeadWithoutSenderOrAccount(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.account(t, "oa", channels.WeChatOA, fast)
		snk := newSink()
		w := start(t, e.testOptions(t, "n1", map[channels.Type]channels.Sender{}, snk))
		e.queue(t, item("oa", "A", 1, time.Now()), item("gone", "B", 1, time.Now()))
		w.Notify()
		waitFor(t, 5*time.Second, "two dead letters", func() bool { return e.states(t)[outbox.StateDead] == 2 })
		if it := e.byMessage(t, "A/0001")[0]; it.LastCode != "no_sender" {
			t.Errorf("A/0001 = %+v", it)
		}
		if it := e.byMessage(t, "B/0001")[0]; it.LastCode != "no_account" {
			t.Errorf("B/0001 = %+v", it)
		}
	})
}

// TestWorkerStopDrains: Stop waits for a send in flight and records it.
func TestWorkerStopDrains(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		e.account(t, "wa", channels.WhatsApp, fast)
		wa := newFakeSender(clock.Real{})
		wa.latency = 300 * time.Millisecond
		o := e.testOptions(t, "n1", map[channels.Type]channels.Sender{channels.WhatsApp: wa}, nil)
		o.SendTimeout = time.Second
		w, err := outbox.NewWorker(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.queue(t, item("wa", "A", 1, time.Now()))
		w.Notify()
		waitFor(t, 5*time.Second, "the send to start", func() bool {
			wa.mu.Lock()
			defer wa.mu.Unlock()
			return len(wa.inFlight) == 1
		})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := w.Stop(ctx); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if it := e.byMessage(t, "A/0001")[0]; it.State != outbox.StateSent {
			t.Errorf("after Stop the row is %s, want sent", it.State)
		}
		if err := w.Start(context.Background()); !errs.Is(err, errs.Conflict) {
			t.Errorf("Start after Stop: %v, want conflict", err)
		}

		// A stop that runs out of time cancels the send and records a retry.
		wa.latency = 5 * time.Second
		o.NodeID, o.SendTimeout = "n2", 10*time.Second
		w2, err := outbox.NewWorker(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := w2.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.queue(t, item("wa", "B", 1, time.Now()))
		w2.Notify()
		waitFor(t, 5*time.Second, "the send to start", func() bool {
			wa.mu.Lock()
			defer wa.mu.Unlock()
			return len(wa.inFlight) == 1
		})
		short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel2()
		if err := w2.Stop(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Stop past its deadline: %v", err)
		}
		if it := e.byMessage(t, "B/0001")[0]; it.State != outbox.StatePending || it.LastCode != "interrupted" {
			t.Errorf("after an interrupted send the row is %s (%s), want pending (interrupted)", it.State, it.LastCode)
		}
	})
}

func TestNewWorkerValidates(t *testing.T) {
	e := newEnv(t, "sqlite", "embedded")
	base := e.testOptions(t, "n1", nil, nil)
	for _, tc := range []struct {
		name string
		mod  func(*outbox.Options)
	}{
		{"no store", func(o *outbox.Options) { o.Store = nil }},
		{"no accounts", func(o *outbox.Options) { o.Accounts = nil }},
		{"no redis", func(o *outbox.Options) { o.Redis = nil }},
		{"no node", func(o *outbox.Options) { o.NodeID = "" }},
		{"short lease", func(o *outbox.Options) { o.Lease = o.SendTimeout + time.Second }},
		{"cap below base", func(o *outbox.Options) { o.BackoffCap = o.BackoffBase / 2 }},
		{"negative concurrency", func(o *outbox.Options) { o.Concurrency = -1 }},
	} {
		o := base
		tc.mod(&o)
		if _, err := outbox.NewWorker(o); !errs.Is(err, errs.Invalid) {
			t.Errorf("%s: %v, want invalid", tc.name, err)
		}
	}
	if _, err := outbox.NewWorker(base); err != nil {
		t.Errorf("valid options: %v", err)
	}
}
