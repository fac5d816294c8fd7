package console

import (
	"github.com/gofiber/fiber/v2"

	"github.com/switchboard-acd/switchboard/channels/webchat"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/session"
)

func (s *Server) webchatVisitor(c *fiber.Ctx) error {
	var in webchat.VisitorRequest
	if len(c.Body()) > 0 {
		if err := bind(c, &in); err != nil {
			return err
		}
	}
	out, err := s.d.WebChat.IssueVisitor(c.UserContext(), c.Params("key"), in)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

// visitorAuth requires a visitor token (Authorization: Bearer).
func (s *Server) visitorAuth(c *fiber.Ctx) error {
	tok := bearer(c)
	if tok == "" {
		return errs.E("visitor", errs.Unauthorized, "missing visitor token")
	}
	cu, err := s.d.WebChat.Authenticate(c.UserContext(), tok)
	if err != nil {
		return err
	}
	c.Locals("customer", cu)
	return c.Next()
}

func customer(c *fiber.Ctx) session.Customer {
	cu, _ := c.Locals("customer").(session.Customer)
	return cu
}

func (s *Server) webchatSend(c *fiber.Ctx) error {
	var in struct {
		CID  string `json:"cid"`
		Text string `json:"text"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	if in.CID == "" {
		return errs.E("send", errs.Invalid, "cid is required")
	}
	ack, err := s.d.WebChat.Send(c.UserContext(), customer(c), in.CID, in.Text, nil)
	if err != nil {
		return err
	}
	status := fiber.StatusCreated
	if ack.Duplicate {
		status = fiber.StatusOK
	}
	return c.Status(status).JSON(ack)
}

func (s *Server) webchatHistory(c *fiber.Ctx) error {
	after, err := queryInt(c, "after", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	lim, err := queryInt(c, "limit", 100, 1, 500)
	if err != nil {
		return err
	}
	ms, last, err := s.d.WebChat.History(c.UserContext(), customer(c), after, int(lim))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"messages": ms, "last_seq": last})
}

func (s *Server) webchatRead(c *fiber.Ctx) error {
	var in struct {
		Seq int64 `json:"seq"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	if err := s.d.WebChat.MarkRead(c.UserContext(), customer(c), in.Seq); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
