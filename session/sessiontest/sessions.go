package sessiontest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/session"
)

func testSessionInsertGet(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	full := newSession(conv, "s-full")
	full.State = session.StateWrapup
	full.GroupID, full.AgentID = "g1", "a1"
	full.Priority, full.BotMisses, full.Version = 7, 2, 5
	full.BotOutcome = session.BotHandedOff
	full.CloseReason = "agent"
	full.ReasonCodes, full.ReasonTreeVersion = []string{"billing", "billing.refund"}, 3
	full.CreatedAt = at(0)
	full.QueuedAt, full.AssignedAt = ptr(at(time.Minute)), ptr(at(2*time.Minute))
	full.WrapupAt, full.ClosedAt = ptr(at(3*time.Minute)), ptr(at(4*time.Minute))
	full.LastContactAt, full.DeadlineAt = at(90*time.Second), ptr(at(time.Hour))

	bare := newSession(conv, "s-bare")
	bare.ReasonCodes = nil // stored and returned as []

	tests := []struct {
		name string
		in   session.Session
		want session.Session
	}{
		{"all fields", full, full},
		{"optional fields empty", bare, func() session.Session { s := bare; s.ReasonCodes = []string{}; return s }()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := f.s.SessionInsert(f.ctx, tc.in); err != nil {
				t.Fatalf("SessionInsert: %v", err)
			}
			got, err := f.s.SessionGet(f.ctx, TenantA, tc.in.ID)
			if err != nil {
				t.Fatalf("SessionGet: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, cmpOpts); diff != "" {
				t.Errorf("SessionGet (-want +got):\n%s", diff)
			}
			if got.ReasonCodes == nil {
				t.Error("ReasonCodes is nil, want []")
			}
			checkUTC(t, got)
		})
	}
	wantCode(t, "SessionInsert twice", f.s.SessionInsert(f.ctx, bare), errs.Duplicate)
	_, err := f.s.SessionGet(f.ctx, TenantA, "no-such-session")
	wantCode(t, "SessionGet unknown", err, errs.NotFound)
}

func testSessionUpdate(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	orig := f.insertSession(conv, "s1", nil)

	v2 := orig
	v2.Version = 2
	v2.State, v2.GroupID, v2.AgentID = session.StateActive, "g1", "a1"
	v2.Priority, v2.BotMisses = 4, 1
	v2.BotOutcome = session.BotResolved
	v2.QueuedAt, v2.AssignedAt = ptr(at(time.Minute)), ptr(at(2*time.Minute))
	v2.LastContactAt, v2.DeadlineAt = at(2*time.Minute), ptr(at(7*time.Minute))
	if err := f.s.SessionUpdate(f.ctx, v2, 1); err != nil {
		t.Fatalf("SessionUpdate 1→2: %v", err)
	}

	v3 := v2
	v3.Version = 3
	v3.State, v3.AgentID, v3.DeadlineAt = session.StateClosed, "", nil
	v3.CloseReason, v3.ReasonCodes, v3.ReasonTreeVersion = "wrapped_up", []string{"sales"}, 2
	v3.WrapupAt, v3.ClosedAt = ptr(at(10*time.Minute)), ptr(at(11*time.Minute))

	stale := v2
	stale.Version = 3
	stale.State = session.StateQueued

	tests := []struct {
		name        string
		s           session.Session
		prev        int64
		wantCode    errs.Code
		wantDetails map[string]any
		wantStored  session.Session
	}{
		{"stale version", stale, 1, errs.Conflict, map[string]any{"state": session.StateActive, "version": int64(2)}, v2},
		{"ahead of stored", stale, 5, errs.Conflict, map[string]any{"state": session.StateActive, "version": int64(2)}, v2},
		{"current version", v3, 2, "", nil, v3},
		{"replay of the same update", v3, 2, errs.Conflict, map[string]any{"state": session.StateClosed, "version": int64(3)}, v3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := f.s.SessionUpdate(f.ctx, tc.s, tc.prev)
			wantCode(t, "SessionUpdate", err, tc.wantCode)
			if diff := cmp.Diff(tc.wantDetails, errs.DetailsOf(err)); diff != "" {
				t.Errorf("error details (-want +got):\n%s", diff)
			}
			got, err := f.s.SessionGet(f.ctx, TenantA, orig.ID)
			if err != nil {
				t.Fatalf("SessionGet: %v", err)
			}
			if diff := cmp.Diff(tc.wantStored, got, cmpOpts); diff != "" {
				t.Errorf("stored session (-want +got):\n%s", diff)
			}
			checkUTC(t, got)
		})
	}

	unknown := v3
	unknown.ID = "no-such-session"
	wantCode(t, "SessionUpdate unknown", f.s.SessionUpdate(f.ctx, unknown, 3), errs.NotFound)
}

func testSessionTouch(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	s := f.insertSession(conv, "s1", func(s *session.Session) { s.Version = 4 })

	steps := []struct {
		name     string
		last     time.Time
		deadline *time.Time
	}{
		{"set deadline", at(time.Minute), ptr(at(6 * time.Minute))},
		{"move deadline", at(2 * time.Minute), ptr(at(7 * time.Minute))},
		{"clear deadline", at(3 * time.Minute), nil},
	}
	for _, st := range steps {
		if err := f.s.SessionTouch(f.ctx, TenantA, s.ID, st.last, st.deadline); err != nil {
			t.Fatalf("%s: SessionTouch: %v", st.name, err)
		}
		got, err := f.s.SessionGet(f.ctx, TenantA, s.ID)
		if err != nil {
			t.Fatalf("%s: SessionGet: %v", st.name, err)
		}
		want := s
		want.LastContactAt, want.DeadlineAt = st.last, st.deadline
		if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
			t.Errorf("%s (-want +got):\n%s", st.name, diff)
		}
	}
	wantCode(t, "SessionTouch unknown", f.s.SessionTouch(f.ctx, TenantA, "no-such-session", t0, nil), errs.NotFound)
}

func testSessionList(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	mk := func(id string, age time.Duration, st session.State, group, agent string) session.Session {
		return f.insertSession(conv, id, func(s *session.Session) {
			s.State, s.GroupID, s.AgentID = st, group, agent
			s.CreatedAt = at(-age)
		})
	}
	// Newest first: s1 … s6.
	s1 := mk("s1", 1*time.Minute, session.StateActive, "g1", "a1")
	s2 := mk("s2", 2*time.Minute, session.StateQueued, "g1", "")
	s3 := mk("s3", 3*time.Minute, session.StateActive, "g2", "a2")
	s4 := mk("s4", 4*time.Minute, session.StateClosed, "g1", "a1")
	s5 := mk("s5", 5*time.Minute, session.StateBot, "", "")
	s6 := mk("s6", 6*time.Minute, session.StateWrapup, "g2", "a1")
	other := f.conversation(TenantB, "acc1", "ext1")
	f.insertSession(other, "b1", func(s *session.Session) { s.State, s.AgentID, s.GroupID = session.StateActive, "a1", "g1" })

	tests := []struct {
		name   string
		filter session.SessionFilter
		want   []session.Session
	}{
		{"all", session.SessionFilter{}, []session.Session{s1, s2, s3, s4, s5, s6}},
		{"one state", session.SessionFilter{States: []session.State{session.StateActive}}, []session.Session{s1, s3}},
		{"states", session.SessionFilter{States: []session.State{session.StateQueued, session.StateWrapup, session.StateBot}}, []session.Session{s2, s5, s6}},
		{"agent", session.SessionFilter{AgentID: "a1"}, []session.Session{s1, s4, s6}},
		{"group", session.SessionFilter{GroupID: "g2"}, []session.Session{s3, s6}},
		{"agent and states", session.SessionFilter{AgentID: "a1", States: []session.State{session.StateActive, session.StateWrapup}}, []session.Session{s1, s6}},
		{"group and agent", session.SessionFilter{GroupID: "g1", AgentID: "a1"}, []session.Session{s1, s4}},
		{"limit", session.SessionFilter{Limit: 2}, []session.Session{s1, s2}},
		{"no match", session.SessionFilter{AgentID: "nobody"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.s.SessionList(f.ctx, TenantA, tc.filter)
			if err != nil {
				t.Fatalf("SessionList: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, listOpts); diff != "" {
				t.Errorf("SessionList (-want +got):\n%s", diff)
			}
			checkUTC(t, got)
		})
	}
}

func testSessionListDue(t *testing.T, f *fixture) {
	convA := f.conversation(TenantA, "acc1", "ext1")
	convB := f.conversation(TenantB, "acc1", "ext1")
	now := at(time.Hour)
	mk := func(conv session.Conversation, id string, deadline *time.Time) session.Session {
		return f.insertSession(conv, id, func(s *session.Session) { s.DeadlineAt = deadline })
	}
	a1 := mk(convA, "a1", ptr(now.Add(-3*time.Minute)))
	b1 := mk(convB, "b1", ptr(now.Add(-2*time.Minute)))
	a2 := mk(convA, "a2", ptr(now)) // due exactly now
	mk(convA, "a3", ptr(now.Add(time.Microsecond)))
	mk(convB, "b2", ptr(now.Add(time.Hour)))
	mk(convA, "a4", nil)

	tests := []struct {
		name  string
		limit int
		want  []session.Session
	}{
		{"all due, both tenants, earliest first", 10, []session.Session{a1, b1, a2}},
		{"limit", 2, []session.Session{a1, b1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.s.SessionListDue(f.ctx, now, tc.limit)
			if err != nil {
				t.Fatalf("SessionListDue: %v", err)
			}
			if diff := cmp.Diff(tc.want, got, listOpts); diff != "" {
				t.Errorf("SessionListDue (-want +got):\n%s", diff)
			}
			checkUTC(t, got)
		})
	}
	got, err := f.s.SessionListDue(f.ctx, at(-time.Hour), 10)
	if err != nil {
		t.Fatalf("SessionListDue early: %v", err)
	}
	if len(got) != 0 {
		t.Errorf("SessionListDue before any deadline = %d sessions, want none", len(got))
	}
}

func testSessionCountByState(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	for i, st := range []session.State{
		session.StateBot, session.StateQueued, session.StateQueued, session.StateActive,
		session.StateActive, session.StateActive, session.StateWrapup, session.StateClosed, session.StateClosed,
	} {
		f.insertSession(conv, "s"+string(rune('a'+i)), func(s *session.Session) { s.State = st })
	}
	other := f.conversation(TenantB, "acc1", "ext1")
	f.insertSession(other, "b1", func(s *session.Session) { s.State = session.StateOffered })

	tests := []struct {
		tenant string
		want   map[session.State]int
	}{
		{TenantA, map[session.State]int{session.StateBot: 1, session.StateQueued: 2, session.StateActive: 3, session.StateWrapup: 1}},
		{TenantB, map[session.State]int{session.StateOffered: 1}},
		{"t-none", nil},
	}
	for _, tc := range tests {
		got, err := f.s.SessionCountByState(f.ctx, tc.tenant)
		if err != nil {
			t.Fatalf("SessionCountByState %s: %v", tc.tenant, err)
		}
		if diff := cmp.Diff(tc.want, got, listOpts); diff != "" {
			t.Errorf("SessionCountByState %s (-want +got):\n%s", tc.tenant, diff)
		}
	}
}

func testSessionCountByBotOutcome(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	for i, o := range []session.BotOutcome{
		session.BotResolved, session.BotResolved, session.BotHandedOff, session.BotAbandoned,
		"answered", "", session.BotHandedOff,
	} {
		f.insertSession(conv, "s"+string(rune('a'+i)), func(s *session.Session) {
			s.BotOutcome = o
			s.CreatedAt = at(time.Duration(i) * time.Minute)
		})
	}
	other := f.conversation(TenantB, "acc1", "ext1")
	f.insertSession(other, "b1", func(s *session.Session) { s.BotOutcome = session.BotResolved })

	tests := []struct {
		tenant string
		since  time.Time
		want   map[session.BotOutcome]int
	}{
		{TenantA, at(0), map[session.BotOutcome]int{session.BotResolved: 2, session.BotHandedOff: 2, session.BotAbandoned: 1}},
		{TenantA, at(time.Minute), map[session.BotOutcome]int{session.BotResolved: 1, session.BotHandedOff: 2, session.BotAbandoned: 1}},
		{TenantA, at(time.Hour), nil},
		{TenantB, at(-time.Hour), map[session.BotOutcome]int{session.BotResolved: 1}},
	}
	for _, tc := range tests {
		got, err := f.s.SessionCountByBotOutcome(f.ctx, tc.tenant, tc.since)
		if err != nil {
			t.Fatalf("SessionCountByBotOutcome %s: %v", tc.tenant, err)
		}
		if diff := cmp.Diff(tc.want, got, listOpts); diff != "" {
			t.Errorf("SessionCountByBotOutcome %s since %v (-want +got):\n%s", tc.tenant, tc.since, diff)
		}
	}
}

func testEvents(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	s := f.insertSession(conv, "s1", nil)
	in := []session.EventRecord{
		{TenantID: TenantA, SessionID: s.ID, Type: session.EvCreated, ToState: session.StateBot, Actor: "system", Data: json.RawMessage(`{}`), At: at(0)},
		{TenantID: TenantA, SessionID: s.ID, Type: session.EvHandoff, FromState: session.StateBot, ToState: session.StateQueued, GroupID: "g1", Actor: "bot", Data: json.RawMessage(`{"reason": "asked for human", "misses": 2}`), At: at(time.Minute)},
		// Same timestamp as the next: order is insertion order.
		{TenantID: TenantA, SessionID: s.ID, Type: session.EvAssigned, FromState: session.StateQueued, ToState: session.StateActive, GroupID: "g1", AgentID: "a1", Actor: "acd", Data: json.RawMessage(`{"wait_ms":1500}`), At: at(2 * time.Minute)},
		{TenantID: TenantA, SessionID: s.ID, Type: session.EvAgentClosed, FromState: session.StateActive, ToState: session.StateWrapup, AgentID: "a1", Actor: "agent:a1", Data: json.RawMessage(`{"nested":{"a":[1,2,3]}}`), At: at(2 * time.Minute)},
	}
	for _, e := range in {
		if err := f.s.EventInsert(f.ctx, e); err != nil {
			t.Fatalf("EventInsert %s: %v", e.Type, err)
		}
		// Another session's event in between must not show up.
		if err := f.s.EventInsert(f.ctx, session.EventRecord{TenantID: TenantA, SessionID: "s-other", Type: session.EvCreated, Data: json.RawMessage(`{}`), At: t0}); err != nil {
			t.Fatalf("EventInsert other: %v", err)
		}
	}
	got, err := f.s.EventList(f.ctx, TenantA, s.ID)
	if err != nil {
		t.Fatalf("EventList: %v", err)
	}
	for i := 1; i < len(got); i++ {
		if got[i].ID <= got[i-1].ID {
			t.Errorf("event ids not increasing: %d then %d", got[i-1].ID, got[i].ID)
		}
	}
	if diff := cmp.Diff(in, got, cmpOpts, cmp.FilterPath(func(p cmp.Path) bool {
		return p.Last().String() == ".ID"
	}, cmp.Ignore())); diff != "" {
		t.Errorf("EventList (-want +got):\n%s", diff)
	}
	checkUTC(t, got)

	none, err := f.s.EventList(f.ctx, TenantA, "no-such-session")
	if err != nil {
		t.Fatalf("EventList unknown: %v", err)
	}
	if len(none) != 0 {
		t.Errorf("EventList of an unknown session = %d events, want none", len(none))
	}
}

func testSessionCurrent(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	_, err := f.s.SessionCurrent(f.ctx, TenantA, conv.ID)
	wantCode(t, "SessionCurrent without a session", err, errs.NotFound)
	s := f.insertSession(conv, "s1", nil)
	if err := f.s.ConversationSetCurrent(f.ctx, TenantA, conv.ID, s.ID, "", nil); err != nil {
		t.Fatalf("ConversationSetCurrent: %v", err)
	}
	got, err := f.s.SessionCurrent(f.ctx, TenantA, conv.ID)
	if err != nil {
		t.Fatalf("SessionCurrent: %v", err)
	}
	if diff := cmp.Diff(s, got, cmpOpts); diff != "" {
		t.Errorf("SessionCurrent (-want +got):\n%s", diff)
	}
	_, err = f.s.SessionCurrent(f.ctx, TenantB, conv.ID)
	wantCode(t, "SessionCurrent of another tenant", err, errs.NotFound)
	if err := f.s.ConversationSetCurrent(f.ctx, TenantA, conv.ID, "", "", nil); err != nil {
		t.Fatalf("ConversationSetCurrent: %v", err)
	}
	_, err = f.s.SessionCurrent(f.ctx, TenantA, conv.ID)
	wantCode(t, "SessionCurrent after clearing", err, errs.NotFound)
}

// testSessionListPaging: paging with After visits every session once, in
// order, also when several sessions share a creation time.
func testSessionListPaging(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	want := map[string]bool{}
	for i := 0; i < 7; i++ {
		id := fmt.Sprintf("s%d", i)
		f.insertSession(conv, id, func(s *session.Session) { s.CreatedAt = at(time.Duration(i/3) * time.Minute) })
		want[id] = true
	}
	seen := map[string]bool{}
	filter := session.SessionFilter{Limit: 2}
	var last *session.Session
	for pages := 0; pages < 10; pages++ {
		page, err := f.s.SessionList(f.ctx, TenantA, filter)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page {
			if seen[s.ID] {
				t.Fatalf("session %s listed twice", s.ID)
			}
			if last != nil && (s.CreatedAt.After(last.CreatedAt) || (s.CreatedAt.Equal(last.CreatedAt) && s.ID > last.ID)) {
				t.Fatalf("session %s out of order after %s", s.ID, last.ID)
			}
			seen[s.ID] = true
			last = &s
		}
		if len(page) < filter.Limit {
			break
		}
		filter.After = &page[len(page)-1]
	}
	if len(seen) != len(want) {
		t.Fatalf("paging visited %d sessions, want %d", len(seen), len(want))
	}
}
