package kb_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/agents/agentsql"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/testenv"
	"github.com/switchboard-acd/switchboard/kb"
	"github.com/switchboard-acd/switchboard/kb/kbindex"
	"github.com/switchboard-acd/switchboard/kb/kbsql"
	"github.com/switchboard-acd/switchboard/session"
)

// memMemory is kb.Memory in a map: the bot's menus for one process (the
// server keeps them in Redis).
type memMemory struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (m *memMemory) Get(_ context.Context, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[key]
	return v, ok, nil
}

func (m *memMemory) Set(_ context.Context, key string, val []byte, _ time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[key] = val
	return nil
}

func (m *memMemory) Del(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, key)
	return nil
}

type botFixture struct {
	t     *testing.T
	svc   *kb.Service
	store kb.Store
	lib   *kb.Library
	bot   *kb.Bot
	ids   map[string]string // entry question → id
}

// nopPublisher: the test tells the library itself.
type libPublisher struct{ lib **kb.Library }

func (p libPublisher) KBChanged(_ context.Context, tenantID string) {
	if *p.lib != nil {
		(*p.lib).Changed(tenantID)
	}
}

func newBotFixture(t *testing.T, kind string) *botFixture {
	t.Helper()
	ctx := t.Context()
	d := testenv.DB(t, kind)
	if _, err := agentsql.New(d).TenantCreate(ctx, agents.Tenant{ID: "t1", Name: "T1"}); err != nil {
		t.Fatal(err)
	}
	store := kbsql.New(d)
	f := &botFixture{t: t, store: store, ids: map[string]string{}}
	f.svc = kb.NewService(store, clock.Real{}, libPublisher{&f.lib})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	entries := []kb.Entry{
		{Question: "How do I reset my password?", Variants: []string{"forgot my password", "reset password", "can't log in, password lost", "change my login password"},
			Answer: kb.Answer{Text: "Tap 'Forgot password' on the login page."}, Keywords: []string{"password"}, Language: kb.LangEnglish, Enabled: true},
		{Question: "What are your opening hours?", Variants: []string{"when are you open", "opening times", "business hours", "are you open on sunday"},
			Answer: kb.Answer{Text: "We are open 9:00-18:00, Monday to Friday."}, Language: kb.LangEnglish, Enabled: true},
		{Question: "How do I cancel my order?", Variants: []string{"cancel order", "I want to cancel my purchase", "stop my order"},
			Answer:   kb.Answer{Text: "Which order?", Choices: []kb.Choice{{Label: "Not shipped yet", Text: "Cancel it in My orders."}, {Label: "Already shipped", Handoff: true}}},
			Language: kb.LangEnglish, Enabled: true},
		{Question: "如何修改收货地址", Variants: []string{"怎么改地址", "收货地址填错了", "更换收货地址"},
			Answer: kb.Answer{Text: "在“我的订单”中修改地址。"}, Language: kb.LangChinese, Enabled: true},
		{Question: "What is the delivery fee?", Variants: []string{"shipping cost", "how much is delivery"},
			Answer: kb.Answer{Text: "Delivery is free over 50."}, Language: kb.LangEnglish, Enabled: false},
	}
	for _, e := range entries {
		got, err := f.svc.CreateEntry(ctx, "t1", "editor", e)
		if err != nil {
			t.Fatalf("create entry %q: %v", e.Question, err)
		}
		f.ids[e.Question] = got.ID
	}
	if _, err := f.svc.CreateRule(ctx, "t1", kb.Rule{Name: "refunds", Kind: kb.RuleContains, Keywords: []string{"refund", "退款"},
		Answer: kb.Answer{Text: "Refunds take 5 working days."}, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateRule(ctx, "t1", kb.Rule{Name: "complaints", Kind: kb.RuleContains, Keywords: []string{"complaint"},
		Handoff: true, GroupID: "g-complaints", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	f.lib = kb.NewLibrary(store, kbindex.Build, kb.LibraryOptions{Dir: t.TempDir(), Debounce: 10 * time.Millisecond}, log)
	t.Cleanup(f.lib.Close)
	f.bot = kb.NewBot(f.lib, store, &memMemory{m: map[string][]byte{}}, clock.Real{}, log)
	return f
}

func sess(id string) session.Session {
	return session.Session{TenantID: "t1", ID: id, State: session.StateBot}
}

func TestBot(t *testing.T) {
	for _, kind := range testenv.DBKinds {
		t.Run(kind, func(t *testing.T) { testBot(t, kind) })
	}
}

func testBot(t *testing.T, kind string) {
	f := newBotFixture(t, kind)
	ctx := t.Context()
	pw := f.ids["How do I reset my password?"]

	t.Run("greets with the tenant's greeting", func(t *testing.T) {
		if g := f.bot.Greeting(ctx, sess("s0")); g != kb.DefaultSettings("t1").Greeting {
			t.Fatalf("greeting = %q", g)
		}
	})
	t.Run("answers a known question", func(t *testing.T) {
		r := f.bot.Reply(ctx, sess("s1"), "I forgot my password, how can I reset it?")
		if !r.Matched || r.Handoff || r.Text != "Tap 'Forgot password' on the login page." {
			t.Fatalf("reply = %+v", r)
		}
		if r.Note == nil || r.Note.Outcome != "answer" || r.Note.EntryID != pw || r.Note.Confidence <= 0 {
			t.Fatalf("note = %+v", r.Note)
		}
	})
	t.Run("typo still finds the entry", func(t *testing.T) {
		r := f.bot.Reply(ctx, sess("s2"), "pasword reset")
		if r.Note == nil || r.Note.EntryID != pw || (r.Note.Outcome != "answer" && r.Note.Outcome != "suggest") {
			t.Fatalf("reply = %+v note %+v", r, r.Note)
		}
	})
	t.Run("Chinese, traditional script", func(t *testing.T) {
		r := f.bot.Reply(ctx, sess("s3"), "收貨地址填錯了怎麼辦")
		if r.Note == nil || r.Note.EntryID != f.ids["如何修改收货地址"] {
			t.Fatalf("reply = %+v note %+v", r, r.Note)
		}
	})
	t.Run("asking for a person hands off", func(t *testing.T) {
		for _, text := range []string{"我要轉人工", "AGENT please", "can I talk to a human"} {
			r := f.bot.Reply(ctx, sess("s4"), text)
			if !r.Handoff || r.Note == nil || r.Note.Outcome != "handoff" {
				t.Errorf("%q: reply = %+v", text, r)
			}
		}
	})
	t.Run("keyword rules answer before the FAQ", func(t *testing.T) {
		r := f.bot.Reply(ctx, sess("s5"), "where is my REFUND for the password reset fee")
		if r.Text != "Refunds take 5 working days." || r.Note.Outcome != "rule" || r.Note.Keyword != "refund" {
			t.Fatalf("reply = %+v note %+v", r, r.Note)
		}
		r = f.bot.Reply(ctx, sess("s5"), "I have a complaint")
		if !r.Handoff || r.GroupID != "g-complaints" {
			t.Fatalf("handoff rule: %+v", r)
		}
	})
	t.Run("answer with a menu, picked by number", func(t *testing.T) {
		s := sess("s6")
		r := f.bot.Reply(ctx, s, "how do I cancel my order")
		if len(r.Choices) != 2 || !strings.Contains(r.Text, "1. Not shipped yet") || !strings.Contains(r.Text, "2. Already shipped") {
			t.Fatalf("menu reply = %+v", r)
		}
		r = f.bot.Reply(ctx, s, "１") // full-width digit
		if r.Text != "Cancel it in My orders." || r.Note.Outcome != "choice" {
			t.Fatalf("choice 1 = %+v", r)
		}
		f.bot.Reply(ctx, s, "cancel order")
		if r = f.bot.Reply(ctx, s, "already shipped"); !r.Handoff {
			t.Fatalf("choice by label = %+v", r)
		}
	})
	t.Run("misses are recorded and grouped", func(t *testing.T) {
		for i, text := range []string{"Do you sell gift cards?", "do you sell GIFT CARDS", "🙂🙂", ""} {
			r := f.bot.Reply(ctx, sess("m"+string(rune('0'+i))), text)
			if r.Matched || r.Handoff || r.Note == nil || r.Note.Outcome != "miss" {
				t.Fatalf("%q: reply = %+v note %+v", text, r, r.Note)
			}
		}
		groups, err := f.store.MissList(ctx, "t1", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(groups) != 1 || groups[0].Count != 2 || groups[0].Text != "Do you sell gift cards?" || len(groups[0].Samples) != 2 {
			t.Fatalf("miss groups = %+v", groups)
		}
	})
	t.Run("disabled entries never answer", func(t *testing.T) {
		r := f.bot.Reply(ctx, sess("s7"), "What is the delivery fee?")
		if r.Note != nil && r.Note.EntryID == f.ids["What is the delivery fee?"] {
			t.Fatalf("disabled entry used: %+v", r.Note)
		}
	})
	t.Run("did you mean, and rejecting it hands off", func(t *testing.T) {
		st := kb.DefaultSettings("t1")
		st.AnswerThreshold, st.SuggestThreshold = 1, 0.0001
		if _, err := f.svc.PutSettings(ctx, "t1", st); err != nil {
			t.Fatal(err)
		}
		waitRevision(t, f)
		s := sess("s8")
		r := f.bot.Reply(ctx, s, "reset password")
		if r.Note == nil || r.Note.Outcome != "suggest" || !strings.HasPrefix(r.Text, "Did you mean:") || len(r.Choices) < 2 {
			t.Fatalf("suggest reply = %+v note %+v", r, r.Note)
		}
		if r.Choices[0].Label != "How do I reset my password?" || r.Choices[len(r.Choices)-1].Label != "None of these / 都不是" {
			t.Fatalf("choices = %+v", r.Choices)
		}
		r = f.bot.Reply(ctx, s, r.Choices[len(r.Choices)-1].Value)
		if !r.Handoff {
			t.Fatalf("none of these = %+v", r)
		}
		st.AnswerThreshold, st.SuggestThreshold = kb.DefaultSettings("t1").AnswerThreshold, kb.DefaultSettings("t1").SuggestThreshold
		if _, err := f.svc.PutSettings(ctx, "t1", st); err != nil {
			t.Fatal(err)
		}
		waitRevision(t, f)
	})
	t.Run("a new entry is answered after the rebuild", func(t *testing.T) {
		if _, err := f.svc.CreateEntry(ctx, "t1", "editor", kb.Entry{Question: "Do you sell gift cards?", Variants: []string{"gift card", "buy a gift voucher"},
			Answer: kb.Answer{Text: "Yes, in every store."}, Enabled: true}); err != nil {
			t.Fatal(err)
		}
		waitRevision(t, f)
		r := f.bot.Reply(ctx, sess("s9"), "can I buy a gift card")
		if r.Note == nil || r.Note.Question != "Do you sell gift cards?" {
			t.Fatalf("after rebuild: %+v note %+v", r, r.Note)
		}
	})
}

// waitRevision waits until the library serves the store's revision.
func waitRevision(t *testing.T, f *botFixture) {
	t.Helper()
	want, err := f.store.Revision(t.Context(), "t1")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		snap, err := f.lib.Acquire(t.Context(), "t1")
		if err != nil {
			t.Fatal(err)
		}
		got := snap.Revision
		snap.Release()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("library at revision %d, store at %d", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMissKey(t *testing.T) {
	same := [][]string{
		{"Do you sell gift cards?", "do you sell GIFT CARDS", "gift card sell", "Do you sell gift cards??"},
		{"Where is order 12345?", "where is order 999", "ORDER 7 where"},
		{"這個多少錢", "这个多少钱"},
	}
	for _, g := range same {
		k := kb.MissKey(g[0])
		if k == "" {
			t.Fatalf("MissKey(%q) empty", g[0])
		}
		for _, s := range g[1:] {
			if got := kb.MissKey(s); got != k {
				t.Errorf("MissKey(%q) = %q, want %q (as %q)", s, got, k, g[0])
			}
		}
	}
	if kb.MissKey("Do you sell gift cards?") == kb.MissKey("Do you sell phones?") {
		t.Error("different questions share a key")
	}
	for _, s := range []string{"", "🙂", "?!", "123"} {
		if k := kb.MissKey(s); k != "" {
			t.Errorf("MissKey(%q) = %q, want empty", s, k)
		}
	}
}
