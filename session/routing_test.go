package session_test

import (
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/session"
)

// customer opens a second conversation for the fixture's tenant.
func (f *fixture) customer(t *testing.T, name string) session.Customer {
	t.Helper()
	cu, err := f.eng.ResolveCustomer(t.Context(), "t1", "acct", "webchat", name, name)
	if err != nil {
		t.Fatal(err)
	}
	return cu
}

// handoff makes cu ask for a person and returns their session.
func (f *fixture) handoff(t *testing.T, cu session.Customer) session.Session {
	t.Helper()
	for _, text := range []string{"hello", "agent please"} {
		if _, _, err := f.eng.Receive(t.Context(), cu, session.Incoming{Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	s, ok, err := f.eng.CurrentSession(t.Context(), "t1", cu.Conversation.ID)
	if err != nil || !ok {
		t.Fatalf("current session: %v %v", ok, err)
	}
	return s
}

func (f *fixture) sweep(t *testing.T) {
	t.Helper()
	if _, err := f.eng.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) events(t *testing.T, id string) []session.Event {
	t.Helper()
	evs, err := f.store.EventList(t.Context(), "t1", id)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]session.Event, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

func wantState(t *testing.T, s session.Session, st session.State, agent, group string) {
	t.Helper()
	if s.State != st || s.AgentID != agent || s.GroupID != group {
		t.Fatalf("session %s with agent %q in group %q, want %s with %q in %q", s.State, s.AgentID, s.GroupID, st, agent, group)
	}
}

func TestOfferExpiresToNextAgentAndMissesSetNotReady(t *testing.T) {
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t, kind, "embedded")
			ctx := t.Context()
			f.dir.setGroup(acd.Group{TenantID: "t1", ID: "g", Strategy: acd.LongestIdle, OfferTimeout: 30 * time.Second, MaxMissedOffers: 1})
			if err := f.eng.AgentReady(ctx, "t1", "a1"); err != nil {
				t.Fatal(err)
			}
			f.clk.Advance(time.Second)
			if err := f.eng.AgentReady(ctx, "t1", "a2"); err != nil {
				t.Fatal(err)
			}
			s := f.handoff(t, f.cu)
			s = f.get(t, s.ID)
			wantState(t, s, session.StateOffered, "a1", "g") // idle longest
			f.clk.Advance(31 * time.Second)
			f.sweep(t)
			s = f.get(t, s.ID)
			wantState(t, s, session.StateOffered, "a2", "g")
			if len(f.dir.notReady) != 1 || f.dir.notReady[0] != "a1" {
				t.Fatalf("agents set not ready: %v, want [a1]", f.dir.notReady)
			}
			if _, err := f.eng.Accept(ctx, "t1", s.ID, session.Actor{AgentID: "a1"}); err == nil {
				t.Fatal("a1 accepted a2's offer")
			}
			if s, err := f.eng.Accept(ctx, "t1", s.ID, session.Actor{AgentID: "a2"}); err != nil {
				t.Fatal(err)
			} else {
				wantState(t, s, session.StateActive, "a2", "g")
			}
			got := f.events(t, s.ID)
			want := []session.Event{session.EvCreated, session.EvHandoff, session.EvOffered, session.EvOfferExpired, session.EvOffered, session.EvAccepted}
			if len(got) != len(want) {
				t.Fatalf("events %v, want %v", got, want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("events %v, want %v", got, want)
				}
			}
			// a1 is out of routing: a new session goes to a2 (capacity 2).
			s2 := f.handoff(t, f.customer(t, "v2"))
			if s2 = f.get(t, s2.ID); s2.AgentID != "a2" {
				t.Fatalf("second session offered to %q, want a2 (a1 is not ready)", s2.AgentID)
			}
		})
	}
}

func TestOverflowToGroupAfterMaxWait(t *testing.T) {
	f := newFixture(t, "sqlite", "embedded")
	f.dir.setGroup(acd.Group{TenantID: "t1", ID: "g", MaxWait: time.Minute, Overflow: acd.OverflowGroup, OverflowGroup: "g2"})
	s := f.handoff(t, f.cu)
	wantState(t, f.get(t, s.ID), session.StateQueued, "", "g")
	f.clk.Advance(59 * time.Second)
	f.sweep(t)
	wantState(t, f.get(t, s.ID), session.StateQueued, "", "g")
	f.clk.Advance(2 * time.Second)
	f.sweep(t)
	wantState(t, f.get(t, s.ID), session.StateQueued, "", "g2")
	if pos, _, err := f.q.Position(t.Context(), "t1", "g2", s.ID); err != nil || pos != 1 {
		t.Fatalf("position in g2 = %d, %v; want 1", pos, err)
	}
	if pos, _, _ := f.q.Position(t.Context(), "t1", "g", s.ID); pos != 0 {
		t.Fatalf("still waiting in g at %d", pos)
	}
}

func TestOverflowToLeaveAMessage(t *testing.T) {
	f := newFixture(t, "sqlite", "embedded")
	f.dir.setGroup(acd.Group{TenantID: "t1", ID: "g", MaxWait: time.Minute, Overflow: acd.OverflowMessage})
	s := f.handoff(t, f.cu)
	f.clk.Advance(61 * time.Second)
	f.sweep(t)
	got := f.get(t, s.ID)
	if got.State != session.StateClosed || got.CloseReason != "left_message" {
		t.Fatalf("after max wait: %s (%s), want closed (left_message)", got.State, got.CloseReason)
	}
	if n, _ := f.q.Length(t.Context(), "t1", "g"); n != 0 {
		t.Fatalf("queue length %d after leaving", n)
	}
}

func TestHandoffOffHoursAndQueueFullStayWithBot(t *testing.T) {
	f := newFixture(t, "sqlite", "embedded")
	closed, err := acd.ParseHours(`{"time_zone":"UTC","weekly":{"sat":[{"start":"09:00","end":"17:00"}]}}`)
	if err != nil {
		t.Fatal(err)
	}
	// The fixture's clock is Saturday 2026-11-21 09:00 UTC: open. Move it
	// to the evening: closed until next Saturday.
	f.clk.Advance(9 * time.Hour)
	f.dir.setGroup(acd.Group{TenantID: "t1", ID: "g", Hours: closed})
	s := f.handoff(t, f.cu)
	wantState(t, f.get(t, s.ID), session.StateBot, "", "g")
	if ev := f.events(t, s.ID); ev[len(ev)-1] != session.EvHandoffRefused {
		t.Fatalf("events %v, want handoff_refused last", ev)
	}
	msgs, err := f.store.MessageListBySession(t.Context(), "t1", s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if last := string(msgs[len(msgs)-1].Body); !contains(last, "closed") || !contains(last, "Sat 28 Nov 09:00") {
		t.Fatalf("customer told %s, want the closed notice with the next opening", last)
	}

	// Open again, with a queue of one: the second customer is refused.
	f.dir.setGroup(acd.Group{TenantID: "t1", ID: "g", MaxQueue: 1})
	if _, err := f.eng.Handoff(t.Context(), "t1", s.ID, "", "bot"); err != nil {
		t.Fatal(err)
	}
	wantState(t, f.get(t, s.ID), session.StateQueued, "", "g")
	s2 := f.handoff(t, f.customer(t, "v2"))
	wantState(t, f.get(t, s2.ID), session.StateBot, "", "g")
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub)))
}
