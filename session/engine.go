package session

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// MaxTextLen caps the characters of one text message.
const MaxTextLen = 4000

// Options tune the engine's timers.
type Options struct {
	// IdleTimeout ends an active session whose customer has been silent.
	IdleTimeout time.Duration
	// BotIdleTimeout closes a bot session whose customer went away.
	BotIdleTimeout time.Duration
	// WrapupTimeout closes a session left in wrap-up.
	WrapupTimeout time.Duration
	// ReopenWindow: a returning customer goes to their last agent first.
	ReopenWindow time.Duration
	// MaxBotMisses hands off after this many bot misses in a row (0 means
	// 3; negative leaves it to the Bot, which may hand off itself).
	MaxBotMisses int
}

// Engine is the only writer of conversation state.
type Engine struct {
	store  Store
	queue  acd.Queue
	dir    Directory
	bot    Bot
	notify Notifier
	clock  clock.Clock
	opts   Options
	log    *slog.Logger
	// OnRouted, if set, observes each assignment's enqueue→assign latency
	// (metrics).
	OnRouted func(waited time.Duration, took time.Duration)
	// OnQueued, if set, is called after a commit that queued outbound
	// messages for a provider channel, to wake the outbox workers.
	OnQueued func()
}

// NewEngine wires the engine to its ports.
func NewEngine(store Store, queue acd.Queue, dir Directory, bot Bot, notify Notifier, clk clock.Clock, opts Options, log *slog.Logger) *Engine {
	if opts.MaxBotMisses == 0 {
		opts.MaxBotMisses = 3
	}
	if opts.BotIdleTimeout <= 0 {
		opts.BotIdleTimeout = opts.IdleTimeout
	}
	return &Engine{store: store, queue: queue, dir: dir, bot: bot, notify: notify, clock: clk, opts: opts, log: log}
}

// Store exposes the engine's store for read models (lists, history).
func (e *Engine) Store() Store { return e.store }

func (e *Engine) now() time.Time { return e.clock.Now().UTC() }

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func textBody(text string) json.RawMessage {
	b, _ := json.Marshal(TextBody{Text: text})
	return b
}

// ValidateText checks a text message body.
func ValidateText(op, text string) error {
	if strings.TrimSpace(text) == "" {
		return errs.E(op, errs.Invalid, "text must not be empty")
	}
	if !utf8.ValidString(text) {
		return errs.E(op, errs.Invalid, "text must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(text); n > MaxTextLen {
		return errs.E(op, errs.TooLarge, "text has %d characters, at most %d allowed", n, MaxTextLen)
	}
	return nil
}

// ValidateClientMsgID checks a client message id ("" is allowed: no dedupe).
func ValidateClientMsgID(op, id string) error {
	if len(id) > 64 {
		return errs.E(op, errs.Invalid, "client message id longer than 64 characters")
	}
	return nil
}

// Customer identifies the sender of inbound messages: a resolved
// conversation with its contact.
type Customer struct {
	TenantID  string
	AccountID string
	Channel   string
	// ExternalID is the customer's id on the channel account: where
	// answers to this customer's message go.
	ExternalID   string
	Conversation Conversation
	Contact      Contact
}

// ResolveCustomer returns (creating on first sight) the contact and
// conversation behind an external identity on a channel account.
func (e *Engine) ResolveCustomer(ctx context.Context, tenantID, accountID, channel, externalID, displayName string) (Customer, error) {
	now := e.now()
	c, err := e.store.ContactResolve(ctx, tenantID, accountID, externalID, displayName, now)
	if err != nil {
		return Customer{}, errs.Wrap("resolve contact", err)
	}
	conv, err := e.store.ConversationEnsure(ctx, tenantID, accountID, c.ID, now)
	if err != nil {
		return Customer{}, errs.Wrap("ensure conversation", err)
	}
	return Customer{TenantID: tenantID, AccountID: accountID, Channel: channel, ExternalID: externalID, Conversation: conv, Contact: c}, nil
}

// Incoming is one message from a customer.
type Incoming struct {
	ClientMsgID  string
	ChannelMsgID string
	// Type is the message type; "" is TypeText.
	Type MessageType
	// Text is the message's text (a caption, a button's title...); it must
	// not be empty for text messages.
	Text string
	// Body is the stored body for types other than text (it must be a JSON
	// object holding "text" when there is one); nil stores Text as a
	// TextBody.
	Body json.RawMessage
	// BotText is what the bot reads when it differs from Text (the id of a
	// picked button, a menu key); "" means Text. A message with neither
	// text is stored and routed but not answered.
	BotText string
	// OnlyOpen stores the message only into an open session: with none it
	// is dropped (a location report, a reaction to an old message) and
	// Receive returns a zero Message.
	OnlyOpen bool
	// Stored, if set, is called once the message is committed and before the
	// bot answers, so a channel can acknowledge it first.
	Stored func(m Message, duplicate bool)

	attempts int // times Receive lost a race to open a session and tried again
}

// Receive stores a customer's message and moves the conversation on: a new
// session when none is open, a bot reply or handoff in the bot state, a push
// to the agent when active. A client message id seen before returns the
// original message and duplicate=true, and changes nothing.
func (e *Engine) Receive(ctx context.Context, cu Customer, in Incoming) (msg Message, duplicate bool, err error) {
	const op = "receive message"
	typ, body, err := validateIncoming(op, in)
	if err != nil {
		return Message{}, false, err
	}
	convID := cu.Conversation.ID
	now := e.now()
	m := Message{
		TenantID: cu.TenantID, ID: newID(), ConversationID: convID,
		Direction: Inbound, SenderKind: SenderContact, SenderID: cu.Contact.ID,
		Type: typ, Body: body, ClientMsgID: in.ClientMsgID, ChannelMsgID: in.ChannelMsgID,
		Status: StatusReceived, CreatedAt: now,
	}
	// The hot path: the conversation has an open session (one statement on
	// PostgreSQL, no session row written; idle timers read the
	// conversation's last contact when they fire).
	stored, s, err := e.store.MessageAppendOpen(ctx, m)
	created := false
	if err == nil {
		m = stored
	} else if errs.Is(err, errs.NotFound) && in.OnlyOpen {
		return Message{}, false, nil
	} else if errs.Is(err, errs.NotFound) {
		m, s, err = e.openSession(ctx, cu, m)
		created = err == nil
		if errs.Is(err, errs.Conflict) && in.attempts < 3 {
			// Another message opened a session first: join it.
			in.attempts++
			return e.Receive(ctx, cu, in)
		}
	}
	if errs.Is(err, errs.Duplicate) && (in.ClientMsgID != "" || in.ChannelMsgID != "") {
		var orig Message
		var gerr error
		if in.ClientMsgID != "" {
			orig, gerr = e.store.MessageGetByClientID(ctx, cu.TenantID, convID, in.ClientMsgID)
		} else {
			orig, gerr = e.store.MessageGetByChannelID(ctx, cu.TenantID, convID, in.ChannelMsgID)
		}
		if gerr != nil {
			return Message{}, false, errs.Wrap(op, gerr)
		}
		if in.Stored != nil {
			in.Stored(orig, true)
		}
		return orig, true, nil
	}
	if err != nil {
		return Message{}, false, errs.Wrap(op, err)
	}
	if in.Stored != nil {
		in.Stored(m, false)
	}
	e.notify.MessageCreated(ctx, s, m)
	if created {
		e.notify.SessionChanged(ctx, s, EvCreated, "")
		if conv, err := e.store.ConversationGet(ctx, cu.TenantID, convID); err == nil && e.returnToLastAgent(ctx, s, conv) {
			return m, false, nil
		}
		if g := e.bot.Greeting(ctx, s); g != "" {
			e.post(ctx, s, cu.ExternalID, SenderBot, TextBody{Text: g})
		}
	}
	botText := in.BotText
	if botText == "" {
		botText = in.Text
	}
	if s.State == StateBot && strings.TrimSpace(botText) != "" {
		e.botTurn(ctx, s, cu.ExternalID, botText, created)
	}
	return m, false, nil
}

// MaxBodyLen caps the stored JSON body of a non-text message.
const MaxBodyLen = 64 << 10

// MaxChannelMsgIDLen caps a provider's message id.
const MaxChannelMsgIDLen = 256

// validateIncoming checks a customer's message and returns its type and
// stored body.
func validateIncoming(op string, in Incoming) (MessageType, json.RawMessage, error) {
	if err := ValidateClientMsgID(op, in.ClientMsgID); err != nil {
		return "", nil, err
	}
	if len(in.ChannelMsgID) > MaxChannelMsgIDLen {
		return "", nil, errs.E(op, errs.Invalid, "channel message id longer than %d bytes", MaxChannelMsgIDLen)
	}
	typ := in.Type
	if typ == "" {
		typ = TypeText
	}
	if typ == TypeText && in.Body == nil {
		if err := ValidateText(op, in.Text); err != nil {
			return "", nil, err
		}
		return typ, textBody(in.Text), nil
	}
	if !utf8.ValidString(in.Text) {
		return "", nil, errs.E(op, errs.Invalid, "text must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(in.Text); n > MaxTextLen {
		return "", nil, errs.E(op, errs.TooLarge, "text has %d characters, at most %d allowed", n, MaxTextLen)
	}
	body := in.Body
	if body == nil {
		body = textBody(in.Text)
	}
	if len(body) > MaxBodyLen {
		return "", nil, errs.E(op, errs.TooLarge, "message body has %d bytes, at most %d allowed", len(body), MaxBodyLen)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return "", nil, errs.E(op, errs.Invalid, "message body must be a JSON object: %v", err)
	}
	return typ, body, nil
}

func ptr[T any](v T) *T { return &v }

func (e *Engine) event(s Session, ev Event, from, to State, actor string, data map[string]any) EventRecord {
	var raw json.RawMessage
	if data != nil {
		raw, _ = json.Marshal(data)
	}
	return EventRecord{
		TenantID: s.TenantID, SessionID: s.ID, Type: ev, FromState: from, ToState: to,
		AgentID: s.AgentID, GroupID: s.GroupID, Actor: actor, Data: raw, At: e.now(),
	}
}

// LiveChannel reports whether a channel delivers our messages over the
// customer's own live connection (web chat) rather than through a
// provider's API fed by the durable outbox.
func LiveChannel(channel string) bool { return channel == "" || channel == "webchat" }

// outbound prepares an outbound message of s for its channel: on a provider
// channel it is queued in the outbox in the same transaction as the message
// (DESIGN D8) and starts as queued; on a live channel it is sent on commit.
func outbound(s Session, m *Message) {
	if LiveChannel(s.Channel) {
		m.Status = StatusSent
		return
	}
	m.Status = StatusQueued
	m.Deliver = &Delivery{AccountID: s.AccountID, Channel: s.Channel}
}

// queued wakes the outbox after m was committed with a delivery.
func (e *Engine) queued(m Message) {
	if m.Deliver != nil && e.OnQueued != nil {
		e.OnQueued()
	}
}

// DeliveryUpdate records what the outbox or a provider's status callback
// said about an outbound message (sent with its provider id, delivered,
// read, failed with the reason) and tells the agent's console. Updates that
// would move the status backwards are ignored.
func (e *Engine) DeliveryUpdate(ctx context.Context, tenantID, messageID string, st DeliveryStatus, errText, channelMsgID string) error {
	const op = "delivery update"
	changed, err := e.store.MessageAdvanceStatus(ctx, tenantID, messageID, st, errText, channelMsgID)
	if err != nil || !changed {
		return errs.Wrap(op, err)
	}
	m, err := e.store.MessageGet(ctx, tenantID, messageID)
	if err != nil {
		return errs.Wrap(op, err)
	}
	s, err := e.store.SessionGet(ctx, tenantID, m.SessionID)
	if err != nil {
		return errs.Wrap(op, err)
	}
	e.notify.MessageUpdated(ctx, s, m)
	return nil
}

// say stores and publishes a bot or system message to the customer.
func (e *Engine) say(ctx context.Context, s Session, kind SenderKind, text string) {
	e.post(ctx, s, "", kind, TextBody{Text: text})
}

// post stores and publishes an outbound message of the bot or the system;
// to is the recipient's id on the account when known ("": the store picks
// the identity that wrote last).
func (e *Engine) post(ctx context.Context, s Session, to string, kind SenderKind, body TextBody) {
	raw, _ := json.Marshal(body)
	m := Message{
		TenantID: s.TenantID, ID: newID(), ConversationID: s.ConversationID, SessionID: s.ID,
		Direction: Outbound, SenderKind: kind, Type: TypeText, Body: raw, CreatedAt: e.now(),
	}
	outbound(s, &m)
	if m.Deliver != nil {
		m.Deliver.To = to
	}
	m, err := e.store.MessageAppend(ctx, m)
	if err != nil {
		e.log.Error("store "+string(kind)+" message", "session", s.ID, "err", err)
		return
	}
	e.queued(m)
	e.notify.MessageCreated(ctx, s, m)
}

// openSession starts a new bot session for a conversation that has no open
// one, with m as its first message. It returns errs.Conflict when another
// message opened one first.
func (e *Engine) openSession(ctx context.Context, cu Customer, m Message) (Message, Session, error) {
	prev := ""
	if cur, err := e.store.SessionCurrent(ctx, cu.TenantID, m.ConversationID); err == nil {
		if cur.State.Open() {
			// Opened since our append looked: append to it instead.
			return Message{}, Session{}, errs.E("open session", errs.Conflict, "the conversation has an open session")
		}
		prev = cur.ID
	} else if !errs.Is(err, errs.NotFound) {
		return Message{}, Session{}, err
	}
	now := m.CreatedAt
	s := Session{
		TenantID: cu.TenantID, ID: newID(), ConversationID: m.ConversationID, ContactID: cu.Contact.ID,
		AccountID: cu.AccountID, Channel: cu.Channel, State: StateBot, Priority: cu.Contact.VIPLevel,
		Cost:    e.dir.SessionCost(ctx, cu.TenantID, cu.AccountID),
		Version: 1, ReasonCodes: []string{}, CreatedAt: now, LastContactAt: now,
		DeadlineAt: ptr(now.Add(e.opts.BotIdleTimeout)),
	}
	err := e.store.InTx(ctx, func(tx Store) error {
		if err := tx.SessionInsert(ctx, s); err != nil {
			return err
		}
		if err := tx.EventInsert(ctx, e.event(s, EvCreated, "", StateBot, "contact", nil)); err != nil {
			return err
		}
		if err := tx.ConversationOpenSession(ctx, s.TenantID, m.ConversationID, prev, s.ID); err != nil {
			return err
		}
		m.SessionID = s.ID
		var err error
		m, err = tx.MessageAppend(ctx, m)
		return err
	})
	return m, s, err
}

// botTurn lets the bot answer one message, sending the answer to to (the
// customer's id on the account). The first message of a session has been
// answered by the greeting already: unless the bot understood it, it is
// neither answered again nor counted as a miss.
func (e *Engine) botTurn(ctx context.Context, s Session, to, text string, first bool) {
	r := e.bot.Reply(ctx, s, text)
	if first && !r.Matched && !r.Handoff {
		return
	}
	if r.Text != "" {
		e.post(ctx, s, to, SenderBot, TextBody{Text: r.Text, Choices: r.Choices, Bot: r.Note})
	}
	handoff := r.Handoff
	if !handoff && r.Matched && s.BotMisses == 0 && s.BotOutcome == botAnswered {
		// The usual answered turn changes nothing: s was read with the
		// message just stored, and only the customer's own turns write
		// these fields. Provider messages of one customer are taken in one
		// at a time; two web-chat tabs writing at once may leave a miss
		// counted that a concurrent answer would have reset, which errs
		// toward handing off to a person.
	} else if !handoff {
		// Misses count in a row: an answer resets the count, and the last
		// turn's outcome decides containment should the session end here.
		s2, err := e.transition(ctx, s.TenantID, s.ID, "", func(cur *Session) (Event, error) {
			if cur.State != StateBot {
				return "", errStop
			}
			misses, outcome := 0, botAnswered
			if !r.Matched {
				misses, outcome = cur.BotMisses+1, botMissed
			}
			if cur.BotMisses == misses && cur.BotOutcome == outcome {
				return "", errStop
			}
			cur.BotMisses, cur.BotOutcome = misses, outcome
			return "", nil
		})
		if err == nil && !r.Matched && e.opts.MaxBotMisses > 0 && s2.BotMisses >= e.opts.MaxBotMisses {
			handoff = true
		}
	}
	if handoff {
		if _, err := e.Handoff(ctx, s.TenantID, s.ID, r.GroupID, "bot"); err != nil && !errs.Is(err, errs.Conflict) {
			e.log.Error("handoff", "session", s.ID, "err", err)
		}
	}
}

// errStop makes a transition function end without writing.
var errStop = errors.New("no change")

// transition loads a session, lets fn change it and commits the change with
// optimistic versioning, retrying a few times when another writer got there
// first. fn returns the event to record ("" for a change without event) or
// an error; illegal transitions must be reported by fn as errs.Conflict.
func (e *Engine) transition(ctx context.Context, tenantID, id, actor string, fn func(s *Session) (Event, error), extra ...func(tx Store, s Session) error) (Session, error) {
	for attempt := 0; ; attempt++ {
		cur, err := e.store.SessionGet(ctx, tenantID, id)
		if err != nil {
			return Session{}, err
		}
		prev := cur
		ev, err := fn(&cur)
		if err == errStop {
			return prev, nil
		}
		if err != nil {
			return prev, err
		}
		cur.Version = prev.Version + 1
		err = e.store.InTx(ctx, func(tx Store) error {
			if err := tx.SessionUpdate(ctx, cur, prev.Version); err != nil {
				return err
			}
			if ev != "" {
				rec := e.event(cur, ev, prev.State, cur.State, actor, nil)
				if err := tx.EventInsert(ctx, rec); err != nil {
					return err
				}
			}
			for _, f := range extra {
				if err := f(tx, cur); err != nil {
					return err
				}
			}
			return nil
		})
		if errs.Is(err, errs.Conflict) && attempt < 4 {
			continue
		}
		if err != nil {
			return prev, err
		}
		return cur, nil
	}
}

// illegal builds the 409 for a transition not allowed from s's state.
func illegal(op string, s Session, ev Event) error {
	return errs.E(op, errs.Conflict, "session is %s; %s is not allowed", s.State, ev).
		With("state", s.State).With("version", s.Version)
}

func apply(op string, s *Session, ev Event) error {
	to, ok := Next(s.State, ev)
	if !ok {
		return illegal(op, *s, ev)
	}
	s.State = to
	s.BotOutcome = botOutcome(s.BotOutcome, ev)
	return nil
}

// botOutcome is the containment outcome after ev: a handoff means the bot
// handed off; a session closed in the bot state was resolved by the bot when
// its last turn answered, else abandoned.
func botOutcome(cur BotOutcome, ev Event) BotOutcome {
	switch ev {
	case EvHandoff:
		return BotHandedOff
	case EvBotResolved:
		if cur == botAnswered {
			return BotResolved
		}
		return BotAbandoned
	}
	return cur
}
