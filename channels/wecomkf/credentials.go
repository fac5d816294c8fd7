package wecomkf

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strings"
	"unicode"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/wxcrypt"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// DefaultBaseURL is the WeCom API origin.
const DefaultBaseURL = "https://qyapi.weixin.qq.com"

// Credentials are one WeCom customer-service account's secrets, kept as
// JSON in channels.Account.Credentials: the self-built app that calls the
// kf API (corp id + secret), the app's callback settings (token + AES
// key), and which customer-service account (open_kfid) this channel
// account is.
type Credentials struct {
	// CorpID (ww...) identifies the company; it is the receiver id every
	// encrypted callback must end with.
	CorpID string `json:"corp_id"`
	// Secret is the secret of the app allowed to call the kf API; it gets
	// access tokens and never leaves the gettoken call.
	Secret string `json:"secret"`
	// Token signs the app's callbacks.
	Token string `json:"token"`
	// EncodingAESKey (43 characters) decrypts the app's callbacks.
	EncodingAESKey string `json:"encoding_aes_key"`
	// OpenKfID (wk...) is the customer-service account; pulls and sends
	// are restricted to it.
	OpenKfID string `json:"open_kfid"`
	// BaseURL is the API origin; DefaultBaseURL when empty. Tests point it
	// at a fake server.
	BaseURL string `json:"base_url,omitempty"`
}

// ValidateCredentials checks an account's credentials JSON before it is
// stored, so that a typo is reported when the operator saves the account
// rather than when the first customer writes. Unknown keys are refused for
// the same reason. Messages name the field and never echo a value: the
// JSON holds secrets.
func ValidateCredentials(raw json.RawMessage) error {
	_, err := parseCredentials("wecomkf.ValidateCredentials", raw, true)
	return err
}

// ParseCredentials reads an account's credentials and checks them.
// Unknown keys are ignored here (ValidateCredentials refused them when the
// account was saved), so that an older node can read what a newer one
// stored.
func ParseCredentials(raw json.RawMessage) (Credentials, error) {
	return parseCredentials("wecomkf.ParseCredentials", raw, false)
}

func parseCredentials(op string, raw json.RawMessage, strict bool) (Credentials, error) {
	var c Credentials
	if err := channels.DecodeCredentials(op, raw, &c, strict); err != nil {
		return Credentials{}, err
	}
	for _, f := range []struct{ name, v string }{
		{"corp_id", c.CorpID}, {"secret", c.Secret}, {"token", c.Token}, {"open_kfid", c.OpenKfID},
	} {
		if f.v == "" {
			return c, errs.E(op, errs.Invalid, "credentials.%s: required", f.name)
		}
		if !printable(f.v) {
			return c, errs.E(op, errs.Invalid, "credentials.%s: must be printable ASCII without spaces", f.name)
		}
	}
	if _, err := wxcrypt.DecodeKey(c.EncodingAESKey); err != nil {
		return c, errs.E(op, errs.Invalid, "credentials.encoding_aes_key: must be the 43-character EncodingAESKey of the app's callback settings")
	}
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	} else {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			return c, errs.E(op, errs.Invalid, "credentials.base_url: must be an absolute http(s) URL without a query")
		}
		c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	}
	return c, nil
}

func printable(s string) bool {
	for _, r := range s {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' ' {
			return false
		}
	}
	return true
}

// tokenKey names the app's access token in the cluster-wide cache. A token
// belongs to one corp id and one app secret; the secret is hashed so the
// cache key (visible in Redis and logs) does not reveal it. Other WeCom
// adapters using the same app share the token through the same key.
func (c *Credentials) tokenKey() string {
	h := sha256.Sum256([]byte(c.Secret))
	return "wecom:" + c.CorpID + ":" + hex.EncodeToString(h[:8])
}
