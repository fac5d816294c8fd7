// Package textnorm folds customer text into the one form every part of the
// knowledge base compares: keyword rules, the FAQ matcher, handoff words and
// the unmatched bin. Customers type the same question in full-width or
// half-width characters, traditional or simplified Chinese, upper or lower
// case, with or without punctuation; after Fold those differences are gone,
// so no matcher needs to know about them.
package textnorm

//go:generate go run gen_t2s.go

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Fold returns s normalised for matching: invalid UTF-8 dropped, Unicode
// compatibility form (full-width letters, digits and punctuation become
// half-width), lower case, traditional Chinese characters replaced by their
// simplified form, punctuation, symbols (emoji included) and control
// characters replaced by spaces, runs of white space collapsed to one space,
// and the ends trimmed. Letters of every script, digits and marks are kept.
//
// Fold is idempotent: Fold(Fold(s)) == Fold(s).
func Fold(s string) string {
	if isASCII(s) {
		return foldASCII(s)
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, " ")
	}
	s = norm.NFKC.String(s)
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r):
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(Simplify(unicode.ToLower(r)))
		default:
			space = true
		}
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// foldASCII is Fold for ASCII text (most English messages), where NFKC and
// the Chinese table change nothing: about ten times faster.
func foldASCII(s string) string {
	b := make([]byte, 0, len(s))
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		default:
			space = true
			continue
		}
		if space && len(b) > 0 {
			b = append(b, ' ')
		}
		space = false
		b = append(b, c)
	}
	return string(b)
}

// Simplify returns the simplified form of a traditional Chinese character,
// or r itself. The table is ICU's Hant-Hans transliteration, character by
// character.
func Simplify(r rune) rune {
	if r < 0x3400 {
		return r
	}
	i := sort.Search(len(t2sPairs), func(i int) bool { return t2sPairs[i][0] >= r })
	if i < len(t2sPairs) && t2sPairs[i][0] == r {
		return t2sPairs[i][1]
	}
	return r
}

// IsHan reports whether r is a Chinese (Han) character.
func IsHan(r rune) bool { return unicode.Is(unicode.Han, r) }

// HasHan reports whether s contains a Han character, which is how the
// knowledge base tells Chinese text from English when no language is given.
func HasHan(s string) bool {
	for _, r := range s {
		if r >= 0x2E80 && IsHan(r) {
			return true
		}
	}
	return false
}

// Cap returns s cut to at most n bytes at a character boundary, so a huge
// message costs the matcher no more than a long one.
func Cap(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
