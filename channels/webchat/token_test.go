package webchat

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/internal/errs"
)

func TestVisitorTokens(t *testing.T) {
	now := time.Unix(1_763_700_000, 0)
	s := NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	c := Claims{TenantID: "t1", AccountID: "a1", VisitorID: "v_1", Expires: now.Add(time.Hour).Unix()}
	tok := s.Issue(c)
	if got, err := s.Verify(tok, now); err != nil || got != c {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
	payload, sig, _ := strings.Cut(tok, ".")
	forged := NewSigner([]byte("another key another key another!")).Issue(Claims{TenantID: "t1", AccountID: "a1", VisitorID: "v_2", Expires: c.Expires})
	for name, bad := range map[string]string{
		"other key":        forged,
		"payload swapped":  strings.Split(forged, ".")[0] + "." + sig,
		"no signature":     payload,
		"garbage":          "%%%.%%%",
		"truncated sig":    payload + "." + sig[:10],
		"expired":          s.Issue(Claims{TenantID: "t1", AccountID: "a1", VisitorID: "v_1", Expires: now.Add(-time.Second).Unix()}),
		"missing visitor":  s.Issue(Claims{TenantID: "t1", AccountID: "a1", Expires: c.Expires}),
		"oversized header": strings.Repeat("a", 3000) + "." + sig,
	} {
		if _, err := s.Verify(bad, now); !errs.Is(err, errs.Unauthorized) {
			t.Errorf("%s: Verify error %v, want unauthorized", name, err)
		}
	}
}

func TestUserSignature(t *testing.T) {
	now := time.Unix(1_763_700_000, 0)
	sig := UserSignature("secret", "u-42", now.Unix())
	if err := CheckUserSignature("secret", "u-42", now.Unix(), sig, now, 10*time.Minute); err != nil {
		t.Fatalf("valid signature refused: %v", err)
	}
	if err := CheckUserSignature("secret", "u-43", now.Unix(), sig, now, 10*time.Minute); !errs.Is(err, errs.Unauthorized) {
		t.Errorf("signature for another user accepted: %v", err)
	}
	if err := CheckUserSignature("secret", "u-42", now.Unix(), sig, now.Add(11*time.Minute), 10*time.Minute); !errs.Is(err, errs.Unauthorized) {
		t.Errorf("stale signature accepted: %v", err)
	}
	if err := CheckUserSignature("secret", "", now.Unix(), sig, now, 10*time.Minute); !errs.Is(err, errs.Invalid) {
		t.Errorf("empty user id: %v", err)
	}
}
