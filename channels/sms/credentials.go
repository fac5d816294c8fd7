package sms

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strings"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// DefaultBaseURL is Twilio's REST API; any service speaking the same
// Messages API (a Twilio-compatible SMS gateway, or a test fake) can be put
// in Credentials.BaseURL instead.
const DefaultBaseURL = "https://api.twilio.com"

// Credentials are an SMS account's provider credentials, kept as JSON in
// channels.Account.Credentials.
type Credentials struct {
	// AccountSID names the provider account in API paths and is the user
	// of HTTP basic auth ("AC..." at Twilio).
	AccountSID string `json:"account_sid"`
	// AuthToken is the basic-auth password and the key that signs the
	// provider's webhooks (X-Twilio-Signature).
	AuthToken string `json:"auth_token"`
	// From is the sender: an E.164 number, a short code, an alphanumeric
	// sender id, or a messaging service sid ("MG" + 32 hex), which is sent
	// as MessagingServiceSid so the provider picks a number from its pool.
	From string `json:"from"`
	// BaseURL is the API origin; empty means DefaultBaseURL.
	BaseURL string `json:"base_url,omitempty"`
	// StatusCallbackURL, when set, is passed with every send so that the
	// provider reports delivery to this account's webhook.
	StatusCallbackURL string `json:"status_callback_url,omitempty"`
}

var (
	e164Re       = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	shortCodeRe  = regexp.MustCompile(`^[0-9]{3,8}$`)
	alphaIDRe    = regexp.MustCompile(`^[A-Za-z0-9 ]{1,11}$`)
	serviceSIDRe = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
	hasLetterRe  = regexp.MustCompile(`[A-Za-z]`)
)

// isServiceSID says whether from names a messaging service rather than one
// sender.
func isServiceSID(from string) bool { return serviceSIDRe.MatchString(from) }

// validSender accepts the sender forms the Messages API takes in From or
// MessagingServiceSid.
func validSender(from string) bool {
	switch {
	case isServiceSID(from), e164Re.MatchString(from), shortCodeRe.MatchString(from):
		return true
	case alphaIDRe.MatchString(from) && hasLetterRe.MatchString(from):
		return true
	}
	return false
}

// ParseCredentials reads an account's credentials and checks them. Unknown
// keys are ignored here (ValidateCredentials refused them when the account
// was saved), so that an older node can read what a newer one stored.
func ParseCredentials(raw json.RawMessage) (Credentials, error) {
	return parseCredentials("sms.ParseCredentials", raw, false)
}

// ValidateCredentials checks an account's credentials before they are
// stored, so a typo is refused at configuration time and not at the first
// send. Unknown keys are refused for the same reason. Messages name the
// field and never echo a value (the JSON holds secrets).
func ValidateCredentials(raw json.RawMessage) error {
	_, err := parseCredentials("sms.ValidateCredentials", raw, true)
	return err
}

func parseCredentials(op string, raw json.RawMessage, strict bool) (Credentials, error) {
	var c Credentials
	if err := channels.DecodeCredentials(op, raw, &c, strict); err != nil {
		return Credentials{}, err
	}
	switch {
	case c.AccountSID == "":
		return c, errs.E(op, errs.Invalid, "credentials.account_sid: required")
	case strings.ContainsAny(c.AccountSID, "/?#% \t\r\n"):
		return c, errs.E(op, errs.Invalid, "credentials.account_sid: must not contain '/', '?', '#', '%%' or spaces")
	case c.AuthToken == "":
		return c, errs.E(op, errs.Invalid, "credentials.auth_token: required")
	case c.From == "":
		return c, errs.E(op, errs.Invalid, "credentials.from: required")
	case !validSender(c.From):
		return c, errs.E(op, errs.Invalid, "credentials.from: must be an E.164 number (+14155550100), a short code, an alphanumeric sender id of up to 11 characters or a messaging service sid (MG...)")
	}
	if c.BaseURL != "" {
		if err := checkHTTPURL(c.BaseURL); err != nil {
			return c, errs.E(op, errs.Invalid, "credentials.base_url: %s", err.Msg)
		}
		c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	}
	if c.StatusCallbackURL != "" {
		if err := checkHTTPURL(c.StatusCallbackURL); err != nil {
			return c, errs.E(op, errs.Invalid, "credentials.status_callback_url: %s", err.Msg)
		}
	}
	return c, nil
}

func checkHTTPURL(s string) *errs.Error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errs.E("", errs.Invalid, "must be an absolute http(s) URL")
	}
	return nil
}

// baseURL is the API origin to call.
func (c Credentials) baseURL() string {
	if c.BaseURL == "" {
		return DefaultBaseURL
	}
	return c.BaseURL
}
