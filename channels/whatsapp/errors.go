package whatsapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
)

// APIError is an error object the Graph API returned ({"error": {...}}),
// kept as the cause of a *channels.SendError for whoever needs more than
// the classification (the trace id for Meta support, the subcode).
type APIError struct {
	// HTTPStatus is the response status.
	HTTPStatus int
	Code       int
	Subcode    int
	// Type is the Graph error type ("OAuthException"...).
	Type    string
	Title   string
	Message string
	Details string
	// FBTraceID identifies the request for Meta support.
	FBTraceID string
	Transient bool
}

// Error renders the status, code and texts.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "graph api: http %d", e.HTTPStatus)
	if e.Code != 0 || e.Type != "" {
		fmt.Fprintf(&b, ": code %d", e.Code)
		if e.Subcode != 0 {
			fmt.Fprintf(&b, "/%d", e.Subcode)
		}
	}
	if t := joinNonEmpty(": ", e.Title, e.Message); t != "" {
		if e.Title == e.Message {
			t = e.Title
		}
		b.WriteString(": " + t)
	}
	if e.Details != "" {
		b.WriteString(": " + e.Details)
	}
	if e.FBTraceID != "" {
		b.WriteString(" (fbtrace_id " + e.FBTraceID + ")")
	}
	return b.String()
}

// class is what the outbox needs to know about a failure.
type class struct {
	retry  bool // a later attempt may succeed as is
	window bool // the 24-hour window is closed: only templates
	auth   bool // the credentials or their permissions were refused
}

// Graph API error codes by handling (Cloud API error code reference).
var (
	// retryCodes are throttles and transient failures.
	retryCodes = map[int]bool{
		1:      true, // API unknown
		2:      true, // API service (temporary)
		4:      true, // application request limit
		17:     true, // user request limit
		32:     true, // page request limit
		613:    true, // calls within one hour exceeded
		80007:  true, // WhatsApp Business Account rate limit
		130429: true, // Cloud API throughput reached
		131000: true, // something went wrong
		131016: true, // service unavailable
		131048: true, // spam rate limit hit
		131056: true, // (business, consumer) pair rate limit
		131057: true, // account in maintenance mode
		133016: true, // registration rate limit
		135000: true, // generic user error (Meta advises retrying)
	}
	// authCodes mean the token is invalid, expired or lacks a permission:
	// nothing works until an operator fixes the credentials.
	authCodes = map[int]bool{
		3:   true, // capability
		10:  true, // permission denied
		102: true, // session key invalid
		190: true, // access token expired or invalid
	}
)

// Error codes of failures that are not the Graph API's own.
const (
	codeNetwork         = "network"
	codeCanceled        = "canceled"
	codeInvalidMessage  = "invalid_message"
	codeInvalidResponse = "invalid_response"
	codeCredentials     = "credentials"
)

// classify decides how the outbox treats an error object (from a response
// with HTTP status httpStatus, or 0 from a webhook).
func classify(httpStatus int, e graphError) class {
	switch {
	case e.Code == 131047:
		return class{window: true}
	case retryCodes[e.Code]:
		return class{retry: true}
	case authCodes[e.Code], e.Code >= 200 && e.Code <= 299,
		e.Code == 0 && e.Type == "OAuthException":
		return class{auth: true}
	case httpStatus == http.StatusTooManyRequests, httpStatus >= 500:
		return class{retry: true}
	case httpStatus == http.StatusUnauthorized, httpStatus == http.StatusForbidden && e.Code == 0:
		return class{auth: true}
	case e.Transient:
		return class{retry: true}
	}
	return class{}
}

// apiFailure classifies an error response.
func (a *Adapter) apiFailure(creds *Credentials, resp *http.Response, body []byte) *channels.SendError {
	var wrapper struct {
		Error *graphError `json:"error"`
	}
	var ge graphError
	if json.Unmarshal(body, &wrapper) == nil && wrapper.Error != nil {
		ge = *wrapper.Error
	}
	c := classify(resp.StatusCode, ge)
	ae := &APIError{HTTPStatus: resp.StatusCode, Code: ge.Code, Subcode: ge.Subcode, Type: ge.Type,
		Title: redact(ge.Title, creds), Message: redact(ge.Message, creds), Details: redact(ge.ErrorData.Details, creds),
		FBTraceID: ge.FBTraceID, Transient: ge.Transient}
	se := &channels.SendError{Retry: c.retry, WindowClosed: c.window, Auth: c.auth, Err: ae}
	if ge.Code != 0 || ge.Type != "" {
		se.Code = strconv.Itoa(ge.Code)
		se.Msg = redact(ge.describe(), creds)
	} else {
		se.Code = strconv.Itoa(resp.StatusCode)
		se.Msg = "HTTP " + strconv.Itoa(resp.StatusCode) + " without a Graph error"
	}
	if c.retry {
		se.RetryAfter = a.retryAfter(resp.Header)
	}
	return se
}

// networkFailure classifies a failure to get a response: all of them may
// succeed later. ctx is the caller's: its end is "canceled", the adapter's
// own timeout a network timeout. A timeout after the request left may have delivered the
// message; the Cloud API has no idempotency key, so a retry can duplicate
// it, which beats losing it.
func networkFailure(ctx context.Context, creds *Credentials, err error) *channels.SendError {
	se := &channels.SendError{Code: codeNetwork, Retry: true, Err: redactErr(err, creds)}
	var ne net.Error
	switch {
	case ctx.Err() != nil:
		se.Code = codeCanceled
		se.Msg = "the caller canceled or timed out before WhatsApp answered"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		se.Msg = "timed out waiting for WhatsApp"
	default:
		se.Msg = "could not reach WhatsApp"
	}
	return se
}

// retryAfter reads the provider's hint: Retry-After (seconds or a date),
// else the estimated_time_to_regain_access (minutes) of the Business Use
// Case rate-limit header.
func (a *Adapter) retryAfter(h http.Header) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.Atoi(v); err == nil && s >= 0 {
			return time.Duration(s) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			if d := t.Sub(a.clock.Now()); d > 0 {
				return d
			}
			return 0
		}
	}
	if v := h.Get("X-Business-Use-Case-Usage"); v != "" {
		var usage map[string][]struct {
			Minutes float64 `json:"estimated_time_to_regain_access"`
		}
		if json.Unmarshal([]byte(v), &usage) == nil {
			var max float64
			for _, us := range usage {
				for _, u := range us {
					if u.Minutes > max {
						max = u.Minutes
					}
				}
			}
			if max > 0 && max < 24*60 {
				return time.Duration(max * float64(time.Minute))
			}
		}
	}
	return 0
}

// redact removes the access token from a text that might echo it.
func redact(s string, creds *Credentials) string {
	if creds == nil || creds.AccessToken == "" || !strings.Contains(s, creds.AccessToken) {
		return s
	}
	return strings.ReplaceAll(s, creds.AccessToken, "[redacted]")
}

// redactErr keeps err unless its text echoes the access token.
func redactErr(err error, creds *Credentials) error {
	if err == nil || creds == nil || creds.AccessToken == "" || !strings.Contains(err.Error(), creds.AccessToken) {
		return err
	}
	return errors.New(redact(err.Error(), creds))
}
