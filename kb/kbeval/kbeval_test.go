package kbeval

import (
	"path/filepath"
	"strings"
	"testing"
)

const smallTrain = `reset my password	password
forgot my password	password
change my password please	password
password reset link	password
i want a refund	refund
refund my order	refund
give me my money back	refund
return for refund	refund
when does my parcel arrive	shipping
how long is delivery	shipping
track my parcel	shipping
shipping time	shipping
what are your opening hours	hours
when are you open	hours
are you open on sunday	hours
business hours	hours
tell me a joke	oos
what is the weather	oos
`

const smallTest = `pasword reset	password
i would like a refund	refund
where is my parcel	shipping
open on saturday	hours
who won the match last night	oos
play some music	oos
`

func TestReadTSV(t *testing.T) {
	exs, err := ReadTSV(strings.NewReader("a b\tx\r\n\nc\ty\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(exs) != 2 || exs[0] != (Example{"a b", "x"}) || exs[1] != (Example{"c", "y"}) {
		t.Errorf("got %+v", exs)
	}
	if _, err := ReadTSV(strings.NewReader("no tab here\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("missing tab: err = %v", err)
	}
}

func TestSplitDeterministicAndStratified(t *testing.T) {
	exs, _ := ReadTSV(strings.NewReader(smallTrain))
	tr1, te1 := Split(exs, 0.25, 7)
	tr2, te2 := Split(exs, 0.25, 7)
	if len(tr1)+len(te1) != len(exs) || len(te1) != len(te2) || len(tr1) != len(tr2) {
		t.Fatalf("split sizes %d+%d of %d", len(tr1), len(te1), len(exs))
	}
	for i := range te1 {
		if te1[i] != te2[i] {
			t.Fatalf("split not deterministic")
		}
	}
	per := map[string]int{}
	for _, e := range te1 {
		per[e.Label]++
	}
	for _, l := range []string{"password", "refund", "shipping", "hours", "oos"} {
		if per[l] == 0 {
			t.Errorf("label %s has no test line", l)
		}
	}
	_, te3 := Split(exs, 0.25, 8)
	same := true
	for i := range te3 {
		same = same && i < len(te1) && te3[i] == te1[i]
	}
	if same {
		t.Errorf("seed does not change the split")
	}
}

func TestBuildKB(t *testing.T) {
	exs, _ := ReadTSV(strings.NewReader(smallTrain + "hi there\tchat\n"))
	docs, neg := BuildKB(exs, Config{OOSLabels: []string{"chat"}})
	if len(docs) != 4 || docs[0].ID != "password" || docs[0].Question != "reset my password" || len(docs[0].Variants) != 3 {
		t.Errorf("docs %+v", docs)
	}
	if len(neg) != 3 {
		t.Errorf("negatives %q, want the 2 oos lines and the chat line", neg)
	}
}

func TestRunSmall(t *testing.T) {
	train, _ := ReadTSV(strings.NewReader(smallTrain))
	test, _ := ReadTSV(strings.NewReader(smallTest))
	r, err := Run(train, test, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Entries != 4 || r.Variants != 16 || r.Negatives != 2 || r.Queries != 6 || r.InScope != 4 || r.OOS != 2 {
		t.Errorf("counts %+v", r)
	}
	if r.Top1 != 1 {
		t.Errorf("top-1 %.2f, want every in-scope query right", r.Top1)
	}
	if r.Top3 < r.Top1 || r.InScopeAccuracy > r.Top1 || r.Coverage < r.InScopeAccuracy {
		t.Errorf("inconsistent rates %+v", r)
	}
	if r.AnswerThreshold == 0 || r.SuggestThreshold == 0 {
		t.Errorf("default thresholds not applied: %+v", r)
	}
	// Thresholds of 1 decline everything: recall 1, coverage 0.
	r, err = Run(train, test, Config{AnswerThreshold: 1, SuggestThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.OOSRecall != 1 || r.Coverage != 0 || r.InScopeAccuracy != 0 {
		t.Errorf("threshold 1: %+v", r)
	}
	var b strings.Builder
	if err := r.WriteText(&b); err != nil || !strings.Contains(b.String(), "top-1 100.0%") {
		t.Errorf("text report %q (%v)", b.String(), err)
	}
}

// TestDatasets checks the matcher's targets on the real datasets (see
// docs/benchmarks.md). smp2017 runs whole; banking77 and clinc150 run on
// their first intents (every line of those intents, clinc150's
// out-of-scope lines all included) to keep the test under a minute on two
// cores: `switchboard kb eval` runs the full sets. A missing datasets
// directory fails the test.
func TestDatasets(t *testing.T) {
	dir, err := DatasetsDir()
	if err != nil {
		t.Fatalf("datasets: %v", err)
	}
	read := func(name string) []Example {
		exs, err := readFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return exs
	}
	firstLabels := func(exs []Example, n int) map[string]bool {
		keep := map[string]bool{}
		for _, e := range exs {
			if len(keep) < n && !strings.HasPrefix(e.Label, "oos") {
				keep[e.Label] = true
			}
		}
		return keep
	}
	subset := func(exs []Example, keep map[string]bool) []Example {
		var out []Example
		for _, e := range exs {
			if keep[e.Label] || strings.HasPrefix(e.Label, "oos") {
				out = append(out, e)
			}
		}
		return out
	}

	t.Run("smp2017", func(t *testing.T) {
		train, test := Split(read("smp2017/train.tsv"), 0.25, 1)
		r, err := Run(train, test, Config{OOSLabels: []string{"chat"}, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%+v", r)
		// The issue asks for the BM25 baseline 85.4 + 5.
		if r.Top1 < 0.904 {
			t.Errorf("top-1 %.3f < 0.904", r.Top1)
		}
	})
	t.Run("banking77", func(t *testing.T) {
		train := read("banking77/train.tsv")
		keep := firstLabels(train, 40)
		r, err := Run(subset(train, keep), subset(read("banking77/test.tsv"), keep), Config{Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%+v", r)
		if r.Top1 < 0.882 {
			t.Errorf("top-1 %.3f < 0.882", r.Top1)
		}
	})
	t.Run("clinc150", func(t *testing.T) {
		train := read("clinc150/train.tsv")
		keep := firstLabels(train, 50)
		r, err := Run(subset(train, keep), subset(read("clinc150/valid.tsv"), keep), Config{Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%+v", r)
		if r.Top1 < 0.904 {
			t.Errorf("top-1 %.3f < 0.904", r.Top1)
		}
		if r.OOSRecall < 0.8 || r.InScopeAccuracy < 0.8 {
			t.Errorf("oos recall %.3f, in-scope accuracy %.3f: want both >= 0.8", r.OOSRecall, r.InScopeAccuracy)
		}
	})
}

// TestBenchSmall runs Bench on a small KB cut from the datasets: the report
// is complete and the ranking finds the queries' intents far above chance
// (hundreds of intents).
func TestBenchSmall(t *testing.T) {
	dir, err := DatasetsDir()
	if err != nil {
		t.Fatalf("datasets: %v", err)
	}
	r, err := Bench(dir, 800, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	qs, err := Queries(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Entries != 800 || r.Texts < 1600 || r.Queries != len(qs) {
		t.Errorf("counts %+v, want 800 entries, at least 1600 texts, %d queries", r, len(qs))
	}
	if r.IntentTop1 < 0.3 || r.IntentTop1 > 1 {
		t.Errorf("intent top-1 %.3f, want well above chance", r.IntentTop1)
	}
	if r.LatencyP50 <= 0 || r.LatencyP99 < r.LatencyP50 || r.LatencyMax < r.LatencyP99 {
		t.Errorf("latencies %v %v %v out of order", r.LatencyP50, r.LatencyP99, r.LatencyMax)
	}
}
