// This file turns folded text into the sparse features the classifier and
// the nearest-neighbour index compare. English gets stemmed words, word
// bigrams and character n-grams inside word boundaries (so "pasword" still
// shares most of its n-grams with "password"); Chinese gets characters,
// character bigrams and trigrams, since it has no spaces and one character
// often carries the meaning.

package match

import (
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/blevesearch/snowballstem"
	"github.com/blevesearch/snowballstem/english"

	"github.com/switchboard-acd/switchboard/kb/textnorm"
)

// Feature kinds, mixed into a feature's hash so that the word "ab" and the
// character n-gram "ab" stay different features.
const (
	kindWord    = 'w' // stemmed word
	kindBigram  = 'b' // two adjacent stemmed words
	kindChar    = 'c' // character n-gram of a word with boundary marks
	kindHan1    = 'u' // one Han character
	kindHan2    = 'v' // two adjacent Han characters
	kindHan3    = 't' // three adjacent Han characters
	maxWordLen  = 40  // longer "words" (hashes, URLs) give no useful n-grams
	charGramMin = 3
	charGramMax = 5
)

// kindWeight scales each kind of feature before a vector is normalised.
// Character n-grams are many per word, so each counts less; words and
// bigrams carry the meaning. One set of values serves every KB.
var kindWeight = map[byte]float32{
	kindWord:   1,
	kindBigram: 1,
	kindChar:   0.5,
	kindHan1:   1,
	kindHan2:   1,
	kindHan3:   0.7,
}

// rawFeature is one occurrence of a feature in a text.
type rawFeature struct {
	hash uint64
	kind byte
}

// termCount is a feature of a text with its count.
type termCount struct {
	hash  uint64
	kind  byte
	count float32
}

// textFeatures is what one folded text yields: its features and its "tokens"
// (words and Han characters), which the matcher uses to tell how much of a
// message the KB knows at all.
type textFeatures struct {
	terms  []termCount
	tokens []uint64 // hashes of word stems and Han characters
}

// stemCache remembers stems, since the same words recur in every variant.
var stemCache sync.Map // string -> string

func stem(w string) string {
	if len(w) < 3 {
		return w
	}
	if s, ok := stemCache.Load(w); ok {
		return s.(string)
	}
	env := snowballstem.NewEnv(w)
	english.Stem(env)
	s := env.Current()
	stemCache.Store(w, s)
	return s
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func hashString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

func hashKind(kind byte) uint64 {
	return (fnvOffset ^ uint64(kind)) * fnvPrime
}

// analyze extracts the features of folded text (see textnorm.Fold).
func analyze(folded string) textFeatures {
	var raw []rawFeature
	var tokens []uint64
	var words []string // stems of the current run of non-Han words
	var han []rune     // the current run of Han characters

	flushWords := func() {
		for i, w := range words {
			h := hashString(hashKind(kindWord), w)
			raw = append(raw, rawFeature{h, kindWord})
			tokens = append(tokens, h)
			if i > 0 {
				b := hashString(hashString(hashKind(kindBigram), words[i-1]), " "+w)
				raw = append(raw, rawFeature{b, kindBigram})
			}
		}
		words = words[:0]
	}
	flushHan := func() {
		for i := range han {
			h1 := hashString(hashKind(kindHan1), string(han[i]))
			raw = append(raw, rawFeature{h1, kindHan1})
			tokens = append(tokens, h1)
			if i > 0 {
				raw = append(raw, rawFeature{hashString(hashKind(kindHan2), string(han[i-1:i+1])), kindHan2})
			}
			if i > 1 {
				raw = append(raw, rawFeature{hashString(hashKind(kindHan3), string(han[i-2:i+1])), kindHan3})
			}
		}
		han = han[:0]
	}
	addWord := func(w string) {
		if len(w) > maxWordLen {
			w = w[:maxWordLen]
			for len(w) > 0 && !utf8.ValidString(w) {
				w = w[:len(w)-1]
			}
		}
		words = append(words, stem(w))
		// Character n-grams of "<word>", by runes.
		rs := make([]rune, 0, len(w)+2)
		rs = append(rs, '<')
		rs = append(rs, []rune(w)...)
		rs = append(rs, '>')
		for n := charGramMin; n <= charGramMax; n++ {
			for i := 0; i+n <= len(rs); i++ {
				raw = append(raw, rawFeature{hashString(hashKind(kindChar), string(rs[i:i+n])), kindChar})
			}
		}
	}

	start := -1 // start of the current word in folded
	for i, r := range folded {
		switch {
		case textnorm.IsHan(r):
			if start >= 0 {
				addWord(folded[start:i])
				start = -1
			}
			flushWords()
			han = append(han, r)
		case r == ' ':
			if start >= 0 {
				addWord(folded[start:i])
				start = -1
			}
			// A space ends a Han run but not a run of words.
			flushHan()
		default:
			flushHan()
			if start < 0 {
				start = i
			}
		}
	}
	if start >= 0 {
		addWord(folded[start:])
	}
	flushWords()
	flushHan()

	slices.SortFunc(raw, func(a, b rawFeature) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return 0
	})
	var terms []termCount
	for _, f := range raw {
		if n := len(terms); n > 0 && terms[n-1].hash == f.hash {
			terms[n-1].count++
			continue
		}
		terms = append(terms, termCount{f.hash, f.kind, 1})
	}
	return textFeatures{terms: terms, tokens: tokens}
}
