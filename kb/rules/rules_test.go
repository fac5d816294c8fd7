package rules

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/kb"
	"github.com/switchboard-acd/switchboard/kb/textnorm"
)

func mustCompile(t testing.TB, rs ...Rule) *Set {
	t.Helper()
	s, err := Compile(rs)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s
}

// want builds the expected hit of a keyword rule: the keyword at start in
// the folded text.
func want(id string, kind kb.RuleKind, kw, folded string, start int) *Hit {
	return &Hit{RuleID: id, Kind: kind, Keyword: kw, Text: folded, Start: start, End: start + len(kw)}
}

func TestMatch(t *testing.T) {
	type tc struct {
		text string
		want *Hit // nil: no match
	}
	tests := []struct {
		name  string
		rules []Rule
		cases []tc
	}{
		{
			name: "longest keyword wins over priority",
			rules: []Rule{
				{ID: "reset", Kind: kb.RuleContains, Keywords: []string{"reset"}, Priority: 100},
				{ID: "reset-pw", Kind: kb.RuleContains, Keywords: []string{"reset password"}, Priority: 0},
				{ID: "pw", Kind: kb.RuleContains, Keywords: []string{"password"}, Priority: 50},
			},
			cases: []tc{
				{"How do I reset password?", want("reset-pw", kb.RuleContains, "reset password", "how do i reset password", 9)},
				{"reset my password", want("pw", kb.RuleContains, "password", "reset my password", 9)},
				{"reset", want("reset", kb.RuleContains, "reset", "reset", 0)},
			},
		},
		{
			name: "a longer keyword starting inside a shorter one is found",
			rules: []Rule{
				{ID: "ab", Kind: kb.RuleContains, Keywords: []string{"a b"}},
				{ID: "bcde", Kind: kb.RuleContains, Keywords: []string{"b c d e"}},
			},
			cases: []tc{{"a b c d e", want("bcde", kb.RuleContains, "b c d e", "a b c d e", 2)}},
		},
		{
			name: "equal length: higher priority, then input order",
			rules: []Rule{
				{ID: "refund", Kind: kb.RuleContains, Keywords: []string{"refund"}, Priority: 1},
				{ID: "return", Kind: kb.RuleContains, Keywords: []string{"return"}, Priority: 5},
				{ID: "cancel-1", Kind: kb.RuleContains, Keywords: []string{"cancel"}, Priority: 5},
				{ID: "cancel-2", Kind: kb.RuleContains, Keywords: []string{"cancel"}, Priority: 5},
				{ID: "delete", Kind: kb.RuleContains, Keywords: []string{"delete"}, Priority: 5},
			},
			cases: []tc{
				{"refund or return", want("return", kb.RuleContains, "return", "refund or return", 10)},
				{"cancel", want("cancel-1", kb.RuleContains, "cancel", "cancel", 0)},
				{"delete or cancel", want("cancel-1", kb.RuleContains, "cancel", "delete or cancel", 10)},
				{"cancel or delete", want("cancel-1", kb.RuleContains, "cancel", "cancel or delete", 0)},
			},
		},
		{
			name:  "same rule twice: leftmost occurrence",
			rules: []Rule{{ID: "r", Kind: kb.RuleContains, Keywords: []string{"abc", "xyz"}}},
			cases: []tc{{"xyz abc", want("r", kb.RuleContains, "xyz", "xyz abc", 0)}},
		},
		{
			name: "exact matches the whole message only",
			rules: []Rule{
				{ID: "hi", Kind: kb.RuleExact, Keywords: []string{"Hi", "Hello!"}},
				{ID: "thanks", Kind: kb.RuleContains, Keywords: []string{"thanks"}},
			},
			cases: []tc{
				{"hi", want("hi", kb.RuleExact, "hi", "hi", 0)},
				{"  HELLO!!! ", want("hi", kb.RuleExact, "hello", "hello", 0)},
				{"hi there", nil},
				{"oh hi", nil},
				{"hi thanks", want("thanks", kb.RuleContains, "thanks", "hi thanks", 3)},
			},
		},
		{
			name: "menu matches a message that is just the number",
			rules: []Rule{
				{ID: "m1", Kind: kb.RuleMenu, Keywords: []string{"1"}},
				{ID: "m10", Kind: kb.RuleMenu, Keywords: []string{"10"}},
				{ID: "m0", Kind: kb.RuleMenu, Keywords: []string{"00"}},
				{ID: "m2", Kind: kb.RuleMenu, Keywords: []string{"０２"}},
			},
			cases: []tc{
				{"1", want("m1", kb.RuleMenu, "1", "1", 0)},
				{"１", want("m1", kb.RuleMenu, "1", "1", 0)},
				{"1.", want("m1", kb.RuleMenu, "1", "1", 0)},
				{" 1 ", want("m1", kb.RuleMenu, "1", "1", 0)},
				{"①", want("m1", kb.RuleMenu, "1", "1", 0)},
				{"01", want("m1", kb.RuleMenu, "1", "01", 1)},
				{"10", want("m10", kb.RuleMenu, "10", "10", 0)},
				{"2", want("m2", kb.RuleMenu, "2", "2", 0)},
				{"0", want("m0", kb.RuleMenu, "0", "0", 0)},
				{"000", want("m0", kb.RuleMenu, "0", "000", 2)},
				{"11", nil},
				{"21", nil},
				{"1 2", nil},
				{"第1", nil},
				{"option 1", nil},
				{"1a", nil},
			},
		},
		{
			name: "exact, contains and menu on the same keyword",
			rules: []Rule{
				{ID: "c", Kind: kb.RuleContains, Keywords: []string{"1"}, Priority: 0},
				{ID: "m", Kind: kb.RuleMenu, Keywords: []string{"1"}, Priority: 1},
				{ID: "e", Kind: kb.RuleExact, Keywords: []string{"1"}, Priority: 2},
			},
			cases: []tc{
				{"1", want("e", kb.RuleExact, "1", "1", 0)},
				{"01", want("m", kb.RuleMenu, "1", "01", 1)},
				{"room 1", want("c", kb.RuleContains, "1", "room 1", 5)},
			},
		},
		{
			name: "ASCII keywords at word boundaries, CJK anywhere",
			rules: []Rule{
				{ID: "agent", Kind: kb.RuleContains, Keywords: []string{"agent"}},
				{ID: "human", Kind: kb.RuleContains, Keywords: []string{"人工"}},
				{ID: "wifi", Kind: kb.RuleContains, Keywords: []string{"wifi密码"}},
			},
			cases: []tc{
				{"agent", want("agent", kb.RuleContains, "agent", "agent", 0)},
				{"I want an AGENT, now!", want("agent", kb.RuleContains, "agent", "i want an agent now", 10)},
				{"agent_please", want("agent", kb.RuleContains, "agent", "agent please", 0)},
				{"我要agent", want("agent", kb.RuleContains, "agent", "我要agent", 6)},
				{"agent服务", want("agent", kb.RuleContains, "agent", "agent服务", 0)},
				{"agents", nil},
				{"reagent", nil},
				{"agent007", nil},
				{"agenté", nil},
				{"我要转人工服务", want("human", kb.RuleContains, "人工", "我要转人工服务", 9)},
				{"人工", want("human", kb.RuleContains, "人工", "人工", 0)},
				{"abc人工def", want("human", kb.RuleContains, "人工", "abc人工def", 3)},
				{"wifi密码是多少", want("wifi", kb.RuleContains, "wifi密码", "wifi密码是多少", 0)},
				{"我的wifi密码", want("wifi", kb.RuleContains, "wifi密码", "我的wifi密码", 6)},
				{"mywifi密码", nil},
			},
		},
		{
			name: "full-width, traditional and upper-case input",
			rules: []Rule{
				{ID: "human", Kind: kb.RuleExact, Keywords: []string{"转人工"}},
				{ID: "trad", Kind: kb.RuleContains, Keywords: []string{"退款問題"}},
				{ID: "vip", Kind: kb.RuleContains, Keywords: []string{"VIP"}},
			},
			cases: []tc{
				{"轉人工！", want("human", kb.RuleExact, "转人工", "转人工", 0)},
				{"退款问题怎么办", want("trad", kb.RuleContains, "退款问题", "退款问题怎么办", 0)},
				{"我的退款問題", want("trad", kb.RuleContains, "退款问题", "我的退款问题", 6)},
				{"ＶＩＰ會員", want("vip", kb.RuleContains, "vip", "vip会员", 0)},
				{"Vip", want("vip", kb.RuleContains, "vip", "vip", 0)},
			},
		},
		{
			name: "regex only after the automaton found nothing, highest priority first",
			rules: []Rule{
				{ID: "order-re", Kind: kb.RuleRegex, Keywords: []string{`order\s*\d+`}, Priority: 100},
				{ID: "order", Kind: kb.RuleContains, Keywords: []string{"order"}},
				{ID: "digits-low", Kind: kb.RuleRegex, Keywords: []string{`\d{6}`}, Priority: 1},
				{ID: "digits-high", Kind: kb.RuleRegex, Keywords: []string{`\d{6,}`}, Priority: 2},
				{ID: "refund-re", Kind: kb.RuleRegex, Keywords: []string{`退錢|REFUND`}},
			},
			cases: []tc{
				{"order 123", want("order", kb.RuleContains, "order", "order 123", 0)},
				{"订单123456", &Hit{RuleID: "digits-high", Kind: kb.RuleRegex, Keyword: `\d{6,}`, Text: "订单123456", Start: 6, End: 12}},
				// "order" is not a whole word here, so the automaton has nothing.
				{"Order12345678", &Hit{RuleID: "order-re", Kind: kb.RuleRegex, Keyword: `order\s*\d+`, Text: "order12345678", Start: 0, End: 13}},
				{"我要退钱", &Hit{RuleID: "refund-re", Kind: kb.RuleRegex, Keyword: `退錢|REFUND`, Text: "我要退钱", Start: 6, End: 12}},
				{"Refund!", &Hit{RuleID: "refund-re", Kind: kb.RuleRegex, Keyword: `退錢|REFUND`, Text: "refund", Start: 0, End: 6}},
				{"12345", nil},
			},
		},
		{
			name: "input that matches nothing",
			rules: []Rule{
				{ID: "agent", Kind: kb.RuleContains, Keywords: []string{"agent"}},
				{ID: "any", Kind: kb.RuleRegex, Keywords: []string{`[a-z]+`}},
			},
			cases: []tc{
				{"", nil},
				{"   ", nil},
				{"🙂🙂🙂", nil},
				{"?!…。", nil},
				{"\x00\xff\xfe\x01", nil},
				{strings.Repeat("\xff", 100000), nil},
				{strings.Repeat("密", 1000000), nil},
				// The keyword lies beyond kb.MaxMessageLen: capped away.
				{strings.Repeat("密 ", kb.MaxMessageLen) + "agent", nil},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustCompile(t, tt.rules...)
			for _, c := range tt.cases {
				got, ok := s.Match(c.text)
				var gotp *Hit
				if ok {
					gotp = &got
				}
				name := c.text
				if len(name) > 40 {
					name = name[:40] + "…"
				}
				if diff := cmp.Diff(c.want, gotp); diff != "" {
					t.Errorf("Match(%q) (-want +got):\n%s", name, diff)
				}
			}
		})
	}
}

func TestHandoffRule(t *testing.T) {
	words := kb.DefaultSettings("t").HandoffWords
	tenant := []Rule{
		{ID: "hours", Kind: kb.RuleContains, Keywords: []string{"人工服务时间"}},
		{ID: "own-agent", Kind: kb.RuleExact, Keywords: []string{"agent"}},
	}
	s := mustCompile(t, append(tenant, HandoffRule(append(words, "!!!", "🙂", "AGENT")))...)
	cases := []struct{ text, rule string }{
		{"我要转人工", HandoffRuleID},
		{"轉人工客服", HandoffRuleID},
		{"can I talk to a Human?", HandoffRuleID},
		{"agent", "own-agent"},      // equal keyword: the tenant's rule wins
		{"an agent", HandoffRuleID}, // not exact, so only the handoff word
		{"人工服务时间是几点", "hours"},      // longer tenant keyword wins
		{"agents", ""},
		{"personal info", ""},
	}
	for _, c := range cases {
		hit, ok := s.Match(c.text)
		if got := hit.RuleID; got != c.rule || ok != (c.rule != "") {
			t.Errorf("Match(%q) = %q, %v; want %q", c.text, got, ok, c.rule)
		}
	}
	if r := HandoffRule([]string{"a", "A", "!", "b"}); !cmp.Equal(r.Keywords, []string{"a", "b"}) {
		t.Errorf("HandoffRule keywords = %q, want [a b]", r.Keywords)
	}
	var many []string
	for i := range 2 * kb.MaxKeywords {
		many = append(many, fmt.Sprintf("word%d", i))
	}
	many = append(many, strings.Repeat("x", kb.MaxKeywordLen+1))
	if _, err := Compile([]Rule{HandoffRule(many)}); err != nil {
		t.Errorf("HandoffRule of stale settings does not compile: %v", err)
	}
}

func TestEmptySet(t *testing.T) {
	var nilSet *Set
	empty := mustCompile(t)
	for _, s := range []*Set{nilSet, {}, empty} {
		if hit, ok := s.Match("agent 1"); ok {
			t.Errorf("empty Set matched: %+v", hit)
		}
	}
}

func TestFromKB(t *testing.T) {
	got := FromKB([]kb.Rule{
		{ID: "a", Kind: kb.RuleExact, Keywords: []string{"x"}, Priority: 3, Enabled: true},
		{ID: "b", Kind: kb.RuleExact, Keywords: []string{"y"}, Enabled: false},
	})
	want := []Rule{{ID: "a", Kind: kb.RuleExact, Keywords: []string{"x"}, Priority: 3}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FromKB (-want +got):\n%s", diff)
	}
}

func TestCompileErrors(t *testing.T) {
	ok := Rule{ID: "ok", Kind: kb.RuleContains, Keywords: []string{"fine"}}
	tests := []struct {
		rule Rule
		want []string // substrings of the error
	}{
		{Rule{Kind: kb.RuleExact, Keywords: []string{"x"}}, []string{"rule #2", "empty id"}},
		{Rule{ID: "ok", Kind: kb.RuleExact, Keywords: []string{"x"}}, []string{`rule "ok"`, "duplicate id"}},
		{Rule{ID: "k", Kind: "fuzzy", Keywords: []string{"x"}}, []string{`rule "k"`, "unknown kind"}},
		{Rule{ID: "none", Kind: kb.RuleExact}, []string{`rule "none"`, "no keywords"}},
		{Rule{ID: "many", Kind: kb.RuleContains, Keywords: make([]string, kb.MaxKeywords+1)}, []string{`rule "many"`, "at most 50"}},
		{Rule{ID: "long", Kind: kb.RuleContains, Keywords: []string{strings.Repeat("a", kb.MaxKeywordLen+1)}}, []string{`rule "long"`, "at most 100"}},
		{Rule{ID: "emoji", Kind: kb.RuleContains, Keywords: []string{"ok", "🙂!"}}, []string{`rule "emoji"`, `keyword "🙂!"`, "nothing left"}},
		{Rule{ID: "menu", Kind: kb.RuleMenu, Keywords: []string{"one"}}, []string{`rule "menu"`, "must be a number"}},
		{Rule{ID: "re2", Kind: kb.RuleRegex, Keywords: []string{"a", "b"}}, []string{`rule "re2"`, "exactly one pattern"}},
		{Rule{ID: "bad-re", Kind: kb.RuleRegex, Keywords: []string{"(refund"}}, []string{`rule "bad-re"`, "invalid regular expression", "missing closing )"}},
		{Rule{ID: "backref", Kind: kb.RuleRegex, Keywords: []string{`(a)\1`}}, []string{`rule "backref"`, "invalid regular expression"}},
		{Rule{ID: "huge-re", Kind: kb.RuleRegex, Keywords: []string{strings.Repeat("a", kb.MaxRegexLen+1)}}, []string{`rule "huge-re"`, "longer than 300"}},
		{Rule{ID: "complex-re", Kind: kb.RuleRegex, Keywords: []string{`[a-z]{1,1000}[0-9]{1,1000}`}}, []string{`rule "complex-re"`, "too complex", "at most 2000"}},
		{Rule{ID: "empty-re", Kind: kb.RuleRegex, Keywords: []string{`(refund)?`}}, []string{`rule "empty-re"`, "empty string"}},
	}
	for _, tt := range tests {
		s, err := Compile([]Rule{ok, tt.rule})
		if err == nil {
			t.Errorf("Compile(%q) succeeded, want error with %q", tt.rule.ID, tt.want)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Compile(%q) error %q lacks %q", tt.rule.ID, err, w)
			}
		}
		// The valid rule still works.
		if hit, matched := s.Match("fine"); !matched || hit.RuleID != "ok" {
			t.Errorf("Compile(%q): Set does not match the valid rule: %+v, %v", tt.rule.ID, hit, matched)
		}
	}
}

func TestCompilePartial(t *testing.T) {
	s, err := Compile([]Rule{
		{ID: "bad-re", Kind: kb.RuleRegex, Keywords: []string{"(refund"}},
		{ID: "mixed", Kind: kb.RuleContains, Keywords: []string{"🙂", "refund", strings.Repeat("x", kb.MaxKeywordLen+1)}},
		{ID: "re", Kind: kb.RuleRegex, Keywords: []string{`\d{6}`}},
	})
	for _, w := range []string{`rule "bad-re"`, `rule "mixed": keyword "🙂"`, `rule "mixed": keyword "xxx`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Compile error %v lacks %q", err, w)
		}
	}
	for text, id := range map[string]string{"refund please": "mixed", "123456": "re", "🙂": "", "(refund": "mixed"} {
		if hit, _ := s.Match(text); hit.RuleID != id {
			t.Errorf("Match(%q) = %q, want %q", text, hit.RuleID, id)
		}
	}
}

func TestValidateRegex(t *testing.T) {
	tests := []struct {
		pattern string
		ok      bool
	}{
		{`order\s*\d+`, true},
		{`^退款$`, true},
		{`[一-龥]{2,10}`, true},
		{`\p{Han}+`, true},
		{strings.Repeat("a", kb.MaxRegexLen), true},
		{"", false},
		{strings.Repeat("a", kb.MaxRegexLen+1), false},
		{`a{1001}`, false},                    // RE2 repeat limit
		{`((a{100}){10}){10}`, false},         // RE2 limit on nested repeats
		{`[a-z]{1,1000}[0-9]{1,1000}`, false}, // 4,000 instructions
		{`[a-z]{1000}[a-z]{1000}x`, false},    // 2,003 instructions
		{`(?:\w{1,100}){10}`, true},           // big, but under the cap
		{`(?=x)`, false},                      // lookahead is not RE2
		{`a*`, false},
		{`\b`, false},
		{`^$`, false},
		{`x|`, false},
	}
	for _, tt := range tests {
		err := ValidateRegex(tt.pattern)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateRegex(%.40q) = %v, want ok=%v", tt.pattern, err, tt.ok)
		}
	}
}

func TestRegexFolding(t *testing.T) {
	tests := []struct {
		pattern string
		text    string
		want    string // the matched part of the folded text; "" for none
	}{
		{`退錢|ＶＩＰ`, "我要退錢", "退钱"},
		{`退錢|ＶＩＰ`, "ｖｉｐ會員", "vip"},
		{`款|錢`, "退錢", "钱"},       // a class built from alternatives
		{`[一-龥]{2}`, "中文", "中文"}, // a range is left as written
		{`REFUND\s+\d+`, "Refund 42", "refund 42"},
		{`(?-i:REFUND)`, "refund", "refund"}, // the text is lower case anyway
		{`[^錢]`, "钱", "钱"},                   // a negated class is not folded (documented limit)
	}
	for _, tt := range tests {
		s := mustCompile(t, Rule{ID: "re", Kind: kb.RuleRegex, Keywords: []string{tt.pattern}})
		hit, ok := s.Match(tt.text)
		got := ""
		if ok {
			got = hit.Text[hit.Start:hit.End]
		}
		if got != tt.want {
			t.Errorf("pattern %q on %q matched %q, want %q", tt.pattern, tt.text, got, tt.want)
		}
	}
}

// FuzzFoldPattern checks that an accepted pattern never matches empty, that
// the rewritten pattern parses again, and that for patterns folding leaves
// alone (ASCII, no flags) it matches exactly what the pattern matches
// case-insensitively.
func FuzzFoldPattern(f *testing.F) {
	for _, p := range []string{`order\s*\d+`, `退錢|ＶＩＰ`, `[^AC]x`, `(a|b)*c{2,5}`, `\Q.*\E`, `[[:alpha:]]+\b`, `(?i:x)(?-i:Y)`} {
		f.Add(p, "order 12 ac bx abc")
	}
	f.Fuzz(func(t *testing.T, pattern, text string) {
		if err := ValidateRegex(pattern); err != nil {
			return
		}
		folded, err := foldPattern(pattern)
		if err != nil {
			t.Fatalf("foldPattern(%q): %v", pattern, err)
		}
		re, err := regexp.Compile(folded)
		if err != nil {
			t.Fatalf("foldPattern(%q) = %q does not compile: %v", pattern, folded, err)
		}
		// An accepted pattern never matches an empty string.
		for _, loc := range re.FindAllStringIndex(textnorm.Fold(text), -1) {
			if loc[0] == loc[1] {
				t.Fatalf("accepted pattern %q has an empty match in %q at %d", pattern, textnorm.Fold(text), loc[0])
			}
		}
		if re.MatchString("") {
			t.Fatalf("accepted pattern %q matches an empty message", pattern)
		}
		for _, r := range pattern {
			if r >= utf8.RuneSelf {
				return
			}
		}
		if strings.Contains(pattern, "(?") {
			return
		}
		t2 := textnorm.Fold(text)
		want := regexp.MustCompile("(?i)"+pattern).FindAllStringIndex(t2, -1)
		if got := re.FindAllStringIndex(t2, -1); !cmp.Equal(got, want) {
			t.Fatalf("pattern %q folded to %q: on %q matches %v, want %v", pattern, folded, t2, got, want)
		}
	})
}

func TestConcurrentMatch(t *testing.T) {
	s := benchSet(t, 2000)
	msgs := benchMessages()
	want := make([]Hit, len(msgs))
	for i, m := range msgs {
		want[i], _ = s.Match(m)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				j := (g + i) % len(msgs)
				if got, _ := s.Match(msgs[j]); got != want[j] {
					t.Errorf("concurrent Match(%.30q) = %+v, want %+v", msgs[j], got, want[j])
					return
				}
			}
		})
	}
	wg.Wait()
}

// reference is the obvious quadratic matcher the automaton must agree with:
// every occurrence of every keyword of every rule, found with strings.Index.
func reference(rs []Rule, text string) (id string, start int, kw string, ok bool) {
	t := strings.TrimRight(textnorm.Cap(textnorm.Fold(textnorm.Cap(text, kb.MaxMessageLen)), kb.MaxMessageLen), " ")
	if t == "" {
		return "", 0, "", false
	}
	bestLen, bestPrio, bestIdx := -1, 0, 0
	for i, r := range rs {
		if r.Kind == kb.RuleRegex {
			continue
		}
		for _, k := range r.Keywords {
			f, err := foldKeyword(r.Kind, k)
			if err != nil {
				continue
			}
			for from := 0; ; {
				j := strings.Index(t[from:], f)
				if j < 0 {
					break
				}
				st, end := from+j, from+j+len(f)
				from = st + 1
				var accepted bool
				switch r.Kind {
				case kb.RuleExact:
					accepted = t == f
				case kb.RuleMenu:
					accepted = end == len(t) && strings.Trim(t[:st], "0") == ""
				case kb.RuleContains:
					first, _ := utf8.DecodeRuneInString(f)
					last, _ := utf8.DecodeLastRuneInString(f)
					accepted = (!isWordRune(first) || boundaryBefore(t, st)) && (!isWordRune(last) || boundaryAfter(t, end))
				}
				if !accepted {
					continue
				}
				n := utf8.RuneCountInString(f)
				better := n > bestLen ||
					n == bestLen && (r.Priority > bestPrio ||
						r.Priority == bestPrio && (i < bestIdx || i == bestIdx && st < start))
				if better {
					bestLen, bestPrio, bestIdx, id, start, kw = n, r.Priority, i, r.ID, st, f
				}
			}
		}
	}
	return id, start, kw, bestLen >= 0
}

func FuzzMatch(f *testing.F) {
	for _, s := range []struct{ text, kw1, kw2 string }{
		{"I want an agent", "agent", "an"},
		{"我要轉人工服务", "人工", "转人工服务"},
		{"01", "1", "0"},
		{"a b c d e", "a b", "b c d e"},
		{"reagent agents", "agent", "re"},
		{"\xff\x00agent\xfe", "agent", "\xff"},
		{"ＡＢＣ 123", "abc", "123"},
		{"🙂 1 🙂", "1", "🙂"},
	} {
		f.Add(s.text, s.kw1, s.kw2)
	}
	fixed := []Rule{
		{ID: "agent", Kind: kb.RuleContains, Keywords: []string{"agent", "人工"}, Priority: 1},
		{ID: "hi", Kind: kb.RuleExact, Keywords: []string{"hi", "你好"}},
		{ID: "menu", Kind: kb.RuleMenu, Keywords: []string{"1", "2", "10"}},
		{ID: "re", Kind: kb.RuleRegex, Keywords: []string{`\d{3,}`}},
	}
	f.Fuzz(func(t *testing.T, text, kw1, kw2 string) {
		rs := append([]Rule(nil), fixed...)
		for i, kw := range []string{kw1, kw2} {
			for _, kind := range []kb.RuleKind{kb.RuleContains, kb.RuleExact, kb.RuleMenu} {
				r := Rule{ID: fmt.Sprintf("%s-%d", kind, i), Kind: kind, Keywords: []string{kw}, Priority: i}
				if _, err := foldKeyword(kind, kw); err == nil {
					rs = append(rs, r)
				}
			}
		}
		s, err := Compile(rs)
		if err != nil {
			t.Fatalf("Compile: %v", err)
		}
		hit, ok := s.Match(text)
		if ok {
			if hit.Start < 0 || hit.Start > hit.End || hit.End > len(hit.Text) || len(hit.Text) > kb.MaxMessageLen {
				t.Fatalf("Match(%q) = %+v: bad bounds", text, hit)
			}
			if hit.Kind != kb.RuleRegex && hit.Text[hit.Start:hit.End] != hit.Keyword {
				t.Fatalf("Match(%q) = %+v: Text[Start:End] is not the keyword", text, hit)
			}
		}
		id, start, kw, refOK := reference(rs, text)
		if ok && hit.Kind == kb.RuleRegex {
			if refOK {
				t.Fatalf("Match(%q) = regex %+v, but keyword rule %q matches", text, hit, id)
			}
			return
		}
		if ok != refOK || ok && (hit.RuleID != id || hit.Start != start || hit.Keyword != kw) {
			t.Fatalf("Match(%q) = %+v, %v; reference: rule %q at %d keyword %q, %v", text, hit, ok, id, start, kw, refOK)
		}
	})
}

// benchSet compiles n keywords spread over rules of 20, half English
// phrases, half Chinese, the way a large tenant's rule table looks.
func benchSet(tb testing.TB, n int) *Set {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	syll := []string{"ka", "lo", "mi", "ren", "ta", "vo", "sun", "pe", "ri", "do", "xa", "lu", "ne", "fi"}
	var rs []Rule
	for i := 0; len(rs)*20 < n; i++ {
		r := Rule{ID: fmt.Sprintf("r%d", i), Kind: kb.RuleContains, Priority: rng.IntN(10)}
		if i%10 == 0 {
			r.Kind = kb.RuleExact
		}
		for range 20 {
			var b strings.Builder
			if rng.IntN(2) == 0 {
				for w := range 1 + rng.IntN(3) {
					if w > 0 {
						b.WriteByte(' ')
					}
					for range 2 + rng.IntN(3) {
						b.WriteString(syll[rng.IntN(len(syll))])
					}
				}
			} else {
				for range 2 + rng.IntN(5) {
					b.WriteRune(rune(0x4E00 + rng.IntN(3000)))
				}
			}
			r.Keywords = append(r.Keywords, b.String())
		}
		rs = append(rs, r)
	}
	rs = append(rs, Rule{ID: "order", Kind: kb.RuleRegex, Keywords: []string{`order\s*\d{6,}`}})
	rs = append(rs, HandoffRule(kb.DefaultSettings("t").HandoffWords))
	return mustCompile(tb, rs...)
}

func benchMessages() []string {
	en := "Hi, how do I reset the password of my account?" // 47 bytes
	zh := "请问我的订单什么时候发货，能帮我查一下吗"                           // 60 bytes
	var longEn, longZh strings.Builder
	for longEn.Len() < kb.MaxMessageLen {
		longEn.WriteString("kalomi rensun tavo pe ridoxa lune fi ")
	}
	for longZh.Len() < kb.MaxMessageLen {
		longZh.WriteString("请问我的订单什么时候发货一丁七万丈三上下")
	}
	return []string{en, zh, "1", "我要转人工", longEn.String(), longZh.String()}
}

func BenchmarkMatch(b *testing.B) {
	s := benchSet(b, 10000)
	msgs := benchMessages()
	for _, bm := range []struct {
		name string
		text string
	}{
		{"typical-en", msgs[0]},
		{"typical-zh", msgs[1]},
		{"menu", msgs[2]},
		{"handoff-zh", msgs[3]},
		{"max-len-en", msgs[4]},
		{"max-len-zh", msgs[5]},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.SetBytes(int64(len(bm.text)))
			b.ReportAllocs()
			for b.Loop() {
				s.Match(bm.text)
			}
		})
	}
}

// BenchmarkFold measures the share of Match spent in textnorm.Fold, which
// Match cannot skip: the rest is the automaton and the tie-breaks.
func BenchmarkFold(b *testing.B) {
	msgs := benchMessages()
	for _, bm := range []struct {
		name string
		text string
	}{{"max-len-en", msgs[4]}, {"max-len-zh", msgs[5]}} {
		b.Run(bm.name, func(b *testing.B) {
			b.SetBytes(int64(len(bm.text)))
			for b.Loop() {
				textnorm.Fold(bm.text)
			}
		})
	}
}

func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		benchSet(b, 10000)
	}
}
