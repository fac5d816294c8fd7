// This file measures the matcher at scale: build time, memory and match
// latency on the 10,000-entry KB of LargeKB.

package kbeval

import (
	"cmp"
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"

	"github.com/switchboard-acd/switchboard/kb/match"
)

// BenchReport is the outcome of Bench.
type BenchReport struct {
	Entries      int     `json:"entries"`
	Texts        int     `json:"texts"`
	Features     int     `json:"features"`
	BuildSeconds float64 `json:"build_seconds"`
	// HeapMB is the live heap the matcher holds after a GC (bleve index in
	// memory included).
	HeapMB     float64       `json:"heap_mb"`
	Queries    int           `json:"queries"`
	LatencyP50 time.Duration `json:"latency_p50_ns"`
	LatencyP99 time.Duration `json:"latency_p99_ns"`
	LatencyMax time.Duration `json:"latency_max_ns"`
}

// Bench builds a matcher of n entries from the datasets in dir (LargeKB)
// and times Match, one call at a time, over every query of Queries, rounds
// times.
func Bench(dir string, n, rounds int) (BenchReport, error) {
	docs, err := LargeKB(dir, n)
	if err != nil {
		return BenchReport{}, err
	}
	qs, err := Queries(dir)
	if err != nil {
		return BenchReport{}, err
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	m, err := match.Build(docs, match.Options{})
	if err != nil {
		return BenchReport{}, err
	}
	defer m.Close()
	r := BenchReport{BuildSeconds: time.Since(start).Seconds()}
	runtime.GC()
	runtime.ReadMemStats(&after)
	r.HeapMB = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / (1 << 20)
	st := m.Stats()
	r.Entries, r.Texts, r.Features = st.Entries, st.Texts, st.Features
	for _, q := range qs[:min(200, len(qs))] { // warm up
		m.Match(q, 3)
	}
	lat := make([]time.Duration, 0, rounds*len(qs))
	for range rounds {
		for _, q := range qs {
			t0 := time.Now()
			m.Match(q, 3)
			lat = append(lat, time.Since(t0))
		}
	}
	r.Queries = len(lat)
	if len(lat) > 0 {
		slices.SortFunc(lat, cmp.Compare)
		r.LatencyP50 = lat[len(lat)/2]
		r.LatencyP99 = lat[min(len(lat)-1, len(lat)*99/100)]
		r.LatencyMax = lat[len(lat)-1]
	}
	runtime.KeepAlive(m)
	return r, nil
}

// WriteText prints r for people.
func (r BenchReport) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, `entries %d, texts %d, features %d
build %.2fs, heap %.0f MB
match (%d queries, one at a time): p50 %s, p99 %s, max %s
`, r.Entries, r.Texts, r.Features, r.BuildSeconds, r.HeapMB, r.Queries, r.LatencyP50, r.LatencyP99, r.LatencyMax)
	return err
}
