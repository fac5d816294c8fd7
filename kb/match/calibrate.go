// This file holds the two small models fitted at build time on held-out
// data from the KB itself: the ranker, which weighs the classifier score,
// the nearest-variant cosine and the bleve score into one probability per
// candidate, and the calibrator, which maps a candidate's evidence to the
// probability that it is the right answer. The calibrator is what makes a
// threshold mean the same thing on every KB.

package match

import (
	"math"
)

// Ranker features of a candidate.
const (
	rkClassifier = iota // classifier logit
	rkCosine            // best cosine to one of the entry's variants
	rkLexical           // bleve score relative to the best bleve hit
	rkN
)

// defaultRanker is used when a KB is too small to fit one: the weights
// fitted on the development sets, rounded.
var defaultRanker = [rkN]float64{1, 4, 1}

// Calibrator features of a candidate.
const (
	clBias    = iota
	clProb    // ranker probability
	clMargin  // probability minus the best other candidate's
	clCosine  // best cosine to one of the entry's variants
	clLogit   // classifier logit
	clLexical // relative bleve score
	clKnown   // fraction of the message's words the KB knows
	clShort   // 1/(1+tokens): very short messages are ambiguous
	clN
)

// defaultCalibrator is used when a KB is too small to fit one.
var defaultCalibrator = [clN]float64{-4, 3, 2, 3, 0, 0.5, 1.5, 0}

// Fitting constants, the same for every KB.
const (
	rankL2         = 0.001 // pull toward defaultRanker, per example weight
	calL2          = 0.01  // pull toward defaultCalibrator, per example weight
	minCalibration = 30    // fewer held-out queries fit nothing
	newtonIters    = 50    // Newton steps at most, ranker and calibrator: both converge in a few
)

// candFeat is the evidence for one candidate of one query.
type candFeat struct {
	class int32
	rk    [rkN]float64
	prob  float64
}

// rankQuery is a held-out query with its candidates and the right class
// (-1 when no entry is right: a held-out entry or a negative example).
type rankQuery struct {
	cands []candFeat
	truth int32
	known float64
	short float64
}

// softmaxRank fills c.prob from the ranker weights.
func softmaxRank(w [rkN]float64, cs []candFeat) {
	mx := math.Inf(-1)
	for i := range cs {
		z := 0.0
		for j := range w {
			z += w[j] * cs[i].rk[j]
		}
		cs[i].prob = z
		mx = math.Max(mx, z)
	}
	var sum float64
	for i := range cs {
		cs[i].prob = math.Exp(cs[i].prob - mx)
		sum += cs[i].prob
	}
	for i := range cs {
		cs[i].prob /= sum
	}
}

// fitRanker fits the ranker weights on the in-scope held-out queries whose
// right entry is a candidate: the maximum of the softmax likelihood with an
// L2 prior toward defaultRanker, by projected Newton steps (three weights,
// so the Hessian is tiny and the fit converges; plain gradient descent
// stopped far from the optimum). Every weight is kept at zero or above:
// each feature is evidence for a candidate by construction, and a negative
// weight fitted on held-out data that does not resemble the messages (a KB
// of near-duplicate entries, where the held-out variant's own entry is
// rarely first) would turn that evidence upside down.
func fitRanker(qs []rankQuery) [rkN]float64 {
	w := defaultRanker
	var use []rankQuery
	for _, q := range qs {
		if q.truth < 0 {
			continue
		}
		for _, c := range q.cands {
			if c.class == q.truth {
				use = append(use, q)
				break
			}
		}
	}
	if len(use) < minCalibration {
		return w
	}
	n := float64(len(use))
	loss := func(w [rkN]float64) float64 {
		var l float64
		for _, q := range use {
			softmaxRank(w, q.cands)
			for _, c := range q.cands {
				if c.class == q.truth {
					l -= math.Log(math.Max(c.prob, 1e-300))
				}
			}
		}
		l /= n
		for j := range w {
			d := w[j] - defaultRanker[j]
			l += rankL2 / 2 * d * d
		}
		return l
	}
	cur := loss(w)
	for it := 0; it < newtonIters; it++ {
		g := make([]float64, rkN)
		h := make([][]float64, rkN)
		for j := range h {
			h[j] = make([]float64, rkN)
		}
		for _, q := range use {
			softmaxRank(w, q.cands)
			var mean [rkN]float64
			for _, c := range q.cands {
				y := 0.0
				if c.class == q.truth {
					y = 1
				}
				for j := range mean {
					g[j] += (c.prob - y) * c.rk[j]
					mean[j] += c.prob * c.rk[j]
				}
			}
			// The softmax Hessian: the covariance of the features under
			// the candidates' probabilities.
			for _, c := range q.cands {
				for j := range mean {
					for k := range mean {
						h[j][k] += c.prob * (c.rk[j] - mean[j]) * (c.rk[k] - mean[k])
					}
				}
			}
		}
		for j := range g {
			g[j] = g[j]/n + rankL2*(w[j]-defaultRanker[j])
			for k := range g {
				h[j][k] /= n
			}
			h[j][j] += rankL2
		}
		// A weight at zero that the gradient pushes below zero stays out
		// of the step.
		for j := range g {
			if w[j] <= 0 && g[j] > 0 {
				for k := range g {
					h[j][k], h[k][j] = 0, 0
				}
				h[j][j], g[j] = 1, 0
			}
		}
		step, ok := solve(h, g)
		if !ok {
			break
		}
		improved := false
		for t := 1.0; t > 1e-4; t /= 2 {
			var next [rkN]float64
			for j := range w {
				next[j] = math.Max(0, w[j]-t*step[j])
			}
			if l := loss(next); l < cur {
				w, cur, improved = next, l, true
				break
			}
		}
		if !improved {
			break
		}
	}
	return w
}

// calFeatures returns the calibrator features of candidate i of cs (whose
// probabilities are set).
func calFeatures(cs []candFeat, i int, known, short float64) [clN]float64 {
	other := 0.0
	for j := range cs {
		if j != i && cs[j].prob > other {
			other = cs[j].prob
		}
	}
	c := cs[i]
	return [clN]float64{
		clBias:    1,
		clProb:    c.prob,
		clMargin:  c.prob - other,
		clCosine:  c.rk[rkCosine],
		clLogit:   c.rk[rkClassifier],
		clLexical: c.rk[rkLexical],
		clKnown:   known,
		clShort:   short,
	}
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

func calibrate(w [clN]float64, f [clN]float64) float64 {
	z := 0.0
	for j := range w {
		z += w[j] * f[j]
	}
	return sigmoid(z)
}

// calRows is how many top candidates of a held-out query train the
// calibrator: the top one decides answering, the next two are the other
// "did you mean" choices.
const calRows = 3

// fitCalibrator fits a logistic regression from candidate evidence to "this
// candidate is the right entry" on held-out queries, ranked by w. Queries
// no entry answers (held-out entries, negatives) teach it to decline.
func fitCalibrator(w [rkN]float64, qs []rankQuery) [clN]float64 {
	theta := defaultCalibrator
	if len(qs) < minCalibration {
		return theta
	}
	type row struct {
		f [clN]float64
		y float64
	}
	var rows []row
	for _, q := range qs {
		softmaxRank(w, q.cands)
		order := byProb(q.cands)
		for r := 0; r < len(order) && r < calRows; r++ {
			i := order[r]
			y := 0.0
			if q.cands[i].class == q.truth {
				y = 1
			}
			rows = append(rows, row{calFeatures(q.cands, i, q.known, q.short), y})
		}
	}
	// Newton's method with step halving on the L2-regularised log loss
	// (a handful of features, so the Hessian is tiny). The prior pulls
	// toward defaultCalibrator, which keeps nearly separable data finite.
	n := float64(len(rows))
	loss := func(th [clN]float64) float64 {
		var l float64
		for _, r := range rows {
			z := 0.0
			for j := range th {
				z += th[j] * r.f[j]
			}
			// log(1+e^z) - y z, computed stably.
			l += math.Max(z, 0) + math.Log1p(math.Exp(-math.Abs(z))) - r.y*z
		}
		l /= n
		for j := range th {
			d := th[j] - defaultCalibrator[j]
			l += calL2 / 2 * d * d
		}
		return l
	}
	cur := loss(theta)
	for it := 0; it < newtonIters; it++ {
		g := make([]float64, clN)
		h := make([][]float64, clN)
		for j := range h {
			h[j] = make([]float64, clN)
		}
		for _, r := range rows {
			p := calibrate(theta, r.f)
			for j := range g {
				g[j] += (p - r.y) * r.f[j]
				for k := range g {
					h[j][k] += p * (1 - p) * r.f[j] * r.f[k]
				}
			}
		}
		for j := range g {
			g[j] = g[j]/n + calL2*(theta[j]-defaultCalibrator[j])
			for k := range g {
				h[j][k] /= n
			}
			h[j][j] += calL2
		}
		step, ok := solve(h, g)
		if !ok {
			break
		}
		improved := false
		for t := 1.0; t > 1e-4; t /= 2 {
			var next [clN]float64
			for j := range theta {
				next[j] = theta[j] - t*step[j]
			}
			if l := loss(next); l < cur {
				theta, cur, improved = next, l, true
				break
			}
		}
		if !improved || cur < 0 {
			break
		}
	}
	return theta
}

// solve solves h x = g for a small dense system by Gaussian elimination
// with partial pivoting; h and g are overwritten.
func solve(h [][]float64, g []float64) ([]float64, bool) {
	n := len(g)
	x := make([]float64, n)
	for c := 0; c < n; c++ {
		p := c
		for r := c + 1; r < n; r++ {
			if math.Abs(h[r][c]) > math.Abs(h[p][c]) {
				p = r
			}
		}
		if math.Abs(h[p][c]) < 1e-12 {
			return x, false
		}
		h[c], h[p] = h[p], h[c]
		g[c], g[p] = g[p], g[c]
		for r := c + 1; r < n; r++ {
			f := h[r][c] / h[c][c]
			for k := c; k < n; k++ {
				h[r][k] -= f * h[c][k]
			}
			g[r] -= f * g[c]
		}
	}
	for c := n - 1; c >= 0; c-- {
		s := g[c]
		for k := c + 1; k < n; k++ {
			s -= h[c][k] * x[k]
		}
		x[c] = s / h[c][c]
	}
	return x, true
}

// byProb returns candidate indices by probability, best first (ties by class).
func byProb(cs []candFeat) []int {
	idx := make([]int, len(cs))
	for i := range idx {
		idx[i] = i
	}
	for i := 1; i < len(idx); i++ { // insertion sort: a few dozen candidates
		for j := i; j > 0 && less(cs[idx[j]], cs[idx[j-1]]); j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
	return idx
}

func less(a, b candFeat) bool {
	if a.prob != b.prob {
		return a.prob > b.prob
	}
	return a.class < b.class
}
