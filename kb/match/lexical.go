// This file holds the bleve side of the matcher: one document per entry
// with its question, all its variants and its keywords in separate fields,
// analysed per language by custom analyzers, and a query that boosts the
// fields differently and adds fuzzy terms for typos. bleve proposes
// candidates the classifier might have ranked low and contributes a BM25
// score that the matcher learns to weigh.

package match

import (
	"context"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/registry"
	"github.com/blevesearch/bleve/v2/search/query"
	index "github.com/blevesearch/bleve_index_api"

	"github.com/switchboard-acd/switchboard/kb/textnorm"
)

// Names of the custom analysis components, registered with bleve once.
const (
	// HanTokenizer splits Chinese into single characters plus overlapping
	// bigrams (so a two-character word matches as a word, and a lone
	// character still matches), and other scripts into words.
	HanTokenizer = "switchboard_han"
	// AnalyzerChinese analyses Chinese entries and messages.
	AnalyzerChinese = "switchboard_zh"
	// AnalyzerEnglish analyses English entries and messages: words, lower
	// case, possessives dropped, stop words removed, Snowball stems.
	AnalyzerEnglish = "switchboard_en"
)

// Field names and query-time boosts: the standard question is what editors
// wrote for the entry, keywords are chosen on purpose, variants are many
// and noisy.
const (
	fieldQuestion = "q"
	fieldVariants = "v"
	fieldKeywords = "k"
	boostQuestion = 1.5
	boostVariants = 1.0
	boostKeywords = 2.0
	boostFuzzy    = 0.3 // a fuzzy hit is weaker evidence than an exact one
	fuzzyMinRunes = 5   // shorter words have too many neighbours at distance 1
	lexicalHits   = 20  // bleve hits per query
)

func init() {
	if err := registry.RegisterTokenizer(HanTokenizer, func(map[string]interface{}, *registry.Cache) (analysis.Tokenizer, error) {
		return hanTokenizer{}, nil
	}); err != nil {
		panic(err)
	}
}

// hanTokenizer emits every Han character and every pair of adjacent Han
// characters, and runs of other letters and digits as words.
type hanTokenizer struct{}

func (hanTokenizer) Tokenize(input []byte) analysis.TokenStream {
	var ts analysis.TokenStream
	pos := 1
	prevHan, prevStart := false, 0
	wordStart := -1
	emit := func(start, end int, typ analysis.TokenType) {
		ts = append(ts, &analysis.Token{Term: input[start:end], Start: start, End: end, Position: pos, Type: typ})
		pos++
	}
	for i := 0; i < len(input); {
		r, size := utf8.DecodeRune(input[i:])
		isHan := textnorm.IsHan(r)
		isWord := !isHan && (r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r > 0x7f && r != utf8.RuneError && !isSpace(r))
		if wordStart >= 0 && !isWord {
			emit(wordStart, i, analysis.AlphaNumeric)
			wordStart = -1
		}
		switch {
		case isHan:
			if prevHan {
				emit(prevStart, i+size, analysis.Ideographic)
			}
			emit(i, i+size, analysis.Ideographic)
			prevHan, prevStart = true, i
		case isWord:
			if wordStart < 0 {
				wordStart = i
			}
			prevHan = false
		default:
			prevHan = false
		}
		i += size
	}
	if wordStart >= 0 {
		emit(wordStart, len(input), analysis.AlphaNumeric)
	}
	return ts
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == 0x3000 }

// newMapping returns the index mapping: documents of type "en" and "zh"
// with the same fields, each analysed by its language's analyzer.
func newMapping() (*mapping.IndexMappingImpl, error) {
	im := bleve.NewIndexMapping()
	im.ScoringModel = index.BM25Scoring
	if err := im.AddCustomAnalyzer(AnalyzerEnglish, map[string]interface{}{
		"type":          custom.Name,
		"tokenizer":     unicode.Name,
		"token_filters": []string{lowercase.Name, en.PossessiveName, en.StopName, en.SnowballStemmerName},
	}); err != nil {
		return nil, err
	}
	if err := im.AddCustomAnalyzer(AnalyzerChinese, map[string]interface{}{
		"type":          custom.Name,
		"tokenizer":     HanTokenizer,
		"token_filters": []string{lowercase.Name},
	}); err != nil {
		return nil, err
	}
	for _, lang := range []string{"en", "zh"} {
		an := AnalyzerEnglish
		if lang == "zh" {
			an = AnalyzerChinese
		}
		dm := bleve.NewDocumentStaticMapping()
		for _, f := range []string{fieldQuestion, fieldVariants, fieldKeywords} {
			fm := bleve.NewTextFieldMapping()
			fm.Analyzer = an
			fm.Store = false
			fm.IncludeTermVectors = false
			fm.IncludeInAll = false
			fm.DocValues = false
			dm.AddFieldMappingsAt(f, fm)
		}
		im.AddDocumentMapping(lang, dm)
	}
	im.DefaultMapping = bleve.NewDocumentDisabledMapping()
	return im, nil
}

// lexical is a bleve index of a KB's entries.
type lexical struct {
	idx      bleve.Index
	keywords bool // some entry has keywords
	en       analysis.Analyzer
	zh       analysis.Analyzer
}

// lexDoc is an entry as bleve indexes it.
type lexDoc struct {
	id       int
	lang     string
	question string
	variants []string
	keywords []string
}

// buildLexical indexes docs in dir ("" keeps the index in memory).
func buildLexical(dir string, docs []lexDoc) (*lexical, error) {
	im, err := newMapping()
	if err != nil {
		return nil, err
	}
	idx, err := bleve.NewUsing(dir, im, scorch.Name, scorch.Name, nil)
	if err != nil {
		return nil, fmt.Errorf("create bleve index: %w", err)
	}
	b := idx.NewBatch()
	for _, d := range docs {
		if err := b.Index(strconv.Itoa(d.id), map[string]interface{}{
			"_type":       d.lang,
			fieldQuestion: d.question,
			fieldVariants: d.variants,
			fieldKeywords: d.keywords,
		}); err != nil {
			idx.Close()
			return nil, fmt.Errorf("index entry: %w", err)
		}
		if b.Size() >= 1000 {
			if err := idx.Batch(b); err != nil {
				idx.Close()
				return nil, fmt.Errorf("index batch: %w", err)
			}
			b.Reset()
		}
	}
	if err := idx.Batch(b); err != nil {
		idx.Close()
		return nil, fmt.Errorf("index batch: %w", err)
	}
	l := &lexical{idx: idx, en: im.AnalyzerNamed(AnalyzerEnglish), zh: im.AnalyzerNamed(AnalyzerChinese)}
	for _, d := range docs {
		l.keywords = l.keywords || len(d.keywords) > 0
	}
	return l, nil
}

// lexHit is one bleve hit: the entry's index and its BM25 score.
type lexHit struct {
	entry int32
	score float64
}

// search returns the best entries for folded text by BM25 over the boosted
// fields. entries reports in how many entries a term occurs: a term in
// none gets fuzzy variants when it is a long English word (a known word is
// spelt right as far as the KB can tell, and fuzzy terms are expensive),
// and a term in very many entries is left out (see lexMaxEntries).
func (l *lexical) search(ctx context.Context, folded string, entries func(term string) int) ([]lexHit, error) {
	an := l.en
	zh := textnorm.HasHan(folded)
	if zh {
		an = l.zh
	}
	seen := make(map[string]bool)
	var qs []query.Query
	for _, t := range an.Analyze([]byte(folded)) {
		term := string(t.Term)
		if seen[term] {
			continue
		}
		seen[term] = true
		n := -1
		if entries != nil {
			n = entries(term)
		}
		if n > lexMaxEntries {
			continue
		}
		for _, f := range [...]struct {
			name  string
			boost float64
		}{{fieldQuestion, boostQuestion}, {fieldVariants, boostVariants}, {fieldKeywords, boostKeywords}} {
			if f.name == fieldKeywords && !l.keywords {
				continue
			}
			q := query.NewTermQuery(term)
			q.SetField(f.name)
			q.SetBoost(f.boost)
			qs = append(qs, q)
		}
		if !zh && utf8.RuneCountInString(term) >= fuzzyMinRunes && n == 0 {
			q := query.NewFuzzyQuery(term)
			q.SetField(fieldVariants)
			q.SetFuzziness(1)
			q.SetPrefix(1)
			q.SetBoost(boostFuzzy)
			qs = append(qs, q)
		}
	}
	if len(qs) == 0 {
		return nil, nil
	}
	req := bleve.NewSearchRequestOptions(query.NewDisjunctionQuery(qs), lexicalHits, 0, false)
	res, err := l.idx.SearchInContext(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("bleve search: %w", err)
	}
	hits := make([]lexHit, 0, len(res.Hits))
	for _, h := range res.Hits {
		id, err := strconv.Atoi(h.ID)
		if err != nil {
			continue
		}
		// bleve sums a document's term scores in an order that varies
		// from run to run, which changes the last bits of the score;
		// rounded to float32, the same KB builds the same matcher.
		hits = append(hits, lexHit{int32(id), float64(float32(h.Score))})
	}
	return hits, nil
}

func (l *lexical) close() error { return l.idx.Close() }
