package outbox

import (
	"container/heap"
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// Accounts looks channel accounts up; channels.AccountStore satisfies it.
type Accounts interface {
	AccountGet(ctx context.Context, tenantID, id string) (channels.Account, error)
}

var _ Accounts = channels.AccountStore(nil)

// Phones finds where an SMS fallback can reach the contact of a
// conversation: ok is false when the contact has no known phone number.
type Phones interface {
	FallbackTarget(ctx context.Context, tenantID, conversationID string) (phone string, ok bool, err error)
}

// PhonesFunc adapts a function to Phones.
type PhonesFunc func(ctx context.Context, tenantID, conversationID string) (string, bool, error)

// FallbackTarget implements Phones.
func (f PhonesFunc) FallbackTarget(ctx context.Context, tenantID, conversationID string) (string, bool, error) {
	return f(ctx, tenantID, conversationID)
}

// Sink hears the outcome of every send, so that the composition root can
// update the message's delivery status and tell the agent's console. It is
// called after the outcome is stored, from the goroutine that sent, and
// should return quickly.
type Sink interface {
	// Sent: the provider accepted it under channelMsgID.
	Sent(ctx context.Context, it Item, channelMsgID string)
	// Failed: a send of it failed with the provider's code and reason.
	// final is false when the message is still on its way (a retry is
	// scheduled, or an SMS fallback row took its place: its outcome
	// follows under the same MessageID) and true when it is a dead letter.
	Failed(ctx context.Context, it Item, code, reason string, final bool)
}

type nopSink struct{}

func (nopSink) Sent(context.Context, Item, string)                 {}
func (nopSink) Failed(context.Context, Item, string, string, bool) {}

// Options configure a Worker. Zero durations and counts take the defaults
// in parentheses.
type Options struct {
	Store    *Store
	Accounts Accounts
	// Senders deliver per channel type; a row of a type with no Sender is
	// a dead letter.
	Senders map[channels.Type]channels.Sender
	// Redis holds the per-account rate limits shared by all nodes, under
	// RedisPrefix (rdb.Client.Prefix; "sb").
	Redis       redis.UniversalClient
	RedisPrefix string
	// Phones finds the number an SMS fallback goes to; nil: no fallback.
	Phones Phones
	// Sink hears outcomes; nil: nobody.
	Sink Sink
	// Metrics count sends; nil: not counted.
	Metrics *Metrics
	Clock   clock.Clock  // (clock.Real)
	Log     *slog.Logger // (discard)
	// NodeID owns this worker's leases; required and unique per node.
	NodeID string
	// Concurrency is how many rows the worker holds at once (128): rows
	// being sent and rows waiting up to a second for their rate-limit
	// slot. To drain at the accounts' full rates it should exceed the sum
	// over the accounts this node sends for of rate × (1s + the provider's
	// latency); below that, rows are sent late (never early).
	Concurrency int
	// PollInterval is the longest the worker waits without looking for due
	// rows (1s): Notify wakes it sooner, and rows it deferred itself wake
	// it when they are due.
	PollInterval time.Duration
	// SendTimeout bounds one provider call (15s).
	SendTimeout time.Duration
	// Lease is how long a claim lasts (60s); a crashed node's rows return
	// after it. It must exceed SendTimeout plus the longest rate-limit hold
	// (1s) plus 5s for settling, so a live worker never loses its lease.
	Lease time.Duration
	// BackoffBase and BackoffCap shape the retry delay: attempt n waits a
	// uniformly random time in [0, min(cap, base·2^(n-1))) ("full jitter"),
	// or the provider's RetryAfter if longer (1s, 5m).
	BackoffBase time.Duration
	BackoffCap  time.Duration
	// AuthRetry is the least delay after the provider refused the
	// account's credentials (5m): an operator may fix them, so the row is
	// retried slowly until MaxAge instead of being given up at once.
	AuthRetry time.Duration
	// MaxAge gives a row up when its next retry would come later than this
	// after it was queued (24h).
	MaxAge time.Duration
	// MaxAttempts gives a row up after this many attempts (0: only MaxAge
	// limits retries).
	MaxAttempts int
	// AccountCacheTTL is how long a looked-up account is reused (5s; < 0:
	// not cached), so that credential and limit changes apply soon without
	// a database read per send.
	AccountCacheTTL time.Duration
	// DisabledRecheck is how long the rows of a disabled account wait
	// before the worker looks at the account again (30s). They wait
	// untried, without attempts or age counting against them.
	DisabledRecheck time.Duration
	// Retention is how long sent rows are kept for delivery-status
	// callbacks before the worker purges them (7 days; < 0: never purged).
	Retention time.Duration
}

// Defaults of Options.
const (
	DefaultConcurrency     = 128
	DefaultPollInterval    = time.Second
	DefaultSendTimeout     = 15 * time.Second
	DefaultLease           = time.Minute
	DefaultBackoffBase     = time.Second
	DefaultBackoffCap      = 5 * time.Minute
	DefaultAuthRetry       = 5 * time.Minute
	DefaultMaxAge          = 24 * time.Hour
	DefaultAccountCacheTTL = 5 * time.Second
	DefaultRetention       = 7 * 24 * time.Hour
	DefaultDisabledRecheck = 30 * time.Second
)

const (
	// maxHold is the longest a worker holds a claimed row waiting for its
	// rate-limit slot; a later slot puts the row back in the table until
	// then, so that a long backlog does not pin the worker's capacity.
	maxHold = time.Second
	// holdTick bounds one sleep of a hold, so that a hold also ends when a
	// simulated clock is moved on.
	holdTick = 25 * time.Millisecond
	// settleTimeout bounds the recording of one outcome, also when the
	// worker is being stopped.
	settleTimeout = 10 * time.Second
	// claimBatch bounds the rows claimed in one statement.
	claimBatch = 100
	// purgeEvery is how often the worker purges old sent rows.
	purgeEvery = time.Hour
	// retryUnavailable is the delay after a failure of our own (database,
	// Redis) rather than of the provider.
	retryUnavailable = 2 * time.Second
)

func (o *Options) setDefaults() error {
	if o.Store == nil || o.Accounts == nil || o.Redis == nil {
		return errs.E("outbox.NewWorker", errs.Invalid, "store, accounts and redis are required")
	}
	if o.NodeID == "" {
		return errs.E("outbox.NewWorker", errs.Invalid, "node_id: required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.PollInterval, DefaultPollInterval)
	def(&o.SendTimeout, DefaultSendTimeout)
	def(&o.Lease, DefaultLease)
	def(&o.BackoffBase, DefaultBackoffBase)
	def(&o.BackoffCap, DefaultBackoffCap)
	def(&o.AuthRetry, DefaultAuthRetry)
	def(&o.MaxAge, DefaultMaxAge)
	def(&o.AccountCacheTTL, DefaultAccountCacheTTL)
	def(&o.Retention, DefaultRetention)
	def(&o.DisabledRecheck, DefaultDisabledRecheck)
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Sink == nil {
		o.Sink = nopSink{}
	}
	if o.RedisPrefix == "" {
		o.RedisPrefix = "sb"
	}
	switch {
	case o.Concurrency < 0 || o.MaxAttempts < 0:
		return errs.E("outbox.NewWorker", errs.Invalid, "concurrency and max_attempts must be >= 0")
	case o.PollInterval < 0 || o.SendTimeout < 0 || o.BackoffBase < 0 || o.BackoffCap < o.BackoffBase || o.AuthRetry < 0 || o.MaxAge < 0 || o.DisabledRecheck < 0:
		return errs.E("outbox.NewWorker", errs.Invalid, "durations must not be negative, and backoff_cap must be >= backoff_base")
	case o.Lease < o.SendTimeout+maxHold+5*time.Second:
		return errs.E("outbox.NewWorker", errs.Invalid, "lease: must be at least send_timeout + 6s (%s)", o.SendTimeout+maxHold+5*time.Second)
	}
	return nil
}

// Worker sends the outbox's due rows. Every node runs one; they share the
// work through leases in the database and the rate limits in Redis.
type Worker struct {
	o       Options
	limiter *Limiter
	wake    chan struct{} // Notify; capacity 1
	freed   chan struct{} // a row was let go; capacity 1
	sem     chan struct{} // one token per row held

	// held counts the goroutines holding a claimed row.
	held sync.WaitGroup

	// mu guards the lifecycle fields and wakes.
	mu          sync.Mutex
	stopping    chan struct{} // closed by Stop
	loopDone    chan struct{} // closed when the claim loop returns
	cancelSends context.CancelFunc
	wakes       wakeHeap // NextAt of rows this worker put back, earliest first

	// acctMu guards accts.
	acctMu sync.Mutex
	accts  map[[2]string]cachedAccount
}

type cachedAccount struct {
	acct channels.Account
	at   time.Time
}

// NewWorker checks o and returns a stopped Worker.
func NewWorker(o Options) (*Worker, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	return &Worker{
		o:       o,
		limiter: NewLimiter(o.Redis, o.RedisPrefix),
		wake:    make(chan struct{}, 1),
		freed:   make(chan struct{}, 1),
		sem:     make(chan struct{}, o.Concurrency),
		accts:   map[[2]string]cachedAccount{},
	}, nil
}

// Notify wakes the worker to claim at once; call it after committing a
// transaction that inserted rows. It never blocks. It wakes this node's
// worker only: the others find the rows at their next poll
// (PollInterval), which is why any node may take them.
func (w *Worker) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Start begins claiming and sending in the background until Stop. ctx only
// carries values; cancelling it does not stop the worker. A Worker runs
// once: Start after Stop is errs.Conflict.
func (w *Worker) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopping != nil {
		return errs.E("outbox.Worker.Start", errs.Conflict, "worker already started")
	}
	sendCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.stopping = make(chan struct{})
	w.loopDone = make(chan struct{})
	w.cancelSends = cancel
	go w.loop(sendCtx, w.stopping, w.loopDone)
	return nil
}

// Stop stops claiming, puts back the rows held for a rate-limit slot and
// waits for the sends in flight to finish and be recorded. If ctx ends
// first, the sends in flight are cancelled and recorded as retries (the
// provider may have received them: at-least-once), and ctx's error is
// returned once they are.
func (w *Worker) Stop(ctx context.Context) error {
	w.mu.Lock()
	stopping, loopDone, cancel := w.stopping, w.loopDone, w.cancelSends
	if stopping == nil {
		w.mu.Unlock()
		return nil
	}
	select {
	case <-stopping:
	default:
		close(stopping)
	}
	w.mu.Unlock()
	done := make(chan struct{})
	go func() {
		<-loopDone
		w.held.Wait()
		close(done)
	}()
	select {
	case <-done:
		cancel()
		return nil
	case <-ctx.Done():
		cancel()
		<-done
		return ctx.Err()
	}
}

// loop claims due rows while there is capacity and hands each to a
// goroutine of its own.
func (w *Worker) loop(ctx context.Context, stopping, done chan struct{}) {
	defer close(done)
	var lastPurge time.Time
	for {
		select {
		case <-stopping:
			return
		default:
		}
		now := w.o.Clock.Now()
		free := min(cap(w.sem)-len(w.sem), claimBatch)
		full, failed := false, false
		if free > 0 {
			batch, err := w.o.Store.Claim(ctx, w.o.NodeID, now, w.o.Lease, free)
			if err != nil {
				w.o.Log.Warn("outbox claim failed", "err", err)
				failed = true
			}
			for _, it := range batch {
				w.sem <- struct{}{}
				w.held.Add(1)
				go w.process(ctx, stopping, it)
			}
			full = len(batch) == free
		}
		if w.o.Retention > 0 && now.Sub(lastPurge) >= purgeEvery {
			lastPurge = now
			w.purge(ctx, now)
		}
		if full && len(w.sem) < cap(w.sem) {
			continue // more may be due
		}
		wait := w.o.PollInterval
		if failed {
			wait = retryUnavailable
		} else if at := w.nextWake(now); !at.IsZero() {
			wait = max(0, min(wait, at.Sub(now)))
		}
		var freed chan struct{}
		if len(w.sem) == cap(w.sem) {
			freed = w.freed // at capacity: claim again as soon as a row is let go
		}
		t := time.NewTimer(wait)
		woken := false
		select {
		case <-stopping:
			t.Stop()
			return
		case <-w.wake:
			woken = true
		case <-freed:
		case <-t.C:
		}
		t.Stop()
		if woken && !w.gather(stopping) {
			return
		}
	}
}

// gatherDelay is how long the loop lets messages committed together with
// the one that woke it arrive before it claims: under load one claim then
// takes several rows instead of one each (a claim is the outbox's most
// expensive statement), at the price of a few milliseconds.
const gatherDelay = 5 * time.Millisecond

// gather waits gatherDelay; false when the worker is stopping.
func (w *Worker) gather(stopping chan struct{}) bool {
	t := time.NewTimer(gatherDelay)
	defer t.Stop()
	select {
	case <-stopping:
		return false
	case <-t.C:
		return true
	}
}

// wakeFor makes the loop look again at t, when a row this worker put back
// becomes due: a rate-limited row then goes out at its slot, not at the
// next poll.
func (w *Worker) wakeFor(t time.Time) {
	w.mu.Lock()
	if len(w.wakes) < maxWakes {
		heap.Push(&w.wakes, t)
	}
	w.mu.Unlock()
}

// nextWake drops the wake times that have come and returns the earliest
// one still ahead (zero: none).
func (w *Worker) nextWake(now time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.wakes) > 0 && !w.wakes[0].After(now) {
		heap.Pop(&w.wakes)
	}
	if len(w.wakes) == 0 {
		return time.Time{}
	}
	return w.wakes[0]
}

// maxWakes bounds the remembered wake times; rows beyond it are found by
// polling.
const maxWakes = 100_000

// wakeHeap is a min-heap of times (container/heap).
type wakeHeap []time.Time

func (h wakeHeap) Len() int           { return len(h) }
func (h wakeHeap) Less(i, j int) bool { return h[i].Before(h[j]) }
func (h wakeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }

// Push implements heap.Interface.
func (h *wakeHeap) Push(x any) { *h = append(*h, x.(time.Time)) }

// Pop implements heap.Interface.
func (h *wakeHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

func (w *Worker) purge(ctx context.Context, now time.Time) {
	before := now.Add(-w.o.Retention)
	for range 100 {
		n, err := w.o.Store.PurgeSent(ctx, before, 1000)
		if err != nil {
			w.o.Log.Warn("outbox purge failed", "err", err)
			return
		}
		if n < 1000 {
			return
		}
	}
}

// account returns an account, from the cache when fresh enough.
func (w *Worker) account(ctx context.Context, tenantID, id string) (channels.Account, error) {
	k := [2]string{tenantID, id}
	now := w.o.Clock.Now()
	if w.o.AccountCacheTTL > 0 {
		w.acctMu.Lock()
		c, ok := w.accts[k]
		w.acctMu.Unlock()
		if ok && now.Sub(c.at) < w.o.AccountCacheTTL && !now.Before(c.at) {
			return c.acct, nil
		}
	}
	a, err := w.o.Accounts.AccountGet(ctx, tenantID, id)
	if err != nil {
		return channels.Account{}, err
	}
	if w.o.AccountCacheTTL > 0 {
		w.acctMu.Lock()
		if len(w.accts) > 10_000 {
			clear(w.accts)
		}
		w.accts[k] = cachedAccount{acct: a, at: now}
		w.acctMu.Unlock()
	}
	return a, nil
}

// backoff is the full-jitter delay before retry number attempt (from 1):
// r (in [0, 1)) times min(cap, base·2^(attempt-1)).
func backoff(attempt int, base, cap time.Duration, r float64) time.Duration {
	ceiling := float64(base) * math.Pow(2, float64(max(attempt, 1)-1))
	if ceiling > float64(cap) || math.IsInf(ceiling, 0) {
		ceiling = float64(cap)
	}
	return time.Duration(r * ceiling)
}

// failure is a classified send error.
type failure struct {
	kind   failKind
	code   string
	reason string
	after  time.Duration // the provider's RetryAfter
}

type failKind int

const (
	failRetry failKind = iota
	failAuth
	failPermanent
	failWindow
)

// classify reads a Sender's error: *channels.SendError says what it is;
// a deadline is a timeout (retried); another error that says it is not
// retryable is permanent; anything else (network) is retried.
func classify(err error) failure {
	var se *channels.SendError
	if errors.As(err, &se) {
		f := failure{kind: failPermanent, code: se.Code, reason: se.Error(), after: se.RetryAfter}
		if f.code == "" {
			f.code = "send_error"
		}
		switch {
		case se.WindowClosed:
			f.kind = failWindow
		case se.Auth:
			f.kind = failAuth
		case se.Retry:
			f.kind = failRetry
		}
		return f
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return failure{kind: failRetry, code: "timeout", reason: err.Error()}
	}
	var r channels.Retryable
	if errors.As(err, &r) && !r.Retryable() {
		return failure{kind: failPermanent, code: "error", reason: err.Error()}
	}
	return failure{kind: failRetry, code: "error", reason: err.Error()}
}
