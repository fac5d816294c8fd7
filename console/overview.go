package console

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/session"
)

type groupStats struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	Waiting        int    `json:"waiting"`
	LongestWaitSec int    `json:"longest_wait_sec"`
	AgentsReady    int    `json:"agents_ready"`
	AgentsBusy     int    `json:"agents_busy"`
	ActiveSessions int    `json:"active_sessions"`
	// Live routing state (acd.GroupStats).
	AgentsOnline    int     `json:"agents_online"`
	AgentsAvailable int     `json:"agents_available"`
	AgentsNotReady  int     `json:"agents_not_ready"`
	OffersInFlight  int     `json:"offers_in_flight"`
	ServiceRate     float64 `json:"service_rate"`
	ExpectedWaitSec *int    `json:"expected_wait_sec"`
}

type agentStats struct {
	ID             string       `json:"id"`
	DisplayName    string       `json:"display_name"`
	Role           agents.Role  `json:"role"`
	State          agents.State `json:"state"`
	StateReason    string       `json:"state_reason,omitempty"`
	StateSince     time.Time    `json:"state_since"`
	ActiveSessions int          `json:"active_sessions"`
	MaxSessions    int          `json:"max_sessions"`
	// TimeInStateSec is how long the agent has been in State.
	TimeInStateSec int `json:"time_in_state_sec"`
}

// overview is the supervisor's live picture: queues, agents and sessions.
// botStats is bot containment over the last 24 hours: sessions whose bot
// phase ended resolved by the bot, handed off to a person, or abandoned by
// the customer. Containment is resolved / all three (null without any).
type botStats struct {
	Resolved    int      `json:"resolved"`
	HandedOff   int      `json:"handed_off"`
	Abandoned   int      `json:"abandoned"`
	Containment *float64 `json:"containment"`
}

func newBotStats(n map[session.BotOutcome]int) botStats {
	b := botStats{Resolved: n[session.BotResolved], HandedOff: n[session.BotHandedOff], Abandoned: n[session.BotAbandoned]}
	if all := b.Resolved + b.HandedOff + b.Abandoned; all > 0 {
		c := float64(b.Resolved) / float64(all)
		b.Containment = &c
	}
	return b
}

func (s *Server) overview(c *fiber.Ctx) error {
	ctx := c.UserContext()
	tenant := principal(c).TenantID
	gs, err := s.d.AgentStore.GroupList(ctx, tenant)
	if err != nil {
		return err
	}
	as, err := s.d.AgentStore.AgentList(ctx, tenant)
	if err != nil {
		return err
	}
	live, err := s.d.Engine.Store().SessionList(ctx, tenant, session.SessionFilter{
		States: []session.State{session.StateQueued, session.StateOffered, session.StateActive, session.StateWrapup}, Limit: 1000})
	if err != nil {
		return err
	}
	counts, err := s.d.Engine.Store().SessionCountByState(ctx, tenant)
	if err != nil {
		return err
	}
	now := time.Now()
	outcomes, err := s.d.Engine.Store().SessionCountByBotOutcome(ctx, tenant, now.Add(-24*time.Hour))
	if err != nil {
		return err
	}
	perAgent := map[string]int{}
	perGroupActive := map[string]int{}
	offers := map[string]int{}
	longest := map[string]time.Duration{}
	for _, se := range live {
		switch se.State {
		case session.StateActive, session.StateWrapup, session.StateOffered:
			perAgent[se.AgentID]++
			perGroupActive[se.GroupID]++
			if se.State == session.StateOffered {
				offers[se.GroupID]++
			}
		case session.StateQueued:
			if se.QueuedAt != nil {
				if w := now.Sub(*se.QueuedAt); w > longest[se.GroupID] {
					longest[se.GroupID] = w
				}
			}
		}
	}
	out := struct {
		Groups   []groupStats          `json:"groups"`
		Agents   []agentStats          `json:"agents"`
		Sessions map[session.State]int `json:"sessions"`
		Bot      botStats              `json:"bot"`
	}{Groups: []groupStats{}, Agents: []agentStats{}, Sessions: counts, Bot: newBotStats(outcomes)}
	ids := make([]string, len(gs))
	for i, g := range gs {
		ids[i] = g.ID
	}
	live2, err := s.d.Queue.Stats(ctx, tenant, ids)
	if err != nil {
		return err
	}
	for i, g := range gs {
		q := live2[i]
		st := groupStats{ID: g.ID, Name: g.Name, LongestWaitSec: int(max(longest[g.ID], q.LongestWait).Seconds()),
			ActiveSessions: perGroupActive[g.ID], Waiting: q.Waiting, AgentsOnline: q.Online,
			AgentsAvailable: q.Available, OffersInFlight: offers[g.ID], ServiceRate: q.ServiceRate}
		if d, ok := q.ExpectedWait(q.Waiting + 1); ok {
			sec := int(d.Seconds())
			st.ExpectedWaitSec = &sec
		}
		for _, a := range as {
			for _, sk := range a.Skills {
				if sk.GroupID != g.ID {
					continue
				}
				if a.State == agents.StateNotReady {
					st.AgentsNotReady++
				}
				if a.State == agents.StateReady {
					if perAgent[a.ID] >= a.MaxSessions {
						st.AgentsBusy++
					} else {
						st.AgentsReady++
					}
				}
			}
		}
		out.Groups = append(out.Groups, st)
	}
	for _, a := range as {
		out.Agents = append(out.Agents, agentStats{ID: a.ID, DisplayName: a.DisplayName, Role: a.Role, State: a.State,
			StateReason: a.StateReason, StateSince: a.StateSince, ActiveSessions: perAgent[a.ID], MaxSessions: a.MaxSessions,
			TimeInStateSec: int(max(now.Sub(a.StateSince), 0).Seconds())})
	}
	return c.JSON(out)
}
