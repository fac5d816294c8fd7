package whatsapp

import (
	"encoding/json"
	"net/url"
	"strings"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// Defaults of Credentials.
const (
	// DefaultAPIVersion is the Graph API version used when an account does
	// not pin one. Meta keeps a version for about two years, so accounts
	// can pin the one they tested against.
	DefaultAPIVersion = "v21.0"
	// DefaultBaseURL is the Graph API host.
	DefaultBaseURL = "https://graph.facebook.com"
)

// Credentials are a WhatsApp account's secrets and addresses, kept as JSON
// in channels.Account.Credentials. One account is one business phone
// number of a WhatsApp Business Account.
type Credentials struct {
	// PhoneNumberID is the Graph id of the business number (not the phone
	// number itself): sends go to /{PhoneNumberID}/messages, and webhook
	// changes for other numbers of the same app are not this account's.
	PhoneNumberID string `json:"phone_number_id"`
	// AccessToken is a system-user or user token with whatsapp_business_messaging.
	AccessToken string `json:"access_token"`
	// AppSecret keys the HMAC of webhook bodies (X-Hub-Signature-256).
	AppSecret string `json:"app_secret"`
	// VerifyToken is the string the operator typed into the App Dashboard;
	// Meta echoes it in the GET subscription handshake.
	VerifyToken string `json:"verify_token"`
	// WABAID is the WhatsApp Business Account id (informational; templates
	// are managed under it).
	WABAID string `json:"waba_id,omitempty"`
	// APIVersion is the Graph API version ("v21.0"); DefaultAPIVersion when empty.
	APIVersion string `json:"api_version,omitempty"`
	// BaseURL is the Graph API origin; DefaultBaseURL when empty. Tests
	// point it at a fake server.
	BaseURL string `json:"base_url,omitempty"`
}

// ValidateCredentials checks an account's credentials JSON before it is
// stored, so that a typo is reported when the operator saves the account
// rather than when the first customer writes. Unknown keys are refused for
// the same reason. Messages name the field and never echo a secret.
func ValidateCredentials(raw json.RawMessage) error {
	const op = "whatsapp.ValidateCredentials"
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
	const op = "whatsapp.ParseCredentials"
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
	const op = "whatsapp.Credentials"
	c.PhoneNumberID = strings.TrimSpace(c.PhoneNumberID)
	c.WABAID = strings.TrimSpace(c.WABAID)
	c.APIVersion = strings.TrimSpace(c.APIVersion)
	c.BaseURL = strings.TrimSpace(c.BaseURL)
	switch {
	case c.PhoneNumberID == "":
		return errs.E(op, errs.Invalid, "credentials.phone_number_id: required")
	case !isGraphID(c.PhoneNumberID):
		return errs.E(op, errs.Invalid, "credentials.phone_number_id: must be the numeric Graph id of the number, not the phone number")
	case c.AccessToken == "":
		return errs.E(op, errs.Invalid, "credentials.access_token: required")
	case !isHeaderSafe(c.AccessToken):
		return errs.E(op, errs.Invalid, "credentials.access_token: must not contain spaces or control characters")
	case c.AppSecret == "":
		return errs.E(op, errs.Invalid, "credentials.app_secret: required (it verifies webhook signatures)")
	case c.VerifyToken == "":
		return errs.E(op, errs.Invalid, "credentials.verify_token: required (it answers the webhook subscription handshake)")
	case c.WABAID != "" && !isGraphID(c.WABAID):
		return errs.E(op, errs.Invalid, "credentials.waba_id: must be a numeric Graph id")
	}
	if c.APIVersion == "" {
		c.APIVersion = DefaultAPIVersion
	} else if !isAPIVersion(c.APIVersion) {
		return errs.E(op, errs.Invalid, "credentials.api_version: must look like v21.0")
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

// endpoint is the URL of a Graph path under the account's version.
func (c *Credentials) endpoint(path ...string) string {
	var b strings.Builder
	b.WriteString(c.BaseURL)
	b.WriteByte('/')
	b.WriteString(c.APIVersion)
	for _, p := range path {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(p))
	}
	return b.String()
}

// isGraphID accepts Graph object ids: decimal digits.
func isGraphID(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isAPIVersion accepts "v" digits "." digits.
func isAPIVersion(s string) bool {
	if len(s) < 4 || len(s) > 10 || s[0] != 'v' {
		return false
	}
	major, minor, ok := strings.Cut(s[1:], ".")
	return ok && isGraphID(major) && isGraphID(minor)
}

// isHeaderSafe accepts a token that can go into an Authorization header
// unchanged.
func isHeaderSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}
