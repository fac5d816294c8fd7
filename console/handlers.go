package console

import (
	"context"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/session"
)

func (s *Server) me(c *fiber.Ctx) error {
	p := principal(c)
	a, err := s.d.AgentStore.AgentGet(c.UserContext(), p.TenantID, p.AgentID)
	if err != nil {
		return err
	}
	return c.JSON(a)
}

type stateInput struct {
	State  agents.State `json:"state"`
	Reason string       `json:"reason"`
	// Drain, with not_ready, hands the agent's active sessions back to the
	// queue head instead of letting them finish.
	Drain bool `json:"drain"`
}

func (s *Server) setMyState(c *fiber.Ctx) error {
	p := principal(c)
	return s.changeState(c, p.TenantID, p.AgentID)
}

func (s *Server) setAgentState(c *fiber.Ctx) error {
	p := principal(c)
	if _, err := s.d.AgentStore.AgentGet(c.UserContext(), p.TenantID, c.Params("id")); err != nil {
		return err
	}
	return s.changeState(c, p.TenantID, c.Params("id"))
}

func (s *Server) changeState(c *fiber.Ctx, tenantID, agentID string) error {
	var in stateInput
	if err := bind(c, &in); err != nil {
		return err
	}
	if in.Drain && in.State != agents.StateNotReady {
		return errs.E("set agent state", errs.Invalid, "drain applies to not_ready only")
	}
	if err := s.setState(c.UserContext(), tenantID, agentID, in.State, in.Reason, in.Drain); err != nil {
		return err
	}
	a, err := s.d.AgentStore.AgentGet(c.UserContext(), tenantID, agentID)
	if err != nil {
		return err
	}
	return c.JSON(a)
}

// setState records an agent's state and moves routing with it: ready joins
// routing and takes waiting sessions, not ready stops new sessions, offline
// hands the agent's sessions back to the queue.
func (s *Server) setState(ctx context.Context, tenantID, agentID string, st agents.State, reason string, drain bool) error {
	const op = "set agent state"
	if !st.Valid() {
		return errs.E(op, errs.Invalid, "state must be ready, not_ready or offline")
	}
	if utf8.RuneCountInString(reason) > 100 {
		return errs.E(op, errs.Invalid, "reason is longer than 100 characters")
	}
	if st != agents.StateNotReady {
		reason = ""
	}
	if st != agents.StateOffline {
		a, err := s.d.AgentStore.AgentGet(ctx, tenantID, agentID)
		if err != nil {
			return err
		}
		if a.Disabled {
			return errs.E(op, errs.Conflict, "the agent is disabled").With("state", a.State)
		}
	}
	if err := s.d.AgentStore.AgentSetState(ctx, tenantID, agentID, st, strings.TrimSpace(reason), time.Now().UTC()); err != nil {
		return err
	}
	var err error
	switch st {
	case agents.StateReady:
		err = s.d.Engine.AgentReady(ctx, tenantID, agentID)
	case agents.StateNotReady:
		err = s.d.Engine.AgentNotReady(ctx, tenantID, agentID, drain)
	case agents.StateOffline:
		err = s.d.Engine.AgentGone(ctx, tenantID, agentID)
	}
	if a, gerr := s.d.AgentStore.AgentGet(ctx, tenantID, agentID); gerr == nil {
		s.notifier().agentUpdated(ctx, a)
	}
	return err
}

func (s *Server) mySessions(c *fiber.Ctx) error {
	p := principal(c)
	ss, err := s.d.Engine.Store().SessionList(c.UserContext(), p.TenantID, session.SessionFilter{
		AgentID: p.AgentID, States: []session.State{session.StateActive, session.StateWrapup, session.StateOffered}, Limit: 200})
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"sessions": s.withContacts(c.UserContext(), ss)})
}

// sessionView is a session with its contact, as the console shows it.
type sessionView struct {
	session.Session
	Contact *session.Contact `json:"contact,omitempty"`
	Window  *serviceWindow   `json:"window,omitempty"`
}

// serviceWindow is a channel's customer-service window for a session's
// contact (docs/channels.md).
type serviceWindow struct {
	Hours  int        `json:"hours"`
	Open   bool       `json:"open"`
	EndsAt *time.Time `json:"ends_at,omitempty"`
}

// window computes the customer-service window of a session on a provider
// channel from the contact's last message on the session's account; nil
// for channels without one.
func (s *Server) window(ctx context.Context, se session.Session) *serviceWindow {
	length := channels.Type(se.Channel).Window()
	if length <= 0 {
		return nil
	}
	w := &serviceWindow{Hours: int(length / time.Hour)}
	ids, err := s.d.Engine.Store().ContactIdentities(ctx, se.TenantID, se.ContactID)
	if err != nil {
		return w
	}
	var last *time.Time
	for _, id := range ids {
		if id.AccountID == se.AccountID && id.LastInboundAt != nil && (last == nil || id.LastInboundAt.After(*last)) {
			last = id.LastInboundAt
		}
	}
	if last != nil {
		end := last.Add(length).UTC()
		w.EndsAt, w.Open = &end, time.Now().Before(end)
	}
	return w
}

func (s *Server) withContacts(ctx context.Context, ss []session.Session) []sessionView {
	out := make([]sessionView, len(ss))
	cache := map[string]*session.Contact{}
	for i, se := range ss {
		out[i].Session = se
		ct, ok := cache[se.ContactID]
		if !ok {
			if got, err := s.d.Engine.Store().ContactGet(ctx, se.TenantID, se.ContactID); err == nil {
				ct = &got
			}
			cache[se.ContactID] = ct
		}
		out[i].Contact = ct
	}
	return out
}

func (s *Server) listSessions(c *fiber.Ctx) error {
	p := principal(c)
	f := session.SessionFilter{AgentID: c.Query("agent_id"), GroupID: c.Query("group_id")}
	if st := c.Query("state"); st != "" {
		for _, v := range strings.Split(st, ",") {
			if !session.State(v).Valid() {
				return errs.E("list sessions", errs.Invalid, "unknown state %q", v)
			}
			f.States = append(f.States, session.State(v))
		}
	}
	lim, err := queryInt(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	f.Limit = int(lim)
	ss, err := s.d.Engine.Store().SessionList(c.UserContext(), p.TenantID, f)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"sessions": s.withContacts(c.UserContext(), ss)})
}

// visibleSession loads a session the principal may see: their own, or any
// of the tenant's for supervisors.
func (s *Server) visibleSession(c *fiber.Ctx) (session.Session, error) {
	p := principal(c)
	se, err := s.d.Engine.Store().SessionGet(c.UserContext(), p.TenantID, c.Params("id"))
	if err != nil {
		return session.Session{}, err
	}
	if se.AgentID != p.AgentID && !p.Can(agents.RoleSupervisor) {
		return session.Session{}, errs.E("session", errs.Forbidden, "the session is not yours")
	}
	return se, nil
}

func (s *Server) getSession(c *fiber.Ctx) error {
	se, err := s.visibleSession(c)
	if err != nil {
		return err
	}
	v := s.withContacts(c.UserContext(), []session.Session{se})[0]
	v.Window = s.window(c.UserContext(), se)
	return c.JSON(v)
}

func (s *Server) sessionMessages(c *fiber.Ctx) error {
	se, err := s.visibleSession(c)
	if err != nil {
		return err
	}
	after, err := queryInt(c, "after", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	lim, err := queryInt(c, "limit", 200, 1, 1000)
	if err != nil {
		return err
	}
	ms, err := s.d.Engine.Store().MessageListAfter(c.UserContext(), se.TenantID, se.ConversationID, after, int(lim))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"messages": ms})
}

func (s *Server) reply(c *fiber.Ctx) error {
	p := principal(c)
	var in struct {
		Text        string            `json:"text"`
		Template    *session.Template `json:"template"`
		ClientMsgID string            `json:"client_msg_id"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	var (
		m   session.Message
		dup bool
		err error
	)
	switch {
	case in.Template != nil && in.Text != "":
		return errs.E("reply", errs.Invalid, "send either text or a template, not both")
	case in.Template != nil:
		m, dup, err = s.d.Engine.ReplyTemplate(c.UserContext(), p.TenantID, c.Params("id"), actor(p), *in.Template, in.ClientMsgID)
	default:
		m, dup, err = s.d.Engine.Reply(c.UserContext(), p.TenantID, c.Params("id"), actor(p), in.Text, in.ClientMsgID)
	}
	if err != nil {
		return err
	}
	status := fiber.StatusCreated
	if dup {
		status = fiber.StatusOK
	}
	return c.Status(status).JSON(m)
}

func (s *Server) pin(pinned bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		p := principal(c)
		m, err := s.d.Engine.Pin(c.UserContext(), p.TenantID, c.Params("id"), c.Params("mid"), actor(p), pinned)
		if err != nil {
			return err
		}
		return c.JSON(m)
	}
}

func (s *Server) listNotes(c *fiber.Ctx) error {
	se, err := s.visibleSession(c)
	if err != nil {
		return err
	}
	ns, err := s.d.Engine.Store().NoteList(c.UserContext(), se.TenantID, se.ID)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"notes": ns})
}

func (s *Server) addNote(c *fiber.Ctx) error {
	p := principal(c)
	var in struct {
		Body string `json:"body"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	n, err := s.d.Engine.AddNote(c.UserContext(), p.TenantID, c.Params("id"), actor(p), in.Body)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(n)
}

func (s *Server) sessionEvents(c *fiber.Ctx) error {
	se, err := s.visibleSession(c)
	if err != nil {
		return err
	}
	evs, err := s.d.Engine.Store().EventList(c.UserContext(), se.TenantID, se.ID)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"events": evs})
}

func (s *Server) transfer(c *fiber.Ctx) error {
	p := principal(c)
	var in struct {
		AgentID string `json:"agent_id"`
		GroupID string `json:"group_id"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	se, err := s.d.Engine.Transfer(c.UserContext(), p.TenantID, c.Params("id"), actor(p), in.AgentID, in.GroupID)
	if err != nil {
		return err
	}
	return c.JSON(se)
}

func (s *Server) closeSession(c *fiber.Ctx) error {
	p := principal(c)
	se, err := s.d.Engine.Close(c.UserContext(), p.TenantID, c.Params("id"), actor(p))
	if err != nil {
		return err
	}
	return c.JSON(se)
}

// groupChanged lets routing pick up a group's new settings at once on this
// node (other nodes within the directory cache's lifetime and the next
// reconcile).
func (s *Server) groupChanged(ctx context.Context, tenantID, groupID string) {
	if s.d.OnGroupChanged != nil {
		if err := s.d.OnGroupChanged(ctx, tenantID, groupID); err != nil {
			s.d.Log.Warn("apply group settings to routing", "group", groupID, "err", err)
		}
	}
}

func (s *Server) acceptOffer(c *fiber.Ctx) error {
	p := principal(c)
	se, err := s.d.Engine.Accept(c.UserContext(), p.TenantID, c.Params("id"), actor(p))
	if err != nil {
		return err
	}
	return c.JSON(se)
}

func (s *Server) declineOffer(c *fiber.Ctx) error {
	p := principal(c)
	se, err := s.d.Engine.Decline(c.UserContext(), p.TenantID, c.Params("id"), actor(p))
	if err != nil {
		return err
	}
	return c.JSON(se)
}

func (s *Server) wrapup(c *fiber.Ctx) error {
	p := principal(c)
	var in struct {
		ReasonCodes []string `json:"reason_codes"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	se, err := s.d.Engine.Wrapup(c.UserContext(), p.TenantID, c.Params("id"), actor(p), in.ReasonCodes)
	if err != nil {
		return err
	}
	return c.JSON(se)
}

func (s *Server) listAgents(c *fiber.Ctx) error {
	as, err := s.d.AgentStore.AgentList(c.UserContext(), principal(c).TenantID)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"agents": as})
}

func (s *Server) getAgent(c *fiber.Ctx) error {
	a, err := s.d.AgentStore.AgentGet(c.UserContext(), principal(c).TenantID, c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(a)
}

func (s *Server) createAgent(c *fiber.Ctx) error {
	var in agents.NewAgent
	if err := bind(c, &in); err != nil {
		return err
	}
	p := principal(c)
	if err := s.checkGroups(c.UserContext(), p.TenantID, in.Skills); err != nil {
		return err
	}
	a, err := s.d.Agents.CreateAgent(c.UserContext(), p.TenantID, in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(a)
}

func (s *Server) checkGroups(ctx context.Context, tenantID string, skills []agents.Skill) error {
	for _, sk := range skills {
		if _, err := s.d.AgentStore.GroupGet(ctx, tenantID, sk.GroupID); err != nil {
			if errs.Is(err, errs.NotFound) {
				return errs.E("skills", errs.Invalid, "no group %s", sk.GroupID)
			}
			return err
		}
	}
	return nil
}

func (s *Server) updateAgent(c *fiber.Ctx) error {
	p := principal(c)
	ctx := c.UserContext()
	a, err := s.d.AgentStore.AgentGet(ctx, p.TenantID, c.Params("id"))
	if err != nil {
		return err
	}
	var in struct {
		DisplayName *string         `json:"display_name"`
		Role        *agents.Role    `json:"role"`
		MaxSessions *int            `json:"max_sessions"`
		Disabled    *bool           `json:"disabled"`
		Skills      *[]agents.Skill `json:"skills"`
		Password    *string         `json:"password"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	if in.DisplayName != nil {
		a.DisplayName = *in.DisplayName
	}
	if in.Role != nil {
		if !in.Role.Valid() {
			return errs.E("update agent", errs.Invalid, "role must be admin, supervisor or agent")
		}
		a.Role = *in.Role
	}
	if in.MaxSessions != nil {
		if *in.MaxSessions < 1 || *in.MaxSessions > 50 {
			return errs.E("update agent", errs.Invalid, "max_sessions must be in [1, 50]")
		}
		a.MaxSessions = *in.MaxSessions
	}
	if in.Disabled != nil {
		a.Disabled = *in.Disabled
	}
	// Validate everything before the first write, so a refused request
	// changes nothing.
	if err := a.ValidateProfile(); err != nil {
		return err
	}
	if in.Skills != nil {
		// A skill without a weight gets the default, as on create.
		*in.Skills = agents.NormalizeSkills(*in.Skills)
		if err := agents.ValidateSkills(*in.Skills); err != nil {
			return err
		}
		if err := s.checkGroups(ctx, p.TenantID, *in.Skills); err != nil {
			return err
		}
	}
	if in.Password != nil {
		if err := agents.ValidatePassword(*in.Password); err != nil {
			return err
		}
	}
	if a, err = s.d.AgentStore.AgentUpdate(ctx, a); err != nil {
		return err
	}
	if in.Skills != nil {
		if err := s.d.AgentStore.AgentSetSkills(ctx, p.TenantID, a.ID, *in.Skills); err != nil {
			return err
		}
	}
	if in.Password != nil {
		if err := s.d.Agents.SetPassword(ctx, p.TenantID, a.ID, *in.Password); err != nil {
			return err
		}
	}
	if a.Disabled {
		if _, err := s.d.Agents.RevokeAll(ctx, p.TenantID, a.ID); err != nil {
			return err
		}
		if err := s.setState(ctx, p.TenantID, a.ID, agents.StateOffline, "", false); err != nil {
			return err
		}
	}
	a, err = s.d.AgentStore.AgentGet(ctx, p.TenantID, a.ID)
	if err != nil {
		return err
	}
	return c.JSON(a)
}

func (s *Server) listGroups(c *fiber.Ctx) error {
	gs, err := s.d.AgentStore.GroupList(c.UserContext(), principal(c).TenantID)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"groups": gs})
}

// groupInput is the body of group create and update: every field is
// optional and only the fields given change.
type groupInput struct {
	Name             *string  `json:"name"`
	Strategy         *string  `json:"strategy"`
	SLThresholdSec   *int     `json:"sl_threshold_sec"`
	MaxQueue         *int     `json:"max_queue"`
	FallbackStrategy *string  `json:"fallback_strategy"`
	Weight           *float64 `json:"weight"`
	PriorityStepSec  *int     `json:"priority_step_sec"`
	MaxWaitSec       *int     `json:"max_wait_sec"`
	OverflowAction   *string  `json:"overflow_action"`
	OverflowGroupID  *string  `json:"overflow_group_id"`
	StickyWaitSec    *int     `json:"sticky_wait_sec"`
	RingStepSec      *int     `json:"ring_step_sec"`
	OfferTimeoutSec  *int     `json:"offer_timeout_sec"`
	MaxMissedOffers  *int     `json:"max_missed_offers"`
	// Hours is the schedule object; JSON null (kept as "null" by
	// RawMessage) clears it, absence (nil) keeps it.
	Hours           json.RawMessage `json:"hours"`
	OffHoursMessage *string         `json:"off_hours_message"`
	BusyMessage     *string         `json:"busy_message"`
}

// apply sets the fields given on g and checks the result with
// Group.Validate, so a create and an update obey the same rules.
func (in groupInput) apply(g *agents.Group) error {
	const op = "group"
	if in.Name != nil {
		n := strings.TrimSpace(*in.Name)
		if n == "" || utf8.RuneCountInString(n) > 100 {
			return errs.E(op, errs.Invalid, "name must be 1-100 characters")
		}
		g.Name = n
	}
	if in.Strategy != nil {
		g.Strategy = agents.CanonicalStrategy(*in.Strategy)
	}
	if in.FallbackStrategy != nil {
		g.FallbackStrategy = agents.CanonicalStrategy(*in.FallbackStrategy)
	}
	if in.OverflowAction != nil {
		g.OverflowAction = *in.OverflowAction
		// Switching away from overflow to a group drops the target, so the
		// client need not clear it in the same request.
		if g.OverflowAction != agents.OverflowToGroup && in.OverflowGroupID == nil {
			g.OverflowGroupID = ""
		}
	}
	if in.Hours != nil {
		h, err := agents.CanonicalHours(string(in.Hours))
		if err != nil {
			return err
		}
		g.Hours = h
	}
	setGiven(&g.SLThresholdSec, in.SLThresholdSec)
	setGiven(&g.MaxQueue, in.MaxQueue)
	setGiven(&g.Weight, in.Weight)
	setGiven(&g.PriorityStepSec, in.PriorityStepSec)
	setGiven(&g.MaxWaitSec, in.MaxWaitSec)
	setGiven(&g.OverflowGroupID, in.OverflowGroupID)
	setGiven(&g.StickyWaitSec, in.StickyWaitSec)
	setGiven(&g.RingStepSec, in.RingStepSec)
	setGiven(&g.OfferTimeoutSec, in.OfferTimeoutSec)
	setGiven(&g.MaxMissedOffers, in.MaxMissedOffers)
	setGiven(&g.OffHoursMessage, in.OffHoursMessage)
	setGiven(&g.BusyMessage, in.BusyMessage)
	return g.Validate()
}

// setGiven stores *v in dst when the field was given.
func setGiven[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// checkOverflowGroup checks that the group g overflows to exists in its
// tenant; the store cannot, as the column is no foreign key.
func (s *Server) checkOverflowGroup(ctx context.Context, g agents.Group) error {
	if g.OverflowAction != agents.OverflowToGroup {
		return nil
	}
	if _, err := s.d.AgentStore.GroupGet(ctx, g.TenantID, g.OverflowGroupID); err != nil {
		if errs.Is(err, errs.NotFound) {
			return errs.E("group", errs.Invalid, "overflow_group_id: no group %s", g.OverflowGroupID)
		}
		return err
	}
	return nil
}

func (s *Server) createGroup(c *fiber.Ctx) error {
	var in groupInput
	if err := bind(c, &in); err != nil {
		return err
	}
	if in.Name == nil {
		return errs.E("create group", errs.Invalid, "name is required")
	}
	g := agents.NewGroup(principal(c).TenantID, uuid.Must(uuid.NewV7()).String(), "")
	g.CreatedAt = time.Now().UTC()
	if err := in.apply(&g); err != nil {
		return err
	}
	if err := s.checkOverflowGroup(c.UserContext(), g); err != nil {
		return err
	}
	g, err := s.d.AgentStore.GroupCreate(c.UserContext(), g)
	if err != nil {
		return err
	}
	s.groupChanged(c.UserContext(), g.TenantID, g.ID)
	return c.Status(fiber.StatusCreated).JSON(g)
}

func (s *Server) updateGroup(c *fiber.Ctx) error {
	g, err := s.d.AgentStore.GroupGet(c.UserContext(), principal(c).TenantID, c.Params("id"))
	if err != nil {
		return err
	}
	var in groupInput
	if err := bind(c, &in); err != nil {
		return err
	}
	if err := in.apply(&g); err != nil {
		return err
	}
	if err := s.checkOverflowGroup(c.UserContext(), g); err != nil {
		return err
	}
	if g, err = s.d.AgentStore.GroupUpdate(c.UserContext(), g); err != nil {
		return err
	}
	s.groupChanged(c.UserContext(), g.TenantID, g.ID)
	return c.JSON(g)
}

func (s *Server) deleteGroup(c *fiber.Ctx) error {
	p := principal(c)
	n, err := s.d.Queue.Length(c.UserContext(), p.TenantID, c.Params("id"))
	if err != nil {
		return err
	}
	if n > 0 {
		return errs.E("delete group", errs.Conflict, "the group has %d waiting sessions", n)
	}
	accts, err := s.d.Accounts.AccountList(c.UserContext(), p.TenantID)
	if err != nil {
		return err
	}
	for _, a := range accts {
		if a.DefaultGroupID == c.Params("id") {
			return errs.E("delete group", errs.Conflict, "channel account %s hands off to this group", a.Name)
		}
	}
	if err := s.d.AgentStore.GroupDelete(c.UserContext(), p.TenantID, c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) reasonTree(c *fiber.Ctx) error {
	t, err := s.d.AgentStore.ReasonTreeCurrent(c.UserContext(), principal(c).TenantID)
	if errs.Is(err, errs.NotFound) {
		return c.JSON(agents.ReasonTree{TenantID: principal(c).TenantID, Nodes: []agents.ReasonNode{}})
	}
	if err != nil {
		return err
	}
	return c.JSON(t)
}

func (s *Server) saveReasonTree(c *fiber.Ctx) error {
	p := principal(c)
	var in struct {
		Nodes     []agents.ReasonNode `json:"nodes"`
		Mandatory bool                `json:"mandatory"`
	}
	if err := bind(c, &in); err != nil {
		return err
	}
	t := agents.ReasonTree{TenantID: p.TenantID, Nodes: in.Nodes, Mandatory: in.Mandatory, CreatedBy: p.AgentID, CreatedAt: time.Now().UTC()}
	if err := t.Validate(); err != nil {
		return err
	}
	t, err := s.d.AgentStore.ReasonTreeSave(c.UserContext(), t)
	if err != nil {
		return err
	}
	return c.JSON(t)
}

func (s *Server) reasonTreeVersions(c *fiber.Ctx) error {
	ts, err := s.d.AgentStore.ReasonTreeList(c.UserContext(), principal(c).TenantID)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"versions": ts})
}
