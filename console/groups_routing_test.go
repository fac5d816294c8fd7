package console_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/switchboard-acd/switchboard/internal/apptest"
)

// TestGroupRoutingSettings sets every routing setting of a group through
// the API; the conformance hook checks each answer against the spec.
func TestGroupRoutingSettings(t *testing.T) {
	for _, backend := range apptest.Backends {
		t.Run(backend, func(t *testing.T) {
			n := apptest.Start(t, backend)
			const v1 = "/api/v1"
			admin := n.Login(t, "admin")
			type group map[string]any
			decode := func(r apptest.Response) group {
				t.Helper()
				var g group
				if err := json.Unmarshal(r.Body, &g); err != nil {
					t.Fatal(err)
				}
				return g
			}
			// Defaults.
			g := decode(want(t, n, 201, "POST", v1+"/groups", admin, map[string]any{"name": "Defaults"}))
			for k, v := range map[string]any{"strategy": "longest_idle", "fallback_strategy": "longest_idle", "weight": 1.0,
				"priority_step_sec": 60.0, "sticky_wait_sec": 30.0, "ring_step_sec": 15.0, "offer_timeout_sec": 0.0,
				"max_missed_offers": 0.0, "max_wait_sec": 0.0, "overflow_action": "", "overflow_group_id": "", "hours": nil,
				"off_hours_message": "", "busy_message": ""} {
				if g[k] != v {
					t.Errorf("default %s = %v, want %v", k, g[k], v)
				}
			}
			defID := g["id"].(string)

			hours := map[string]any{"time_zone": "Asia/Shanghai", "weekly": map[string]any{
				"mon": []any{map[string]any{"start": "13:00", "end": "18:00"}, map[string]any{"start": "09:00", "end": "12:00"}},
				"sun": []any{}}, "holidays": []any{"2026-10-01"}}
			body := map[string]any{"name": "Everything", "strategy": "fifo", "fallback_strategy": "least_busy", "weight": 2.5,
				"priority_step_sec": 90, "max_wait_sec": 300, "overflow_action": "group", "overflow_group_id": defID,
				"sticky_wait_sec": 10, "ring_step_sec": 20, "offer_timeout_sec": 30, "max_missed_offers": 2, "hours": hours,
				"off_hours_message": "closed", "busy_message": "busy"}
			g = decode(want(t, n, 201, "POST", v1+"/groups", admin, body))
			if g["strategy"] != "longest_idle" || g["weight"] != 2.5 || g["overflow_group_id"] != defID {
				t.Errorf("created %v", g)
			}
			b, _ := json.Marshal(g["hours"])
			if want := `{"holidays":["2026-10-01"],"time_zone":"Asia/Shanghai","weekly":{"mon":[{"end":"12:00","start":"09:00"},{"end":"18:00","start":"13:00"}]}}`; string(b) != want {
				t.Errorf("hours = %s, want %s", b, want)
			}
			gid := g["id"].(string)
			got := decode(want(t, n, 200, "GET", v1+"/groups", admin, nil))
			_ = got

			// Changes and refusals.
			g = decode(want(t, n, 200, "PATCH", v1+"/groups/"+gid, admin, map[string]any{"overflow_action": "message", "hours": nil, "strategy": "sticky"}))
			if g["overflow_group_id"] != "" || g["hours"] != nil || g["strategy"] != "sticky" {
				t.Errorf("after patch %v", g)
			}
			for _, c := range []struct {
				body map[string]any
				msg  string
			}{
				{map[string]any{"weight": 0}, "weight: "},
				{map[string]any{"weight": 100.5}, "weight: "},
				{map[string]any{"fallback_strategy": "sticky"}, "fallback_strategy: "},
				{map[string]any{"strategy": "random"}, "strategy: "},
				{map[string]any{"overflow_action": "group"}, "overflow_group_id: required"},
				{map[string]any{"overflow_action": "group", "overflow_group_id": gid}, "overflow_group_id: must not be the group itself"},
				{map[string]any{"overflow_action": "group", "overflow_group_id": "ghost"}, "overflow_group_id: no group ghost"},
				{map[string]any{"overflow_action": "drop"}, "overflow_action: "},
				{map[string]any{"offer_timeout_sec": 3}, "offer_timeout_sec: "},
				{map[string]any{"ring_step_sec": 0}, "ring_step_sec: "},
				{map[string]any{"hours": map[string]any{"time_zone": "Mars/Base"}}, "hours.time_zone: "},
				{map[string]any{"hours": "9-5"}, "hours"},
				{map[string]any{"busy_message": strings.Repeat("x", 1001)}, "busy_message: "},
			} {
				r := want(t, n, 400, "PATCH", v1+"/groups/"+gid, admin, c.body)
				var e struct {
					Error struct{ Message string } `json:"error"`
				}
				r.JSON(t, &e)
				if !strings.HasPrefix(e.Error.Message, c.msg) {
					t.Errorf("%v: message %q, want prefix %q", c.body, e.Error.Message, c.msg)
				}
			}

			// Skill weights.
			a := decode(want(t, n, 201, "POST", v1+"/agents", admin, map[string]any{"username": "wendy", "password": "long enough",
				"skills": []any{map[string]any{"group_id": gid, "proficiency": 3, "weight": 40}, map[string]any{"group_id": defID, "proficiency": 2}}}))
			b, _ = json.Marshal(a["skills"])
			t.Logf("skills %s", b)
			if !strings.Contains(string(b), `"weight":40`) || !strings.Contains(string(b), `"weight":1`) {
				t.Errorf("skills %s", b)
			}
			aid := a["id"].(string)
			a = decode(want(t, n, 200, "PATCH", v1+"/agents/"+aid, admin, map[string]any{"skills": []any{map[string]any{"group_id": gid, "proficiency": 3}}}))
			b, _ = json.Marshal(a["skills"])
			if !strings.Contains(string(b), `"weight":1`) {
				t.Errorf("skills %s", b)
			}
			want(t, n, 400, "PATCH", v1+"/agents/"+aid, admin, map[string]any{"skills": []any{map[string]any{"group_id": gid, "proficiency": 3, "weight": 101}}})
			want(t, n, 200, "GET", v1+"/channel-accounts", admin, nil)
		})
	}
}
