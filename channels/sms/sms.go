// Package sms is the SMS channel: a Twilio-compatible HTTP adapter. Inbound
// texts and delivery reports arrive as signed form-encoded webhooks
// (X-Twilio-Signature), outbound texts leave through the Messages API
// (POST /2010-04-01/Accounts/{sid}/Messages.json). SMS is also the fallback
// of the windowed channels (WhatsApp, WeChat), so its errors are classified
// carefully: an opt-out or a landline must not be retried, a queue overflow
// must.
//
// Decisions worth knowing:
//
//   - Long texts: the Messages API takes a Body of at most MaxBodyLength
//     characters (UTF-16 code units) and splits it into carrier segments
//     itself. A longer Outbound is refused as permanent (code 21617, the
//     provider's own) before any call, rather than split into several
//     sends: the API has no idempotency key, so a split send that fails
//     half-way would be retried whole and deliver its first parts twice.
//     The console should keep agents under the limit (ValidateOutbound).
//   - Idempotency: the Messages API has no idempotency key. A send whose
//     response is lost (timeout after the provider accepted it) is
//     classified retryable, because losing a message is worse than
//     duplicating one; such a retry may deliver the text twice.
//   - Inbound webhooks are idempotent on MessageSid (ChannelMsgID), which
//     the provider keeps across its own retries.
package sms

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/clock"
)

// DefaultTimeout bounds one API call when Options has no HTTP client.
const DefaultTimeout = 15 * time.Second

// Adapter is the SMS channel's webhook and sender. It is stateless apart
// from its HTTP client and safe for concurrent use; every account's
// credentials come with the call.
type Adapter struct {
	hc    *http.Client
	clock clock.Clock
	log   *slog.Logger
}

var (
	_ channels.Webhook = (*Adapter)(nil)
	_ channels.Sender  = (*Adapter)(nil)
)

// Options configure an Adapter; zero fields take defaults.
type Options struct {
	// HTTPClient calls the Messages API; a client with DefaultTimeout when
	// nil.
	HTTPClient *http.Client
	// Logger receives what the adapter ignores or cannot classify;
	// discarded when nil.
	Logger *slog.Logger
	// Clock stamps inbound messages and status updates (the provider's
	// webhooks carry no time); the wall clock when nil.
	Clock clock.Clock
}

// New returns an adapter.
func New(opts Options) *Adapter {
	a := &Adapter{hc: opts.HTTPClient, clock: opts.Clock, log: opts.Logger}
	if a.hc == nil {
		a.hc = &http.Client{Timeout: DefaultTimeout}
	}
	if a.clock == nil {
		a.clock = clock.Real{}
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	return a
}
