package sessiontest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/session"
)

func testMessageAppend(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	in := []session.Message{
		newMessage(conv, "s1", "m1", "hello", "c1"),
		{
			TenantID: TenantA, ID: "m2", ConversationID: conv.ID, SessionID: "s1",
			Direction: session.Outbound, SenderKind: session.SenderAgent, SenderID: "a1",
			Type: session.TypeEvent, Body: json.RawMessage(`{"event": "typing", "extra": {"n": [1, 2]}}`),
			ChannelMsgID: "wamid.1", Status: session.StatusQueued, Error: "", Pinned: true, CreatedAt: at(time.Minute),
		},
		newMessage(conv, "s1", "", "no id given", ""),
	}
	for i, m := range in {
		got, err := f.s.MessageAppend(f.ctx, m)
		if err != nil {
			t.Fatalf("MessageAppend %d: %v", i, err)
		}
		want := m
		want.Seq = int64(i + 1)
		if m.ID == "" {
			if got.ID == "" {
				t.Errorf("MessageAppend %d: no id generated", i)
			}
			want.ID = got.ID
		}
		if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
			t.Errorf("MessageAppend %d (-want +got):\n%s", i, diff)
		}
		stored, err := f.s.MessageGet(f.ctx, TenantA, got.ID)
		if err != nil {
			t.Fatalf("MessageGet %d: %v", i, err)
		}
		if diff := cmp.Diff(want, stored, cmpOpts); diff != "" {
			t.Errorf("MessageGet %d (-want +got):\n%s", i, diff)
		}
		checkUTC(t, stored)
	}

	byClient, err := f.s.MessageGetByClientID(f.ctx, TenantA, conv.ID, "c1")
	if err != nil {
		t.Fatalf("MessageGetByClientID: %v", err)
	}
	if byClient.ID != "m1" || byClient.Text() != "hello" {
		t.Errorf("MessageGetByClientID = %s %q, want m1 \"hello\"", byClient.ID, byClient.Text())
	}
	for _, tc := range []struct{ name, conv, client string }{
		{"unknown client id", conv.ID, "c-none"},
		{"empty client id", conv.ID, ""},
		{"other conversation", "no-such-conversation", "c1"},
	} {
		_, err := f.s.MessageGetByClientID(f.ctx, TenantA, tc.conv, tc.client)
		wantCode(t, "MessageGetByClientID "+tc.name, err, errs.NotFound)
	}
	_, err = f.s.MessageGet(f.ctx, TenantA, "no-such-message")
	wantCode(t, "MessageGet unknown", err, errs.NotFound)

	c, err := f.s.ConversationGet(f.ctx, TenantA, conv.ID)
	if err != nil {
		t.Fatalf("ConversationGet: %v", err)
	}
	if c.LastSeq != 3 {
		t.Errorf("LastSeq = %d, want 3", c.LastSeq)
	}
	_, err = f.s.MessageAppend(f.ctx, newMessage(session.Conversation{TenantID: TenantA, ID: "no-such-conversation"}, "s1", "mx", "x", ""))
	wantCode(t, "MessageAppend to an unknown conversation", err, errs.NotFound)
}

func testMessageAppendConcurrent(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	const writers, each = 20, 5
	var (
		mu   sync.Mutex
		seqs = map[int64]string{} // seq → message id; guarded by mu
	)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			<-start
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				m, err := f.s.MessageAppend(f.ctx, newMessage(conv, "s1", id, id, id))
				if err != nil {
					t.Errorf("MessageAppend %s: %v", id, err)
					return
				}
				mu.Lock()
				if prev, dup := seqs[m.Seq]; dup {
					t.Errorf("seq %d given to %s and %s", m.Seq, prev, id)
				}
				seqs[m.Seq] = id
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()

	const total = writers * each
	for seq := int64(1); seq <= total; seq++ {
		if _, ok := seqs[seq]; !ok {
			t.Errorf("seq %d was never given out", seq)
		}
	}
	c, err := f.s.ConversationGet(f.ctx, TenantA, conv.ID)
	if err != nil {
		t.Fatalf("ConversationGet: %v", err)
	}
	if c.LastSeq != total {
		t.Errorf("LastSeq = %d, want %d", c.LastSeq, total)
	}
	stored, err := f.s.MessageListAfter(f.ctx, TenantA, conv.ID, 0, 1000)
	if err != nil {
		t.Fatalf("MessageListAfter: %v", err)
	}
	if len(stored) != total {
		t.Fatalf("stored %d messages, want %d", len(stored), total)
	}
	for i, m := range stored {
		if m.Seq != int64(i+1) || m.ID != seqs[m.Seq] {
			t.Errorf("stored message %d: seq %d id %s, want seq %d id %s", i, m.Seq, m.ID, i+1, seqs[int64(i+1)])
		}
	}
}

func testMessageAppendDuplicate(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	orig, err := f.s.MessageAppend(f.ctx, newMessage(conv, "s1", "m1", "original", "c1"))
	if err != nil {
		t.Fatalf("MessageAppend: %v", err)
	}
	if _, err := f.s.MessageAppend(f.ctx, newMessage(conv, "s1", "m2", "second", "c2")); err != nil {
		t.Fatalf("MessageAppend: %v", err)
	}

	_, err = f.s.MessageAppend(f.ctx, newMessage(conv, "s1", "m3", "retry", "c1"))
	wantCode(t, "MessageAppend with a used client id", err, errs.Duplicate)
	_, err = f.s.MessageGet(f.ctx, TenantA, "m3")
	wantCode(t, "MessageGet of the refused message", err, errs.NotFound)
	got, err := f.s.MessageGetByClientID(f.ctx, TenantA, conv.ID, "c1")
	if err != nil {
		t.Fatalf("MessageGetByClientID: %v", err)
	}
	if diff := cmp.Diff(orig, got, cmpOpts); diff != "" {
		t.Errorf("original after the duplicate (-want +got):\n%s", diff)
	}
	c, err := f.s.ConversationGet(f.ctx, TenantA, conv.ID)
	if err != nil {
		t.Fatalf("ConversationGet: %v", err)
	}
	if c.LastSeq != 2 {
		t.Errorf("LastSeq after the duplicate = %d, want 2", c.LastSeq)
	}

	// The next append takes seq 3: no gap. Messages without a client id
	// never collide, and a client id is unique per conversation only.
	other := f.conversation(TenantA, "acc1", "ext2")
	steps := []struct {
		m       session.Message
		wantSeq int64
	}{
		{newMessage(conv, "s1", "m4", "next", ""), 3},
		{newMessage(conv, "s1", "m5", "next again", ""), 4},
		{newMessage(other, "s2", "m6", "same client id elsewhere", "c1"), 1},
	}
	for _, st := range steps {
		m, err := f.s.MessageAppend(f.ctx, st.m)
		if err != nil {
			t.Fatalf("MessageAppend %s: %v", st.m.ID, err)
		}
		if m.Seq != st.wantSeq {
			t.Errorf("MessageAppend %s: seq %d, want %d", st.m.ID, m.Seq, st.wantSeq)
		}
	}

	_, err = f.s.MessageAppend(f.ctx, newMessage(conv, "s1", "m1", "reused message id", ""))
	wantCode(t, "MessageAppend with a used message id", err, errs.Duplicate)
	all, err := f.s.MessageListAfter(f.ctx, TenantA, conv.ID, 0, 0)
	if err != nil {
		t.Fatalf("MessageListAfter: %v", err)
	}
	if diff := cmp.Diff([]int64{1, 2, 3, 4}, seqs(all)); diff != "" {
		t.Errorf("stored seqs (-want +got):\n%s", diff)
	}
}

func testMessageAppendRollback(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	f.appendN(conv, "s1", 2)
	boom := errors.New("boom")

	tests := []struct {
		name string
		fn   func(tx session.Store) error
	}{
		{"fn fails after appending", func(tx session.Store) error {
			if _, err := tx.MessageAppend(f.ctx, newMessage(conv, "s1", "rb1", "rolled back", "rb-c1")); err != nil {
				return err
			}
			if _, err := tx.MessageAppend(f.ctx, newMessage(conv, "s1", "rb2", "rolled back too", "")); err != nil {
				return err
			}
			return boom
		}},
		{"duplicate client id inside the transaction", func(tx session.Store) error {
			if _, err := tx.MessageAppend(f.ctx, newMessage(conv, "s1", "rb3", "rolled back", "")); err != nil {
				return err
			}
			_, err := tx.MessageAppend(f.ctx, newMessage(conv, "s1", "rb4", "dup", "s1-m1-client"))
			if !errs.Is(err, errs.Duplicate) {
				return fmt.Errorf("want a duplicate, got %v", err)
			}
			return errors.Join(boom, err)
		}},
	}
	// A message whose client id the second case collides with.
	if _, err := f.s.MessageAppend(f.ctx, newMessage(conv, "s1", "s1-m3", "has a client id", "s1-m1-client")); err != nil {
		t.Fatalf("MessageAppend: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := f.s.InTx(f.ctx, tc.fn); !errors.Is(err, boom) {
				t.Fatalf("InTx = %v, want boom", err)
			}
			for _, id := range []string{"rb1", "rb2", "rb3", "rb4"} {
				_, err := f.s.MessageGet(f.ctx, TenantA, id)
				wantCode(t, "MessageGet "+id, err, errs.NotFound)
			}
			c, err := f.s.ConversationGet(f.ctx, TenantA, conv.ID)
			if err != nil {
				t.Fatalf("ConversationGet: %v", err)
			}
			if c.LastSeq != 3 {
				t.Errorf("LastSeq after rollback = %d, want 3", c.LastSeq)
			}
		})
	}
	m, err := f.s.MessageAppend(f.ctx, newMessage(conv, "s1", "after", "after the rollbacks", "rb-c1"))
	if err != nil {
		t.Fatalf("MessageAppend after rollback: %v", err)
	}
	if m.Seq != 4 {
		t.Errorf("seq after rollback = %d, want 4", m.Seq)
	}
}

func testInTx(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	s := f.insertSession(conv, "s1", nil)

	// A transition as the Engine does it: update, event, message, pointer,
	// with a nested InTx joining the outer transaction.
	next := s
	next.Version, next.State, next.GroupID = 2, session.StateQueued, "g1"
	err := f.s.InTx(f.ctx, func(tx session.Store) error {
		if err := tx.SessionUpdate(f.ctx, next, 1); err != nil {
			return err
		}
		if err := tx.EventInsert(f.ctx, session.EventRecord{TenantID: TenantA, SessionID: s.ID, Type: session.EvHandoff, FromState: session.StateBot, ToState: session.StateQueued, At: t0}); err != nil {
			return err
		}
		return tx.InTx(f.ctx, func(inner session.Store) error {
			if _, err := inner.MessageAppend(f.ctx, newMessage(conv, s.ID, "m1", "in tx", "")); err != nil {
				return err
			}
			// Reads inside the transaction see its writes.
			got, err := inner.SessionGet(f.ctx, TenantA, s.ID)
			if err != nil {
				return err
			}
			if got.Version != 2 {
				return fmt.Errorf("version inside the transaction = %d, want 2", got.Version)
			}
			return inner.ConversationSetCurrent(f.ctx, TenantA, conv.ID, s.ID, "", nil)
		})
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	got, err := f.s.SessionGet(f.ctx, TenantA, s.ID)
	if err != nil {
		t.Fatalf("SessionGet: %v", err)
	}
	if diff := cmp.Diff(next, got, cmpOpts); diff != "" {
		t.Errorf("session after commit (-want +got):\n%s", diff)
	}
	evs, err := f.s.EventList(f.ctx, TenantA, s.ID)
	if err != nil || len(evs) != 1 {
		t.Errorf("EventList after commit = %d events, %v; want 1", len(evs), err)
	}
	c, err := f.s.ConversationGet(f.ctx, TenantA, conv.ID)
	if err != nil {
		t.Fatalf("ConversationGet: %v", err)
	}
	if c.LastSeq != 1 || c.CurrentSessionID != s.ID {
		t.Errorf("conversation after commit: last_seq %d current %q, want 1 %q", c.LastSeq, c.CurrentSessionID, s.ID)
	}

	// A failing fn undoes every write, the nested ones included.
	boom := errors.New("boom")
	err = f.s.InTx(f.ctx, func(tx session.Store) error {
		bad := next
		bad.Version, bad.State = 3, session.StateClosed
		if err := tx.SessionUpdate(f.ctx, bad, 2); err != nil {
			return err
		}
		return tx.InTx(f.ctx, func(inner session.Store) error {
			if err := inner.NoteInsert(f.ctx, session.Note{TenantID: TenantA, ID: "n1", SessionID: s.ID, AgentID: "a1", Body: "x", CreatedAt: t0}); err != nil {
				return err
			}
			return boom
		})
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v, want boom", err)
	}
	got, err = f.s.SessionGet(f.ctx, TenantA, s.ID)
	if err != nil {
		t.Fatalf("SessionGet: %v", err)
	}
	if got.Version != 2 || got.State != session.StateQueued {
		t.Errorf("session after rollback: version %d state %s, want 2 queued", got.Version, got.State)
	}
	notes, err := f.s.NoteList(f.ctx, TenantA, s.ID)
	if err != nil || len(notes) != 0 {
		t.Errorf("NoteList after rollback = %d notes, %v; want none", len(notes), err)
	}
}

func testMessageListPaging(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	f.appendN(conv, "s1", 10)
	other := f.conversation(TenantA, "acc1", "ext2")
	f.appendN(other, "s2", 3)

	seqRange := func(from, to int64) []int64 {
		var out []int64
		for s := from; s <= to; s++ {
			out = append(out, s)
		}
		return out
	}
	tests := []struct {
		name   string
		before bool
		seq    int64
		limit  int
		want   []int64
	}{
		{"after 0", false, 0, 3, seqRange(1, 3)},
		{"after 3", false, 3, 3, seqRange(4, 6)},
		{"after 9", false, 9, 3, []int64{10}},
		{"after the end", false, 10, 3, nil},
		{"after 0, default limit", false, 0, 0, seqRange(1, 10)},
		{"before the end", true, 11, 3, seqRange(8, 10)},
		{"before 8", true, 8, 3, seqRange(5, 7)},
		{"before 3", true, 3, 3, seqRange(1, 2)},
		{"before 1", true, 1, 3, nil},
		{"before, default limit", true, 100, 0, seqRange(1, 10)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []session.Message
			var err error
			if tc.before {
				got, err = f.s.MessageListBefore(f.ctx, TenantA, conv.ID, tc.seq, tc.limit)
			} else {
				got, err = f.s.MessageListAfter(f.ctx, TenantA, conv.ID, tc.seq, tc.limit)
			}
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			if diff := cmp.Diff(tc.want, seqs(got), listOpts); diff != "" {
				t.Errorf("seqs (-want +got):\n%s", diff)
			}
			for _, m := range got {
				if m.ConversationID != conv.ID {
					t.Errorf("message %s of conversation %s listed", m.ID, m.ConversationID)
				}
			}
			checkUTC(t, got)
		})
	}
}

func testMessageListBySession(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	var s1, s2 []session.Message
	for i := range 6 {
		sid := []string{"s1", "s2"}[i%2]
		m, err := f.s.MessageAppend(f.ctx, newMessage(conv, sid, fmt.Sprintf("m%d", i), "x", ""))
		if err != nil {
			t.Fatalf("MessageAppend: %v", err)
		}
		if sid == "s1" {
			s1 = append(s1, m)
		} else {
			s2 = append(s2, m)
		}
	}
	tests := []struct {
		session string
		want    []session.Message
	}{
		{"s1", s1},
		{"s2", s2},
		{"s-none", nil},
	}
	for _, tc := range tests {
		got, err := f.s.MessageListBySession(f.ctx, TenantA, tc.session)
		if err != nil {
			t.Fatalf("MessageListBySession %s: %v", tc.session, err)
		}
		if diff := cmp.Diff(tc.want, got, listOpts); diff != "" {
			t.Errorf("MessageListBySession %s (-want +got):\n%s", tc.session, diff)
		}
	}
}

func testMessageSetPinned(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	m := f.appendN(conv, "s1", 1)[0]
	for _, pinned := range []bool{true, true, false} {
		if err := f.s.MessageSetPinned(f.ctx, TenantA, m.ID, pinned); err != nil {
			t.Fatalf("MessageSetPinned %v: %v", pinned, err)
		}
		got, err := f.s.MessageGet(f.ctx, TenantA, m.ID)
		if err != nil {
			t.Fatalf("MessageGet: %v", err)
		}
		want := m
		want.Pinned = pinned
		if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
			t.Errorf("after pinned=%v (-want +got):\n%s", pinned, diff)
		}
	}
	wantCode(t, "MessageSetPinned unknown", f.s.MessageSetPinned(f.ctx, TenantA, "no-such-message", true), errs.NotFound)
}

func testMessageSetStatus(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	m := f.appendN(conv, "s1", 1)[0]
	steps := []struct {
		status  session.DeliveryStatus
		errText string
	}{
		{session.StatusSent, ""},
		{session.StatusFailed, "channel said no"},
		{session.StatusDelivered, ""},
	}
	for _, st := range steps {
		if err := f.s.MessageSetStatus(f.ctx, TenantA, m.ID, st.status, st.errText); err != nil {
			t.Fatalf("MessageSetStatus %s: %v", st.status, err)
		}
		got, err := f.s.MessageGet(f.ctx, TenantA, m.ID)
		if err != nil {
			t.Fatalf("MessageGet: %v", err)
		}
		want := m
		want.Status, want.Error = st.status, st.errText
		if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
			t.Errorf("after %s (-want +got):\n%s", st.status, diff)
		}
	}
	wantCode(t, "MessageSetStatus unknown", f.s.MessageSetStatus(f.ctx, TenantA, "no-such-message", session.StatusSent, ""), errs.NotFound)
}

func testNotes(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	s := f.insertSession(conv, "s1", nil)
	n1 := session.Note{TenantID: TenantA, ID: "n1", SessionID: s.ID, AgentID: "a1", Body: "first", CreatedAt: at(time.Minute)}
	n2 := session.Note{TenantID: TenantA, ID: "n2", SessionID: s.ID, AgentID: "a2", Body: "second, multi\nline ✓", CreatedAt: at(2 * time.Minute)}
	n3 := session.Note{TenantID: TenantA, ID: "n3", SessionID: "s-other", AgentID: "a1", Body: "elsewhere", CreatedAt: t0}
	for _, n := range []session.Note{n2, n3, n1} { // stored out of order
		if err := f.s.NoteInsert(f.ctx, n); err != nil {
			t.Fatalf("NoteInsert %s: %v", n.ID, err)
		}
	}
	wantCode(t, "NoteInsert twice", f.s.NoteInsert(f.ctx, n1), errs.Duplicate)

	tests := []struct {
		session string
		want    []session.Note
	}{
		{s.ID, []session.Note{n1, n2}},
		{"s-other", []session.Note{n3}},
		{"s-none", nil},
	}
	for _, tc := range tests {
		got, err := f.s.NoteList(f.ctx, TenantA, tc.session)
		if err != nil {
			t.Fatalf("NoteList %s: %v", tc.session, err)
		}
		if diff := cmp.Diff(tc.want, got, listOpts); diff != "" {
			t.Errorf("NoteList %s (-want +got):\n%s", tc.session, diff)
		}
		checkUTC(t, got)
	}
}

func testTenantIsolation(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	s := f.insertSession(conv, "s1", func(s *session.Session) {
		s.State, s.AgentID, s.GroupID, s.DeadlineAt = session.StateActive, "a1", "g1", ptr(at(time.Minute))
	})
	m, err := f.s.MessageAppend(f.ctx, newMessage(conv, s.ID, "m1", "secret", "c1"))
	if err != nil {
		t.Fatalf("MessageAppend: %v", err)
	}
	if err := f.s.EventInsert(f.ctx, session.EventRecord{TenantID: TenantA, SessionID: s.ID, Type: session.EvCreated, At: t0}); err != nil {
		t.Fatalf("EventInsert: %v", err)
	}
	if err := f.s.NoteInsert(f.ctx, session.Note{TenantID: TenantA, ID: "n1", SessionID: s.ID, AgentID: "a1", Body: "x", CreatedAt: t0}); err != nil {
		t.Fatalf("NoteInsert: %v", err)
	}

	ctx, b := f.ctx, TenantB
	notFound := []struct {
		name string
		call func() error
	}{
		{"ContactGet", func() error { _, err := f.s.ContactGet(ctx, b, conv.ContactID); return err }},
		{"ContactSetVIP", func() error { return f.s.ContactSetVIP(ctx, b, conv.ContactID, 1) }},
		{"ConversationGet", func() error { _, err := f.s.ConversationGet(ctx, b, conv.ID); return err }},
		{"ConversationSetCurrent", func() error { return f.s.ConversationSetCurrent(ctx, b, conv.ID, "x", "", nil) }},
		{"ConversationMarkRead", func() error {
			_, err := f.s.ConversationMarkRead(ctx, b, conv.ID, session.SenderAgent, 1)
			return err
		}},
		{"SessionGet", func() error { _, err := f.s.SessionGet(ctx, b, s.ID); return err }},
		{"SessionUpdate", func() error {
			u := s
			u.TenantID, u.Version = b, 2
			return f.s.SessionUpdate(ctx, u, 1)
		}},
		{"SessionTouch", func() error { return f.s.SessionTouch(ctx, b, s.ID, t0, nil) }},
		{"MessageAppend", func() error {
			nm := newMessage(conv, s.ID, "m-b", "intruder", "")
			nm.TenantID = b
			_, err := f.s.MessageAppend(ctx, nm)
			return err
		}},
		{"MessageGet", func() error { _, err := f.s.MessageGet(ctx, b, m.ID); return err }},
		{"MessageGetByClientID", func() error { _, err := f.s.MessageGetByClientID(ctx, b, conv.ID, "c1"); return err }},
		{"MessageSetPinned", func() error { return f.s.MessageSetPinned(ctx, b, m.ID, true) }},
		{"MessageSetStatus", func() error { return f.s.MessageSetStatus(ctx, b, m.ID, session.StatusRead, "") }},
	}
	for _, tc := range notFound {
		wantCode(t, "tenant B "+tc.name, tc.call(), errs.NotFound)
	}

	empty := []struct {
		name string
		call func() (int, error)
	}{
		{"SessionList", func() (int, error) { l, err := f.s.SessionList(ctx, b, session.SessionFilter{}); return len(l), err }},
		{"SessionCountByState", func() (int, error) { c, err := f.s.SessionCountByState(ctx, b); return len(c), err }},
		{"EventList", func() (int, error) { l, err := f.s.EventList(ctx, b, s.ID); return len(l), err }},
		{"MessageListAfter", func() (int, error) { l, err := f.s.MessageListAfter(ctx, b, conv.ID, 0, 10); return len(l), err }},
		{"MessageListBefore", func() (int, error) { l, err := f.s.MessageListBefore(ctx, b, conv.ID, 10, 10); return len(l), err }},
		{"MessageListBySession", func() (int, error) { l, err := f.s.MessageListBySession(ctx, b, s.ID); return len(l), err }},
		{"NoteList", func() (int, error) { l, err := f.s.NoteList(ctx, b, s.ID); return len(l), err }},
	}
	for _, tc := range empty {
		n, err := tc.call()
		if err != nil || n != 0 {
			t.Errorf("tenant B %s = %d items, %v; want none", tc.name, n, err)
		}
	}

	// Tenant A's data is untouched by tenant B's attempts.
	gotS, err := f.s.SessionGet(ctx, TenantA, s.ID)
	if err != nil {
		t.Fatalf("SessionGet: %v", err)
	}
	if diff := cmp.Diff(s, gotS, cmpOpts); diff != "" {
		t.Errorf("tenant A session (-want +got):\n%s", diff)
	}
	gotM, err := f.s.MessageGet(ctx, TenantA, m.ID)
	if err != nil {
		t.Fatalf("MessageGet: %v", err)
	}
	if diff := cmp.Diff(m, gotM, cmpOpts); diff != "" {
		t.Errorf("tenant A message (-want +got):\n%s", diff)
	}
	gotC, err := f.s.ConversationGet(ctx, TenantA, conv.ID)
	if err != nil {
		t.Fatalf("ConversationGet: %v", err)
	}
	if gotC.LastSeq != 1 || gotC.AgentReadSeq != 0 || gotC.CurrentSessionID != "" {
		t.Errorf("tenant A conversation changed: %+v", gotC)
	}

	// The same identity in tenant B is another contact; the due list spans
	// tenants but carries each session's own tenant.
	cb, err := f.s.ContactResolve(ctx, b, "acc1", "ext1", "B", t0)
	if err != nil {
		t.Fatalf("ContactResolve in tenant B: %v", err)
	}
	if cb.TenantID != b || cb.ID == conv.ContactID {
		t.Errorf("tenant B resolved to %s/%s, want a contact of its own", cb.TenantID, cb.ID)
	}
	due, err := f.s.SessionListDue(ctx, at(time.Hour), 10)
	if err != nil {
		t.Fatalf("SessionListDue: %v", err)
	}
	if !slices.ContainsFunc(due, func(d session.Session) bool { return d.TenantID == TenantA && d.ID == s.ID }) {
		t.Errorf("SessionListDue = %v, want tenant A's s1", due)
	}
}

func testMessageAppendOpen(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	in := func(id, text, cid string, when time.Time) session.Message {
		m := newMessage(conv, "", id, text, cid)
		m.CreatedAt = when
		return m
	}
	_, _, err := f.s.MessageAppendOpen(f.ctx, in("m0", "hello", "c0", at(time.Minute)))
	wantCode(t, "MessageAppendOpen without a session", err, errs.NotFound)

	s := f.insertSession(conv, "s1", func(s *session.Session) { s.Version = 3; s.State = session.StateActive })
	if err := f.s.ConversationSetCurrent(f.ctx, TenantA, conv.ID, s.ID, "", nil); err != nil {
		t.Fatal(err)
	}
	m, got, err := f.s.MessageAppendOpen(f.ctx, in("m1", "hello", "c1", at(5*time.Minute)))
	if err != nil {
		t.Fatalf("MessageAppendOpen: %v", err)
	}
	if m.Seq != 1 || m.SessionID != s.ID {
		t.Errorf("message seq %d session %q, want 1 in %s", m.Seq, m.SessionID, s.ID)
	}
	if diff := cmp.Diff(s, got, cmpOpts); diff != "" {
		t.Errorf("returned session (-want +got):\n%s", diff)
	}
	c, err := f.s.ConversationGet(f.ctx, TenantA, conv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c.LastContactAt == nil || !c.LastContactAt.Equal(at(5*time.Minute)) || c.LastSeq != 1 {
		t.Errorf("conversation after append: last contact %v, last seq %d", c.LastContactAt, c.LastSeq)
	}
	// A duplicate changes nothing.
	_, _, err = f.s.MessageAppendOpen(f.ctx, in("m2", "again", "c1", at(9*time.Minute)))
	wantCode(t, "MessageAppendOpen duplicate", err, errs.Duplicate)
	c, _ = f.s.ConversationGet(f.ctx, TenantA, conv.ID)
	if c.LastSeq != 1 || !c.LastContactAt.Equal(at(5*time.Minute)) {
		t.Errorf("after the duplicate: last seq %d, last contact %v", c.LastSeq, c.LastContactAt)
	}
	// Agent and bot messages do not count as contact.
	if _, err := f.s.MessageAppend(f.ctx, newMessage(conv, s.ID, "m3", "agent says", "")); err != nil {
		t.Fatal(err)
	}
	c, _ = f.s.ConversationGet(f.ctx, TenantA, conv.ID)
	if !c.LastContactAt.Equal(at(5 * time.Minute)) {
		t.Errorf("MessageAppend moved the last contact to %v", c.LastContactAt)
	}
	// A closed session is not open.
	s.Version++
	s.State = session.StateClosed
	if err := f.s.SessionUpdate(f.ctx, s, s.Version-1); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.s.MessageAppendOpen(f.ctx, in("m4", "hello?", "", at(10*time.Minute)))
	wantCode(t, "MessageAppendOpen to a closed session", err, errs.NotFound)
	if c, _ := f.s.ConversationGet(f.ctx, TenantA, conv.ID); c.LastSeq != 2 {
		t.Errorf("LastSeq after a refused append = %d, want 2", c.LastSeq)
	}
	other := in("m5", "x", "", at(10*time.Minute))
	other.TenantID = TenantB
	_, _, err = f.s.MessageAppendOpen(f.ctx, other)
	wantCode(t, "MessageAppendOpen from another tenant", err, errs.NotFound)
}

// testMessageAppendOpenConcurrent: many writers on several conversations,
// each message sent twice with its client id (a client retrying). Every
// client id is stored once, each conversation's seqs are 1..n without gaps,
// and each message lands in its conversation's open session.
func testMessageAppendOpenConcurrent(t *testing.T, f *fixture) {
	const convs, writers, each = 6, 4, 10
	type target struct {
		conv session.Conversation
		sid  string
	}
	targets := make([]target, convs)
	for i := range targets {
		conv := f.conversation(TenantA, "acc1", fmt.Sprintf("ext%d", i))
		s := f.insertSession(conv, fmt.Sprintf("s%d", i), func(s *session.Session) { s.State = session.StateActive })
		if err := f.s.ConversationSetCurrent(f.ctx, TenantA, conv.ID, s.ID, "", nil); err != nil {
			t.Fatal(err)
		}
		targets[i] = target{conv, s.ID}
	}
	var (
		mu     sync.Mutex
		stored = map[string]session.Message{} // client id → first answer; guarded by mu
	)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for c, tg := range targets {
		for w := range writers {
			wg.Go(func() {
				<-start
				for i := range each {
					cid := fmt.Sprintf("c%d-w%d-%d", c, w, i)
					for attempt := range 2 {
						m := newMessage(tg.conv, "", fmt.Sprintf("%s-%d", cid, attempt), cid, cid)
						got, se, err := f.s.MessageAppendOpen(f.ctx, m)
						if attempt == 1 {
							if !errs.Is(err, errs.Duplicate) {
								t.Errorf("%s again: %v, want duplicate", cid, err)
							}
							continue
						}
						if err != nil {
							t.Errorf("%s: %v", cid, err)
							return
						}
						if se.ID != tg.sid || got.SessionID != tg.sid {
							t.Errorf("%s landed in session %s/%s, want %s", cid, se.ID, got.SessionID, tg.sid)
						}
						mu.Lock()
						stored[cid] = got
						mu.Unlock()
					}
				}
			})
		}
	}
	close(start)
	wg.Wait()
	for _, tg := range targets {
		ms, err := f.s.MessageListAfter(f.ctx, TenantA, tg.conv.ID, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != writers*each {
			t.Fatalf("conversation %s has %d messages, want %d", tg.conv.ID, len(ms), writers*each)
		}
		for i, m := range ms {
			if m.Seq != int64(i+1) {
				t.Fatalf("conversation %s: message %d has seq %d", tg.conv.ID, i, m.Seq)
			}
			if s := stored[m.ClientMsgID]; s.ID != m.ID || s.Seq != m.Seq {
				t.Errorf("%s stored as %s/%d, answered %s/%d", m.ClientMsgID, m.ID, m.Seq, s.ID, s.Seq)
			}
		}
	}
}
