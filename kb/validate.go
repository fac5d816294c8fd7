// This file holds the rules every KB object obeys before it is stored:
// Normalize puts editor input in its stored form (trimmed, de-duplicated,
// empty lists as []), Validate reports every problem at once so an editor
// or an import report can show them all, each naming its field.

package kb

import (
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/switchboard-acd/switchboard/internal/errs"
)

// Limits that kb.go does not name. They are exported so the HTTP layer and
// the API description quote the same numbers.
const (
	// MaxRuleNameLen bounds a rule's name, in bytes.
	MaxRuleNameLen = 100
	// MaxLabelLen bounds a choice's label, in bytes: it is a button.
	MaxLabelLen = 100
	// MaxIDLen bounds ids given by clients (an entry id in an import row, a
	// choice's entry id, a rule's group id).
	MaxIDLen = 64
	// MinRulePriority and MaxRulePriority bound a rule's priority.
	MinRulePriority = -1000
	MaxRulePriority = 1000
	// MaxRegexInsts caps the compiled program of a regex rule. RE2 runs in
	// time linear in the message, but the factor is the program size;
	// nested counted repetition such as (a{100}){100} expands to thousands
	// of instructions and is refused.
	MaxRegexInsts = 2000
	// MaxMaxMisses bounds Settings.MaxMisses.
	MaxMaxMisses = 100
)

// Problem is one thing wrong with an input (errs.Problem): the field,
// named from the object down ("variants[3]", "answer.choices[0].label"),
// and what is wrong.
type Problem = errs.Problem

// problems collects the Problems of one object.
type problems = errs.Problems

// ProblemsOf returns the problems an Invalid error of this package lists;
// for any other error it returns one problem with the error's message and
// field "" (the object as a whole).
func ProblemsOf(err error) []Problem { return errs.ProblemsOf(err) }

// foldKey is what two texts must share to count as duplicates: case and
// width folded (NFKC), so "Refund" and "ｒｅｆｕｎｄ" are one variant.
func foldKey(s string) string { return strings.ToLower(norm.NFKC.String(s)) }

// cleanList trims every item and drops empty items, duplicates (by
// foldKey) and items equal to skip. The result is never nil, so it
// serialises as [].
func cleanList(items []string, skip string) []string {
	out := make([]string, 0, len(items))
	seen := map[string]bool{}
	if skip != "" {
		seen[foldKey(skip)] = true
	}
	for _, it := range items {
		it = strings.TrimSpace(it)
		if it == "" {
			continue
		}
		k := foldKey(it)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, it)
	}
	return out
}

// checkText reports a text that is too long, not UTF-8, or holds NUL
// (which PostgreSQL refuses to store).
func checkText(p *problems, field, s string, max int, required bool) {
	switch {
	case strings.TrimSpace(s) == "":
		if required {
			p.Add(field, "must not be empty")
		}
	case len(s) > max:
		p.Add(field, "longer than %d bytes", max)
	case !utf8.ValidString(s):
		p.Add(field, "must be valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		p.Add(field, "must not contain NUL characters")
	}
}

// ValidID reports whether id may name an object a client chose the id of
// (import rows): 1-64 bytes of letters, digits, '_', '-', '.' and ':'.
func ValidID(id string) bool {
	if id == "" || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

func checkRef(p *problems, field, id string) {
	if id != "" && !ValidID(id) {
		p.Add(field, "must be 1-%d letters, digits or _-.:", MaxIDLen)
	}
}

// Normalize returns the answer in stored form: texts trimmed, no choices
// as nil (the JSON leaves the field out).
func (a Answer) Normalize() Answer {
	a.Text = strings.TrimSpace(a.Text)
	if len(a.Choices) == 0 {
		a.Choices = nil
		return a
	}
	cs := make([]Choice, len(a.Choices))
	for i, c := range a.Choices {
		c.Label = strings.TrimSpace(c.Label)
		c.Text = strings.TrimSpace(c.Text)
		c.EntryID = strings.TrimSpace(c.EntryID)
		c.GroupID = strings.TrimSpace(c.GroupID)
		cs[i] = c
	}
	a.Choices = cs
	return a
}

// check adds the problems of an answer under field.
func (a Answer) check(p *problems, field string, required bool) {
	if required || len(a.Choices) > 0 {
		checkText(p, field+".text", a.Text, MaxAnswerLen, true)
	} else {
		checkText(p, field+".text", a.Text, MaxAnswerLen, false)
	}
	if len(a.Choices) > MaxChoices {
		p.Add(field+".choices", "more than %d choices", MaxChoices)
		return
	}
	for i, c := range a.Choices {
		c.check(p, fmt.Sprintf("%s.choices[%d]", field, i))
	}
}

// check adds the problems of one choice under field: a label, and exactly
// one of entry_id, text and handoff.
func (c Choice) check(p *problems, field string) {
	checkText(p, field+".label", c.Label, MaxLabelLen, true)
	n := 0
	if c.EntryID != "" {
		n++
		checkRef(p, field+".entry_id", c.EntryID)
	}
	if c.Text != "" {
		n++
		checkText(p, field+".text", c.Text, MaxAnswerLen, true)
	}
	if c.Handoff {
		n++
	}
	if n != 1 {
		p.Add(field, "exactly one of entry_id, text and handoff must be set")
	}
	if c.GroupID != "" {
		if !c.Handoff {
			p.Add(field+".group_id", "only a handoff choice names a group")
		}
		checkRef(p, field+".group_id", c.GroupID)
	}
}

func checkKeywords(p *problems, field string, kws []string) {
	if len(kws) > MaxKeywords {
		p.Add(field, "more than %d keywords", MaxKeywords)
		return
	}
	for i, k := range kws {
		checkText(p, fmt.Sprintf("%s[%d]", field, i), k, MaxKeywordLen, true)
	}
}

// Normalize returns the entry in stored form: question, category and
// answer trimmed; variants and keywords trimmed, without empty items and
// duplicates (case- and width-insensitive, first spelling kept), variants
// without the question itself; empty lists as [].
func (e Entry) Normalize() Entry {
	e.Question = strings.TrimSpace(e.Question)
	e.Variants = cleanList(e.Variants, e.Question)
	e.Keywords = cleanList(e.Keywords, "")
	e.Category = strings.TrimSpace(e.Category)
	e.Answer = e.Answer.Normalize()
	return e
}

// Validate reports every problem of e (as errs.Invalid; ProblemsOf lists
// them). It judges e as given: call Normalize first to have blank and
// duplicate variants dropped rather than reported.
func (e Entry) Validate() error {
	var p problems
	e.check(&p)
	return p.Err("kb.Entry.Validate")
}

func (e Entry) check(p *problems) {
	checkText(p, "question", e.Question, MaxQuestionLen, true)
	if len(e.Variants) > MaxVariants {
		p.Add("variants", "more than %d variants", MaxVariants)
	} else {
		for i, v := range e.Variants {
			checkText(p, fmt.Sprintf("variants[%d]", i), v, MaxQuestionLen, true)
		}
	}
	e.Answer.check(p, "answer", true)
	checkKeywords(p, "keywords", e.Keywords)
	checkText(p, "category", e.Category, MaxCategoryLen, false)
	if !e.Language.Valid() {
		p.Add("language", `must be "" (auto), "en" or "zh"`)
	}
}

// Normalize returns the rule in stored form: name, answer and keywords
// trimmed (a regex pattern is kept as written, spaces are part of it),
// keywords without empty items and duplicates.
func (r Rule) Normalize() Rule {
	r.Name = strings.TrimSpace(r.Name)
	if r.Kind == RuleRegex {
		kws := make([]string, 0, len(r.Keywords))
		for _, k := range r.Keywords {
			if strings.TrimSpace(k) != "" {
				kws = append(kws, k)
			}
		}
		r.Keywords = kws
	} else {
		r.Keywords = cleanList(r.Keywords, "")
	}
	r.Answer = r.Answer.Normalize()
	r.EntryID = strings.TrimSpace(r.EntryID)
	r.GroupID = strings.TrimSpace(r.GroupID)
	return r
}

// Validate reports every problem of r (as errs.Invalid; ProblemsOf lists
// them): a name, a known kind, keywords that fit the kind (one RE2 pattern
// within MaxRegexLen and MaxRegexInsts; menu numbers 0-99; non-empty
// phrases), a priority in range, and exactly one action: an answer, an
// entry or a handoff.
func (r Rule) Validate() error {
	var p problems
	checkText(&p, "name", r.Name, MaxRuleNameLen, true)
	if !r.Kind.Valid() {
		p.Add("kind", "must be exact, contains, regex or menu")
	}
	switch {
	case len(r.Keywords) == 0:
		p.Add("keywords", "at least one keyword is required")
	case r.Kind == RuleRegex:
		if len(r.Keywords) != 1 {
			p.Add("keywords", "a regex rule has exactly one pattern")
		} else if err := CheckRegex(r.Keywords[0]); err != nil {
			p.Add("keywords[0]", "%s", errs.MessageOf(err))
		}
	case r.Kind == RuleMenu:
		if len(r.Keywords) > MaxKeywords {
			p.Add("keywords", "more than %d keywords", MaxKeywords)
			break
		}
		for i, k := range r.Keywords {
			if !menuNumber(k) {
				p.Add(fmt.Sprintf("keywords[%d]", i), "a menu keyword is a number 0-99")
			}
		}
	default:
		checkKeywords(&p, "keywords", r.Keywords)
	}
	if r.Priority < MinRulePriority || r.Priority > MaxRulePriority {
		p.Add("priority", "must be in [%d, %d]", MinRulePriority, MaxRulePriority)
	}
	actions := 0
	if r.Answer.Text != "" || len(r.Answer.Choices) > 0 {
		actions++
		r.Answer.check(&p, "answer", true)
	}
	if r.EntryID != "" {
		actions++
		checkRef(&p, "entry_id", r.EntryID)
	}
	if r.Handoff {
		actions++
	}
	if actions != 1 {
		p.Add("answer", "exactly one of answer, entry_id and handoff must be set")
	}
	if r.GroupID != "" {
		if !r.Handoff {
			p.Add("group_id", "only a handoff rule names a group")
		}
		checkRef(&p, "group_id", r.GroupID)
	}
	return p.Err("kb.Rule.Validate")
}

// menuNumber reports whether k is a menu number as stored: 0-99 in ASCII
// digits without a leading zero.
func menuNumber(k string) bool {
	switch len(k) {
	case 1:
		return k[0] >= '0' && k[0] <= '9'
	case 2:
		return k[0] >= '1' && k[0] <= '9' && k[1] >= '0' && k[1] <= '9'
	}
	return false
}

// CheckRegex reports whether pattern may be a regex rule: Go (RE2) syntax,
// at most MaxRegexLen bytes, a compiled program of at most MaxRegexInsts
// instructions, and no way to match an empty string (such a pattern, like
// "(refund)?", would fire on every message). The matcher compiles rules with
// regexp.Compile; a pattern CheckRegex accepts always compiles.
func CheckRegex(pattern string) error {
	const op = "kb.CheckRegex"
	if len(pattern) > MaxRegexLen {
		return errs.E(op, errs.Invalid, "pattern longer than %d bytes", MaxRegexLen)
	}
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return errs.E(op, errs.Invalid, "invalid regular expression: %v", err)
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return errs.E(op, errs.Invalid, "invalid regular expression: %v", err)
	}
	if len(prog.Inst) > MaxRegexInsts {
		return errs.E(op, errs.Invalid, "regular expression too complex (%d instructions, at most %d)", len(prog.Inst), MaxRegexInsts)
	}
	if canMatchEmpty(re) {
		return errs.E(op, errs.Invalid, "regular expression can match an empty string, so it would match every message")
	}
	if _, err := regexp.Compile(pattern); err != nil {
		return errs.E(op, errs.Invalid, "invalid regular expression: %v", err)
	}
	return nil
}

// canMatchEmpty reports whether re matches an empty string somewhere,
// ignoring what zero-width assertions (^, $, \b) require: "\b" alone would
// match every message with a word in it. It is the rule kb/rules compiles
// with, so a pattern saved here always compiles there.
func canMatchEmpty(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary, syntax.OpStar, syntax.OpQuest:
		return true
	case syntax.OpLiteral:
		return len(re.Rune) == 0
	case syntax.OpCapture, syntax.OpPlus:
		return canMatchEmpty(re.Sub[0])
	case syntax.OpRepeat:
		return re.Min == 0 || canMatchEmpty(re.Sub[0])
	case syntax.OpConcat:
		for _, s := range re.Sub {
			if !canMatchEmpty(s) {
				return false
			}
		}
		return true
	case syntax.OpAlternate:
		for _, s := range re.Sub {
			if canMatchEmpty(s) {
				return true
			}
		}
		return false
	default: // OpNoMatch, OpCharClass, OpAnyChar, OpAnyCharNotNL consume a character
		return false
	}
}

// Normalize returns the settings in stored form: texts trimmed, handoff
// words trimmed and de-duplicated.
func (s Settings) Normalize() Settings {
	s.HandoffWords = cleanList(s.HandoffWords, "")
	s.Greeting = strings.TrimSpace(s.Greeting)
	s.FallbackText = strings.TrimSpace(s.FallbackText)
	return s
}

// Validate reports every problem of s (as errs.Invalid; ProblemsOf lists
// them): thresholds with 0 <= suggest <= answer <= 1, handoff words within
// the keyword limits, max_misses in [0, MaxMaxMisses], a fallback text and
// texts within MaxAnswerLen.
func (s Settings) Validate() error {
	var p problems
	okAnswer := !math.IsNaN(s.AnswerThreshold) && s.AnswerThreshold >= 0 && s.AnswerThreshold <= 1
	okSuggest := !math.IsNaN(s.SuggestThreshold) && s.SuggestThreshold >= 0 && s.SuggestThreshold <= 1
	if !okAnswer {
		p.Add("answer_threshold", "must be in [0, 1]")
	}
	if !okSuggest {
		p.Add("suggest_threshold", "must be in [0, 1]")
	}
	if okAnswer && okSuggest && s.SuggestThreshold > s.AnswerThreshold {
		p.Add("suggest_threshold", "must not be above answer_threshold")
	}
	checkKeywords(&p, "handoff_words", s.HandoffWords)
	if s.MaxMisses < 0 || s.MaxMisses > MaxMaxMisses {
		p.Add("max_misses", "must be in [0, %d]", MaxMaxMisses)
	}
	checkText(&p, "greeting", s.Greeting, MaxAnswerLen, false)
	checkText(&p, "fallback_text", s.FallbackText, MaxAnswerLen, true)
	return p.Err("kb.Settings.Validate")
}
