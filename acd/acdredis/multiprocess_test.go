package acdredis_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/acd/acdredis"
	"github.com/switchboard-acd/switchboard/internal/rdb"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// The multi-process test re-executes the test binary; these variables tell
// a child which one it is, which key prefix to share and when to start.
const (
	childEnv  = "ACDREDIS_MULTIPROCESS_CHILD"
	prefixEnv = "ACDREDIS_MULTIPROCESS_PREFIX"
	startEnv  = "ACDREDIS_MULTIPROCESS_START"
)

const (
	mpTenant    = "mp"
	mpChildren  = 3
	mpAgents    = 9
	mpCapacity  = 8
	mpWorkers   = 4  // goroutines per child
	mpSessions  = 40 // per goroutine
	mpReadyAtOp = 8  // when a child readies its agents
)

var mpGroups = []acd.Group{
	{TenantID: mpTenant, ID: "g0", Strategy: acd.LongestIdle},
	{TenantID: mpTenant, ID: "g1", Strategy: acd.RoundRobin},
	{TenantID: mpTenant, ID: "g2", Strategy: acd.LeastBusy},
}

func mpAgent(i int) acd.Agent {
	return acd.Agent{TenantID: mpTenant, ID: fmt.Sprintf("m%d", i), MaxSessions: mpCapacity,
		Groups: []string{mpGroups[i%3].ID, mpGroups[(i+1)%3].ID}}
}

// TestMultiProcess routes one tenant from three processes at once on the
// real Redis (the embedded one cannot be shared between processes). Each
// child enqueues sessions of its own and matches groups and agents shared
// by all; each agent is made ready once, by one child, and no session is
// ever released, so the sum of the costs assigned to an agent across all
// processes is the agent's load and must stay within capacity.
func TestMultiProcess(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		multiProcessChild(t)
		return
	}
	c := testenv.Redis(t, "redis")
	q := acdredis.New(c)
	t.Cleanup(q.Close)
	ctx := t.Context()
	for _, g := range mpGroups {
		must(t, q.Configure(ctx, g))
	}

	start := time.Now().Add(500 * time.Millisecond)
	outs := make([]bytes.Buffer, mpChildren)
	errOuts := make([]bytes.Buffer, mpChildren)
	cmds := make([]*exec.Cmd, mpChildren)
	for j := range cmds {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestMultiProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+strconv.Itoa(j), prefixEnv+"="+c.Prefix,
			startEnv+"="+strconv.FormatInt(start.UnixMilli(), 10))
		cmd.Stdout, cmd.Stderr = &outs[j], &errOuts[j]
		must(t, cmd.Start())
		cmds[j] = cmd
	}
	for j, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v\nstdout:\n%s\nstderr:\n%s", j, err, outs[j].String(), errOuts[j].String())
		}
	}

	type enq struct {
		group string
		cost  int
	}
	enqueued := map[string]enq{}
	assignedTo := map[string]string{}
	agentCost := map[string]int{}
	var lines, nAssigned int
	for j := range outs {
		sc := bufio.NewScanner(&outs[j])
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 5 && f[0] == "ENQ":
				lines++
				cost, _ := strconv.Atoi(f[3])
				if f[4] != "added" {
					t.Errorf("child %d: session %s not added: %s", j, f[1], f[4])
				}
				enqueued[f[1]] = enq{f[2], cost}
			case len(f) == 5 && f[0] == "ASSIGN":
				lines++
				nAssigned++
				session, agent := f[1], f[3]
				cost, _ := strconv.Atoi(f[4])
				if prev, dup := assignedTo[session]; dup {
					t.Errorf("session %s assigned twice: to %s and to %s", session, prev, agent)
				}
				assignedTo[session] = agent
				agentCost[agent] += cost
			}
		}
	}
	if want := mpChildren * mpWorkers * mpSessions; len(enqueued) != want {
		t.Fatalf("children reported %d enqueued sessions, want %d", len(enqueued), want)
	}
	for s, a := range assignedTo {
		if _, ok := enqueued[s]; !ok {
			t.Errorf("session %s assigned to %s was never enqueued", s, a)
		}
	}
	waiting := map[string]bool{}
	for _, g := range mpGroups {
		ids, err := q.Waiting(ctx, mpTenant, g.ID, 100000)
		must(t, err)
		for _, id := range ids {
			waiting[id] = true
		}
	}
	for s := range enqueued {
		_, isAssigned := assignedTo[s]
		if isAssigned == waiting[s] {
			t.Errorf("session %s: assigned %v, waiting %v; want exactly one", s, isAssigned, waiting[s])
		}
	}
	for i := range mpAgents {
		id := mpAgent(i).ID
		if agentCost[id] > mpCapacity {
			t.Errorf("agent %s was given %d units across processes, capacity %d", id, agentCost[id], mpCapacity)
		}
		l, err := q.AgentLoad(ctx, mpTenant, id)
		must(t, err)
		if l.Load != agentCost[id] {
			t.Errorf("agent %s has load %d, the children were given %d", id, l.Load, agentCost[id])
		}
	}
	t.Logf("%d processes: %d sessions enqueued, %d assigned, loads %v", mpChildren, len(enqueued), nAssigned, agentCost)
}

// multiProcessChild is one child process: mpWorkers goroutines enqueue
// sessions and match groups and agents; one of them makes the child's
// agents ready part way. Every outcome is a line on stdout.
func multiProcessChild(t *testing.T) {
	j, err := strconv.Atoi(os.Getenv(childEnv))
	must(t, err)
	startMs, err := strconv.ParseInt(os.Getenv(startEnv), 10, 64)
	must(t, err)
	ctx := t.Context()
	openCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := rdb.Open(openCtx, testenv.RedisURL(), os.Getenv(prefixEnv))
	must(t, err)
	defer c.Close()
	q := acdredis.New(c)
	defer q.Close()

	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	report := func(as []acd.Assignment) {
		mu.Lock()
		defer mu.Unlock()
		for _, x := range as {
			fmt.Fprintf(out, "ASSIGN %s %s %s %d\n", x.SessionID, x.GroupID, x.AgentID, x.Cost)
		}
	}
	time.Sleep(time.Until(time.UnixMilli(startMs))) // a start line shared by the processes

	var wg sync.WaitGroup
	for w := range mpWorkers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(j), uint64(w)))
			for n := range mpSessions {
				if w == 0 && n == mpReadyAtOp {
					for i := j; i < mpAgents; i += mpChildren {
						as, err := q.AgentReady(ctx, mpAgent(i))
						if err != nil {
							t.Errorf("AgentReady: %v", err)
							return
						}
						report(as)
					}
				}
				g := mpGroups[rng.IntN(len(mpGroups))].ID
				it := acd.Item{TenantID: mpTenant, GroupID: g, SessionID: fmt.Sprintf("c%d-w%d-%02d", j, w, n), Cost: 1 + rng.IntN(3)/2}
				e, err := q.Enqueue(ctx, it)
				if err != nil {
					t.Errorf("Enqueue: %v", err)
					return
				}
				added := "added"
				if !e.Added {
					added = "not-added"
				}
				mu.Lock()
				fmt.Fprintf(out, "ENQ %s %s %d %s\n", it.SessionID, g, it.Cost, added)
				mu.Unlock()
				report(e.Assignments)

				as, err := q.MatchGroup(ctx, mpTenant, mpGroups[rng.IntN(len(mpGroups))].ID, 1+rng.IntN(3))
				report(as)
				if err != nil {
					t.Errorf("MatchGroup: %v", err)
					return
				}
				as, err = q.MatchAgent(ctx, mpTenant, mpAgent(rng.IntN(mpAgents)).ID)
				report(as)
				if err != nil {
					t.Errorf("MatchAgent: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	must(t, out.Flush())
}
