// Package match owns the FAQ matcher of the knowledge base: it turns a
// tenant's entries into a Matcher that maps a customer message to the
// entries most likely to answer it, with a calibrated confidence the bot
// compares to the tenant's thresholds (answer, "did you mean", hand off).
//
// The package is a pure library: no database, no Redis. Its inputs are the
// entries; everything it holds (a bleve index, a classifier, the
// calibration) is derived data, rebuilt whenever the KB changes. The
// method, its measurements and the meaning of the confidence are in
// docs/kb.md.
package match

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/switchboard-acd/switchboard/kb"
	"github.com/switchboard-acd/switchboard/kb/textnorm"
)

// Doc is one FAQ entry as the matcher sees it: only what helps recognise a
// question, none of the answer.
type Doc struct {
	ID       string
	Question string
	Variants []string
	Keywords []string
	Category string
	// Language selects the bleve analyzer: "en", "zh" or "" to tell from
	// the question (any Han character makes it Chinese).
	Language string
}

// Options configure Build.
type Options struct {
	// Dir is where bleve keeps the index on disk; "" keeps it in memory.
	// The directory must not exist yet.
	Dir string
	// Negatives are messages the KB should decline (small talk, requests
	// it does not serve). They are optional: the matcher learns to decline
	// from entries held out of its training either way, and negatives
	// only sharpen that.
	Negatives []string
	// Seed varies the held-out folds used for calibration and the order
	// of training; 0 is a fixed default, so the same KB always builds the
	// same matcher.
	Seed uint64
}

// Candidate is one entry the message may be asking about.
type Candidate struct {
	ID string
	// Score is the calibrated probability that this entry answers the
	// message (0..1).
	Score float64
}

// Result is what Match found: candidates best first and the confidence of
// the first, which the bot compares to its thresholds.
type Result struct {
	Candidates []Candidate
	Confidence float64
}

// BuildStats describe a build, for logs and the eval command.
type BuildStats struct {
	Entries     int
	Texts       int // questions, variants and keyword sets learnt from
	Features    int
	Calibration int // held-out queries the ranker and calibrator were fitted on
	Duration    time.Duration
}

// Matcher answers Match for one KB. It is immutable once built and safe for
// concurrent use.
type Matcher struct {
	ids   []string
	model *model
	lex   *lexical
	rank  [rkN]float64
	cal   [clN]float64
	stats BuildStats
	pool  sync.Pool // *scratch
}

// Calibration split constants. Each fold holds out a share of the entries
// entirely (their texts play out-of-scope messages) and one in calFolds of
// the remaining entries' variants (they play in-scope messages), and
// trains a throw-away matcher on the rest. Folds run until the held-out
// variants make calTarget in-scope queries, every fold has run, or the
// next fold would bring the folds run times the KB's texts to calWork: a
// large KB gets enough from one fold, a small one needs several and they
// cost little. Holding out a small share per fold keeps the throw-away
// matcher close to the final one, which learns from every text, so the
// ranker and calibrator fitted on its evidence fit the final matcher's
// evidence too.
const (
	holdEntries = 0.2
	calFolds    = 8
	calTarget   = 1000
	calWork     = 4000
	maxPerHeld  = 20 // held-out texts per entry and fold, so large entries do not dominate
)

// ErrDuplicateID is returned by Build for two docs with the same ID.
var ErrDuplicateID = errors.New("match: duplicate entry id")

// Build makes a matcher from docs. It trains the classifier, fits the
// ranker and the calibration on held-out folds of the KB itself, and
// indexes the entries in bleve.
func Build(docs []Doc, opts Options) (*Matcher, error) {
	start := time.Now()
	seen := make(map[string]bool, len(docs))
	entries := make([]entryTexts, len(docs))
	for i, d := range docs {
		if d.ID == "" {
			return nil, fmt.Errorf("match: entry %d has no id", i)
		}
		if seen[d.ID] {
			return nil, fmt.Errorf("%w %q", ErrDuplicateID, d.ID)
		}
		seen[d.ID] = true
		lang := kb.Language(d.Language)
		if !lang.Valid() {
			return nil, fmt.Errorf("match: entry %q: unknown language %q", d.ID, d.Language)
		}
		entries[i] = newEntryTexts(d)
	}
	seed := opts.Seed
	if seed == 0 {
		seed = 0x5eed
	}
	var negatives []string
	for _, n := range opts.Negatives {
		if f := textnorm.Fold(textnorm.Cap(n, kb.MaxMessageLen)); f != "" {
			negatives = append(negatives, f)
		}
	}

	m := &Matcher{ids: make([]string, len(docs)), rank: defaultRanker, cal: defaultCalibrator}
	for i, d := range docs {
		m.ids[i] = d.ID
	}
	qs, err := calibrationQueries(entries, negatives, seed)
	if err != nil {
		return nil, err
	}
	m.rank = fitRanker(qs)
	m.cal = fitCalibrator(m.rank, qs)

	var exs []example
	for i, e := range entries {
		for _, t := range e.texts {
			exs = append(exs, example{int32(i), t})
		}
	}
	m.model = trainModel(len(docs), exs, seed)
	m.lex, err = buildLexical(opts.Dir, lexDocs(entries, nil))
	if err != nil {
		return nil, err
	}
	m.pool.New = func() any { return newScratch(len(docs), len(exs)) }
	m.stats = BuildStats{
		Entries: len(docs), Texts: len(exs), Features: len(m.model.kinds),
		Calibration: len(qs), Duration: time.Since(start),
	}
	return m, nil
}

// entryTexts is an entry's folded texts: the question first, then the
// variants, then the keywords as one text.
type entryTexts struct {
	lang     string
	question string
	texts    []string
	variants []string // folded variants (bleve field)
	keywords []string
}

func newEntryTexts(d Doc) entryTexts {
	e := entryTexts{lang: d.Language}
	seen := make(map[string]bool)
	add := func(s string) string {
		f := textnorm.Fold(textnorm.Cap(s, kb.MaxQuestionLen))
		if f == "" || seen[f] {
			return ""
		}
		seen[f] = true
		e.texts = append(e.texts, f)
		return f
	}
	e.question = add(d.Question)
	for _, v := range d.Variants {
		if f := add(v); f != "" {
			e.variants = append(e.variants, f)
		}
	}
	var kw []string
	for _, k := range d.Keywords {
		if f := textnorm.Fold(textnorm.Cap(k, kb.MaxKeywordLen)); f != "" {
			kw = append(kw, f)
		}
	}
	e.keywords = kw
	if len(kw) > 0 {
		add(joinSpace(kw))
	}
	if e.lang == "" {
		e.lang = "en"
		if textnorm.HasHan(d.Question) || (d.Question == "" && len(e.texts) > 0 && textnorm.HasHan(e.texts[0])) {
			e.lang = "zh"
		}
	}
	return e
}

func joinSpace(ss []string) string {
	n := 0
	for _, s := range ss {
		n += len(s) + 1
	}
	b := make([]byte, 0, n)
	for i, s := range ss {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, s...)
	}
	return string(b)
}

// lexDocs returns the bleve documents of entries; keep, when set, says
// which texts of each entry to index (held-out texts are left out).
func lexDocs(entries []entryTexts, keep func(entry, text int) bool) []lexDoc {
	var docs []lexDoc
	for i, e := range entries {
		d := lexDoc{id: i, lang: e.lang}
		for j, t := range e.texts {
			if keep != nil && !keep(i, j) {
				continue
			}
			if j == 0 && t == e.question {
				d.question = t
			} else {
				d.variants = append(d.variants, t)
			}
		}
		if d.question == "" && len(d.variants) == 0 {
			continue
		}
		d.keywords = e.keywords
		if keep != nil && len(d.keywords) > 0 && !keep(i, len(e.texts)-1) {
			d.keywords = nil
		}
		docs = append(docs, d)
	}
	return docs
}

// calibrationQueries trains matchers on parts of the KB and returns the
// evidence they produce for the rest: held-out variants of the entries
// they know (in scope), every text of the entries held out whole and the
// negatives (out of scope). Each variant is held out in at most one fold;
// each fold holds out different entries.
func calibrationQueries(entries []entryTexts, negatives []string, seed uint64) ([]rankQuery, error) {
	if len(entries) < 2 {
		return nil, nil
	}
	rng := rand.New(rand.NewPCG(seed, 0xca11))
	nHeld := int(math.Round(holdEntries * float64(len(entries))))
	perm := rng.Perm(len(entries))
	// The fold that holds out each text; the question (text 0) stays in
	// training, so every known entry keeps at least one text.
	fold := make([][]int8, len(entries))
	texts := 0
	for i, e := range entries {
		texts += len(e.texts)
		fold[i] = make([]int8, len(e.texts))
		for j := range fold[i] {
			fold[i][j] = -1
			if j > 0 {
				fold[i][j] = int8(rng.IntN(calFolds))
			}
		}
	}
	var out []rankQuery
	inScope := 0
	for f := 0; f < calFolds && inScope < calTarget && (f == 0 || f*texts < calWork); f++ {
		heldEntry := make([]bool, len(entries))
		for k := 0; k < nHeld; k++ {
			heldEntry[perm[(f*nHeld+k)%len(entries)]] = true
		}
		var queries []calQuery
		held := make([][]bool, len(entries))
		var exs []example
		for i, e := range entries {
			held[i] = make([]bool, len(e.texts))
			if heldEntry[i] {
				for j, t := range e.texts {
					held[i][j] = true
					if j < maxPerHeld {
						queries = append(queries, calQuery{t, -1})
					}
				}
				continue
			}
			n := 0
			for j, t := range e.texts {
				if int(fold[i][j]) == f && n < maxPerHeld {
					held[i][j] = true
					queries = append(queries, calQuery{t, int32(i)})
					n++
					continue
				}
				exs = append(exs, example{int32(i), t})
			}
		}
		if f == 0 { // once: they do not depend on the fold
			for _, n := range negatives {
				queries = append(queries, calQuery{n, -1})
			}
		}
		if len(exs) == 0 || len(queries) == 0 {
			continue
		}
		rqs, err := foldEvidence(entries, exs, held, seed+1+uint64(f), queries)
		if err != nil {
			return nil, err
		}
		for _, rq := range rqs {
			if rq.truth >= 0 {
				inScope++
			}
		}
		out = append(out, rqs...)
	}
	return out, nil
}

// calQuery is a held-out text and the entry that answers it (-1: none).
type calQuery struct {
	text  string
	truth int32
}

// foldEvidence trains a throw-away matcher on exs (bleve indexes the texts
// not held) and returns its evidence for each query.
func foldEvidence(entries []entryTexts, exs []example, held [][]bool, seed uint64, queries []calQuery) ([]rankQuery, error) {
	fold := &Matcher{rank: defaultRanker}
	fold.model = trainModel(len(entries), exs, seed)
	var err error
	fold.lex, err = buildLexical("", lexDocs(entries, func(i, j int) bool { return !held[i][j] }))
	if err != nil {
		return nil, err
	}
	defer fold.lex.close()
	s := newScratch(len(entries), len(exs))
	var out []rankQuery
	for _, q := range queries {
		rq, ok := fold.evidence(context.Background(), q.text, s)
		if !ok {
			continue
		}
		rq.truth = q.truth
		out = append(out, rq)
	}
	return out, nil
}

// Ranking constants.
const (
	cosineCandidates = 5 // classes added by nearest-variant cosine
)

// evidence gathers the candidates of a folded message and their features.
func (m *Matcher) evidence(ctx context.Context, folded string, s *scratch) (rankQuery, bool) {
	a := analyze(folded)
	v := m.model.vectorOf(a)
	hits, _ := m.lex.search(ctx, folded, m.model.wordEntries) // bleve failing leaves the classifier's candidates
	if len(v.ids) == 0 && len(hits) == 0 {
		return rankQuery{}, false
	}
	s.next()
	m.model.classify(a, v, s)
	m.model.neighbours(v, s)
	cands := topClasses(s, maxCandidates)
	byCos := topBy(s.touched, s.cos, cosineCandidates)
	in := make(map[int32]int, len(cands)+len(byCos)+len(hits))
	var cf []candFeat
	add := func(c int32) int {
		if i, ok := in[c]; ok {
			return i
		}
		f := candFeat{class: c}
		if s.clsMark[c] == s.gen {
			f.rk[rkClassifier] = float64(s.clsScore[c])
			f.rk[rkCosine] = float64(s.cos[c])
		}
		in[c] = len(cf)
		cf = append(cf, f)
		return len(cf) - 1
	}
	for _, c := range cands {
		add(c)
	}
	for _, c := range byCos {
		add(c)
	}
	if len(hits) > 0 {
		top := hits[0].score
		for _, h := range hits {
			if top > 0 {
				cf[add(h.entry)].rk[rkLexical] = h.score / top
			}
		}
	}
	if len(cf) == 0 {
		return rankQuery{}, false
	}
	n := len(a.tokens)
	return rankQuery{cands: cf, truth: -1, known: m.model.known(a), short: 1 / (1 + float64(n))}, true
}

// Match returns up to k entries for a customer message, best first, with
// calibrated scores. The message is capped at kb.MaxMessageLen bytes and
// folded; a message with nothing to match (empty, emoji, binary) returns no
// candidates. Safe for concurrent use.
func (m *Matcher) Match(text string, k int) Result {
	if k <= 0 {
		return Result{}
	}
	folded := textnorm.Fold(textnorm.Cap(text, kb.MaxMessageLen))
	if folded == "" {
		return Result{}
	}
	s := m.pool.Get().(*scratch)
	defer m.pool.Put(s)
	// The index is in memory or memory-mapped: a search is CPU work with
	// nothing to cancel, so Match takes no context.
	q, ok := m.evidence(context.Background(), folded, s)
	if !ok {
		return Result{}
	}
	softmaxRank(m.rank, q.cands)
	order := byProb(q.cands)
	if len(order) > k {
		order = order[:k]
	}
	res := Result{Candidates: make([]Candidate, len(order))}
	prev := 1.0
	for r, i := range order {
		p := calibrate(m.cal, calFeatures(q.cands, i, q.known, q.short))
		// Scores follow the ranking: a lower-ranked candidate never
		// claims more confidence than the one above it.
		p = math.Min(p, prev)
		prev = p
		res.Candidates[r] = Candidate{ID: m.ids[q.cands[i].class], Score: p}
	}
	res.Confidence = res.Candidates[0].Score
	return res
}

// Stats describe how the matcher was built.
func (m *Matcher) Stats() BuildStats { return m.stats }

// Close releases the bleve index.
func (m *Matcher) Close() error {
	if m.lex == nil {
		return nil
	}
	return m.lex.close()
}
