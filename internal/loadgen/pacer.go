package loadgen

import (
	"context"
	"sync"
	"time"
)

// pacer spaces sends evenly to reach a total rate across all customers.
// Each caller reserves the next free send time; a reservation never lies in
// the past, so time lost while every customer was waiting for its window is
// not made up with a burst afterwards: the target is a ceiling, and the
// report shows the rate achieved next to it.
type pacer struct {
	interval time.Duration

	mu   sync.Mutex
	next time.Time
}

// newPacer returns a pacer for rate sends per second, or nil (no pacing)
// for a rate of zero or less.
func newPacer(rate float64) *pacer {
	if rate <= 0 {
		return nil
	}
	return &pacer{interval: time.Duration(float64(time.Second) / rate)}
}

// reserve returns the time the caller may send at.
func (p *pacer) reserve(now time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next.Before(now) {
		p.next = now
	}
	at := p.next
	p.next = p.next.Add(p.interval)
	return at
}

// wait blocks until the caller's turn; a nil pacer never waits.
func (p *pacer) wait(ctx context.Context) error {
	if p == nil {
		return ctx.Err()
	}
	d := time.Until(p.reserve(time.Now()))
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
