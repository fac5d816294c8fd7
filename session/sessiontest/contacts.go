package sessiontest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/session"
)

func testContactResolve(t *testing.T, f *fixture) {
	first, err := f.s.ContactResolve(f.ctx, TenantA, "acc1", "ext1", "Ada", at(0))
	if err != nil {
		t.Fatalf("ContactResolve: %v", err)
	}
	if first.ID == "" {
		t.Fatal("ContactResolve returned an empty id")
	}
	want := session.Contact{TenantID: TenantA, ID: first.ID, DisplayName: "Ada", CreatedAt: t0}
	if diff := cmp.Diff(want, first, cmpOpts); diff != "" {
		t.Errorf("first resolve (-want +got):\n%s", diff)
	}
	checkUTC(t, first)

	// A second sighting, even under another name, is the same contact
	// unchanged; another identity is another contact.
	tests := []struct {
		name, account, external string
		same                    bool
	}{
		{"same identity", "acc1", "ext1", true},
		{"other external id", "acc1", "ext2", false},
		{"same external id on another account", "acc2", "ext1", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := f.s.ContactResolve(f.ctx, TenantA, tc.account, tc.external, "Someone Else", at(time.Hour))
			if err != nil {
				t.Fatalf("ContactResolve: %v", err)
			}
			if tc.same {
				if diff := cmp.Diff(first, c, cmpOpts); diff != "" {
					t.Errorf("re-resolve (-want +got):\n%s", diff)
				}
				return
			}
			if c.ID == first.ID {
				t.Errorf("identity %s/%s resolved to the contact of acc1/ext1", tc.account, tc.external)
			}
			again, err := f.s.ContactResolve(f.ctx, TenantA, tc.account, tc.external, "", at(2*time.Hour))
			if err != nil {
				t.Fatalf("ContactResolve again: %v", err)
			}
			if again.ID != c.ID {
				t.Errorf("second resolve gave contact %s, first %s", again.ID, c.ID)
			}
		})
	}

	got, err := f.s.ContactGet(f.ctx, TenantA, first.ID)
	if err != nil {
		t.Fatalf("ContactGet: %v", err)
	}
	if diff := cmp.Diff(first, got, cmpOpts); diff != "" {
		t.Errorf("ContactGet (-want +got):\n%s", diff)
	}
	checkUTC(t, got)
	_, err = f.s.ContactGet(f.ctx, TenantA, "no-such-contact")
	wantCode(t, "ContactGet unknown", err, errs.NotFound)
}

// race runs call from n goroutines released together, rounds times, wants
// all callers of a round to get the same id and returns it per round. The
// first round also fills the store's connection pool, so later rounds race
// for real.
func race(t *testing.T, rounds, n int, call func(round, i int) (string, error)) []string {
	t.Helper()
	var winners []string
	for r := range rounds {
		ids := make([]string, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				id, err := call(r, i)
				if err != nil {
					t.Errorf("round %d, caller %d: %v", r, i, err)
					return
				}
				ids[i] = id
			})
		}
		close(start)
		wg.Wait()
		if distinct := slices.Compact(slices.Sorted(slices.Values(ids))); len(distinct) != 1 {
			t.Errorf("round %d: %d callers got %d different ids %q, want one", r, n, len(distinct), distinct)
		}
		winners = append(winners, ids[0])
	}
	return winners
}

func testContactResolveConcurrent(t *testing.T, f *fixture) {
	winners := race(t, 5, 20, func(round, i int) (string, error) {
		c, err := f.s.ContactResolve(f.ctx, TenantA, "acc1", fmt.Sprintf("racer%d", round), fmt.Sprintf("racer %d", i), t0)
		return c.ID, err
	})
	for r, id := range winners {
		c, err := f.s.ContactResolve(f.ctx, TenantA, "acc1", fmt.Sprintf("racer%d", r), "late", t0)
		if err != nil {
			t.Fatalf("ContactResolve after the race: %v", err)
		}
		if c.ID != id {
			t.Errorf("round %d: after the race the identity resolves to %s, during it to %s", r, c.ID, id)
		}
	}
}

func testContactSetVIP(t *testing.T, f *fixture) {
	c, err := f.s.ContactResolve(f.ctx, TenantA, "acc1", "vip", "Vic", t0)
	if err != nil {
		t.Fatalf("ContactResolve: %v", err)
	}
	for _, level := range []int{3, 0} {
		if err := f.s.ContactSetVIP(f.ctx, TenantA, c.ID, level); err != nil {
			t.Fatalf("ContactSetVIP %d: %v", level, err)
		}
		got, err := f.s.ContactGet(f.ctx, TenantA, c.ID)
		if err != nil {
			t.Fatalf("ContactGet: %v", err)
		}
		if got.VIPLevel != level {
			t.Errorf("VIPLevel = %d, want %d", got.VIPLevel, level)
		}
	}
	wantCode(t, "ContactSetVIP unknown", f.s.ContactSetVIP(f.ctx, TenantA, "no-such-contact", 1), errs.NotFound)
}

func testConversationEnsure(t *testing.T, f *fixture) {
	c, err := f.s.ContactResolve(f.ctx, TenantA, "acc1", "ext1", "Ada", t0)
	if err != nil {
		t.Fatalf("ContactResolve: %v", err)
	}
	conv, err := f.s.ConversationEnsure(f.ctx, TenantA, "acc1", c.ID, at(time.Minute))
	if err != nil {
		t.Fatalf("ConversationEnsure: %v", err)
	}
	if conv.ID == "" {
		t.Fatal("ConversationEnsure returned an empty id")
	}
	want := session.Conversation{TenantID: TenantA, ID: conv.ID, AccountID: "acc1", ContactID: c.ID, CreatedAt: t0.Add(time.Minute)}
	if diff := cmp.Diff(want, conv, cmpOpts); diff != "" {
		t.Errorf("ConversationEnsure (-want +got):\n%s", diff)
	}
	checkUTC(t, conv)

	again, err := f.s.ConversationEnsure(f.ctx, TenantA, "acc1", c.ID, at(time.Hour))
	if err != nil {
		t.Fatalf("ConversationEnsure again: %v", err)
	}
	if diff := cmp.Diff(conv, again, cmpOpts); diff != "" {
		t.Errorf("ConversationEnsure again (-want +got):\n%s", diff)
	}
	other, err := f.s.ConversationEnsure(f.ctx, TenantA, "acc2", c.ID, t0)
	if err != nil {
		t.Fatalf("ConversationEnsure on acc2: %v", err)
	}
	if other.ID == conv.ID {
		t.Error("another account shares the conversation")
	}

	got, err := f.s.ConversationGet(f.ctx, TenantA, conv.ID)
	if err != nil {
		t.Fatalf("ConversationGet: %v", err)
	}
	if diff := cmp.Diff(conv, got, cmpOpts); diff != "" {
		t.Errorf("ConversationGet (-want +got):\n%s", diff)
	}
	_, err = f.s.ConversationGet(f.ctx, TenantA, "no-such-conversation")
	wantCode(t, "ConversationGet unknown", err, errs.NotFound)
}

func testConversationEnsureConcurrent(t *testing.T, f *fixture) {
	var contacts []string
	for r := range 5 {
		c, err := f.s.ContactResolve(f.ctx, TenantA, "acc1", fmt.Sprintf("ext%d", r), "", t0)
		if err != nil {
			t.Fatalf("ContactResolve: %v", err)
		}
		contacts = append(contacts, c.ID)
	}
	winners := race(t, len(contacts), 20, func(round, _ int) (string, error) {
		conv, err := f.s.ConversationEnsure(f.ctx, TenantA, "acc1", contacts[round], t0)
		return conv.ID, err
	})
	for r, id := range winners {
		if _, err := f.s.ConversationGet(f.ctx, TenantA, id); err != nil {
			t.Errorf("round %d: ConversationGet of the winner %s: %v", r, id, err)
		}
	}
}

func testConversationSetCurrent(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	closed := at(time.Hour)
	steps := []struct {
		name                 string
		sessionID, lastAgent string
		closedAt             *time.Time
		wantCurrent          string
		wantAgent            string
		wantClosed           *time.Time
	}{
		{"open", "s1", "", nil, "s1", "", nil},
		{"close", "", "a1", &closed, "", "a1", ptr(t0.Add(time.Hour))},
		{"reopen keeps last agent", "s2", "", nil, "s2", "a1", ptr(t0.Add(time.Hour))},
		{"bot-only close keeps last agent", "", "", ptr(at(2 * time.Hour)), "", "a1", ptr(t0.Add(2 * time.Hour))},
	}
	for _, st := range steps {
		if err := f.s.ConversationSetCurrent(f.ctx, TenantA, conv.ID, st.sessionID, st.lastAgent, st.closedAt); err != nil {
			t.Fatalf("%s: ConversationSetCurrent: %v", st.name, err)
		}
		got, err := f.s.ConversationGet(f.ctx, TenantA, conv.ID)
		if err != nil {
			t.Fatalf("%s: ConversationGet: %v", st.name, err)
		}
		want := conv
		want.CurrentSessionID, want.LastAgentID, want.LastClosedAt = st.wantCurrent, st.wantAgent, st.wantClosed
		if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
			t.Errorf("%s (-want +got):\n%s", st.name, diff)
		}
		checkUTC(t, got)
	}
	err := f.s.ConversationSetCurrent(f.ctx, TenantA, "no-such-conversation", "s1", "", nil)
	wantCode(t, "ConversationSetCurrent unknown", err, errs.NotFound)
}

func testConversationMarkRead(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	f.appendN(conv, "s1", 5)
	steps := []struct {
		side session.SenderKind
		seq  int64
		want int64
	}{
		{session.SenderContact, 3, 3},
		{session.SenderContact, 2, 3},  // never lowers
		{session.SenderContact, 3, 3},  // same
		{session.SenderAgent, 1, 1},    // sides are independent
		{session.SenderContact, 10, 5}, // capped at last_seq
		{session.SenderAgent, 4, 4},
		{session.SenderAgent, 0, 4},
	}
	for _, st := range steps {
		got, err := f.s.ConversationMarkRead(f.ctx, TenantA, conv.ID, st.side, st.seq)
		if err != nil {
			t.Fatalf("MarkRead %s %d: %v", st.side, st.seq, err)
		}
		if got != st.want {
			t.Errorf("MarkRead %s %d = %d, want %d", st.side, st.seq, got, st.want)
		}
	}
	got, err := f.s.ConversationGet(f.ctx, TenantA, conv.ID)
	if err != nil {
		t.Fatalf("ConversationGet: %v", err)
	}
	if got.ContactReadSeq != 5 || got.AgentReadSeq != 4 || got.LastSeq != 5 {
		t.Errorf("stored read seqs contact %d agent %d last %d, want 5 4 5", got.ContactReadSeq, got.AgentReadSeq, got.LastSeq)
	}
	_, err = f.s.ConversationMarkRead(f.ctx, TenantA, conv.ID, session.SenderBot, 1)
	wantCode(t, "MarkRead bot side", err, errs.Invalid)
	_, err = f.s.ConversationMarkRead(f.ctx, TenantA, "no-such-conversation", session.SenderContact, 1)
	wantCode(t, "MarkRead unknown", err, errs.NotFound)
}

func testConversationOpenSession(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	s1 := f.insertSession(conv, "s1", nil)
	s2 := f.insertSession(conv, "s2", nil)
	if err := f.s.ConversationOpenSession(f.ctx, TenantA, conv.ID, "", s1.ID); err != nil {
		t.Fatalf("open s1 on an empty conversation: %v", err)
	}
	wantCode(t, "open s2 expecting none", f.s.ConversationOpenSession(f.ctx, TenantA, conv.ID, "", s2.ID), errs.Conflict)
	if err := f.s.ConversationOpenSession(f.ctx, TenantA, conv.ID, s1.ID, s2.ID); err != nil {
		t.Fatalf("open s2 after s1: %v", err)
	}
	got, err := f.s.SessionCurrent(f.ctx, TenantA, conv.ID)
	if err != nil || got.ID != s2.ID {
		t.Fatalf("current = %v, %v; want s2", got.ID, err)
	}
	wantCode(t, "unknown conversation", f.s.ConversationOpenSession(f.ctx, TenantA, "nope", "", s2.ID), errs.NotFound)
	wantCode(t, "other tenant", f.s.ConversationOpenSession(f.ctx, TenantB, conv.ID, s2.ID, s1.ID), errs.NotFound)
}
