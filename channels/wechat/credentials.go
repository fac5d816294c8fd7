package wechat

import (
	"encoding/json"
	"net/url"
	"strings"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/wxcrypt"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// DefaultBaseURL is the WeChat API origin.
const DefaultBaseURL = "https://api.weixin.qq.com"

// Credentials are an Official Account's secrets, kept as JSON in
// channels.Account.Credentials. They are what the account's "basic
// configuration" page of the WeChat console shows.
type Credentials struct {
	// AppID (wx...) identifies the account to the API and is the receiver
	// id every encrypted push must end with.
	AppID string `json:"app_id"`
	// AppSecret gets access tokens.
	AppSecret string `json:"app_secret"`
	// Token is the server-configuration token that signs every push.
	Token string `json:"token"`
	// EncodingAESKey (43 characters) decrypts pushes in compatible and
	// safe mode; empty for an account in plain mode.
	EncodingAESKey string `json:"encoding_aes_key,omitempty"`
	// BaseURL is the API origin; DefaultBaseURL when empty. Tests point it
	// at a fake server.
	BaseURL string `json:"base_url,omitempty"`
}

// ValidateCredentials checks an account's credentials JSON before it is
// stored, so that a typo is reported when the operator saves the account
// rather than when the first customer writes. Unknown keys are refused for
// the same reason. Messages name the field and never echo a secret.
func ValidateCredentials(raw json.RawMessage) error {
	const op = "wechat.ValidateCredentials"
	var c Credentials
	if err := channels.DecodeCredentials(op, raw, &c, true); err != nil {
		return err
	}
	if err := c.normalise(); err != nil {
		return errs.Wrap(op, err)
	}
	return nil
}

// ParseCredentials reads an account's credentials, applying defaults.
// Unknown keys are ignored here (they were refused when the account was
// saved), so that an older node can read what a newer one stored.
func ParseCredentials(raw json.RawMessage) (Credentials, error) {
	const op = "wechat.ParseCredentials"
	var c Credentials
	if err := channels.DecodeCredentials(op, raw, &c, false); err != nil {
		return c, err
	}
	if err := c.normalise(); err != nil {
		return c, errs.Wrap(op, err)
	}
	return c, nil
}

// normalise applies defaults and checks every field.
func (c *Credentials) normalise() error {
	const op = "wechat.Credentials"
	c.AppID = strings.TrimSpace(c.AppID)
	c.AppSecret = strings.TrimSpace(c.AppSecret)
	c.Token = strings.TrimSpace(c.Token)
	c.EncodingAESKey = strings.TrimSpace(c.EncodingAESKey)
	c.BaseURL = strings.TrimSpace(c.BaseURL)
	switch {
	case c.AppID == "":
		return errs.E(op, errs.Invalid, "credentials.app_id: required")
	case !isPrintable(c.AppID):
		return errs.E(op, errs.Invalid, "credentials.app_id: must be the account's AppID (wx...)")
	case c.AppSecret == "":
		return errs.E(op, errs.Invalid, "credentials.app_secret: required (it gets access tokens)")
	case c.Token == "":
		return errs.E(op, errs.Invalid, "credentials.token: required (it signs every push)")
	case !isPrintable(c.Token):
		return errs.E(op, errs.Invalid, "credentials.token: must be printable ASCII")
	}
	if c.EncodingAESKey != "" {
		if _, err := wxcrypt.DecodeKey(c.EncodingAESKey); err != nil {
			return errs.E(op, errs.Invalid, "credentials.encoding_aes_key: must be the 43-character key from the console")
		}
	}
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	} else {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return errs.E(op, errs.Invalid, "credentials.base_url: must be an http(s) origin such as %s", DefaultBaseURL)
		}
		c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	}
	return nil
}

// isPrintable reports whether s is printable ASCII without spaces: what
// app ids and tokens are, and what can go into a URL or a signature.
func isPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// tokenKey names the account's access token in the token cache: one per
// app id, whichever tenant or account uses the app.
func (c *Credentials) tokenKey() string { return "wechat_oa:" + c.AppID }
