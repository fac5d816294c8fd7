package whatsapp

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// SignatureHeader carries the HMAC of a webhook body.
const SignatureHeader = "X-Hub-Signature-256"

// maxChallenge bounds the echoed hub.challenge (Meta sends an integer).
const maxChallenge = 128

// okReply acknowledges a notification once its content is persisted; Meta
// only looks at the status and retries anything but a 2xx.
var okReply = channels.WebhookReply{Status: http.StatusOK, ContentType: "text/plain; charset=utf-8", Body: []byte("OK")}

// Webhook implements channels.Webhook. A GET is Meta's subscription
// handshake: hub.verify_token must equal the account's VerifyToken
// (errs.Forbidden otherwise) and hub.challenge is echoed. A POST is a
// notification: its X-Hub-Signature-256 must be the HMAC-SHA256 of the raw
// body under the app secret (errs.Unauthorized otherwise, nothing parsed);
// its messages and statuses for this account's phone number are returned
// (errs.Invalid when the body is not a WhatsApp notification). An account
// whose credentials cannot be read is errs.Unavailable, so that Meta
// retries once the operator fixes them.
func (a *Adapter) Webhook(ctx context.Context, acct channels.Account, req channels.WebhookRequest) (channels.WebhookResult, error) {
	const op = "whatsapp.Webhook"
	creds, err := ParseCredentials(acct.Credentials)
	if err != nil {
		return channels.WebhookResult{}, &errs.Error{Op: op, Code: errs.Unavailable, Msg: "account credentials are unusable", Err: err}
	}
	switch req.Method {
	case http.MethodGet:
		res, err := handshake(creds, query(req))
		return res, errs.Wrap(op, err)
	case http.MethodPost:
		if err := VerifySignature(creds.AppSecret, req.Body, headerValue(req.Header, SignatureHeader)); err != nil {
			return channels.WebhookResult{}, errs.Wrap(op, err)
		}
		res, err := a.parse(ctx, acct, creds, req.Body)
		if err != nil {
			return channels.WebhookResult{}, errs.Wrap(op, err)
		}
		res.Reply = okReply
		return res, nil
	}
	return channels.WebhookResult{}, errs.E(op, errs.Invalid, "method %s: only GET (handshake) and POST (notifications)", req.Method)
}

// handshake answers the GET subscription request.
func handshake(creds Credentials, q url.Values) (channels.WebhookResult, error) {
	const op = "whatsapp.handshake"
	if mode := q.Get("hub.mode"); mode != "subscribe" {
		return channels.WebhookResult{}, errs.E(op, errs.Invalid, "hub.mode: must be subscribe")
	}
	if !equalSecret(q.Get("hub.verify_token"), creds.VerifyToken) {
		return channels.WebhookResult{}, errs.E(op, errs.Forbidden, "hub.verify_token does not match the account's verify token")
	}
	challenge := q.Get("hub.challenge")
	if !validChallenge(challenge) {
		return channels.WebhookResult{}, errs.E(op, errs.Invalid, "hub.challenge: must be 1 to %d letters, digits, '-', '_' or '.'", maxChallenge)
	}
	return channels.WebhookResult{Reply: channels.WebhookReply{
		Status: http.StatusOK, ContentType: "text/plain; charset=utf-8", Body: []byte(challenge),
	}}, nil
}

// validChallenge keeps the echo to the token-like strings Meta sends, so
// the endpoint cannot be used to reflect arbitrary content.
func validChallenge(s string) bool {
	if s == "" || len(s) > maxChallenge {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// equalSecret compares two secrets in constant time, length included.
func equalSecret(got, want string) bool {
	g := sha256.Sum256([]byte(got))
	w := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1 && want != ""
}

// query returns the request's query, parsing the URL when the caller did
// not fill Query.
func query(req channels.WebhookRequest) url.Values {
	if req.Query != nil {
		return req.Query
	}
	if u, err := url.Parse(req.URL); err == nil {
		return u.Query()
	}
	return url.Values{}
}

// headerValue reads a header whatever the case of the map's keys: an HTTP
// layer may hand over keys as they came on the wire.
func headerValue(h http.Header, key string) string {
	if v := h.Get(key); v != "" {
		return v
	}
	for k, vs := range h {
		if len(vs) > 0 && strings.EqualFold(k, key) {
			return vs[0]
		}
	}
	return ""
}

// Sign returns the X-Hub-Signature-256 value Meta sends with body: for load
// generators and tests that post notifications.
func Sign(appSecret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature checks an X-Hub-Signature-256 value against the raw body
// in constant time: "sha256=" followed by the hex HMAC-SHA256 of the body
// keyed with the app secret. Any failure is errs.Unauthorized.
func VerifySignature(appSecret string, body []byte, header string) error {
	const op = "whatsapp.VerifySignature"
	if header == "" {
		return errs.E(op, errs.Unauthorized, "missing %s header", SignatureHeader)
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	var got [sha256.Size]byte
	if !ok || len(hexSig) != 2*sha256.Size {
		return errs.E(op, errs.Unauthorized, "%s: not of the form sha256=<64 hex digits>", SignatureHeader)
	}
	if _, err := hex.Decode(got[:], []byte(hexSig)); err != nil {
		return errs.E(op, errs.Unauthorized, "%s: not of the form sha256=<64 hex digits>", SignatureHeader)
	}
	if appSecret == "" {
		return errs.E(op, errs.Unauthorized, "no app secret to verify %s", SignatureHeader)
	}
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	var want [sha256.Size]byte
	if !hmac.Equal(mac.Sum(want[:0]), got[:]) {
		return errs.E(op, errs.Unauthorized, "%s does not match the body", SignatureHeader)
	}
	return nil
}
