package acdredis_test

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/switchboard-acd/switchboard/acd"
	"github.com/switchboard-acd/switchboard/acd/acdredis"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

func TestZZWeightedDebug(t *testing.T) {
	for _, capacity := range []int{1} {
		c := testenv.Redis(t, "redis")
		q := acdredis.NewWithOptions(c, acdredis.Options{})
		ctx := t.Context()
		q.Configure(ctx, acd.Group{TenantID: "t1", ID: "w", Strategy: acd.Weighted})
		for i, w := range []int{60, 30, 10} {
			q.AgentReady(ctx, acd.Agent{TenantID: "t1", ID: fmt.Sprintf("a%d", i), Groups: []string{"w"}, MaxSessions: capacity, Weight: map[string]int{"w": w}})
		}
		seq := ""
		counts := map[string]int{}
		for i := range 10000 {
			if i%1000 == 999 { t.Logf("max %d at %d: %v", capacity, i+1, counts) }
			res, _ := q.Enqueue(ctx, acd.Item{TenantID: "t1", GroupID: "w", SessionID: "s" + strconv.Itoa(i)})
			a := res.Assignments[0]
			if i < 40 {
				seq += a.AgentID[1:]
			}
			counts[a.AgentID]++
			q.Release(ctx, "t1", a.AgentID, 1)
		}
		pass := func(id string) string { v, _ := c.HGet(ctx, c.Prefix+":{t1}:agent:"+id, "pass:w").Result(); return v }
		t.Logf("max %d: first 40 %s counts %v passes %s %s %s", capacity, seq, counts, pass("a0"), pass("a1"), pass("a2"))
	}
}
