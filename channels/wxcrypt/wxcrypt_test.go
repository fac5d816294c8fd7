package wxcrypt_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/switchboard-acd/switchboard/channels/wechat/wechattest"
	"github.com/switchboard-acd/switchboard/channels/wxcrypt"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

func TestSignature(t *testing.T) {
	// silenceper's unit test: the three strings sorted and joined are "abc".
	if got := wxcrypt.Signature("a", "b", "c"); got != "a9993e364706816aba3e25717850c26c9cd0d89d" {
		t.Fatalf("Signature(a,b,c) = %s", got)
	}
	if got := wxcrypt.Signature("c", "a", "b"); got != "a9993e364706816aba3e25717850c26c9cd0d89d" {
		t.Fatalf("order must not matter, got %s", got)
	}
	// The plain-mode signature of vector A (wechat-oa.md section 1).
	v := wechattest.Vectors(t)["A1"]
	if got := wxcrypt.Signature(v.Token, v.Timestamp, v.Nonce); got != "76480565cbe296026c53aaacd1ad523a1ddba24f" {
		t.Fatalf("vector A plain signature = %s", got)
	}
	if !wxcrypt.Verify("76480565CBE296026C53AAACD1AD523A1DDBA24F", v.Token, v.Timestamp, v.Nonce) {
		t.Fatal("upper-case hex must verify")
	}
	if wxcrypt.Verify("76480565cbe296026c53aaacd1ad523a1ddba24e", v.Token, v.Timestamp, v.Nonce) {
		t.Fatal("a changed signature verified")
	}
	if wxcrypt.Verify("", v.Token, v.Timestamp, v.Nonce) {
		t.Fatal("an empty signature verified")
	}
}

func newCrypter(t *testing.T, v wechattest.Vector) *wxcrypt.Crypter {
	t.Helper()
	c, err := wxcrypt.New(v.Token, v.EncodingAESKey, v.ReceiverID)
	if err != nil {
		t.Fatalf("vector %s: New: %v", v.Name, err)
	}
	return c
}

func TestOfficialVectorsDecrypt(t *testing.T) {
	for name, v := range wechattest.Vectors(t) {
		t.Run(name, func(t *testing.T) {
			c := newCrypter(t, v)
			sig := v.MsgSignature
			if sig == "" { // vector A states no msg_signature; sign it ourselves
				sig = wxcrypt.Signature(v.Token, v.Timestamp, v.Nonce, v.Encrypt)
			}
			got, err := c.Decrypt(sig, v.Timestamp, v.Nonce, v.Encrypt)
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			if !bytes.Equal(got, v.Plain) {
				t.Fatalf("plaintext:\n got %q\nwant %q", got, v.Plain)
			}
			if v.MsgSignature != "" {
				if s := wxcrypt.Signature(v.Token, v.Timestamp, v.Nonce, v.Encrypt); s != v.MsgSignature {
					t.Fatalf("signature %s, vector says %s", s, v.MsgSignature)
				}
			}
		})
	}
}

func TestOfficialVectorsEncrypt(t *testing.T) {
	for _, name := range []string{"A1", "A2", "E"} {
		v := wechattest.Vectors(t)[name]
		t.Run(name, func(t *testing.T) {
			var random [16]byte
			if copy(random[:], v.Random) != 16 || len(v.Random) != 16 {
				t.Fatalf("random %q is not 16 bytes", v.Random)
			}
			if got := newCrypter(t, v).SealWithRandom(random, v.Plain); got != v.Encrypt {
				t.Fatalf("ciphertext:\n got %s\nwant %s", got, v.Encrypt)
			}
		})
	}
}

func TestVerifyURLVectorB(t *testing.T) {
	v := wechattest.Vectors(t)["B"]
	c := newCrypter(t, v)
	got, err := c.VerifyURL(v.MsgSignature, v.Timestamp, v.Nonce, v.Encrypt)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "1616140317555161061" {
		t.Fatalf("echostr = %q", got)
	}
	if _, err := c.VerifyURL(v.MsgSignature, v.Timestamp, "1", v.Encrypt); !errs.Is(err, errs.Unauthorized) {
		t.Fatalf("changed nonce: %v, want unauthorized", err)
	}
}

func TestRoundTrip(t *testing.T) {
	c, err := wxcrypt.New("tok", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx1234")
	if err != nil {
		t.Fatal(err)
	}
	// Lengths around the 32-byte padding boundary: 16+4+n+6 = 32k exactly
	// at n = 6, 38, ... must get a whole block of padding.
	for n := 0; n < 100; n++ {
		msg := bytes.Repeat([]byte{'x'}, n)
		enc, sig, err := c.Encrypt(msg, "1700000000", "nonce")
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := base64.StdEncoding.DecodeString(enc)
		if len(raw)%32 != 0 || len(raw) < 16+4+n+6+1 {
			t.Fatalf("n=%d: ciphertext of %d bytes", n, len(raw))
		}
		got, err := c.Decrypt(sig, "1700000000", "nonce", enc)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("n=%d: got %q", n, got)
		}
	}
	a, _, _ := c.Encrypt([]byte("same"), "1", "2")
	b, _, _ := c.Encrypt([]byte("same"), "1", "2")
	if a == b {
		t.Fatal("two encryptions of one message are equal: the random prefix is not random")
	}
}

func TestRejects(t *testing.T) {
	vs := wechattest.Vectors(t)
	d := vs["D"]
	c := newCrypter(t, d)

	// Another app id with the same token and key: the signature is fine,
	// the receiver is not (-40005).
	other, err := wxcrypt.New(d.Token, d.EncodingAESKey, "wx0000000000000000")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Decrypt(d.MsgSignature, d.Timestamp, d.Nonce, d.Encrypt); !errs.Is(err, errs.Unauthorized) {
		t.Fatalf("wrong app id: %v, want unauthorized", err)
	} else if errs.DetailsOf(err)["wx_code"] != -40005 {
		t.Fatalf("wrong app id: details %v", errs.DetailsOf(err))
	}
	// A wrong token makes every signature wrong.
	wrongToken, _ := wxcrypt.New("nottoken", d.EncodingAESKey, d.ReceiverID)
	if _, err := wrongToken.Decrypt(d.MsgSignature, d.Timestamp, d.Nonce, d.Encrypt); !errs.Is(err, errs.Unauthorized) {
		t.Fatalf("wrong token: %v", err)
	}

	cases := []struct {
		name, sig, ts, nonce, enc string
		code                      errs.Code
	}{
		{"signature changed", "003fee52ecc56afb46c00b5c7721be87860ce786", d.Timestamp, d.Nonce, d.Encrypt, errs.Unauthorized},
		{"timestamp changed", d.MsgSignature, "1410349439", d.Nonce, d.Encrypt, errs.Unauthorized},
		{"ciphertext changed", d.MsgSignature, d.Timestamp, d.Nonce, "A" + d.Encrypt[1:], errs.Unauthorized},
		{"empty signature", "", d.Timestamp, d.Nonce, d.Encrypt, errs.Unauthorized},
	}
	for _, tc := range cases {
		_, err := c.Decrypt(tc.sig, tc.ts, tc.nonce, tc.enc)
		if !errs.Is(err, tc.code) {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}

	// Malformed ciphertexts with valid signatures: Invalid, never a panic.
	malformed := map[string]string{
		"not base64":     "***",
		"empty":          "",
		"not blocks":     base64.StdEncoding.EncodeToString([]byte("short")),
		"one block":      base64.StdEncoding.EncodeToString(make([]byte, 16)),
		"garbage blocks": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 64)),
	}
	for name, enc := range malformed {
		sig := wxcrypt.Signature(d.Token, d.Timestamp, d.Nonce, enc)
		if _, err := c.Decrypt(sig, d.Timestamp, d.Nonce, enc); !errs.Is(err, errs.Invalid) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}

func TestBadPaddingAndLength(t *testing.T) {
	c, _ := wxcrypt.New("tok", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx1")
	var random [16]byte
	good := c.SealWithRandom(random, []byte("hello"))
	if msg, id, err := c.Open(good); err != nil || string(msg) != "hello" || id != "wx1" {
		t.Fatalf("open: %q %q %v", msg, id, err)
	}
	// Flip the last ciphertext byte: the last plaintext block turns to
	// garbage, so the padding is wrong.
	raw, _ := base64.StdEncoding.DecodeString(good)
	raw[len(raw)-1] ^= 0xff
	if _, _, err := c.Open(base64.StdEncoding.EncodeToString(raw)); !errs.Is(err, errs.Invalid) {
		t.Fatalf("garbled padding: %v", err)
	}
}

func TestNewRejectsBadKeys(t *testing.T) {
	for _, key := range []string{
		"",
		"abcdefghijklmnopqrstuvwxyz0123456789ABCDEF",   // 42
		"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH", // 44 (official testIllegalAesKey)
		"abcdefghijklmnopqrstuvwxyz0123456789ABCDEF*",  // not base64
	} {
		if _, err := wxcrypt.New("t", key, "wx"); !errs.Is(err, errs.Invalid) {
			t.Errorf("key %q: %v, want invalid", key, err)
		}
	}
	if _, err := wxcrypt.New("t", strings.Repeat("A", 43), "wx"); err != nil {
		t.Fatalf("all-zero key (vector E) rejected: %v", err)
	}
}

// FuzzDecrypt feeds arbitrary ciphertexts (signed, so they pass the
// signature check and reach the AES and unpacking code) to Decrypt: it
// must return a message or an Invalid / Unauthorized error, never panic,
// and whatever Encrypt produces must decrypt back.
func FuzzDecrypt(f *testing.F) {
	vs := wechattest.Vectors(f)
	for _, v := range vs {
		f.Add(v.Encrypt, []byte(v.Plain))
	}
	f.Add("", []byte{})
	f.Add("AAAA", []byte("x"))
	d := vs["D"]
	c, err := wxcrypt.New(d.Token, d.EncodingAESKey, d.ReceiverID)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, enc string, msg []byte) {
		sig := wxcrypt.Signature(d.Token, d.Timestamp, d.Nonce, enc)
		got, err := c.Decrypt(sig, d.Timestamp, d.Nonce, enc)
		if err != nil {
			if code := errs.CodeOf(err); code != errs.Invalid && code != errs.Unauthorized {
				t.Fatalf("code %s: %v", code, err)
			}
		} else if got == nil {
			t.Fatal("nil message without an error")
		}
		enc2, sig2, err := c.Encrypt(msg, d.Timestamp, d.Nonce)
		if err != nil {
			t.Fatal(err)
		}
		back, err := c.Decrypt(sig2, d.Timestamp, d.Nonce, enc2)
		if err != nil || !bytes.Equal(back, msg) {
			t.Fatalf("round trip: %q %v", back, err)
		}
	})
}
