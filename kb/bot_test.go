package kb

import "testing"

func TestWantsPerson(t *testing.T) {
	b := NewBot([]string{"人工", "转人工", "agent", "human"})
	for _, tc := range []struct {
		text string
		want bool
	}{
		{"agent", true},
		{"I want a HUMAN please", true},
		{"ＡＧＥＮＴ", true}, // full-width
		{"我要转人工", true},
		{"人工服务", true},
		{"agents fees", false},
		{"reagent", false},
		{"hello", false},
		{"", false},
	} {
		if got := b.WantsPerson(tc.text); got != tc.want {
			t.Errorf("WantsPerson(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}
