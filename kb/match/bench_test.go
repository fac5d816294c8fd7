package match_test

import (
	"runtime"
	"sync"
	"testing"

	"github.com/switchboard-acd/switchboard/kb/kbeval"
	"github.com/switchboard-acd/switchboard/kb/match"
)

// large10k builds the 10,000-entry KB of kbeval.LargeKB once per test
// binary; the datasets are required (a missing directory fails).
var large10k = sync.OnceValues(func() (*match.Matcher, error) {
	dir, err := kbeval.DatasetsDir()
	if err != nil {
		return nil, err
	}
	docs, err := kbeval.LargeKB(dir, 10000)
	if err != nil {
		return nil, err
	}
	return match.Build(docs, match.Options{})
})

func largeQueries(b *testing.B) []string {
	dir, err := kbeval.DatasetsDir()
	if err != nil {
		b.Fatal(err)
	}
	qs, err := kbeval.Queries(dir)
	if err != nil {
		b.Fatal(err)
	}
	return qs
}

// BenchmarkMatch10k measures one Match on a 10,000-entry KB built from the
// datasets (see kbeval.LargeKB), cycling through unseen test queries.
func BenchmarkMatch10k(b *testing.B) {
	m, err := large10k()
	if err != nil {
		b.Fatal(err)
	}
	qs := largeQueries(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Match(qs[i%len(qs)], 3)
	}
}

// BenchmarkMatch10kParallel is BenchmarkMatch10k from GOMAXPROCS
// goroutines, the matcher being shared as in the server.
func BenchmarkMatch10kParallel(b *testing.B) {
	m, err := large10k()
	if err != nil {
		b.Fatal(err)
	}
	qs := largeQueries(b)
	b.ReportAllocs()
	b.ResetTimer()
	var mu sync.Mutex
	next := 0
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			q := qs[next%len(qs)]
			next++
			mu.Unlock()
			m.Match(q, 3)
		}
	})
	_ = runtime.NumCPU
}

// BenchmarkBuild10k measures building the 10,000-entry KB (classifier,
// calibration, bleve index in memory).
func BenchmarkBuild10k(b *testing.B) {
	dir, err := kbeval.DatasetsDir()
	if err != nil {
		b.Fatal(err)
	}
	docs, err := kbeval.LargeKB(dir, 10000)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, err := match.Build(docs, match.Options{})
		if err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
}
