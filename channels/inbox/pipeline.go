package inbox

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// PipelineOptions wire a Pipeline; zero values take the defaults.
type PipelineOptions struct {
	Store LogStore
	// Process takes one entry into its conversation. An error leaves the
	// entry in the log for another attempt after a backoff; a message that
	// can never be stored must be dropped by Process (returning nil).
	Process func(ctx context.Context, e Entry) error
	// Lanes process entries concurrently; one customer's entries always go
	// to the same lane, in order (default 4).
	Lanes int
	// MaxHeld bounds the entries a node holds in memory, waiting for their
	// lane; past it, accepted entries wait in the log for whichever node
	// has room (default 4,096).
	MaxHeld int
	// Lease is how long an entry held by a node is its own: when the node
	// dies, another takes the entry over once the lease ends (default one
	// minute). A node must get through MaxHeld entries within it.
	Lease time.Duration
	// Committers is the number of commits in flight at once (default 2);
	// every commit takes all the appends waiting for it, up to MaxBatch
	// entries (default 256).
	Committers int
	MaxBatch   int
	// SweepEvery is how often a node looks for entries nobody holds: left
	// in the log when its memory was full, or by a node that died (default
	// one second).
	SweepEvery time.Duration
	Clock      clock.Clock
	Log        *slog.Logger
}

func (o *PipelineOptions) defaults() {
	if o.Lanes <= 0 {
		o.Lanes = 4
	}
	if o.MaxHeld <= 0 {
		o.MaxHeld = 4096
	}
	if o.Lease <= 0 {
		o.Lease = time.Minute
	}
	if o.Committers <= 0 {
		o.Committers = 2
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = time.Second
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
}

// Timeouts of the pipeline's own database work.
const (
	commitTimeout  = 10 * time.Second
	processTimeout = 30 * time.Second
	doneDelay      = 5 * time.Millisecond // gathers deletions into one statement
	doneBatch      = 500
	sweepBatch     = 512
)

// Pipeline is a node's side of the inbound log (DESIGN D8). Webhook
// handlers Append what a provider sent and answer once it is committed:
// concurrent appends share one commit (group commit), so the answer costs
// a share of one INSERT rather than the whole conversation's work. The
// node then takes its own entries into their conversations from memory,
// one lane per customer hash so a customer's messages keep their order,
// and deletes each entry once its message is stored. Entries nobody holds
// — left in the log while the node's memory was full, released after a
// failure, or held by a node that died — are claimed by the sweeper of
// any node once due. Taking an entry twice (a lease that ran out under a
// slow node) stores its message once: the messages table is idempotent on
// the provider's id.
type Pipeline struct {
	o PipelineOptions

	commits chan *appendReq
	lanes   []*lane

	held atomic.Int64 // entries in memory or reserved for an append

	// spill: memory was full, new entries wait in the log until a sweep
	// finds none due. spilling counts spilled appends not yet committed,
	// spilled those committed: a sweep ends the spill only when no spilled
	// append was in flight or committed while it looked, so no entry of a
	// customer is left behind in the log while a later one goes to memory.
	spillMu  sync.Mutex
	spill    bool
	spilling int
	spilled  int64

	mu       sync.RWMutex // closed, started
	closed   bool
	inflight sync.WaitGroup // Append calls

	doneMu   sync.Mutex
	done     []int64
	doneWake chan struct{}

	sweepWake chan struct{}

	quitCommit chan struct{}
	quitLanes  chan struct{}
	quitDone   chan struct{}
	commitWG   sync.WaitGroup
	laneWG     sync.WaitGroup
	doneWG     sync.WaitGroup
	started    bool
}

type lane struct {
	mu   sync.Mutex
	q    []Entry
	wake chan struct{}
}

type appendReq struct {
	entries []Entry
	done    chan appendResult
}

type appendResult struct {
	seqs []int64
	err  error
}

// NewPipeline returns a Pipeline; Start runs it.
func NewPipeline(o PipelineOptions) *Pipeline {
	o.defaults()
	p := &Pipeline{
		o:          o,
		commits:    make(chan *appendReq, 4*o.MaxBatch),
		doneWake:   make(chan struct{}, 1),
		sweepWake:  make(chan struct{}, 1),
		quitCommit: make(chan struct{}),
		quitLanes:  make(chan struct{}),
		quitDone:   make(chan struct{}),
	}
	p.lanes = make([]*lane, o.Lanes)
	for i := range p.lanes {
		p.lanes[i] = &lane{wake: make(chan struct{}, 1)}
	}
	return p
}

// Start runs the committers, the lanes, the deleter and the sweeper.
func (p *Pipeline) Start() {
	p.mu.Lock()
	p.started = true
	p.mu.Unlock()
	for range p.o.Committers {
		p.commitWG.Go(p.commitLoop)
	}
	for _, l := range p.lanes {
		p.laneWG.Go(func() { p.laneLoop(l) })
	}
	p.laneWG.Go(p.sweepLoop)
	p.doneWG.Go(p.doneLoop)
}

// Stop refuses new appends, lets the lanes finish the entry each is on,
// hands the entries still held back to the log (due at once, for another
// node) and records the deletions pending.
func (p *Pipeline) Stop(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	started := p.started
	p.mu.Unlock()
	if !started {
		return nil
	}
	p.inflight.Wait()
	close(p.quitCommit)
	p.commitWG.Wait()
	close(p.quitLanes)
	p.laneWG.Wait()
	var back []int64
	for _, l := range p.lanes {
		l.mu.Lock()
		for _, e := range l.q {
			back = append(back, e.Seq)
		}
		l.q = nil
		l.mu.Unlock()
	}
	close(p.quitDone)
	p.doneWG.Wait()
	if len(back) == 0 {
		return nil
	}
	if err := p.o.Store.InboundRelease(ctx, back, p.o.Clock.Now(), ""); err != nil {
		return errs.Wrap("inbox.Pipeline.Stop", err)
	}
	return nil
}

// Held is the number of entries the node holds in memory (metrics, tests).
func (p *Pipeline) Held() int64 { return p.held.Load() }

// Append commits entries to the log, sharing the commit with concurrent
// calls, and reports which were new: false marks a provider's retry of a
// message still in the log. Once it returns without error the messages
// are durable and the provider may be answered; the node then takes the
// new ones into their conversations itself, or, when its memory is full,
// leaves them due in the log for whichever node has room. acct is the
// account the entries came for.
func (p *Pipeline) Append(ctx context.Context, acct channels.Account, entries []Entry) ([]bool, error) {
	const op = "inbox.Pipeline.Append"
	p.mu.RLock()
	if p.closed || !p.started {
		p.mu.RUnlock()
		return nil, errs.E(op, errs.Unavailable, "the node is not taking messages")
	}
	p.inflight.Add(1)
	p.mu.RUnlock()
	defer p.inflight.Done()

	now := p.o.Clock.Now()
	mine := p.reserve(len(entries))
	if !mine {
		defer p.spillDone()
	}
	for i := range entries {
		e := &entries[i]
		e.ReceivedAt, e.NextAt = now, now
		if mine {
			e.NextAt = now.Add(p.o.Lease)
		}
		if e.DedupeKey == "" {
			e.DedupeKey = dedupeKey(e.Inbound)
		}
	}
	req := &appendReq{entries: entries, done: make(chan appendResult, 1)}
	select {
	case p.commits <- req:
	case <-ctx.Done():
		if mine {
			p.unhold(len(entries))
		}
		return nil, errs.E(op, errs.Unavailable, "inbound log: %v", ctx.Err())
	}
	// The committer always answers (its commit has a timeout of its own):
	// not waiting would leave the reservation and the entries unaccounted.
	res := <-req.done
	if res.err != nil {
		if mine {
			p.unhold(len(entries))
		}
		return nil, errs.E(op, errs.Unavailable, "inbound log: %v", res.err)
	}
	fresh := make([]bool, len(entries))
	a := acct
	for i, seq := range res.seqs {
		if seq == 0 {
			if mine {
				p.unhold(1)
			}
			continue
		}
		fresh[i] = true
		entries[i].Seq, entries[i].acct = seq, &a
		if mine {
			p.offer(entries[i])
		}
	}
	return fresh, nil
}

// reserve holds room for n entries in memory, or reports that there is
// none; then the node spills: appends leave their entries due in the log
// until the sweeper has emptied it, so a customer's later message does not
// overtake one still waiting there.
func (p *Pipeline) reserve(n int) bool {
	p.spillMu.Lock()
	defer p.spillMu.Unlock()
	if !p.spill && p.held.Add(int64(n)) <= int64(p.o.MaxHeld) {
		return true
	}
	if !p.spill {
		p.held.Add(-int64(n))
		p.spill = true
		p.wakeSweeper()
	}
	p.spilling++
	return false
}

// spillDone records that a spilled append finished (committed or not).
func (p *Pipeline) spillDone() {
	p.spillMu.Lock()
	p.spilling--
	p.spilled++
	last := p.spilling == 0
	p.spillMu.Unlock()
	if last {
		p.wakeSweeper() // a sweep that had to keep the spill may end it now
	}
}

// isSpilling reports whether the node spills.
func (p *Pipeline) isSpilling() bool {
	p.spillMu.Lock()
	defer p.spillMu.Unlock()
	return p.spill
}

// unhold gives back room for n entries, waking the sweeper when the node
// spilled and half its room is free again.
func (p *Pipeline) unhold(n int) {
	if p.held.Add(-int64(n)) <= int64(p.o.MaxHeld/2) && p.isSpilling() {
		p.wakeSweeper()
	}
}

func (p *Pipeline) wakeSweeper() {
	select {
	case p.sweepWake <- struct{}{}:
	default:
	}
}

// commitLoop writes waiting appends, all that are queued (up to MaxBatch
// entries) in one transaction.
func (p *Pipeline) commitLoop() {
	for {
		var first *appendReq
		select {
		case first = <-p.commits:
		case <-p.quitCommit:
			return
		}
		batch, n := []*appendReq{first}, len(first.entries)
	gather:
		for n < p.o.MaxBatch {
			select {
			case r := <-p.commits:
				batch, n = append(batch, r), n+len(r.entries)
			default:
				break gather
			}
		}
		all := first.entries
		if len(batch) > 1 {
			all = make([]Entry, 0, n)
			for _, r := range batch {
				all = append(all, r.entries...)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
		seqs, err := p.o.Store.InboundAppend(ctx, all)
		cancel()
		if err == nil && len(seqs) != len(all) {
			err = errs.E("inbox.Pipeline", errs.Internal, "inbound log returned %d numbers for %d entries", len(seqs), len(all))
		}
		off := 0
		for _, r := range batch {
			k := len(r.entries)
			if err != nil {
				r.done <- appendResult{err: err}
			} else {
				r.done <- appendResult{seqs: seqs[off : off+k]}
			}
			off += k
		}
	}
}

// offer queues a held entry on its customer's lane.
func (p *Pipeline) offer(e Entry) {
	l := p.lanes[laneOf(e, len(p.lanes))]
	l.mu.Lock()
	l.q = append(l.q, e)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// laneLoop processes a lane's entries one at a time, until Stop.
func (p *Pipeline) laneLoop(l *lane) {
	for {
		select {
		case <-p.quitLanes:
			return
		default:
		}
		l.mu.Lock()
		if len(l.q) == 0 {
			l.mu.Unlock()
			select {
			case <-l.wake:
			case <-p.quitLanes:
				return
			}
			continue
		}
		e := l.q[0]
		l.q[0] = Entry{}
		l.q = l.q[1:]
		l.mu.Unlock()
		p.process(e)
	}
}

// process takes one entry into its conversation and settles it in the
// log: deleted once stored, or due again after a backoff.
func (p *Pipeline) process(e Entry) {
	ctx, cancel := context.WithTimeout(context.Background(), processTimeout)
	defer cancel()
	err := p.o.Process(ctx, e)
	if err == nil {
		p.markDone(e.Seq)
		p.unhold(1)
		return
	}
	attempts := max(e.Attempts, 1)
	at := p.o.Clock.Now().Add(retryDelay(attempts))
	p.o.Log.Warn("inbound message not stored; retrying later", "account", e.AccountID,
		"channel_msg_id", e.Inbound.ChannelMsgID, "attempts", attempts, "retry_at", at, "err", err)
	// A context of its own: Process may have used all of its time.
	rctx, rcancel := context.WithTimeout(context.Background(), commitTimeout)
	defer rcancel()
	if rerr := p.o.Store.InboundRelease(rctx, []int64{e.Seq}, at, err.Error()); rerr != nil {
		// The lease still ends: the entry is taken again then.
		p.o.Log.Error("inbound log: release", "seq", e.Seq, "err", rerr)
	}
	p.unhold(1)
}

// markDone queues an entry's deletion: deletions are gathered into one
// statement. One lost (a crash before it ran) only means the entry is
// taken again after its lease, and its message found stored already.
func (p *Pipeline) markDone(seq int64) {
	p.doneMu.Lock()
	p.done = append(p.done, seq)
	p.doneMu.Unlock()
	select {
	case p.doneWake <- struct{}{}:
	default:
	}
}

func (p *Pipeline) doneLoop() {
	for {
		select {
		case <-p.doneWake:
		case <-p.quitDone:
			p.flushDone()
			return
		}
		time.Sleep(doneDelay)
		p.flushDone()
	}
}

func (p *Pipeline) flushDone() {
	p.doneMu.Lock()
	seqs := p.done
	p.done = nil
	p.doneMu.Unlock()
	for len(seqs) > 0 {
		n := min(len(seqs), doneBatch)
		ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
		err := p.o.Store.InboundDone(ctx, seqs[:n])
		cancel()
		if err != nil {
			p.o.Log.Warn("inbound log: delete processed entries; they are taken again after their lease", "n", n, "err", err)
		}
		seqs = seqs[n:]
	}
}

// sweepLoop claims due entries from the log when the node has room: at
// every tick, and at once while the node spills and its lanes free room.
func (p *Pipeline) sweepLoop() {
	t := time.NewTicker(p.o.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-p.sweepWake:
		case <-p.quitLanes:
			return
		}
		for p.sweep() {
		}
	}
}

// sweep claims one batch and reports whether another may be waiting.
func (p *Pipeline) sweep() bool {
	room := int64(p.o.MaxHeld) - p.held.Load()
	if room < int64(p.o.MaxHeld/4) && p.held.Load() > 0 {
		return false // the lanes wake the sweeper when they have made room
	}
	limit := int(min(max(room, 1), sweepBatch))
	p.held.Add(int64(limit))
	p.spillMu.Lock()
	inflight, committed := p.spilling, p.spilled
	p.spillMu.Unlock()
	now := p.o.Clock.Now()
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	es, err := p.o.Store.InboundClaim(ctx, now, now.Add(p.o.Lease), limit)
	cancel()
	p.held.Add(-int64(limit - len(es)))
	if err != nil {
		p.o.Log.Warn("inbound log: claim", "err", err)
		return false
	}
	for _, e := range es {
		p.offer(e)
	}
	if len(es) < limit {
		// Nothing due is left: new entries may go to memory again, unless
		// a spilled append may have committed after the claim looked.
		p.spillMu.Lock()
		if inflight == 0 && p.spilling == 0 && p.spilled == committed {
			p.spill = false
		}
		p.spillMu.Unlock()
		return false
	}
	return true
}
