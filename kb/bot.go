package kb

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/kb/textnorm"
	"github.com/switchboard-acd/switchboard/session"
)

// Memory keeps the bot's short-lived per-session state (the menu the
// customer was last shown) where every node sees it: a customer's next
// message may reach another node. app implements it on Redis.
type Memory interface {
	// Get returns the value stored under key, or ok false.
	Get(ctx context.Context, key string) (val []byte, ok bool, err error)
	// Set stores val under key for ttl.
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	// Del forgets key.
	Del(ctx context.Context, key string) error
}

// MenuTTL is how long a menu or "did you mean" question stays answerable by
// its number.
const MenuTTL = 30 * time.Minute

// Bot is the first responder of every session. Per customer message it
// tries, in order: a pending menu (a number or a choice label), handoff
// words, keyword rules, then FAQ retrieval with the tenant's thresholds:
// answer, "did you mean" (up to three choices and "none of these", which
// hands off), or a miss, recorded in the unmatched bin. Every reply carries
// a note of what was understood, so the agent who takes over reads the bot
// transcript with its reasons.
type Bot struct {
	lib    *Library
	store  Store
	memory Memory
	clock  clock.Clock
	log    *slog.Logger
}

// NewBot returns a bot answering from lib's knowledge bases; misses are
// recorded in store, menus kept in memory.
func NewBot(lib *Library, store Store, memory Memory, clk clock.Clock, log *slog.Logger) *Bot {
	return &Bot{lib: lib, store: store, memory: memory, clock: clk, log: log}
}

var _ session.Bot = (*Bot)(nil)

// Greeting implements session.Bot with the tenant's greeting, read from
// the compiled snapshot (no query per new session).
func (b *Bot) Greeting(ctx context.Context, s session.Session) string {
	snap, err := b.lib.Acquire(ctx, s.TenantID)
	if err != nil {
		b.log.Error("kb unavailable", "tenant", s.TenantID, "err", err)
		return DefaultSettings(s.TenantID).Greeting
	}
	defer snap.Release()
	return snap.Settings.Greeting
}

// menu is a pending set of choices, as stored in Memory.
type menu struct {
	Choices []Choice `json:"choices"`
	// Suggest marks a "did you mean" question: its last choice is "none of
	// these", and picking it hands off.
	Suggest bool `json:"suggest,omitempty"`
}

// noneOfThese is the label of the choice that rejects a "did you mean".
const noneOfThese = "None of these / 都不是"

// Reply implements session.Bot.
func (b *Bot) Reply(ctx context.Context, s session.Session, text string) session.BotReply {
	text = textnorm.Cap(text, MaxMessageLen)
	snap, err := b.lib.Acquire(ctx, s.TenantID)
	if err != nil {
		// No knowledge base: better a person than a bot that cannot think.
		b.log.Error("kb unavailable", "tenant", s.TenantID, "err", err)
		return session.BotReply{Handoff: true, Note: &session.BotNote{Outcome: "handoff", Query: text}}
	}
	defer snap.Release()
	folded := textnorm.Fold(text)
	note := &session.BotNote{Query: text}

	if m, ok := b.pendingMenu(ctx, s); ok {
		if c, ok := m.pick(folded); ok {
			_ = b.memory.Del(ctx, menuKey(s))
			if m.Suggest && c.Label == noneOfThese {
				note.Outcome = "handoff"
				return session.BotReply{Matched: true, Handoff: true, Note: note}
			}
			note.Outcome = "choice"
			return b.act(ctx, s, snap, c.Text, c.EntryID, c.Handoff, c.GroupID, note)
		}
	}
	if snap.Matcher.WantsPerson(text) {
		note.Outcome = "handoff"
		return session.BotReply{Matched: true, Handoff: true, Note: note}
	}
	if hit, ok := snap.Matcher.Rule(text); ok {
		if r, ok := snap.Rules[hit.RuleID]; ok {
			note.Outcome, note.RuleID, note.Keyword = "rule", r.ID, hit.Keyword
			if r.Handoff {
				return session.BotReply{Matched: true, Handoff: true, GroupID: r.GroupID, Note: note}
			}
			if r.EntryID == "" {
				return b.answer(ctx, s, r.Answer, note)
			}
			return b.act(ctx, s, snap, "", r.EntryID, false, "", note)
		}
	}
	set := snap.Settings
	cands := snap.Matcher.FAQ(text, 3)
	if len(cands) > 0 && cands[0].Confidence >= set.AnswerThreshold {
		if e, ok := snap.Entries[cands[0].EntryID]; ok {
			note.Outcome, note.EntryID, note.Question, note.Confidence = "answer", e.ID, e.Question, round3(cands[0].Confidence)
			return b.answer(ctx, s, e.Answer, note)
		}
	}
	var sugg []Choice
	for _, c := range cands {
		if e, ok := snap.Entries[c.EntryID]; ok && c.Confidence >= set.SuggestThreshold {
			sugg = append(sugg, Choice{Label: e.Question, EntryID: e.ID})
		}
	}
	if len(sugg) > 0 {
		note.Outcome, note.EntryID, note.Question, note.Confidence = "suggest", sugg[0].EntryID, sugg[0].Label, round3(cands[0].Confidence)
		m := menu{Choices: append(sugg, Choice{Label: noneOfThese, Handoff: true}), Suggest: true}
		b.remember(ctx, s, m)
		return session.BotReply{Text: withNumbers("Did you mean:", m.Choices), Choices: botChoices(m.Choices), Matched: true, Note: note}
	}
	b.recordMiss(ctx, s, text)
	note.Outcome = "miss"
	if len(cands) > 0 {
		if e, ok := snap.Entries[cands[0].EntryID]; ok {
			note.EntryID, note.Question, note.Confidence = e.ID, e.Question, round3(cands[0].Confidence)
		}
	}
	if set.MaxMisses > 0 && s.BotMisses+1 >= set.MaxMisses {
		// Misses in a row: a person takes over (the handoff tells the
		// customer about the queue).
		return session.BotReply{Handoff: true, Note: note}
	}
	return session.BotReply{Text: set.FallbackText, Note: note}
}

// act carries out a choice or a rule: hand off, answer with an entry, or
// answer with a text.
func (b *Bot) act(ctx context.Context, s session.Session, snap *Snapshot, text, entryID string, handoff bool, groupID string, note *session.BotNote) session.BotReply {
	switch {
	case handoff:
		note.Outcome = "handoff"
		return session.BotReply{Matched: true, Handoff: true, GroupID: groupID, Note: note}
	case entryID != "":
		e, ok := snap.Entries[entryID]
		if !ok {
			// A rule or choice pointing at a deleted or disabled entry.
			b.recordMiss(ctx, s, note.Query)
			note.Outcome = "miss"
			return session.BotReply{Text: snap.Settings.FallbackText, Note: note}
		}
		note.EntryID, note.Question = e.ID, e.Question
		return b.answer(ctx, s, e.Answer, note)
	default:
		return session.BotReply{Text: text, Matched: true, Note: note}
	}
}

// answer replies with a, remembering its choices as the pending menu.
func (b *Bot) answer(ctx context.Context, s session.Session, a Answer, note *session.BotNote) session.BotReply {
	if len(a.Choices) == 0 {
		_ = b.memory.Del(ctx, menuKey(s))
		return session.BotReply{Text: a.Text, Matched: true, Note: note}
	}
	b.remember(ctx, s, menu{Choices: a.Choices})
	return session.BotReply{Text: withNumbers(a.Text, a.Choices), Choices: botChoices(a.Choices), Matched: true, Note: note}
}

func (b *Bot) remember(ctx context.Context, s session.Session, m menu) {
	raw, _ := json.Marshal(m)
	if err := b.memory.Set(ctx, menuKey(s), raw, MenuTTL); err != nil {
		b.log.Warn("kb remember menu", "session", s.ID, "err", err)
	}
}

func (b *Bot) pendingMenu(ctx context.Context, s session.Session) (menu, bool) {
	raw, ok, err := b.memory.Get(ctx, menuKey(s))
	if err != nil || !ok {
		return menu{}, false
	}
	var m menu
	if json.Unmarshal(raw, &m) != nil {
		return menu{}, false
	}
	return m, true
}

// pick finds the choice a folded reply names: its number or its label.
func (m menu) pick(folded string) (Choice, bool) {
	if n, err := strconv.Atoi(folded); err == nil && n >= 1 && n <= len(m.Choices) {
		return m.Choices[n-1], true
	}
	for _, c := range m.Choices {
		if folded != "" && textnorm.Fold(c.Label) == folded {
			return c, true
		}
	}
	return Choice{}, false
}

func (b *Bot) recordMiss(ctx context.Context, s session.Session, text string) {
	key := MissKey(text)
	if key == "" {
		return // nothing to learn from emoji or punctuation
	}
	if _, err := b.store.MissRecord(ctx, Miss{TenantID: s.TenantID, SessionID: s.ID, Text: text, Key: key, At: b.clock.Now()}); err != nil {
		b.log.Error("kb record miss", "session", s.ID, "err", err)
	}
}

func menuKey(s session.Session) string { return "kb:menu:" + s.TenantID + ":" + s.ID }

// withNumbers appends the choices as a numbered list, for channels without
// buttons (and for customers who prefer to type).
func withNumbers(text string, cs []Choice) string {
	var b strings.Builder
	b.WriteString(text)
	for i, c := range cs {
		fmt.Fprintf(&b, "\n%d. %s", i+1, c.Label)
	}
	return b.String()
}

func botChoices(cs []Choice) []session.BotChoice {
	out := make([]session.BotChoice, len(cs))
	for i, c := range cs {
		out[i] = session.BotChoice{Label: c.Label, Value: strconv.Itoa(i + 1)}
	}
	return out
}

func round3(f float64) float64 { return float64(int(f*1000+0.5)) / 1000 }

// missStop are words too common to tell misses apart; leaving them out of
// the key groups "how do I X" with "how can I X".
var missStop = map[string]bool{
	"a": true, "an": true, "the": true, "i": true, "me": true, "my": true, "you": true, "your": true,
	"is": true, "are": true, "am": true, "do": true, "does": true, "can": true, "could": true, "would": true,
	"to": true, "of": true, "for": true, "in": true, "on": true, "it": true, "please": true, "pls": true,
	"how": true, "what": true, "hi": true, "hello": true, "hey": true, "want": true, "need": true,
	"吗": true, "呢": true, "吧": true, "啊": true, "了": true, "的": true, "我": true, "请": true, "你": true, "么": true, "呀": true,
}

// MissKey is the normalised form that groups unmatched messages: folded,
// digits collapsed to '#', common words dropped, plural -s stripped, words
// sorted and de-duplicated (Chinese characters count as words). Messages
// that differ only in case, width, script form, punctuation, numbers, word
// order or filler words land in one group. "" means nothing worth keeping.
func MissKey(text string) string {
	folded := textnorm.Fold(textnorm.Cap(text, MaxMessageLen))
	var words []string
	for _, w := range strings.Fields(folded) {
		var cur strings.Builder
		flush := func() {
			if cur.Len() == 0 {
				return
			}
			t := cur.String()
			cur.Reset()
			if missStop[t] {
				return
			}
			if len(t) > 3 && strings.HasSuffix(t, "s") && !strings.HasSuffix(t, "ss") {
				t = strings.TrimSuffix(t, "s")
			}
			words = append(words, t)
		}
		digits := false
		for _, r := range w {
			switch {
			case r >= '0' && r <= '9':
				if !digits {
					flush()
					cur.WriteByte('#')
				}
				digits = true
				continue
			case textnorm.IsHan(r):
				flush()
				cur.WriteRune(r)
				flush()
			default:
				if digits {
					flush()
				}
				cur.WriteRune(r)
			}
			digits = false
		}
		flush()
	}
	sort.Strings(words)
	out := words[:0]
	for i, w := range words {
		if i == 0 || w != words[i-1] {
			out = append(out, w)
		}
	}
	if len(out) == 1 && out[0] == "#" {
		return ""
	}
	return strings.Join(out, " ")
}
