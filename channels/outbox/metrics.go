package outbox

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-acd/switchboard/internal/clock"
)

// Metrics are what a node's workers count, labelled by channel type so that
// an operator sees which provider is failing. The backlog gauges come from
// the database at scrape time (NewCollector), so every node reports the
// same truth. A nil *Metrics counts nothing.
type Metrics struct {
	sent     *prometheus.CounterVec
	retries  *prometheus.CounterVec
	dead     *prometheus.CounterVec
	deferred *prometheus.CounterVec
	twice    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// Dead-letter reasons, the "reason" label of switchboard_outbox_dead_total.
const (
	DeadPermanent    = "permanent"     // the provider refused the message for good
	DeadWindowClosed = "window_closed" // customer-service window closed, no fallback
	DeadExpired      = "expired"       // retries ran past the maximum age or attempts
	DeadFallback     = "fallback"      // given up in favour of an SMS fallback row
	DeadNoSender     = "no_sender"     // no Sender for the account's channel type
	DeadNoAccount    = "no_account"    // the account no longer exists
)

// NewMetrics creates the outbox metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_outbox_sent_total", Help: "Outbound messages the provider accepted, by channel.",
		}, []string{"channel"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_outbox_retries_total", Help: "Failed sends that will be tried again, by channel and provider error code.",
		}, []string{"channel", "code"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_outbox_dead_total", Help: "Outbound messages given up (dead letters, or replaced by an SMS fallback), by channel and reason.",
		}, []string{"channel", "reason"}),
		deferred: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_outbox_rate_deferred_total", Help: "Sends put back until the account's rate limit allows them, by channel.",
		}, []string{"channel"}),
		twice: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_outbox_sent_twice_total", Help: "Sends that succeeded for a row already recorded as sent (at-least-once duplicates), by channel.",
		}, []string{"channel"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "switchboard_outbox_send_duration_seconds", Help: "Time of one provider send call, by channel and result (ok, error).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 13),
		}, []string{"channel", "result"}),
	}
	for _, c := range []prometheus.Collector{m.sent, m.retries, m.dead, m.deferred, m.twice, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) observeSend(channel string, d time.Duration, ok bool) {
	if m == nil {
		return
	}
	result := "ok"
	if !ok {
		result = "error"
	}
	m.duration.WithLabelValues(channel, result).Observe(d.Seconds())
}

func (m *Metrics) incSent(channel string) {
	if m != nil {
		m.sent.WithLabelValues(channel).Inc()
	}
}

func (m *Metrics) incRetry(channel, code string) {
	if m != nil {
		m.retries.WithLabelValues(channel, clip(code, 32)).Inc()
	}
}

func (m *Metrics) incDead(channel, reason string) {
	if m != nil {
		m.dead.WithLabelValues(channel, reason).Inc()
	}
}

func (m *Metrics) incDeferred(channel string) {
	if m != nil {
		m.deferred.WithLabelValues(channel).Inc()
	}
}

func (m *Metrics) incTwice(channel string) {
	if m != nil {
		m.twice.WithLabelValues(channel).Inc()
	}
}

// collector reports the backlog per account from Store.Stats at scrape
// time.
type collector struct {
	store   *Store
	clock   clock.Clock
	log     *slog.Logger
	pending *prometheus.Desc
	oldest  *prometheus.Desc
	dead    *prometheus.Desc
}

// NewCollector returns a prometheus.Collector of the outbox backlog per
// account: live rows, the age of the oldest one, dead letters. Register it
// once per node.
func NewCollector(s *Store, c clock.Clock, log *slog.Logger) prometheus.Collector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &collector{store: s, clock: c, log: log,
		pending: prometheus.NewDesc("switchboard_outbox_pending", "Outbound messages waiting or being sent, by tenant and account.", []string{"tenant", "account"}, nil),
		oldest:  prometheus.NewDesc("switchboard_outbox_oldest_pending_age_seconds", "Age of the oldest waiting outbound message, by tenant and account.", []string{"tenant", "account"}, nil),
		dead:    prometheus.NewDesc("switchboard_outbox_dead", "Dead-letter outbound messages, by tenant and account.", []string{"tenant", "account"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.oldest
	ch <- c.dead
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	stats, err := c.store.Stats(ctx, c.clock.Now())
	if err != nil {
		c.log.Warn("outbox stats for metrics", "err", err)
		return
	}
	for _, s := range stats {
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(s.Pending), s.TenantID, s.AccountID)
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, s.OldestPending.Seconds(), s.TenantID, s.AccountID)
		ch <- prometheus.MustNewConstMetric(c.dead, prometheus.GaugeValue, float64(s.Dead), s.TenantID, s.AccountID)
	}
}
