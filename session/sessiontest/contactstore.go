package sessiontest

// Conformance cases of session.ContactStore (contacts across channels):
// profiles and search, identity facts, merge candidates, merges with exact
// undo and its refusals, history, export and erasure. Run registers them.

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/session"
)

// contactTests are the ContactStore cases, each on a fresh store.
var contactTests = []struct {
	name string
	fn   func(t *testing.T, f *fixture)
}{
	{"ContactUpdate", testContactUpdate},
	{"ContactList", testContactList},
	{"IdentityFacts", testIdentityFacts},
	{"IdentityFactsConcurrent", testIdentityFactsConcurrent},
	{"ContactMergeCandidates", testContactMergeCandidates},
	{"ContactMergeUndo", testContactMergeUndo},
	{"ContactMergeRefusals", testContactMergeRefusals},
	{"ContactMergeKeptConversation", testContactMergeKeptConversation},
	{"ContactMergeUndoRefusals", testContactMergeUndoRefusals},
	{"ContactMergeConcurrent", testContactMergeConcurrent},
	{"ContactMerges", testContactMerges},
	{"ContactHistory", testContactHistory},
	{"ContactExport", testContactExport},
	{"ContactDelete", testContactDelete},
	{"ContactSettings", testContactSettings},
	{"ContactTenantIsolation", testContactTenantIsolation},
}

// person resolves a contact with one identity and a conversation on its
// account, created at created.
func (f *fixture) person(tenantID, accountID, externalID, name string, created time.Time) (session.Contact, session.Conversation) {
	f.t.Helper()
	c, err := f.s.ContactResolve(f.ctx, tenantID, accountID, externalID, name, created)
	if err != nil {
		f.t.Fatalf("ContactResolve %s/%s: %v", accountID, externalID, err)
	}
	conv, err := f.s.ConversationEnsure(f.ctx, tenantID, accountID, c.ID, created)
	if err != nil {
		f.t.Fatalf("ConversationEnsure: %v", err)
	}
	return c, conv
}

// closedSession stores a closed session of conv created at created, with
// n inbound messages.
func (f *fixture) closedSession(conv session.Conversation, id string, created time.Time, n int) session.Session {
	f.t.Helper()
	s := f.insertSession(conv, id, func(s *session.Session) {
		s.State, s.CreatedAt, s.LastContactAt, s.ClosedAt = session.StateClosed, created, created, ptr(created.Add(time.Minute))
	})
	for i := range n {
		m := newMessage(conv, id, fmt.Sprintf("%s-m%d", id, i+1), fmt.Sprintf("%s message %d", id, i+1), "")
		m.CreatedAt = created.Add(time.Duration(i) * time.Second)
		if _, err := f.s.MessageAppend(f.ctx, m); err != nil {
			f.t.Fatalf("MessageAppend: %v", err)
		}
	}
	return s
}

func (f *fixture) facts(tenantID, accountID, externalID string, facts session.IdentityFacts) session.Identity {
	f.t.Helper()
	id, _, err := f.s.IdentityUpdateFacts(f.ctx, tenantID, accountID, externalID, facts)
	if err != nil {
		f.t.Fatalf("IdentityUpdateFacts %s/%s: %v", accountID, externalID, err)
	}
	return id
}

func (f *fixture) update(tenantID, id string, p session.ContactPatch) session.Contact {
	f.t.Helper()
	c, err := f.s.ContactUpdate(f.ctx, tenantID, id, p, at(time.Hour))
	if err != nil {
		f.t.Fatalf("ContactUpdate %s: %v", id, err)
	}
	return c
}

func (f *fixture) merge(survivor, merged string, reason session.MergeReason) session.Merge {
	f.t.Helper()
	mg, err := f.s.ContactMerge(f.ctx, TenantA, survivor, merged, reason, "sup1", at(2*time.Hour))
	if err != nil {
		f.t.Fatalf("ContactMerge %s into %s: %v", merged, survivor, err)
	}
	return mg
}

func (f *fixture) get(id string) session.Contact {
	f.t.Helper()
	c, err := f.s.ContactGet(f.ctx, TenantA, id)
	if err != nil {
		f.t.Fatalf("ContactGet %s: %v", id, err)
	}
	return c
}

func contactIDs(cs []session.Contact) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

// wantConflict fails unless err is Conflict with a message containing
// every part of want.
func wantConflict(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	wantCode(t, what, err, errs.Conflict)
	for _, w := range want {
		if err != nil && !strings.Contains(errs.MessageOf(err), w) {
			t.Errorf("%s: message %q does not say %q", what, errs.MessageOf(err), w)
		}
	}
}

func testContactUpdate(t *testing.T, f *fixture) {
	c, _ := f.person(TenantA, "acc1", "ext1", "Ada", at(0))
	got := f.update(TenantA, c.ID, session.ContactPatch{
		DisplayName: ptr("Ada Lovelace"), VIPLevel: ptr(2),
		Tags: ptr([]string{"vip", "billing"}), Attributes: ptr(map[string]string{"tier": "gold"}),
	})
	want := c
	want.DisplayName, want.VIPLevel, want.Tags, want.Attributes = "Ada Lovelace", 2, []string{"vip", "billing"}, map[string]string{"tier": "gold"}
	want.UpdatedAt = ptr(t0.Add(time.Hour))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ContactUpdate (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, f.get(c.ID)); diff != "" {
		t.Errorf("ContactGet after update (-want +got):\n%s", diff)
	}
	checkUTC(t, got)

	// Only the given fields change; empty lists clear.
	got = f.update(TenantA, c.ID, session.ContactPatch{VIPLevel: ptr(0)})
	want.VIPLevel = 0
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("VIP-only update (-want +got):\n%s", diff)
	}
	got = f.update(TenantA, c.ID, session.ContactPatch{Tags: ptr([]string{}), Attributes: ptr(map[string]string{})})
	want.Tags, want.Attributes = nil, nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("clearing update (-want +got):\n%s", diff)
	}
	_, err := f.s.ContactUpdate(f.ctx, TenantA, "no-such-contact", session.ContactPatch{VIPLevel: ptr(1)}, t0)
	wantCode(t, "ContactUpdate unknown", err, errs.NotFound)

	// A merged contact's profile is its survivor's.
	b, _ := f.person(TenantA, "acc2", "ext2", "Bea", at(time.Minute))
	f.merge(c.ID, b.ID, session.MergeManual)
	_, err = f.s.ContactUpdate(f.ctx, TenantA, b.ID, session.ContactPatch{VIPLevel: ptr(1)}, t0)
	wantConflict(t, "ContactUpdate merged", err, c.ID)
}

func testContactList(t *testing.T, f *fixture) {
	ada, _ := f.person(TenantA, "acc1", "wa-491511", "Ada Lovelace", at(0))
	bob, _ := f.person(TenantA, "acc2", "openid-bob", "Bob 100% Real", at(time.Minute))
	cy, _ := f.person(TenantA, "acc1", "visitor-cy", "Cy", at(2*time.Minute))
	f.facts(TenantA, "acc1", "wa-491511", session.IdentityFacts{Phone: "+4915112345678", PhoneVerified: true})
	f.facts(TenantA, "acc2", "openid-bob", session.IdentityFacts{UnionID: "union-bob", DisplayName: "Bobby Tables"})
	f.person(TenantB, "acc1", "other", "Ada in B", at(0))

	tests := []struct {
		name string
		f    session.ContactFilter
		want []string
	}{
		{"all, newest first", session.ContactFilter{}, []string{cy.ID, bob.ID, ada.ID}},
		{"name part, any case", session.ContactFilter{Query: "LOVE"}, []string{ada.ID}},
		{"identity name", session.ContactFilter{Query: "tables"}, []string{bob.ID}},
		{"external id", session.ContactFilter{Query: "visitor-cy"}, []string{cy.ID}},
		{"external id is exact", session.ContactFilter{Query: "visitor"}, []string{}},
		{"phone as written", session.ContactFilter{Query: "+49 151 1234-5678"}, []string{ada.ID}},
		{"phone with 00", session.ContactFilter{Query: "004915112345678"}, []string{ada.ID}},
		{"union id", session.ContactFilter{Query: "union-bob"}, []string{bob.ID}},
		{"contact id", session.ContactFilter{Query: cy.ID}, []string{cy.ID}},
		{"LIKE wildcards are literal", session.ContactFilter{Query: "%"}, []string{bob.ID}},
		{"underscore is literal", session.ContactFilter{Query: "a_a"}, []string{}},
		{"limit", session.ContactFilter{Limit: 2}, []string{cy.ID, bob.ID}},
		{"after", session.ContactFilter{After: bob.ID}, []string{ada.ID}},
		{"after the last", session.ContactFilter{After: ada.ID}, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.s.ContactList(f.ctx, TenantA, tc.f)
			if err != nil {
				t.Fatalf("ContactList: %v", err)
			}
			if diff := cmp.Diff(tc.want, contactIDs(got)); diff != "" {
				t.Errorf("ContactList(%+v) (-want +got):\n%s", tc.f, diff)
			}
		})
	}
	_, err := f.s.ContactList(f.ctx, TenantA, session.ContactFilter{After: "no-such-contact"})
	wantCode(t, "ContactList after unknown", err, errs.Invalid)
	_, err = f.s.ContactList(f.ctx, TenantA, session.ContactFilter{Query: strings.Repeat("x", session.MaxQueryLen+1)})
	wantCode(t, "ContactList long query", err, errs.Invalid)

	f.merge(ada.ID, cy.ID, session.MergeManual)
	for _, tc := range []struct {
		f    session.ContactFilter
		want []string
	}{
		{session.ContactFilter{}, []string{bob.ID, ada.ID}},
		{session.ContactFilter{IncludeMerged: true}, []string{cy.ID, bob.ID, ada.ID}},
		// The merged contact's identity is the survivor's now.
		{session.ContactFilter{Query: "visitor-cy"}, []string{ada.ID}},
	} {
		got, err := f.s.ContactList(f.ctx, TenantA, tc.f)
		if err != nil {
			t.Fatalf("ContactList: %v", err)
		}
		if diff := cmp.Diff(tc.want, contactIDs(got)); diff != "" {
			t.Errorf("after the merge, ContactList(%+v) (-want +got):\n%s", tc.f, diff)
		}
	}
}

func testIdentityFacts(t *testing.T, f *fixture) {
	c, _ := f.person(TenantA, "acc1", "ext1", "Ada", at(0))
	id, err := f.s.IdentityGet(f.ctx, TenantA, "acc1", "ext1")
	if err != nil {
		t.Fatalf("IdentityGet: %v", err)
	}
	want := session.Identity{TenantID: TenantA, AccountID: "acc1", ExternalID: "ext1", ContactID: c.ID, CreatedAt: t0}
	if diff := cmp.Diff(want, id); diff != "" {
		t.Errorf("new identity (-want +got):\n%s", diff)
	}
	const phone, other = "+8613800138000", "+8613900139000"
	steps := []struct {
		name    string
		facts   session.IdentityFacts
		changed bool
		mut     func(*session.Identity)
	}{
		{"first facts", session.IdentityFacts{Channel: "wechat_oa", UnionID: "u1", DisplayName: "Ada L", InboundAt: at(time.Minute)}, true,
			func(i *session.Identity) {
				i.Channel, i.UnionID, i.DisplayName, i.LastInboundAt = "wechat_oa", "u1", "Ada L", ptr(t0.Add(time.Minute))
			}},
		{"same facts, later message", session.IdentityFacts{Channel: "wechat_oa", UnionID: "u1", InboundAt: at(2 * time.Minute)}, false,
			func(i *session.Identity) { i.LastInboundAt = ptr(t0.Add(2 * time.Minute)) }},
		{"an older message keeps the latest time", session.IdentityFacts{InboundAt: at(30 * time.Second)}, false, nil},
		{"a message within LastInboundStep writes nothing", session.IdentityFacts{InboundAt: at(2*time.Minute + session.LastInboundStep - time.Microsecond)}, false, nil},
		{"typed phone", session.IdentityFacts{Phone: phone}, false, func(i *session.Identity) { i.Phone = phone }},
		{"the channel vouches for it", session.IdentityFacts{Phone: phone, PhoneVerified: true}, true,
			func(i *session.Identity) { i.PhoneVerified = true }},
		{"same phone unvouched stays verified", session.IdentityFacts{Phone: phone}, false, nil},
		{"another typed phone", session.IdentityFacts{Phone: other}, false,
			func(i *session.Identity) { i.Phone, i.PhoneVerified = other, false }},
		{"new union id", session.IdentityFacts{UnionID: "u2"}, true, func(i *session.Identity) { i.UnionID = "u2" }},
		{"nothing", session.IdentityFacts{}, false, nil},
	}
	want.CreatedAt = t0
	for _, st := range steps {
		got, changed, err := f.s.IdentityUpdateFacts(f.ctx, TenantA, "acc1", "ext1", st.facts)
		if err != nil {
			t.Fatalf("%s: IdentityUpdateFacts: %v", st.name, err)
		}
		if st.mut != nil {
			st.mut(&want)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", st.name, diff)
		}
		if changed != st.changed {
			t.Errorf("%s: changed = %v, want %v", st.name, changed, st.changed)
		}
		if read, err := f.s.IdentityGet(f.ctx, TenantA, "acc1", "ext1"); err != nil || !cmp.Equal(read, got) {
			t.Errorf("%s: IdentityGet = %+v, %v; want %+v", st.name, read, err, got)
		}
		checkUTC(t, got)
	}
	if end, ok := want.WindowEnd(24 * time.Hour); !ok || !end.Equal(t0.Add(24*time.Hour+2*time.Minute)) {
		t.Errorf("WindowEnd = %v, %v; want 24h after the last message", end, ok)
	}
	_, _, err = f.s.IdentityUpdateFacts(f.ctx, TenantA, "acc1", "ext1", session.IdentityFacts{Phone: "013800138000"})
	wantCode(t, "IdentityUpdateFacts with a phone not in E.164", err, errs.Invalid)
	_, _, err = f.s.IdentityUpdateFacts(f.ctx, TenantA, "acc1", "nobody", session.IdentityFacts{UnionID: "u"})
	wantCode(t, "IdentityUpdateFacts unknown", err, errs.NotFound)
	_, err = f.s.IdentityGet(f.ctx, TenantA, "acc1", "nobody")
	wantCode(t, "IdentityGet unknown", err, errs.NotFound)

	ids, err := f.s.ContactIdentities(f.ctx, TenantA, c.ID)
	if err != nil {
		t.Fatalf("ContactIdentities: %v", err)
	}
	if diff := cmp.Diff([]session.Identity{want}, ids); diff != "" {
		t.Errorf("ContactIdentities (-want +got):\n%s", diff)
	}
	_, err = f.s.ContactIdentities(f.ctx, TenantA, "no-such-contact")
	wantCode(t, "ContactIdentities unknown", err, errs.NotFound)
}

// testIdentityFactsConcurrent: of messages racing to bring the same new
// verified phone, exactly one reports the change, so candidates are looked
// up (and an auto-merge tried) once.
func testIdentityFactsConcurrent(t *testing.T, f *fixture) {
	f.person(TenantA, "acc1", "ext1", "Ada", t0)
	const n = 12
	var changed sync.WaitGroup
	var mu sync.Mutex
	count := 0
	start := make(chan struct{})
	for i := range n {
		changed.Go(func() {
			<-start
			_, ch, err := f.s.IdentityUpdateFacts(f.ctx, TenantA, "acc1", "ext1",
				session.IdentityFacts{Phone: "+4915112345678", PhoneVerified: true, InboundAt: at(time.Duration(i) * time.Second)})
			if err != nil {
				t.Errorf("IdentityUpdateFacts %d: %v", i, err)
				return
			}
			if ch {
				mu.Lock()
				count++
				mu.Unlock()
			}
		})
	}
	close(start)
	changed.Wait()
	if count != 1 {
		t.Errorf("%d of %d concurrent updates reported the new phone, want 1", count, n)
	}
	// Within LastInboundStep of each other, one message time is recorded.
	id, err := f.s.IdentityGet(f.ctx, TenantA, "acc1", "ext1")
	if err != nil || id.LastInboundAt == nil || id.LastInboundAt.After(t0.Add((n-1)*time.Second)) || !id.PhoneVerified {
		t.Errorf("after the race: %+v, %v; want the phone verified and a message time", id, err)
	}
}

func testContactMergeCandidates(t *testing.T, f *fixture) {
	ada, _ := f.person(TenantA, "oa1", "openid-a", "Ada", at(0))
	ada2, _ := f.person(TenantA, "kf1", "external-a", "Ada (WeCom)", at(time.Minute))
	ada3, _ := f.person(TenantA, "wa1", "4915112345678", "Ada (WhatsApp)", at(2*time.Minute))
	typed, _ := f.person(TenantA, "web1", "visitor-1", "Claims Ada's phone", at(3*time.Minute))
	smsAda, _ := f.person(TenantA, "sms1", "+4915112345678", "", at(4*time.Minute))
	other, _ := f.person(TenantA, "oa1", "openid-x", "Xavier", at(5*time.Minute))
	f.person(TenantB, "oa1", "openid-b", "Same union, other tenant", at(0))

	const phone = "+4915112345678"
	f.facts(TenantA, "oa1", "openid-a", session.IdentityFacts{UnionID: "u-ada"})
	f.facts(TenantA, "kf1", "external-a", session.IdentityFacts{UnionID: "u-ada"})
	f.facts(TenantA, "wa1", "4915112345678", session.IdentityFacts{Phone: phone, PhoneVerified: true})
	f.facts(TenantA, "web1", "visitor-1", session.IdentityFacts{Phone: phone})
	f.facts(TenantA, "sms1", "+4915112345678", session.IdentityFacts{Phone: phone, PhoneVerified: true})
	f.facts(TenantA, "oa1", "openid-x", session.IdentityFacts{UnionID: "u-x"})
	f.facts(TenantB, "oa1", "openid-b", session.IdentityFacts{UnionID: "u-ada"})

	type cand struct {
		ID      string
		Matches []session.MergeMatch
	}
	list := func(id string) []cand {
		t.Helper()
		cs, err := f.s.ContactMergeCandidates(f.ctx, TenantA, id)
		if err != nil {
			t.Fatalf("ContactMergeCandidates %s: %v", id, err)
		}
		out := []cand{}
		for _, c := range cs {
			out = append(out, cand{c.Contact.ID, c.Matches})
		}
		return out
	}
	tests := []struct {
		name, id string
		want     []cand
	}{
		{"union id", ada.ID, []cand{{ada2.ID, []session.MergeMatch{{Reason: session.MergeUnionID, Value: "u-ada"}}}}},
		{"verified phones only", ada3.ID, []cand{{smsAda.ID, []session.MergeMatch{{Reason: session.MergePhone, Value: phone}}}}},
		{"a typed phone finds nobody", typed.ID, []cand{}},
		{"nothing shared", other.ID, []cand{}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, list(tc.id)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	// Once ada3 holds the union id too, smsAda matches it by phone only and
	// ada by union id only; a contact matching both ways is listed once.
	f.facts(TenantA, "sms1", "+4915112345678", session.IdentityFacts{UnionID: "u-ada"})
	want := []cand{
		{ada.ID, []session.MergeMatch{{Reason: session.MergeUnionID, Value: "u-ada"}}},
		{ada2.ID, []session.MergeMatch{{Reason: session.MergeUnionID, Value: "u-ada"}}},
		{ada3.ID, []session.MergeMatch{{Reason: session.MergePhone, Value: phone}}},
	}
	if diff := cmp.Diff(want, list(smsAda.ID)); diff != "" {
		t.Errorf("several facts (-want +got):\n%s", diff)
	}
	// Merged contacts are no candidates (their identities moved anyway).
	f.merge(ada.ID, ada2.ID, session.MergeUnionID)
	want = []cand{
		{ada.ID, []session.MergeMatch{{Reason: session.MergeUnionID, Value: "u-ada"}}},
		{ada3.ID, []session.MergeMatch{{Reason: session.MergePhone, Value: phone}}},
	}
	if diff := cmp.Diff(want, list(smsAda.ID)); diff != "" {
		t.Errorf("after a merge (-want +got):\n%s", diff)
	}
	_, err := f.s.ContactMergeCandidates(f.ctx, TenantA, "no-such-contact")
	wantCode(t, "ContactMergeCandidates unknown", err, errs.NotFound)
}

// snapshot is what a merge changes and an undo must restore.
type snapshot struct {
	Contacts      []session.Contact
	Identities    [][]session.Identity
	Conversations []session.Conversation
	Sessions      []session.Session
}

func (f *fixture) snapshot(contacts []string, convs []string, sessions []string) snapshot {
	f.t.Helper()
	var s snapshot
	for _, id := range contacts {
		s.Contacts = append(s.Contacts, f.get(id))
		ids, err := f.s.ContactIdentities(f.ctx, TenantA, id)
		if err != nil {
			f.t.Fatalf("ContactIdentities: %v", err)
		}
		s.Identities = append(s.Identities, ids)
	}
	for _, id := range convs {
		c, err := f.s.ConversationGet(f.ctx, TenantA, id)
		if err != nil {
			f.t.Fatalf("ConversationGet: %v", err)
		}
		s.Conversations = append(s.Conversations, c)
	}
	for _, id := range sessions {
		se, err := f.s.SessionGet(f.ctx, TenantA, id)
		if err != nil {
			f.t.Fatalf("SessionGet: %v", err)
		}
		s.Sessions = append(s.Sessions, se)
	}
	return s
}

// ignoreUpdatedAt: merges and undos touch updated_at; it is no content.
var ignoreUpdatedAt = cmpopts.IgnoreFields(session.Contact{}, "UpdatedAt")

func testContactMergeUndo(t *testing.T, f *fixture) {
	ada, convA := f.person(TenantA, "oa1", "openid-a", "Ada", at(0))
	bea, convB := f.person(TenantA, "wa1", "4915112345678", "", at(time.Minute))
	f.person(TenantA, "oa1", "openid-x", "Xavier", at(2*time.Minute))
	f.facts(TenantA, "wa1", "4915112345678", session.IdentityFacts{Channel: "whatsapp", Phone: "+4915112345678", PhoneVerified: true})
	sa := f.closedSession(convA, "sa", at(time.Minute), 2)
	sb := f.closedSession(convB, "sb", at(2*time.Minute), 3)
	ada = f.update(TenantA, ada.ID, session.ContactPatch{VIPLevel: ptr(1), Tags: ptr([]string{"x"}), Attributes: ptr(map[string]string{"k1": "a"})})
	f.update(TenantA, bea.ID, session.ContactPatch{VIPLevel: ptr(3), Tags: ptr([]string{"y", "x"}), Attributes: ptr(map[string]string{"k1": "b", "k2": "b"})})

	contacts, convs, sessions := []string{ada.ID, bea.ID}, []string{convA.ID, convB.ID}, []string{sa.ID, sb.ID}
	before := f.snapshot(contacts, convs, sessions)

	mg := f.merge(ada.ID, bea.ID, session.MergeManual)
	want := session.Merge{
		TenantID: TenantA, ID: mg.ID, SurvivorID: ada.ID, MergedID: bea.ID, Reason: session.MergeManual, Actor: "sup1",
		Changes: session.MergeChanges{
			Identities:        []session.IdentityKey{{AccountID: "wa1", ExternalID: "4915112345678"}},
			Conversations:     []string{convB.ID},
			KeptConversations: []string{},
			SurvivorBefore:    session.Profile{DisplayName: "Ada", VIPLevel: 1, Tags: []string{"x"}, Attributes: map[string]string{"k1": "a"}},
			SurvivorAfter:     session.Profile{DisplayName: "Ada", VIPLevel: 3, Tags: []string{"x", "y"}, Attributes: map[string]string{"k1": "a", "k2": "b"}},
		},
		CreatedAt: t0.Add(2 * time.Hour),
	}
	if diff := cmp.Diff(want, mg); diff != "" {
		t.Errorf("ContactMerge (-want +got):\n%s", diff)
	}
	checkUTC(t, mg)

	// The survivor has everything; new messages of the merged identity
	// land on it.
	got := f.get(ada.ID)
	if got.VIPLevel != 3 || !slices.Equal(got.Tags, []string{"x", "y"}) || got.Attributes["k2"] != "b" || got.Attributes["k1"] != "a" {
		t.Errorf("survivor after merge = %+v", got)
	}
	if m := f.get(bea.ID); m.MergedInto != ada.ID {
		t.Errorf("merged contact MergedInto = %q, want %s", m.MergedInto, ada.ID)
	}
	c, err := f.s.ContactResolve(f.ctx, TenantA, "wa1", "4915112345678", "", at(3*time.Hour))
	if err != nil || c.ID != ada.ID {
		t.Errorf("ContactResolve of the merged identity = %s, %v; want the survivor %s", c.ID, err, ada.ID)
	}
	conv, err := f.s.ConversationEnsure(f.ctx, TenantA, "wa1", ada.ID, at(3*time.Hour))
	if err != nil || conv.ID != convB.ID {
		t.Errorf("the survivor's conversation on wa1 = %s, %v; want the moved %s", conv.ID, err, convB.ID)
	}
	if se, err := f.s.SessionGet(f.ctx, TenantA, sb.ID); err != nil || se.ContactID != ada.ID {
		t.Errorf("moved session contact = %s, %v; want %s", se.ContactID, err, ada.ID)
	}
	ids, err := f.s.ContactIdentities(f.ctx, TenantA, ada.ID)
	if err != nil || len(ids) != 2 {
		t.Errorf("survivor identities = %v, %v; want 2", ids, err)
	}
	if ids, err := f.s.ContactIdentities(f.ctx, TenantA, bea.ID); err != nil || len(ids) != 0 {
		t.Errorf("merged contact identities = %v, %v; want none", ids, err)
	}

	undone, err := f.s.ContactMergeUndo(f.ctx, TenantA, mg.ID, "admin1", at(4*time.Hour))
	if err != nil {
		t.Fatalf("ContactMergeUndo: %v", err)
	}
	want.UndoneAt, want.UndoneBy = ptr(t0.Add(4*time.Hour)), "admin1"
	if diff := cmp.Diff(want, undone); diff != "" {
		t.Errorf("ContactMergeUndo (-want +got):\n%s", diff)
	}
	after := f.snapshot(contacts, convs, sessions)
	if diff := cmp.Diff(before, after, cmpOpts, ignoreUpdatedAt); diff != "" {
		t.Errorf("undo did not restore everything (-before +after):\n%s", diff)
	}
	c, err = f.s.ContactResolve(f.ctx, TenantA, "wa1", "4915112345678", "", at(5*time.Hour))
	if err != nil || c.ID != bea.ID {
		t.Errorf("ContactResolve after undo = %s, %v; want %s", c.ID, err, bea.ID)
	}
	_, err = f.s.ContactMergeUndo(f.ctx, TenantA, mg.ID, "admin1", at(5*time.Hour))
	wantConflict(t, "undo twice", err, "undone")
	_, err = f.s.ContactMergeUndo(f.ctx, TenantA, "no-such-merge", "admin1", at(5*time.Hour))
	wantCode(t, "undo unknown", err, errs.NotFound)

	// Merged again after the undo: a new merge, audited on its own.
	again := f.merge(bea.ID, ada.ID, session.MergeManual)
	ms, err := f.s.ContactMerges(f.ctx, TenantA, session.MergeFilter{ContactID: ada.ID})
	if err != nil || len(ms) != 2 || ms[0].ID != again.ID || ms[1].UndoneAt == nil {
		t.Errorf("merges after merging again = %+v, %v; want the new one, then the undone one", ms, err)
	}
}

func testContactMergeRefusals(t *testing.T, f *fixture) {
	ada, _ := f.person(TenantA, "oa1", "openid-a", "Ada", at(0))
	bea, _ := f.person(TenantA, "oa2", "openid-b", "Bea", at(time.Minute))
	cy, _ := f.person(TenantA, "oa3", "openid-c", "Cy", at(2*time.Minute))
	f.facts(TenantA, "oa1", "openid-a", session.IdentityFacts{UnionID: "u1", Phone: "+4915112345678"})
	f.facts(TenantA, "oa2", "openid-b", session.IdentityFacts{UnionID: "u2", Phone: "+4915112345678", PhoneVerified: true})
	merge := func(s, m string, r session.MergeReason) error {
		_, err := f.s.ContactMerge(f.ctx, TenantA, s, m, r, "sup1", at(time.Hour))
		return err
	}
	wantCode(t, "into itself", merge(ada.ID, ada.ID, session.MergeManual), errs.Invalid)
	wantCode(t, "unknown reason", merge(ada.ID, bea.ID, "hunch"), errs.Invalid)
	wantCode(t, "union id not shared", merge(ada.ID, bea.ID, session.MergeUnionID), errs.Invalid)
	wantCode(t, "phone verified on one side only", merge(ada.ID, bea.ID, session.MergePhone), errs.Invalid)
	wantCode(t, "unknown survivor", merge("nobody", bea.ID, session.MergeManual), errs.NotFound)
	wantCode(t, "unknown merged", merge(ada.ID, "nobody", session.MergeManual), errs.NotFound)
	wantCode(t, "other tenant", func() error {
		_, err := f.s.ContactMerge(f.ctx, TenantB, ada.ID, bea.ID, session.MergeManual, "sup1", t0)
		return err
	}(), errs.NotFound)
	if m := f.get(bea.ID); m.MergedInto != "" {
		t.Fatalf("a refused merge changed the contact: %+v", m)
	}
	f.facts(TenantA, "oa1", "openid-a", session.IdentityFacts{Phone: "+4915112345678", PhoneVerified: true})
	f.merge(ada.ID, bea.ID, session.MergePhone)
	wantConflict(t, "merge a merged contact", merge(cy.ID, bea.ID, session.MergeManual), "already merged")
	wantConflict(t, "merge into a merged contact", merge(bea.ID, cy.ID, session.MergeManual), "already merged")
	wantConflict(t, "merge back", merge(bea.ID, ada.ID, session.MergeManual), "already merged")
}

func testContactMergeKeptConversation(t *testing.T, f *fixture) {
	// Two web-chat visitors on one widget turn out to be one person.
	ada, convA := f.person(TenantA, "web1", "visitor-a", "Ada", at(0))
	bea, convB := f.person(TenantA, "web1", "visitor-b", "Bea", at(time.Minute))
	f.closedSession(convA, "sa", at(time.Minute), 1)
	open := f.insertSession(convB, "sb", func(s *session.Session) { s.State = session.StateActive })
	if err := f.s.ConversationOpenSession(f.ctx, TenantA, convB.ID, "", open.ID); err != nil {
		t.Fatalf("ConversationOpenSession: %v", err)
	}
	_, err := f.s.ContactMerge(f.ctx, TenantA, ada.ID, bea.ID, session.MergeManual, "sup1", at(time.Hour))
	wantConflict(t, "merge while the kept conversation is open", err, convB.ID, "open session")
	if got := f.get(bea.ID); got.MergedInto != "" {
		t.Fatalf("the refused merge changed the contact: %+v", got)
	}
	open.State, open.Version = session.StateClosed, 2
	if err := f.s.SessionUpdate(f.ctx, open, 1); err != nil {
		t.Fatalf("SessionUpdate: %v", err)
	}

	mg := f.merge(ada.ID, bea.ID, session.MergeManual)
	if !slices.Equal(mg.Changes.KeptConversations, []string{convB.ID}) || len(mg.Changes.Conversations) != 0 {
		t.Errorf("changes = %+v; want convB kept", mg.Changes)
	}
	if c, err := f.s.ConversationGet(f.ctx, TenantA, convB.ID); err != nil || c.ContactID != bea.ID {
		t.Errorf("kept conversation contact = %s, %v; want %s", c.ContactID, err, bea.ID)
	}
	// The merged visitor writes on: into the survivor's conversation.
	c, err := f.s.ContactResolve(f.ctx, TenantA, "web1", "visitor-b", "", at(3*time.Hour))
	if err != nil || c.ID != ada.ID {
		t.Fatalf("ContactResolve = %s, %v; want %s", c.ID, err, ada.ID)
	}
	conv, err := f.s.ConversationEnsure(f.ctx, TenantA, "web1", c.ID, at(3*time.Hour))
	if err != nil || conv.ID != convA.ID {
		t.Fatalf("conversation = %s, %v; want the survivor's %s", conv.ID, err, convA.ID)
	}
	// The survivor's history shows the kept conversation too.
	h, err := f.s.ContactHistory(f.ctx, TenantA, ada.ID, session.HistoryQuery{})
	if err != nil {
		t.Fatalf("ContactHistory: %v", err)
	}
	var got []string
	for _, it := range h.Items {
		got = append(got, it.Session.ID)
	}
	if diff := cmp.Diff([]string{"sa", "sb"}, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("history sessions (-want +got):\n%s", diff)
	}

	// A message in the survivor's conversation since the merge may come
	// from the merged visitor: the undo cannot tell, and refuses.
	s2 := f.insertSession(convA, "sa2", nil)
	m := newMessage(convA, s2.ID, "late", "from visitor b, or a?", "")
	m.CreatedAt = at(3 * time.Hour)
	if _, err := f.s.MessageAppend(f.ctx, m); err != nil {
		t.Fatalf("MessageAppend: %v", err)
	}
	_, err = f.s.ContactMergeUndo(f.ctx, TenantA, mg.ID, "sup1", at(4*time.Hour))
	wantConflict(t, "undo after messages in the shared account", err, "cannot be told apart")
	if got := f.get(bea.ID); got.MergedInto != ada.ID {
		t.Errorf("the refused undo changed the contact: %+v", got)
	}
}

func testContactMergeUndoRefusals(t *testing.T, f *fixture) {
	ada, _ := f.person(TenantA, "oa1", "a", "Ada", at(0))
	bea, _ := f.person(TenantA, "oa2", "b", "Bea", at(time.Minute))
	cy, _ := f.person(TenantA, "oa3", "c", "Cy", at(2*time.Minute))
	f.update(TenantA, bea.ID, session.ContactPatch{VIPLevel: ptr(5), Tags: ptr([]string{"b"})})
	first := f.merge(ada.ID, bea.ID, session.MergeManual)
	second := f.merge(cy.ID, ada.ID, session.MergeManual)

	_, err := f.s.ContactMergeUndo(f.ctx, TenantA, first.ID, "sup1", at(3*time.Hour))
	wantConflict(t, "undo under a later merge", err, "merged into "+cy.ID, second.ID)
	if _, err := f.s.ContactMergeUndo(f.ctx, TenantA, second.ID, "sup1", at(3*time.Hour)); err != nil {
		t.Fatalf("undo the later merge: %v", err)
	}
	// An edit since the merge wins over the pre-merge value; untouched
	// fields go back.
	f.update(TenantA, ada.ID, session.ContactPatch{Tags: ptr([]string{"edited"})})
	if _, err := f.s.ContactMergeUndo(f.ctx, TenantA, first.ID, "sup1", at(4*time.Hour)); err != nil {
		t.Fatalf("undo the first merge: %v", err)
	}
	got := f.get(ada.ID)
	if got.VIPLevel != 0 || !slices.Equal(got.Tags, []string{"edited"}) {
		t.Errorf("survivor after undo: vip %d tags %v; want 0 and the edited tags", got.VIPLevel, got.Tags)
	}
	// Erased contacts cannot come back.
	third := f.merge(ada.ID, bea.ID, session.MergeManual)
	if _, err := f.s.ContactDelete(f.ctx, TenantA, ada.ID, "admin1", at(6*time.Hour)); err != nil {
		t.Fatalf("ContactDelete: %v", err)
	}
	_, err = f.s.ContactMergeUndo(f.ctx, TenantA, third.ID, "sup1", at(7*time.Hour))
	wantConflict(t, "undo after erasure", err, "erased")
}

// testContactMergeConcurrent: a pair merged both ways at once ends with
// one merge; the other is refused, not half done.
func testContactMergeConcurrent(t *testing.T, f *fixture) {
	for round := range 3 {
		a, _ := f.person(TenantA, "oa1", fmt.Sprintf("a%d", round), "A", at(0))
		b, _ := f.person(TenantA, "oa2", fmt.Sprintf("b%d", round), "B", at(time.Minute))
		var wg sync.WaitGroup
		errsOf := make([]error, 2)
		start := make(chan struct{})
		for i, pair := range [][2]string{{a.ID, b.ID}, {b.ID, a.ID}} {
			wg.Go(func() {
				<-start
				_, errsOf[i] = f.s.ContactMerge(f.ctx, TenantA, pair[0], pair[1], session.MergeManual, "sup1", at(time.Hour))
			})
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, err := range errsOf {
			switch {
			case err == nil:
				ok++
			case !errs.Is(err, errs.Conflict):
				t.Errorf("round %d: %v, want success or conflict", round, err)
			}
		}
		if ok != 1 {
			t.Errorf("round %d: %d merges succeeded (%v), want 1", round, ok, errsOf)
		}
		ga, gb := f.get(a.ID), f.get(b.ID)
		if (ga.MergedInto == "") == (gb.MergedInto == "") {
			t.Errorf("round %d: merged_into %q and %q; want exactly one set", round, ga.MergedInto, gb.MergedInto)
		}
	}
}

func testContactMerges(t *testing.T, f *fixture) {
	ada, _ := f.person(TenantA, "oa1", "a", "Ada", at(0))
	bea, _ := f.person(TenantA, "oa2", "b", "Bea", at(time.Minute))
	cy, _ := f.person(TenantA, "oa3", "c", "Cy", at(2*time.Minute))
	m1, err := f.s.ContactMerge(f.ctx, TenantA, ada.ID, bea.ID, session.MergeManual, "sup1", at(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	m2, err := f.s.ContactMerge(f.ctx, TenantA, ada.ID, cy.ID, session.MergeManual, "sup2", at(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ids := func(ms []session.Merge) []string {
		out := []string{}
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	tests := []struct {
		name string
		f    session.MergeFilter
		want []string
	}{
		{"all, newest first", session.MergeFilter{}, []string{m2.ID, m1.ID}},
		{"of a merged contact", session.MergeFilter{ContactID: bea.ID}, []string{m1.ID}},
		{"of the survivor", session.MergeFilter{ContactID: ada.ID}, []string{m2.ID, m1.ID}},
		{"limit", session.MergeFilter{Limit: 1}, []string{m2.ID}},
		{"before", session.MergeFilter{Before: m2.ID}, []string{m1.ID}},
	}
	for _, tc := range tests {
		got, err := f.s.ContactMerges(f.ctx, TenantA, tc.f)
		if err != nil {
			t.Fatalf("%s: ContactMerges: %v", tc.name, err)
		}
		if diff := cmp.Diff(tc.want, ids(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	got, err := f.s.ContactMerges(f.ctx, TenantA, session.MergeFilter{ContactID: cy.ID})
	if err != nil || len(got) != 1 {
		t.Fatalf("ContactMerges: %v, %v", got, err)
	}
	if diff := cmp.Diff(m2, got[0]); diff != "" {
		t.Errorf("listed merge (-want +got):\n%s", diff)
	}
	_, err = f.s.ContactMerges(f.ctx, TenantA, session.MergeFilter{Before: "no-such-merge"})
	wantCode(t, "ContactMerges before unknown", err, errs.Invalid)
}

func testContactHistory(t *testing.T, f *fixture) {
	ada, convA := f.person(TenantA, "oa1", "a", "Ada", at(0))
	bea, convB := f.person(TenantA, "wa1", "b", "Bea", at(0))
	other, convO := f.person(TenantA, "oa1", "o", "Other", at(0))
	_ = other
	f.closedSession(convA, "s1", at(1*time.Minute), 3)
	f.closedSession(convB, "s2", at(2*time.Minute), 1)
	f.closedSession(convA, "s3", at(3*time.Minute), 0)
	f.closedSession(convO, "s-other", at(4*time.Minute), 2)
	f.closedSession(convB, "s4", at(5*time.Minute), 4)
	f.merge(ada.ID, bea.ID, session.MergeManual)

	type item struct {
		Session string
		Seqs    []int64
		More    bool
	}
	page := func(q session.HistoryQuery) ([]item, string) {
		t.Helper()
		h, err := f.s.ContactHistory(f.ctx, TenantA, ada.ID, q)
		if err != nil {
			t.Fatalf("ContactHistory(%+v): %v", q, err)
		}
		out := []item{}
		for _, it := range h.Items {
			if it.Session.ContactID != ada.ID {
				t.Errorf("session %s has contact %s, want the survivor", it.Session.ID, it.Session.ContactID)
			}
			for _, m := range it.Messages {
				if m.SessionID != it.Session.ID {
					t.Errorf("message %s of session %s listed under %s", m.ID, m.SessionID, it.Session.ID)
				}
			}
			out = append(out, item{it.Session.ID, seqs(it.Messages), it.MoreMessages})
		}
		checkUTC(t, h)
		return out, h.Next
	}
	// convB's seqs: s2 has 1, s4 has 2..5; convA's: s1 has 1..3.
	got, next := page(session.HistoryQuery{Limit: 2, Messages: 2})
	want := []item{{"s4", []int64{4, 5}, true}, {"s3", []int64{}, false}}
	if diff := cmp.Diff(want, got); diff != "" || next != "s3" {
		t.Errorf("page 1 (-want +got):\n%s next %q", diff, next)
	}
	got, next = page(session.HistoryQuery{Before: next, Limit: 2, Messages: 2})
	want = []item{{"s2", []int64{1}, false}, {"s1", []int64{2, 3}, true}}
	if diff := cmp.Diff(want, got); diff != "" || next != "" {
		t.Errorf("last page (-want +got):\n%s next %q", diff, next)
	}
	got, next = page(session.HistoryQuery{Before: "s1"})
	if len(got) != 0 || next != "" {
		t.Errorf("after the oldest = %v next %q; want empty, no next", got, next)
	}
	got, next = page(session.HistoryQuery{})
	want = []item{{"s4", []int64{2, 3, 4, 5}, false}, {"s3", []int64{}, false}, {"s2", []int64{1}, false}, {"s1", []int64{1, 2, 3}, false}}
	if diff := cmp.Diff(want, got); diff != "" || next != "" {
		t.Errorf("default page (-want +got):\n%s next %q", diff, next)
	}

	_, err := f.s.ContactHistory(f.ctx, TenantA, ada.ID, session.HistoryQuery{Before: "s-other"})
	wantCode(t, "before another contact's session", err, errs.Invalid)
	_, err = f.s.ContactHistory(f.ctx, TenantA, "no-such-contact", session.HistoryQuery{})
	wantCode(t, "unknown contact", err, errs.NotFound)
	// A merged contact's own history is what stayed with it: nothing here.
	h, err := f.s.ContactHistory(f.ctx, TenantA, bea.ID, session.HistoryQuery{})
	if err != nil || len(h.Items) != 0 {
		t.Errorf("merged contact's history = %+v, %v; want empty", h, err)
	}
}

func testContactExport(t *testing.T, f *fixture) {
	ada, convA := f.person(TenantA, "oa1", "a", "Ada", at(0))
	bea, convB := f.person(TenantA, "oa1", "b", "Bea", at(time.Minute))
	_, convO := f.person(TenantA, "oa1", "o", "Other", at(0))
	f.facts(TenantA, "oa1", "a", session.IdentityFacts{UnionID: "u1", Channel: "wechat_oa"})
	sa := f.closedSession(convA, "sa", at(time.Minute), 2)
	sb := f.closedSession(convB, "sb", at(2*time.Minute), 1)
	f.closedSession(convO, "so", at(3*time.Minute), 1)
	for _, e := range []session.EventRecord{
		{TenantID: TenantA, SessionID: sa.ID, Type: session.EvCreated, At: at(time.Minute)},
		{TenantID: TenantA, SessionID: sb.ID, Type: session.EvCreated, At: at(2 * time.Minute)},
		{TenantID: TenantA, SessionID: "so", Type: session.EvCreated, At: at(3 * time.Minute)},
	} {
		if err := f.s.EventInsert(f.ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []session.Note{
		{TenantID: TenantA, ID: "n1", SessionID: sb.ID, AgentID: "a1", Body: "prefers mornings", CreatedAt: at(time.Hour)},
		{TenantID: TenantA, ID: "n2", SessionID: "so", AgentID: "a1", Body: "someone else", CreatedAt: at(time.Hour)},
	} {
		if err := f.s.NoteInsert(f.ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	mg := f.merge(ada.ID, bea.ID, session.MergeManual)

	x, err := f.s.ContactExport(f.ctx, TenantA, ada.ID)
	if err != nil {
		t.Fatalf("ContactExport: %v", err)
	}
	checkUTC(t, x)
	if x.Format != session.ExportFormat || x.Contact.ID != ada.ID {
		t.Errorf("format %q contact %s", x.Format, x.Contact.ID)
	}
	type summary struct {
		Merged, Identities, Conversations, Sessions, EventSessions, Messages, Notes, Merges []string
	}
	var got summary
	for _, c := range x.MergedContacts {
		got.Merged = append(got.Merged, c.ID)
	}
	for _, i := range x.Identities {
		got.Identities = append(got.Identities, i.AccountID+"/"+i.ExternalID)
	}
	for _, c := range x.Conversations {
		got.Conversations = append(got.Conversations, c.ID)
	}
	for _, s := range x.Sessions {
		got.Sessions = append(got.Sessions, s.ID)
	}
	for _, e := range x.Events {
		got.EventSessions = append(got.EventSessions, e.SessionID)
	}
	for _, m := range x.Messages {
		got.Messages = append(got.Messages, m.ID)
	}
	for _, n := range x.Notes {
		got.Notes = append(got.Notes, n.ID)
	}
	for _, m := range x.Merges {
		got.Merges = append(got.Merges, m.ID)
	}
	msgs := []string{"sa-m1", "sa-m2", "sb-m1"}
	if convA.ID > convB.ID {
		msgs = []string{"sb-m1", "sa-m1", "sa-m2"}
	}
	want := summary{
		Merged:        []string{bea.ID},
		Identities:    []string{"oa1/a", "oa1/b"},
		Conversations: []string{convA.ID, convB.ID},
		Sessions:      []string{sa.ID, sb.ID},
		EventSessions: []string{sa.ID, sb.ID},
		Messages:      msgs,
		Notes:         []string{"n1"},
		Merges:        []string{mg.ID},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("export (-want +got):\n%s", diff)
	}
	_, err = f.s.ContactExport(f.ctx, TenantA, "no-such-contact")
	wantCode(t, "ContactExport unknown", err, errs.NotFound)
}

func testContactDelete(t *testing.T, f *fixture) {
	ada, convA := f.person(TenantA, "oa1", "a", "Ada", at(0))
	bea, convB := f.person(TenantA, "wa1", "b", "Bea", at(time.Minute))
	_, convO := f.person(TenantA, "oa1", "o", "Other", at(0))
	f.facts(TenantA, "oa1", "a", session.IdentityFacts{UnionID: "u1", Phone: "+4915112345678", DisplayName: "Ada"})
	f.update(TenantA, ada.ID, session.ContactPatch{Tags: ptr([]string{"vip"}), Attributes: ptr(map[string]string{"crm": "123"}), VIPLevel: ptr(2)})
	sa := f.closedSession(convA, "sa", at(time.Minute), 2)
	f.closedSession(convB, "sb", at(2*time.Minute), 1)
	f.closedSession(convO, "so", at(3*time.Minute), 1)
	if err := f.s.EventInsert(f.ctx, session.EventRecord{TenantID: TenantA, SessionID: sa.ID, Type: session.EvCreated,
		Data: []byte(`{"text":"personal"}`), At: at(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.NoteInsert(f.ctx, session.Note{TenantID: TenantA, ID: "n1", SessionID: sa.ID, AgentID: "a1", Body: "lives at ...", CreatedAt: at(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// An outbound message queued for a provider holds text and address.
	out := newMessage(convA, sa.ID, "out1", "your parcel is late", "")
	out.Direction, out.SenderKind, out.SenderID, out.Status = session.Outbound, session.SenderAgent, "a1", session.StatusQueued
	out.Deliver = &session.Delivery{AccountID: "oa1", Channel: "wechat_oa"}
	if _, err := f.s.MessageAppend(f.ctx, out); err != nil {
		t.Fatalf("MessageAppend with delivery: %v", err)
	}
	mg := f.merge(ada.ID, bea.ID, session.MergeManual)
	open := f.insertSession(convB, "s-open", func(s *session.Session) { s.State = session.StateWrapup })

	_, err := f.s.ContactDelete(f.ctx, TenantA, ada.ID, "admin1", at(3*time.Hour))
	wantConflict(t, "erase with a session in wrap-up", err, open.ID)
	_, err = f.s.ContactDelete(f.ctx, TenantA, bea.ID, "admin1", at(3*time.Hour))
	wantConflict(t, "erase a merged contact", err, ada.ID)
	open.State, open.Version = session.StateClosed, 2
	if err := f.s.SessionUpdate(f.ctx, open, 1); err != nil {
		t.Fatal(err)
	}

	er, err := f.s.ContactDelete(f.ctx, TenantA, ada.ID, "admin1", at(3*time.Hour))
	if err != nil {
		t.Fatalf("ContactDelete: %v", err)
	}
	want := session.Erasure{Contacts: []string{ada.ID, bea.ID}, Identities: 2, Messages: 4, Outbox: 1, Notes: 1,
		Sessions: 3, Conversations: 2, Events: 1, Merges: 1}
	if diff := cmp.Diff(want, er); diff != "" {
		t.Errorf("ContactDelete (-want +got):\n%s", diff)
	}
	for _, id := range []string{ada.ID, bea.ID} {
		_, err := f.s.ContactGet(f.ctx, TenantA, id)
		wantCode(t, "ContactGet erased", err, errs.NotFound)
		_, err = f.s.ContactIdentities(f.ctx, TenantA, id)
		wantCode(t, "ContactIdentities erased", err, errs.NotFound)
		_, err = f.s.ContactHistory(f.ctx, TenantA, id, session.HistoryQuery{})
		wantCode(t, "ContactHistory erased", err, errs.NotFound)
		_, err = f.s.ContactExport(f.ctx, TenantA, id)
		wantCode(t, "ContactExport erased", err, errs.NotFound)
		_, err = f.s.ContactUpdate(f.ctx, TenantA, id, session.ContactPatch{VIPLevel: ptr(1)}, t0)
		wantCode(t, "ContactUpdate erased", err, errs.NotFound)
	}
	if cs, err := f.s.ContactList(f.ctx, TenantA, session.ContactFilter{IncludeMerged: true}); err != nil || len(cs) != 1 {
		t.Errorf("ContactList after erasure = %v, %v; want only the other contact", contactIDs(cs), err)
	}
	// What stays for KPIs carries no personal data.
	se, err := f.s.SessionGet(f.ctx, TenantA, sa.ID)
	if err != nil || se.State != session.StateClosed {
		t.Errorf("kept session = %+v, %v", se, err)
	}
	if ms, err := f.s.MessageListAfter(f.ctx, TenantA, convA.ID, 0, 100); err != nil || len(ms) != 0 {
		t.Errorf("messages after erasure = %d, %v; want none", len(ms), err)
	}
	if ns, err := f.s.NoteList(f.ctx, TenantA, sa.ID); err != nil || len(ns) != 0 {
		t.Errorf("notes after erasure = %v, %v; want none", ns, err)
	}
	evs, err := f.s.EventList(f.ctx, TenantA, sa.ID)
	if err != nil || len(evs) != 1 || string(evs[0].Data) != "{}" {
		t.Errorf("events after erasure = %+v, %v; want one with empty data", evs, err)
	}
	ms, err := f.s.ContactMerges(f.ctx, TenantA, session.MergeFilter{})
	if err != nil || len(ms) != 1 || !ms[0].Changes.Erased || len(ms[0].Changes.Identities) != 0 || ms[0].Changes.SurvivorBefore.DisplayName != "" {
		t.Errorf("merge record after erasure = %+v, %v; want the changes cleared", ms, err)
	}
	_, err = f.s.ContactMergeUndo(f.ctx, TenantA, mg.ID, "sup1", at(4*time.Hour))
	wantConflict(t, "undo an erased merge", err, "erased")
	// The person writes again: a new contact, nothing from before.
	c, err := f.s.ContactResolve(f.ctx, TenantA, "oa1", "a", "Ada again", at(5*time.Hour))
	if err != nil || c.ID == ada.ID {
		t.Errorf("ContactResolve after erasure = %s, %v; want a new contact", c.ID, err)
	}
	if id, err := f.s.IdentityGet(f.ctx, TenantA, "oa1", "a"); err != nil || id.UnionID != "" || id.Phone != "" {
		t.Errorf("identity after erasure = %+v, %v; want a fresh one", id, err)
	}
	_, err = f.s.ContactDelete(f.ctx, TenantA, ada.ID, "admin1", at(6*time.Hour))
	wantCode(t, "erase twice", err, errs.NotFound)
}

func testContactSettings(t *testing.T, f *fixture) {
	got, err := f.s.ContactSettingsGet(f.ctx, TenantA)
	if err != nil {
		t.Fatalf("ContactSettingsGet: %v", err)
	}
	if diff := cmp.Diff(session.ContactSettings{TenantID: TenantA}, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	for _, on := range []bool{true, false, true} {
		cs := session.ContactSettings{TenantID: TenantA, AutoMergeUnionID: on, UpdatedAt: ptr(at(time.Hour)), UpdatedBy: "admin1"}
		if err := f.s.ContactSettingsPut(f.ctx, cs); err != nil {
			t.Fatalf("ContactSettingsPut: %v", err)
		}
		got, err := f.s.ContactSettingsGet(f.ctx, TenantA)
		if err != nil {
			t.Fatalf("ContactSettingsGet: %v", err)
		}
		cs.UpdatedAt = ptr(t0.Add(time.Hour))
		if diff := cmp.Diff(cs, got); diff != "" {
			t.Errorf("saved (-want +got):\n%s", diff)
		}
	}
	if got, err := f.s.ContactSettingsGet(f.ctx, TenantB); err != nil || got.AutoMergeUnionID {
		t.Errorf("other tenant = %+v, %v; want the defaults", got, err)
	}
	err = f.s.ContactSettingsPut(f.ctx, session.ContactSettings{TenantID: "no-such-tenant", UpdatedAt: ptr(t0)})
	wantCode(t, "ContactSettingsPut unknown tenant", err, errs.Invalid)
}

func testContactTenantIsolation(t *testing.T, f *fixture) {
	ada, conv := f.person(TenantA, "oa1", "a", "Ada", at(0))
	bea, _ := f.person(TenantA, "oa2", "b", "Bea", at(0))
	f.closedSession(conv, "sa", at(time.Minute), 1)
	mg := f.merge(ada.ID, bea.ID, session.MergeManual)
	ctx, b := f.ctx, TenantB
	notFound := []struct {
		name string
		call func() error
	}{
		{"ContactUpdate", func() error {
			_, err := f.s.ContactUpdate(ctx, b, ada.ID, session.ContactPatch{VIPLevel: ptr(1)}, t0)
			return err
		}},
		{"ContactIdentities", func() error { _, err := f.s.ContactIdentities(ctx, b, ada.ID); return err }},
		{"IdentityGet", func() error { _, err := f.s.IdentityGet(ctx, b, "oa1", "a"); return err }},
		{"IdentityUpdateFacts", func() error {
			_, _, err := f.s.IdentityUpdateFacts(ctx, b, "oa1", "a", session.IdentityFacts{UnionID: "x"})
			return err
		}},
		{"ContactMergeCandidates", func() error { _, err := f.s.ContactMergeCandidates(ctx, b, ada.ID); return err }},
		{"ContactMergeUndo", func() error { _, err := f.s.ContactMergeUndo(ctx, b, mg.ID, "x", t0); return err }},
		{"ContactHistory", func() error { _, err := f.s.ContactHistory(ctx, b, ada.ID, session.HistoryQuery{}); return err }},
		{"ContactExport", func() error { _, err := f.s.ContactExport(ctx, b, ada.ID); return err }},
		{"ContactDelete", func() error { _, err := f.s.ContactDelete(ctx, b, ada.ID, "x", t0); return err }},
	}
	for _, tc := range notFound {
		wantCode(t, tc.name+" across tenants", tc.call(), errs.NotFound)
	}
	if cs, err := f.s.ContactList(ctx, b, session.ContactFilter{Query: "Ada"}); err != nil || len(cs) != 0 {
		t.Errorf("ContactList across tenants = %v, %v", contactIDs(cs), err)
	}
	if ms, err := f.s.ContactMerges(ctx, b, session.MergeFilter{}); err != nil || len(ms) != 0 {
		t.Errorf("ContactMerges across tenants = %v, %v", ms, err)
	}
	// Nothing of tenant A changed.
	if got := f.get(ada.ID); got.VIPLevel != 0 {
		t.Errorf("tenant A's contact changed: %+v", got)
	}
	if _, err := f.s.IdentityGet(f.ctx, TenantA, "oa1", "a"); err != nil {
		t.Errorf("tenant A's identity: %v", err)
	}
}
