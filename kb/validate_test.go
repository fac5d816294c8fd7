package kb_test

import (
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/kb"
)

func validEntry() kb.Entry {
	return kb.Entry{Question: "How do I get a refund?", Answer: kb.Answer{Text: "Go to Orders."}, Language: kb.LangEnglish}
}

// fields returns the fields err's problems name, in order.
func fields(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	for _, p := range kb.ProblemsOf(err) {
		out = append(out, p.Field)
	}
	return out
}

func TestEntryValidate(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	for _, tc := range []struct {
		name   string
		mutate func(e *kb.Entry)
		want   []string // fields with problems; nil = valid
	}{
		{"valid", func(e *kb.Entry) {}, nil},
		{"auto language", func(e *kb.Entry) { e.Language = kb.LangAuto }, nil},
		{"limits exactly", func(e *kb.Entry) {
			e.Question = long(kb.MaxQuestionLen)
			e.Answer.Text = long(kb.MaxAnswerLen)
			e.Category = long(kb.MaxCategoryLen)
			e.Variants = make([]string, kb.MaxVariants)
			for i := range e.Variants {
				e.Variants[i] = "v" + strings.Repeat("y", i)
			}
			e.Keywords = []string{long(kb.MaxKeywordLen)}
		}, nil},
		{"empty question", func(e *kb.Entry) { e.Question = " \t" }, []string{"question"}},
		{"empty answer", func(e *kb.Entry) { e.Answer.Text = "" }, []string{"answer.text"}},
		{"question too long", func(e *kb.Entry) { e.Question = long(kb.MaxQuestionLen + 1) }, []string{"question"}},
		{"question with NUL", func(e *kb.Entry) { e.Question = "a\x00b" }, []string{"question"}},
		{"question not UTF-8", func(e *kb.Entry) { e.Question = "a\xffb" }, []string{"question"}},
		{"answer too long", func(e *kb.Entry) { e.Answer.Text = long(kb.MaxAnswerLen + 1) }, []string{"answer.text"}},
		{"too many variants", func(e *kb.Entry) { e.Variants = make([]string, kb.MaxVariants+1) }, []string{"variants"}},
		{"long variant", func(e *kb.Entry) { e.Variants = []string{"ok", long(kb.MaxQuestionLen + 1)} }, []string{"variants[1]"}},
		{"empty variant (not normalised)", func(e *kb.Entry) { e.Variants = []string{""} }, []string{"variants[0]"}},
		{"too many keywords", func(e *kb.Entry) { e.Keywords = make([]string, kb.MaxKeywords+1) }, []string{"keywords"}},
		{"long keyword", func(e *kb.Entry) { e.Keywords = []string{long(kb.MaxKeywordLen + 1)} }, []string{"keywords[0]"}},
		{"long category", func(e *kb.Entry) { e.Category = long(kb.MaxCategoryLen + 1) }, []string{"category"}},
		{"bad language", func(e *kb.Entry) { e.Language = "fr" }, []string{"language"}},
		{"choices ok", func(e *kb.Entry) {
			e.Answer.Choices = []kb.Choice{{Label: "A", EntryID: "e-1"}, {Label: "B", Text: "b"}, {Label: "C", Handoff: true, GroupID: "sales"}}
		}, nil},
		{"choice without label", func(e *kb.Entry) { e.Answer.Choices = []kb.Choice{{Text: "b"}} }, []string{"answer.choices[0].label"}},
		{"choice without action", func(e *kb.Entry) { e.Answer.Choices = []kb.Choice{{Label: "A"}} }, []string{"answer.choices[0]"}},
		{"choice with two actions", func(e *kb.Entry) { e.Answer.Choices = []kb.Choice{{Label: "A", Text: "t", Handoff: true}} }, []string{"answer.choices[0]"}},
		{"group without handoff", func(e *kb.Entry) { e.Answer.Choices = []kb.Choice{{Label: "A", Text: "t", GroupID: "g"}} }, []string{"answer.choices[0].group_id"}},
		{"bad choice entry id", func(e *kb.Entry) { e.Answer.Choices = []kb.Choice{{Label: "A", EntryID: "a b"}} }, []string{"answer.choices[0].entry_id"}},
		{"too many choices", func(e *kb.Entry) {
			e.Answer.Choices = make([]kb.Choice, kb.MaxChoices+1)
		}, []string{"answer.choices"}},
		{"everything wrong", func(e *kb.Entry) {
			e.Question, e.Answer.Text, e.Language = "", "", "de"
		}, []string{"question", "answer.text", "language"}},
	} {
		e := validEntry()
		tc.mutate(&e)
		err := e.Validate()
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errs.Is(err, errs.Invalid) {
			t.Errorf("%s: error %v, want invalid", tc.name, err)
			continue
		}
		if d := cmp.Diff(tc.want, fields(err)); d != "" {
			t.Errorf("%s: problem fields (-want +got):\n%s", tc.name, d)
		}
		// The message names the first field, so a client showing only the
		// message still knows where to look.
		if msg := errs.MessageOf(err); !strings.HasPrefix(msg, tc.want[0]+": ") {
			t.Errorf("%s: message %q does not start with the field", tc.name, msg)
		}
	}
}

func TestEntryValidateListsEveryProblem(t *testing.T) {
	e := kb.Entry{Variants: []string{"", "ok"}, Language: "xx", Keywords: []string{strings.Repeat("k", 101)}}
	err := e.Validate()
	want := []kb.Problem{
		{Field: "question", Message: "must not be empty"},
		{Field: "variants[0]", Message: "must not be empty"},
		{Field: "answer.text", Message: "must not be empty"},
		{Field: "keywords[0]", Message: "longer than 100 bytes"},
		{Field: "language", Message: `must be "" (auto), "en" or "zh"`},
	}
	if d := cmp.Diff(want, kb.ProblemsOf(err)); d != "" {
		t.Errorf("problems (-want +got):\n%s", d)
	}
	if got := errs.MessageOf(err); got != "question: must not be empty (and 4 more problems)" {
		t.Errorf("message = %q", got)
	}
	// The details carry the same list, for the HTTP error body.
	if d := cmp.Diff(want, errs.DetailsOf(err)["problems"]); d != "" {
		t.Errorf("details (-want +got):\n%s", d)
	}
}

func TestEntryNormalize(t *testing.T) {
	in := kb.Entry{
		Question: "  Refund?  ",
		Variants: []string{" money back ", "", "MONEY BACK", "ｍｏｎｅｙ ｂａｃｋ", "refund?", "Refund?", "return"},
		Keywords: []string{"refund", " Refund", "", "退款", "退款 "},
		Category: " billing ",
		Answer:   kb.Answer{Text: " Go.\n", Choices: []kb.Choice{{Label: " A ", Text: " t "}}},
	}
	got := in.Normalize()
	want := kb.Entry{
		Question: "Refund?",
		Variants: []string{"money back", "return"},
		Keywords: []string{"refund", "退款"},
		Category: "billing",
		Answer:   kb.Answer{Text: "Go.", Choices: []kb.Choice{{Label: "A", Text: "t"}}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Normalize (-want +got):\n%s", d)
	}
	if in.Variants[0] != " money back " {
		t.Errorf("Normalize changed its input")
	}
	empty := kb.Entry{Answer: kb.Answer{Choices: []kb.Choice{}}}.Normalize()
	if empty.Variants == nil || empty.Keywords == nil || empty.Answer.Choices != nil {
		t.Errorf("Normalize of empty lists = %#v", empty)
	}
}

func validRule() kb.Rule {
	return kb.Rule{Name: "Opening hours", Kind: kb.RuleContains, Keywords: []string{"hours"}, Answer: kb.Answer{Text: "9 to 5"}}
}

func TestRuleValidate(t *testing.T) {
	regex := func(p string) func(r *kb.Rule) {
		return func(r *kb.Rule) { r.Kind, r.Keywords = kb.RuleRegex, []string{p} }
	}
	menu := func(ks ...string) func(r *kb.Rule) {
		return func(r *kb.Rule) { r.Kind, r.Keywords = kb.RuleMenu, ks }
	}
	for _, tc := range []struct {
		name   string
		mutate func(r *kb.Rule)
		want   []string
	}{
		{"valid contains", func(r *kb.Rule) {}, nil},
		{"valid exact", func(r *kb.Rule) { r.Kind = kb.RuleExact }, nil},
		{"entry action", func(r *kb.Rule) { r.Answer, r.EntryID = kb.Answer{}, "e1" }, nil},
		{"handoff action", func(r *kb.Rule) { r.Answer, r.Handoff, r.GroupID = kb.Answer{}, true, "sales" }, nil},
		{"no name", func(r *kb.Rule) { r.Name = "" }, []string{"name"}},
		{"long name", func(r *kb.Rule) { r.Name = strings.Repeat("n", kb.MaxRuleNameLen+1) }, []string{"name"}},
		{"bad kind", func(r *kb.Rule) { r.Kind = "fuzzy" }, []string{"kind"}},
		{"no keywords", func(r *kb.Rule) { r.Keywords = nil }, []string{"keywords"}},
		{"empty keyword", func(r *kb.Rule) { r.Keywords = []string{""} }, []string{"keywords[0]"}},
		{"long keyword", func(r *kb.Rule) { r.Keywords = []string{strings.Repeat("k", kb.MaxKeywordLen+1)} }, []string{"keywords[0]"}},
		{"too many keywords", func(r *kb.Rule) { r.Keywords = make([]string, kb.MaxKeywords+1) }, []string{"keywords"}},
		{"priority too high", func(r *kb.Rule) { r.Priority = kb.MaxRulePriority + 1 }, []string{"priority"}},
		{"priority lowest", func(r *kb.Rule) { r.Priority = kb.MinRulePriority }, nil},
		{"no action", func(r *kb.Rule) { r.Answer = kb.Answer{} }, []string{"answer"}},
		{"two actions", func(r *kb.Rule) { r.EntryID = "e1" }, []string{"answer"}},
		{"group without handoff", func(r *kb.Rule) { r.GroupID = "sales" }, []string{"group_id"}},
		{"choices without text", func(r *kb.Rule) { r.Answer = kb.Answer{Choices: []kb.Choice{{Label: "A", Text: "a"}}} }, []string{"answer.text"}},

		{"menu numbers", menu("0", "1", "9", "10", "99"), nil},
		{"menu 100", menu("100"), []string{"keywords[0]"}},
		{"menu leading zero", menu("1", "01"), []string{"keywords[1]"}},
		{"menu word", menu("one"), []string{"keywords[0]"}},
		{"menu full-width", menu("１"), []string{"keywords[0]"}},

		{"regex ok", regex(`^(order|shipment)\s*#?\d{6,10}$`), nil},
		{"regex Chinese", regex(`退(款|钱)`), nil},
		// Patterns that backtracking engines take exponential time on are
		// harmless in RE2 (linear time), so they are accepted.
		{"regex catastrophic for backtracking", regex(`(x+x+)+y`), nil},
		{"regex nested star", regex(`(a*)*b`), nil},
		{"regex syntax", regex(`(unclosed`), []string{"keywords[0]"}},
		{"regex backreference (not RE2)", regex(`(a)\1`), []string{"keywords[0]"}},
		{"regex lookahead (not RE2)", regex(`a(?=b)`), []string{"keywords[0]"}},
		{"regex too long", regex(strings.Repeat("a", kb.MaxRegexLen+1)), []string{"keywords[0]"}},
		// Go's parser refuses nested repetition over 1000 itself; the
		// instruction cap refuses what it lets through.
		{"regex nested counted repetition", regex(`(a{100}){100}`), []string{"keywords[0]"}},
		{"regex nested repetition under the parser's limit", regex(`((a|b|c|d){2,30}){30}`), []string{"keywords[0]"}},
		{"regex large repetition", regex(`\d{1,1000}`), []string{"keywords[0]"}},
		{"regex large but within the cap", regex(`[a-z]{1000}`), nil},
		{"regex repeat over 1000", regex(`a{1001}`), []string{"keywords[0]"}},
		{"regex matches empty", regex(`(refund)?`), []string{"keywords[0]"}},
		{"regex only anchors", regex(`^$`), []string{"keywords[0]"}},
		{"regex two patterns", func(r *kb.Rule) { r.Kind, r.Keywords = kb.RuleRegex, []string{"a", "b"} }, []string{"keywords"}},
	} {
		r := validRule()
		tc.mutate(&r)
		err := r.Validate()
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errs.Is(err, errs.Invalid) {
			t.Errorf("%s: error %v, want invalid", tc.name, err)
			continue
		}
		if d := cmp.Diff(tc.want, fields(err)); d != "" {
			t.Errorf("%s: problem fields (-want +got):\n%s (%v)", tc.name, d, err)
		}
	}
}

func TestCheckRegexMessages(t *testing.T) {
	for pattern, want := range map[string]string{
		`((a|b|c|d){2,30}){30}`: "regular expression too complex (3602 instructions",
		`\d{1,1000}`:            "regular expression too complex (2001 instructions, at most 2000)",
		`(a{100}){100}`:         "invalid regular expression: error parsing regexp: invalid repeat count",
		`(unclosed`:             "invalid regular expression: error parsing regexp: missing closing )",
		`x?`:                    "regular expression can match an empty string",
	} {
		if got := errs.MessageOf(kb.CheckRegex(pattern)); !strings.HasPrefix(got, want) {
			t.Errorf("CheckRegex(%q) = %q, want prefix %q", pattern, got, want)
		}
	}
}

func TestRuleNormalize(t *testing.T) {
	r := kb.Rule{Name: " n ", Kind: kb.RuleExact, Keywords: []string{" hi ", "HI", ""}}.Normalize()
	if d := cmp.Diff([]string{"hi"}, r.Keywords); d != "" || r.Name != "n" {
		t.Errorf("exact rule normalised to %+v", r)
	}
	// A regex pattern keeps its spaces: they are part of it.
	r = kb.Rule{Kind: kb.RuleRegex, Keywords: []string{" a b ", "  "}}.Normalize()
	if d := cmp.Diff([]string{" a b "}, r.Keywords); d != "" {
		t.Errorf("regex keywords (-want +got):\n%s", d)
	}
}

func TestSettingsValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(s *kb.Settings)
		want   []string
	}{
		{"defaults", func(s *kb.Settings) {}, nil},
		{"equal thresholds", func(s *kb.Settings) { s.AnswerThreshold, s.SuggestThreshold = 0.4, 0.4 }, nil},
		{"bounds", func(s *kb.Settings) { s.AnswerThreshold, s.SuggestThreshold = 1, 0 }, nil},
		{"suggest above answer", func(s *kb.Settings) { s.SuggestThreshold = 0.9 }, []string{"suggest_threshold"}},
		{"answer above 1", func(s *kb.Settings) { s.AnswerThreshold = 1.01 }, []string{"answer_threshold"}},
		{"negative suggest", func(s *kb.Settings) { s.SuggestThreshold = -0.1 }, []string{"suggest_threshold"}},
		{"NaN", func(s *kb.Settings) { s.AnswerThreshold = math.NaN() }, []string{"answer_threshold"}},
		{"max misses", func(s *kb.Settings) { s.MaxMisses = -1 }, []string{"max_misses"}},
		{"max misses high", func(s *kb.Settings) { s.MaxMisses = kb.MaxMaxMisses + 1 }, []string{"max_misses"}},
		{"no fallback", func(s *kb.Settings) { s.FallbackText = "" }, []string{"fallback_text"}},
		{"no greeting is fine", func(s *kb.Settings) { s.Greeting = "" }, nil},
		{"long greeting", func(s *kb.Settings) { s.Greeting = strings.Repeat("g", kb.MaxAnswerLen+1) }, []string{"greeting"}},
		{"long handoff word", func(s *kb.Settings) { s.HandoffWords = []string{strings.Repeat("w", kb.MaxKeywordLen+1)} }, []string{"handoff_words[0]"}},
	} {
		s := kb.DefaultSettings("t")
		tc.mutate(&s)
		err := s.Validate()
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if d := cmp.Diff(tc.want, fields(err)); d != "" || !errs.Is(err, errs.Invalid) {
			t.Errorf("%s: problem fields (-want +got):\n%s (%v)", tc.name, d, err)
		}
	}
}

func TestValidID(t *testing.T) {
	for id, ok := range map[string]bool{
		"0196a5c4-7f1e-7b7a-9c1e-1a2b3c4d5e6f": true, "faq:refund_1.v2": true, "a": true,
		"": false, "a b": false, "é": false, strings.Repeat("a", kb.MaxIDLen+1): false, strings.Repeat("a", kb.MaxIDLen): true,
	} {
		if kb.ValidID(id) != ok {
			t.Errorf("ValidID(%q) = %v", id, !ok)
		}
	}
}
