package sms

import "strconv"

// class is what a provider error code means for the outbox.
type class int

const (
	permanent class = iota // retrying the same message cannot help
	retry                  // a later attempt may succeed
	auth                   // the account's credentials were refused
)

type codeInfo struct {
	class class
	desc  string
}

// codes classifies the provider's error codes, for both synchronous API
// errors (Messages.json) and asynchronous delivery failures (ErrorCode of a
// status callback). The choices:
//
//   - Rate and queue limits (20429, 21611, 30001, 30022, 30023, 63018) are
//     retryable: the message was fine, we sent too fast.
//   - 30003 (handset unreachable: switched off, out of coverage) is
//     retryable: the provider's own guidance is that it is usually
//     transient and a later send may get through. The outbox's attempt
//     limit bounds the retries.
//   - 30008 (unknown error), 30009 (missing segment), 30021 (provider
//     internal failure) and 20500/20503 are retryable: nothing says the
//     message or the recipient is wrong.
//   - Everything about the recipient or the content is permanent: an
//     invalid, unknown or landline number (21211, 21614, 21635, 30005,
//     30006), an opt-out (21610: the customer texted STOP; sending again is
//     unlawful in many countries), blocked or filtered content (30004,
//     30007), a region without permission (21408), body or media errors.
//   - 20003 (authentication) and a suspended account (30002) are auth: no
//     retry helps until an operator fixes the account.
//
// Codes not listed fall back to the HTTP status for API errors (429 and 5xx
// retryable, 401 auth, other 4xx permanent) and to permanent for delivery
// failures, so that an unknown failure never loops.
var codes = map[int]codeInfo{
	20003: {auth, "authentication failed"},
	20404: {permanent, "resource not found (account sid?)"},
	20429: {retry, "too many requests"},
	20500: {retry, "provider internal error"},
	20503: {retry, "provider unavailable"},
	21211: {permanent, "invalid 'To' phone number"},
	21408: {permanent, "permission to send to this region not enabled"},
	21602: {permanent, "message body required"},
	21603: {permanent, "'From' or 'MessagingServiceSid' required"},
	21604: {permanent, "'To' required"},
	21606: {permanent, "'From' number not valid for this account"},
	21610: {permanent, "recipient unsubscribed (replied STOP)"},
	21611: {retry, "sender queue full"},
	21612: {permanent, "cannot route to this number"},
	21614: {permanent, "'To' is not a mobile number"},
	21617: {permanent, "body exceeds 1600 characters"},
	21620: {permanent, "invalid media URL"},
	21635: {permanent, "'To' is a landline"},
	21660: {permanent, "'From' does not belong to the account"},
	30001: {retry, "queue overflow"},
	30002: {auth, "account suspended"},
	30003: {retry, "unreachable destination handset"},
	30004: {permanent, "message blocked by recipient"},
	30005: {permanent, "unknown destination handset"},
	30006: {permanent, "landline or unreachable carrier"},
	30007: {permanent, "filtered by carrier"},
	30008: {retry, "unknown delivery error"},
	30009: {retry, "missing segment"},
	30010: {permanent, "price exceeds max price"},
	30021: {retry, "provider internal failure"},
	30022: {retry, "10DLC rate limit exceeded"},
	30023: {retry, "10DLC daily cap reached"},
	30034: {permanent, "sender not registered for A2P 10DLC"},
	63016: {permanent, "outside the customer-service window"},
	63018: {retry, "rate limit exceeded for the channel"},
}

// lookup returns what a numeric code (as text) means; ok is false for an
// unknown or non-numeric code.
func lookup(code string) (codeInfo, bool) {
	n, err := strconv.Atoi(code)
	if err != nil {
		return codeInfo{}, false
	}
	ci, ok := codes[n]
	return ci, ok
}
