package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// ChannelSamples returns the directory of real provider payloads and crypto
// test vectors that channel adapter tests read: $SWITCHBOARD_CHANNEL_SAMPLES
// when set, else ../shared/channels/samples next to the repository root
// (found by walking up from the package directory to go.mod). A missing
// directory fails the test.
func ChannelSamples(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("SWITCHBOARD_CHANNEL_SAMPLES"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("channel samples: %v", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			dir := filepath.Join(filepath.Dir(d), "shared", "channels", "samples")
			if _, err := os.Stat(dir); err != nil {
				t.Fatalf("channel samples: %v", err)
			}
			return dir
		}
		if filepath.Dir(d) == d {
			t.Fatalf("channel samples: no go.mod above %s", wd)
		}
	}
}

// ChannelSample reads one file of ChannelSamples, failing the test when it
// cannot.
func ChannelSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ChannelSamples(t), name))
	if err != nil {
		t.Fatalf("channel sample: %v", err)
	}
	return b
}
