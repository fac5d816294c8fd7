package session

import (
	"context"
	"encoding/json"
	"regexp"
	"time"

	"github.com/switchboard-acd/switchboard/internal/errs"
)

// ownedBy loads a session and checks that agentID holds it (any agent of the
// tenant may act when supervisor is true).
func (e *Engine) ownedBy(ctx context.Context, op, tenantID, sessionID, agentID string, supervisor bool) (Session, error) {
	s, err := e.store.SessionGet(ctx, tenantID, sessionID)
	if err != nil {
		return Session{}, errs.Wrap(op, err)
	}
	if !supervisor && s.AgentID != agentID {
		return Session{}, errs.E(op, errs.Forbidden, "the session is not yours")
	}
	return s, nil
}

// Actor is who performs an agent-side action.
type Actor struct {
	AgentID string
	// Supervisor may act on sessions they do not hold.
	Supervisor bool
}

// Reply stores an agent's message to the customer and delivers it. A client
// message id used before returns the original message.
func (e *Engine) Reply(ctx context.Context, tenantID, sessionID string, who Actor, text, clientMsgID string) (Message, bool, error) {
	const op = "reply"
	if err := ValidateText(op, text); err != nil {
		return Message{}, false, err
	}
	return e.reply(ctx, op, tenantID, sessionID, who, TypeText, textBody(text), clientMsgID, func(Session) error { return nil })
}

// templateChannels are the channels that deliver provider templates.
var templateChannels = map[string]bool{"whatsapp": true}

// ReplyTemplate sends a provider-approved template to the customer: on
// WhatsApp the only message the provider delivers outside the 24-hour
// customer-service window. Other channels refuse it (errs.Invalid).
func (e *Engine) ReplyTemplate(ctx context.Context, tenantID, sessionID string, who Actor, tpl Template, clientMsgID string) (Message, bool, error) {
	const op = "reply with a template"
	if err := ValidateTemplate(op, tpl); err != nil {
		return Message{}, false, err
	}
	body, _ := json.Marshal(TextBody{Text: "Template " + tpl.Name + " (" + tpl.Language + ")", Template: &tpl})
	return e.reply(ctx, op, tenantID, sessionID, who, TypeTemplate, body, clientMsgID, func(s Session) error {
		if !templateChannels[s.Channel] {
			return errs.E(op, errs.Invalid, "templates are a WhatsApp feature; this session is on %s", s.Channel)
		}
		return nil
	})
}

// ValidateTemplate checks a template reference: a name of lower-case
// letters, digits and underscores (as providers name them), a language
// code like en or en_US, and components that are a JSON array.
func ValidateTemplate(op string, tpl Template) error {
	if !templateName.MatchString(tpl.Name) {
		return errs.E(op, errs.Invalid, "template.name: 1 to 512 lower-case letters, digits or underscores")
	}
	if !templateLanguage.MatchString(tpl.Language) {
		return errs.E(op, errs.Invalid, "template.language: a language code such as en or en_US")
	}
	if len(tpl.Components) > 0 {
		var arr []json.RawMessage
		if err := json.Unmarshal(tpl.Components, &arr); err != nil {
			return errs.E(op, errs.Invalid, "template.components: must be a JSON array")
		}
		if len(tpl.Components) > 16<<10 {
			return errs.E(op, errs.TooLarge, "template.components: at most 16 KiB")
		}
	}
	return nil
}

var (
	templateName     = regexp.MustCompile(`^[a-z0-9_]{1,512}$`)
	templateLanguage = regexp.MustCompile(`^[a-z]{2,3}(_[A-Za-z]{2,4})?$`)
)

// reply stores an agent's outbound message of the session and delivers
// it; check vets the session for this kind of message.
func (e *Engine) reply(ctx context.Context, op, tenantID, sessionID string, who Actor, typ MessageType, body json.RawMessage, clientMsgID string, check func(Session) error) (Message, bool, error) {
	if err := ValidateClientMsgID(op, clientMsgID); err != nil {
		return Message{}, false, err
	}
	s, err := e.ownedBy(ctx, op, tenantID, sessionID, who.AgentID, who.Supervisor)
	if err != nil {
		return Message{}, false, err
	}
	if s.State != StateActive {
		return Message{}, false, errs.E(op, errs.Conflict, "session is %s; replies need an active session", s.State).With("state", s.State)
	}
	if err := check(s); err != nil {
		return Message{}, false, err
	}
	m := Message{
		TenantID: tenantID, ID: newID(), ConversationID: s.ConversationID, SessionID: s.ID,
		Direction: Outbound, SenderKind: SenderAgent, SenderID: who.AgentID, Type: typ,
		Body: body, ClientMsgID: clientMsgID, CreatedAt: e.now(),
	}
	outbound(s, &m)
	m, err = e.store.MessageAppend(ctx, m)
	if errs.Is(err, errs.Duplicate) && clientMsgID != "" {
		orig, gerr := e.store.MessageGetByClientID(ctx, tenantID, s.ConversationID, clientMsgID)
		if gerr != nil {
			return Message{}, false, errs.Wrap(op, gerr)
		}
		return orig, true, nil
	}
	if err != nil {
		return Message{}, false, errs.Wrap(op, err)
	}
	e.queued(m)
	e.notify.MessageCreated(ctx, s, m)
	return m, false, nil
}

// Pin pins or unpins a message of the session.
func (e *Engine) Pin(ctx context.Context, tenantID, sessionID, messageID string, who Actor, pinned bool) (Message, error) {
	const op = "pin message"
	s, err := e.ownedBy(ctx, op, tenantID, sessionID, who.AgentID, who.Supervisor)
	if err != nil {
		return Message{}, err
	}
	m, err := e.store.MessageGet(ctx, tenantID, messageID)
	if err != nil {
		return Message{}, errs.Wrap(op, err)
	}
	if m.ConversationID != s.ConversationID {
		return Message{}, errs.E(op, errs.NotFound, "message not in this session's conversation")
	}
	if err := e.store.MessageSetPinned(ctx, tenantID, messageID, pinned); err != nil {
		return Message{}, errs.Wrap(op, err)
	}
	m.Pinned = pinned
	e.notify.MessageUpdated(ctx, s, m)
	return m, nil
}

// AddNote stores an internal note on a session.
func (e *Engine) AddNote(ctx context.Context, tenantID, sessionID string, who Actor, body string) (Note, error) {
	const op = "add note"
	if err := ValidateText(op, body); err != nil {
		return Note{}, err
	}
	if _, err := e.ownedBy(ctx, op, tenantID, sessionID, who.AgentID, who.Supervisor); err != nil {
		return Note{}, err
	}
	n := Note{TenantID: tenantID, ID: newID(), SessionID: sessionID, AgentID: who.AgentID, Body: body, CreatedAt: e.now()}
	if err := e.store.NoteInsert(ctx, n); err != nil {
		return Note{}, errs.Wrap(op, err)
	}
	return n, nil
}

// Transfer hands an active session to another agent (who must be able to
// take it now) or to another group's queue.
func (e *Engine) Transfer(ctx context.Context, tenantID, sessionID string, who Actor, toAgent, toGroup string) (Session, error) {
	const op = "transfer"
	if (toAgent == "") == (toGroup == "") {
		return Session{}, errs.E(op, errs.Invalid, "give exactly one of agent_id and group_id")
	}
	s, err := e.ownedBy(ctx, op, tenantID, sessionID, who.AgentID, who.Supervisor)
	if err != nil {
		return Session{}, err
	}
	if s.State != StateActive {
		return Session{}, illegal(op, s, EvTransferAgent)
	}
	prevAgent := s.AgentID
	if toGroup != "" {
		ok, err := e.dir.GroupExists(ctx, tenantID, toGroup)
		if err != nil {
			return Session{}, errs.Wrap(op, err)
		}
		if !ok {
			return Session{}, errs.E(op, errs.NotFound, "no group %s", toGroup)
		}
		now := e.now()
		s, err = e.transition(ctx, tenantID, sessionID, who.AgentID, func(s *Session) (Event, error) {
			if s.AgentID != prevAgent {
				return "", illegal(op, *s, EvTransferGroup)
			}
			if err := apply(op, s, EvTransferGroup); err != nil {
				return "", err
			}
			s.GroupID, s.AgentID, s.QueuedAt, s.AssignedAt, s.DeadlineAt = toGroup, "", &now, nil, nil
			return EvTransferGroup, nil
		})
		if err != nil {
			return s, errs.Wrap(op, err)
		}
		e.released(ctx, tenantID, prevAgent, s.Cost)
		if err := e.enqueue(ctx, s, now, EvTransferGroup, prevAgent, "You are being transferred. Please wait.", true); err != nil {
			return s, errs.Wrap(op, err)
		}
		return s, nil
	}
	if toAgent == prevAgent {
		return Session{}, errs.E(op, errs.Invalid, "the session is already with this agent")
	}
	if _, err := e.dir.RoutingAgent(ctx, tenantID, toAgent); err != nil {
		return Session{}, errs.Wrap(op, err)
	}
	ok, err := e.queue.Claim(ctx, tenantID, toAgent, s.Cost)
	if err != nil {
		return Session{}, errs.Wrap(op, &errs.Error{Code: errs.Unavailable, Err: err})
	}
	if !ok {
		return Session{}, errs.E(op, errs.Conflict, "the agent is not ready or has no free capacity")
	}
	now := e.now()
	s, err = e.transition(ctx, tenantID, sessionID, who.AgentID, func(s *Session) (Event, error) {
		if s.AgentID != prevAgent {
			return "", illegal(op, *s, EvTransferAgent)
		}
		if err := apply(op, s, EvTransferAgent); err != nil {
			return "", err
		}
		s.AgentID, s.AssignedAt = toAgent, &now
		return EvTransferAgent, nil
	})
	if err != nil {
		e.released(ctx, tenantID, toAgent, s.Cost)
		return s, errs.Wrap(op, err)
	}
	e.released(ctx, tenantID, prevAgent, s.Cost)
	e.afterAssign(ctx, s, EvTransferAgent, prevAgent)
	return s, nil
}

// Close ends the customer side of an active session; the agent then wraps up.
func (e *Engine) Close(ctx context.Context, tenantID, sessionID string, who Actor) (Session, error) {
	const op = "close"
	if _, err := e.ownedBy(ctx, op, tenantID, sessionID, who.AgentID, who.Supervisor); err != nil {
		return Session{}, err
	}
	return e.toWrapup(ctx, op, tenantID, sessionID, EvAgentClosed, who.AgentID, "agent")
}

func (e *Engine) toWrapup(ctx context.Context, op, tenantID, sessionID string, ev Event, actor, reason string) (Session, error) {
	now := e.now()
	s, err := e.transition(ctx, tenantID, sessionID, actor, func(s *Session) (Event, error) {
		if actor == timerActor && !due(s, now) {
			return "", errStop
		}
		if err := apply(op, s, ev); err != nil {
			return "", err
		}
		s.WrapupAt, s.CloseReason = &now, reason
		s.DeadlineAt = ptr(now.Add(e.opts.WrapupTimeout))
		return ev, nil
	}, func(tx Store, s Session) error {
		return tx.ConversationSetCurrent(ctx, s.TenantID, s.ConversationID, "", s.AgentID, &now)
	})
	if err != nil {
		return s, errs.Wrap(op, err)
	}
	e.notify.SessionChanged(ctx, s, ev, "")
	e.say(ctx, s, SenderSystem, "The conversation has ended. Write again any time.")
	return s, nil
}

// Wrapup records the contact reasons of a session in wrap-up and closes it,
// freeing the agent's capacity.
func (e *Engine) Wrapup(ctx context.Context, tenantID, sessionID string, who Actor, codes []string) (Session, error) {
	const op = "wrap up"
	s, err := e.ownedBy(ctx, op, tenantID, sessionID, who.AgentID, who.Supervisor)
	if err != nil {
		return Session{}, err
	}
	if s.State != StateWrapup {
		return Session{}, illegal(op, s, EvWrappedUp)
	}
	version, err := e.dir.ReasonCheck(ctx, tenantID, codes)
	if err != nil {
		return Session{}, errs.Wrap(op, err)
	}
	now := e.now()
	s, err = e.transition(ctx, tenantID, sessionID, who.AgentID, func(s *Session) (Event, error) {
		if err := apply(op, s, EvWrappedUp); err != nil {
			return "", err
		}
		s.ReasonCodes, s.ReasonTreeVersion, s.ClosedAt, s.DeadlineAt = append([]string{}, codes...), version, &now, nil
		return EvWrappedUp, nil
	})
	if err != nil {
		return s, errs.Wrap(op, err)
	}
	e.notify.SessionChanged(ctx, s, EvWrappedUp, "")
	e.released(ctx, tenantID, s.AgentID, s.Cost)
	return s, nil
}

// CustomerLeft ends the conversation from the customer's side: a waiting
// session is abandoned, a bot session closes, an active one goes to wrap-up.
func (e *Engine) CustomerLeft(ctx context.Context, cu Customer) error {
	const op = "customer left"
	conv, err := e.store.ConversationGet(ctx, cu.TenantID, cu.Conversation.ID)
	if err != nil {
		return errs.Wrap(op, err)
	}
	if conv.CurrentSessionID == "" {
		return nil
	}
	s, err := e.store.SessionGet(ctx, cu.TenantID, conv.CurrentSessionID)
	if err != nil {
		return errs.Wrap(op, err)
	}
	switch s.State {
	case StateActive:
		_, err = e.toWrapup(ctx, op, s.TenantID, s.ID, EvCustomerIdle, "contact", "customer_left")
	case StateQueued, StateOffered:
		_, err = e.closeFrom(ctx, op, s, EvAbandoned, "contact", "abandoned")
	case StateBot:
		_, err = e.closeFrom(ctx, op, s, EvBotResolved, "contact", "customer_left")
	}
	return err
}

// closeFrom closes a session without an agent (bot, queue).
func (e *Engine) closeFrom(ctx context.Context, op string, s Session, ev Event, actor, reason string) (Session, error) {
	now := e.now()
	// What to undo in routing depends on the state the transition left,
	// which may differ from the one the caller read.
	wasQueued, offeredTo := false, ""
	s, err := e.transition(ctx, s.TenantID, s.ID, actor, func(s *Session) (Event, error) {
		if actor == timerActor && !due(s, now) {
			return "", errStop
		}
		wasQueued, offeredTo = s.State == StateQueued, ""
		if s.State == StateOffered {
			offeredTo = s.AgentID
		}
		if err := apply(op, s, ev); err != nil {
			return "", err
		}
		s.ClosedAt, s.CloseReason, s.DeadlineAt = &now, reason, nil
		return ev, nil
	}, func(tx Store, s Session) error {
		return tx.ConversationSetCurrent(ctx, s.TenantID, s.ConversationID, "", "", nil)
	})
	if err != nil {
		return s, errs.Wrap(op, err)
	}
	if s.State != StateClosed {
		return s, nil // a timer found the deadline moved
	}
	if wasQueued {
		if _, err := e.queue.Remove(ctx, s.TenantID, s.GroupID, s.ID); err != nil {
			e.log.Error("remove abandoned session from queue", "session", s.ID, "err", err)
		}
	}
	e.notify.SessionChanged(ctx, s, ev, offeredTo)
	e.released(ctx, s.TenantID, offeredTo, s.Cost)
	return s, nil
}

// timerActor is the actor of timeouts; their transitions re-check the
// deadline on the fresh row, since the customer may have written meanwhile.
const timerActor = "timer"

func due(s *Session, now time.Time) bool { return s.DeadlineAt != nil && !s.DeadlineAt.After(now) }

// Sweep runs the timers: customer idle in bot or active sessions, wrap-up
// time limits. Every node may run it; optimistic versioning makes each
// timeout happen once.
func (e *Engine) Sweep(ctx context.Context) (int, error) {
	due, err := e.store.SessionListDue(ctx, e.now(), 200)
	if err != nil {
		return 0, errs.Wrap("sweep", err)
	}
	n := 0
	for _, s := range due {
		var err error
		switch s.State {
		case StateBot, StateActive:
			var idle bool
			if idle, err = e.idleOrPostpone(ctx, s); err != nil || !idle {
				break
			}
			if s.State == StateBot {
				_, err = e.closeFrom(ctx, "bot idle", s, EvBotResolved, timerActor, "idle")
			} else {
				_, err = e.toWrapup(ctx, "customer idle", s.TenantID, s.ID, EvCustomerIdle, timerActor, "customer_idle")
			}
		case StateWrapup:
			err = e.wrapupTimeout(ctx, s)
		case StateOffered:
			err = e.offerExpired(ctx, s)
		case StateQueued:
			err = e.overflow(ctx, s)
		default:
			// A deadline left on a state without timers: clear it.
			_, err = e.transition(ctx, s.TenantID, s.ID, timerActor, func(cur *Session) (Event, error) {
				cur.DeadlineAt = nil
				return "", nil
			})
		}
		if err != nil && !errs.Is(err, errs.Conflict) {
			e.log.Warn(timerActor, "session", s.ID, "state", s.State, "err", err)
			continue
		}
		n++
	}
	return n, nil
}

// idleOrPostpone decides an idle deadline that passed: the deadline is a
// lower bound set at the last transition, so if the customer wrote since
// (the conversation's last contact), the deadline moves to last contact +
// timeout and the session stays; otherwise it is idle.
func (e *Engine) idleOrPostpone(ctx context.Context, s Session) (bool, error) {
	conv, err := e.store.ConversationGet(ctx, s.TenantID, s.ConversationID)
	if err != nil {
		return false, err
	}
	last := s.LastContactAt
	if conv.LastContactAt != nil && conv.LastContactAt.After(last) {
		last = *conv.LastContactAt
	}
	timeout := e.opts.IdleTimeout
	if s.State == StateBot {
		timeout = e.opts.BotIdleTimeout
	}
	deadline := last.Add(timeout)
	if !deadline.After(e.now()) {
		return true, nil
	}
	return false, e.store.SessionTouch(ctx, s.TenantID, s.ID, last, &deadline)
}

func (e *Engine) wrapupTimeout(ctx context.Context, s Session) error {
	now := e.now()
	s, err := e.transition(ctx, s.TenantID, s.ID, timerActor, func(s *Session) (Event, error) {
		if !due(s, now) {
			return "", errStop
		}
		if err := apply("wrap-up timeout", s, EvWrapupTimeout); err != nil {
			return "", err
		}
		s.ClosedAt, s.DeadlineAt = &now, nil
		return EvWrapupTimeout, nil
	})
	if err != nil {
		return err
	}
	if s.State == StateClosed {
		e.notify.SessionChanged(ctx, s, EvWrapupTimeout, "")
		e.released(ctx, s.TenantID, s.AgentID, s.Cost)
	}
	return nil
}

// RunTimers sweeps every interval until ctx ends.
func (e *Engine) RunTimers(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := e.Sweep(ctx); err != nil && ctx.Err() == nil {
				e.log.Warn("sweep", "err", err)
			}
		}
	}
}

// currentSession is the open or wrapping-up session of a conversation, if
// any.
func (e *Engine) currentSession(ctx context.Context, tenantID, conversationID string) (Session, bool, error) {
	conv, err := e.store.ConversationGet(ctx, tenantID, conversationID)
	if err != nil {
		return Session{}, false, err
	}
	if conv.CurrentSessionID == "" {
		return Session{}, false, nil
	}
	s, err := e.store.SessionGet(ctx, tenantID, conv.CurrentSessionID)
	if err != nil {
		return Session{}, false, err
	}
	return s, true, nil
}

// CustomerTyping relays the customer's typing indicator to the agent.
func (e *Engine) CustomerTyping(ctx context.Context, cu Customer, on bool) error {
	s, ok, err := e.currentSession(ctx, cu.TenantID, cu.Conversation.ID)
	if err != nil || !ok {
		return err
	}
	e.notify.Typing(ctx, s, SenderContact, on)
	return nil
}

// CustomerRead records that the customer has seen the conversation up to
// seq and tells the agent.
func (e *Engine) CustomerRead(ctx context.Context, cu Customer, seq int64) (int64, error) {
	got, err := e.store.ConversationMarkRead(ctx, cu.TenantID, cu.Conversation.ID, SenderContact, seq)
	if err != nil {
		return 0, errs.Wrap("mark read", err)
	}
	if s, ok, err := e.currentSession(ctx, cu.TenantID, cu.Conversation.ID); err == nil && ok {
		e.notify.Read(ctx, s, SenderContact, got)
	}
	return got, nil
}

// AgentTyping relays an agent's typing indicator to the customer.
func (e *Engine) AgentTyping(ctx context.Context, tenantID, sessionID string, who Actor, on bool) error {
	s, err := e.ownedBy(ctx, "typing", tenantID, sessionID, who.AgentID, who.Supervisor)
	if err != nil {
		return err
	}
	e.notify.Typing(ctx, s, SenderAgent, on)
	return nil
}

// AgentRead records that the agent side has read the session's conversation
// up to seq and tells the customer.
func (e *Engine) AgentRead(ctx context.Context, tenantID, sessionID string, who Actor, seq int64) error {
	s, err := e.ownedBy(ctx, "mark read", tenantID, sessionID, who.AgentID, who.Supervisor)
	if err != nil {
		return err
	}
	got, err := e.store.ConversationMarkRead(ctx, tenantID, s.ConversationID, SenderAgent, seq)
	if err != nil {
		return errs.Wrap("mark read", err)
	}
	e.notify.Read(ctx, s, SenderAgent, got)
	return nil
}

// CurrentSession is the conversation's current session, if any.
func (e *Engine) CurrentSession(ctx context.Context, tenantID, conversationID string) (Session, bool, error) {
	s, err := e.store.SessionCurrent(ctx, tenantID, conversationID)
	if errs.Is(err, errs.NotFound) {
		return Session{}, false, nil
	}
	return s, err == nil, err
}
