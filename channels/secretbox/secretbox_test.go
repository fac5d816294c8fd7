package secretbox_test

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-acd/switchboard/channels/secretbox"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// fixedKey is the key 00 01 02 ... 1f under id "2026a"; fixedSealed was
// sealed with it (binding channel_account/t1/a1) when the v1 format was
// written. Opening it keeps values already in databases readable.
const (
	fixedSpec      = "2026a:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	fixedSealed    = "v1:2026a:lZNMB0cg1dJ2dLRXppyp6bu6+B15h+Y4FhVpWz02yKYV2f+7amann20WJ0i/jiynqejB"
	fixedPlain     = `{"app_secret":"s3cr3t"}`
	fixedDerivedID = "fe3daf3a"
)

func fixedBinding() []byte { return secretbox.Binding("channel_account", "t1", "a1") }

func mustKey(t testing.TB) secretbox.Key {
	t.Helper()
	k, err := secretbox.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustRing(t testing.TB, cur secretbox.Key, old ...secretbox.Key) *secretbox.Keyring {
	t.Helper()
	kr, err := secretbox.NewKeyring(cur, old...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestFormatIsStable(t *testing.T) {
	kr, err := secretbox.ParseKeyring(fixedSpec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := kr.Open(fixedSealed, fixedBinding())
	if err != nil {
		t.Fatalf("open the v1 vector: %v", err)
	}
	if string(got) != fixedPlain {
		t.Fatalf("opened %q, want %q", got, fixedPlain)
	}
	// The same key without an id gets its derived id.
	bare, err := secretbox.ParseKeyring(strings.TrimPrefix(fixedSpec, "2026a:"))
	if err != nil {
		t.Fatal(err)
	}
	if bare.CurrentID() != fixedDerivedID {
		t.Errorf("derived id %q, want %q", bare.CurrentID(), fixedDerivedID)
	}
}

func TestSealOpen(t *testing.T) {
	kr := mustRing(t, mustKey(t))
	ad := secretbox.Binding("channel_account", "t1", "a1")
	plain := []byte(`{"access_token":"EAAG..."}`)
	a, err := kr.Seal(plain, ad)
	if err != nil {
		t.Fatal(err)
	}
	b, err := kr.Seal(plain, ad)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Error("two seals of the same plaintext are equal: the nonce is not fresh")
	}
	if !strings.HasPrefix(a, "v1:"+kr.CurrentID()+":") {
		t.Errorf("sealed value %q lacks the v1:<key id>: header", a)
	}
	if strings.Contains(a, "EAAG") || strings.Contains(a, base64.StdEncoding.EncodeToString(plain)) {
		t.Errorf("sealed value %q shows the plaintext", a)
	}
	for _, s := range []string{a, b} {
		got, err := kr.Open(s, ad)
		if err != nil || string(got) != string(plain) {
			t.Errorf("Open = %q, %v; want %q", got, err, plain)
		}
	}
	if id, err := secretbox.KeyID(a); err != nil || id != kr.CurrentID() {
		t.Errorf("KeyID = %q, %v; want %q", id, err, kr.CurrentID())
	}
	if !kr.Current(a) {
		t.Error("Current(a fresh seal) = false")
	}
	// An empty plaintext seals and opens too.
	e, err := kr.Seal(nil, ad)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := kr.Open(e, ad); err != nil || len(got) != 0 {
		t.Errorf("Open(empty) = %q, %v", got, err)
	}
}

func TestOpenRefuses(t *testing.T) {
	k := mustKey(t)
	kr := mustRing(t, k)
	ad := secretbox.Binding("channel_account", "t1", "a1")
	sealed, err := kr.Seal([]byte("secret"), ad)
	if err != nil {
		t.Fatal(err)
	}
	body := sealed[len("v1:"+k.ID+":"):]
	raw, _ := base64.StdEncoding.DecodeString(body)
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)-1] ^= 1

	other := mustKey(t)
	// The same id on another key: the id matches, authentication fails.
	impostor := secretbox.Key{ID: k.ID, Secret: other.Secret}
	for _, tc := range []struct {
		name   string
		kr     *secretbox.Keyring
		sealed string
		ad     []byte
		want   error
	}{
		{"another tenant", kr, sealed, secretbox.Binding("channel_account", "t2", "a1"), secretbox.ErrAuth},
		{"another account", kr, sealed, secretbox.Binding("channel_account", "t1", "a2"), secretbox.ErrAuth},
		{"shifted binding", kr, sealed, secretbox.Binding("channel_account", "t1a", "1"), secretbox.ErrAuth},
		{"no binding", kr, sealed, nil, secretbox.ErrAuth},
		{"altered ciphertext", kr, "v1:" + k.ID + ":" + base64.StdEncoding.EncodeToString(flipped), ad, secretbox.ErrAuth},
		{"key not configured", mustRing(t, other), sealed, ad, secretbox.ErrUnknownKey},
		{"another key under the id", mustRing(t, impostor), sealed, ad, secretbox.ErrAuth},
		{"relabelled key id", mustRing(t, k, secretbox.Key{ID: "old", Secret: k.Secret}), "v1:old:" + body, ad, secretbox.ErrAuth},
		{"plaintext", kr, "secret", ad, secretbox.ErrFormat},
		{"other version", kr, "v2:" + k.ID + ":" + body, ad, secretbox.ErrFormat},
		{"bad id", kr, "v1:a b:" + body, ad, secretbox.ErrFormat},
		{"not base64", kr, "v1:" + k.ID + ":***", ad, secretbox.ErrFormat},
		{"too short", kr, "v1:" + k.ID + ":" + base64.StdEncoding.EncodeToString(raw[:10]), ad, secretbox.ErrFormat},
		{"empty", kr, "", ad, secretbox.ErrFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.kr.Open(tc.sealed, tc.ad)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open = %q, %v; want %v", got, err, tc.want)
			}
			if !errs.Is(err, errs.Internal) {
				t.Errorf("code %s, want internal", errs.CodeOf(err))
			}
			if strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(k.Secret[:])) {
				t.Errorf("the error shows the key: %v", err)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKey := mustKey(t), mustKey(t)
	ad := secretbox.Binding("channel_account", "t1", "a1")
	before := mustRing(t, oldKey)
	sealedOld, err := before.Seal([]byte("before"), ad)
	if err != nil {
		t.Fatal(err)
	}
	// Rotate: the new key is current, the old one still opens.
	after := mustRing(t, newKey, oldKey)
	if got, err := after.Open(sealedOld, ad); err != nil || string(got) != "before" {
		t.Fatalf("open a value of the old key after rotation: %q, %v", got, err)
	}
	if after.Current(sealedOld) {
		t.Error("a value of the old key counts as current")
	}
	sealedNew, err := after.Seal([]byte("after"), ad)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := secretbox.KeyID(sealedNew); id != newKey.ID {
		t.Errorf("sealed with %q after rotation, want the current key %q", id, newKey.ID)
	}
	// A node not yet given the new key cannot open new values, and says so.
	if _, err := before.Open(sealedNew, ad); !errors.Is(err, secretbox.ErrUnknownKey) || !strings.Contains(err.Error(), newKey.ID) {
		t.Errorf("old node opening a new value: %v; want ErrUnknownKey naming %s", err, newKey.ID)
	}
	// Once the old key is dropped its values no longer open.
	final := mustRing(t, newKey)
	if _, err := final.Open(sealedOld, ad); !errors.Is(err, secretbox.ErrUnknownKey) {
		t.Errorf("after dropping the old key: %v, want ErrUnknownKey", err)
	}
	if got := after.IDs(); len(got) != 2 || got[0] != newKey.ID || got[1] != oldKey.ID {
		t.Errorf("IDs = %v, want [%s %s]", got, newKey.ID, oldKey.ID)
	}
}

func TestParseKeyring(t *testing.T) {
	k1, k2 := mustKey(t), mustKey(t)
	std := base64.StdEncoding.EncodeToString(k1.Secret[:])
	url := base64.RawURLEncoding.EncodeToString(k2.Secret[:])
	short := base64.StdEncoding.EncodeToString(k1.Secret[:16])
	for _, tc := range []struct {
		spec    string
		ids     []string
		wantErr string
	}{
		{spec: std, ids: []string{secretbox.DerivedKeyID(k1.Secret)}},
		{spec: " " + std + " ", ids: []string{secretbox.DerivedKeyID(k1.Secret)}},
		{spec: "new:" + url + ", old:" + std, ids: []string{"new", "old"}},
		{spec: "new:" + url + "," + std, ids: []string{"new", secretbox.DerivedKeyID(k1.Secret)}},
		{spec: "", wantErr: "key 1: empty"},
		{spec: std + ",", wantErr: "key 2: empty"},
		{spec: short, wantErr: "key 1: must be 32 bytes in base64, got 16 bytes"},
		{spec: "k:" + short, wantErr: "key 1: must be 32 bytes"},
		{spec: "k:not base64!", wantErr: "key 1: not base64"},
		{spec: "k:", wantErr: "key 1: no key after the id"},
		{spec: "bad id:" + std, wantErr: "key 1: id must be"},
		{spec: strings.Repeat("x", 33) + ":" + std, wantErr: "key 1: id must be"},
		{spec: "a:" + std + ",a:" + url, wantErr: `key id "a": given twice`},
		{spec: std + "," + std, wantErr: "given twice"},
	} {
		kr, err := secretbox.ParseKeyring(tc.spec)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseKeyring(%q) = %v, want an error containing %q", tc.spec, err, tc.wantErr)
			}
			if err != nil && (strings.Contains(err.Error(), std) || strings.Contains(err.Error(), short)) {
				t.Errorf("the error shows key material: %v", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseKeyring(%q): %v", tc.spec, err)
			continue
		}
		if got := kr.IDs(); strings.Join(got, ",") != strings.Join(tc.ids, ",") {
			t.Errorf("ParseKeyring(%q) ids %v, want %v", tc.spec, got, tc.ids)
		}
	}
	// A spec is what Key.String renders.
	kr, err := secretbox.ParseKeyring(k1.String())
	if err != nil || kr.CurrentID() != k1.ID {
		t.Fatalf("ParseKeyring(Key.String()) = %v, %v", kr, err)
	}
}

func TestBindingIsUnambiguous(t *testing.T) {
	a := secretbox.Binding("ab", "c")
	b := secretbox.Binding("a", "bc")
	if string(a) == string(b) {
		t.Fatal(`Binding("ab","c") == Binding("a","bc")`)
	}
	if string(secretbox.Binding("", "x")) == string(secretbox.Binding("x")) {
		t.Fatal("an empty part vanishes from the binding")
	}
}

func TestLoad(t *testing.T) {
	t.Run("config wins", func(t *testing.T) {
		dir := t.TempDir()
		kr, src, err := secretbox.Load(fixedSpec, filepath.Join(dir, secretbox.KeyFileName))
		if err != nil || src != secretbox.SourceConfig || kr.CurrentID() != "2026a" {
			t.Fatalf("Load = %v, %s, %v", kr, src, err)
		}
		if _, err := os.Stat(filepath.Join(dir, secretbox.KeyFileName)); !os.IsNotExist(err) {
			t.Errorf("a configured key still wrote the key file: %v", err)
		}
		if _, _, err := secretbox.Load("k:short", ""); err == nil {
			t.Error("a bad spec loaded")
		}
	})
	t.Run("generated then read", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "sub", secretbox.KeyFileName)
		kr, src, err := secretbox.Load("", file)
		if err != nil || src != secretbox.SourceGenerated {
			t.Fatalf("first Load = %s, %v", src, err)
		}
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("key file mode %04o, want 0600", fi.Mode().Perm())
		}
		sealed, err := kr.Seal([]byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		again, src, err := secretbox.Load("", file)
		if err != nil || src != secretbox.SourceFile || again.CurrentID() != kr.CurrentID() {
			t.Fatalf("second Load = %v, %s, %v", again, src, err)
		}
		if got, err := again.Open(sealed, nil); err != nil || string(got) != "x" {
			t.Errorf("the re-read key does not open what the generated one sealed: %q, %v", got, err)
		}
		left, _ := filepath.Glob(filepath.Join(filepath.Dir(file), "*.tmp-*"))
		if len(left) != 0 {
			t.Errorf("temporary files left: %v", left)
		}
	})
	t.Run("loose permissions", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), secretbox.KeyFileName)
		if err := os.WriteFile(file, []byte(fixedSpec+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(file, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := secretbox.Load("", file); err == nil || !strings.Contains(err.Error(), "0600") {
			t.Errorf("Load of a world-readable key file = %v, want a refusal naming 0600", err)
		}
	})
	t.Run("corrupt file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), secretbox.KeyFileName)
		if err := os.WriteFile(file, []byte("garbage\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := secretbox.Load("", file); err == nil || !strings.Contains(err.Error(), file) {
			t.Errorf("Load of a corrupt key file = %v, want an error naming the file", err)
		}
	})
	t.Run("no file and no spec", func(t *testing.T) {
		if _, _, err := secretbox.Load("", ""); !errs.Is(err, errs.Invalid) {
			t.Errorf("Load without spec or file = %v, want invalid", err)
		}
	})
	t.Run("nodes starting together agree", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), secretbox.KeyFileName)
		const n = 8
		ids := make([]string, n)
		srcs := make([]secretbox.Source, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				kr, src, err := secretbox.Load("", file)
				if err != nil {
					t.Error(err)
					return
				}
				ids[i], srcs[i] = kr.CurrentID(), src
			}()
		}
		wg.Wait()
		generated := 0
		for i := range n {
			if ids[i] != ids[0] {
				t.Errorf("node %d got key %s, node 0 %s", i, ids[i], ids[0])
			}
			if srcs[i] == secretbox.SourceGenerated {
				generated++
			}
		}
		if generated != 1 {
			t.Errorf("%d nodes generated the key, want exactly 1", generated)
		}
	})
}

// FuzzParseKeyring feeds configuration text (flag or environment) to the
// spec parser: it must never panic, and a spec it accepts must seal and
// open.
func FuzzParseKeyring(f *testing.F) {
	for _, s := range []string{fixedSpec, strings.TrimPrefix(fixedSpec, "2026a:"), fixedSpec + ",old:" + base64.RawURLEncoding.EncodeToString(make([]byte, 32)),
		"", ",", "a:", ":", "a:b:c", "k:" + strings.Repeat("A", 44)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		kr, err := secretbox.ParseKeyring(spec)
		if err != nil {
			return
		}
		s, err := kr.Seal([]byte(spec), []byte("ad"))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := kr.Open(s, []byte("ad")); err != nil || string(got) != spec {
			t.Fatalf("round trip under %v: %q, %v", kr.IDs(), got, err)
		}
	})
}

// FuzzOpen feeds stored text to Open (a database row is outside input to
// the process): it must never panic, and only a value that authenticates
// opens.
func FuzzOpen(f *testing.F) {
	kr, err := secretbox.ParseKeyring(fixedSpec)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fixedSealed, []byte(fixedBinding()))
	f.Add(fixedSealed, []byte("other"))
	f.Add("v1:2026a:", []byte(nil))
	f.Add("v1::", []byte(nil))
	f.Add(`{"app_secret":"x"}`, []byte(nil))
	f.Fuzz(func(t *testing.T, sealed string, ad []byte) {
		got, err := kr.Open(sealed, ad)
		if err != nil {
			if !errors.Is(err, secretbox.ErrFormat) && !errors.Is(err, secretbox.ErrUnknownKey) && !errors.Is(err, secretbox.ErrAuth) {
				t.Fatalf("unclassified failure: %v", err)
			}
			return
		}
		// Forging a GCM tag is out of reach of a fuzzer: what opens is the
		// vector itself under its own binding.
		if string(got) != fixedPlain {
			t.Fatalf("opened %q from %q", got, sealed)
		}
	})
}
