package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/session"
)

// stateCollector reports sessions by state and queue lengths at scrape time
// from the database and Redis, so every node reports the same truth.
type stateCollector struct {
	agents   agents.Store
	sessions session.Store
	queue    acd.Queue
	byState  *prometheus.Desc
	queueLen *prometheus.Desc
}

func newStateCollector(a agents.Store, s session.Store, q acd.Queue) *stateCollector {
	return &stateCollector{agents: a, sessions: s, queue: q,
		byState:  prometheus.NewDesc("switchboard_sessions", "Sessions by tenant and state (closed excluded).", []string{"tenant", "state"}, nil),
		queueLen: prometheus.NewDesc("switchboard_queue_length", "Waiting sessions by tenant and skill group.", []string{"tenant", "group"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.byState
	ch <- c.queueLen
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ts, err := c.agents.TenantList(ctx)
	if err != nil {
		return
	}
	for _, t := range ts {
		counts, err := c.sessions.SessionCountByState(ctx, t.ID)
		if err == nil {
			for _, st := range []session.State{session.StateBot, session.StateQueued, session.StateOffered, session.StateActive, session.StateWrapup} {
				ch <- prometheus.MustNewConstMetric(c.byState, prometheus.GaugeValue, float64(counts[st]), t.ID, string(st))
			}
		}
		gs, err := c.agents.GroupList(ctx, t.ID)
		if err != nil {
			continue
		}
		for _, g := range gs {
			if n, err := c.queue.Length(ctx, t.ID, g.ID); err == nil {
				ch <- prometheus.MustNewConstMetric(c.queueLen, prometheus.GaugeValue, float64(n), t.ID, g.Name)
			}
		}
	}
}
