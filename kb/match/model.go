// This file holds the learned part of the matcher: TF-IDF vectors of every
// question variant, an inverted index over them for nearest-neighbour
// cosine, and a linear classifier (softmax regression) with one weight
// vector per entry, trained by SGD on the entry's own variants and a few
// shape features of each text. Everything is pure Go and learnt from the
// KB when the matcher is built.

package match

import (
	"math"
	"math/rand/v2"
	"slices"
	"unicode/utf8"

	"github.com/switchboard-acd/switchboard/kb/textnorm"
)

// Training constants. One set serves every KB: they were chosen on the
// development sets and must not be tuned per tenant.
const (
	trainEpochs   = 8    // passes of SGD over the variants
	trainRate     = 2.0  // initial learning rate, decayed linearly
	trainNegs     = 24   // classes in each softmax besides the true one (highest scoring)
	centroidInit  = 1.0  // weights start at this multiple of the class centroid
	weightDecay   = 1e-4 // L2 shrink applied per update to touched weights
	maxCandidates = 24   // classes the classifier proposes per query
	// clsMaxPosting drops from the classifier a feature found in more
	// entries than this: it tells them apart poorly and, in a KB of
	// thousands of entries, would cost more than all other features.
	clsMaxPosting = 256
	// lexMaxEntries leaves out of the bleve query a word found in more
	// entries than this: its BM25 weight is small and walking its postings
	// is most of a search's cost in a large KB.
	lexMaxEntries = 300
	// knnMaxPosting skips, in the nearest-neighbour search, features found
	// in more texts than this, for the same reason; cosines stay exact
	// but for those features' small contribution.
	knnMaxPosting = 1000
	// shapeValue is the input value of a shape feature (see shapeOf) in
	// the classifier, next to a text's L2-normalised TF-IDF vector. Small,
	// so a shape only decides between entries the words leave close.
	shapeValue = 0.1
)

// svec is a sparse L2-normalised vector over vocabulary ids, ids ascending.
type svec struct {
	ids  []int32
	vals []float32
}

// example is one labelled text a model learns from.
type example struct {
	class int32
	text  string // folded
}

// model is the classifier and nearest-neighbour index of one training set.
type model struct {
	nClass int
	vocab  map[uint64]int32
	kinds  []byte    // kind of each feature id
	idf    []float32 // per feature id
	tokens map[uint64]struct{}
	// classDF counts the classes whose texts hold each feature.
	classDF []int32
	// df counts the training texts that hold each feature.
	df []int32
	// shapes says whether the classifier kept any shape feature: a KB with
	// more entries than clsMaxPosting drops the common ones, and maybe all.
	shapes bool

	// Nearest-neighbour index: CSR over feature ids of (example, weight).
	exClass   []int32
	knnStart  []int32
	knnEx     []int32
	knnWeight []float32

	// Classifier: CSR over feature ids of (class, weight); a class has
	// weights only on features its own variants contain.
	clsStart  []int32
	clsClass  []int32
	clsWeight []float32
}

// trainModel learns a model from examples; every class in [0,nClass) should
// have at least one example.
func trainModel(nClass int, exs []example, seed uint64) *model {
	m := &model{nClass: nClass, vocab: make(map[uint64]int32), tokens: make(map[uint64]struct{})}
	ans := make([]textFeatures, len(exs))
	var df []int32
	for i, ex := range exs {
		ans[i] = analyze(ex.text)
		for _, t := range ans[i].terms {
			id, ok := m.vocab[t.hash]
			if !ok {
				id = int32(len(m.kinds))
				m.vocab[t.hash] = id
				m.kinds = append(m.kinds, t.kind)
				df = append(df, 0)
			}
			df[id]++
		}
		for _, h := range ans[i].tokens {
			m.tokens[h] = struct{}{}
		}
	}
	// Shape features get ids after every text feature, so appending them
	// to a sorted vector keeps it sorted. A training text's novelty leaves
	// the text itself out, as a message is not among the texts either.
	m.df = df // the text features' counts, which shapeOf reads
	shapes := make([][numShapes]uint64, len(exs))
	for i := range exs {
		shapes[i] = m.shapeOf(ans[i], 1)
	}
	for i := range exs {
		for _, h := range shapes[i] {
			id, ok := m.vocab[h]
			if !ok {
				id = int32(len(m.kinds))
				m.vocab[h] = id
				m.kinds = append(m.kinds, kindShape)
				df = append(df, 0)
			}
			df[id]++
		}
	}
	m.df = df // now with the shape features' counts
	n := float64(len(exs))
	m.idf = make([]float32, len(df))
	for id, d := range df {
		m.idf[id] = float32(math.Log((n+1)/(float64(d)+1)) + 1)
	}
	vecs := make([]svec, len(exs))
	clsVecs := make([]svec, len(exs))
	for i := range exs {
		vecs[i] = m.vectorOf(ans[i])
		clsVecs[i] = m.withShapes(vecs[i], shapes[i])
	}

	// Nearest-neighbour CSR.
	m.exClass = make([]int32, len(exs))
	m.knnStart = make([]int32, len(df)+1)
	for i, v := range vecs {
		m.exClass[i] = exs[i].class
		for _, id := range v.ids {
			m.knnStart[id+1]++
		}
	}
	for i := 1; i < len(m.knnStart); i++ {
		m.knnStart[i] += m.knnStart[i-1]
	}
	m.knnEx = make([]int32, m.knnStart[len(df)])
	m.knnWeight = make([]float32, m.knnStart[len(df)])
	fill := slices.Clone(m.knnStart[:len(df)])
	for i, v := range vecs {
		for j, id := range v.ids {
			p := fill[id]
			m.knnEx[p] = int32(i)
			m.knnWeight[p] = v.vals[j]
			fill[id]++
		}
	}

	// Classifier support and centroid initialisation: the sum of the
	// class's vectors, normalised.
	type cf struct{ class, id int32 }
	sums := make(map[cf]float32)
	norms := make([]float64, nClass)
	for i, v := range clsVecs {
		c := exs[i].class
		for j, id := range v.ids {
			sums[cf{c, id}] += v.vals[j]
		}
	}
	keys := make([]cf, 0, len(sums))
	for k := range sums {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b cf) int {
		if a.id != b.id {
			return int(a.id - b.id)
		}
		return int(a.class - b.class)
	})
	// Summed in key order, not map order: float addition is not
	// associative, and the same KB must build the same matcher.
	for _, k := range keys {
		s := sums[k]
		norms[k.class] += float64(s) * float64(s)
	}
	m.clsStart = make([]int32, len(df)+1)
	m.clsClass = make([]int32, len(keys))
	m.clsWeight = make([]float32, len(keys))
	// Drop features shared by too many classes.
	perFeature := make([]int32, len(df))
	for _, k := range keys {
		perFeature[k.id]++
	}
	m.classDF = perFeature
	kept := keys[:0]
	for _, k := range keys {
		if perFeature[k.id] <= clsMaxPosting {
			kept = append(kept, k)
		}
	}
	keys = kept
	m.clsClass = m.clsClass[:len(keys)]
	m.clsWeight = m.clsWeight[:len(keys)]
	for i, k := range keys {
		m.clsStart[k.id+1]++
		m.clsClass[i] = k.class
		nrm := math.Sqrt(norms[k.class])
		if nrm > 0 {
			m.clsWeight[i] = float32(centroidInit * float64(sums[k]) / nrm)
		}
	}
	for i := 1; i < len(m.clsStart); i++ {
		m.clsStart[i] += m.clsStart[i-1]
	}
	for id, k := range m.kinds {
		if k == kindShape && m.clsStart[id+1] > m.clsStart[id] {
			m.shapes = true
		}
	}
	m.train(exs, clsVecs, seed)
	return m
}

// Shape features describe a text's form rather than its words: a bias
// (every text has it, so its weight is the entry's prior), the length, the
// share of its words the rest of the KB never uses, and length and novelty
// together. They let the classifier learn what kind of message each entry
// receives. In a KB of short commands, for example, a bare name nobody else
// wrote (a film title, a dish) most likely belongs to the entry whose
// variants are mostly bare names, not to whichever entry shares one of its
// characters.
const (
	kindShape = 's'
	numShapes = 4
)

// shapeOf returns the shape features of a training text. self is how many
// times the text itself is counted in m.df: 1 for a training text (its
// novelty leaves it out), 0 to treat it as a message.
func (m *model) shapeOf(a textFeatures, self int32) [numShapes]uint64 {
	var c shapeCounts
	for _, t := range a.terms {
		d := int32(0)
		if id, ok := m.vocab[t.hash]; ok {
			d = m.df[id] - self
		}
		c.add(t.kind, d <= 0)
	}
	return c.features(len(a.tokens))
}

// messageShapes returns the ids of a message's shape features that the
// classifier kept (-1: none). v is the message's vector: the features of a
// it holds are exactly those some training text has, so novelty needs no
// lookups beyond the ones vectorOf made.
func (m *model) messageShapes(a textFeatures, v svec) [numShapes]int32 {
	var c shapeCounts
	for _, t := range a.terms {
		c.add(t.kind, true)
	}
	for _, id := range v.ids {
		c.known(m.kinds[id])
	}
	var ids [numShapes]int32
	for i, h := range c.features(len(a.tokens)) {
		ids[i] = -1
		if id, ok := m.vocab[h]; ok && m.clsStart[id+1] > m.clsStart[id] {
			ids[i] = id
		}
	}
	return ids
}

// shapeScores adds the classifier's weights of a message's shape features
// (from messageShapes) to the class scores of s, as classScores would for
// the features appended to the vector at shapeValue.
func (m *model) shapeScores(ids [numShapes]int32, s *scratch) {
	for _, id := range ids {
		if id < 0 {
			continue
		}
		for p := m.clsStart[id]; p < m.clsStart[id+1]; p++ {
			c := m.clsClass[p]
			if s.clsMark[c] != s.gen {
				s.clsMark[c] = s.gen
				s.clsScore[c] = 0
				s.cos[c] = 0
				s.touched = append(s.touched, c)
			}
			s.clsScore[c] += shapeValue * m.clsWeight[p]
		}
	}
}

// shapeCounts counts a text's units and how many of them are new to the KB.
// Novelty counts words and Han character pairs (the units that carry
// meaning); a text without either falls back to its Han characters.
type shapeCounts struct {
	units, novel, han1, han1Novel int
}

func (c *shapeCounts) add(kind byte, novel bool) {
	n := 0
	if novel {
		n = 1
	}
	switch kind {
	case kindWord, kindHan2:
		c.units++
		c.novel += n
	case kindHan1:
		c.han1++
		c.han1Novel += n
	}
}

// known takes back the novelty add counted for a feature of this kind.
func (c *shapeCounts) known(kind byte) {
	switch kind {
	case kindWord, kindHan2:
		c.novel--
	case kindHan1:
		c.han1Novel--
	}
}

// features returns the shape features of a text of the given number of
// tokens (words and Han characters).
func (c shapeCounts) features(tokens int) [numShapes]uint64 {
	units, novel := c.units, c.novel
	if units == 0 {
		units, novel = c.han1, c.han1Novel
	}
	var length byte
	switch {
	case tokens <= 2:
		length = '0'
	case tokens <= 4:
		length = '1'
	case tokens <= 6:
		length = '2'
	case tokens <= 9:
		length = '3'
	default:
		length = '4'
	}
	novelty := byte('0') // none, up to a third, up to two thirds, most, all
	if units > 0 && novel > 0 {
		switch f := float64(novel) / float64(units); {
		case f <= 0.34:
			novelty = '1'
		case f <= 0.67:
			novelty = '2'
		case f < 1:
			novelty = '3'
		default:
			novelty = '4'
		}
	}
	h := hashKind(kindShape)
	return [numShapes]uint64{
		hashString(h, "bias"),
		hashString(h, string([]byte{'l', length})),
		hashString(h, string([]byte{'n', novelty})),
		hashString(h, string([]byte{'x', length, novelty})),
	}
}

// withShapes returns a training text's input to the classifier: its TF-IDF
// vector v followed by its shape features at shapeValue. Shape ids come
// after every text feature id, so the result stays sorted.
func (m *model) withShapes(v svec, shapes [numShapes]uint64) svec {
	var ids [numShapes]int32
	n := 0
	for _, h := range shapes {
		if id, ok := m.vocab[h]; ok {
			ids[n] = id
			n++
		}
	}
	slices.Sort(ids[:n])
	out := svec{ids: make([]int32, len(v.ids), len(v.ids)+n), vals: make([]float32, len(v.vals), len(v.vals)+n)}
	copy(out.ids, v.ids)
	copy(out.vals, v.vals)
	for _, id := range ids[:n] {
		out.ids = append(out.ids, id)
		out.vals = append(out.vals, shapeValue)
	}
	return out
}

// classify fills s with the classifier's scores of a message: its words
// (v) and, when the classifier kept any, its shape.
func (m *model) classify(a textFeatures, v svec, s *scratch) {
	m.classScores(v, s)
	if m.shapes {
		m.shapeScores(m.messageShapes(a, v), s)
	}
}

// vectorOf weighs a text's features by sublinear TF times IDF and normalises it;
// features outside the vocabulary are dropped.
func (m *model) vectorOf(a textFeatures) svec {
	var v svec
	var norm float64
	for _, t := range a.terms {
		id, ok := m.vocab[t.hash]
		if !ok {
			continue
		}
		w := (1 + float32(math.Log(float64(t.count)))) * m.idf[id] * kindWeight[t.kind]
		v.ids = append(v.ids, id)
		v.vals = append(v.vals, w)
		norm += float64(w) * float64(w)
	}
	if norm > 0 {
		inv := float32(1 / math.Sqrt(norm))
		for i := range v.vals {
			v.vals[i] *= inv
		}
	}
	// Ids come in hash order; sort them for cache-friendly walks.
	idx := make([]int, len(v.ids))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return int(v.ids[a] - v.ids[b]) })
	s := svec{ids: make([]int32, len(idx)), vals: make([]float32, len(idx))}
	for i, j := range idx {
		s.ids[i], s.vals[i] = v.ids[j], v.vals[j]
	}
	return s
}

// known returns the fraction of a message's tokens (words, Han
// characters) that occur anywhere in the KB: a message made of words the KB
// never uses is unlikely to be about any of its entries.
func (m *model) known(a textFeatures) float64 {
	if len(a.tokens) == 0 {
		return 0
	}
	k := 0
	for _, h := range a.tokens {
		if _, ok := m.tokens[h]; ok {
			k++
		}
	}
	return float64(k) / float64(len(a.tokens))
}

// wordEntries returns how many classes' texts hold a bleve term: a stemmed
// word, or one or two Han characters.
func (m *model) wordEntries(term string) int {
	kind := byte(kindWord)
	if textnorm.HasHan(term) {
		kind = kindHan1
		if utf8.RuneCountInString(term) == 2 {
			kind = kindHan2
		}
	}
	id, ok := m.vocab[hashString(hashKind(kind), term)]
	if !ok {
		return 0
	}
	return int(m.classDF[id])
}

// scratch is per-query working memory, pooled by the matcher.
type scratch struct {
	clsScore []float32 // per class
	clsMark  []uint32  // generation a class was touched in
	exScore  []float32 // per example
	exMark   []uint32
	gen      uint32
	touched  []int32 // classes touched this generation
	exTouch  []int32
	cos      []float32 // per class: best cosine to one of its variants
}

func newScratch(nClass, nEx int) *scratch {
	return &scratch{
		clsScore: make([]float32, nClass), clsMark: make([]uint32, nClass),
		exScore: make([]float32, nEx), exMark: make([]uint32, nEx),
		cos: make([]float32, nClass),
	}
}

func (s *scratch) next() {
	s.gen++
	if s.gen == 0 { // wrapped: clear the marks
		clear(s.clsMark)
		clear(s.exMark)
		s.gen = 1
	}
	s.touched = s.touched[:0]
	s.exTouch = s.exTouch[:0]
}

// classScores fills s.clsScore for every class sharing a feature with v
// (others score 0) and lists them in s.touched.
func (m *model) classScores(v svec, s *scratch) {
	for j, id := range v.ids {
		x := v.vals[j]
		for p := m.clsStart[id]; p < m.clsStart[id+1]; p++ {
			c := m.clsClass[p]
			if s.clsMark[c] != s.gen {
				s.clsMark[c] = s.gen
				s.clsScore[c] = 0
				s.cos[c] = 0
				s.touched = append(s.touched, c)
			}
			s.clsScore[c] += x * m.clsWeight[p]
		}
	}
}

// neighbours fills s.cos with each touched class's best cosine to one of
// its examples; skip (if ≥ 0) is an example to leave out.
func (m *model) neighbours(v svec, s *scratch) {
	for j, id := range v.ids {
		x := v.vals[j]
		if m.knnStart[id+1]-m.knnStart[id] > knnMaxPosting {
			continue
		}
		for p := m.knnStart[id]; p < m.knnStart[id+1]; p++ {
			e := m.knnEx[p]
			if s.exMark[e] != s.gen {
				s.exMark[e] = s.gen
				s.exScore[e] = 0
				s.exTouch = append(s.exTouch, e)
			}
			s.exScore[e] += x * m.knnWeight[p]
		}
	}
	for _, e := range s.exTouch {
		c := m.exClass[e]
		if s.clsMark[c] != s.gen { // shares features only the classifier lost
			s.clsMark[c] = s.gen
			s.clsScore[c] = 0
			s.cos[c] = 0
			s.touched = append(s.touched, c)
		}
		if sc := s.exScore[e]; sc > s.cos[c] {
			s.cos[c] = sc
		}
	}
}

// topClasses returns up to k touched classes by classifier score, best
// first (ties by class), keeping a small heap instead of sorting every
// touched class: a large KB touches thousands per message.
func topClasses(s *scratch, k int) []int32 {
	return topBy(s.touched, s.clsScore, k)
}

// topBy returns up to k of ids with the highest score, best first.
func topBy(ids []int32, score []float32, k int) []int32 {
	worse := func(a, b int32) bool { // a ranks below b
		if score[a] != score[b] {
			return score[a] < score[b]
		}
		return a > b
	}
	h := make([]int32, 0, k+1) // min-heap: the worst kept class on top
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= len(h) {
				return
			}
			if r := l + 1; r < len(h) && worse(h[r], h[l]) {
				l = r
			}
			if !worse(h[l], h[i]) {
				return
			}
			h[i], h[l] = h[l], h[i]
			i = l
		}
	}
	for _, c := range ids {
		if len(h) < k {
			h = append(h, c)
			for i := len(h) - 1; i > 0; {
				p := (i - 1) / 2
				if !worse(h[i], h[p]) {
					break
				}
				h[i], h[p] = h[p], h[i]
				i = p
			}
			continue
		}
		if k > 0 && worse(h[0], c) {
			h[0] = c
			down(0)
		}
	}
	slices.SortFunc(h, func(a, b int32) int {
		if worse(a, b) {
			return 1
		}
		if worse(b, a) {
			return -1
		}
		return 0
	})
	return h
}

// train runs SGD on the softmax loss over each example's true class and its
// highest-scoring other classes: a full softmax over thousands of entries
// would cost too much, and the classes that score highest are the ones that
// matter.
func (m *model) train(exs []example, vecs []svec, seed uint64) {
	if m.nClass < 2 {
		return
	}
	rng := rand.New(rand.NewPCG(seed, 0x5b))
	order := make([]int, len(exs))
	for i := range order {
		order[i] = i
	}
	s := newScratch(m.nClass, 0)
	inSet := make([]int32, m.nClass) // class -> index in set +1, this step
	var set []int32
	var prob []float64
	steps := trainEpochs * len(exs)
	step := 0
	for epoch := 0; epoch < trainEpochs; epoch++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			rate := trainRate * (1 - float64(step)/float64(steps))
			step++
			v, y := vecs[i], exs[i].class
			s.next()
			m.classScores(v, s)
			set = set[:0]
			set = append(set, y)
			if s.clsMark[y] != s.gen {
				s.clsScore[y] = 0
			}
			for _, c := range topClasses(s, trainNegs+1) {
				if c != y && len(set) <= trainNegs {
					set = append(set, c)
				}
			}
			// Softmax over the set.
			prob = prob[:0]
			mx := math.Inf(-1)
			for _, c := range set {
				mx = math.Max(mx, float64(s.clsScore[c]))
			}
			var z float64
			for _, c := range set {
				p := math.Exp(float64(s.clsScore[c]) - mx)
				prob = append(prob, p)
				z += p
			}
			for j, c := range set {
				g := prob[j] / z
				if c == y {
					g--
				}
				prob[j] = g
				inSet[c] = int32(j + 1)
			}
			shrink := float32(1 - rate*weightDecay)
			for j, id := range v.ids {
				x := v.vals[j]
				for p := m.clsStart[id]; p < m.clsStart[id+1]; p++ {
					c := m.clsClass[p]
					if k := inSet[c]; k > 0 {
						m.clsWeight[p] = m.clsWeight[p]*shrink - float32(rate*prob[k-1])*x
					}
				}
			}
			for _, c := range set {
				inSet[c] = 0
			}
		}
	}
}
