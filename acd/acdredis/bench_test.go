package acdredis_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/acd/acdredis"
	"github.com/switchboard-acd/switchboard/internal/rdb"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// The target's shape: 2,000 agents in 50 groups, 3 skills each.
const (
	benchAgents      = 2000
	benchGroups      = 50
	benchSkills      = 3
	benchMaxSessions = 4
	benchTenant      = "t1"
)

func benchGroup(g int) string { return fmt.Sprintf("g%03d", g) }

// readyAgents makes benchAgents agents ready, each in benchSkills distinct
// groups spread evenly (agent i serves i, i+step, i+2*step mod groups).
func readyAgents(b *testing.B, c *rdb.Client) {
	b.Helper()
	q := acdredis.NewWithOptions(c, acdredis.Options{})
	ctx := b.Context()
	step := benchGroups / benchSkills
	for i := range benchAgents {
		a := acd.Agent{TenantID: benchTenant, ID: fmt.Sprintf("a%05d", i), MaxSessions: benchMaxSessions}
		for k := range benchSkills {
			a.Groups = append(a.Groups, benchGroup((i+k*step)%benchGroups))
		}
		if _, err := q.AgentReady(ctx, a); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnqueueMatchRelease is the routing hot path: one op enqueues a
// session into a random group and releases every assignment at once (so
// the agents stay free), which makes one match cost one enqueue and one
// release script. matches/s is the figure the 30,000/s target is about;
// switchboard bench acd measures the same with latencies and checks.
func BenchmarkEnqueueMatchRelease(b *testing.B) {
	for _, kind := range testenv.RedisKinds {
		b.Run(kind, func(b *testing.B) {
			c := testenv.Redis(b, kind)
			readyAgents(b, c)
			var seq atomic.Uint64
			for _, conns := range []int{0, 4} {
				name := "unbatched"
				if conns > 0 {
					name = "batched" + strconv.Itoa(conns)
				}
				b.Run(name, func(b *testing.B) {
					q := acdredis.NewWithOptions(c, acdredis.Options{PipelineConns: conns})
					defer q.Close()
					ctx := context.WithoutCancel(b.Context())
					var matches atomic.Int64
					b.SetParallelism(32) // 64 goroutines on 2 CPUs: Redis, not the client, is the limit
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
						for pb.Next() {
							res, err := q.Enqueue(ctx, acd.Item{TenantID: benchTenant,
								GroupID: benchGroup(rng.IntN(benchGroups)), SessionID: "s" + strconv.FormatUint(seq.Add(1), 36)})
							if err != nil {
								b.Error(err)
								return
							}
							todo := res.Assignments
							for len(todo) > 0 {
								a := todo[len(todo)-1]
								todo = todo[:len(todo)-1]
								matches.Add(1)
								more, err := q.Release(ctx, benchTenant, a.AgentID, a.Cost)
								if err != nil {
									b.Error(err)
									return
								}
								todo = append(todo, more...)
							}
						}
					})
					b.ReportMetric(float64(matches.Load())/b.Elapsed().Seconds(), "matches/s")
				})
			}
		})
	}
}

// BenchmarkWeightedShare measures how exactly the weighted strategy keeps
// its shares: one group, three agents of weights 60, 30 and 10, sessions
// enqueued one at a time and released at once. max-dev-% is the largest
// difference, in percentage points, between an agent's share of any 100
// consecutive assignments and its weight's share (stride scheduling keeps
// it near 1); total-dev-% is the same over the whole run. With capacity 1
// every assignment fills the agent, who leaves the available set and
// rejoins it on release; with capacity 100 nobody ever leaves.
func BenchmarkWeightedShare(b *testing.B) {
	weights := []int{60, 30, 10}
	const window = 100 // the weights' sum: exact shares fit every window
	for _, kind := range testenv.RedisKinds {
		for _, capacity := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/max%d", kind, capacity), func(b *testing.B) {
				c := testenv.Redis(b, kind)
				q := acdredis.NewWithOptions(c, acdredis.Options{})
				ctx := b.Context()
				if err := q.Configure(ctx, acd.Group{TenantID: benchTenant, ID: "w", Strategy: acd.Weighted}); err != nil {
					b.Fatal(err)
				}
				idx := map[string]int{}
				for i, w := range weights {
					id := fmt.Sprintf("a%d", i)
					idx[id] = i
					if _, err := q.AgentReady(ctx, acd.Agent{TenantID: benchTenant, ID: id, Groups: []string{"w"},
						MaxSessions: capacity, Weight: map[string]int{"w": w}}); err != nil {
						b.Fatal(err)
					}
				}
				seq := make([]int, 0, b.N)
				b.ResetTimer()
				for i := range b.N {
					res, err := q.Enqueue(ctx, acd.Item{TenantID: benchTenant, GroupID: "w", SessionID: "s" + strconv.Itoa(i)})
					if err != nil {
						b.Fatal(err)
					}
					if len(res.Assignments) != 1 {
						b.Fatalf("enqueue %d: %d assignments, want 1", i, len(res.Assignments))
					}
					a := res.Assignments[0]
					seq = append(seq, idx[a.AgentID])
					if _, err := q.Release(ctx, benchTenant, a.AgentID, a.Cost); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				windowDev, totalDev := shareDeviation(seq, weights, window)
				b.ReportMetric(windowDev, "max-dev-%")
				b.ReportMetric(totalDev, "total-dev-%")
			})
		}
	}
}

// shareDeviation returns, in percentage points, the largest deviation of
// an agent's share from its weight's over every window of n consecutive
// picks (over all picks when there are fewer), and over all picks.
func shareDeviation(seq, weights []int, n int) (windowDev, totalDev float64) {
	sum := 0
	for _, w := range weights {
		sum += w
	}
	dev := func(counts []int, total int) float64 {
		worst := 0.0
		for i, w := range weights {
			worst = math.Max(worst, math.Abs(float64(counts[i])/float64(total)-float64(w)/float64(sum))*100)
		}
		return worst
	}
	if len(seq) == 0 {
		return 0, 0
	}
	all := make([]int, len(weights))
	for _, a := range seq {
		all[a]++
	}
	totalDev = dev(all, len(seq))
	if len(seq) < n {
		return totalDev, totalDev
	}
	counts := make([]int, len(weights))
	for i, a := range seq {
		counts[a]++
		if i >= n {
			counts[seq[i-n]]--
		}
		if i >= n-1 {
			windowDev = math.Max(windowDev, dev(counts, n))
		}
	}
	return windowDev, totalDev
}
