package inbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/channelsql"
	"github.com/switchboard-acd/switchboard/channels/inbox"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

var t0 = time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)

// logEnv is a migrated database of one kind with tenant t1 and its web
// chat account wc1, and the inbound log over it.
type logEnv struct {
	d     *db.DB
	store *channelsql.Store
	acct  channels.Account
}

// forEachDB runs a test on a fresh database of every kind.
func forEachDB(t *testing.T, fn func(t *testing.T, env logEnv)) {
	for _, kind := range testenv.DBKinds {
		t.Run(kind, func(t *testing.T) {
			d := testenv.DB(t, kind)
			if _, err := d.ExecContext(t.Context(), d.Rebind(`INSERT INTO tenants (id, name, settings, created_at) VALUES (?, ?, ?, ?)`),
				"t1", "t1", "{}", t0); err != nil {
				t.Fatal(err)
			}
			s := channelsql.New(d)
			acct := channels.Account{TenantID: "t1", ID: "wc1", Type: channels.WebChat, Name: "Site", PublicKey: "wc1-key",
				Secret: "s", Enabled: true, Version: 1, CreatedAt: t0}
			if err := s.AccountCreate(t.Context(), acct); err != nil {
				t.Fatal(err)
			}
			fn(t, logEnv{d: d, store: s, acct: acct})
		})
	}
}

// testLog routes a component's log to the test's.
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// startPipeline starts a pipeline over env's log and stops it when the
// test ends (after the test's own clean-ups registered later, such as
// opening gates its Process waits at).
func startPipeline(t *testing.T, env logEnv, o inbox.PipelineOptions) *inbox.Pipeline {
	t.Helper()
	if o.Store == nil {
		o.Store = env.store
	}
	if o.Log == nil {
		o.Log = testLog(t)
	}
	p := inbox.NewPipeline(o)
	p.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := p.Stop(ctx); err != nil {
			t.Errorf("stop pipeline: %v", err)
		}
	})
	return p
}

// msg is the entry of the n-th message of customer cust, with provider id
// cust-n.
func msg(env logEnv, cust string, n int) inbox.Entry {
	id := cust + "-" + strconv.Itoa(n)
	return inbox.Entry{TenantID: env.acct.TenantID, AccountID: env.acct.ID, DedupeKey: id,
		Inbound: channels.Inbound{AccountID: env.acct.ID, ExternalID: cust, ChannelMsgID: id, Type: channels.MsgText, Text: "message " + id}}
}

// recorder is a Process that records every entry it is given, in order.
type recorder struct {
	mu  sync.Mutex
	got []inbox.Entry // guarded by mu
}

func (r *recorder) record(e inbox.Entry) {
	r.mu.Lock()
	r.got = append(r.got, e)
	r.mu.Unlock()
}

func (r *recorder) process(_ context.Context, e inbox.Entry) error {
	r.record(e)
	return nil
}

func (r *recorder) entries() []inbox.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]inbox.Entry(nil), r.got...)
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// countByID counts the times each provider id was processed.
func countByID(es ...[]inbox.Entry) map[string]int {
	n := map[string]int{}
	for _, l := range es {
		for _, e := range l {
			n[e.Inbound.ChannelMsgID]++
		}
	}
	return n
}

// checkOrder fails the test when a customer's messages were processed out
// of the order they were appended in (msg's numbers), or when some are
// missing.
func checkOrder(t *testing.T, want map[string]int, es ...[]inbox.Entry) {
	t.Helper()
	last, count := map[string]int{}, map[string]int{}
	for _, l := range es {
		for _, e := range l {
			cust := e.Inbound.ExternalID
			n, err := strconv.Atoi(strings.TrimPrefix(e.Inbound.ChannelMsgID, cust+"-"))
			if err != nil {
				t.Fatalf("unexpected message %q", e.Inbound.ChannelMsgID)
			}
			prev, seen := last[cust]
			if !seen {
				prev = -1
			}
			switch {
			case n != prev+1 && !seen:
				t.Errorf("customer %s: message %d processed first", cust, n)
			case n != prev+1:
				t.Errorf("customer %s: message %d processed after message %d", cust, n, prev)
			}
			last[cust] = n
			count[cust]++
		}
	}
	if diff := cmp.Diff(want, count); diff != "" {
		t.Errorf("messages processed per customer (-want +got):\n%s", diff)
	}
}

// waitFor polls cond until it holds, failing the test after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func backlog(t *testing.T, s inbox.LogStore) int64 {
	t.Helper()
	n, _, err := s.InboundBacklog(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitDrained waits until the log is empty and the pipeline holds nothing.
func waitDrained(t *testing.T, env logEnv, p *inbox.Pipeline) {
	t.Helper()
	waitFor(t, "the log to drain", func() bool { return backlog(t, env.store) == 0 && p.Held() == 0 })
}

// row is an inbound_log row as stored.
type row struct {
	Attempts  int       `db:"attempts"`
	LastError string    `db:"last_error"`
	NextAt    time.Time `db:"next_at"`
}

func readRow(t *testing.T, env logEnv, seq int64) (row, bool) {
	t.Helper()
	var r row
	err := env.d.GetContext(t.Context(), &r, env.d.Rebind(`SELECT attempts, last_error, next_at FROM inbound_log WHERE seq = ?`), seq)
	if errs.Is(db.Translate(err), errs.NotFound) {
		return row{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return r, true
}

// appendOne appends one entry, which must be new.
func appendOne(t *testing.T, p *inbox.Pipeline, env logEnv, e inbox.Entry) {
	t.Helper()
	fresh, err := p.Append(t.Context(), env.acct, []inbox.Entry{e})
	if err != nil {
		t.Fatalf("append %s: %v", e.DedupeKey, err)
	}
	if len(fresh) != 1 || !fresh[0] {
		t.Fatalf("append %s: fresh = %v, want [true]", e.DedupeKey, fresh)
	}
}

// appendConcurrently appends perCust messages of each customer from
// several goroutines. A customer's messages go one after the other (the
// next once the last was answered, as a provider does), from whichever
// goroutine; a call carries up to perCall of them.
func appendConcurrently(t *testing.T, p *inbox.Pipeline, env logEnv, customers []string, perCust, perCall int) map[string]int {
	t.Helper()
	type cust struct {
		mu   sync.Mutex
		next int // guarded by mu
	}
	type turn struct{ cust, n int }
	cs := make([]*cust, len(customers))
	var turns []turn
	for i := range cs {
		cs[i] = &cust{}
		for left := perCust; left > 0; {
			k := min(1+rand.IntN(perCall), left)
			turns = append(turns, turn{i, k})
			left -= k
		}
	}
	rand.Shuffle(len(turns), func(i, j int) { turns[i], turns[j] = turns[j], turns[i] })
	queue := make(chan turn, len(turns))
	for _, tu := range turns {
		queue <- tu
	}
	close(queue)
	errc := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for tu := range queue {
				// The customer's next numbers are taken under its lock: a
				// turn taken later but locked first sends the earlier ones.
				c := cs[tu.cust]
				c.mu.Lock()
				batch := make([]inbox.Entry, tu.n)
				for j := range batch {
					batch[j] = msg(env, customers[tu.cust], c.next+j)
				}
				fresh, err := p.Append(t.Context(), env.acct, batch)
				if err == nil && len(fresh) != len(batch) {
					err = fmt.Errorf("append of %d: %d answers", len(batch), len(fresh))
				}
				for j := 0; err == nil && j < len(batch); j++ {
					if !fresh[j] {
						err = fmt.Errorf("append of %s: not fresh", batch[j].DedupeKey)
					}
				}
				c.next += len(batch)
				c.mu.Unlock()
				if err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, c := range customers {
		want[c] = perCust
	}
	return want
}

func customers(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("cust%02d", i)
	}
	return out
}

func TestPipelineProcessesOnceInOrder(t *testing.T) {
	forEachDB(t, func(t *testing.T, env logEnv) {
		var rec recorder
		p := startPipeline(t, env, inbox.PipelineOptions{Process: rec.process, Lanes: 4})
		want := appendConcurrently(t, p, env, customers(12), 25, 2)
		waitDrained(t, env, p)
		if err := p.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		got := rec.entries()
		checkOrder(t, want, got)
		for id, n := range countByID(got) {
			if n != 1 {
				t.Errorf("%s processed %d times", id, n)
			}
		}
		for _, e := range got {
			if e.Seq <= 0 || e.TenantID != "t1" || e.AccountID != "wc1" || e.DedupeKey != e.Inbound.ChannelMsgID ||
				e.Attempts != 0 || e.ReceivedAt.IsZero() {
				t.Errorf("processed entry %+v: want its seq, tenant, account, key and time, never taken from the log", e)
				break
			}
		}
		if n := backlog(t, env.store); n != 0 {
			t.Errorf("backlog %d after stop", n)
		}
	})
}

func TestPipelineDuplicates(t *testing.T) {
	forEachDB(t, func(t *testing.T, env logEnv) {
		var rec recorder
		gate, started := make(chan struct{}), make(chan struct{}, 100)
		// Nothing is taken in until the gate opens: what was appended stays
		// in the log.
		p := startPipeline(t, env, inbox.PipelineOptions{Process: func(ctx context.Context, e inbox.Entry) error {
			started <- struct{}{}
			<-gate
			return rec.process(ctx, e)
		}})
		t.Cleanup(func() {
			select {
			case <-gate:
			default:
				close(gate)
			}
		})
		appendOne(t, p, env, msg(env, "a", 0))
		<-started // a-0 is being taken into its conversation, still in the log

		noID := func(text string) inbox.Entry {
			e := msg(env, "b", 0)
			e.DedupeKey, e.Inbound.ChannelMsgID, e.Inbound.Text = "", "", text
			return e
		}
		batch := []inbox.Entry{msg(env, "a", 0), msg(env, "c", 0), msg(env, "c", 0), noID("x"), noID("y")}
		fresh, err := p.Append(t.Context(), env.acct, batch)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]bool{false, true, false, true, true}, fresh); diff != "" {
			t.Errorf("fresh (-want +got):\n%s", diff)
		}
		if batch[0].Seq != 0 || batch[1].Seq == 0 || batch[2].Seq != 0 {
			t.Errorf("seqs of the appended entries %d %d %d; want 0, one, 0", batch[0].Seq, batch[1].Seq, batch[2].Seq)
		}
		// Messages without a provider id are never duplicates.
		if fresh, err := p.Append(t.Context(), env.acct, []inbox.Entry{noID("x")}); err != nil || !fresh[0] {
			t.Errorf("message without id appended again = %v, %v; want fresh", fresh, err)
		}
		if n := backlog(t, env.store); n != 5 {
			t.Errorf("backlog %d, want 5 (a-0, c-0 and three without id)", n)
		}
		close(gate)
		waitDrained(t, env, p)
		got := countByID(rec.entries())
		if diff := cmp.Diff(map[string]int{"a-0": 1, "c-0": 1, "": 3}, got); diff != "" {
			t.Errorf("processed (-want +got):\n%s", diff)
		}
		// Once taken, the log forgets the id: a late retry is the messages
		// table's to drop.
		appendOne(t, p, env, msg(env, "a", 0))
		waitDrained(t, env, p)
		if n := countByID(rec.entries())["a-0"]; n != 2 {
			t.Errorf("a-0 appended after it was taken processed %d times, want 2", n)
		}
	})
}

func TestPipelineRetriesFailures(t *testing.T) {
	forEachDB(t, func(t *testing.T, env logEnv) {
		clk := clock.NewFake(t0)
		var (
			rec   recorder
			mu    sync.Mutex
			fails int // guarded by mu
		)
		p := startPipeline(t, env, inbox.PipelineOptions{
			Clock: clk, SweepEvery: 10 * time.Millisecond, Lease: time.Minute,
			Process: func(ctx context.Context, e inbox.Entry) error {
				rec.record(e)
				if e.Inbound.ExternalID != "bad" {
					return nil
				}
				mu.Lock()
				defer mu.Unlock()
				if fails < 2 {
					fails++
					return fmt.Errorf("disk full #%d", fails)
				}
				return nil
			},
		})
		appendOne(t, p, env, msg(env, "bad", 0))
		appendOne(t, p, env, msg(env, "good", 0))

		calls := func() []inbox.Entry {
			var out []inbox.Entry
			for _, e := range rec.entries() {
				if e.Inbound.ExternalID == "bad" {
					out = append(out, e)
				}
			}
			return out
		}
		waitFor(t, "the first attempt", func() bool { return len(calls()) == 1 })
		seq := calls()[0].Seq
		// The failure is recorded and the entry is due after a second; the
		// other customer's message is not held up.
		waitFor(t, "the failure to be recorded", func() bool { r, _ := readRow(t, env, seq); return r.LastError != "" })
		r, ok := readRow(t, env, seq)
		if !ok || r.LastError != "disk full #1" || r.Attempts != 0 || !r.NextAt.Equal(t0.Add(time.Second)) {
			t.Errorf("after the first failure: %+v (in log %v); want disk full #1, 0 attempts, due at %v", r, ok, t0.Add(time.Second))
		}
		waitFor(t, "the other customer's message", func() bool { return backlog(t, env.store) == 1 })

		// Due: the sweeper takes it again, counting the attempt.
		clk.Advance(time.Second)
		waitFor(t, "the second attempt", func() bool { return len(calls()) == 2 })
		waitFor(t, "the second failure to be recorded", func() bool { r, _ := readRow(t, env, seq); return r.LastError == "disk full #2" })
		r, _ = readRow(t, env, seq)
		if r.Attempts != 1 || !r.NextAt.After(t0.Add(time.Second)) || r.NextAt.After(t0.Add(3*time.Second)) {
			t.Errorf("after the second failure: %+v; want 1 attempt, due a second or two later", r)
		}
		clk.Set(r.NextAt)
		waitFor(t, "the third attempt", func() bool { return len(calls()) == 3 })
		waitDrained(t, env, p)

		var attempts []int
		for _, e := range calls() {
			attempts = append(attempts, e.Attempts)
			if e.Seq != seq {
				t.Errorf("retried as seq %d, want %d", e.Seq, seq)
			}
		}
		if diff := cmp.Diff([]int{0, 1, 2}, attempts); diff != "" {
			t.Errorf("attempts seen by Process (-want +got):\n%s", diff)
		}
		if n := countByID(rec.entries())["good-0"]; n != 1 {
			t.Errorf("good-0 processed %d times", n)
		}
	})
}

func TestPipelineSpillsWhenFull(t *testing.T) {
	forEachDB(t, func(t *testing.T, env logEnv) {
		var rec recorder
		gate := make(chan struct{})
		const maxHeld = 4
		p := startPipeline(t, env, inbox.PipelineOptions{MaxHeld: maxHeld, Lanes: 4, SweepEvery: 50 * time.Millisecond,
			Process: func(ctx context.Context, e inbox.Entry) error {
				select {
				case <-gate:
				case <-ctx.Done():
					return ctx.Err()
				}
				return rec.process(ctx, e)
			}})
		var once sync.Once
		open := func() { once.Do(func() { close(gate) }) }
		t.Cleanup(open)

		// With every lane stuck, appends are still answered: the entries
		// wait in the log. (A call of two that does not fit in the room
		// left makes the sweeper claim while others are committing.)
		want := appendConcurrently(t, p, env, customers(6), 8, 2)
		if n := backlog(t, env.store); n != 48 {
			t.Errorf("backlog %d while the lanes are stuck, want 48", n)
		}
		if h := p.Held(); h > maxHeld {
			t.Errorf("holding %d entries, MaxHeld is %d", h, maxHeld)
		}
		if n := rec.len(); n != 0 {
			t.Fatalf("%d processed through a closed gate", n)
		}
		open()
		waitDrained(t, env, p)
		got := rec.entries()
		checkOrder(t, want, got)
		fromMemory := 0
		for id, n := range countByID(got) {
			if n != 1 {
				t.Errorf("%s processed %d times", id, n)
			}
		}
		for _, e := range got {
			if e.Attempts == 0 {
				fromMemory++
			}
		}
		if fromMemory > maxHeld {
			t.Errorf("%d entries taken from memory, at most %d fit", fromMemory, maxHeld)
		}
	})
}

// TestPipelineSpillEndsInOrder: a customer's message accepted while the
// node spilled must not be overtaken by the next one accepted after the
// node stopped spilling. The sweeper's last claim can run while an
// append that saw the node spilling is still being committed: the claim
// finds nothing, the node stops spilling, and the entry is left in the
// log until the next sweep, while the customer's next message goes
// straight to its lane.
func TestPipelineSpillEndsInOrder(t *testing.T) {
	forEachDB(t, func(t *testing.T, env logEnv) {
		var rec recorder
		gate := make(chan struct{})
		var once sync.Once
		open := func() { once.Do(func() { close(gate) }) }
		st := &pausingStore{LogStore: env.store, pauseKey: "x-0", paused: make(chan struct{}), resume: make(chan struct{}),
			claimed: make(chan int, 100)}
		p := startPipeline(t, env, inbox.PipelineOptions{Store: st, MaxHeld: 4, Lanes: 4, SweepEvery: 500 * time.Millisecond,
			Process: func(ctx context.Context, e inbox.Entry) error {
				if strings.HasPrefix(e.Inbound.ExternalID, "block") {
					<-gate
				}
				return rec.process(ctx, e)
			}})
		t.Cleanup(func() {
			open()
			st.unpause()
		})
		for i := range 4 {
			appendOne(t, p, env, msg(env, fmt.Sprintf("block%d", i), 0))
		}
		// Full: x-0 is accepted into the log, its commit held back here.
		done := make(chan error, 1)
		go func() {
			_, err := p.Append(t.Context(), env.acct, []inbox.Entry{msg(env, "x", 0)})
			done <- err
		}()
		<-st.paused
		// The lanes free up; the sweeper finds nothing due yet.
		open()
		waitFor(t, "the sweeper to find the log empty", func() bool {
			select {
			case n := <-st.claimed:
				return n == 0
			default:
				return false
			}
		})
		waitFor(t, "the lanes to free up", func() bool { return p.Held() == 0 })
		st.unpause()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		appendOne(t, p, env, msg(env, "x", 1))
		waitFor(t, "x's messages", func() bool { n := countByID(rec.entries()); return n["x-0"] == 1 && n["x-1"] == 1 })
		var xs []inbox.Entry
		for _, e := range rec.entries() {
			if e.Inbound.ExternalID == "x" {
				xs = append(xs, e)
			}
		}
		checkOrder(t, map[string]int{"x": 2}, xs)
	})
}

// pausingStore holds back the commit of the entry with key pauseKey until
// resumed, and reports how many entries each claim took.
type pausingStore struct {
	inbox.LogStore
	pauseKey string
	paused   chan struct{}
	resume   chan struct{}
	once     sync.Once
	claimed  chan int
}

func (s *pausingStore) unpause() { s.once.Do(func() { close(s.resume) }) }

func (s *pausingStore) InboundAppend(ctx context.Context, entries []inbox.Entry) ([]int64, error) {
	for _, e := range entries {
		if e.DedupeKey == s.pauseKey {
			s.paused <- struct{}{}
			<-s.resume
		}
	}
	return s.LogStore.InboundAppend(ctx, entries)
}

func (s *pausingStore) InboundClaim(ctx context.Context, now, until time.Time, limit int) ([]inbox.Entry, error) {
	es, err := s.LogStore.InboundClaim(ctx, now, until, limit)
	select {
	case s.claimed <- len(es):
	default:
	}
	return es, err
}

func TestPipelineStopHandsBack(t *testing.T) {
	forEachDB(t, func(t *testing.T, env logEnv) {
		// Node 1 has one lane and takes a message only when the test lets it.
		var rec1 recorder
		waiting, proceed := make(chan struct{}), make(chan struct{})
		p1 := inbox.NewPipeline(inbox.PipelineOptions{Store: env.store, Lanes: 1, Lease: time.Hour, SweepEvery: time.Hour, Log: testLog(t),
			Process: func(ctx context.Context, e inbox.Entry) error {
				waiting <- struct{}{}
				<-proceed
				return rec1.process(ctx, e)
			}})
		p1.Start()
		const perCust = 5
		for n := range perCust {
			for _, c := range []string{"a", "b"} {
				appendOne(t, p1, env, msg(env, c, n))
			}
		}
		<-waiting // a-0 is being taken in; the rest wait in memory

		stopped := make(chan error, 1)
		go func() { stopped <- p1.Stop(t.Context()) }()
		// Stopping: appends are refused. (Until then the probe, a message
		// still in the log, is a duplicate and changes nothing.)
		waitFor(t, "the node to refuse appends", func() bool {
			_, err := p1.Append(t.Context(), env.acct, []inbox.Entry{msg(env, "b", perCust-1)})
			return errs.Is(err, errs.Unavailable)
		})
		// The lane finishes what it is on (and, should it have started on
		// the next before Stop told it, that too).
		proceed <- struct{}{}
		var stopErr error
	wait:
		for {
			select {
			case <-waiting:
				proceed <- struct{}{}
			case stopErr = <-stopped:
				break wait
			}
		}
		if stopErr != nil {
			t.Fatalf("stop: %v", stopErr)
		}
		done1 := rec1.len()
		if done1 < 1 || done1 >= 2*perCust {
			t.Fatalf("node 1 took %d messages before stopping; want the one it was on and not all", done1)
		}
		// What node 1 took in is deleted; the rest is back in the log, due
		// now although node 1's lease would have run an hour.
		if n := backlog(t, env.store); n != int64(2*perCust-done1) {
			t.Errorf("backlog after stop %d, want %d", n, 2*perCust-done1)
		}
		var due int64
		if err := env.d.GetContext(t.Context(), &due, env.d.Rebind(`SELECT COUNT(*) FROM inbound_log WHERE next_at <= ?`), time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
		if due != int64(2*perCust-done1) {
			t.Errorf("%d entries due after stop, want %d", due, 2*perCust-done1)
		}
		if _, err := p1.Append(t.Context(), env.acct, []inbox.Entry{msg(env, "z", 0)}); !errs.Is(err, errs.Unavailable) {
			t.Errorf("append after stop: %v, want unavailable", err)
		}
		if err := p1.Stop(t.Context()); err != nil {
			t.Errorf("second stop: %v", err)
		}

		// Another node takes them over, in order.
		var rec2 recorder
		p2 := startPipeline(t, env, inbox.PipelineOptions{Process: rec2.process, SweepEvery: 20 * time.Millisecond})
		waitDrained(t, env, p2)
		got1, got2 := rec1.entries(), rec2.entries()
		checkOrder(t, map[string]int{"a": perCust, "b": perCust}, got1, got2)
		for _, e := range got2 {
			if e.Attempts != 1 {
				t.Errorf("%s taken over with %d attempts, want 1", e.DedupeKey, e.Attempts)
			}
		}
		for id, n := range countByID(got1, got2) {
			if n != 1 {
				t.Errorf("%s processed %d times", id, n)
			}
		}
	})
}

// TestPipelineTakesOverAfterLease: entries held by a node that died are
// taken by another once their lease ends.
func TestPipelineTakesOverAfterLease(t *testing.T) {
	forEachDB(t, func(t *testing.T, env logEnv) {
		clk := clock.NewFake(t0)
		stuck, release := make(chan struct{}, 10), make(chan struct{})
		var once sync.Once
		// Node 1 hangs on what it holds and never sweeps.
		dead := startPipeline(t, env, inbox.PipelineOptions{Clock: clk, Lease: time.Minute, SweepEvery: time.Hour, Lanes: 1,
			Process: func(ctx context.Context, e inbox.Entry) error {
				stuck <- struct{}{}
				<-release
				return errors.New("node 1 gave up")
			}})
		t.Cleanup(func() { once.Do(func() { close(release) }) })
		var rec recorder
		watched := &claimCounter{LogStore: env.store}
		startPipeline(t, env, inbox.PipelineOptions{Store: watched, Clock: clk, Lease: time.Minute, SweepEvery: 10 * time.Millisecond,
			Process: rec.process})

		appendOne(t, dead, env, msg(env, "a", 0))
		appendOne(t, dead, env, msg(env, "a", 1))
		<-stuck
		clk.Advance(time.Minute - time.Millisecond)
		// The lease still runs: node 2's sweeps find nothing.
		before := watched.claims.Load()
		waitFor(t, "node 2 to sweep", func() bool { return watched.claims.Load() >= before+3 })
		if n := watched.taken.Load(); n != 0 {
			t.Fatalf("node 2 took %d entries while node 1's lease ran", n)
		}
		clk.Advance(time.Millisecond)
		waitFor(t, "node 2 to take over", func() bool { return rec.len() == 2 })
		waitFor(t, "the log to drain", func() bool { return backlog(t, env.store) == 0 })
		got := rec.entries()
		checkOrder(t, map[string]int{"a": 2}, got)
		for _, e := range got {
			if e.Attempts != 1 {
				t.Errorf("%s taken over with %d attempts, want 1", e.DedupeKey, e.Attempts)
			}
		}
	})
}

// claimCounter counts the claims made through it and the entries they
// took.
type claimCounter struct {
	inbox.LogStore
	claims, taken atomic.Int64
}

func (c *claimCounter) InboundClaim(ctx context.Context, now, until time.Time, limit int) ([]inbox.Entry, error) {
	es, err := c.LogStore.InboundClaim(ctx, now, until, limit)
	c.taken.Add(int64(len(es)))
	c.claims.Add(1)
	return es, err
}

func TestPipelineUnavailable(t *testing.T) {
	forEachDB(t, func(t *testing.T, env logEnv) {
		var rec recorder
		// Not started.
		idle := inbox.NewPipeline(inbox.PipelineOptions{Store: env.store, Process: rec.process, Log: testLog(t)})
		if _, err := idle.Append(t.Context(), env.acct, []inbox.Entry{msg(env, "a", 0)}); !errs.Is(err, errs.Unavailable) {
			t.Errorf("append before start: %v, want unavailable", err)
		}
		if err := idle.Stop(t.Context()); err != nil {
			t.Errorf("stop of a pipeline never started: %v", err)
		}

		// Stopped.
		p := startPipeline(t, env, inbox.PipelineOptions{Process: rec.process})
		appendOne(t, p, env, msg(env, "a", 0))
		waitDrained(t, env, p)
		if err := p.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Append(t.Context(), env.acct, []inbox.Entry{msg(env, "a", 1)}); !errs.Is(err, errs.Unavailable) {
			t.Errorf("append after stop: %v, want unavailable", err)
		}

		// The caller gave up before its turn to commit.
		cancelled, cancel := context.WithCancel(t.Context())
		cancel()
		q := startPipeline(t, env, inbox.PipelineOptions{Process: rec.process, Committers: 1, MaxBatch: 1})
		for range 20 {
			_, err := q.Append(cancelled, env.acct, []inbox.Entry{msg(env, "b", 0)})
			if err != nil && !errs.Is(err, errs.Unavailable) {
				t.Errorf("append with a cancelled context: %v, want unavailable or committed", err)
			}
		}
		waitFor(t, "reservations to be given back", func() bool { return q.Held() == 0 })

		// The database is gone.
		d2 := testenv.DB(t, string(env.d.Dialect))
		if _, err := d2.ExecContext(t.Context(), d2.Rebind(`INSERT INTO tenants (id, name, settings, created_at) VALUES (?, ?, ?, ?)`),
			"t1", "t1", "{}", t0); err != nil {
			t.Fatal(err)
		}
		s2 := channelsql.New(d2)
		if err := s2.AccountCreate(t.Context(), env.acct); err != nil {
			t.Fatal(err)
		}
		broken := startPipeline(t, env, inbox.PipelineOptions{Store: s2, Process: rec.process})
		d2.Close()
		ctx, cancelCtx := context.WithTimeout(t.Context(), 15*time.Second)
		defer cancelCtx()
		if _, err := broken.Append(ctx, env.acct, []inbox.Entry{msg(env, "c", 0), msg(env, "c", 1)}); !errs.Is(err, errs.Unavailable) {
			t.Errorf("append on a closed database: %v, want unavailable", err)
		}
		if h := broken.Held(); h != 0 {
			t.Errorf("holding %d entries after a failed append, want 0", h)
		}
	})
}

// jsonHook is a provider whose webhook body is the list of messages.
type jsonHook struct{}

func (jsonHook) Webhook(_ context.Context, _ channels.Account, req channels.WebhookRequest) (channels.WebhookResult, error) {
	var ins []channels.Inbound
	if err := json.Unmarshal(req.Body, &ins); err != nil {
		return channels.WebhookResult{}, errs.E("jsonHook", errs.Invalid, "body: %v", err)
	}
	return channels.WebhookResult{Inbound: ins, Reply: channels.WebhookReply{Status: 200, Body: []byte("ok")}}, nil
}

// receiver records the messages taken into their conversations: customer
// "bad" sends what the engine refuses, customer "flaky" is stored at the
// second try.
type receiver struct {
	mu     sync.Mutex
	got    []channels.Inbound // guarded by mu
	accts  []channels.Account // guarded by mu
	flaked bool               // guarded by mu
}

func (r *receiver) Receive(_ context.Context, acct channels.Account, in channels.Inbound) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case in.ExternalID == "bad":
		return false, errs.E("receiver", errs.Invalid, "malformed")
	case in.ExternalID == "flaky" && !r.flaked:
		r.flaked = true
		return false, errors.New("database is restarting")
	}
	r.got, r.accts = append(r.got, in), append(r.accts, acct)
	return false, nil
}

func (r *receiver) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, in := range r.got {
		out = append(out, in.ChannelMsgID)
	}
	return out
}

// observer counts outcomes.
type observer struct {
	mu sync.Mutex
	n  map[string]int // guarded by mu
}

func (o *observer) Webhook(channel, outcome string) { o.add("webhook " + channel + " " + outcome) }
func (o *observer) Inbound(channel, outcome string) { o.add("inbound " + channel + " " + outcome) }

func (o *observer) add(k string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[string]int{}
	}
	o.n[k]++
}

func (o *observer) get(k string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[k]
}

func body(t *testing.T, ins ...channels.Inbound) channels.WebhookRequest {
	t.Helper()
	b, err := json.Marshal(ins)
	if err != nil {
		t.Fatal(err)
	}
	return channels.WebhookRequest{Method: "POST", Body: b}
}

func text(cust, id string) channels.Inbound {
	return channels.Inbound{AccountID: "spoofed", ExternalID: cust, ChannelMsgID: id, Type: channels.MsgText, Text: "hi " + id}
}

func TestIngestThroughInboundLog(t *testing.T) {
	forEachDB(t, func(t *testing.T, env logEnv) {
		ctx := t.Context()
		clk := clock.NewFake(t0)
		var (
			rcv receiver
			obs observer
		)
		g := inbox.NewIngest(inbox.IngestOptions{
			Accounts: env.store, Inbox: &rcv, Hooks: map[channels.Type]channels.Webhook{channels.WebChat: jsonHook{}},
			Observer: &obs, Log: testLog(t), InboundLog: env.store, AccountTTL: time.Hour,
			Pipeline: inbox.PipelineOptions{Clock: clk, SweepEvery: 10 * time.Millisecond},
		})
		g.Start()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := g.Stop(ctx); err != nil {
				t.Errorf("stop ingest: %v", err)
			}
		})
		if g.Pipeline() == nil {
			t.Fatal("an ingest with an inbound log has no pipeline")
		}

		reply, err := g.Handle(ctx, env.acct.PublicKey, body(t, text("a", "a-0"), text("bad", "bad-0"), text("flaky", "flaky-0"), text("a", "a-1")))
		if err != nil || reply.Status != 200 || string(reply.Body) != "ok" {
			t.Fatalf("Handle = %+v, %v", reply, err)
		}
		// Stored in order with the account the webhook came for; the
		// refused message is dropped, the failed one waits for its retry.
		waitFor(t, "the messages to be stored", func() bool { return len(rcv.ids()) == 2 && backlog(t, env.store) == 1 })
		if diff := cmp.Diff([]string{"a-0", "a-1"}, rcv.ids()); diff != "" {
			t.Errorf("stored (-want +got):\n%s", diff)
		}
		rcv.mu.Lock()
		for i, in := range rcv.got {
			if in.AccountID != "wc1" || rcv.accts[i].ID != "wc1" || rcv.accts[i].TenantID != "t1" {
				t.Errorf("%s stored for account %s (%s/%s), want wc1", in.ChannelMsgID, in.AccountID, rcv.accts[i].TenantID, rcv.accts[i].ID)
			}
		}
		rcv.mu.Unlock()
		if n := obs.get("inbound webchat refused"); n != 1 {
			t.Errorf("%d refused, want 1", n)
		}
		clk.Advance(time.Second)
		waitFor(t, "the failed message's retry", func() bool { return len(rcv.ids()) == 3 && backlog(t, env.store) == 0 })
		if n := obs.get("inbound webchat error"); n != 1 {
			t.Errorf("%d errors, want 1", n)
		}

		// A provider's retry of a message still in the log is answered and
		// counted as a duplicate. A message whose account is taken from the
		// store (left by another node) is stored with it.
		seqs, err := env.store.InboundAppend(ctx, []inbox.Entry{{TenantID: "t1", AccountID: "wc1", DedupeKey: "o-0",
			Inbound: text("other", "o-0"), ReceivedAt: clk.Now(), NextAt: clk.Now().Add(time.Minute)}})
		if err != nil || seqs[0] == 0 {
			t.Fatalf("append as another node: %v, %v", seqs, err)
		}
		if _, err := g.Handle(ctx, env.acct.PublicKey, body(t, text("other", "o-0"))); err != nil {
			t.Fatal(err)
		}
		if n := obs.get("inbound webchat duplicate"); n != 1 {
			t.Errorf("%d duplicates, want 1", n)
		}
		clk.Advance(time.Minute)
		waitFor(t, "the other node's message", func() bool { return len(rcv.ids()) == 4 && backlog(t, env.store) == 0 })
		rcv.mu.Lock()
		if a := rcv.accts[3]; a.ID != "wc1" || a.Name != "Site" || a.Type != channels.WebChat {
			t.Errorf("message left by another node stored with account %+v", a)
		}
		rcv.mu.Unlock()
		if n := obs.get("webhook webchat ok"); n != 2 {
			t.Errorf("%d webhooks ok, want 2", n)
		}

		// A webhook the provider adapter refuses stores nothing.
		if _, err := g.Handle(ctx, env.acct.PublicKey, channels.WebhookRequest{Body: []byte("{")}); !errs.Is(err, errs.Invalid) {
			t.Errorf("malformed webhook: %v, want invalid", err)
		}
		if n := backlog(t, env.store); n != 0 {
			t.Errorf("backlog %d after a refused webhook", n)
		}
	})
}

func TestIngestAccountCache(t *testing.T) {
	forEachDB(t, func(t *testing.T, env logEnv) {
		ctx := t.Context()
		hooks := map[channels.Type]channels.Webhook{channels.WebChat: jsonHook{}}
		newIngest := func(ttl time.Duration) *inbox.Ingest {
			var rcv receiver
			g := inbox.NewIngest(inbox.IngestOptions{Accounts: env.store, Inbox: &rcv, Hooks: hooks, Log: testLog(t),
				InboundLog: env.store, AccountTTL: ttl})
			g.Start()
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				if err := g.Stop(ctx); err != nil {
					t.Errorf("stop ingest: %v", err)
				}
			})
			return g
		}
		cached, uncached, short := newIngest(time.Hour), newIngest(-1), newIngest(50*time.Millisecond)
		for _, g := range []*inbox.Ingest{cached, uncached, short} {
			if _, err := g.Handle(ctx, env.acct.PublicKey, body(t, text("a", "a-0"))); err != nil {
				t.Fatal(err)
			}
		}
		// Disabled on another node.
		off, err := env.store.AccountGet(ctx, "t1", "wc1")
		if err != nil {
			t.Fatal(err)
		}
		off.Enabled = false
		if _, err := env.store.AccountUpdate(ctx, off); err != nil {
			t.Fatal(err)
		}
		if _, err := cached.Handle(ctx, env.acct.PublicKey, body(t, text("a", "a-1"))); err != nil {
			t.Errorf("within the cache's time the account is still the one looked up: %v", err)
		}
		if _, err := uncached.Handle(ctx, env.acct.PublicKey, body(t, text("a", "a-2"))); !errs.Is(err, errs.NotFound) {
			t.Errorf("uncached, disabled account: %v, want not_found", err)
		}
		waitFor(t, "the short cache to see the change", func() bool {
			_, err := short.Handle(ctx, env.acct.PublicKey, body(t, text("a", "a-3")))
			return errs.Is(err, errs.NotFound)
		})

		// An unknown key is looked up every time: an account created for
		// it is found at once.
		if _, err := cached.Handle(ctx, "later", body(t)); !errs.Is(err, errs.NotFound) {
			t.Errorf("unknown key: %v, want not_found", err)
		}
		later := channels.Account{TenantID: "t1", ID: "wc2", Type: channels.WebChat, Name: "Later", PublicKey: "later", Secret: "s",
			Enabled: true, CreatedAt: t0}
		if err := env.store.AccountCreate(ctx, later); err != nil {
			t.Fatal(err)
		}
		if _, err := cached.Handle(ctx, "later", body(t, text("b", "b-0"))); err != nil {
			t.Errorf("key of an account created after a miss: %v", err)
		}
	})
}
