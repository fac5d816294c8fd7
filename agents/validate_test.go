package agents_test

import (
	"strings"
	"testing"

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
		{"skills ok", agents.ValidateSkills([]agents.Skill{{GroupID: "a", Proficiency: 1}, {GroupID: "b", Proficiency: 5}}), true},
		{"skills twice", agents.ValidateSkills([]agents.Skill{{GroupID: "a", Proficiency: 1}, {GroupID: "a", Proficiency: 2}}), false},
		{"skills proficiency 0", agents.ValidateSkills([]agents.Skill{{GroupID: "a", Proficiency: 0}}), false},
		{"skills proficiency 6", agents.ValidateSkills([]agents.Skill{{GroupID: "a", Proficiency: 6}}), false},
		{"skills empty group", agents.ValidateSkills([]agents.Skill{{GroupID: "", Proficiency: 3}}), false},
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
