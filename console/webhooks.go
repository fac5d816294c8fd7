package console

import (
	"context"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard-acd/switchboard/channels"
)

// Webhooks takes a provider's webhook call for the account with public key
// key and answers once what it carried is stored (channels/inbox).
type Webhooks interface {
	Handle(ctx context.Context, key string, req channels.WebhookRequest) (channels.WebhookReply, error)
}

// webhook adapts a Fiber request to the framework-free WebhookRequest. The
// body is copied: Fiber reuses its buffers after the handler returns, and
// adapters may keep slices of it (the inbound log holds messages after
// the answer).
func (s *Server) webhook(c *fiber.Ctx) error {
	req := channels.WebhookRequest{
		Method: c.Method(),
		URL:    s.requestURL(c),
		Query:  map[string][]string{},
		Header: http.Header{},
		Body:   append([]byte(nil), c.Body()...),
	}
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		req.Query.Add(string(k), string(v))
	})
	c.Context().Request.Header.VisitAll(func(k, v []byte) {
		req.Header.Add(string(k), string(v))
	})
	// The key is copied too: Fiber's parameter strings point into buffers
	// it reuses, and the ingest keeps keys (its account cache).
	reply, err := s.d.Webhooks.Handle(c.UserContext(), strings.Clone(c.Params("key")), req)
	if err != nil {
		return err
	}
	status := reply.Status
	if status == 0 {
		status = fiber.StatusOK
	}
	if reply.ContentType != "" {
		c.Set(fiber.HeaderContentType, reply.ContentType)
	}
	return c.Status(status).Send(reply.Body)
}

// requestURL is the absolute URL the provider called (Twilio signs it):
// PublicURL plus the path and query when configured (behind a proxy the
// request's own scheme and host are not what the provider used).
func (s *Server) requestURL(c *fiber.Ctx) string {
	if s.d.PublicURL != "" {
		return strings.TrimRight(s.d.PublicURL, "/") + c.OriginalURL()
	}
	return c.BaseURL() + c.OriginalURL()
}
