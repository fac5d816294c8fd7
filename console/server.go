// Package console is the HTTP face of Switchboard for people and
// integrations: the REST API under /api/v1 (docs/openapi.yaml), the agent
// and supervisor WebSocket (docs/console-protocol.md), the web-chat
// endpoints for end users (docs/webchat-protocol.md), the embedded web UI,
// health and metrics. Handlers translate HTTP to calls on the domain
// services and errs codes back to one JSON error shape; they hold no
// business rules of their own.
package console

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/webchat"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/realtime"
	"github.com/switchboard-acd/switchboard/kb"
	"github.com/switchboard-acd/switchboard/session"
)

// Deps are the services the console serves.
type Deps struct {
	Agents     *agents.Service
	AgentStore agents.Store
	Accounts   channels.AccountStore
	Engine     *session.Engine
	Queue      acd.Queue
	Bus        *realtime.Bus
	WebChat    *webchat.Service
	Metrics    *Metrics
	Log        *slog.Logger
	// Ready reports whether the node's dependencies answer (/readyz).
	Ready func(ctx context.Context) error
	// MaxBodyBytes caps request bodies (413 beyond).
	MaxBodyBytes int
	// DrainPeriod spreads the closing of WebSockets at shutdown.
	DrainPeriod time.Duration
	// AgentGrace is how long an agent's console may stay disconnected from
	// every node before they go offline and their sessions are requeued;
	// 0 never does.
	AgentGrace time.Duration
	// OnGroupChanged, if set, is told after a group's settings changed.
	OnGroupChanged func(ctx context.Context, tenantID, groupID string) error
	// Assist, if set, searches the knowledge base for agents: the search
	// box and the suggestions pushed after each customer message.
	Assist Assist
	// KB, if set, serves the knowledge-base editing API under /kb (kb.go).
	KB *kb.Service
	// ChannelAccounts, if set, serves the channel-account administration
	// API under /channel-accounts (channels.go).
	ChannelAccounts *channels.AccountService
	// Webhooks, if set, takes provider webhooks at /webhooks/:key
	// (webhooks.go).
	Webhooks Webhooks
	// PublicURL is the address providers and people reach this cluster at
	// (webhook URLs, signatures over URLs); empty: the request's own.
	PublicURL string
}

// Server holds the Fiber app.
type Server struct {
	d   Deps
	app *fiber.App
	// base lives as long as the server: the context of WebSocket sessions.
	base       context.Context
	cancelBase context.CancelFunc
	live       liveConns
	draining   atomic.Bool
	// assistSlots bounds the agent-assist searches running at once.
	assistSlots chan struct{}
}

// New builds the HTTP server with every route.
func New(d Deps) *Server {
	s := &Server{d: d, assistSlots: make(chan struct{}, 8)}
	s.base, s.cancelBase = context.WithCancel(context.Background())
	s.app = fiber.New(fiber.Config{
		BodyLimit:             d.MaxBodyBytes,
		ErrorHandler:          s.errorHandler,
		DisableStartupMessage: true,
		ReadTimeout:           60 * time.Second,
		IdleTimeout:           120 * time.Second,
	})
	s.app.Use(s.observe)
	s.routes()
	return s
}

// App is the underlying Fiber app (for Listen and tests).
func (s *Server) App() *fiber.App { return s.app }

// Shutdown puts the node in lame-duck mode — /readyz answers 503 and new
// WebSockets are refused — closes the open WebSockets spread over
// DrainPeriod (clients reconnect to other nodes and resume), then stops the
// listener and waits for running requests. Fiber counts a hijacked
// connection as open until its handler ends, hence this order.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	err := s.live.drain(ctx, s.d.DrainPeriod)
	s.cancelBase()
	return errors.Join(err, s.app.ShutdownWithContext(ctx))
}

func (s *Server) routes() {
	a := s.app
	a.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	a.Get("/readyz", s.readyz)
	a.Get("/metrics", s.d.Metrics.Handler())

	v1 := a.Group("/api/v1")
	v1.Post("/auth/login", s.login)
	v1.Post("/webchat/:key/visitor", s.webchatVisitor)
	v1.Get("/webchat/messages", s.visitorAuth, s.webchatHistory)
	v1.Post("/webchat/messages", s.visitorAuth, s.webchatSend)
	v1.Post("/webchat/read", s.visitorAuth, s.webchatRead)
	a.Get("/webchat/ws", s.webchatUpgrade, s.webchatWS())
	v1.Get("/ws", s.agentUpgrade, s.agentWS())

	auth := v1.Group("", s.authenticate)
	auth.Post("/auth/logout", s.logout)
	auth.Get("/me", s.me)
	auth.Put("/me/state", s.setMyState)
	auth.Get("/me/sessions", s.mySessions)

	auth.Get("/sessions", s.role(agents.RoleSupervisor), s.listSessions)
	auth.Get("/sessions/:id", s.getSession)
	auth.Get("/sessions/:id/messages", s.sessionMessages)
	auth.Post("/sessions/:id/messages", s.reply)
	auth.Post("/sessions/:id/messages/:mid/pin", s.pin(true))
	auth.Delete("/sessions/:id/messages/:mid/pin", s.pin(false))
	auth.Get("/sessions/:id/notes", s.listNotes)
	auth.Post("/sessions/:id/notes", s.addNote)
	auth.Get("/sessions/:id/events", s.sessionEvents)
	auth.Post("/sessions/:id/transfer", s.transfer)
	auth.Post("/sessions/:id/close", s.closeSession)
	auth.Post("/sessions/:id/accept", s.acceptOffer)
	auth.Post("/sessions/:id/decline", s.declineOffer)
	auth.Post("/sessions/:id/wrapup", s.wrapup)

	auth.Get("/agents", s.role(agents.RoleSupervisor), s.listAgents)
	auth.Post("/agents", s.role(agents.RoleAdmin), s.createAgent)
	auth.Get("/agents/:id", s.role(agents.RoleSupervisor), s.getAgent)
	auth.Patch("/agents/:id", s.role(agents.RoleAdmin), s.updateAgent)
	auth.Put("/agents/:id/state", s.role(agents.RoleSupervisor), s.setAgentState)

	auth.Get("/groups", s.listGroups)
	auth.Post("/groups", s.role(agents.RoleAdmin), s.createGroup)
	auth.Patch("/groups/:id", s.role(agents.RoleAdmin), s.updateGroup)
	auth.Delete("/groups/:id", s.role(agents.RoleAdmin), s.deleteGroup)

	auth.Get("/reason-tree", s.reasonTree)
	auth.Put("/reason-tree", s.role(agents.RoleAdmin), s.saveReasonTree)
	auth.Get("/reason-tree/versions", s.role(agents.RoleAdmin), s.reasonTreeVersions)

	s.channelAccountRoutes(auth)
	auth.Get("/supervisor/overview", s.role(agents.RoleSupervisor), s.overview)
	if s.d.Assist != nil {
		auth.Get("/kb/search", s.kbSearch)
	}
	s.kbRoutes(auth)
	s.contactRoutes(auth)

	if s.d.Webhooks != nil {
		a.Get("/webhooks/:key", s.webhook)
		a.Post("/webhooks/:key", s.webhook)
	}

	s.ui()
	a.Use(func(c *fiber.Ctx) error {
		return errs.E("route", errs.NotFound, "no route %s %s", c.Method(), c.Path())
	})
}

func (s *Server) readyz(c *fiber.Ctx) error {
	if s.draining.Load() {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "draining"})
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	if err := s.d.Ready(ctx); err != nil {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable", "error": err.Error()})
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

// errorBody is the one JSON error shape.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    errs.Code      `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

var statusOf = map[errs.Code]int{
	errs.Invalid:      fiber.StatusBadRequest,
	errs.Unauthorized: fiber.StatusUnauthorized,
	errs.Forbidden:    fiber.StatusForbidden,
	errs.NotFound:     fiber.StatusNotFound,
	errs.Conflict:     fiber.StatusConflict,
	errs.Duplicate:    fiber.StatusConflict,
	errs.TooLarge:     fiber.StatusRequestEntityTooLarge,
	errs.RateLimited:  fiber.StatusTooManyRequests,
	errs.Unavailable:  fiber.StatusServiceUnavailable,
	errs.Internal:     fiber.StatusInternalServerError,
}

func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	var fe *fiber.Error
	if errors.As(err, &fe) {
		code := errs.Internal
		switch {
		case fe.Code == fiber.StatusRequestEntityTooLarge:
			code = errs.TooLarge
		case fe.Code == fiber.StatusNotFound:
			code = errs.NotFound
		case fe.Code == fiber.StatusMethodNotAllowed, fe.Code < 500:
			code = errs.Invalid
		}
		err = &errs.Error{Code: code, Msg: fe.Message}
	}
	code := errs.CodeOf(err)
	status, ok := statusOf[code]
	if !ok {
		status = fiber.StatusInternalServerError
	}
	if status >= 500 {
		s.d.Log.Error("request failed", "method", c.Method(), "path", c.Path(), "err", err)
	}
	return c.Status(status).JSON(errorBody{Error: errorDetail{Code: code, Message: errs.MessageOf(err), Details: errs.DetailsOf(err)}})
}

// bind decodes a JSON body into v, with a clear error for malformed input.
func bind(c *fiber.Ctx, v any) error {
	if len(c.Body()) == 0 {
		return errs.E("decode body", errs.Invalid, "request body must be a JSON object")
	}
	if err := json.Unmarshal(c.Body(), v); err != nil {
		return errs.E("decode body", errs.Invalid, "malformed JSON body: %v", err)
	}
	return nil
}

func queryInt(c *fiber.Ctx, name string, def, lo, hi int64) (int64, error) {
	v := c.Query(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, errs.E("query", errs.Invalid, "%s must be an integer in [%d, %d]", name, lo, hi)
	}
	return n, nil
}
