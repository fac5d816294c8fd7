package session_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/acd/acdredis"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
	"github.com/switchboard-acd/switchboard/session"
	"github.com/switchboard-acd/switchboard/session/sessionsql"
)

// dir is a directory of two groups "g" and "g2" (settings changeable by
// tests) and agents a1 and a2 serving g.
type dir struct {
	mu       sync.Mutex
	groups   map[string]acd.Group
	notReady []string // agents routing set not ready, in order
}

func newDir() *dir {
	return &dir{groups: map[string]acd.Group{
		"g":  {TenantID: "t1", ID: "g", Strategy: acd.LongestIdle},
		"g2": {TenantID: "t1", ID: "g2", Strategy: acd.LongestIdle},
	}}
}

func (d *dir) RoutingAgent(_ context.Context, t, id string) (session.RoutingAgent, error) {
	if id != "a1" && id != "a2" {
		return session.RoutingAgent{}, errs.E("dir", errs.NotFound, "no agent")
	}
	return session.RoutingAgent{Agent: acd.Agent{TenantID: t, ID: id, Groups: []string{"g"}, MaxSessions: 2}, Ready: true, Online: true}, nil
}
func (d *dir) AgentNotReady(_ context.Context, _, id, _ string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.notReady = append(d.notReady, id)
	return nil
}
func (d *dir) DefaultGroup(context.Context, string, string) (string, error) { return "g", nil }
func (d *dir) SessionCost(context.Context, string, string) int              { return 1 }
func (d *dir) Group(_ context.Context, _, id string) (acd.Group, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	g, ok := d.groups[id]
	if !ok {
		return acd.Group{}, errs.E("dir", errs.NotFound, "no group %s", id)
	}
	return g, nil
}
func (d *dir) setGroup(g acd.Group) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.groups[g.ID] = g
}
func (d *dir) GroupExists(_ context.Context, _, g string) (bool, error) {
	return g == "g" || g == "g2", nil
}
func (d *dir) ReasonCheck(context.Context, string, []string) (int, error) { return 1, nil }
func (d *dir) AgentName(context.Context, string, string) string           { return "Agent" }

// events records what the engine announced.
type events struct {
	mu  sync.Mutex
	evs []session.Event
}

func (e *events) SessionChanged(_ context.Context, _ session.Session, ev session.Event, _ string) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
}
func (e *events) SessionAssigned(context.Context, session.Session, []session.Message) {}
func (e *events) MessageCreated(context.Context, session.Session, session.Message)    {}
func (e *events) MessageUpdated(context.Context, session.Session, session.Message)    {}
func (e *events) Typing(context.Context, session.Session, session.SenderKind, bool)   {}
func (e *events) Read(context.Context, session.Session, session.SenderKind, int64)    {}

type fixture struct {
	db    *db.DB
	dir   *dir
	q     *acdredis.Queue
	eng   *session.Engine
	clk   *clock.Fake
	store session.Store
	cu    session.Customer
}

func newFixture(t *testing.T, dbKind, redisKind string) *fixture {
	d := testenv.DB(t, dbKind)
	if _, err := d.ExecContext(t.Context(), d.Rebind(`INSERT INTO tenants (id, name, settings, created_at) VALUES (?, ?, ?, ?)`), "t1", "T", "{}", time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	store := sessionsql.New(d)
	clk := clock.NewFake(time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
	q := acdredis.New(testenv.Redis(t, redisKind))
	q.Clock = clk
	dr := newDir()
	eng := session.NewEngine(store, q, dr, handoffBot{}, &events{}, clk, session.Options{
		IdleTimeout: 5 * time.Minute, WrapupTimeout: time.Minute, ReopenWindow: 10 * time.Minute,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	cu, err := eng.ResolveCustomer(t.Context(), "t1", "acct", "webchat", "visitor-1", "V")
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{db: d, dir: dr, q: q, eng: eng, clk: clk, store: store, cu: cu}
}

func (f *fixture) say(t *testing.T, cid, text string) session.Message {
	t.Helper()
	m, _, err := f.eng.Receive(t.Context(), f.cu, session.Incoming{ClientMsgID: cid, Text: text})
	if err != nil {
		t.Fatalf("receive %q: %v", text, err)
	}
	return m
}

func (f *fixture) get(t *testing.T, id string) session.Session {
	t.Helper()
	s, err := f.store.SessionGet(t.Context(), "t1", id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLifecycleTimersAndHandBack(t *testing.T) {
	for _, kind := range testenv.DBKinds {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t, kind, "embedded")
			ctx := t.Context()
			m := f.say(t, "c1", "hi")
			if s := f.get(t, m.SessionID); s.State != session.StateBot {
				t.Fatalf("new session state %s, want bot", s.State)
			}
			f.say(t, "c2", "agent please")
			if s := f.get(t, m.SessionID); s.State != session.StateQueued || s.GroupID != "g" {
				t.Fatalf("after handoff: %s in %q, want queued in g", s.State, s.GroupID)
			}
			// Nobody ready: it waits. a1 gets ready and receives it.
			if err := f.eng.AgentReady(ctx, "t1", "a1"); err != nil {
				t.Fatal(err)
			}
			s := f.get(t, m.SessionID)
			if s.State != session.StateActive || s.AgentID != "a1" {
				t.Fatalf("after ready: %s with %q, want active with a1", s.State, s.AgentID)
			}
			// a1 goes offline: the session goes back to the queue, then to a2.
			if err := f.eng.AgentGone(ctx, "t1", "a1"); err != nil {
				t.Fatal(err)
			}
			if s := f.get(t, m.SessionID); s.State != session.StateQueued || s.AgentID != "" {
				t.Fatalf("after agent gone: %s with %q, want queued", s.State, s.AgentID)
			}
			if err := f.eng.AgentReady(ctx, "t1", "a2"); err != nil {
				t.Fatal(err)
			}
			if s := f.get(t, m.SessionID); s.AgentID != "a2" {
				t.Fatalf("requeued session went to %q, want a2", s.AgentID)
			}
			// The customer writes at 4 minutes: the idle timer restarts.
			f.clk.Advance(4 * time.Minute)
			f.say(t, "c3", "still there?")
			f.clk.Advance(2 * time.Minute)
			if _, err := f.eng.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			if s := f.get(t, m.SessionID); s.State != session.StateActive {
				t.Fatalf("idle timer fired early: %s", s.State)
			}
			f.clk.Advance(4 * time.Minute)
			if _, err := f.eng.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			if s := f.get(t, m.SessionID); s.State != session.StateWrapup || s.CloseReason != "customer_idle" {
				t.Fatalf("after idle timeout: %s (%s), want wrapup", s.State, s.CloseReason)
			}
			// Wrap-up limit closes it.
			f.clk.Advance(2 * time.Minute)
			if _, err := f.eng.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			if s := f.get(t, m.SessionID); s.State != session.StateClosed {
				t.Fatalf("after wrap-up timeout: %s, want closed", s.State)
			}
			// Within the reopen window the customer goes straight back to a2.
			f.clk.Advance(time.Minute)
			m2 := f.say(t, "c4", "me again")
			if s := f.get(t, m2.SessionID); s.State != session.StateActive || s.AgentID != "a2" || s.ID == m.SessionID {
				t.Fatalf("return within window: %s with %q, want a new active session with a2", s.State, s.AgentID)
			}
			var types []string
			evs, err := f.store.EventList(ctx, "t1", m.SessionID)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				types = append(types, string(e.Type))
			}
			want := "created handoff assigned requeued assigned customer_idle wrapup_timeout"
			if got := join(types); got != want {
				t.Fatalf("events %q, want %q", got, want)
			}
		})
	}
}

func TestIllegalTransitionsAndOwnership(t *testing.T) {
	f := newFixture(t, "sqlite", "embedded")
	ctx := t.Context()
	m := f.say(t, "c1", "agent")
	if err := f.eng.AgentReady(ctx, "t1", "a1"); err != nil {
		t.Fatal(err)
	}
	a2 := session.Actor{AgentID: "a2"}
	if _, _, err := f.eng.Reply(ctx, "t1", m.SessionID, a2, "hi", ""); !errs.Is(err, errs.Forbidden) {
		t.Fatalf("reply by another agent: %v, want forbidden", err)
	}
	a1 := session.Actor{AgentID: "a1"}
	if _, err := f.eng.Wrapup(ctx, "t1", m.SessionID, a1, nil); !errs.Is(err, errs.Conflict) {
		t.Fatalf("wrap-up of an active session: %v, want conflict", err)
	}
	if _, err := f.eng.Transfer(ctx, "t1", m.SessionID, a1, "", "g2"); err != nil {
		t.Fatalf("transfer to group: %v", err)
	}
	if s := f.get(t, m.SessionID); s.State != session.StateQueued || s.GroupID != "g2" {
		t.Fatalf("after transfer: %s in %s", s.State, s.GroupID)
	}
	if _, err := f.eng.Close(ctx, "t1", m.SessionID, session.Actor{AgentID: "a1", Supervisor: true}); !errs.Is(err, errs.Conflict) {
		t.Fatalf("close of a queued session: %v, want conflict", err)
	}
	if err := f.eng.CustomerLeft(ctx, f.cu); err != nil {
		t.Fatal(err)
	}
	if s := f.get(t, m.SessionID); s.State != session.StateClosed || s.CloseReason != "abandoned" {
		t.Fatalf("customer left the queue: %s (%s), want closed/abandoned", s.State, s.CloseReason)
	}
}

func join(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += " "
		}
		out += s
	}
	return out
}

// TestConcurrentFirstMessagesOpenOneSession: two tabs writing at once must
// not open two sessions for one conversation.
func TestConcurrentFirstMessagesOpenOneSession(t *testing.T) {
	for _, kind := range testenv.DBKinds {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t, kind, "embedded")
			var wg sync.WaitGroup
			ids := make([]string, 8)
			for i := range ids {
				wg.Add(1)
				go func() {
					defer wg.Done()
					m, _, err := f.eng.Receive(t.Context(), f.cu, session.Incoming{ClientMsgID: "c" + string(rune('a'+i)), Text: "hi"})
					if err != nil {
						t.Errorf("receive: %v", err)
						return
					}
					ids[i] = m.SessionID
				}()
			}
			wg.Wait()
			for _, id := range ids {
				if id != ids[0] {
					t.Fatalf("messages landed in different sessions: %v", ids)
				}
			}
		})
	}
}

// handoffBot is the bot of the engine tests: a message with the word
// "agent" asks for a person, "hello" is understood, anything else is a
// miss.
type handoffBot struct{}

func (handoffBot) Greeting(context.Context, session.Session) string {
	return "Hi! I'm the virtual assistant."
}

func (handoffBot) Reply(_ context.Context, _ session.Session, text string) session.BotReply {
	t := strings.ToLower(strings.TrimSpace(text))
	if slices.Contains(strings.Fields(t), "agent") {
		return session.BotReply{Matched: true, Handoff: true}
	}
	switch t {
	case "hello":
		return session.BotReply{Text: "Hello!", Matched: true}
	}
	return session.BotReply{Text: "Sorry, I didn't catch that."}
}
