// Package webchat is the in-app / web chat channel: visitor identity (signed
// visitor tokens, app-signed user ids), the end-user WebSocket protocol of
// docs/webchat-protocol.md with client message ids, per-conversation
// sequence numbers, acks and resume, and its HTTP fallback. The socket
// library stays outside: a connection is driven through Transport.
package webchat

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-acd/switchboard/internal/errs"
)

// Claims is what a visitor token asserts.
type Claims struct {
	TenantID  string `json:"t"`
	AccountID string `json:"a"`
	// VisitorID is "v_<random>" for anonymous visitors and "u:<user id>" for
	// users an app vouched for.
	VisitorID string `json:"v"`
	Name      string `json:"n,omitempty"`
	Expires   int64  `json:"e"`
}

// Signer issues and verifies visitor tokens with the server's key.
type Signer struct{ key []byte }

// NewSigner returns a signer; key must be kept secret and shared by all nodes.
func NewSigner(key []byte) *Signer { return &Signer{key: key} }

func (s *Signer) mac(b []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write(b)
	return m.Sum(nil)
}

// Issue returns the token for c.
func (s *Signer) Issue(c Claims) string {
	payload, _ := json.Marshal(c)
	enc := base64.RawURLEncoding
	p := enc.EncodeToString(payload)
	return p + "." + enc.EncodeToString(s.mac([]byte(p)))
}

// Verify checks a token's signature and expiry.
func (s *Signer) Verify(token string, now time.Time) (Claims, error) {
	const op = "verify visitor token"
	p, sig, ok := strings.Cut(token, ".")
	if !ok || len(token) > 2048 {
		return Claims{}, errs.E(op, errs.Unauthorized, "malformed visitor token")
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac([]byte(p))) {
		return Claims{}, errs.E(op, errs.Unauthorized, "invalid visitor token")
	}
	raw, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return Claims{}, errs.E(op, errs.Unauthorized, "malformed visitor token")
	}
	var c Claims
	if err := json.Unmarshal(raw, &c); err != nil || c.TenantID == "" || c.AccountID == "" || c.VisitorID == "" {
		return Claims{}, errs.E(op, errs.Unauthorized, "malformed visitor token")
	}
	if now.Unix() > c.Expires {
		return Claims{}, errs.E(op, errs.Unauthorized, "visitor token expired")
	}
	return c, nil
}

// UserSignature is the signature an app's server computes to vouch for one
// of its users: hex HMAC-SHA256(account secret, user_id + "." + ts).
func UserSignature(secret, userID string, ts int64) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(userID + "." + strconv.FormatInt(ts, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// CheckUserSignature verifies an app's signature; ts must be within skew of
// now so a leaked signature is short-lived.
func CheckUserSignature(secret, userID string, ts int64, sig string, now time.Time, skew time.Duration) error {
	const op = "check user signature"
	if userID == "" || len(userID) > 128 {
		return errs.E(op, errs.Invalid, "user_id must be 1-128 characters")
	}
	want := UserSignature(secret, userID, ts)
	if !hmac.Equal([]byte(strings.ToLower(sig)), []byte(want)) {
		return errs.E(op, errs.Unauthorized, "invalid user signature")
	}
	d := now.Sub(time.Unix(ts, 0))
	if d < -skew || d > skew {
		return errs.E(op, errs.Unauthorized, "user signature timestamp outside the allowed window")
	}
	return nil
}

// NewVisitorID returns a fresh anonymous visitor id.
func NewVisitorID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "v_" + hex.EncodeToString(b[:])
}
