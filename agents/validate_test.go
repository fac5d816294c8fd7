package agents_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

func TestValidateInput(t *testing.T) {
	cases := []struct {
		name string
		err  error
		ok   bool
	}{
		{"username ok", agents.ValidateUsername("alice.b-1_x"), true},
		{"username 2 chars", agents.ValidateUsername("ab"), true},
		{"username 64 chars", agents.ValidateUsername(strings.Repeat("a", 64)), true},
		{"username 1 char", agents.ValidateUsername("a"), false},
		{"username 65 chars", agents.ValidateUsername(strings.Repeat("a", 65)), false},
		{"username upper case", agents.ValidateUsername("Alice"), false},
		{"username space", agents.ValidateUsername("al ice"), false},
		{"username unicode", agents.ValidateUsername("アリス"), false},
		{"password 8", agents.ValidatePassword("12345678"), true},
		{"password 8 runes", agents.ValidatePassword("密码密码密码密码"), true},
		{"password 7", agents.ValidatePassword("1234567"), false},
		{"password 72 bytes", agents.ValidatePassword(strings.Repeat("x", 72)), true},
		{"password 73 bytes", agents.ValidatePassword(strings.Repeat("x", 73)), false},
		{"max sessions 1", agents.ValidateMaxSessions(1), true},
		{"max sessions 50", agents.ValidateMaxSessions(50), true},
		{"max sessions 0", agents.ValidateMaxSessions(0), false},
		{"max sessions 51", agents.ValidateMaxSessions(51), false},
		{"skills ok", agents.ValidateSkills([]agents.Skill{{GroupID: "a", Proficiency: 1, Weight: 1}, {GroupID: "b", Proficiency: 5, Weight: 100}}), true},
		{"skills twice", agents.ValidateSkills([]agents.Skill{{GroupID: "a", Proficiency: 1, Weight: 1}, {GroupID: "a", Proficiency: 2, Weight: 1}}), false},
		{"skills proficiency 0", agents.ValidateSkills([]agents.Skill{{GroupID: "a", Proficiency: 0, Weight: 1}}), false},
		{"skills proficiency 6", agents.ValidateSkills([]agents.Skill{{GroupID: "a", Proficiency: 6, Weight: 1}}), false},
		{"skills empty group", agents.ValidateSkills([]agents.Skill{{GroupID: "", Proficiency: 3, Weight: 1}}), false},
		{"skills weight 0", agents.ValidateSkills([]agents.Skill{{GroupID: "a", Proficiency: 3}}), false},
		{"skills weight 101", agents.ValidateSkills([]agents.Skill{{GroupID: "a", Proficiency: 3, Weight: 101}}), false},
		{"skills weight 0 normalized", agents.ValidateSkills(agents.NormalizeSkills([]agents.Skill{{GroupID: "a", Proficiency: 3}})), true},
	}
	for _, c := range cases {
		if c.ok && c.err != nil {
			t.Errorf("%s: unexpected error %v", c.name, c.err)
		}
		if !c.ok && !errs.Is(c.err, errs.Invalid) {
			t.Errorf("%s: error = %v, want code invalid", c.name, c.err)
		}
	}
}

func TestNormalizeSkills(t *testing.T) {
	in := []agents.Skill{{GroupID: "a", Proficiency: 3}, {GroupID: "b", Proficiency: 2, Weight: 40}}
	got := agents.NormalizeSkills(in)
	want := []agents.Skill{{GroupID: "a", Proficiency: 3, Weight: agents.DefaultSkillWeight}, {GroupID: "b", Proficiency: 2, Weight: 40}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("NormalizeSkills (-want +got):\n%s", d)
	}
	if in[0].Weight != 0 {
		t.Errorf("NormalizeSkills changed its input")
	}
	if agents.NormalizeSkills(nil) != nil {
		t.Errorf("NormalizeSkills(nil) is not nil")
	}
}

func TestStrategies(t *testing.T) {
	want := []string{"longest_idle", "round_robin", "least_busy", "weighted", "sticky", "skills"}
	if d := cmp.Diff(want, agents.Strategies()); d != "" {
		t.Errorf("Strategies (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"longest_idle", "round_robin", "least_busy", "weighted", "skills"}, agents.FallbackStrategies()); d != "" {
		t.Errorf("FallbackStrategies (-want +got):\n%s", d)
	}
	// The returned slices are copies.
	agents.Strategies()[0] = "x"
	if agents.Strategies()[0] != "longest_idle" {
		t.Errorf("Strategies returned its own list")
	}
	for in, want := range map[string]string{"fifo": "longest_idle", "longest_idle": "longest_idle", "skills": "skills", "nope": "nope"} {
		if got := agents.CanonicalStrategy(in); got != want {
			t.Errorf("CanonicalStrategy(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGroupValidate(t *testing.T) {
	base := agents.NewGroup("t1", "g1", "Sales")
	if err := base.Validate(); err != nil {
		t.Fatalf("NewGroup is invalid: %v", err)
	}
	const hours = `{"time_zone":"Asia/Shanghai","weekly":{"mon":[{"start":"09:00","end":"18:00"}]}}`
	cases := []struct {
		name   string
		mutate func(g *agents.Group)
		msg    string // "" for valid; otherwise the expected message
	}{
		{"every strategy", func(g *agents.Group) { g.Strategy = "weighted" }, ""},
		{"fifo is an input alias only", func(g *agents.Group) { g.Strategy = "fifo" }, `strategy: unknown strategy "fifo"`},
		{"unknown strategy", func(g *agents.Group) { g.Strategy = "random" }, `strategy: unknown strategy "random"`},

		{"fallback skills", func(g *agents.Group) { g.FallbackStrategy = "skills" }, ""},
		{"fallback sticky", func(g *agents.Group) { g.FallbackStrategy = "sticky" }, `fallback_strategy: must be a strategy other than sticky, not "sticky"`},
		{"fallback empty", func(g *agents.Group) { g.FallbackStrategy = "" }, `fallback_strategy: must be a strategy other than sticky, not ""`},
		{"fallback fifo", func(g *agents.Group) { g.FallbackStrategy = "fifo" }, `fallback_strategy: must be a strategy other than sticky, not "fifo"`},

		{"weight 0.01", func(g *agents.Group) { g.Weight = 0.01 }, ""},
		{"weight 100", func(g *agents.Group) { g.Weight = 100 }, ""},
		{"weight 0", func(g *agents.Group) { g.Weight = 0 }, "weight: must be more than 0 and at most 100"},
		{"weight negative", func(g *agents.Group) { g.Weight = -2 }, "weight: must be more than 0 and at most 100"},
		{"weight 100.01", func(g *agents.Group) { g.Weight = 100.01 }, "weight: must be more than 0 and at most 100"},
		{"weight NaN", func(g *agents.Group) { g.Weight = math.NaN() }, "weight: must be more than 0 and at most 100"},

		{"priority step 0", func(g *agents.Group) { g.PriorityStepSec = 0 }, ""},
		{"priority step a day", func(g *agents.Group) { g.PriorityStepSec = 86400 }, ""},
		{"priority step negative", func(g *agents.Group) { g.PriorityStepSec = -1 }, "priority_step_sec: must be between 0 and 86400 (0 turns aging off)"},
		{"priority step over a day", func(g *agents.Group) { g.PriorityStepSec = 86401 }, "priority_step_sec: must be between 0 and 86400 (0 turns aging off)"},

		{"max wait a day", func(g *agents.Group) { g.MaxWaitSec = 86400 }, ""},
		{"max wait negative", func(g *agents.Group) { g.MaxWaitSec = -1 }, "max_wait_sec: must be between 0 and 86400 (0 means no limit)"},
		{"max wait over a day", func(g *agents.Group) { g.MaxWaitSec = 86401 }, "max_wait_sec: must be between 0 and 86400 (0 means no limit)"},

		{"overflow message", func(g *agents.Group) { g.OverflowAction = agents.OverflowWithMessage }, ""},
		{"overflow group", func(g *agents.Group) { g.OverflowAction, g.OverflowGroupID = agents.OverflowToGroup, "g2" }, ""},
		{"overflow unknown", func(g *agents.Group) { g.OverflowAction = "drop" }, `overflow_action: must be "group", "message" or empty, not "drop"`},
		{"overflow group missing", func(g *agents.Group) { g.OverflowAction = agents.OverflowToGroup }, `overflow_group_id: required when overflow_action is "group"`},
		{"overflow group itself", func(g *agents.Group) { g.OverflowAction, g.OverflowGroupID = agents.OverflowToGroup, "g1" }, "overflow_group_id: must not be the group itself"},
		{"overflow group bad id", func(g *agents.Group) { g.OverflowAction, g.OverflowGroupID = agents.OverflowToGroup, "a b" }, "overflow_group_id: must be 1-64 characters of A-Z, a-z, 0-9, '_', '.', '-'"},
		{"overflow group without action", func(g *agents.Group) { g.OverflowGroupID = "g2" }, `overflow_group_id: must be empty unless overflow_action is "group"`},
		{"overflow group with message", func(g *agents.Group) { g.OverflowAction, g.OverflowGroupID = agents.OverflowWithMessage, "g2" }, `overflow_group_id: must be empty unless overflow_action is "group"`},

		{"sticky wait 0", func(g *agents.Group) { g.StickyWaitSec = 0 }, ""},
		{"sticky wait an hour", func(g *agents.Group) { g.StickyWaitSec = 3600 }, ""},
		{"sticky wait over an hour", func(g *agents.Group) { g.StickyWaitSec = 3601 }, "sticky_wait_sec: must be between 0 and 3600"},
		{"sticky wait negative", func(g *agents.Group) { g.StickyWaitSec = -1 }, "sticky_wait_sec: must be between 0 and 3600"},

		{"ring step 1", func(g *agents.Group) { g.RingStepSec = 1 }, ""},
		{"ring step an hour", func(g *agents.Group) { g.RingStepSec = 3600 }, ""},
		{"ring step 0", func(g *agents.Group) { g.RingStepSec = 0 }, "ring_step_sec: must be between 1 and 3600"},
		{"ring step over an hour", func(g *agents.Group) { g.RingStepSec = 3601 }, "ring_step_sec: must be between 1 and 3600"},

		{"offer timeout 0", func(g *agents.Group) { g.OfferTimeoutSec = 0 }, ""},
		{"offer timeout 5", func(g *agents.Group) { g.OfferTimeoutSec = 5 }, ""},
		{"offer timeout 600", func(g *agents.Group) { g.OfferTimeoutSec = 600 }, ""},
		{"offer timeout 4", func(g *agents.Group) { g.OfferTimeoutSec = 4 }, "offer_timeout_sec: must be between 5 and 600 or 0 (assign without an offer)"},
		{"offer timeout 601", func(g *agents.Group) { g.OfferTimeoutSec = 601 }, "offer_timeout_sec: must be between 5 and 600 or 0 (assign without an offer)"},
		{"offer timeout negative", func(g *agents.Group) { g.OfferTimeoutSec = -5 }, "offer_timeout_sec: must be between 5 and 600 or 0 (assign without an offer)"},

		{"max missed offers 100", func(g *agents.Group) { g.MaxMissedOffers = 100 }, ""},
		{"max missed offers 101", func(g *agents.Group) { g.MaxMissedOffers = 101 }, "max_missed_offers: must be between 0 and 100 (0 means never)"},
		{"max missed offers negative", func(g *agents.Group) { g.MaxMissedOffers = -1 }, "max_missed_offers: must be between 0 and 100 (0 means never)"},

		{"hours", func(g *agents.Group) { g.Hours = hours }, ""},
		{"hours not JSON", func(g *agents.Group) { g.Hours = "9-5" }, "hours: "},
		{"hours unknown field", func(g *agents.Group) { g.Hours = `{"tz":"UTC"}` }, "hours: "},
		{"hours bad span", func(g *agents.Group) {
			g.Hours = `{"time_zone":"UTC","weekly":{"mon":[{"start":"18:00","end":"09:00"}]}}`
		}, "hours.weekly.mon[0]: end 09:00 before start 18:00"},
		{"hours bad zone", func(g *agents.Group) { g.Hours = `{"time_zone":"Mars/Olympus","weekly":{}}` }, `hours.time_zone: unknown time zone "Mars/Olympus"`},

		{"messages at the limit", func(g *agents.Group) {
			g.OffHoursMessage = strings.Repeat("闭", agents.MaxMessageLen)
			g.BusyMessage = strings.Repeat("x", agents.MaxMessageLen)
		}, ""},
		{"off-hours message too long", func(g *agents.Group) { g.OffHoursMessage = strings.Repeat("x", agents.MaxMessageLen+1) }, "off_hours_message: must be at most 1000 characters"},
		{"busy message too long", func(g *agents.Group) { g.BusyMessage = strings.Repeat("忙", agents.MaxMessageLen+1) }, "busy_message: must be at most 1000 characters"},
	}
	for _, c := range cases {
		g := base
		c.mutate(&g)
		err := g.Validate()
		switch {
		case c.msg == "" && err != nil:
			t.Errorf("%s: unexpected error %v", c.name, err)
		case c.msg == "":
		case !errs.Is(err, errs.Invalid):
			t.Errorf("%s: error = %v, want code invalid", c.name, err)
		case !strings.HasPrefix(errs.MessageOf(err), c.msg):
			t.Errorf("%s: message = %q, want it to start with %q", c.name, errs.MessageOf(err), c.msg)
		}
	}
}

func TestGroupNormalize(t *testing.T) {
	in := agents.Group{
		TenantID: "t1", ID: "g1", Name: "Old", Strategy: "fifo", SLThresholdSec: 20,
		Hours: `{ "weekly": {"mon": [{"start":"13:00","end":"17:00"}, {"start":"09:00","end":"12:00"}]}, "time_zone": "UTC" }`,
	}
	want := in
	want.Strategy = "longest_idle"
	want.FallbackStrategy = agents.DefaultFallbackStrategy
	want.Weight = agents.DefaultGroupWeight
	want.RingStepSec = agents.DefaultRingStepSec
	want.Hours = `{"time_zone":"UTC","weekly":{"mon":[{"start":"09:00","end":"12:00"},{"start":"13:00","end":"17:00"}]}}`
	got := in.Normalize()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Normalize (-want +got):\n%s", d)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("normalized group is invalid: %v", err)
	}
	if again := got.Normalize(); again != got {
		t.Errorf("Normalize is not idempotent: %+v", again)
	}

	set := agents.NewGroup("t1", "g1", "New")
	set.FallbackStrategy = "fifo"
	set.Weight = 0.5
	set.RingStepSec = 7
	set.Hours = "null"
	got = set.Normalize()
	want = set
	want.FallbackStrategy = "longest_idle"
	want.Hours = ""
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Normalize of set values (-want +got):\n%s", d)
	}

	bad := agents.NewGroup("t1", "g1", "Bad")
	bad.Hours = "9-5"
	if got := bad.Normalize(); got.Hours != bad.Hours {
		t.Errorf("Normalize changed invalid hours to %q; Validate should see them", got.Hours)
	}
}

func TestCanonicalHours(t *testing.T) {
	for _, in := range []string{"", "null"} {
		if got, err := agents.CanonicalHours(in); got != "" || err != nil {
			t.Errorf("CanonicalHours(%q) = %q, %v, want always open", in, got, err)
		}
	}
	got, err := agents.CanonicalHours(`{"weekly":{"sat":[],"tue":[{"start":"10:00","end":"11:00"}]},"time_zone":"UTC"}`)
	if want := agents.HoursJSON(`{"time_zone":"UTC","weekly":{"tue":[{"start":"10:00","end":"11:00"}]}}`); got != want || err != nil {
		t.Errorf("CanonicalHours = %q, %v, want %q", got, err, want)
	}
	_, err = agents.CanonicalHours(`[1, 2]`)
	if !errs.Is(err, errs.Invalid) || !strings.HasPrefix(errs.MessageOf(err), "hours") {
		t.Errorf("CanonicalHours of an array: %v, want an invalid error about hours", err)
	}
}

func TestHoursJSON(t *testing.T) {
	type doc struct {
		Hours agents.HoursJSON `json:"hours"`
	}
	for _, c := range []struct {
		hours agents.HoursJSON
		json  string
	}{
		{"", `{"hours":null}`},
		{`{"time_zone":"UTC","weekly":{}}`, `{"hours":{"time_zone":"UTC","weekly":{}}}`},
	} {
		b, err := json.Marshal(doc{c.hours})
		if err != nil || string(b) != c.json {
			t.Errorf("Marshal(%q) = %s, %v, want %s", c.hours, b, err, c.json)
		}
		var back doc
		if err := json.Unmarshal(b, &back); err != nil || back.Hours != c.hours {
			t.Errorf("Unmarshal(%s) = %q, %v, want %q", b, back.Hours, err, c.hours)
		}
	}
	var d doc
	if err := json.Unmarshal([]byte(`{"hours": { "time_zone" : "UTC" } }`), &d); err != nil || d.Hours != `{"time_zone":"UTC"}` {
		t.Errorf("Unmarshal keeps %q, %v, want compact JSON", d.Hours, err)
	}
}
