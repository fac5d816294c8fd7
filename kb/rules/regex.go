package rules

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/switchboard-acd/switchboard/kb"
	"github.com/switchboard-acd/switchboard/kb/textnorm"
)

// ValidateRegex reports whether pattern is acceptable as the pattern of a
// regex rule, with an error an editor can act on: non-empty and passing
// kb.CheckRegex (the checks the kb service runs when a rule is saved:
// length, RE2 syntax, program size, no empty match), and compiling after
// the rewrite for folded text. Compile runs the same checks.
func ValidateRegex(pattern string) error {
	_, err := compileRegex(pattern)
	return err
}

// compileRegex validates pattern (see ValidateRegex) and compiles it for
// the folded text it will see (see foldPattern).
func compileRegex(pattern string) (*regexp.Regexp, error) {
	if pattern == "" {
		return nil, errors.New("empty regex pattern")
	}
	// The limits are the kb service's, checked on the pattern as written,
	// so a pattern it accepted is never refused here for what folding added.
	if err := kb.CheckRegex(pattern); err != nil {
		return nil, fmt.Errorf("regex pattern %q: %w", pattern, err)
	}
	if folded, err := foldPattern(pattern); err == nil {
		if out, err := regexp.Compile(folded); err == nil {
			return out, nil
		}
	}
	// Not reached for any pattern the fuzz test found, but a rule the kb
	// service accepted must not be refused over the rewrite: match it
	// case-insensitively as written.
	out, err := regexp.Compile("(?i)" + pattern)
	if err != nil {
		return nil, fmt.Errorf("invalid regex pattern %q: %w", pattern, err)
	}
	return out, nil
}

// foldPattern rewrites pattern to match the folded text it will see:
// case-insensitive, and its literal characters folded the way textnorm.Fold
// folds messages (full-width to half-width, traditional to simplified), so
// that an editor's "退錢|ＶＩＰ" matches "退钱" and "vip". Character ranges
// are left alone: folding an endpoint of [一-龥] would change the range.
// regexp has no constructor from a syntax tree, so the
// rewritten tree is printed and parsed again (FuzzFoldPattern checks the
// round trip).
func foldPattern(pattern string) (string, error) {
	re, err := syntax.Parse(pattern, syntax.Perl|syntax.FoldCase)
	if err != nil {
		return "", err
	}
	foldLiterals(re)
	return re.String(), nil
}

// foldLiterals rewrites the literal characters of re as textnorm.Fold
// writes them. The parser turns one-character alternatives into classes
// ("款|錢" → [款錢]), so single-character class members are folded too,
// by adding their folded form. A negated class is not folded: the parser
// stores it as its complement, so [^錢] still matches 钱.
func foldLiterals(re *syntax.Regexp) {
	switch re.Op {
	case syntax.OpLiteral:
		var out []rune
		for _, r := range norm.NFKC.String(string(re.Rune)) {
			out = append(out, textnorm.Simplify(unicode.ToLower(r)))
		}
		re.Rune = out
	case syntax.OpCharClass:
		for i, n := 0, len(re.Rune); i+1 < n; i += 2 {
			if lo := re.Rune[i]; lo == re.Rune[i+1] {
				if f, ok := foldRune(lo); ok && f != lo {
					re.Rune = append(re.Rune, f, f)
				}
			}
		}
	}
	for _, s := range re.Sub {
		foldLiterals(s)
	}
}

// foldRune folds one character as Fold would, when it stays one character.
func foldRune(r rune) (rune, bool) {
	f := []rune(norm.NFKC.String(string(r)))
	if len(f) != 1 {
		return 0, false
	}
	return textnorm.Simplify(unicode.ToLower(f[0])), true
}
