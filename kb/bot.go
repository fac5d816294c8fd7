// Package kb owns the knowledge base and the bot that answers customers
// before a person does. This file holds the bot's handoff policy: it
// recognises a request for a person in Chinese or English and otherwise
// answers with a short help text, counting misses so that the session
// engine hands off after a few. FAQ retrieval plugs in here.
package kb

import (
	"context"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/switchboard-acd/switchboard/session"
)

// Bot is the first responder of every session.
type Bot struct {
	handoff []string
	// Greeting opens every new session.
	greeting string
	// fallback answers a message the bot did not understand.
	fallback string
}

// NewBot returns a bot that hands off on any of the handoff words.
func NewBot(handoffWords []string) *Bot {
	b := &Bot{
		greeting: "Hi! I'm the virtual assistant. Ask me anything, or type \"agent\" (人工) to talk to a person.",
		fallback: "Sorry, I didn't catch that. Type \"agent\" (人工) to talk to a person.",
	}
	for _, w := range handoffWords {
		if w = Normalize(w); w != "" {
			b.handoff = append(b.handoff, w)
		}
	}
	return b
}

var _ session.Bot = (*Bot)(nil)

// Greeting implements session.Bot.
func (b *Bot) Greeting(ctx context.Context, s session.Session) string { return b.greeting }

// Reply implements session.Bot: a request for a person hands off; anything
// else is a miss answered with the fallback text.
func (b *Bot) Reply(ctx context.Context, s session.Session, text string) session.BotReply {
	if b.WantsPerson(text) {
		return session.BotReply{Matched: true, Handoff: true}
	}
	return session.BotReply{Text: b.fallback}
}

// WantsPerson reports whether text asks for a human. ASCII words must match
// whole words ("agent", not "agents");
// CJK words match as substrings, since Chinese has no spaces.
func (b *Bot) WantsPerson(text string) bool {
	t := Normalize(text)
	for _, w := range b.handoff {
		if isASCII(w) {
			for _, f := range strings.FieldsFunc(t, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
				if f == w {
					return true
				}
			}
			continue
		}
		if strings.Contains(t, w) {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Normalize folds text for matching: Unicode compatibility form (full-width
// to half-width), lower case, trimmed.
func Normalize(s string) string {
	return strings.TrimSpace(strings.ToLower(norm.NFKC.String(s)))
}
