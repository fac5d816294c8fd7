// Package kbindex compiles a tenant's knowledge base into a kb.Matcher: the
// handoff words and keyword rules as kb/rules automata, the FAQ entries as a
// kb/match index (bleve plus the classifier trained from the entries'
// variants). It is the one place where the kb package's port meets the two
// matching libraries, so neither depends on the other.
package kbindex

import (
	"fmt"

	"github.com/switchboard-acd/switchboard/kb"
	"github.com/switchboard-acd/switchboard/kb/match"
	"github.com/switchboard-acd/switchboard/kb/rules"
)

// Matcher implements kb.Matcher.
type Matcher struct {
	handoff *rules.Set
	rules   *rules.Set
	faq     *match.Matcher
}

var _ kb.Matcher = (*Matcher)(nil)

// Build implements kb.Builder.
func Build(in kb.BuildInput) (kb.Matcher, error) {
	handoff, err := rules.Compile([]rules.Rule{rules.HandoffRule(in.HandoffWords)})
	if err != nil {
		return nil, fmt.Errorf("handoff words: %w", err)
	}
	rs, err := rules.Compile(rules.FromKB(in.Rules))
	if err != nil {
		return nil, fmt.Errorf("keyword rules: %w", err)
	}
	docs := make([]match.Doc, 0, len(in.Entries))
	for _, e := range in.Entries {
		if !e.Enabled {
			continue
		}
		docs = append(docs, match.Doc{
			ID: e.ID, Question: e.Question, Variants: e.Variants, Keywords: e.Keywords,
			Category: e.Category, Language: string(e.Language),
		})
	}
	faq, err := match.Build(docs, match.Options{Dir: in.Dir})
	if err != nil {
		return nil, fmt.Errorf("faq index: %w", err)
	}
	return &Matcher{handoff: handoff, rules: rs, faq: faq}, nil
}

// WantsPerson implements kb.Matcher.
func (m *Matcher) WantsPerson(text string) bool {
	_, ok := m.handoff.Match(text)
	return ok
}

// Rule implements kb.Matcher.
func (m *Matcher) Rule(text string) (kb.RuleHit, bool) {
	h, ok := m.rules.Match(text)
	if !ok {
		return kb.RuleHit{}, false
	}
	return kb.RuleHit{RuleID: h.RuleID, Kind: h.Kind, Keyword: h.Keyword}, true
}

// FAQ implements kb.Matcher.
func (m *Matcher) FAQ(text string, k int) []kb.Candidate {
	res := m.faq.Match(text, k)
	out := make([]kb.Candidate, len(res.Candidates))
	for i, c := range res.Candidates {
		out[i] = kb.Candidate{EntryID: c.ID, Confidence: c.Score}
	}
	return out
}

// Close implements kb.Matcher.
func (m *Matcher) Close() error { return m.faq.Close() }
