// This file builds the large KB the latency target is measured on. No real
// 10,000-entry KB is public, so one is made from the datasets' training
// lines: each intent's lines are cut into groups of a few paraphrases, and
// every group becomes an entry. That gives entries with real, varied
// wording in English and Chinese, and many near-duplicate entries (one
// intent spread over dozens of entries), which is the hard case for the
// classifier and the usual state of a large, old KB.

package kbeval

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/switchboard-acd/switchboard/kb/match"
)

// LargeSources are the training files LargeKB draws from, relative to the
// datasets directory, and the query files Queries reads.
var (
	LargeSources = []string{"banking77/train.tsv", "clinc150/train.tsv", "smp2017/train.tsv"}
	QuerySources = []string{"banking77/test.tsv", "clinc150/valid.tsv"}
)

// LargeKB returns n entries made from the datasets in dir: each label's
// lines (out-of-scope ones included, as a KB would hold small talk) are
// shuffled and cut into groups of two and three lines in turn; the first
// line of a group is the question and the rest its variants. It fails when
// the datasets hold fewer than n groups.
func LargeKB(dir string, n int) ([]match.Doc, error) {
	var lines []Example
	for _, s := range LargeSources {
		exs, err := readFile(filepath.Join(dir, s))
		if err != nil {
			return nil, err
		}
		lines = append(lines, exs...)
	}
	byLabel := make(map[string][]string)
	var labels []string
	for _, e := range lines {
		if _, ok := byLabel[e.Label]; !ok {
			labels = append(labels, e.Label)
		}
		byLabel[e.Label] = append(byLabel[e.Label], e.Text)
	}
	rng := rand.New(rand.NewPCG(42, 42))
	var docs []match.Doc
	for _, l := range labels {
		texts := byLabel[l]
		rng.Shuffle(len(texts), func(i, j int) { texts[i], texts[j] = texts[j], texts[i] })
		size := 2
		for g := 0; g+size <= len(texts); g += size {
			docs = append(docs, match.Doc{
				ID:       fmt.Sprintf("%s-%d", l, g),
				Question: texts[g],
				Variants: append([]string(nil), texts[g+1:g+size]...),
				Category: l,
			})
			size = 5 - size
		}
	}
	if len(docs) < n {
		return nil, fmt.Errorf("datasets give %d entries, want %d", len(docs), n)
	}
	rng.Shuffle(len(docs), func(i, j int) { docs[i], docs[j] = docs[j], docs[i] })
	return docs[:n], nil
}

// Queries returns the test lines of the datasets in dir (none of them is in
// LargeKB), for latency runs.
func Queries(dir string) ([]string, error) {
	out, _, err := queryExamples(dir)
	return out, err
}

// queryExamples returns the test lines of QuerySources and their labels.
func queryExamples(dir string) (texts, labels []string, err error) {
	for _, s := range QuerySources {
		exs, err := readFile(filepath.Join(dir, s))
		if err != nil {
			return nil, nil, err
		}
		for _, e := range exs {
			texts = append(texts, e.Text)
			labels = append(labels, e.Label)
		}
	}
	return texts, labels, nil
}

func readFile(path string) ([]Example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	exs, err := ReadTSV(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return exs, nil
}

// DatasetsDir finds the shared datasets directory: $SWITCHBOARD_DATASETS
// when set, else ../shared/datasets next to the repository root, found by
// walking up from the working directory to go.mod (tests run in their
// package's directory).
func DatasetsDir() (string, error) {
	if d := os.Getenv("SWITCHBOARD_DATASETS"); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			ds := filepath.Join(filepath.Dir(d), "shared", "datasets")
			if _, err := os.Stat(ds); err != nil {
				return "", fmt.Errorf("datasets directory: %w", err)
			}
			return ds, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
	}
}
