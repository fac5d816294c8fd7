// Package kbeval measures the FAQ matcher on labelled query sets: it builds
// a KB from training lines (one entry per label, its lines as variants),
// runs every test line through the matcher and reports ranking accuracy,
// what the bot would do at the tenant thresholds (answer, suggest, hand
// off) and match latency. It is what `switchboard kb eval` prints and what
// the dataset tests assert, so a change to the matcher is judged by
// numbers, not by examples.
package kbeval

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-acd/switchboard/kb"
	"github.com/switchboard-acd/switchboard/kb/match"
)

// Example is one labelled query.
type Example struct {
	Text  string
	Label string
}

// ReadTSV reads `text<TAB>label` lines (UTF-8, no header). Blank lines are
// skipped; a line without a tab is an error naming its number.
func ReadTSV(r io.Reader) ([]Example, error) {
	var out []Example
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		i := strings.LastIndexByte(line, '\t')
		if i < 0 {
			return nil, fmt.Errorf("line %d: no tab between text and label", n)
		}
		out = append(out, Example{Text: line[:i], Label: strings.TrimSpace(line[i+1:])})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// Split holds out frac of each label's lines (at least one when a label has
// two or more) as a test set, deterministically for a seed, so a set with
// only a training file can still be measured on lines the KB never saw.
func Split(exs []Example, frac float64, seed uint64) (train, test []Example) {
	byLabel := make(map[string][]int)
	var labels []string
	for i, e := range exs {
		if _, ok := byLabel[e.Label]; !ok {
			labels = append(labels, e.Label)
		}
		byLabel[e.Label] = append(byLabel[e.Label], i)
	}
	rng := rand.New(rand.NewPCG(seed, 0x5171))
	isTest := make([]bool, len(exs))
	for _, l := range labels {
		idx := byLabel[l]
		n := int(frac*float64(len(idx)) + 0.5)
		if n == 0 && len(idx) >= 2 && frac > 0 {
			n = 1
		}
		if n >= len(idx) {
			n = len(idx) - 1
		}
		perm := rng.Perm(len(idx))
		for _, p := range perm[:n] {
			isTest[idx[p]] = true
		}
	}
	for i, e := range exs {
		if isTest[i] {
			test = append(test, e)
		} else {
			train = append(train, e)
		}
	}
	return train, test
}

// Config says how to run an evaluation.
type Config struct {
	// AnswerThreshold and SuggestThreshold are the bot's thresholds
	// (kb.Settings); zero values take kb.DefaultSettings.
	AnswerThreshold  float64
	SuggestThreshold float64
	// OOSLabels are labels, besides those starting with "oos", whose lines
	// are out of scope (smp2017 calls its small talk "chat").
	OOSLabels []string
	// NoNegatives leaves out-of-scope training lines out of the KB instead
	// of passing them to the matcher as negatives, to show the matcher
	// declines without them.
	NoNegatives bool
	// Seed is passed to match.Options.
	Seed uint64
}

func (c Config) isOOS(label string) bool {
	return strings.HasPrefix(label, "oos") || slices.Contains(c.OOSLabels, label)
}

// Report is the outcome of one evaluation. Rates are fractions (0..1).
type Report struct {
	Entries   int `json:"entries"`
	Variants  int `json:"variants"`  // training texts, questions included
	Negatives int `json:"negatives"` // out-of-scope training lines given to the matcher
	Queries   int `json:"queries"`
	InScope   int `json:"in_scope"`
	OOS       int `json:"oos"`

	BuildSeconds float64 `json:"build_seconds"`

	AnswerThreshold  float64 `json:"answer_threshold"`
	SuggestThreshold float64 `json:"suggest_threshold"`

	// Ranking, in-scope queries, thresholds ignored.
	Top1 float64 `json:"top1"`
	Top3 float64 `json:"top3"`

	// At the answer threshold, over every query: precision is the share of
	// answers that were right (an answered out-of-scope query is wrong);
	// coverage the share of in-scope queries answered.
	AnsweredPrecision float64 `json:"answered_precision"`
	Coverage          float64 `json:"coverage"`
	// InScopeAccuracy is in-scope queries answered with the right entry,
	// over in-scope queries.
	InScopeAccuracy float64 `json:"in_scope_accuracy"`
	// Declined means confidence below the answer threshold.
	OOSRecall    float64 `json:"oos_recall"`
	OOSPrecision float64 `json:"oos_precision"`
	// DidYouMean is the share of queries between the thresholds (the bot
	// offers choices); DidYouMeanHit the share of those in-scope queries
	// whose right entry is among the three choices.
	DidYouMean    float64 `json:"did_you_mean"`
	DidYouMeanHit float64 `json:"did_you_mean_hit"`
	// Handoff is the share of queries below the suggest threshold.
	Handoff float64 `json:"handoff"`

	LatencyP50 time.Duration `json:"latency_p50_ns"`
	LatencyP99 time.Duration `json:"latency_p99_ns"`
	LatencyMax time.Duration `json:"latency_max_ns"`
}

// BuildKB turns training lines into matcher docs, one per in-scope label in
// order of first appearance (the label's first line is the question, the
// rest variants), and the out-of-scope lines into negatives.
func BuildKB(train []Example, cfg Config) (docs []match.Doc, negatives []string) {
	at := make(map[string]int)
	for _, e := range train {
		if cfg.isOOS(e.Label) {
			negatives = append(negatives, e.Text)
			continue
		}
		i, ok := at[e.Label]
		if !ok {
			i = len(docs)
			at[e.Label] = i
			docs = append(docs, match.Doc{ID: e.Label, Question: e.Text})
			continue
		}
		docs[i].Variants = append(docs[i].Variants, e.Text)
	}
	return docs, negatives
}

// Run builds a matcher from train and measures it on test.
func Run(train, test []Example, cfg Config) (Report, error) {
	def := kb.DefaultSettings("")
	if cfg.AnswerThreshold == 0 {
		cfg.AnswerThreshold = def.AnswerThreshold
	}
	if cfg.SuggestThreshold == 0 {
		cfg.SuggestThreshold = def.SuggestThreshold
	}
	docs, negatives := BuildKB(train, cfg)
	if len(docs) == 0 {
		return Report{}, fmt.Errorf("no in-scope training lines")
	}
	r := Report{Entries: len(docs), AnswerThreshold: cfg.AnswerThreshold, SuggestThreshold: cfg.SuggestThreshold}
	for _, d := range docs {
		r.Variants += 1 + len(d.Variants)
	}
	opts := match.Options{Seed: cfg.Seed}
	if !cfg.NoNegatives {
		opts.Negatives = negatives
		r.Negatives = len(negatives)
	}
	start := time.Now()
	m, err := match.Build(docs, opts)
	if err != nil {
		return Report{}, err
	}
	defer m.Close()
	r.BuildSeconds = time.Since(start).Seconds()

	var top1, top3, answered, answeredRight, declined, declinedOOS, oosDeclined, dym, dymInScope, dymHit, handoff, answeredIn int
	lat := make([]time.Duration, 0, len(test))
	for _, q := range test {
		t0 := time.Now()
		res := m.Match(q.Text, 3)
		lat = append(lat, time.Since(t0))
		r.Queries++
		oos := cfg.isOOS(q.Label)
		if oos {
			r.OOS++
		} else {
			r.InScope++
		}
		right := !oos && len(res.Candidates) > 0 && res.Candidates[0].ID == q.Label
		inTop3 := false
		for _, c := range res.Candidates {
			if !oos && c.ID == q.Label {
				inTop3 = true
			}
		}
		if right {
			top1++
		}
		if inTop3 {
			top3++
		}
		switch {
		case res.Confidence >= cfg.AnswerThreshold:
			answered++
			if right {
				answeredRight++
			}
			if !oos {
				answeredIn++
			}
		default:
			declined++
			if oos {
				declinedOOS++
				oosDeclined++
			}
			if res.Confidence >= cfg.SuggestThreshold {
				dym++
				if !oos {
					dymInScope++
					if inTop3 {
						dymHit++
					}
				}
			} else {
				handoff++
			}
		}
	}
	r.Top1 = ratio(top1, r.InScope)
	r.Top3 = ratio(top3, r.InScope)
	r.AnsweredPrecision = ratio(answeredRight, answered)
	r.Coverage = ratio(answeredIn, r.InScope)
	r.InScopeAccuracy = ratio(answeredRight, r.InScope)
	r.OOSRecall = ratio(oosDeclined, r.OOS)
	r.OOSPrecision = ratio(declinedOOS, declined)
	r.DidYouMean = ratio(dym, r.Queries)
	r.DidYouMeanHit = ratio(dymHit, dymInScope)
	r.Handoff = ratio(handoff, r.Queries)
	if len(lat) > 0 {
		slices.SortFunc(lat, cmp.Compare)
		r.LatencyP50 = lat[len(lat)/2]
		r.LatencyP99 = lat[min(len(lat)-1, len(lat)*99/100)]
		r.LatencyMax = lat[len(lat)-1]
	}
	return r, nil
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// WriteText prints r for people.
func (r Report) WriteText(w io.Writer) error {
	pct := func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }
	_, err := fmt.Fprintf(w, `entries %d, variants %d, negatives %d, queries %d (in scope %d, out of scope %d)
build %.2fs
thresholds: answer %.2f, suggest %.2f
ranking (in scope, no threshold): top-1 %s, top-3 %s
answered: precision %s, coverage %s (in-scope answered / in scope)
in-scope accuracy at threshold: %s
out of scope (declined = below answer): recall %s, precision %s
did you mean: %s of queries (right entry among choices: %s), hand off: %s
latency: p50 %s, p99 %s, max %s
`, r.Entries, r.Variants, r.Negatives, r.Queries, r.InScope, r.OOS, r.BuildSeconds,
		r.AnswerThreshold, r.SuggestThreshold, pct(r.Top1), pct(r.Top3),
		pct(r.AnsweredPrecision), pct(r.Coverage), pct(r.InScopeAccuracy),
		pct(r.OOSRecall), pct(r.OOSPrecision), pct(r.DidYouMean), pct(r.DidYouMeanHit), pct(r.Handoff),
		r.LatencyP50, r.LatencyP99, r.LatencyMax)
	return err
}
