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
	agents      agents.Store
	sessions    session.Store
	queue       acd.Queue
	byState     *prometheus.Desc
	queueLen    *prometheus.Desc
	longestWait *prometheus.Desc
	online      *prometheus.Desc
	available   *prometheus.Desc
	serviceRate *prometheus.Desc
	agentsBy    *prometheus.Desc
}

func newStateCollector(a agents.Store, s session.Store, q acd.Queue) *stateCollector {
	return &stateCollector{agents: a, sessions: s, queue: q,
		byState:     prometheus.NewDesc("switchboard_sessions", "Sessions by tenant and state (closed excluded).", []string{"tenant", "state"}, nil),
		queueLen:    prometheus.NewDesc("switchboard_queue_length", "Waiting sessions by tenant and skill group.", []string{"tenant", "group"}, nil),
		longestWait: prometheus.NewDesc("switchboard_queue_longest_wait_seconds", "Wait of the session waiting longest, by tenant and skill group.", []string{"tenant", "group"}, nil),
		online:      prometheus.NewDesc("switchboard_group_agents_online", "Agents logged in with the group's skill (ready or not).", []string{"tenant", "group"}, nil),
		available:   prometheus.NewDesc("switchboard_group_agents_available", "Ready agents with spare capacity in the group, as routing sees them.", []string{"tenant", "group"}, nil),
		serviceRate: prometheus.NewDesc("switchboard_group_service_rate", "Assignments per second over the last minutes (drives the expected wait).", []string{"tenant", "group"}, nil),
		agentsBy:    prometheus.NewDesc("switchboard_agents", "Agents by tenant and presence state.", []string{"tenant", "state"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.byState
	ch <- c.queueLen
	ch <- c.longestWait
	ch <- c.online
	ch <- c.available
	ch <- c.serviceRate
	ch <- c.agentsBy
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
		ids := make([]string, len(gs))
		for i, g := range gs {
			ids[i] = g.ID
		}
		if stats, err := c.queue.Stats(ctx, t.ID, ids); err == nil {
			for i, st := range stats {
				name := gs[i].Name
				ch <- prometheus.MustNewConstMetric(c.queueLen, prometheus.GaugeValue, float64(st.Waiting), t.ID, name)
				ch <- prometheus.MustNewConstMetric(c.longestWait, prometheus.GaugeValue, st.LongestWait.Seconds(), t.ID, name)
				ch <- prometheus.MustNewConstMetric(c.online, prometheus.GaugeValue, float64(st.Online), t.ID, name)
				ch <- prometheus.MustNewConstMetric(c.available, prometheus.GaugeValue, float64(st.Available), t.ID, name)
				ch <- prometheus.MustNewConstMetric(c.serviceRate, prometheus.GaugeValue, st.ServiceRate, t.ID, name)
			}
		}
		if as, err := c.agents.AgentList(ctx, t.ID); err == nil {
			by := map[agents.State]int{}
			for _, a := range as {
				if !a.Disabled {
					by[a.State]++
				}
			}
			for _, st := range []agents.State{agents.StateReady, agents.StateNotReady, agents.StateOffline} {
				ch <- prometheus.MustNewConstMetric(c.agentsBy, prometheus.GaugeValue, float64(by[st]), t.ID, string(st))
			}
		}
	}
}
