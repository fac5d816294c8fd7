package match_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-acd/switchboard/kb/match"
)

// faq is a small bilingual KB: enough entries for the classifier and the
// calibration split to do real work.
var faq = []match.Doc{
	{ID: "password", Question: "How do I reset my password?", Variants: []string{"forgot my password", "change password", "I can't log in, reset my password", "password reset link"}},
	{ID: "refund", Question: "How do I get a refund?", Variants: []string{"I want my money back", "refund my order", "return an item for a refund", "when will I get my refund"}},
	{ID: "shipping", Question: "How long does shipping take?", Variants: []string{"when will my parcel arrive", "delivery time", "shipping takes how many days", "track my delivery"}},
	{ID: "card", Question: "Which cards do you accept?", Variants: []string{"can I pay with visa", "payment methods", "do you take mastercard", "pay by credit card"}},
	{ID: "hours", Question: "What are your opening hours?", Variants: []string{"when are you open", "opening times", "are you open on sunday", "business hours"}},
	{ID: "address", Question: "Where is your store?", Variants: []string{"store address", "how do I find your shop", "location of the store", "directions to the shop"}},
	{ID: "cancel", Question: "How do I cancel my order?", Variants: []string{"cancel order", "I don't want my order anymore", "stop my order", "cancel a purchase"}},
	{ID: "account", Question: "How do I delete my account?", Variants: []string{"close my account", "remove my account", "delete profile", "deactivate account"}},
	{ID: "zh-refund", Question: "怎么申请退款", Variants: []string{"我要退款", "退款多久到账", "如何退货退款", "申请退钱"}},
	{ID: "zh-password", Question: "忘记密码怎么办", Variants: []string{"密码忘了", "怎么修改密码", "重置登录密码", "找回密码"}},
	{ID: "zh-shipping", Question: "快递多久能到", Variants: []string{"什么时候发货", "物流查询", "我的包裹到哪了", "配送需要几天"}},
	{ID: "zh-invoice", Question: "怎么开发票", Variants: []string{"我要开发票", "发票怎么申请", "电子发票在哪里下载", "补开发票"}},
}

func build(t *testing.T, docs []match.Doc, opts match.Options) *match.Matcher {
	t.Helper()
	m, err := match.Build(docs, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestMatchFindsEntry(t *testing.T) {
	m := build(t, faq, match.Options{})
	for _, tc := range []struct{ text, want string }{
		{"pasword reset", "password"},              // typo
		{"I forgot my passwrd", "password"},        // typo
		{"RESET MY PASSWORD!!!", "password"},       // case, punctuation
		{"ｒｅｓｅｔ ｐａｓｓｗｏｒｄ", "password"},             // full width
		{"I would like a refund please", "refund"}, // unseen wording
		{"how many days for delivery", "shipping"}, // unseen wording
		{"do you accept visa cards", "card"},
		{"are you open sunday", "hours"},
		{"我想退款", "zh-refund"},
		{"密碼忘記了", "zh-password"}, // traditional characters
		{"包裹什么时候到", "zh-shipping"},
		{"发票", "zh-invoice"},
	} {
		res := m.Match(tc.text, 3)
		if len(res.Candidates) == 0 || res.Candidates[0].ID != tc.want {
			t.Errorf("Match(%q) = %+v, want %s first", tc.text, res.Candidates, tc.want)
		}
	}
}

func TestMatchResultShape(t *testing.T) {
	m := build(t, faq, match.Options{})
	res := m.Match("reset my password", 3)
	if len(res.Candidates) == 0 || len(res.Candidates) > 3 {
		t.Fatalf("got %d candidates, want 1..3", len(res.Candidates))
	}
	if res.Confidence != res.Candidates[0].Score {
		t.Errorf("Confidence %v != top score %v", res.Confidence, res.Candidates[0].Score)
	}
	for i, c := range res.Candidates {
		if c.Score < 0 || c.Score > 1 {
			t.Errorf("candidate %d score %v outside 0..1", i, c.Score)
		}
		if i > 0 && c.Score > res.Candidates[i-1].Score {
			t.Errorf("candidate %d scores above the one before it", i)
		}
	}
	if got := m.Match("reset my password", 1); len(got.Candidates) != 1 {
		t.Errorf("k=1 gave %d candidates", len(got.Candidates))
	}
	if got := m.Match("reset my password", 0); len(got.Candidates) != 0 {
		t.Errorf("k=0 gave %d candidates", len(got.Candidates))
	}
}

func TestMatchNothingToMatch(t *testing.T) {
	m := build(t, faq, match.Options{})
	for _, text := range []string{"", "   ", "😀🎉👍", "\x00\xff\xfe\x01", "!!!???", strings.Repeat("\xff", 5000)} {
		res := m.Match(text, 3)
		if len(res.Candidates) != 0 || res.Confidence != 0 {
			t.Errorf("Match(%q) = %+v, want nothing", text, res)
		}
	}
	// A huge message is capped, not refused.
	huge := "reset my password " + strings.Repeat("x", 100000)
	if res := m.Match(huge, 3); len(res.Candidates) == 0 || res.Candidates[0].ID != "password" {
		t.Errorf("huge message: %+v", res.Candidates)
	}
}

// The confidence must separate what the KB answers from what it does not:
// the right entry's confidence is higher than that of messages about
// nothing in the KB.
func TestConfidenceSeparatesOutOfScope(t *testing.T) {
	m := build(t, faq, match.Options{})
	in := []string{"forgot my password", "refund my order", "track my delivery", "we accept visa?", "忘记密码怎么办"}
	out := []string{"what is the weather in paris", "tell me a joke", "who won the football game", "今天天气怎么样", "recommend a good movie"}
	minIn, maxOut := 1.0, 0.0
	for _, q := range in {
		minIn = min(minIn, m.Match(q, 1).Confidence)
	}
	for _, q := range out {
		maxOut = max(maxOut, m.Match(q, 1).Confidence)
	}
	if minIn <= maxOut {
		t.Errorf("lowest in-scope confidence %.3f <= highest out-of-scope %.3f", minIn, maxOut)
	}
}

func TestBuildRejects(t *testing.T) {
	for name, docs := range map[string][]match.Doc{
		"duplicate id": {{ID: "a", Question: "x"}, {ID: "a", Question: "y"}},
		"empty id":     {{ID: "", Question: "x"}},
		"language":     {{ID: "a", Question: "x", Language: "fr"}},
	} {
		if _, err := match.Build(docs, match.Options{}); err == nil {
			t.Errorf("%s: Build succeeded", name)
		}
	}
}

func TestBuildSmallKBs(t *testing.T) {
	// No entries, one entry, entries without text: all build and match
	// without panicking.
	for _, docs := range [][]match.Doc{
		nil,
		{{ID: "only", Question: "reset password"}},
		{{ID: "a", Question: "😀"}, {ID: "b", Question: "refund"}},
	} {
		m := build(t, docs, match.Options{})
		res := m.Match("reset password refund", 3)
		for _, c := range res.Candidates {
			if c.ID == "a" {
				t.Errorf("entry without text matched")
			}
		}
	}
	m := build(t, []match.Doc{{ID: "only", Question: "reset password"}}, match.Options{})
	if res := m.Match("reset password", 3); len(res.Candidates) != 1 || res.Candidates[0].ID != "only" {
		t.Errorf("single entry: %+v", res.Candidates)
	}
}

func TestBuildOnDisk(t *testing.T) {
	dir := t.TempDir() + "/index"
	m := build(t, faq, match.Options{Dir: dir})
	if res := m.Match("pasword reset", 3); len(res.Candidates) == 0 || res.Candidates[0].ID != "password" {
		t.Errorf("on-disk index: %+v", res.Candidates)
	}
}

func TestBuildDeterministic(t *testing.T) {
	a := build(t, faq, match.Options{})
	b := build(t, faq, match.Options{})
	for _, q := range []string{"pasword reset", "我想退款", "weather today"} {
		ra, rb := a.Match(q, 3), b.Match(q, 3)
		if len(ra.Candidates) != len(rb.Candidates) || ra.Confidence != rb.Confidence {
			t.Errorf("%q: %+v vs %+v", q, ra, rb)
		}
	}
}

func TestMatchConcurrent(t *testing.T) {
	m := build(t, faq, match.Options{})
	want := m.Match("refund my order", 3)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				got := m.Match("refund my order", 3)
				if got.Confidence != want.Confidence || got.Candidates[0].ID != want.Candidates[0].ID {
					t.Errorf("concurrent Match differs: %+v vs %+v", got, want)
					return
				}
				m.Match("忘记密码", 3)
			}
		}()
	}
	wg.Wait()
}

func FuzzMatch(f *testing.F) {
	m, err := match.Build(faq, match.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer m.Close()
	for _, s := range []string{"pasword reset", "我想退款", "", "😀", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		res := m.Match(s, 3)
		if len(res.Candidates) > 3 || res.Confidence < 0 || res.Confidence > 1 {
			t.Fatalf("bad result %+v", res)
		}
	})
}
