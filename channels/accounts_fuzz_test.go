package channels

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzAccountSettings feeds administrator input (the settings of a create,
// the merge patch of an update) through the settings parser: it must never
// panic; what it accepts must be canonical (normalising it again changes
// nothing) and read back as the same AccountSettings.
func FuzzAccountSettings(f *testing.F) {
	for _, s := range [][2]string{
		{`{}`, `{"rate_per_sec":20,"burst":40,"entry":"group"}`},
		{`{"rate_per_sec":5,"provider":{"x":1}}`, `{"rate_per_sec":null,"hours":"{\"time_zone\":\"Asia/Shanghai\",\"weekly\":{\"mon\":[{\"start\":\"09:00\",\"end\":\"18:00\"}]}}"}`},
		{`{"hours":{"weekly":{"sat":[{"start":"00:00","end":"24:00"}]},"holidays":["2026-10-01"]}}`, `{"fallback_account_id":"sms-1"}`},
		{`null`, `{"entry":"bot","burst":0}`},
		{`[1]`, `"x"`},
		{`{"rate_per_sec":1e400}`, `{"hours":""}`},
	} {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, cur, patch []byte) {
		for _, raw := range [][]byte{cur, patch} {
			out, st, p := normaliseSettings(raw)
			if p != nil {
				continue
			}
			again, st2, p2 := normaliseSettings(out)
			if p2 != nil || !bytes.Equal(out, again) || st != st2 {
				t.Fatalf("not canonical: %s -> %s (%+v) -> %s (%+v) %v", raw, out, st, again, st2, p2)
			}
			if parsed, err := ParseAccountSettings(out); err != nil || parsed != st {
				t.Fatalf("ParseAccountSettings(%s) = %+v, %v; want %+v", out, parsed, err, st)
			}
			if !json.Valid(out) {
				t.Fatalf("invalid JSON %s", out)
			}
		}
		merged, err := mergeSettings(cur, patch)
		if err == nil && !json.Valid(merged) {
			t.Fatalf("merge of %s and %s is not JSON: %s", cur, patch, merged)
		}
		_ = CredentialFields(cur)
	})
}
