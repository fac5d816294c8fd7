// Package wecomkf is the WeCom customer-service (微信客服) channel: WeChat
// users write to a company's customer-service account, and the company's
// self-built app receives and answers through the kf API.
//
// The provider notifies, then we pull. Its encrypted callback carries no
// message, only "something new" and a short-lived token; the Webhook
// verifies and decrypts it (through wxcrypt) and asks for a pull. The
// Puller calls sync_msg from the account's persisted cursor and turns the
// customer's messages (origin 3) and the enter-session event into
// channels.Inbound; delivery failures of our sends (msg_send_fail) become
// StatusUpdates and the other system events (session and servicer status
// changes, recalls) are reported as Events by PullPage. Messages a servicer
// typed in the WeCom client (origin 5) are skipped: they are not the
// customer's, and sync_msg never returns what we sent through send_msg.
//
// The Sender calls send_msg. WeCom lets the API write to a customer only
// while their service state is 0 (new) or 1 (smart assistant), within 48
// hours of their last message and at most 5 times per customer message;
// the provider's refusals of those rules are WindowClosed. The msgid of a
// send is our idempotency key, so a retried send is not delivered twice.
//
// SetState / GetState drive the provider's own session state machine
// (service_state), which StateForSession maps from ours.
//
// Access tokens are per app (corp id + secret) and shared by the cluster
// through wxtoken; a refused token is dropped and the call made once more
// with a fresh one. The adapter holds no per-account state: every call
// reads the account's Credentials.
package wecomkf

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/wxtoken"
	"github.com/switchboard-acd/switchboard/internal/clock"
)

// Compile-time checks that the adapter fulfils the channel contract.
var (
	_ channels.Webhook = (*Adapter)(nil)
	_ channels.Puller  = (*Adapter)(nil)
	_ channels.Sender  = (*Adapter)(nil)
)

// Limits and defaults of the adapter.
const (
	// DefaultTimeout bounds one API call when no HTTP client is given.
	DefaultTimeout = 30 * time.Second
	// MaxCallbackBody bounds a callback body: the encrypted doorbell is
	// well under 1 KB.
	MaxCallbackBody = 64 << 10
	// SyncLimit is the page size asked of sync_msg, the provider's maximum.
	SyncLimit = 1000
	// maxResponseBytes bounds a JSON answer; a full sync_msg page of 1000
	// messages is a few hundred KB.
	maxResponseBytes = 8 << 20
)

// Options configure an Adapter; zero fields take defaults.
type Options struct {
	// HTTPClient calls the WeCom API; a client with DefaultTimeout when nil.
	HTTPClient *http.Client
	// Logger receives what the adapter skips or retries; discarded when nil.
	Logger *slog.Logger
	// Clock dates inbound messages the provider did not date; the wall
	// clock when nil.
	Clock clock.Clock
}

// Adapter is the WeCom customer-service channel: a channels.Webhook, a
// channels.Puller and a channels.Sender, plus the service-state calls. It
// is safe for concurrent use.
type Adapter struct {
	tokens *wxtoken.Cache
	client *http.Client
	log    *slog.Logger
	clock  clock.Clock
}

// New returns an adapter whose access tokens live in tokens (shared with
// every node and with other adapters of the same WeCom app).
func New(tokens *wxtoken.Cache, opts Options) *Adapter {
	a := &Adapter{tokens: tokens, client: opts.HTTPClient, log: opts.Logger, clock: opts.Clock}
	if a.client == nil {
		a.client = &http.Client{Timeout: DefaultTimeout}
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.clock == nil {
		a.clock = clock.Real{}
	}
	return a
}
