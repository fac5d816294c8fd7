package console

import (
	"context"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/kb"
	"github.com/switchboard-acd/switchboard/session"
)

// Assist finds knowledge-base entries for a text (kb.Library implements
// it): the agent's search box and the suggestions pushed after each customer
// message.
type Assist interface {
	Search(ctx context.Context, tenantID, text string, limit int) ([]kb.Suggestion, error)
}

// assistLimit is how many suggestions a customer message pushes.
const assistLimit = 3

// kbSearch answers the agent's search box: GET /kb/search?q=&limit=.
func (s *Server) kbSearch(c *fiber.Ctx) error {
	const op = "kb search"
	q := c.Query("q")
	if q == "" {
		return errs.E(op, errs.Invalid, "q is required")
	}
	if len(q) > kb.MaxMessageLen {
		return errs.E(op, errs.TooLarge, "q is longer than %d bytes", kb.MaxMessageLen)
	}
	limit := 5
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 20 {
			return errs.E(op, errs.Invalid, "limit must be 1..20")
		}
		limit = n
	}
	p := principal(c)
	res, err := s.d.Assist.Search(c.UserContext(), p.TenantID, q, limit)
	if err != nil {
		return errs.E(op, errs.Unavailable, "knowledge base not ready: %v", err)
	}
	return c.JSON(fiber.Map{"query": q, "results": res})
}

// suggest searches the knowledge base for a customer's message in an
// agent's session and pushes the top entries to that agent's console
// ("kb.suggestions"). It runs off the message path, bounded: when too many
// searches run already this one is skipped (the agent can still search).
func (n Notifier) suggest(s session.Session, m session.Message) {
	if n.s.d.Assist == nil || m.SenderKind != session.SenderContact || s.AgentID == "" ||
		(s.State != session.StateActive && s.State != session.StateOffered) {
		return
	}
	text := m.Text()
	if text == "" {
		return
	}
	select {
	case n.s.assistSlots <- struct{}{}:
	default:
		n.s.d.Log.Debug("agent assist skipped: busy", "session", s.ID)
		return
	}
	go func() {
		defer func() { <-n.s.assistSlots }()
		ctx, cancel := context.WithTimeout(n.s.base, 5*time.Second)
		defer cancel()
		res, err := n.s.d.Assist.Search(ctx, s.TenantID, text, assistLimit)
		if err != nil {
			n.s.d.Log.Warn("agent assist", "session", s.ID, "err", err)
			return
		}
		n.publish(ctx, s.TenantID, agentTopic(s.AgentID), event("kb.suggestions", map[string]any{
			"session_id": s.ID, "message_id": m.ID, "query": text, "suggestions": res,
		}))
	}()
}
