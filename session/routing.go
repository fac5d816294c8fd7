package session

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// This file is the engine's side of routing: handing sessions to the queue
// (queue-aware: business hours, flow control, who is online, expected
// wait), committing the router's assignments or offers, offers' accept,
// decline and expiry, overflow after the max wait, and agents entering and
// leaving routing.

// matchLimit caps the assignments one MatchGroup call makes.
const matchLimit = 64

// QueueInfo is what a customer (or the bot) may be told about a group's
// queue before and while waiting.
type QueueInfo struct {
	GroupID string `json:"group_id"`
	// Open is false outside the group's business hours; NextOpen is then
	// when it opens (nil if never within a year).
	Open     bool       `json:"open"`
	NextOpen *time.Time `json:"next_open,omitempty"`
	// Online counts agents logged in with the skill; 0 means nobody could
	// answer now.
	Online int `json:"online"`
	// Waiting is the queue length; Position the session's 1-based place
	// (0 when not waiting).
	Waiting  int `json:"waiting"`
	Position int `json:"position"`
	// ExpectedWait is position / recent service rate; nil when there was no
	// recent service to estimate from.
	ExpectedWait *time.Duration `json:"expected_wait_ns,omitempty"`
	// Full reports a group at its MaxQueue.
	Full bool `json:"full"`
}

// QueueInfo reads the live state of a group's queue as it concerns
// session s (s may be zero to ask about the group only).
func (e *Engine) QueueInfo(ctx context.Context, tenantID, groupID string, s Session) (QueueInfo, error) {
	g, err := e.dir.Group(ctx, tenantID, groupID)
	if err != nil {
		return QueueInfo{}, errs.Wrap("queue info", err)
	}
	return e.queueInfo(ctx, g, s)
}

func (e *Engine) queueInfo(ctx context.Context, g acd.Group, s Session) (QueueInfo, error) {
	now := e.now()
	qi := QueueInfo{GroupID: g.ID, Open: g.Hours.Open(now)}
	if !qi.Open {
		if t, ok := g.Hours.NextOpen(now); ok {
			qi.NextOpen = &t
		}
	}
	st, err := e.queue.Stats(ctx, g.TenantID, []string{g.ID})
	if err != nil || len(st) != 1 {
		return qi, errs.Wrap("queue info", &errs.Error{Code: errs.Unavailable, Err: err})
	}
	qi.Online, qi.Waiting = st[0].Online, st[0].Waiting
	qi.Full = g.MaxQueue > 0 && qi.Waiting >= g.MaxQueue
	pos := qi.Waiting + 1 // where a newcomer would stand
	if s.ID != "" && s.State == StateQueued && s.GroupID == g.ID {
		if p, _, err := e.queue.Position(ctx, g.TenantID, g.ID, s.ID); err == nil {
			pos = p
		}
		qi.Position = pos
	}
	if d, ok := st[0].ExpectedWait(pos); ok {
		qi.ExpectedWait = &d
	}
	return qi, nil
}

// waitText renders an expected wait for customers.
func waitText(d *time.Duration) string {
	if d == nil {
		return ""
	}
	switch m := int(d.Round(time.Minute).Minutes()); {
	case *d < time.Minute:
		return "less than a minute"
	case m == 1:
		return "about 1 minute"
	default:
		return fmt.Sprintf("about %d minutes", m)
	}
}

// Handoff moves a bot session into a skill group's queue and routes it. It
// is queue-aware: outside the group's hours, or with its queue full, the
// customer is told so (with the next opening or the expected wait) and the
// session stays with the bot (event handoff_refused, no error); with
// nobody online the customer is told before being queued.
func (e *Engine) Handoff(ctx context.Context, tenantID, sessionID, groupID, actor string) (Session, error) {
	const op = "handoff"
	s, err := e.store.SessionGet(ctx, tenantID, sessionID)
	if err != nil {
		return Session{}, errs.Wrap(op, err)
	}
	if s.State != StateBot {
		return s, illegal(op, s, EvHandoff)
	}
	if groupID == "" {
		if groupID, err = e.dir.DefaultGroup(ctx, tenantID, s.AccountID); err != nil {
			return Session{}, errs.Wrap(op, err)
		}
	}
	g, err := e.dir.Group(ctx, tenantID, groupID)
	if err != nil {
		return Session{}, errs.Wrap(op, err)
	}
	qi, err := e.queueInfo(ctx, g, Session{})
	if err != nil {
		return s, errs.Wrap(op, err)
	}
	switch {
	case !qi.Open:
		text := g.OffHoursMessage
		if text == "" {
			text = "We are closed right now."
			if qi.NextOpen != nil {
				text += " We open again " + qi.NextOpen.In(g.Hours.Location()).Format("Mon 2 Jan 15:04 MST") + "."
			}
			text += " Leave us a message and we will get back to you."
		}
		return e.refuseHandoff(ctx, s, g.ID, "off_hours", text)
	case qi.Full:
		text := g.BusyMessage
		if text == "" {
			text = "All our agents are busy and the queue is full. Please try again later."
			if w := waitText(qi.ExpectedWait); w != "" {
				text = "All our agents are busy and the queue is full; the wait is " + w + ". Please try again later."
			}
		}
		return e.refuseHandoff(ctx, s, g.ID, "queue_full", text)
	}
	now := e.now()
	s, err = e.transition(ctx, tenantID, sessionID, actor, func(s *Session) (Event, error) {
		if err := apply(op, s, EvHandoff); err != nil {
			return "", err
		}
		s.GroupID, s.QueuedAt, s.DeadlineAt = groupID, &now, maxWaitDeadline(g, now)
		return EvHandoff, nil
	})
	if err != nil {
		return s, errs.Wrap(op, err)
	}
	note := "Connecting you to an agent. Please wait."
	if qi.Online == 0 {
		note = "No agent is online right now. You are in the queue and will be answered as soon as one is."
	}
	if err := e.enqueue(ctx, s, now, EvHandoff, "", note, false); err != nil {
		return s, errs.Wrap(op, err)
	}
	return s, nil
}

// maxWaitDeadline is when a session queued at now overflows; nil when the
// group has no overflow.
func maxWaitDeadline(g acd.Group, queuedAt time.Time) *time.Time {
	if g.MaxWait <= 0 || g.Overflow == acd.OverflowNone {
		return nil
	}
	return ptr(queuedAt.Add(g.MaxWait))
}

// refuseHandoff tells the customer why they were not queued and records it.
func (e *Engine) refuseHandoff(ctx context.Context, s Session, groupID, reason, text string) (Session, error) {
	s2, err := e.transition(ctx, s.TenantID, s.ID, "router", func(cur *Session) (Event, error) {
		if err := apply("handoff", cur, EvHandoffRefused); err != nil {
			return "", err
		}
		cur.GroupID = groupID
		return EvHandoffRefused, nil
	})
	if err != nil {
		return s, errs.Wrap("handoff", err)
	}
	e.log.Info("handoff refused", "session", s.ID, "group", groupID, "reason", reason)
	e.say(ctx, s2, SenderSystem, text)
	e.notify.SessionChanged(ctx, s2, EvHandoffRefused, "")
	return s2, nil
}

// enqueue puts a session that just became queued (event ev) into its
// group's queue and delivers the assignments the queue made at once; it
// announces the change after the enqueue, so the customer learns their
// place, and tells the customer note with their position and expected wait
// when they have to wait. force skips the group's MaxQueue (sessions that
// were accepted once: requeue, transfer, overflow).
func (e *Engine) enqueue(ctx context.Context, s Session, at time.Time, ev Event, prevAgent, note string, force bool) error {
	start := time.Now()
	it := acd.Item{TenantID: s.TenantID, SessionID: s.ID, GroupID: s.GroupID, Priority: s.Priority,
		Cost: s.Cost, EnqueuedAt: at, Force: force}
	g, gerr := e.dir.Group(ctx, s.TenantID, s.GroupID)
	if gerr == nil && g.Strategy == acd.Sticky && ev == EvHandoff {
		if conv, err := e.store.ConversationGet(ctx, s.TenantID, s.ConversationID); err == nil {
			it.PreferredAgent = conv.LastAgentID
		}
	}
	res, err := e.queue.Enqueue(ctx, it)
	e.notify.SessionChanged(ctx, s, ev, prevAgent)
	if err != nil {
		return errs.Wrap("enqueue", &errs.Error{Code: errs.Unavailable, Err: err})
	}
	waiting := res.Position > 0
	if waiting {
		if gerr == nil {
			if qi, err := e.queueInfo(ctx, g, s); err == nil && qi.Position > 0 {
				note += fmt.Sprintf(" You are number %d in line", qi.Position)
				if w := waitText(qi.ExpectedWait); w != "" {
					note += "; the expected wait is " + w
				}
				note += "."
			}
		}
		e.say(ctx, s, SenderSystem, note)
	}
	e.deliver(ctx, res.Assignments, start)
	return nil
}

// MatchGroup routes a group's waiting sessions to available agents.
func (e *Engine) MatchGroup(ctx context.Context, tenantID, groupID string) error {
	start := time.Now()
	as, err := e.queue.MatchGroup(ctx, tenantID, groupID, matchLimit)
	e.deliver(ctx, as, start)
	if err != nil {
		return errs.Wrap("match group", &errs.Error{Code: errs.Unavailable, Err: err})
	}
	return nil
}

// MatchAgent gives an agent the waiting sessions they can take.
func (e *Engine) MatchAgent(ctx context.Context, tenantID, agentID string) error {
	start := time.Now()
	as, err := e.queue.MatchAgent(ctx, tenantID, agentID)
	e.deliver(ctx, as, start)
	if err != nil {
		return errs.Wrap("match agent", &errs.Error{Code: errs.Unavailable, Err: err})
	}
	return nil
}

// Deliver commits assignments the router made outside the engine (the
// reconciler's rebuild).
func (e *Engine) Deliver(ctx context.Context, as []acd.Assignment) { e.deliver(ctx, as, time.Now()) }

// deliver commits assignments the router made; every queue call that can
// match hands its assignments here.
func (e *Engine) deliver(ctx context.Context, as []acd.Assignment, start time.Time) {
	for _, a := range as {
		e.assign(ctx, a)
		if e.OnRouted != nil {
			e.OnRouted(a.Waited, time.Since(start))
		}
	}
}

// assign commits a match made by the router: the session becomes active,
// or offered when its group asks agents to accept. A session that left the
// queue meanwhile (abandoned, closed) gives the agent's capacity back.
func (e *Engine) assign(ctx context.Context, a acd.Assignment) {
	now := e.now()
	var offer time.Duration
	if g, err := e.dir.Group(ctx, a.TenantID, a.GroupID); err == nil {
		offer = g.OfferTimeout
	}
	ev := EvAssigned
	if offer > 0 {
		ev = EvOffered
	}
	s, err := e.transition(ctx, a.TenantID, a.SessionID, "router", func(s *Session) (Event, error) {
		if s.GroupID != a.GroupID {
			return "", illegal("assign", *s, ev) // moved to another group meanwhile
		}
		if err := apply("assign", s, ev); err != nil {
			return "", err
		}
		s.AgentID = a.AgentID
		if offer > 0 {
			s.OfferedAt, s.DeadlineAt = &now, ptr(now.Add(offer))
		} else {
			s.AssignedAt, s.DeadlineAt = &now, ptr(now.Add(e.opts.IdleTimeout))
		}
		return ev, nil
	})
	if err != nil {
		e.log.Warn("assignment dropped; releasing capacity", "session", a.SessionID, "agent", a.AgentID, "err", err)
		e.released(ctx, a.TenantID, a.AgentID, a.Cost)
		return
	}
	if ev == EvOffered {
		e.notify.SessionChanged(ctx, s, EvOffered, "")
		e.notify.SessionAssigned(ctx, s, e.transcript(ctx, s))
		return
	}
	e.afterAssign(ctx, s, EvAssigned, "")
}

func (e *Engine) transcript(ctx context.Context, s Session) []Message {
	t, err := e.store.MessageListBySession(ctx, s.TenantID, s.ID)
	if err != nil {
		e.log.Error("load transcript", "session", s.ID, "err", err)
	}
	return t
}

func (e *Engine) afterAssign(ctx context.Context, s Session, ev Event, prevAgent string) {
	e.notify.SessionChanged(ctx, s, ev, prevAgent)
	if ev != EvAccepted {
		e.notify.SessionAssigned(ctx, s, e.transcript(ctx, s))
	}
	e.say(ctx, s, SenderSystem, e.dir.AgentName(ctx, s.TenantID, s.AgentID)+" is now chatting with you.")
}

// Accept takes an offered session: it becomes active with the agent.
func (e *Engine) Accept(ctx context.Context, tenantID, sessionID string, who Actor) (Session, error) {
	const op = "accept offer"
	if _, err := e.ownedBy(ctx, op, tenantID, sessionID, who.AgentID, false); err != nil {
		return Session{}, err
	}
	now := e.now()
	s, err := e.transition(ctx, tenantID, sessionID, who.AgentID, func(s *Session) (Event, error) {
		if s.AgentID != who.AgentID {
			return "", errs.E(op, errs.Forbidden, "the offer is not yours")
		}
		if err := apply(op, s, EvAccepted); err != nil {
			return "", err
		}
		s.AssignedAt, s.OfferedAt, s.DeadlineAt = &now, nil, ptr(now.Add(e.opts.IdleTimeout))
		return EvAccepted, nil
	})
	if err != nil {
		return s, errs.Wrap(op, err)
	}
	if err := e.queue.Accepted(ctx, tenantID, who.AgentID); err != nil {
		e.log.Warn("reset missed offers", "agent", who.AgentID, "err", err)
	}
	e.afterAssign(ctx, s, EvAccepted, "")
	return s, nil
}

// Decline turns an offer down: the session goes back to the head of its
// queue for the next agent. A decline is an answer, so it does not count
// as a missed offer.
func (e *Engine) Decline(ctx context.Context, tenantID, sessionID string, who Actor) (Session, error) {
	const op = "decline offer"
	if _, err := e.ownedBy(ctx, op, tenantID, sessionID, who.AgentID, false); err != nil {
		return Session{}, err
	}
	return e.unoffer(ctx, op, tenantID, sessionID, who.AgentID, EvDeclined, who.AgentID, nil)
}

// offerExpired is the timer of an offer nobody answered: back to the queue
// head, and one more missed offer for the agent, who is set not ready at
// the group's limit.
func (e *Engine) offerExpired(ctx context.Context, s Session) error {
	if s.DeadlineAt == nil || s.DeadlineAt.After(e.now()) {
		return nil
	}
	agentID := s.AgentID
	limit := 0
	if g, err := e.dir.Group(ctx, s.TenantID, s.GroupID); err == nil {
		limit = g.MaxMissedOffers
	}
	// Count the miss before the session goes back to the queue, so that an
	// agent made not ready is not offered it again at once.
	_, err := e.unoffer(ctx, "offer expired", s.TenantID, s.ID, agentID, EvOfferExpired, timerActor, func() {
		n, notReady, err := e.queue.Missed(ctx, s.TenantID, agentID, limit)
		if err != nil {
			e.log.Error("count missed offer", "agent", agentID, "err", err)
			return
		}
		if notReady {
			e.log.Info("agent set not ready after missed offers", "agent", agentID, "missed", n)
			if err := e.dir.AgentNotReady(ctx, s.TenantID, agentID, "missed_offers"); err != nil {
				e.log.Error("record agent not ready", "agent", agentID, "err", err)
			}
		}
	})
	return err
}

// unoffer moves an offered session back to its queue with its original
// queue time and frees the agent's capacity; before, if set, runs between
// the committed transition and the re-enqueue.
func (e *Engine) unoffer(ctx context.Context, op, tenantID, sessionID, agentID string, ev Event, actor string, before func()) (Session, error) {
	now := e.now()
	changed := false
	s, err := e.transition(ctx, tenantID, sessionID, actor, func(s *Session) (Event, error) {
		changed = false
		if s.AgentID != agentID || s.State != StateOffered {
			if actor == timerActor {
				return "", errStop
			}
			return "", illegal(op, *s, ev)
		}
		if actor == timerActor && !due(s, now) {
			return "", errStop
		}
		if err := apply(op, s, ev); err != nil {
			return "", err
		}
		changed = true
		s.AgentID, s.OfferedAt = "", nil
		at := now
		if s.QueuedAt != nil {
			at = *s.QueuedAt
		}
		if g, err := e.dir.Group(ctx, tenantID, s.GroupID); err == nil {
			s.DeadlineAt = maxWaitDeadline(g, at)
		} else {
			s.DeadlineAt = nil
		}
		return ev, nil
	})
	if err != nil {
		return s, errs.Wrap(op, err)
	}
	if !changed {
		return s, nil
	}
	if before != nil {
		before()
	}
	at := now
	if s.QueuedAt != nil {
		at = *s.QueuedAt
	}
	// Free the capacity first, without matching the agent again: the
	// session should go to someone else if anyone can take it.
	if err := e.enqueue(ctx, s, at, ev, agentID, "", true); err != nil {
		return s, errs.Wrap(op, err)
	}
	e.released(ctx, tenantID, agentID, s.Cost)
	return s, nil
}

// overflow is the timer of a session that waited its group's max wait: it
// moves to the overflow group (keeping its place in time) or leaves the
// queue with an invitation to leave a message.
func (e *Engine) overflow(ctx context.Context, s Session) error {
	const op = "overflow"
	g, err := e.dir.Group(ctx, s.TenantID, s.GroupID)
	if err != nil {
		return errs.Wrap(op, err)
	}
	now := e.now()
	if !due(&s, now) {
		return nil
	}
	removed, err := e.queue.Remove(ctx, s.TenantID, s.GroupID, s.ID)
	if err != nil {
		return errs.Wrap(op, &errs.Error{Code: errs.Unavailable, Err: err})
	}
	if !removed {
		// Matched meanwhile (its assignment is being committed), or routing
		// lost it (the reconciler re-queues it); either way not ours to move.
		return nil
	}
	switch {
	case g.Overflow == acd.OverflowGroup && g.OverflowGroup != "" && g.OverflowGroup != g.ID:
		target, err := e.dir.Group(ctx, s.TenantID, g.OverflowGroup)
		if err != nil {
			return e.requeueAfterFailedOverflow(ctx, s, errs.Wrap(op, err))
		}
		s2, err := e.transition(ctx, s.TenantID, s.ID, timerActor, func(cur *Session) (Event, error) {
			if err := apply(op, cur, EvOverflow); err != nil {
				return "", err
			}
			cur.GroupID = target.ID
			// The wait so far counts towards the target's max wait too, so a
			// chain of overflows cannot bounce forever without progress.
			cur.DeadlineAt = nil
			if target.ID != g.ID {
				cur.DeadlineAt = maxWaitDeadline(target, now)
			}
			return EvOverflow, nil
		})
		if err != nil {
			return e.requeueAfterFailedOverflow(ctx, s, errs.Wrap(op, err))
		}
		at := now
		if s.QueuedAt != nil {
			at = *s.QueuedAt
		}
		return e.enqueue(ctx, s2, at, EvOverflow, "", "We are moving you to another team who can help sooner.", true)
	case g.Overflow == acd.OverflowMessage:
		s2, err := e.transition(ctx, s.TenantID, s.ID, timerActor, func(cur *Session) (Event, error) {
			if err := apply(op, cur, EvLeftMessage); err != nil {
				return "", err
			}
			cur.ClosedAt, cur.CloseReason, cur.DeadlineAt = &now, "left_message", nil
			return EvLeftMessage, nil
		}, func(tx Store, cur Session) error {
			return tx.ConversationSetCurrent(ctx, cur.TenantID, cur.ConversationID, "", "", nil)
		})
		if err != nil {
			return e.requeueAfterFailedOverflow(ctx, s, errs.Wrap(op, err))
		}
		e.say(ctx, s2, SenderSystem, "Sorry for the wait: no agent is free. Leave us a message here and we will get back to you.")
		e.notify.SessionChanged(ctx, s2, EvLeftMessage, "")
		return nil
	default:
		return e.requeueAfterFailedOverflow(ctx, s, nil)
	}
}

// requeueAfterFailedOverflow puts a session taken out of its queue for an
// overflow back, so that a failed overflow loses nothing.
func (e *Engine) requeueAfterFailedOverflow(ctx context.Context, s Session, cause error) error {
	cur, err := e.store.SessionGet(ctx, s.TenantID, s.ID)
	if err == nil && cur.State == StateQueued {
		at := e.now()
		if cur.QueuedAt != nil {
			at = *cur.QueuedAt
		}
		_, err = e.queue.Enqueue(ctx, acd.Item{TenantID: cur.TenantID, SessionID: cur.ID, GroupID: cur.GroupID,
			Priority: cur.Priority, Cost: cur.Cost, EnqueuedAt: at, Force: true})
		if err == nil {
			_, err = e.transition(ctx, cur.TenantID, cur.ID, timerActor, func(c *Session) (Event, error) {
				c.DeadlineAt = nil // no overflow to go to: wait without one
				return "", nil
			})
		}
	}
	if cause != nil {
		return cause
	}
	return err
}

// released frees an agent's capacity and delivers the waiting sessions the
// queue gave them for it.
func (e *Engine) released(ctx context.Context, tenantID, agentID string, cost int) {
	if agentID == "" {
		return
	}
	start := time.Now()
	as, err := e.queue.Release(ctx, tenantID, agentID, cost)
	e.deliver(ctx, as, start)
	if errs.Is(err, errs.NotFound) {
		// Routing lost the agent (Redis flushed): put them back.
		if a, derr := e.dir.RoutingAgent(ctx, tenantID, agentID); derr == nil && a.Ready {
			err = e.AgentReady(ctx, tenantID, agentID)
		} else {
			err = nil
		}
	}
	if err != nil {
		e.log.Error("release capacity", "agent", agentID, "err", err)
	}
}

// returnToLastAgent routes a new session straight to the agent who served
// the contact last, when the previous session closed within the reopen
// window and that agent can take it now. It reports whether it did.
func (e *Engine) returnToLastAgent(ctx context.Context, s Session, conv Conversation) bool {
	if conv.LastAgentID == "" || conv.LastClosedAt == nil || e.opts.ReopenWindow <= 0 ||
		e.now().Sub(*conv.LastClosedAt) > e.opts.ReopenWindow {
		return false
	}
	ok, err := e.queue.Claim(ctx, s.TenantID, conv.LastAgentID, s.Cost)
	if err != nil || !ok {
		return false
	}
	a, err := e.dir.RoutingAgent(ctx, s.TenantID, conv.LastAgentID)
	group := ""
	if err == nil && len(a.Groups) > 0 {
		group = a.Groups[0]
	}
	now := e.now()
	s2, err := e.transition(ctx, s.TenantID, s.ID, "router", func(cur *Session) (Event, error) {
		if cur.State != StateBot {
			return "", illegal("reopen", *cur, EvAssigned)
		}
		cur.State, cur.AgentID, cur.GroupID = StateActive, conv.LastAgentID, group
		cur.QueuedAt, cur.AssignedAt, cur.DeadlineAt = &now, &now, ptr(now.Add(e.opts.IdleTimeout))
		return EvAssigned, nil
	})
	if err != nil {
		e.released(ctx, s.TenantID, conv.LastAgentID, s.Cost)
		return false
	}
	e.afterAssign(ctx, s2, EvAssigned, "")
	return true
}

// AgentReady puts an agent into routing with their current load and hands
// them waiting sessions.
func (e *Engine) AgentReady(ctx context.Context, tenantID, agentID string) error {
	a, err := e.routingAgent(ctx, tenantID, agentID)
	if err != nil {
		return err
	}
	a.IdleSince = e.now()
	start := time.Now()
	as, err := e.queue.AgentReady(ctx, a.Agent)
	e.deliver(ctx, as, start)
	if err != nil {
		return errs.Wrap("agent ready", &errs.Error{Code: errs.Unavailable, Err: err})
	}
	return nil
}

// RoutingAgent is an agent as routing sees them plus their presence.
type RoutingAgent struct {
	acd.Agent
	// Ready and Online come from the agent's recorded state.
	Ready, Online bool
}

// routingAgent reads an agent with the load of the sessions they hold.
func (e *Engine) routingAgent(ctx context.Context, tenantID, agentID string) (RoutingAgent, error) {
	a, err := e.dir.RoutingAgent(ctx, tenantID, agentID)
	if err != nil {
		return RoutingAgent{}, errs.Wrap("routing agent", err)
	}
	load, err := e.AgentLoad(ctx, tenantID, agentID)
	if err != nil {
		return RoutingAgent{}, errs.Wrap("routing agent", err)
	}
	a.Load = load
	return a, nil
}

// heldStates are the states in which a session takes capacity from its
// agent.
var heldStates = []State{StateActive, StateWrapup, StateOffered}

// AgentLoad is the capacity the sessions an agent holds take, from the
// database (the truth routing is rebuilt from).
func (e *Engine) AgentLoad(ctx context.Context, tenantID, agentID string) (int, error) {
	load := 0
	f := SessionFilter{AgentID: agentID, States: heldStates, Limit: 1000}
	for {
		held, err := e.store.SessionList(ctx, tenantID, f)
		if err != nil {
			return 0, err
		}
		for _, s := range held {
			load += max(s.Cost, 1)
		}
		if len(held) < f.Limit {
			return load, nil
		}
		f.After = &held[len(held)-1]
	}
}

// AgentNotReady stops routing new sessions to an agent. With drain, their
// active and offered sessions go back to the head of their queues (wrap-ups
// stay theirs to finish); without, they keep them.
func (e *Engine) AgentNotReady(ctx context.Context, tenantID, agentID string, drain bool) error {
	if err := e.queue.AgentNotReady(ctx, tenantID, agentID); err != nil {
		return errs.Wrap("agent not ready", &errs.Error{Code: errs.Unavailable, Err: err})
	}
	if !drain {
		return nil
	}
	return e.handBackAll(ctx, tenantID, agentID, false)
}

// AgentGone takes an agent out of routing and hands their active and
// offered sessions back to the head of their queues (logout, going
// offline, a console connection lost past the grace period). Sessions in
// wrap-up are closed without reasons.
func (e *Engine) AgentGone(ctx context.Context, tenantID, agentID string) error {
	if err := e.queue.AgentOffline(ctx, tenantID, agentID); err != nil {
		return errs.Wrap("agent gone", &errs.Error{Code: errs.Unavailable, Err: err})
	}
	return e.handBackAll(ctx, tenantID, agentID, true)
}

func (e *Engine) handBackAll(ctx context.Context, tenantID, agentID string, wrapups bool) error {
	const op = "hand back"
	states := []State{StateActive, StateOffered}
	if wrapups {
		states = append(states, StateWrapup)
	}
	held, err := e.store.SessionList(ctx, tenantID, SessionFilter{AgentID: agentID, States: states, Limit: 1000})
	if err != nil {
		return errs.Wrap(op, err)
	}
	var firstErr error
	for _, s := range held {
		if err := e.handBack(ctx, s, agentID); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

func (e *Engine) handBack(ctx context.Context, s Session, agentID string) error {
	const op = "hand back"
	now := e.now()
	if s.State == StateWrapup {
		s2, err := e.transition(ctx, s.TenantID, s.ID, agentID, func(s *Session) (Event, error) {
			if err := apply(op, s, EvWrapupTimeout); err != nil {
				return "", err
			}
			s.ClosedAt, s.DeadlineAt = &now, nil
			return EvWrapupTimeout, nil
		})
		if err != nil {
			return errs.Wrap(op, err)
		}
		e.releaseOnly(ctx, s.TenantID, agentID, s.Cost)
		e.notify.SessionChanged(ctx, s2, EvWrapupTimeout, agentID)
		return nil
	}
	enqueuedAt := now
	if s.QueuedAt != nil {
		enqueuedAt = *s.QueuedAt // back to the head: keep the original queue time
	}
	s2, err := e.transition(ctx, s.TenantID, s.ID, agentID, func(s *Session) (Event, error) {
		if s.AgentID != agentID {
			return "", errStop
		}
		if err := apply(op, s, EvRequeued); err != nil {
			return "", err
		}
		s.AgentID, s.AssignedAt, s.OfferedAt = "", nil, nil
		s.DeadlineAt = nil
		if g, err := e.dir.Group(ctx, s.TenantID, s.GroupID); err == nil {
			s.DeadlineAt = maxWaitDeadline(g, enqueuedAt)
		}
		return EvRequeued, nil
	})
	if err != nil {
		return errs.Wrap(op, err)
	}
	if s2.State != StateQueued {
		return nil
	}
	e.releaseOnly(ctx, s.TenantID, agentID, s.Cost)
	return e.enqueue(ctx, s2, enqueuedAt, EvRequeued, agentID, "Your agent had to leave; you are next in line for another agent.", true)
}

// releaseOnly frees capacity of an agent who is leaving routing; whatever
// the release matches (nothing, for an agent not ready) is delivered.
func (e *Engine) releaseOnly(ctx context.Context, tenantID, agentID string, cost int) {
	start := time.Now()
	as, err := e.queue.Release(ctx, tenantID, agentID, cost)
	e.deliver(ctx, as, start)
	if err != nil && !errs.Is(err, errs.NotFound) {
		e.log.Error("release capacity", "agent", agentID, "err", err)
	}
}

// QueuePosition is a waiting session's 1-based place in its group's queue
// and the queue's length (0, 0 when it is not waiting).
func (e *Engine) QueuePosition(ctx context.Context, s Session) (pos, length int, err error) {
	if s.State != StateQueued || s.GroupID == "" {
		return 0, 0, nil
	}
	return e.queue.Position(ctx, s.TenantID, s.GroupID, s.ID)
}
