package console

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/session"
)

const principalKey = "principal"

func bearer(c *fiber.Ctx) string {
	h := c.Get(fiber.HeaderAuthorization)
	if t, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(t)
	}
	return ""
}

// authenticate requires an agent token (Authorization: Bearer).
func (s *Server) authenticate(c *fiber.Ctx) error {
	tok := bearer(c)
	if tok == "" {
		return errs.E("authenticate", errs.Unauthorized, "missing bearer token")
	}
	p, err := s.d.Agents.Authenticate(c.UserContext(), tok)
	if err != nil {
		return err
	}
	c.Locals(principalKey, p)
	return c.Next()
}

func principal(c *fiber.Ctx) agents.Principal {
	p, _ := c.Locals(principalKey).(agents.Principal)
	return p
}

// role requires at least min.
func (s *Server) role(min agents.Role) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if !principal(c).Can(min) {
			return errs.E("authorize", errs.Forbidden, "requires role %s or higher", min)
		}
		return c.Next()
	}
}

func actor(p agents.Principal) session.Actor {
	return session.Actor{AgentID: p.AgentID, Supervisor: p.Can(agents.RoleSupervisor)}
}

func (s *Server) login(c *fiber.Ctx) error {
	var in struct {
		Tenant   string `json:"tenant"`
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	if in.Username == "" || in.Password == "" {
		return errs.E("login", errs.Invalid, "username and password are required")
	}
	tok, exp, a, err := s.d.Agents.Login(c.UserContext(), in.Tenant, in.Username, in.Password)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"token": tok, "expires_at": exp, "agent": a})
}

func (s *Server) logout(c *fiber.Ctx) error {
	p := principal(c)
	ctx := c.UserContext()
	if err := s.setState(ctx, p.TenantID, p.AgentID, agents.StateOffline, "", false); err != nil {
		return err
	}
	if err := s.d.Agents.Logout(ctx, bearer(c)); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
