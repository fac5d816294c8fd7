// Package kbtest is the conformance suite for kb.Store: one set of tests
// every implementation must pass, so adapters cannot drift apart in the
// contract the service, the bot and the index rely on (NotFound across
// tenants, Conflict on stale versions, history that outlives an entry,
// revision bumps, miss grouping that loses no count under concurrency).
package kbtest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/kb"
)

// The tenants the suite writes to; the store newStore returns must have
// both (the schema's foreign keys need them).
const (
	TenantA = "kbt-a"
	TenantB = "kbt-b"
)

// Run runs the suite. newStore must return an empty store of its own, whose
// database holds the tenants TenantA and TenantB, for each subtest; it is
// called from parallel subtests.
func Run(t *testing.T, newStore func(t *testing.T) kb.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s kb.Store)
	}{
		{"EntryCreateGet", testEntryCreateGet},
		{"EntryCreateInvalid", testEntryCreateInvalid},
		{"EntryList", testEntryList},
		{"EntryUpdate", testEntryUpdate},
		{"EntryDeleteHistory", testEntryDeleteHistory},
		{"EntryTenantIsolation", testEntryTenantIsolation},
		{"Revision", testRevision},
		{"InTx", testInTx},
		{"Rules", testRules},
		{"RuleInvalid", testRuleInvalid},
		{"Settings", testSettings},
		{"MissRecord", testMissRecord},
		{"MissListGetDelete", testMissListGetDelete},
		{"MissRecordConcurrent", testMissRecordConcurrent},
		{"EntryUpdateConcurrent", testEntryUpdateConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// t0 has microsecond precision, what every store must keep; tz is not UTC,
// so a store that keeps the zone fails.
var (
	tz = time.FixedZone("UTC+8", 8*3600)
	t0 = time.Date(2025, 3, 1, 9, 30, 15, 123456000, time.UTC)
)

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

func diff(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

func newEntry(tenantID, id, question string) kb.Entry {
	return kb.Entry{
		TenantID:  tenantID,
		ID:        id,
		Question:  question,
		Variants:  []string{question + " please", "how " + question},
		Answer:    kb.Answer{Text: "Answer to " + question},
		Keywords:  []string{"kw-" + id},
		Category:  "general",
		Language:  kb.LangEnglish,
		Enabled:   true,
		CreatedAt: t0,
		UpdatedAt: t0,
	}
}

func mustEntry(t *testing.T, s kb.Store, e kb.Entry) kb.Entry {
	t.Helper()
	got, err := s.EntryCreate(t.Context(), e, "editor")
	must(t, "EntryCreate "+e.ID, err)
	return got
}

func ids(es []kb.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func testEntryCreateGet(t *testing.T, s kb.Store) {
	ctx := t.Context()
	in := newEntry(TenantA, "e1", "refund")
	in.Question = "  refund  "
	in.Variants = []string{" money back ", "", "Money Back", "refund", "return my money"}
	in.Keywords = []string{"refund", " refund ", "money"}
	in.Answer = kb.Answer{Text: " Go to Orders. ", Choices: []kb.Choice{
		{Label: "Talk to a person", Handoff: true, GroupID: "billing"},
		{Label: "Shipping", EntryID: "e2"},
		{Label: "Hours", Text: "9 to 5"},
	}}
	in.CreatedAt = t0.In(tz)
	in.UpdatedAt = time.Time{}
	in.Version = 7       // ignored: a new entry is version 1
	in.UpdatedBy = "who" // ignored: the actor is
	created := mustEntry(t, s, in)

	want := kb.Entry{
		TenantID: TenantA, ID: "e1", Question: "refund",
		Variants: []string{"money back", "return my money"},
		Answer: kb.Answer{Text: "Go to Orders.", Choices: []kb.Choice{
			{Label: "Talk to a person", Handoff: true, GroupID: "billing"},
			{Label: "Shipping", EntryID: "e2"},
			{Label: "Hours", Text: "9 to 5"},
		}},
		Keywords: []string{"refund", "money"}, Category: "general", Language: kb.LangEnglish, Enabled: true,
		Version: 1, CreatedAt: t0, UpdatedAt: t0, UpdatedBy: "editor",
	}
	diff(t, "EntryCreate result", want, created)
	if created.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt location = %v, want UTC", created.CreatedAt.Location())
	}
	got, err := s.EntryGet(ctx, TenantA, "e1")
	must(t, "EntryGet", err)
	diff(t, "EntryGet", want, got)

	// Empty lists come back as [], not nil; a zero CreatedAt is stamped.
	bare := newEntry(TenantA, "e2", "shipping")
	bare.Variants, bare.Keywords, bare.CreatedAt, bare.UpdatedAt = nil, nil, time.Time{}, time.Time{}
	before := time.Now().Add(-time.Minute)
	got = mustEntry(t, s, bare)
	if got.Variants == nil || got.Keywords == nil || len(got.Variants)+len(got.Keywords) != 0 {
		t.Errorf("empty lists: variants %#v keywords %#v, want empty non-nil", got.Variants, got.Keywords)
	}
	if got.CreatedAt.Before(before) || got.CreatedAt.Location() != time.UTC || !got.UpdatedAt.Equal(got.CreatedAt) {
		t.Errorf("stamped times: created %v updated %v", got.CreatedAt, got.UpdatedAt)
	}
	if got.CreatedAt.Nanosecond()%1000 != 0 {
		t.Errorf("CreatedAt %v has sub-microsecond digits", got.CreatedAt)
	}

	_, err = s.EntryCreate(ctx, newEntry(TenantA, "e1", "again"), "editor")
	wantCode(t, "EntryCreate taken id", err, errs.Duplicate)
	_, err = s.EntryGet(ctx, TenantA, "missing")
	wantCode(t, "EntryGet missing", err, errs.NotFound)
	// The same id in another tenant is another entry.
	other := mustEntry(t, s, newEntry(TenantB, "e1", "other tenant"))
	if other.Question != "other tenant" {
		t.Errorf("TenantB e1 = %+v", other)
	}
	got, err = s.EntryGet(ctx, TenantA, "e1")
	must(t, "EntryGet after other tenant", err)
	diff(t, "TenantA e1 after TenantB wrote e1", want, got)
}

func testEntryCreateInvalid(t *testing.T, s kb.Store) {
	ctx := t.Context()
	for _, tc := range []struct {
		name   string
		mutate func(e *kb.Entry)
		code   errs.Code
	}{
		{"empty id", func(e *kb.Entry) { e.ID = "" }, errs.Invalid},
		{"empty tenant", func(e *kb.Entry) { e.TenantID = "" }, errs.Invalid},
		{"empty question", func(e *kb.Entry) { e.Question = "  " }, errs.Invalid},
		{"empty answer", func(e *kb.Entry) { e.Answer.Text = "" }, errs.Invalid},
		{"bad language", func(e *kb.Entry) { e.Language = "fr" }, errs.Invalid},
		{"long question", func(e *kb.Entry) { e.Question = strings.Repeat("q", kb.MaxQuestionLen+1) }, errs.Invalid},
		{"bad choice", func(e *kb.Entry) { e.Answer.Choices = []kb.Choice{{Label: "x"}} }, errs.Invalid},
		{"unknown tenant", func(e *kb.Entry) { e.TenantID = "kbt-ghost" }, errs.NotFound},
	} {
		e := newEntry(TenantA, "bad", "question")
		tc.mutate(&e)
		_, err := s.EntryCreate(ctx, e, "editor")
		wantCode(t, "EntryCreate "+tc.name, err, tc.code)
	}
	list, err := s.EntryList(ctx, TenantA, kb.EntryFilter{})
	must(t, "EntryList", err)
	if len(list) != 0 {
		t.Errorf("refused creates stored %v", ids(list))
	}
	rev, err := s.Revision(ctx, TenantA)
	must(t, "Revision", err)
	if rev != 0 {
		t.Errorf("refused creates bumped the revision to %d", rev)
	}
}

func testEntryList(t *testing.T, s kb.Store) {
	ctx := t.Context()
	mk := func(id, q, cat string, lang kb.Language, enabled bool) {
		e := newEntry(TenantA, id, q)
		e.Category, e.Language, e.Enabled = cat, lang, enabled
		mustEntry(t, s, e)
	}
	mk("b", "Where is my order", "shipping", kb.LangEnglish, true)
	mk("a", "Where is my order", "shipping", kb.LangEnglish, true) // same question: by id
	mk("c", "Refund 100% now", "billing", kb.LangEnglish, false)
	mk("d", "如何退款", "billing", kb.LangChinese, true)
	mk("e", "Apply a coupon_code", "billing", kb.LangAuto, true)
	mk("f", "apple pay", "billing", kb.LangEnglish, true) // lower case sorts after upper case in byte order
	mustEntry(t, s, newEntry(TenantB, "x", "Where is my order"))

	yes, no := true, false
	for _, tc := range []struct {
		name string
		f    kb.EntryFilter
		want []string
	}{
		{"all, by question then id", kb.EntryFilter{}, []string{"e", "c", "a", "b", "f", "d"}},
		{"category", kb.EntryFilter{Category: "billing"}, []string{"e", "c", "f", "d"}},
		{"language", kb.EntryFilter{Language: kb.LangChinese}, []string{"d"}},
		{"enabled", kb.EntryFilter{Enabled: &yes}, []string{"e", "a", "b", "f", "d"}},
		{"disabled", kb.EntryFilter{Enabled: &no}, []string{"c"}},
		{"text, case-insensitive", kb.EntryFilter{Text: "WHERE is"}, []string{"a", "b"}},
		{"text, Chinese", kb.EntryFilter{Text: "退款"}, []string{"d"}},
		{"text, % is literal", kb.EntryFilter{Text: "100%"}, []string{"c"}},
		{"text, _ is literal", kb.EntryFilter{Text: "y_o"}, nil}, // as a wildcard it would match "my order"
		{"text, _ matches itself", kb.EntryFilter{Text: "n_c"}, []string{"e"}},
		{"text and category", kb.EntryFilter{Text: "ap", Category: "billing"}, []string{"e", "f"}},
		{"limit", kb.EntryFilter{Limit: 2}, []string{"e", "c"}},
		{"limit offset", kb.EntryFilter{Limit: 2, Offset: 2}, []string{"a", "b"}},
		{"offset only", kb.EntryFilter{Offset: 4}, []string{"f", "d"}},
		{"offset past the end", kb.EntryFilter{Limit: 10, Offset: 10}, nil},
		{"no match", kb.EntryFilter{Category: "none"}, nil},
	} {
		got, err := s.EntryList(ctx, TenantA, tc.f)
		must(t, "EntryList "+tc.name, err)
		if d := cmp.Diff(tc.want, ids(got), cmpEmpty); d != "" {
			t.Errorf("EntryList %s (-want +got):\n%s", tc.name, d)
		}
	}
	got, err := s.EntryList(ctx, TenantB, kb.EntryFilter{})
	must(t, "EntryList TenantB", err)
	diff(t, "EntryList TenantB", []string{"x"}, ids(got))
	full, err := s.EntryGet(ctx, TenantA, "a")
	must(t, "EntryGet", err)
	diff(t, "listed entry equals EntryGet", full, mustList(t, s, kb.EntryFilter{Limit: 1, Offset: 2})[0])
}

// cmpEmpty makes nil and empty slices equal.
var cmpEmpty = cmp.Transformer("empty", func(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
})

func mustList(t *testing.T, s kb.Store, f kb.EntryFilter) []kb.Entry {
	t.Helper()
	l, err := s.EntryList(t.Context(), TenantA, f)
	must(t, "EntryList", err)
	return l
}

func testEntryUpdate(t *testing.T, s kb.Store) {
	ctx := t.Context()
	v1 := mustEntry(t, s, newEntry(TenantA, "e1", "refund"))

	ch := v1
	ch.Question = "Refund policy"
	ch.Variants = []string{"can I get my money back", "can I get my money back"}
	ch.Answer = kb.Answer{Text: "30 days."}
	ch.Keywords = []string{}
	ch.Category = "billing"
	ch.Language = kb.LangAuto
	ch.Enabled = false
	ch.CreatedAt = t0.Add(time.Hour) // ignored
	ch.UpdatedAt = t0.Add(2 * time.Minute)
	v2, err := s.EntryUpdate(ctx, ch, "reviewer")
	must(t, "EntryUpdate", err)
	want := ch
	want.Variants = []string{"can I get my money back"}
	want.Version = 2
	want.CreatedAt = t0
	want.UpdatedBy = "reviewer"
	diff(t, "EntryUpdate result", want, v2)
	got, err := s.EntryGet(ctx, TenantA, "e1")
	must(t, "EntryGet", err)
	diff(t, "EntryGet after update", want, got)

	// A stale version conflicts and changes nothing.
	stale := v1
	stale.Question = "stale write"
	_, err = s.EntryUpdate(ctx, stale, "late")
	wantCode(t, "EntryUpdate stale", err, errs.Conflict)
	if v, ok := errs.DetailsOf(err)["version"]; !ok || fmt.Sprint(v) != "2" {
		t.Errorf("conflict details = %v, want version 2", errs.DetailsOf(err))
	}
	got, err = s.EntryGet(ctx, TenantA, "e1")
	must(t, "EntryGet", err)
	diff(t, "EntryGet after stale update", want, got)

	missing := newEntry(TenantA, "nope", "q")
	missing.Version = 1
	_, err = s.EntryUpdate(ctx, missing, "x")
	wantCode(t, "EntryUpdate missing", err, errs.NotFound)
	bad := v2
	bad.Answer.Text = ""
	_, err = s.EntryUpdate(ctx, bad, "x")
	wantCode(t, "EntryUpdate invalid", err, errs.Invalid)

	// A zero UpdatedAt is the time of the write.
	v2.UpdatedAt = time.Time{}
	v3, err := s.EntryUpdate(ctx, v2, "reviewer")
	must(t, "EntryUpdate zero time", err)
	if v3.Version != 3 || time.Since(v3.UpdatedAt) > time.Minute || v3.UpdatedAt.Location() != time.UTC {
		t.Errorf("v3 = version %d updated %v", v3.Version, v3.UpdatedAt)
	}
}

func testEntryDeleteHistory(t *testing.T, s kb.Store) {
	ctx := t.Context()
	v1 := mustEntry(t, s, newEntry(TenantA, "e1", "refund"))
	ch := v1
	ch.Answer.Text = "new answer"
	ch.UpdatedAt = t0.Add(time.Minute)
	v2, err := s.EntryUpdate(ctx, ch, "reviewer")
	must(t, "EntryUpdate", err)
	must(t, "EntryDelete", s.EntryDelete(ctx, TenantA, "e1", "remover"))

	_, err = s.EntryGet(ctx, TenantA, "e1")
	wantCode(t, "EntryGet deleted", err, errs.NotFound)
	wantCode(t, "EntryDelete twice", s.EntryDelete(ctx, TenantA, "e1", "remover"), errs.NotFound)
	wantCode(t, "EntryDelete missing", s.EntryDelete(ctx, TenantA, "never", "remover"), errs.NotFound)

	hist, err := s.EntryHistory(ctx, TenantA, "e1")
	must(t, "EntryHistory of a deleted entry", err)
	if len(hist) != 3 {
		t.Fatalf("history has %d changes, want 3: %+v", len(hist), hist)
	}
	del, upd, cre := hist[0], hist[1], hist[2]
	diff(t, "create change", kb.Change{EntryID: "e1", Version: 1, Action: kb.ActionCreate, Actor: "editor", At: t0, Entry: v1}, cre)
	diff(t, "update change", kb.Change{EntryID: "e1", Version: 2, Action: kb.ActionUpdate, Actor: "reviewer", At: t0.Add(time.Minute), Entry: v2}, upd)
	if del.Action != kb.ActionDelete || del.Actor != "remover" || del.Version != 3 || del.EntryID != "e1" {
		t.Errorf("delete change = %+v, want action delete by remover, version 3", del)
	}
	diff(t, "delete change carries the entry as it was", v2, del.Entry)
	if time.Since(del.At) > time.Minute || del.At.Location() != time.UTC {
		t.Errorf("delete change at %v, want now in UTC", del.At)
	}

	_, err = s.EntryHistory(ctx, TenantA, "never")
	wantCode(t, "EntryHistory never existed", err, errs.NotFound)

	// The id may be used again; its history goes on.
	again := mustEntry(t, s, newEntry(TenantA, "e1", "refund again"))
	if again.Version != 1 {
		t.Errorf("re-created entry version = %d, want 1", again.Version)
	}
	hist, err = s.EntryHistory(ctx, TenantA, "e1")
	must(t, "EntryHistory after re-creation", err)
	var actions []kb.Action
	for _, c := range hist {
		actions = append(actions, c.Action)
	}
	diff(t, "history actions, newest first", []kb.Action{kb.ActionCreate, kb.ActionDelete, kb.ActionUpdate, kb.ActionCreate}, actions)
}

func testEntryTenantIsolation(t *testing.T, s kb.Store) {
	ctx := t.Context()
	a := mustEntry(t, s, newEntry(TenantA, "e1", "refund"))
	_, err := s.EntryGet(ctx, TenantB, "e1")
	wantCode(t, "EntryGet other tenant", err, errs.NotFound)
	upd := a
	upd.TenantID = TenantB
	_, err = s.EntryUpdate(ctx, upd, "x")
	wantCode(t, "EntryUpdate other tenant", err, errs.NotFound)
	wantCode(t, "EntryDelete other tenant", s.EntryDelete(ctx, TenantB, "e1", "x"), errs.NotFound)
	_, err = s.EntryHistory(ctx, TenantB, "e1")
	wantCode(t, "EntryHistory other tenant", err, errs.NotFound)
	list, err := s.EntryList(ctx, TenantB, kb.EntryFilter{})
	must(t, "EntryList other tenant", err)
	if len(list) != 0 {
		t.Errorf("TenantB sees %v", ids(list))
	}
	got, err := s.EntryGet(ctx, TenantA, "e1")
	must(t, "EntryGet", err)
	diff(t, "entry after other tenant's attempts", a, got)

	r := mustRule(t, s, newRule(TenantA, "r1", "hello"))
	_, err = s.RuleGet(ctx, TenantB, "r1")
	wantCode(t, "RuleGet other tenant", err, errs.NotFound)
	r.TenantID = TenantB
	_, err = s.RuleUpdate(ctx, r)
	wantCode(t, "RuleUpdate other tenant", err, errs.NotFound)
	wantCode(t, "RuleDelete other tenant", s.RuleDelete(ctx, TenantB, "r1"), errs.NotFound)
	rules, err := s.RuleList(ctx, TenantB)
	must(t, "RuleList other tenant", err)
	if len(rules) != 0 {
		t.Errorf("TenantB sees rules %+v", rules)
	}

	g, err := s.MissRecord(ctx, kb.Miss{TenantID: TenantA, Text: "hm", Key: "hm", At: t0})
	must(t, "MissRecord", err)
	_, err = s.MissGet(ctx, TenantB, g.ID)
	wantCode(t, "MissGet other tenant", err, errs.NotFound)
	wantCode(t, "MissDelete other tenant", s.MissDelete(ctx, TenantB, []string{g.ID}), errs.NotFound)
	misses, err := s.MissList(ctx, TenantB, 0)
	must(t, "MissList other tenant", err)
	if len(misses) != 0 {
		t.Errorf("TenantB sees misses %+v", misses)
	}
	// The same key in another tenant is another group.
	gb, err := s.MissRecord(ctx, kb.Miss{TenantID: TenantB, Text: "hm", Key: "hm", At: t0})
	must(t, "MissRecord TenantB", err)
	if gb.ID == g.ID || gb.Count != 1 {
		t.Errorf("TenantB group = %+v, TenantA group %s", gb, g.ID)
	}
}

func testRevision(t *testing.T, s kb.Store) {
	ctx := t.Context()
	last := int64(0)
	rev := func(tenant string) int64 {
		t.Helper()
		r, err := s.Revision(ctx, tenant)
		must(t, "Revision", err)
		return r
	}
	bumped := func(what string) {
		t.Helper()
		r := rev(TenantA)
		if r <= last {
			t.Errorf("%s: revision %d, want above %d", what, r, last)
		}
		last = r
	}
	same := func(what string) {
		t.Helper()
		if r := rev(TenantA); r != last {
			t.Errorf("%s: revision %d, want still %d", what, r, last)
		}
	}
	same("before any write")
	e := mustEntry(t, s, newEntry(TenantA, "e1", "refund"))
	bumped("EntryCreate")
	_, _ = s.EntryGet(ctx, TenantA, "e1")
	_, _ = s.EntryList(ctx, TenantA, kb.EntryFilter{})
	_, _ = s.EntryHistory(ctx, TenantA, "e1")
	same("reads")
	e, err := s.EntryUpdate(ctx, e, "x")
	must(t, "EntryUpdate", err)
	bumped("EntryUpdate")
	stale := e
	stale.Version = 1
	_, err = s.EntryUpdate(ctx, stale, "x")
	wantCode(t, "EntryUpdate stale", err, errs.Conflict)
	same("refused EntryUpdate")
	_, err = s.EntryCreate(ctx, newEntry(TenantA, "e1", "dup"), "x")
	wantCode(t, "EntryCreate duplicate", err, errs.Duplicate)
	same("refused EntryCreate")
	r := mustRule(t, s, newRule(TenantA, "r1", "hello"))
	bumped("RuleCreate")
	_, err = s.RuleUpdate(ctx, r)
	must(t, "RuleUpdate", err)
	bumped("RuleUpdate")
	must(t, "RuleDelete", s.RuleDelete(ctx, TenantA, "r1"))
	bumped("RuleDelete")
	wantCode(t, "RuleDelete again", s.RuleDelete(ctx, TenantA, "r1"), errs.NotFound)
	same("refused RuleDelete")
	_, err = s.SettingsPut(ctx, kb.DefaultSettings(TenantA))
	must(t, "SettingsPut", err)
	bumped("SettingsPut")
	_, err = s.MissRecord(ctx, kb.Miss{TenantID: TenantA, Key: "k", Text: "k"})
	must(t, "MissRecord", err)
	same("MissRecord (misses are not KB content)")
	must(t, "EntryDelete", s.EntryDelete(ctx, TenantA, "e1", "x"))
	bumped("EntryDelete")
	if r := rev(TenantB); r != 0 {
		t.Errorf("TenantB revision = %d after TenantA's writes, want 0", r)
	}

	// Several writes in one transaction bump at least once; a rolled-back
	// transaction not at all.
	must(t, "InTx", s.InTx(ctx, func(tx kb.Store) error {
		for i := range 3 {
			if _, err := tx.EntryCreate(ctx, newEntry(TenantA, fmt.Sprint("tx", i), "q"), "x"); err != nil {
				return err
			}
		}
		return nil
	}))
	bumped("InTx with three creates")
	boom := errors.New("boom")
	err = s.InTx(ctx, func(tx kb.Store) error {
		if _, err := tx.EntryCreate(ctx, newEntry(TenantA, "rolled", "q"), "x"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx error = %v, want fn's error", err)
	}
	same("rolled-back InTx")
}

func testInTx(t *testing.T, s kb.Store) {
	ctx := t.Context()
	boom := errors.New("boom")
	err := s.InTx(ctx, func(tx kb.Store) error {
		e := mustEntry(t, tx, newEntry(TenantA, "e1", "refund"))
		e.Answer.Text = "changed"
		if _, err := tx.EntryUpdate(ctx, e, "x"); err != nil {
			return err
		}
		if _, err := tx.RuleCreate(ctx, newRule(TenantA, "r1", "hi")); err != nil {
			return err
		}
		// Nested InTx joins the outer transaction.
		if err := tx.InTx(ctx, func(tx2 kb.Store) error {
			_, err := tx2.SettingsPut(ctx, kb.DefaultSettings(TenantA))
			return err
		}); err != nil {
			return err
		}
		// The transaction sees its own writes.
		if got, err := tx.EntryGet(ctx, TenantA, "e1"); err != nil || got.Version != 2 {
			t.Errorf("EntryGet in tx = %+v, %v", got, err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx error = %v, want fn's error", err)
	}
	_, err = s.EntryGet(ctx, TenantA, "e1")
	wantCode(t, "entry after rollback", err, errs.NotFound)
	_, err = s.EntryHistory(ctx, TenantA, "e1")
	wantCode(t, "history after rollback", err, errs.NotFound)
	_, err = s.RuleGet(ctx, TenantA, "r1")
	wantCode(t, "rule after rollback", err, errs.NotFound)
	st, err := s.SettingsGet(ctx, TenantA)
	must(t, "SettingsGet", err)
	if !st.UpdatedAt.IsZero() {
		t.Errorf("settings after rollback = %+v, want the defaults", st)
	}

	must(t, "InTx commit", s.InTx(ctx, func(tx kb.Store) error {
		_, err := tx.EntryCreate(ctx, newEntry(TenantA, "e2", "shipping"), "x")
		if err != nil {
			return err
		}
		return tx.MissDelete(ctx, TenantA, nil)
	}))
	if _, err := s.EntryGet(ctx, TenantA, "e2"); err != nil {
		t.Errorf("entry after commit: %v", err)
	}

	// An error of the store inside fn rolls everything back too.
	err = s.InTx(ctx, func(tx kb.Store) error {
		if _, err := tx.EntryCreate(ctx, newEntry(TenantA, "e3", "q"), "x"); err != nil {
			return err
		}
		return tx.EntryDelete(ctx, TenantA, "missing", "x")
	})
	wantCode(t, "InTx with a failing step", err, errs.NotFound)
	_, err = s.EntryGet(ctx, TenantA, "e3")
	wantCode(t, "entry of the failed transaction", err, errs.NotFound)
}

func newRule(tenantID, id, keyword string) kb.Rule {
	return kb.Rule{
		TenantID:  tenantID,
		ID:        id,
		Name:      "Rule " + id,
		Kind:      kb.RuleContains,
		Keywords:  []string{keyword},
		Answer:    kb.Answer{Text: "Rule answer " + id},
		Enabled:   true,
		CreatedAt: t0,
		UpdatedAt: t0,
	}
}

func mustRule(t *testing.T, s kb.Store, r kb.Rule) kb.Rule {
	t.Helper()
	got, err := s.RuleCreate(t.Context(), r)
	must(t, "RuleCreate "+r.ID, err)
	return got
}

func testRules(t *testing.T, s kb.Store) {
	ctx := t.Context()
	in := newRule(TenantA, "r1", "hello")
	in.Keywords = []string{" hello ", "hello", "hi"}
	in.Priority = 5
	in.CreatedAt = t0.In(tz)
	in.Version = 9
	r1 := mustRule(t, s, in)
	want := newRule(TenantA, "r1", "hello")
	want.Keywords = []string{"hello", "hi"}
	want.Priority = 5
	want.Version = 1
	diff(t, "RuleCreate result", want, r1)
	got, err := s.RuleGet(ctx, TenantA, "r1")
	must(t, "RuleGet", err)
	diff(t, "RuleGet", want, got)

	handoff := newRule(TenantA, "r2", "")
	handoff.Kind, handoff.Keywords, handoff.Answer = kb.RuleRegex, []string{`^order\s+#?\d{6}$`}, kb.Answer{}
	handoff.Handoff, handoff.GroupID = true, "billing"
	mustRule(t, s, handoff)
	menu := newRule(TenantA, "r3", "")
	menu.Kind, menu.Keywords, menu.Answer, menu.EntryID = kb.RuleMenu, []string{"1", "42"}, kb.Answer{}, "e-gone"
	menu.Priority = 5
	mustRule(t, s, menu)
	low := newRule(TenantA, "r0", "bye")
	low.Priority = -3
	mustRule(t, s, low)
	same := newRule(TenantA, "r4", "yo")
	same.Name = "Rule r1" // same name and priority as r1: by id
	same.Priority = 5
	mustRule(t, s, same)
	mustRule(t, s, newRule(TenantB, "rb", "hello"))

	list, err := s.RuleList(ctx, TenantA)
	must(t, "RuleList", err)
	var order []string
	for _, r := range list {
		order = append(order, r.ID)
	}
	diff(t, "RuleList order (priority desc, name, id)", []string{"r1", "r4", "r3", "r2", "r0"}, order)
	diff(t, "listed handoff rule", handoff.Keywords, list[3].Keywords)
	if !list[3].Handoff || list[3].GroupID != "billing" || list[2].EntryID != "e-gone" {
		t.Errorf("listed rules lost fields: %+v / %+v", list[3], list[2])
	}

	ch := r1
	ch.Name = "Greeting"
	ch.Kind = kb.RuleExact
	ch.Keywords = []string{"hello there"}
	ch.Enabled = false
	ch.CreatedAt = t0.Add(time.Hour) // ignored
	ch.UpdatedAt = t0.Add(time.Minute)
	r1v2, err := s.RuleUpdate(ctx, ch)
	must(t, "RuleUpdate", err)
	wantR := ch
	wantR.Version = 2
	wantR.CreatedAt = t0
	diff(t, "RuleUpdate result", wantR, r1v2)
	got, err = s.RuleGet(ctx, TenantA, "r1")
	must(t, "RuleGet after update", err)
	diff(t, "RuleGet after update", wantR, got)
	_, err = s.RuleUpdate(ctx, r1) // version 1: stale
	wantCode(t, "RuleUpdate stale", err, errs.Conflict)
	ghost := newRule(TenantA, "ghost", "x")
	ghost.Version = 1
	_, err = s.RuleUpdate(ctx, ghost)
	wantCode(t, "RuleUpdate missing", err, errs.NotFound)
	_, err = s.RuleCreate(ctx, newRule(TenantA, "r1", "dup"))
	wantCode(t, "RuleCreate taken id", err, errs.Duplicate)

	must(t, "RuleDelete", s.RuleDelete(ctx, TenantA, "r1"))
	_, err = s.RuleGet(ctx, TenantA, "r1")
	wantCode(t, "RuleGet deleted", err, errs.NotFound)
	wantCode(t, "RuleDelete missing", s.RuleDelete(ctx, TenantA, "r1"), errs.NotFound)
	_, err = s.RuleGet(ctx, TenantB, "rb")
	must(t, "TenantB rule untouched", err)
}

func testRuleInvalid(t *testing.T, s kb.Store) {
	ctx := t.Context()
	for _, tc := range []struct {
		name   string
		mutate func(r *kb.Rule)
		code   errs.Code
	}{
		{"empty id", func(r *kb.Rule) { r.ID = "" }, errs.Invalid},
		{"no name", func(r *kb.Rule) { r.Name = "" }, errs.Invalid},
		{"bad kind", func(r *kb.Rule) { r.Kind = "fuzzy" }, errs.Invalid},
		{"no keywords", func(r *kb.Rule) { r.Keywords = nil }, errs.Invalid},
		{"bad regex", func(r *kb.Rule) { r.Kind, r.Keywords = kb.RuleRegex, []string{"(unclosed"} }, errs.Invalid},
		{"huge regex", func(r *kb.Rule) { r.Kind, r.Keywords = kb.RuleRegex, []string{"(a{100}){100}"} }, errs.Invalid},
		{"menu word", func(r *kb.Rule) { r.Kind = kb.RuleMenu }, errs.Invalid},
		{"two actions", func(r *kb.Rule) { r.Handoff = true }, errs.Invalid},
		{"no action", func(r *kb.Rule) { r.Answer = kb.Answer{} }, errs.Invalid},
		{"unknown tenant", func(r *kb.Rule) { r.TenantID = "kbt-ghost" }, errs.NotFound},
	} {
		r := newRule(TenantA, "bad", "hello")
		tc.mutate(&r)
		_, err := s.RuleCreate(ctx, r)
		wantCode(t, "RuleCreate "+tc.name, err, tc.code)
	}
	list, err := s.RuleList(ctx, TenantA)
	must(t, "RuleList", err)
	if len(list) != 0 {
		t.Errorf("refused rules were stored: %+v", list)
	}
}

func testSettings(t *testing.T, s kb.Store) {
	ctx := t.Context()
	got, err := s.SettingsGet(ctx, TenantA)
	must(t, "SettingsGet defaults", err)
	diff(t, "defaults", kb.DefaultSettings(TenantA), got)

	in := kb.Settings{
		TenantID: TenantA, AnswerThreshold: 0.72, SuggestThreshold: 0.41,
		HandoffWords: []string{" human ", "人工", "HUMAN"}, MaxMisses: 3,
		Greeting: "Hello!", FallbackText: "Pardon?", UpdatedAt: t0.In(tz),
	}
	put, err := s.SettingsPut(ctx, in)
	must(t, "SettingsPut", err)
	want := in
	want.HandoffWords = []string{"human", "人工"}
	want.UpdatedAt = t0
	diff(t, "SettingsPut result", want, put)
	got, err = s.SettingsGet(ctx, TenantA)
	must(t, "SettingsGet", err)
	diff(t, "SettingsGet", want, got)

	// A second put replaces the first.
	in2 := want
	in2.HandoffWords = []string{}
	in2.MaxMisses = 0
	in2.Greeting = ""
	in2.UpdatedAt = t0.Add(time.Minute)
	_, err = s.SettingsPut(ctx, in2)
	must(t, "SettingsPut again", err)
	got, err = s.SettingsGet(ctx, TenantA)
	must(t, "SettingsGet again", err)
	diff(t, "SettingsGet after second put", in2, got)

	bad := want
	bad.SuggestThreshold = 0.9
	_, err = s.SettingsPut(ctx, bad)
	wantCode(t, "SettingsPut suggest above answer", err, errs.Invalid)
	ghost := want
	ghost.TenantID = "kbt-ghost"
	_, err = s.SettingsPut(ctx, ghost)
	wantCode(t, "SettingsPut unknown tenant", err, errs.NotFound)
	got, err = s.SettingsGet(ctx, TenantB)
	must(t, "SettingsGet TenantB", err)
	diff(t, "TenantB keeps the defaults", kb.DefaultSettings(TenantB), got)
}

func testMissRecord(t *testing.T, s kb.Store) {
	ctx := t.Context()
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	g, err := s.MissRecord(ctx, kb.Miss{TenantID: TenantA, SessionID: "s1", Text: "Where's my parcel?", Key: "where s my parcel", At: at(0).In(tz)})
	must(t, "MissRecord first", err)
	if g.ID == "" || g.Count != 1 || g.Text != "Where's my parcel?" || g.Key != "where s my parcel" ||
		!g.FirstSeen.Equal(at(0)) || !g.LastSeen.Equal(at(0)) {
		t.Errorf("first record = %+v", g)
	}
	diff(t, "first samples", []kb.MissSample{{SessionID: "s1", Text: "Where's my parcel?", At: at(0)}}, g.Samples)

	// Seven more with the same key, one of them older than the first.
	mins := []int{1, 2, -5, 3, 4, 5, 6}
	for i, m := range mins {
		g, err = s.MissRecord(ctx, kb.Miss{TenantID: TenantA, SessionID: fmt.Sprint("s", i+2), Text: fmt.Sprint("where is my parcel ", i+2), Key: "where s my parcel", At: at(m)})
		must(t, "MissRecord", err)
	}
	if g.Count != 8 || g.Text != "Where's my parcel?" {
		t.Errorf("group after 8 = count %d text %q, want 8 and the first text", g.Count, g.Text)
	}
	if !g.FirstSeen.Equal(at(-5)) || !g.LastSeen.Equal(at(6)) {
		t.Errorf("seen %v .. %v, want %v .. %v", g.FirstSeen, g.LastSeen, at(-5), at(6))
	}
	var got []string
	for _, sm := range g.Samples {
		got = append(got, sm.SessionID)
		if sm.At.Location() != time.UTC {
			t.Errorf("sample time %v not UTC", sm.At)
		}
	}
	// Newest first, the MaxMissSamples most recent.
	diff(t, "samples (newest first)", []string{"s8", "s7", "s6", "s5", "s3"}, got)
	stored, err := s.MissGet(ctx, TenantA, g.ID)
	must(t, "MissGet", err)
	diff(t, "MissGet equals the last MissRecord result", g, stored)

	other, err := s.MissRecord(ctx, kb.Miss{TenantID: TenantA, Text: "refund", Key: "refund"})
	must(t, "MissRecord other key", err)
	if other.ID == g.ID || other.Count != 1 || time.Since(other.LastSeen) > time.Minute {
		t.Errorf("other group = %+v", other)
	}

	long, err := s.MissRecord(ctx, kb.Miss{TenantID: TenantA, Text: strings.Repeat("长", kb.MaxMessageLen), Key: "long", At: t0})
	must(t, "MissRecord long text", err)
	if len(long.Text) > kb.MaxMessageLen || len(long.Samples[0].Text) > kb.MaxMessageLen || !strings.HasPrefix(long.Text, "长长") {
		t.Errorf("long text kept %d bytes, want at most %d", len(long.Text), kb.MaxMessageLen)
	}

	_, err = s.MissRecord(ctx, kb.Miss{TenantID: TenantA, Text: "x", Key: " "})
	wantCode(t, "MissRecord empty key", err, errs.Invalid)
	_, err = s.MissRecord(ctx, kb.Miss{TenantID: "kbt-ghost", Text: "x", Key: "x"})
	wantCode(t, "MissRecord unknown tenant", err, errs.NotFound)
}

func testMissListGetDelete(t *testing.T, s kb.Store) {
	ctx := t.Context()
	rec := func(key string, min int) kb.MissGroup {
		t.Helper()
		g, err := s.MissRecord(ctx, kb.Miss{TenantID: TenantA, Text: key, Key: key, At: t0.Add(time.Duration(min) * time.Minute)})
		must(t, "MissRecord "+key, err)
		return g
	}
	rec("a", 0)
	rec("a", 1)
	rec("a", 2)
	rec("b", 5)
	rec("b", 6)
	rec("c", 9)
	rec("c", 3)
	rec("d", 4)
	list, err := s.MissList(ctx, TenantA, 0)
	must(t, "MissList", err)
	var keys []string
	for _, g := range list {
		keys = append(keys, g.Key)
	}
	// a: 3; then b and c with 2 each, c seen last; then d.
	diff(t, "MissList order", []string{"a", "c", "b", "d"}, keys)
	top, err := s.MissList(ctx, TenantA, 2)
	must(t, "MissList limit", err)
	diff(t, "MissList limit 2", list[:2], top)
	got, err := s.MissGet(ctx, TenantA, list[1].ID)
	must(t, "MissGet", err)
	diff(t, "MissGet", list[1], got)
	_, err = s.MissGet(ctx, TenantA, "nope")
	wantCode(t, "MissGet missing", err, errs.NotFound)

	// An unknown id among known ones removes nothing.
	wantCode(t, "MissDelete with unknown id", s.MissDelete(ctx, TenantA, []string{list[0].ID, "nope"}), errs.NotFound)
	if l, _ := s.MissList(ctx, TenantA, 0); len(l) != 4 {
		t.Errorf("after refused MissDelete %d groups, want 4", len(l))
	}
	must(t, "MissDelete", s.MissDelete(ctx, TenantA, []string{list[0].ID, list[2].ID, list[0].ID}))
	left, err := s.MissList(ctx, TenantA, 0)
	must(t, "MissList after delete", err)
	diff(t, "groups left", []kb.MissGroup{list[1], list[3]}, left)
	wantCode(t, "MissDelete deleted", s.MissDelete(ctx, TenantA, []string{list[0].ID}), errs.NotFound)
	must(t, "MissDelete none", s.MissDelete(ctx, TenantA, nil))

	// A deleted key starts a new group.
	again := rec("a", 20)
	if again.ID == list[0].ID || again.Count != 1 {
		t.Errorf("re-recorded group = %+v", again)
	}
}

// testMissRecordConcurrent records the same new key from many goroutines,
// as many nodes do when a popular question has no answer: one group, every
// miss counted.
func testMissRecordConcurrent(t *testing.T, s kb.Store) {
	ctx := t.Context()
	const workers, each = 8, 5
	var wg sync.WaitGroup
	errc := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				_, err := s.MissRecord(ctx, kb.Miss{TenantID: TenantA, SessionID: fmt.Sprint("w", w, "-", i),
					Text: "help", Key: "help", At: t0.Add(time.Duration(w*each+i) * time.Second)})
				if err != nil {
					errc <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatalf("concurrent MissRecord: %v", err)
	}
	list, err := s.MissList(ctx, TenantA, 0)
	must(t, "MissList", err)
	if len(list) != 1 {
		t.Fatalf("%d groups for one key, want 1: %+v", len(list), list)
	}
	g := list[0]
	if g.Count != workers*each {
		t.Errorf("count = %d, want %d (lost updates)", g.Count, workers*each)
	}
	if len(g.Samples) != kb.MaxMissSamples {
		t.Errorf("%d samples, want %d", len(g.Samples), kb.MaxMissSamples)
	}
	// The kept samples are the most recent ones, whatever order they came.
	for i, sm := range g.Samples {
		want := t0.Add(time.Duration(workers*each-1-i) * time.Second)
		if !sm.At.Equal(want) {
			t.Errorf("sample %d at %v, want %v", i, sm.At, want)
		}
	}
	if !g.FirstSeen.Equal(t0) || !g.LastSeen.Equal(t0.Add(time.Duration(workers*each-1)*time.Second)) {
		t.Errorf("seen %v .. %v", g.FirstSeen, g.LastSeen)
	}
}

// testEntryUpdateConcurrent has several editors save the same version: one
// wins, the others conflict, and the history has one update.
func testEntryUpdateConcurrent(t *testing.T, s kb.Store) {
	ctx := t.Context()
	v1 := mustEntry(t, s, newEntry(TenantA, "e1", "refund"))
	const editors = 6
	var wg sync.WaitGroup
	results := make(chan error, editors)
	for i := range editors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := v1
			e.Answer.Text = fmt.Sprint("answer by editor ", i)
			_, err := s.EntryUpdate(ctx, e, fmt.Sprint("editor", i))
			results <- err
		}()
	}
	wg.Wait()
	close(results)
	won := 0
	for err := range results {
		switch {
		case err == nil:
			won++
		case errs.Is(err, errs.Conflict):
		default:
			t.Errorf("concurrent EntryUpdate: %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d updates of version 1 succeeded, want 1", won)
	}
	hist, err := s.EntryHistory(ctx, TenantA, "e1")
	must(t, "EntryHistory", err)
	if len(hist) != 2 {
		t.Errorf("history has %d changes, want 2", len(hist))
	}
}
