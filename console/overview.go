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
}

// overview is the supervisor's live picture: queues, agents and sessions.
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
	perAgent := map[string]int{}
	perGroupActive := map[string]int{}
	longest := map[string]time.Duration{}
	for _, se := range live {
		switch se.State {
		case session.StateActive, session.StateWrapup, session.StateOffered:
			perAgent[se.AgentID]++
			perGroupActive[se.GroupID]++
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
	}{Groups: []groupStats{}, Agents: []agentStats{}, Sessions: counts}
	for _, g := range gs {
		st := groupStats{ID: g.ID, Name: g.Name, LongestWaitSec: int(longest[g.ID].Seconds()), ActiveSessions: perGroupActive[g.ID]}
		if st.Waiting, err = s.d.Queue.Length(ctx, tenant, g.ID); err != nil {
			return err
		}
		for _, a := range as {
			for _, sk := range a.Skills {
				if sk.GroupID != g.ID {
					continue
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
			StateReason: a.StateReason, StateSince: a.StateSince, ActiveSessions: perAgent[a.ID], MaxSessions: a.MaxSessions})
	}
	return c.JSON(out)
}
