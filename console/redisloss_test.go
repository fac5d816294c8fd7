package console_test

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/internal/apptest"
	"github.com/switchboard-acd/switchboard/session"
)

// TestRoutingSurvivesRedisLoss wipes the node's routing state in Redis
// (FLUSHALL on the embedded Redis; every key under the node's prefix on the
// shared real one, which other tests use at the same time) and checks that
// the reconciler rebuilds queues and agent loads from the database and
// routing carries on: the waiting customer is still waiting, the busy
// agent is still full, and when the agent frees up the customer gets them.
func TestRoutingSurvivesRedisLoss(t *testing.T) {
	for _, backend := range apptest.Backends {
		t.Run(backend, func(t *testing.T) {
			n := apptest.Start(t, backend)
			ctx := t.Context()
			const v1 = "/api/v1"
			admin := n.Login(t, "admin")
			alice := n.Login(t, "alice")
			var me struct {
				ID string `json:"id"`
			}
			n.Do(t, "GET", v1+"/me", alice, nil).JSON(t, &me)
			n.Do(t, "PATCH", v1+"/agents/"+me.ID, admin, map[string]any{"max_sessions": 1})
			n.Do(t, "PUT", v1+"/me/state", alice, map[string]any{"state": "ready"})

			ask := func(cid string) string {
				tok := n.Visitor(t, nil)
				if r := n.Do(t, "POST", v1+"/webchat/messages", tok, map[string]any{"cid": cid, "text": "human please"}); r.Status != 201 {
					t.Fatalf("send: %d %s", r.Status, r.Body)
				}
				return tok
			}
			store := n.App.Engine.Store()
			only := func(st session.State) string {
				ss, err := store.SessionList(ctx, "demo", session.SessionFilter{States: []session.State{st}, Limit: 10})
				if err != nil || len(ss) != 1 {
					t.Fatalf("%s sessions: %d (%v), want 1", st, len(ss), err)
				}
				return ss[0].ID
			}
			ask("a")
			firstID := only(session.StateActive)
			ask("b")
			secondID := only(session.StateQueued)

			// Redis loses everything.
			rc := n.App.Redis
			if backend == "embedded" {
				if err := rc.FlushAll(ctx).Err(); err != nil {
					t.Fatal(err)
				}
			} else {
				keys, err := rc.Keys(ctx, rc.Prefix+":*").Result()
				if err != nil {
					t.Fatal(err)
				}
				if len(keys) > 0 {
					if err := rc.Del(ctx, keys...).Err(); err != nil {
						t.Fatal(err)
					}
				}
			}
			if pos, _, _ := n.App.Queue.Position(ctx, "demo", "support", secondID); pos != 0 {
				t.Fatalf("queue survived the wipe at position %d", pos)
			}
			if err := n.App.Reconcile(context.WithoutCancel(ctx)); err != nil {
				t.Fatal(err)
			}
			if n.App.RoutingRepairs()["rebuild"] != 1 {
				t.Fatalf("repairs %v, want one rebuild", n.App.RoutingRepairs())
			}
			if pos, _, err := n.App.Queue.Position(ctx, "demo", "support", secondID); err != nil || pos != 1 {
				t.Fatalf("after rebuild the second customer is at %d (%v), want 1", pos, err)
			}
			al, err := n.App.Queue.AgentLoad(ctx, "demo", me.ID)
			if err != nil || !al.Known || !al.Ready || al.Load != 1 || al.Max != 1 {
				t.Fatalf("alice after rebuild: %+v %v; want ready with load 1 of 1", al, err)
			}

			// Drift: routing believes alice holds more than she does. The first
			// pass only notes it (it could be a change in flight); the second
			// repairs it.
			if err := rc.HSet(ctx, rc.Prefix+":{demo}:agent:"+me.ID, "load", 3).Err(); err != nil {
				t.Fatal(err)
			}
			for pass, want := range []int{3, 1} {
				if err := n.App.Reconcile(context.WithoutCancel(ctx)); err != nil {
					t.Fatal(err)
				}
				if al, _ := n.App.Queue.AgentLoad(ctx, "demo", me.ID); (pass == 0 && al.Load != 3) || (pass == 1 && al.Load != want) {
					t.Fatalf("pass %d: alice's load %d, want %d", pass+1, al.Load, want)
				}
			}

			// Routing carries on: alice finishes the first, gets the second.
			if r := n.Do(t, "POST", v1+"/sessions/"+firstID+"/close", alice, nil); r.Status != 200 {
				t.Fatalf("close: %d %s", r.Status, r.Body)
			}
			if r := n.Do(t, "POST", v1+"/sessions/"+firstID+"/wrapup", alice, map[string]any{"reason_codes": []string{"other"}}); r.Status != 200 {
				t.Fatalf("wrapup: %d %s", r.Status, r.Body)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				if se, err := store.SessionGet(ctx, "demo", secondID); err == nil && se.State == session.StateActive {
					break
				}
				if time.Now().After(deadline) {
					al, _ := n.App.Queue.AgentLoad(ctx, "demo", me.ID)
					pos, _, _ := n.App.Queue.Position(ctx, "demo", "support", secondID)
					se, _ := store.SessionGet(ctx, "demo", secondID)
					evs, _ := store.EventList(ctx, "demo", secondID)
					t.Fatalf("the second customer never reached alice after the rebuild: alice %+v, second at %d: %+v %+v", al, pos, se, evs)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
