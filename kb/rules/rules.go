// Package rules owns the bot's keyword-rule matcher: it compiles a tenant's
// exact, contains, menu and regex rules once, and then tells for each
// customer message which rule, if any, fires before FAQ retrieval is asked.
//
// All keywords of all exact, contains and menu rules go into one
// Aho–Corasick automaton, so a message costs one pass over its bytes however
// many keywords a tenant has (DESIGN §6). Regex rules are RE2 patterns (linear
// time) tried only when no keyword matched. Keywords and messages are both
// folded with textnorm.Fold, so full-width, traditional-Chinese and
// upper-case input matches keywords written half-width, simplified and lower
// case.
//
// The package holds no storage and no policy: the bot decides what a hit
// does (answer, entry, handoff). A Set is immutable after Compile and safe
// for concurrent use; rebuild it when the tenant's KB revision changes.
//
// # Handoff words
//
// The bot compiles the tenant's handoff words (Settings.HandoffWords:
// "人工", "agent", ...) as one more contains rule, HandoffRule, in the same
// Set as the tenant's rules and passes it last:
//
//	set, err := rules.Compile(append(rules.FromKB(kbRules), rules.HandoffRule(settings.HandoffWords)))
//	if err != nil { log it: set still holds every valid rule }
//	if hit, ok := set.Match(text); ok && hit.RuleID == rules.HandoffRuleID { hand off }
//
// Sharing the Set lets longest-wins decide between a bare "人工" (hand off)
// and a tenant rule for "人工服务时间" (answer the opening hours); at equal
// length the tenant's own rule wins, because HandoffRule has the lowest
// priority. Contains semantics give handoff words the behaviour customers
// expect: "agent" matches "I want an agent" but not "agents" or "reagent",
// and "人工" matches anywhere in "我要转人工".
package rules

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	ahocorasick "github.com/petar-dambovaliev/aho-corasick"

	"github.com/switchboard-acd/switchboard/kb"
	"github.com/switchboard-acd/switchboard/kb/textnorm"
)

// Rule is the part of a kb.Rule the matcher needs. It is its own type so
// that the bot can add rules that are not stored KB rules (HandoffRule)
// without inventing answers and versions for them.
type Rule struct {
	// ID names the rule in a Hit and in Compile errors; it must be unique
	// within one Compile.
	ID string
	// Kind says how Keywords are compared with a message (see kb.RuleKind).
	Kind kb.RuleKind
	// Keywords are the phrases of an exact, contains or menu rule, or the
	// one pattern of a regex rule, as the editor wrote them.
	Keywords []string
	// Priority breaks ties between keywords of equal length and orders
	// regex rules; higher wins.
	Priority int
}

// HandoffRuleID is the ID of the rule HandoffRule builds; a Hit with this
// RuleID means the customer asked for a person. The kb service assigns
// stored rules their ids; should one ever equal this, Compile reports the
// duplicate rather than confusing the two.
const HandoffRuleID = "_handoff"

// HandoffRule returns a contains rule holding the tenant's handoff words,
// for the bot to compile with the tenant's rules (see the package doc).
// Words that fold to nothing (punctuation, emoji) and duplicates after
// folding are dropped, and only the first kb.MaxKeywords words are kept
// (Settings validation enforces both), so that a stale settings row can
// never make Compile drop the handoff rule and leave customers unable to
// reach a person. Its priority is the lowest, so a tenant rule with the
// same keyword wins.
func HandoffRule(words []string) Rule {
	r := Rule{ID: HandoffRuleID, Kind: kb.RuleContains, Priority: math.MinInt}
	seen := make(map[string]bool, len(words))
	for _, w := range words {
		f := textnorm.Fold(w)
		if f == "" || seen[f] || len(w) > kb.MaxKeywordLen || len(r.Keywords) == kb.MaxKeywords {
			continue
		}
		seen[f] = true
		r.Keywords = append(r.Keywords, w)
	}
	return r
}

// FromKB converts stored rules for Compile, keeping their order and
// leaving out disabled rules, which must never match.
func FromKB(rs []kb.Rule) []Rule {
	out := make([]Rule, 0, len(rs))
	for _, r := range rs {
		if !r.Enabled {
			continue
		}
		out = append(out, Rule{ID: r.ID, Kind: r.Kind, Keywords: r.Keywords, Priority: r.Priority})
	}
	return out
}

// Hit tells which rule matched a message and where, so the agent who takes
// over sees in the transcript why the bot acted.
type Hit struct {
	// RuleID is the ID of the rule that fired, for the bot to look up its
	// action.
	RuleID string
	// Kind is the rule's kind; with Keyword it tells the agent how the
	// message matched.
	Kind kb.RuleKind
	// Keyword is the folded keyword that matched (for a menu rule, its
	// number without leading zeros), or the pattern of a regex rule as
	// written.
	Keyword string
	// Text is the message as the matcher read it: folded and capped.
	// Text[Start:End] is the matched part; for keyword rules it equals
	// Keyword.
	Text       string
	Start, End int
}

// Set is a compiled set of rules. It is immutable and safe for concurrent
// use. A nil or zero Set matches nothing, so a bot whose rules are not
// loaded yet goes straight to FAQ retrieval.
type Set struct {
	ac       ahocorasick.AhoCorasick
	patterns []pattern // by automaton pattern index; empty means no automaton
	regexes  []regexRule
	rules    []ruleInfo
}

// pattern is one distinct folded keyword of the automaton. The same keyword
// may belong to several rules, of several kinds; cands lists them best
// first (priority, then input order), so the first whose kind accepts an
// occurrence is that occurrence's winner.
type pattern struct {
	keyword string
	runes   int // the length that "longest wins" compares
	// wordStart and wordEnd say whether the keyword's first and last
	// characters belong to a script written with spaces, so that a
	// contains match there must sit at a word boundary.
	wordStart, wordEnd bool
	cands              []cand
}

type cand struct {
	rule int // index into Set.rules
	kind kb.RuleKind
}

type ruleInfo struct {
	id       string
	priority int
}

type regexRule struct {
	rule    int
	pattern string
	re      *regexp.Regexp
}

// Compile checks rules and builds their Set. The order of rules is the
// last tie-break, so pass them in a stable order (kb.Store.RuleList's).
//
// Every problem is reported, naming the rule and keyword, in one joined
// error: an empty or duplicate id, an unknown kind, no keywords or more than
// kb.MaxKeywords, a regex rule without exactly one acceptable pattern (see
// ValidateRegex), a keyword longer than kb.MaxKeywordLen bytes, that folds
// to nothing (only punctuation or emoji) or, for a menu rule, that is not a
// number. The returned Set is usable even then: it holds every rule and
// keyword that passed, so one bad stored rule does not silence a tenant's
// other rules. The bot logs the error and matches with the Set. The kb
// service is meant to reject such rules when they are saved (with
// ValidateRegex for patterns), so the error means stale data or a gap in
// that validation.
func Compile(rules []Rule) (*Set, error) {
	s := &Set{rules: make([]ruleInfo, len(rules))}
	var errs []error
	ids := make(map[string]bool, len(rules))
	byKeyword := make(map[string]int) // folded keyword → index into s.patterns
	for i, r := range rules {
		s.rules[i] = ruleInfo{id: r.ID, priority: r.Priority}
		if err := s.addRule(i, r, ids, byKeyword); err != nil {
			errs = append(errs, err)
		}
	}
	for i := range s.patterns {
		slices.SortStableFunc(s.patterns[i].cands, func(a, b cand) int { return s.better(a.rule, b.rule) })
	}
	slices.SortStableFunc(s.regexes, func(a, b regexRule) int { return s.better(a.rule, b.rule) })
	if len(s.patterns) > 0 {
		kws := make([]string, len(s.patterns))
		for i, p := range s.patterns {
			kws[i] = p.keyword
		}
		// StandardMatch, because only it reports overlapping matches:
		// leftmost-longest would hide a longer keyword that starts inside
		// a shorter one ("a b" hiding "b c d") or a whole word that
		// overlaps a non-word hit. The NFA, not the DFA: its memory grows
		// with the keywords, not with keywords × byte classes, which
		// matters with a Set per tenant.
		b := ahocorasick.NewAhoCorasickBuilder(ahocorasick.Opts{MatchKind: ahocorasick.StandardMatch})
		s.ac = b.Build(kws)
	}
	return s, errors.Join(errs...)
}

// addRule adds rule i to s, or as much of it as is valid, and returns what
// was not.
func (s *Set) addRule(i int, r Rule, ids map[string]bool, byKeyword map[string]int) error {
	if r.ID == "" {
		return fmt.Errorf("rule #%d: empty id", i+1)
	}
	if ids[r.ID] {
		return fmt.Errorf("rule %q: duplicate id", r.ID)
	}
	ids[r.ID] = true
	if !r.Kind.Valid() {
		return fmt.Errorf("rule %q: unknown kind %q", r.ID, r.Kind)
	}
	if len(r.Keywords) == 0 {
		return fmt.Errorf("rule %q: no keywords", r.ID)
	}
	if len(r.Keywords) > kb.MaxKeywords {
		return fmt.Errorf("rule %q: %d keywords, at most %d", r.ID, len(r.Keywords), kb.MaxKeywords)
	}
	if r.Kind == kb.RuleRegex {
		if len(r.Keywords) != 1 {
			return fmt.Errorf("rule %q: a regex rule has exactly one pattern, got %d", r.ID, len(r.Keywords))
		}
		re, err := compileRegex(r.Keywords[0])
		if err != nil {
			return fmt.Errorf("rule %q: %w", r.ID, err)
		}
		s.regexes = append(s.regexes, regexRule{rule: i, pattern: r.Keywords[0], re: re})
		return nil
	}
	var errs []error
	for _, kw := range r.Keywords {
		f, err := foldKeyword(r.Kind, kw)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %q: keyword %q: %w", r.ID, kw, err))
			continue
		}
		pi, ok := byKeyword[f]
		if !ok {
			pi = len(s.patterns)
			byKeyword[f] = pi
			first, _ := utf8.DecodeRuneInString(f)
			last, _ := utf8.DecodeLastRuneInString(f)
			s.patterns = append(s.patterns, pattern{
				keyword:   f,
				runes:     utf8.RuneCountInString(f),
				wordStart: isWordRune(first),
				wordEnd:   isWordRune(last),
			})
		}
		p := &s.patterns[pi]
		c := cand{rule: i, kind: r.Kind}
		if !slices.Contains(p.cands, c) { // a keyword repeated in one rule
			p.cands = append(p.cands, c)
		}
	}
	return errors.Join(errs...)
}

// better orders rule indexes best first: higher priority, then earlier in
// the input.
func (s *Set) better(a, b int) int {
	if c := cmp.Compare(s.rules[b].priority, s.rules[a].priority); c != 0 {
		return c
	}
	return cmp.Compare(a, b)
}

var errFoldsEmpty = errors.New("nothing left after normalisation (only punctuation, symbols or emoji)")

// foldKeyword returns the form of kw the automaton holds.
func foldKeyword(kind kb.RuleKind, kw string) (string, error) {
	if len(kw) > kb.MaxKeywordLen {
		return "", fmt.Errorf("%d bytes, at most %d", len(kw), kb.MaxKeywordLen)
	}
	f := textnorm.Fold(kw)
	if f == "" {
		return "", errFoldsEmpty
	}
	if kind == kb.RuleMenu {
		if !isNumber(f) {
			return "", errors.New("a menu keyword must be a number")
		}
		// "01" and "1" are the same menu item; the message side skips
		// leading zeros to match.
		if t := strings.TrimLeft(f, "0"); t != "" {
			f = t
		} else {
			f = "0"
		}
	}
	return f, nil
}

// isNumber reports whether s is ASCII digits only. Fold has already turned
// full-width and circled digits into ASCII ones.
func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Match returns the rule that fires on a customer message, if any. text is
// raw customer input: Match caps it at kb.MaxMessageLen bytes and folds it,
// so the cost of a message is bounded whatever the customer sends.
//
// Among all keyword occurrences that their rule's kind accepts, the longest
// keyword (in characters) wins, then the higher priority, then the rule
// earlier in the Compile input, then the leftmost occurrence. Only when no
// keyword matched are regex rules tried against the folded text, highest
// priority first.
func (s *Set) Match(text string) (Hit, bool) {
	if s == nil || len(s.patterns) == 0 && len(s.regexes) == 0 {
		return Hit{}, false
	}
	t := textnorm.Fold(textnorm.Cap(text, kb.MaxMessageLen))
	// Fold can lengthen text (NFKC expands ligatures and some symbols), so
	// cap again to keep the bound; the cut may leave a trailing space.
	t = strings.TrimRight(textnorm.Cap(t, kb.MaxMessageLen), " ")
	if t == "" {
		return Hit{}, false
	}
	if hit, ok := s.matchKeywords(t); ok {
		return hit, true
	}
	for _, r := range s.regexes {
		if loc := r.re.FindStringIndex(t); loc != nil {
			return Hit{RuleID: s.rules[r.rule].id, Kind: kb.RuleRegex, Keyword: r.pattern, Text: t, Start: loc[0], End: loc[1]}, true
		}
	}
	return Hit{}, false
}

func (s *Set) matchKeywords(t string) (Hit, bool) {
	if len(s.patterns) == 0 {
		return Hit{}, false
	}
	var (
		best      cand
		bestP     *pattern
		bestStart int
	)
	it := s.ac.IterOverlapping(t)
	for m := it.Next(); m != nil; m = it.Next() {
		p := &s.patterns[m.Pattern()]
		if bestP != nil && p.runes < bestP.runes {
			continue
		}
		start, end := m.Start(), m.End()
		c, ok := p.accept(t, start, end)
		if !ok {
			continue
		}
		if bestP != nil {
			// Longer wins; at equal length the better rule; for the same
			// rule the earlier occurrence, which the scan saw first.
			if p.runes == bestP.runes {
				if b := s.better(c.rule, best.rule); b >= 0 {
					continue
				}
			}
		}
		best, bestP, bestStart = c, p, start
	}
	if bestP == nil {
		return Hit{}, false
	}
	return Hit{
		RuleID:  s.rules[best.rule].id,
		Kind:    best.kind,
		Keyword: bestP.keyword,
		Text:    t,
		Start:   bestStart,
		End:     bestStart + len(bestP.keyword),
	}, true
}

// accept returns the best rule whose kind accepts the keyword occurring at
// t[start:end].
func (p *pattern) accept(t string, start, end int) (cand, bool) {
	whole := start == 0 && end == len(t)
	bounded := -1 // computed once, only if a contains rule asks
	for _, c := range p.cands {
		switch c.kind {
		case kb.RuleExact:
			if whole {
				return c, true
			}
		case kb.RuleMenu:
			if end == len(t) && strings.Trim(t[:start], "0") == "" {
				return c, true
			}
		case kb.RuleContains:
			if bounded < 0 {
				bounded = 0
				if (!p.wordStart || boundaryBefore(t, start)) && (!p.wordEnd || boundaryAfter(t, end)) {
					bounded = 1
				}
			}
			if bounded == 1 {
				return c, true
			}
		}
	}
	return cand{}, false
}

func boundaryBefore(t string, i int) bool {
	r, _ := utf8.DecodeLastRuneInString(t[:i])
	return i == 0 || !isWordRune(r)
}

func boundaryAfter(t string, i int) bool {
	r, _ := utf8.DecodeRuneInString(t[i:])
	return i == len(t) || !isWordRune(r)
}

// noSpaceScripts are written without spaces between words, so a keyword
// edge in them needs no word boundary: "人工" must match in "我要转人工".
// Hangul is spaced, but particles attach to nouns ("상담원을"), so it is
// treated the same way.
var noSpaceScripts = []*unicode.RangeTable{
	unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul, unicode.Bopomofo,
	unicode.Thai, unicode.Lao, unicode.Khmer, unicode.Myanmar,
}

// isWordRune reports whether r is part of a word of a spaced script (Latin,
// Cyrillic, Greek, Arabic, digits...): the characters that make "agent" in
// "reagent" or "agents" not the word "agent". After Fold the text holds only
// letters, digits, marks and single spaces.
func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z'
	}
	if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) {
		return false
	}
	return !unicode.IsOneOf(noSpaceScripts, r)
}
