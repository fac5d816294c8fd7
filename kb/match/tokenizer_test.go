package match

import (
	"strings"
	"testing"
)

func TestHanTokenizer(t *testing.T) {
	var got []string
	for _, tk := range (hanTokenizer{}).Tokenize([]byte("退款ab12 多久")) {
		got = append(got, string(tk.Term))
	}
	want := []string{"退", "退款", "款", "ab12", "多", "多久", "久"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("tokens %q, want %q", got, want)
	}
}

func TestAnalyzeTypoSharesNgrams(t *testing.T) {
	a, b := analyze("pasword"), analyze("password")
	shared := 0
	in := make(map[uint64]bool)
	for _, t := range b.terms {
		in[t.hash] = true
	}
	for _, t := range a.terms {
		if in[t.hash] {
			shared++
		}
	}
	if shared < len(a.terms)/3 {
		t.Errorf("pasword shares %d of %d features with password", shared, len(a.terms))
	}
}

func TestTopBy(t *testing.T) {
	score := []float32{0.1, 0.9, 0.5, 0.9, 0.3}
	got := topBy([]int32{0, 1, 2, 3, 4}, score, 3)
	want := []int32{1, 3, 2}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("topBy = %v, want %v", got, want)
	}
	if got := topBy([]int32{0, 1}, score, 5); len(got) != 2 || got[0] != 1 {
		t.Errorf("topBy short = %v", got)
	}
}
