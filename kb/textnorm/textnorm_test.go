package textnorm

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFold(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"  Hello,   World!  ", "hello world"},
		{"ＡＢＣ　１２３？", "abc 123"}, // full-width letters, digits, ideographic space
		{"這個問題為什麼還沒有解決？", "这个问题为什么还没有解决"}, // traditional → simplified, punctuation dropped
		{"我要轉人工！！", "我要转人工"},
		{"How do I reset my PIN?", "how do i reset my pin"},
		{"🙂🙂🙂", ""},                              // emoji only
		{"refund\t\n\r please", "refund please"}, // control characters are spaces
		{"café CAFÉ", "café café"},               // letters of other scripts kept, composed
		{"e\u0301", "é"},                         // decomposed → composed by NFKC
		{"\xff\xfeabc\x00def", "abc def"},        // binary input: invalid bytes and NUL dropped
		{"１.", "1"},                              // a menu choice typed full-width
		{"ﾃｽﾄ", "テスト"},                           // half-width katakana → full-width
	}
	for _, c := range cases {
		if got := Fold(c.in); got != c.want {
			t.Errorf("Fold(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSimplify(t *testing.T) {
	for trad, simp := range map[rune]rune{'這': '这', '問': '问', '題': '题', '轉': '转', '們': '们', '中': '中', 'a': 'a'} {
		if got := Simplify(trad); got != simp {
			t.Errorf("Simplify(%q) = %q, want %q", trad, got, simp)
		}
	}
	for i := 1; i < len(t2sPairs); i++ {
		if t2sPairs[i-1][0] >= t2sPairs[i][0] {
			t.Fatalf("t2s table not sorted at %d", i)
		}
	}
	if len(t2sPairs) < 2000 {
		t.Fatalf("t2s table has only %d pairs", len(t2sPairs))
	}
}

func TestHasHan(t *testing.T) {
	if !HasHan("reset 密码") || HasHan("reset password") || HasHan("テスト") {
		t.Fatal("HasHan misjudges")
	}
}

func TestCap(t *testing.T) {
	s := strings.Repeat("密", 10) // 3 bytes each
	for n := 0; n <= len(s)+1; n++ {
		c := Cap(s, n)
		if len(c) > n || !utf8.ValidString(c) || !strings.HasPrefix(s, c) {
			t.Fatalf("Cap(%d) = %q", n, c)
		}
	}
}

// TestFoldASCIIFastPath checks the ASCII shortcut against the general path
// on every printable and control character.
func TestFoldASCIIFastPath(t *testing.T) {
	var all strings.Builder
	for c := 0; c < 0x80; c++ {
		all.WriteByte(byte(c))
		all.WriteString("x")
		all.WriteByte(byte(c))
	}
	for _, s := range []string{all.String(), "Hello, World!", "  a  b  ", "ABC_def-123", ""} {
		if got, want := foldASCII(s), foldGeneral(s); got != want {
			t.Errorf("foldASCII(%q) = %q, general path %q", s, got, want)
		}
	}
}

// foldGeneral is Fold without the ASCII shortcut.
func foldGeneral(s string) string { return Fold(s + "\u00a0") }

func BenchmarkFold(b *testing.B) {
	for _, c := range []struct{ name, s string }{
		{"en", "Hi, I forgot my PASSWORD and can't log in to the app, what should I do?"},
		{"zh", "你好，我忘記了密碼，無法登錄應用程序，我該怎麼辦？"},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				Fold(c.s)
			}
		})
	}
}

func FuzzFold(f *testing.F) {
	for _, s := range []string{"Hello, World", "這個問題", "ＡＢＣ", "\xff\x00", "🙂 a", "e\u0301"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Fold(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Fold(%q) is not valid UTF-8", s)
		}
		if again := Fold(got); again != got {
			t.Fatalf("Fold not idempotent: %q → %q → %q", s, got, again)
		}
		if strings.HasPrefix(got, " ") || strings.HasSuffix(got, " ") || strings.Contains(got, "  ") {
			t.Fatalf("Fold(%q) = %q has stray spaces", s, got)
		}
	})
}
