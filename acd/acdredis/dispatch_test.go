package acdredis

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// TestDispatchIsolatesOperations runs several operations in one program
// call, as the batcher does: each sees what the ones before it did, and
// one that fails (here on a key of the wrong type) fails alone. The call
// goes through the router (a function on the real Redis) and as a script.
func TestDispatchIsolatesOperations(t *testing.T) {
	for _, kind := range testenv.RedisKinds {
		for _, form := range []string{"router", "script"} {
			t.Run(kind+"/"+form, func(t *testing.T) { testDispatchIsolates(t, kind, form) })
		}
	}
}

func testDispatchIsolates(t *testing.T, kind, form string) {
	c := testenv.Redis(t, kind)
	q := NewWithOptions(c, Options{})
	ctx := t.Context()
	if _, err := q.AgentReady(ctx, acd.Agent{TenantID: "t", ID: "a", Groups: []string{"g", "bad"}, MaxSessions: 2}); err != nil {
		t.Fatal(err)
	}
	p := q.tenantPrefix("t")
	if err := c.Set(ctx, groupKey(p, "bad", "wait"), "not a sorted set", 0).Err(); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMicro()
	calls := []*call{
		{prefix: p, op: opEnqueue, now: now, args: []any{"g", "s1", now / 1000, 0, 1, "", "", 16}},
		{prefix: p, op: opEnqueue, now: now, args: []any{"bad", "s2", now / 1000, 0, 1, "", "", 16}},
		{prefix: p, op: opEnqueue, now: now, args: []any{"g", "s3", now / 1000, 0, 1, "", "", 16}},
		{prefix: p, op: opEnqueue, now: now, args: []any{"g", "s4", now / 1000, 0, 1, "", "", 16}},
	}
	keys, argv := dispatchArgs(calls)
	var (
		res any
		err error
	)
	if form == "router" {
		res, err = q.r.run(ctx, keys, argv)
	} else {
		res, err = scriptRoute.Run(ctx, c, keys, argv...).Result()
	}
	split(calls, res, err)

	var agentOf []string
	for i, cl := range calls {
		if i == 1 {
			var re redis.Error
			if cl.err == nil || !errors.As(cl.err, &re) || !errs.Is(redisErr("test", cl.err), errs.Internal) {
				t.Errorf("enqueue into the broken group: err = %v, want an internal error reply", cl.err)
			}
			continue
		}
		if cl.err != nil {
			t.Fatalf("operation %d: %v", i, cl.err)
		}
		r, err := parseReply(cl.res)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range r.matches {
			agentOf = append(agentOf, m.session+"->"+m.agent)
		}
		if i == 3 && (r.code != codeAdded || r.a != 1 || r.b != 1 || len(r.matches) != 0) {
			t.Errorf("s4 after the agent is full: %+v, want added at 1 of 1", r)
		}
	}
	// The agent's capacity of 2 went to s1 and s3, in order.
	if len(agentOf) != 2 || agentOf[0] != "s1->a" || agentOf[1] != "s3->a" {
		t.Errorf("assignments %v, want s1->a, s3->a", agentOf)
	}
}

// TestBatcherSplitsTenants sends operations of two tenants at once through
// the batcher: each goes to its own tenant's program call and gets its
// own reply.
func TestBatcherSplitsTenants(t *testing.T) {
	for _, kind := range testenv.RedisKinds {
		t.Run(kind, func(t *testing.T) {
			q := NewWithOptions(testenv.Redis(t, kind), Options{PipelineConns: 1})
			t.Cleanup(q.Close)
			ctx := context.WithoutCancel(t.Context())
			for _, tenant := range []string{"t1", "t2"} {
				if _, err := q.AgentReady(ctx, acd.Agent{TenantID: tenant, ID: "a-" + tenant, Groups: []string{"g"}, MaxSessions: 1000}); err != nil {
					t.Fatal(err)
				}
			}
			type result struct {
				tenant string
				e      acd.Enqueued
				err    error
			}
			out := make(chan result, 200)
			for i := range 200 {
				tenant := []string{"t1", "t2"}[i%2]
				go func() {
					e, err := q.Enqueue(ctx, acd.Item{TenantID: tenant, GroupID: "g", SessionID: fmt.Sprintf("s%d", i)})
					out <- result{tenant, e, err}
				}()
			}
			for range 200 {
				r := <-out
				if r.err != nil {
					t.Fatal(r.err)
				}
				if len(r.e.Assignments) != 1 || r.e.Assignments[0].AgentID != "a-"+r.tenant || r.e.Assignments[0].TenantID != r.tenant {
					t.Errorf("enqueue of tenant %s: %+v, want one assignment to a-%s", r.tenant, r.e, r.tenant)
				}
			}
		})
	}
}
