package acdredis

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/rdb"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// These tests look at the routing state itself (lib.lua's key layout):
// what the matching trusts without reading it again, how drift in it is
// repaired, and state an earlier version left.

const stTenant = "t"

// stateQueue is a Queue on a fresh prefix of one kind of Redis, batched or
// not, on a simulated clock, with its client.
func stateQueue(t *testing.T, kind string, conns int) (*Queue, *rdb.Client, *clock.Fake) {
	t.Helper()
	c := testenv.Redis(t, kind)
	q := NewWithOptions(c, Options{PipelineConns: conns})
	t.Cleanup(q.Close)
	clk := clock.NewFake(time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC))
	q.Clock = clk
	return q, c, clk
}

// forEachState runs fn on every kind of Redis, batched and unbatched.
func forEachState(t *testing.T, fn func(t *testing.T, q *Queue, c *rdb.Client, clk *clock.Fake)) {
	for _, kind := range testenv.RedisKinds {
		for _, conns := range []int{0, 2} {
			t.Run(fmt.Sprintf("%s/conns%d", kind, conns), func(t *testing.T) {
				q, c, clk := stateQueue(t, kind, conns)
				fn(t, q, c, clk)
			})
		}
	}
}

func stMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func stEnqueue(t *testing.T, q *Queue, g, sid string) []acd.Assignment {
	t.Helper()
	e, err := q.Enqueue(t.Context(), acd.Item{TenantID: stTenant, GroupID: g, SessionID: sid})
	stMust(t, err)
	return e.Assignments
}

func stReady(t *testing.T, q *Queue, a acd.Agent) {
	t.Helper()
	a.TenantID = stTenant
	as, err := q.AgentReady(t.Context(), a)
	stMust(t, err)
	if len(as) != 0 {
		t.Fatalf("AgentReady(%s) assigned %v; nothing waits", a.ID, as)
	}
}

// routeEntry is group g's P:route entry ("" for none).
func routeEntry(t *testing.T, q *Queue, c *rdb.Client, g string) string {
	t.Helper()
	v, err := c.HGet(t.Context(), q.tenantPrefix(stTenant)+":route", g).Result()
	if err == redis.Nil {
		return ""
	}
	stMust(t, err)
	return v
}

func setRouteMark(t *testing.T, q *Queue, c *rdb.Client, g, mark string) {
	t.Helper()
	e := routeEntry(t, q, c, g)
	if e == "" {
		t.Fatalf("group %s has no P:route entry", g)
	}
	stMust(t, c.HSet(t.Context(), q.tenantPrefix(stTenant)+":route", g, mark+e[1:]).Err())
}

func agentsOf(as []acd.Assignment) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.SessionID+"->"+a.AgentID)
	}
	return out
}

// TestWaitingMark: P:route marks a line that holds sessions "1" and one
// seen empty "0", matches skip lines marked "0", and MatchGroup (the
// reconciler's pass) reads the line whatever the mark and corrects it.
func TestWaitingMark(t *testing.T) {
	forEachState(t, func(t *testing.T, q *Queue, c *rdb.Client, clk *clock.Fake) {
		ctx := t.Context()
		stMust(t, q.Configure(ctx, acd.Group{TenantID: stTenant, ID: "g"}))
		if e := routeEntry(t, q, c, "g"); e == "" || e[0] != '0' {
			t.Fatalf("entry of a configured empty group = %q, want it marked 0", e)
		}
		stReady(t, q, acd.Agent{ID: "a", Groups: []string{"g"}, MaxSessions: 1})
		if ok, err := q.Claim(ctx, stTenant, "a", 1); err != nil || !ok {
			t.Fatalf("Claim = %v, %v", ok, err)
		}
		if as := stEnqueue(t, q, "g", "s1"); len(as) != 0 {
			t.Fatalf("enqueue with the only agent full assigned %v", as)
		}
		if e := routeEntry(t, q, c, "g"); e[0] != '1' {
			t.Fatalf("entry with s1 waiting = %q, want it marked 1", e)
		}

		// Drift: the line holds s1 but is marked empty. A release trusts
		// the mark; the reconciler's MatchGroup does not.
		setRouteMark(t, q, c, "g", "0")
		as, err := q.Release(ctx, stTenant, "a", 1)
		stMust(t, err)
		if len(as) != 0 {
			t.Fatalf("Release with the line marked empty = %v, want nothing (the mark is trusted)", as)
		}
		as, err = q.MatchGroup(ctx, stTenant, "g", 10)
		stMust(t, err)
		if got := agentsOf(as); len(got) != 1 || got[0] != "s1->a" {
			t.Fatalf("MatchGroup = %v, want s1->a", got)
		}
		if e := routeEntry(t, q, c, "g"); e[0] != '0' {
			t.Errorf("entry after the line emptied = %q, want it marked 0 again", e)
		}

		// A mark left at 1 on an empty line costs one read, which clears it.
		setRouteMark(t, q, c, "g", "1")
		as, err = q.Release(ctx, stTenant, "a", 1)
		stMust(t, err)
		if len(as) != 0 {
			t.Fatalf("Release = %v, nothing waits", as)
		}
		if e := routeEntry(t, q, c, "g"); e[0] != '0' {
			t.Errorf("entry after a release read the empty line = %q, want it marked 0", e)
		}
	})
}

// TestAvailRepairedByConfigure: a ready agent with room missing from the
// avail set (drift) is not found by matches, and Configure (which the
// reconciler runs for every group on every pass) puts them back.
func TestAvailRepairedByConfigure(t *testing.T) {
	for _, strategy := range []acd.Strategy{acd.LongestIdle, acd.RoundRobin, acd.LeastBusy, acd.Weighted, acd.Skills} {
		t.Run(string(strategy), func(t *testing.T) {
			forEachState(t, func(t *testing.T, q *Queue, c *rdb.Client, clk *clock.Fake) {
				ctx := t.Context()
				g := acd.Group{TenantID: stTenant, ID: "g", Strategy: strategy}
				stMust(t, q.Configure(ctx, g))
				stReady(t, q, acd.Agent{ID: "a", Groups: []string{"g"}, MaxSessions: 2, Proficiency: map[string]int{"g": 5}})
				stMust(t, c.ZRem(ctx, groupKey(q.tenantPrefix(stTenant), "g", "avail"), "a").Err())
				if as := stEnqueue(t, q, "g", "s1"); len(as) != 0 {
					t.Fatalf("enqueue with the agent missing from the avail set = %v", as)
				}
				if ok, err := q.Remove(ctx, stTenant, "g", "s1"); err != nil || !ok {
					t.Fatalf("Remove(s1) = %v, %v", ok, err)
				}
				stMust(t, q.Configure(ctx, g))
				if got := agentsOf(stEnqueue(t, q, "g", "s2")); len(got) != 1 || got[0] != "s2->a" {
					t.Fatalf("enqueue after Configure = %v, want s2->a", got)
				}
			})
		})
	}
}

// TestRoundRobinAgentHash: an agent may be called "#", the name of the
// rotation counter an earlier version kept among the agents' ordinals;
// and a counter that version left is carried over, so new ordinals never
// repeat old ones.
func TestRoundRobinAgentHash(t *testing.T) {
	forEachState(t, func(t *testing.T, q *Queue, c *rdb.Client, clk *clock.Fake) {
		ctx := t.Context()
		ord := groupKey(q.tenantPrefix(stTenant), "g", "ord")
		// As an earlier version left it: two agents with ordinals 1 and 2,
		// counter "#" at 2.
		stMust(t, c.HSet(ctx, ord, "old1", 1, "old2", 2, "#", 2).Err())
		stMust(t, q.Configure(ctx, acd.Group{TenantID: stTenant, ID: "g", Strategy: acd.RoundRobin}))
		for _, id := range []string{"#", "b", "c"} {
			stReady(t, q, acd.Agent{ID: id, Groups: []string{"g"}, MaxSessions: 1})
			clk.Advance(time.Millisecond)
		}
		got, err := c.HMGet(ctx, ord, "#", "b", "c").Result()
		stMust(t, err)
		seen := map[string]bool{"1": true, "2": true}
		for i, v := range got {
			s, _ := v.(string)
			if s == "" || seen[s] {
				t.Fatalf("ordinals of #, b, c = %v: %d repeats one given before", got, i)
			}
			seen[s] = true
		}
		// The rotation serves all three in turn, twice.
		var order []string
		for i := range 6 {
			as := stEnqueue(t, q, "g", "s"+strconv.Itoa(i))
			if len(as) != 1 {
				t.Fatalf("enqueue %d = %v, want one assignment", i, as)
			}
			order = append(order, as[0].AgentID)
			if _, err := q.Release(ctx, stTenant, as[0].AgentID, 1); err != nil {
				t.Fatal(err)
			}
		}
		for i := 3; i < 6; i++ {
			if order[i] != order[i-3] {
				t.Fatalf("rotation %v does not repeat every three", order)
			}
		}
		if order[0] == order[1] || order[1] == order[2] || order[0] == order[2] {
			t.Fatalf("rotation %v skips an agent", order)
		}
	})
}

// TestEarlierVersionState: state written by the version before P:route
// (no entries; the longest-idle tail in each group's conf hash) still
// routes right: the old tail is honoured and waiting lines are found.
func TestEarlierVersionState(t *testing.T) {
	forEachState(t, func(t *testing.T, q *Queue, c *rdb.Client, clk *clock.Fake) {
		ctx := t.Context()
		p := q.tenantPrefix(stTenant)
		t0 := clk.Now()
		stMust(t, q.Configure(ctx, acd.Group{TenantID: stTenant, ID: "g"}))
		stReady(t, q, acd.Agent{ID: "a", Groups: []string{"g"}, MaxSessions: 1, IdleSince: t0.Add(-time.Minute)})
		stReady(t, q, acd.Agent{ID: "b", Groups: []string{"g"}, MaxSessions: 1, IdleSince: t0.Add(-time.Second)})
		// The earlier version had just given a a session and released it:
		// a's score is the group's tail, an hour ahead (a clock ahead on
		// another node), and the tail is in the conf hash.
		tail := t0.Add(time.Hour).UnixMicro()
		stMust(t, c.Del(ctx, p+":route").Err())
		stMust(t, c.HSet(ctx, groupKey(p, "g", "conf"), "t", tail).Err())
		stMust(t, c.ZAdd(ctx, groupKey(p, "g", "avail"), redis.Z{Score: float64(tail), Member: "a"}).Err())

		// b is first; once served, b goes after a, whose score is the old
		// tail: the next session goes to a.
		for i, want := range []string{"b", "a"} {
			as := stEnqueue(t, q, "g", "s"+strconv.Itoa(i))
			if len(as) != 1 || as[0].AgentID != want {
				t.Fatalf("enqueue %d = %v, want it to %s", i, agentsOf(as), want)
			}
			_, err := q.Release(ctx, stTenant, want, 1)
			stMust(t, err)
		}

		// A session waiting in a group without an entry is found by a
		// release.
		stMust(t, c.Del(ctx, p+":route").Err())
		if ok, err := q.Claim(ctx, stTenant, "a", 1); err != nil || !ok {
			t.Fatalf("Claim(a) = %v, %v", ok, err)
		}
		if ok, err := q.Claim(ctx, stTenant, "b", 1); err != nil || !ok {
			t.Fatalf("Claim(b) = %v, %v", ok, err)
		}
		if as := stEnqueue(t, q, "g", "w"); len(as) != 0 {
			t.Fatalf("enqueue with both agents full = %v", as)
		}
		stMust(t, c.Del(ctx, p+":route").Err())
		as, err := q.Release(ctx, stTenant, "b", 1)
		stMust(t, err)
		if got := agentsOf(as); len(got) != 1 || got[0] != "w->b" {
			t.Fatalf("release of b = %v, want w->b", got)
		}
	})
}

// TestProgramForms: on the real Redis the program runs as a function
// library, loaded again by the call that finds it missing (here, deleted
// while operations run); on the embedded Redis, which has no functions,
// as a script.
func TestProgramForms(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		for _, conns := range []int{0, 2} {
			t.Run(fmt.Sprintf("conns%d", conns), func(t *testing.T) {
				q, c, _ := stateQueue(t, "redis", conns)
				ctx := t.Context()
				stReady(t, q, acd.Agent{ID: "a", Groups: []string{"g"}, MaxSessions: 1000})
				if q.r.scripts.Load() {
					t.Fatal("the real Redis runs the program as a script; want a function")
				}
				// Another test may be deleting the library at the same time:
				// a missing library is fine, an error is not.
				if err := c.FunctionDelete(ctx, functionName).Err(); err != nil && !redis.HasErrorPrefix(err, "Library not found") {
					t.Fatal(err)
				}
				assigned := enqueueConcurrently(t, q, 8, 20)
				if assigned != 160 {
					t.Errorf("after FUNCTION DELETE: %d assigned, want 160", assigned)
				}
				libs, err := c.FunctionList(ctx, redis.FunctionListQuery{LibraryNamePattern: functionName}).Result()
				stMust(t, err)
				if len(libs) != 1 || q.r.scripts.Load() {
					t.Errorf("library loaded again: %d libraries named %s, scripts %v; want 1, false", len(libs), functionName, q.r.scripts.Load())
				}
			})
		}
	})
	t.Run("embedded", func(t *testing.T) {
		q, _, _ := stateQueue(t, "embedded", 2)
		stReady(t, q, acd.Agent{ID: "a", Groups: []string{"g"}, MaxSessions: 1000})
		if !q.r.scripts.Load() {
			t.Fatal("the embedded Redis has no functions; want the script form")
		}
		if n := enqueueConcurrently(t, q, 4, 10); n != 40 {
			t.Errorf("%d assigned, want 40", n)
		}
	})
}

// TestProgramFormsACL: a user the server denies FCALL and FUNCTION (an
// ACL for scripts only) gets the script form.
func TestProgramFormsACL(t *testing.T) {
	c := testenv.Redis(t, "redis")
	ctx := t.Context()
	user := testenv.UniqueName("sbacl")
	stMust(t, c.Do(ctx, "ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all", "-fcall", "-fcall_ro", "-function").Err())
	t.Cleanup(func() { c.Do(context.WithoutCancel(ctx), "ACL", "DELUSER", user) })
	opt, err := redis.ParseURL(testenv.RedisURL())
	stMust(t, err)
	opt.Username, opt.Password = user, "pw"
	uc := &rdb.Client{UniversalClient: redis.NewClient(opt), Prefix: c.Prefix}
	t.Cleanup(func() { uc.Close() })
	for _, conns := range []int{0, 2} {
		q := NewWithOptions(uc, Options{PipelineConns: conns})
		stReady(t, q, acd.Agent{ID: fmt.Sprintf("a%d", conns), Groups: []string{"g"}, MaxSessions: 1000})
		if !q.r.scripts.Load() {
			t.Errorf("conns %d: FCALL denied, yet the program does not run as a script", conns)
		}
		if n := enqueueConcurrently(t, q, 4, 10); n != 40 {
			t.Errorf("conns %d: %d assigned, want 40", conns, n)
		}
		q.Close()
	}
}

// enqueueConcurrently enqueues workers×each sessions from workers
// goroutines and returns how many were assigned.
func enqueueConcurrently(t *testing.T, q *Queue, workers, each int) int {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		n  int
	)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				e, err := q.Enqueue(ctx, acd.Item{TenantID: stTenant, GroupID: "g", SessionID: fmt.Sprintf("c%d-%d", w, i)})
				if err != nil {
					t.Errorf("Enqueue: %v", err)
					return
				}
				mu.Lock()
				n += len(e.Assignments)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return n
}
