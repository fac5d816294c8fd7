package loadgen

import (
	"sync"
	"time"
)

// msg is everything the bench knows about one customer message. Timestamps
// come from time.Now in this process, so differences use the monotonic
// clock and are immune to wall-clock steps; the server's clock is never
// involved.
type msg struct {
	cust *customer
	// measured is set for messages sent inside the measured window; only
	// they feed counts and latency samples. Warm-up messages are tracked
	// all the same, to free window slots and to be answered.
	measured bool

	sentAt      time.Time
	acked       bool
	errored     bool // the server answered the send with an error frame
	agentSeen   int  // message.created frames seen by agents
	replySentAt time.Time
	replyPosted bool // the agent's reply POST succeeded
	replyFailed bool
	replySeen   int // distinct reply messages (by seq) the customer got
	timedOut    bool
	released    bool // the window slot is free again
}

// tracker correlates the three observers of a message (the customer's ack,
// the agent's message.created, the customer's copy of the reply) by the
// client message id, and collects the counts and latency samples. One
// mutex guards it all: the work per event is a map lookup and an append,
// far below the cost of the JSON decoding around it.
type tracker struct {
	reply bool

	mu                sync.Mutex
	winStart, winEnd  time.Time
	closed            bool
	msgs              map[string]*msg
	outstanding       int // messages whose window slot is not released
	ack, toAgent      []time.Duration
	toCustomer        []time.Duration
	handoff           []time.Duration
	c                 MessageCounts
	r                 ReplyCounts
	winAgent, winRepl int64 // first receipts inside the measured window
}

func newTracker(reply bool) *tracker {
	return &tracker{reply: reply, msgs: map[string]*msg{}}
}

// setWindow fixes the measured window before any message is sent.
func (t *tracker) setWindow(start, end time.Time) {
	t.mu.Lock()
	t.winStart, t.winEnd = start, end
	t.mu.Unlock()
}

func (t *tracker) inWindow(at time.Time) bool {
	return !at.Before(t.winStart) && at.Before(t.winEnd)
}

// release frees m's window slot once.
func (t *tracker) release(m *msg) {
	if m.released {
		return
	}
	m.released = true
	t.outstanding--
	select {
	case <-m.cust.slots:
	default:
	}
}

// sent registers a message just before it is written to the socket, so an
// ack or agent frame can never arrive before the bench knows the cid.
func (t *tracker) sent(cid string, c *customer, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	m := &msg{cust: c, sentAt: at, measured: t.inWindow(at)}
	t.msgs[cid] = m
	t.outstanding++
	if m.measured {
		t.c.Sent++
	}
}

// acked records the server's ack. A duplicate ack (after a resend on
// reconnect) is counted but adds no sample: its latency would be the
// reconnect's, not the server's.
func (t *tracker) acked(cid string, at time.Time, duplicate bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.msgs[cid]
	if t.closed || m == nil {
		return
	}
	if m.measured && duplicate {
		t.c.AckDuplicates++
	}
	if m.acked {
		return
	}
	m.acked = true
	if m.measured {
		t.c.Acked++
		t.ack = append(t.ack, at.Sub(m.sentAt))
	}
}

// failed records an error frame that refused the send.
func (t *tracker) failed(cid string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.msgs[cid]
	if t.closed || m == nil {
		return
	}
	if !m.errored && m.measured {
		t.c.Errors++
	}
	m.errored = true
	t.release(m)
}

// otherError counts an error frame that names no message.
func (t *tracker) otherError() {
	t.mu.Lock()
	t.c.OtherErrors++
	t.mu.Unlock()
}

// atAgent records that an agent's console received the message. It
// reports whether this is the first receipt and the agent should reply.
func (t *tracker) atAgent(cid string, at time.Time) (replyNow bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.msgs[cid]
	if t.closed || m == nil {
		return false
	}
	m.agentSeen++
	if m.agentSeen > 1 {
		if m.measured {
			t.c.Duplicates++
		}
		return false
	}
	if t.inWindow(at) {
		t.winAgent++
	}
	if m.measured {
		t.c.ReceivedByAgents++
		t.toAgent = append(t.toAgent, at.Sub(m.sentAt))
	}
	if !t.reply {
		t.release(m)
		return false
	}
	return true
}

// replySending stamps the start of the agent's reply POST: the
// agent→customer latency runs from here to the customer's message frame.
func (t *tracker) replySending(cid string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if m := t.msgs[cid]; m != nil && !t.closed {
		m.replySentAt = at
		if m.measured {
			t.r.Sent++
		}
	}
}

// replyDone records the outcome of the reply POST.
func (t *tracker) replyDone(cid string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.msgs[cid]
	if t.closed || m == nil {
		return
	}
	if err == nil {
		m.replyPosted = true
		return
	}
	m.replyFailed = true
	if m.measured {
		t.r.Failed++
	}
	t.release(m)
}

// atCustomer records the customer receiving the reply to cid as a new
// message (the caller has already dropped re-deliveries of a seq it had).
func (t *tracker) atCustomer(cid string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.msgs[cid]
	if t.closed || m == nil {
		return
	}
	m.replySeen++
	if m.replySeen > 1 {
		if m.measured {
			t.r.Duplicates++
		}
		return
	}
	if t.inWindow(at) {
		t.winRepl++
	}
	if m.measured {
		t.r.Received++
		if !m.replySentAt.IsZero() {
			t.toCustomer = append(t.toCustomer, at.Sub(m.replySentAt))
		}
	}
	t.release(m)
}

// expire frees the slot of a message that has not completed in time, so
// one lost message cannot stall its customer for the rest of the run. The
// message stays tracked: a late arrival still counts (and is not lost).
func (t *tracker) expire(cid string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.msgs[cid]
	if t.closed || m == nil || m.released {
		return
	}
	m.timedOut = true
	if m.measured {
		t.c.SlotTimeouts++
	}
	t.release(m)
}

// handoffDone records the time from a customer's hand-off message to the
// agent's session.assigned.
func (t *tracker) handoffDone(d time.Duration) {
	t.mu.Lock()
	t.handoff = append(t.handoff, d)
	t.mu.Unlock()
}

// pending is the number of messages not yet complete.
func (t *tracker) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.outstanding
}

// snapshot returns the live counts for progress lines.
func (t *tracker) snapshot() (MessageCounts, ReplyCounts) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.c, t.r
}

// finish stops recording and computes the losses: a measured message that
// was acked but never reached an agent is lost; so is a reply the server
// accepted that never reached the customer.
func (t *tracker) finish() (MessageCounts, ReplyCounts, [4][]time.Duration, int64, int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	c, r := t.c, t.r
	for _, m := range t.msgs {
		if !m.measured {
			continue
		}
		if m.acked && m.agentSeen == 0 {
			c.Lost++
		}
		if !m.acked && !m.errored {
			c.Unacked++
		}
		if t.reply && m.replyPosted && m.replySeen == 0 {
			r.Lost++
		}
	}
	return c, r, [4][]time.Duration{t.ack, t.toAgent, t.toCustomer, t.handoff}, t.winAgent, t.winRepl
}
