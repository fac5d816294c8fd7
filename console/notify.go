package console

import (
	"context"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/session"
)

// Notifier pushes session changes to the agents and supervisors concerned,
// on whatever node their console is connected.
type Notifier struct{ s *Server }

var _ session.Notifier = Notifier{}

// Notifier returns the agent-side notifier of the server.
func (s *Server) Notifier() Notifier { return Notifier{s} }

func (s *Server) notifier() Notifier { return Notifier{s} }

func (n Notifier) publish(ctx context.Context, tenantID, topic string, payload []byte) {
	if err := n.s.d.Bus.Publish(ctx, tenantID, topic, payload); err != nil {
		n.s.d.Log.Warn("publish to console", "topic", topic, "err", err)
	}
}

// SessionChanged implements session.Notifier.
func (n Notifier) SessionChanged(ctx context.Context, s session.Session, ev session.Event, prevAgentID string) {
	b := event("session.updated", map[string]any{"session": s, "event": ev})
	if s.AgentID != "" {
		n.publish(ctx, s.TenantID, agentTopic(s.AgentID), b)
	}
	if prevAgentID != "" && prevAgentID != s.AgentID {
		reason := "transferred"
		if s.State == session.StateQueued && ev == session.EvRequeued {
			reason = "requeued"
		}
		n.publish(ctx, s.TenantID, agentTopic(prevAgentID), event("session.removed", map[string]any{"session_id": s.ID, "reason": reason}))
	}
	n.publish(ctx, s.TenantID, supervisorsTopic, b)
}

// SessionAssigned implements session.Notifier.
func (n Notifier) SessionAssigned(ctx context.Context, s session.Session, transcript []session.Message) {
	data := map[string]any{"session": s, "messages": transcript}
	if c, err := n.s.d.Engine.Store().ContactGet(ctx, s.TenantID, s.ContactID); err == nil {
		data["contact"] = c
	}
	n.publish(ctx, s.TenantID, agentTopic(s.AgentID), event("session.assigned", data))
}

// MessageCreated implements session.Notifier.
func (n Notifier) MessageCreated(ctx context.Context, s session.Session, m session.Message) {
	if s.AgentID != "" {
		n.publish(ctx, s.TenantID, agentTopic(s.AgentID), event("message.created", map[string]any{"message": m}))
		n.suggest(s, m)
	}
}

// MessageUpdated implements session.Notifier.
func (n Notifier) MessageUpdated(ctx context.Context, s session.Session, m session.Message) {
	if s.AgentID != "" {
		n.publish(ctx, s.TenantID, agentTopic(s.AgentID), event("message.updated", map[string]any{"message": m}))
	}
}

// Typing implements session.Notifier.
func (n Notifier) Typing(ctx context.Context, s session.Session, from session.SenderKind, on bool) {
	if from == session.SenderContact && s.AgentID != "" {
		n.publish(ctx, s.TenantID, agentTopic(s.AgentID), event("typing", map[string]any{"session_id": s.ID, "on": on}))
	}
}

// Read implements session.Notifier.
func (n Notifier) Read(ctx context.Context, s session.Session, by session.SenderKind, seq int64) {
	if by == session.SenderContact && s.AgentID != "" {
		n.publish(ctx, s.TenantID, agentTopic(s.AgentID), event("read", map[string]any{"session_id": s.ID, "seq": seq}))
	}
}

func (n Notifier) agentUpdated(ctx context.Context, a agents.Agent) {
	b := event("agent.updated", map[string]any{"agent": a})
	n.publish(ctx, a.TenantID, agentTopic(a.ID), b)
	n.publish(ctx, a.TenantID, supervisorsTopic, b)
}
