package config

import (
	"flag"
	"strings"
	"testing"
	"time"
)

func TestEnvAndFlags(t *testing.T) {
	t.Setenv("SWITCHBOARD_HTTP_ADDR", ":9999")
	t.Setenv("SWITCHBOARD_IDLE_TIMEOUT", "3m")
	t.Setenv("SWITCHBOARD_HANDOFF_WORDS", "human, 人工 ,")
	c := Default()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.Register(fs)
	if err := fs.Parse([]string{"-wrapup-timeout", "45s", "-http-addr", ":7000"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if c.HTTPAddr != ":7000" {
		t.Errorf("flag should win over env: http addr %q", c.HTTPAddr)
	}
	if c.IdleTimeout != 3*time.Minute || c.WrapupTimeout != 45*time.Second {
		t.Errorf("durations: idle %v wrapup %v", c.IdleTimeout, c.WrapupTimeout)
	}
	if strings.Join(c.HandoffWords, "|") != "human|人工" {
		t.Errorf("handoff words %q", c.HandoffWords)
	}
}

func TestValidateNamesFields(t *testing.T) {
	t.Setenv("SWITCHBOARD_WRAPUP_TIMEOUT", "soon")
	c := Default()
	c.Register(flag.NewFlagSet("t", flag.ContinueOnError))
	c.DatabaseURL = "mysql://x"
	c.LogLevel = "loud"
	c.MaxBodyBytes = 10
	err := c.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"SWITCHBOARD_WRAPUP_TIMEOUT", "database_url", "log_level", "max_body_bytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}
