package secretbox_test

import (
	"flag"
	"strings"
	"testing"

	"github.com/switchboard-acd/switchboard/channels/secretbox"
	"github.com/switchboard-acd/switchboard/internal/config"
)

// TestConfigCredentialsKey checks how the key reaches a node: the
// --credentials-key flag and SWITCHBOARD_CREDENTIALS_KEY take a keyring
// spec, and Validate refuses a bad one (or none where no key file can be
// kept) naming credentials_key and never echoing key material.
func TestConfigCredentialsKey(t *testing.T) {
	k1, k2 := mustKey(t), mustKey(t)
	t.Setenv("SWITCHBOARD_CREDENTIALS_KEY", k1.String())
	c := config.Default()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	c.Register(fs)
	if c.CredentialsKey != k1.String() {
		t.Errorf("from the environment: %q", c.CredentialsKey)
	}
	var help strings.Builder
	fs.SetOutput(&help)
	fs.PrintDefaults()
	if !strings.Contains(help.String(), "credentials-key") || strings.Contains(help.String(), k1.String()[len(k1.ID)+1:]) {
		t.Errorf("-h shows the key from the environment, or not the flag:\n%s", help.String())
	}
	spec := k2.String() + "," + k1.String()
	if err := fs.Parse([]string{"-credentials-key", spec}); err != nil {
		t.Fatal(err)
	}
	if c.CredentialsKey != spec {
		t.Errorf("the flag should win: %q", c.CredentialsKey)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("valid rotation spec refused: %v", err)
	}
	kr, src, err := secretbox.Load(c.CredentialsKey, "")
	if err != nil || src != secretbox.SourceConfig || kr.CurrentID() != k2.ID {
		t.Errorf("Load(config) = %v, %s, %v", kr, src, err)
	}

	short := strings.Repeat("A", 20)
	for _, tc := range []struct {
		key, dataDir, want string
	}{
		{short, "./data", "credentials_key: key 1: must be 32 bytes"},
		{"bad id:" + short, "./data", "credentials_key: key 1"},
		{k1.String() + "," + k1.String(), "./data", "credentials_key: key id"},
		{"", "", "credentials_key: must be set when data_dir is empty"},
	} {
		c := config.Default()
		c.CredentialsKey, c.DataDir, c.DatabaseURL = tc.key, tc.dataDir, "postgres://db/x"
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%q, data dir %q) = %v, want %q", tc.key, tc.dataDir, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), short) || strings.Contains(err.Error(), k1.String()) {
			t.Errorf("the message shows key material: %v", err)
		}
	}
}
