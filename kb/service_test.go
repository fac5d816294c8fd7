package kb_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/agents/agentsql"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
	"github.com/switchboard-acd/switchboard/kb"
	"github.com/switchboard-acd/switchboard/kb/kbsql"
)

var start = time.Date(2025, 6, 2, 8, 0, 0, 0, time.UTC)

// published records the tenants a Service announced changes for.
type published struct {
	mu      sync.Mutex
	tenants []string
}

func (p *published) KBChanged(_ context.Context, tenantID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tenants = append(p.tenants, tenantID)
}

// take returns the announcements since the last take.
func (p *published) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.tenants
	p.tenants = nil
	return out
}

type fixture struct {
	store *kbsql.Store
	clk   *clock.Fake
	pub   *published
	svc   *kb.Service
}

// newFixture gives a service over SQLite with tenants t1 and t2.
func newFixture(t *testing.T) fixture {
	t.Helper()
	return newFixtureOn(t, "sqlite")
}

func newFixtureOn(t *testing.T, kind string) fixture {
	t.Helper()
	d := testenv.DB(t, kind)
	for _, id := range []string{"t1", "t2"} {
		if _, err := agentsql.New(d).TenantCreate(t.Context(), agents.Tenant{ID: id, Name: id, CreatedAt: start}); err != nil {
			t.Fatal(err)
		}
	}
	f := fixture{store: kbsql.New(d), clk: clock.NewFake(start), pub: &published{}}
	f.svc = kb.NewService(f.store, f.clk, f.pub)
	return f
}

func (f fixture) entry(t *testing.T, tenantID, question string, variants ...string) kb.Entry {
	t.Helper()
	e, err := f.svc.CreateEntry(t.Context(), tenantID, "editor", kb.Entry{
		Question: question, Variants: variants, Answer: kb.Answer{Text: "About " + question}, Enabled: true,
	})
	if err != nil {
		t.Fatalf("CreateEntry %q: %v", question, err)
	}
	return e
}

func (f fixture) miss(t *testing.T, tenantID, key string, texts ...string) kb.MissGroup {
	t.Helper()
	var g kb.MissGroup
	for i, text := range texts {
		var err error
		g, err = f.store.MissRecord(t.Context(), kb.Miss{TenantID: tenantID, SessionID: "s-" + text, Text: text, Key: key,
			At: start.Add(time.Duration(i) * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
	}
	return g
}

func wantCode(t *testing.T, what string, err error, code errs.Code) {
	t.Helper()
	if got := errs.CodeOf(err); got != code {
		t.Fatalf("%s: error code = %q (%v), want %q", what, got, err, code)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestEntryLifecycle(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	e, err := f.svc.CreateEntry(ctx, "t1", "alice", kb.Entry{
		ID: "ignored", Version: 9, Question: " Refund? ", Variants: []string{"money back", "Money back"},
		Answer: kb.Answer{Text: "Go to Orders."}, Enabled: true, CreatedAt: start.Add(-time.Hour),
	})
	must(t, "CreateEntry", err)
	if _, perr := uuid.Parse(e.ID); perr != nil || e.ID == "ignored" {
		t.Errorf("id %q is not a generated UUID", e.ID)
	}
	if v, _ := uuid.Parse(e.ID); v.Version() != 7 {
		t.Errorf("id %s is UUID version %d, want 7", e.ID, v.Version())
	}
	if e.Version != 1 || !e.CreatedAt.Equal(start) || !e.UpdatedAt.Equal(start) || e.UpdatedBy != "alice" ||
		e.Question != "Refund?" || !slices.Equal(e.Variants, []string{"money back"}) || e.TenantID != "t1" {
		t.Errorf("created %+v", e)
	}
	if d := cmp.Diff([]string{"t1"}, f.pub.take()); d != "" {
		t.Errorf("announcements after create (-want +got):\n%s", d)
	}

	f.clk.Advance(time.Minute)
	ch := e
	ch.Answer.Text = "Orders > Refund."
	v2, err := f.svc.UpdateEntry(ctx, "t1", "bob", ch)
	must(t, "UpdateEntry", err)
	if v2.Version != 2 || !v2.UpdatedAt.Equal(start.Add(time.Minute)) || !v2.CreatedAt.Equal(start) || v2.UpdatedBy != "bob" {
		t.Errorf("updated %+v", v2)
	}
	// A second editor saving the version they read gets a conflict that
	// tells the current version, and nothing is announced.
	f.pub.take()
	_, err = f.svc.UpdateEntry(ctx, "t1", "carol", ch)
	wantCode(t, "UpdateEntry stale", err, errs.Conflict)
	if v := errs.DetailsOf(err)["version"]; v != 2 {
		t.Errorf("conflict details version = %v, want 2", v)
	}
	if got := f.pub.take(); len(got) != 0 {
		t.Errorf("a refused update announced %v", got)
	}
	noVersion := v2
	noVersion.Version = 0
	_, err = f.svc.UpdateEntry(ctx, "t1", "carol", noVersion)
	wantCode(t, "UpdateEntry without version", err, errs.Invalid)

	got, err := f.svc.GetEntry(ctx, "t1", e.ID)
	must(t, "GetEntry", err)
	if d := cmp.Diff(v2, got); d != "" {
		t.Errorf("GetEntry (-want +got):\n%s", d)
	}
	list, err := f.svc.ListEntries(ctx, "t1", kb.EntryFilter{Text: "refund"})
	must(t, "ListEntries", err)
	if len(list) != 1 || list[0].ID != e.ID {
		t.Errorf("ListEntries = %+v", list)
	}

	must(t, "DeleteEntry", f.svc.DeleteEntry(ctx, "t1", e.ID, "dave"))
	hist, err := f.svc.EntryHistory(ctx, "t1", e.ID)
	must(t, "EntryHistory", err)
	var actors []string
	for _, c := range hist {
		actors = append(actors, string(c.Action)+":"+c.Actor)
	}
	if d := cmp.Diff([]string{"delete:dave", "update:bob", "create:alice"}, actors); d != "" {
		t.Errorf("history (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"t1"}, f.pub.take()); d != "" {
		t.Errorf("announcements after delete (-want +got):\n%s", d)
	}
	wantCode(t, "DeleteEntry again", f.svc.DeleteEntry(ctx, "t1", e.ID, "dave"), errs.NotFound)
	if got := f.pub.take(); len(got) != 0 {
		t.Errorf("a refused delete announced %v", got)
	}
}

func TestCreateEntryInvalid(t *testing.T) {
	f := newFixture(t)
	_, err := f.svc.CreateEntry(t.Context(), "t1", "alice", kb.Entry{Question: "", Answer: kb.Answer{Text: ""}, Language: "fr"})
	wantCode(t, "CreateEntry invalid", err, errs.Invalid)
	if d := cmp.Diff([]string{"question", "answer.text", "language"}, fields(err)); d != "" {
		t.Errorf("problems (-want +got):\n%s", d)
	}
	if errs.MessageOf(err) != "question: must not be empty (and 2 more problems)" {
		t.Errorf("message = %q", errs.MessageOf(err))
	}
	if got := f.pub.take(); len(got) != 0 {
		t.Errorf("a refused create announced %v", got)
	}
	if list, _ := f.svc.ListEntries(t.Context(), "t1", kb.EntryFilter{}); len(list) != 0 {
		t.Errorf("stored %+v", list)
	}
}

// TestOtherTenantsIDs uses tenant t1's ids from tenant t2: every operation
// answers NotFound and t1's objects do not change.
func TestOtherTenantsIDs(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	e := f.entry(t, "t1", "refund")
	r, err := f.svc.CreateRule(ctx, "t1", kb.Rule{Name: "hi", Kind: kb.RuleExact, Keywords: []string{"hi"}, Answer: kb.Answer{Text: "Hello"}})
	must(t, "CreateRule", err)
	g := f.miss(t, "t1", "where is it", "where is it")
	f.pub.take()

	_, err = f.svc.GetEntry(ctx, "t2", e.ID)
	wantCode(t, "GetEntry", err, errs.NotFound)
	_, err = f.svc.UpdateEntry(ctx, "t2", "x", e)
	wantCode(t, "UpdateEntry", err, errs.NotFound)
	wantCode(t, "DeleteEntry", f.svc.DeleteEntry(ctx, "t2", e.ID, "x"), errs.NotFound)
	_, err = f.svc.EntryHistory(ctx, "t2", e.ID)
	wantCode(t, "EntryHistory", err, errs.NotFound)
	_, err = f.svc.GetRule(ctx, "t2", r.ID)
	wantCode(t, "GetRule", err, errs.NotFound)
	_, err = f.svc.UpdateRule(ctx, "t2", r)
	wantCode(t, "UpdateRule", err, errs.NotFound)
	wantCode(t, "DeleteRule", f.svc.DeleteRule(ctx, "t2", r.ID), errs.NotFound)
	_, err = f.svc.GetMiss(ctx, "t2", g.ID)
	wantCode(t, "GetMiss", err, errs.NotFound)
	wantCode(t, "DeleteMisses", f.svc.DeleteMisses(ctx, "t2", []string{g.ID}), errs.NotFound)
	_, _, err = f.svc.Promote(ctx, "t2", "x", kb.Promotion{GroupIDs: []string{g.ID}, Question: "q", Answer: kb.Answer{Text: "a"}})
	wantCode(t, "Promote another tenant's group", err, errs.NotFound)
	own := f.miss(t, "t2", "mine", "mine")
	_, _, err = f.svc.Promote(ctx, "t2", "x", kb.Promotion{GroupIDs: []string{own.ID}, EntryID: e.ID})
	wantCode(t, "Promote into another tenant's entry", err, errs.NotFound)
	if got := f.pub.take(); len(got) != 0 {
		t.Errorf("refused operations announced %v", got)
	}

	if got, err := f.svc.GetEntry(ctx, "t1", e.ID); err != nil || got.Version != 1 {
		t.Errorf("t1 entry = %+v, %v", got, err)
	}
	if got, err := f.svc.GetRule(ctx, "t1", r.ID); err != nil || got.Version != 1 {
		t.Errorf("t1 rule = %+v, %v", got, err)
	}
	if _, err := f.svc.GetMiss(ctx, "t1", g.ID); err != nil {
		t.Errorf("t1 miss group: %v", err)
	}
	if _, err := f.svc.GetMiss(ctx, "t2", own.ID); err != nil {
		t.Errorf("t2's own group was deleted by a refused promote: %v", err)
	}
}

func TestRules(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	r, err := f.svc.CreateRule(ctx, "t1", kb.Rule{Name: " Order number ", Kind: kb.RuleRegex,
		Keywords: []string{`^#?\d{6}$`}, Handoff: true, GroupID: "sales", Enabled: true})
	must(t, "CreateRule", err)
	if r.Name != "Order number" || r.Version != 1 || !r.CreatedAt.Equal(start) || r.ID == "" {
		t.Errorf("created %+v", r)
	}
	_, err = f.svc.CreateRule(ctx, "t1", kb.Rule{Name: "bad", Kind: kb.RuleRegex, Keywords: []string{`\d{1,1000}`}, Handoff: true})
	wantCode(t, "CreateRule complex regex", err, errs.Invalid)
	if d := cmp.Diff([]string{"keywords[0]"}, fields(err)); d != "" {
		t.Errorf("problems (-want +got):\n%s", d)
	}
	f.clk.Advance(time.Second)
	r.Priority = 10
	r2, err := f.svc.UpdateRule(ctx, "t1", r)
	must(t, "UpdateRule", err)
	if r2.Version != 2 || r2.Priority != 10 || !r2.UpdatedAt.Equal(start.Add(time.Second)) {
		t.Errorf("updated %+v", r2)
	}
	_, err = f.svc.UpdateRule(ctx, "t1", r)
	wantCode(t, "UpdateRule stale", err, errs.Conflict)
	list, err := f.svc.ListRules(ctx, "t1")
	must(t, "ListRules", err)
	if len(list) != 1 || list[0].Version != 2 {
		t.Errorf("ListRules = %+v", list)
	}
	must(t, "DeleteRule", f.svc.DeleteRule(ctx, "t1", r.ID))
	if d := cmp.Diff([]string{"t1", "t1", "t1"}, f.pub.take()); d != "" {
		t.Errorf("announcements (-want +got):\n%s", d)
	}
}

func TestSettings(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	s, err := f.svc.GetSettings(ctx, "t1")
	must(t, "GetSettings", err)
	if d := cmp.Diff(kb.DefaultSettings("t1"), s); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
	s.AnswerThreshold, s.SuggestThreshold, s.HandoffWords = 0.8, 0.5, []string{"human", " human "}
	put, err := f.svc.PutSettings(ctx, "t1", s)
	must(t, "PutSettings", err)
	if !slices.Equal(put.HandoffWords, []string{"human"}) || !put.UpdatedAt.Equal(start) || put.TenantID != "t1" {
		t.Errorf("put %+v", put)
	}
	s.SuggestThreshold = 0.9
	_, err = f.svc.PutSettings(ctx, "t1", s)
	wantCode(t, "PutSettings suggest above answer", err, errs.Invalid)
	got, err := f.svc.GetSettings(ctx, "t1")
	must(t, "GetSettings", err)
	if d := cmp.Diff(put, got); d != "" {
		t.Errorf("GetSettings after refused put (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"t1"}, f.pub.take()); d != "" {
		t.Errorf("announcements (-want +got):\n%s", d)
	}
}

func TestPromoteIntoNewEntry(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	g1 := f.miss(t, "t1", "where is my parcel", "Where is my parcel?", "where is my parcel", "WHERE IS MY PARCEL?")
	g2 := f.miss(t, "t1", "parcel not arrived", "parcel not arrived")
	g3 := f.miss(t, "t1", "unrelated", "unrelated")
	f.clk.Advance(time.Hour)

	e, created, err := f.svc.Promote(ctx, "t1", "editor", kb.Promotion{
		GroupIDs: []string{g1.ID, g2.ID}, Question: "Where is my parcel?", Answer: kb.Answer{Text: "Track it under Orders."},
		Category: "shipping", Language: kb.LangEnglish, Keywords: []string{"parcel"},
	})
	must(t, "Promote", err)
	if !created {
		t.Errorf("created = false")
	}
	// The texts become variants once each (case-insensitively), the
	// question itself excluded.
	if d := cmp.Diff([]string{"where is my parcel", "parcel not arrived"}, e.Variants); d != "" {
		t.Errorf("variants (-want +got):\n%s", d)
	}
	if e.Question != "Where is my parcel?" || e.Category != "shipping" || !e.Enabled || e.Version != 1 ||
		!e.CreatedAt.Equal(start.Add(time.Hour)) || e.UpdatedBy != "editor" {
		t.Errorf("entry %+v", e)
	}
	stored, err := f.svc.GetEntry(ctx, "t1", e.ID)
	must(t, "GetEntry", err)
	if d := cmp.Diff(e, stored); d != "" {
		t.Errorf("stored (-want +got):\n%s", d)
	}
	left, err := f.svc.ListMisses(ctx, "t1", 0)
	must(t, "ListMisses", err)
	if len(left) != 1 || left[0].ID != g3.ID {
		t.Errorf("groups left = %+v, want only %s", left, g3.ID)
	}
	if d := cmp.Diff([]string{"t1"}, f.pub.take()); d != "" {
		t.Errorf("announcements (-want +got):\n%s", d)
	}
}

func TestPromoteIntoExistingEntry(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	e := f.entry(t, "t1", "Refund policy", "money back")
	g1 := f.miss(t, "t1", "can i get my money back", "can I get my money back", "Money back")
	long := f.miss(t, "t1", "long", strings.Repeat("y", kb.MaxQuestionLen+1))
	f.pub.take()

	// A stale entry version refuses the promote and keeps the groups.
	_, _, err := f.svc.Promote(ctx, "t1", "editor", kb.Promotion{GroupIDs: []string{g1.ID}, EntryID: e.ID, EntryVersion: 5})
	wantCode(t, "Promote stale entry", err, errs.Conflict)
	// An unknown group refuses the promote: the entry is unchanged.
	_, _, err = f.svc.Promote(ctx, "t1", "editor", kb.Promotion{GroupIDs: []string{g1.ID, "nope"}, EntryID: e.ID})
	wantCode(t, "Promote unknown group", err, errs.NotFound)
	if got, _ := f.svc.GetEntry(ctx, "t1", e.ID); got.Version != 1 {
		t.Errorf("entry changed by a refused promote: %+v", got)
	}
	if _, err := f.svc.GetMiss(ctx, "t1", g1.ID); err != nil {
		t.Errorf("group deleted by a refused promote: %v", err)
	}
	if got := f.pub.take(); len(got) != 0 {
		t.Errorf("refused promotes announced %v", got)
	}

	f.clk.Advance(time.Minute)
	got, created, err := f.svc.Promote(ctx, "t1", "reviewer", kb.Promotion{GroupIDs: []string{g1.ID, long.ID}, EntryID: e.ID, EntryVersion: 1})
	must(t, "Promote into entry", err)
	if created {
		t.Errorf("created = true for an existing entry")
	}
	// "Money back" duplicates an existing variant; the over-long text is left out.
	if d := cmp.Diff([]string{"money back", "can I get my money back"}, got.Variants); d != "" {
		t.Errorf("variants (-want +got):\n%s", d)
	}
	if got.Version != 2 || got.UpdatedBy != "reviewer" || !got.UpdatedAt.Equal(start.Add(time.Minute)) || !cmp.Equal(got.Answer, e.Answer) {
		t.Errorf("entry %+v", got)
	}
	if left, _ := f.svc.ListMisses(ctx, "t1", 0); len(left) != 0 {
		t.Errorf("groups left: %+v", left)
	}
	hist, err := f.svc.EntryHistory(ctx, "t1", e.ID)
	must(t, "EntryHistory", err)
	if len(hist) != 2 || hist[0].Action != kb.ActionUpdate || hist[0].Actor != "reviewer" {
		t.Errorf("history %+v", hist)
	}
}

func TestPromoteInvalid(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	e := f.entry(t, "t1", "refund")
	g := f.miss(t, "t1", "k", "text")
	for _, tc := range []struct {
		name  string
		p     kb.Promotion
		field string
	}{
		{"no groups", kb.Promotion{Question: "q", Answer: kb.Answer{Text: "a"}}, "group_ids"},
		{"entry and question", kb.Promotion{GroupIDs: []string{g.ID}, EntryID: e.ID, Question: "q"}, "entry_id"},
		{"new entry without answer", kb.Promotion{GroupIDs: []string{g.ID}, Question: "q"}, "answer.text"},
		{"new entry without question", kb.Promotion{GroupIDs: []string{g.ID}, Answer: kb.Answer{Text: "a"}}, "question"},
		{"bad language", kb.Promotion{GroupIDs: []string{g.ID}, Question: "q", Answer: kb.Answer{Text: "a"}, Language: "xx"}, "language"},
	} {
		_, _, err := f.svc.Promote(ctx, "t1", "x", tc.p)
		wantCode(t, tc.name, err, errs.Invalid)
		if fs := fields(err); len(fs) == 0 || fs[0] != tc.field {
			t.Errorf("%s: problems %v, want %s first", tc.name, fs, tc.field)
		}
	}
	if _, err := f.svc.GetMiss(ctx, "t1", g.ID); err != nil {
		t.Errorf("group deleted by refused promotes: %v", err)
	}
}

// TestPromoteTooManyVariants fills an entry near MaxVariants: a promote
// that would pass it is refused and changes nothing.
func TestPromoteTooManyVariants(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	vs := make([]string, kb.MaxVariants)
	for i := range vs {
		vs[i] = "variant " + uuid.NewString()
	}
	e := f.entry(t, "t1", "full", vs...)
	g := f.miss(t, "t1", "one more", "one more")
	_, _, err := f.svc.Promote(ctx, "t1", "x", kb.Promotion{GroupIDs: []string{g.ID}, EntryID: e.ID})
	wantCode(t, "Promote past MaxVariants", err, errs.Invalid)
	if d := cmp.Diff([]string{"variants"}, fields(err)); d != "" {
		t.Errorf("problems (-want +got):\n%s", d)
	}
	if _, err := f.svc.GetMiss(ctx, "t1", g.ID); err != nil {
		t.Errorf("group deleted: %v", err)
	}
}

func TestMisses(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	a := f.miss(t, "t1", "a", "a", "a")
	b := f.miss(t, "t1", "b", "b")
	list, err := f.svc.ListMisses(ctx, "t1", 1)
	must(t, "ListMisses", err)
	if len(list) != 1 || list[0].ID != a.ID {
		t.Errorf("ListMisses(1) = %+v", list)
	}
	got, err := f.svc.GetMiss(ctx, "t1", b.ID)
	must(t, "GetMiss", err)
	if got.Count != 1 {
		t.Errorf("GetMiss = %+v", got)
	}
	must(t, "DeleteMisses", f.svc.DeleteMisses(ctx, "t1", []string{a.ID, b.ID}))
	if got := f.pub.take(); len(got) != 0 {
		t.Errorf("deleting misses announced %v (misses are not KB content)", got)
	}
}
