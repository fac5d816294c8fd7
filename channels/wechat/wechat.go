// Package wechat is the WeChat Official Account (公众号 / 服务号) adapter. Its
// webhook answers the server-URL verification, checks the signature of
// every push (plain mode) or decrypts it (compatible and safe mode, through
// wxcrypt) and turns the pushed XML into channels.Inbound values. WeChat
// gives a push 5 seconds and shows the customer an error when no valid
// answer comes, so the webhook answers "success" at once and replies go
// through the customer-service API (the Sender) later.
//
// The access token is fetched from the stable_token endpoint and shared by
// the whole cluster through wxtoken. Errors of the send API become
// *channels.SendError classified for the outbox: a refused token is
// refreshed and the send retried once at once, a closed 48-hour window
// (45015) is WindowClosed, throttling and "system busy" are retried, and
// everything else fails that message.
//
// The adapter holds no per-account state: every call reads the account's
// Credentials, so credential changes take effect on the next call.
package wechat

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
	_ channels.Sender  = (*Adapter)(nil)
)

// Limits and defaults of the adapter.
const (
	// DefaultMaxBody bounds a pushed body. A WeChat push is a few hundred
	// bytes to a few KB (text is capped by the client, media arrive as
	// ids); 256 KB leaves room for compatible mode, which carries every
	// field twice, and refuses anything that is not a push.
	DefaultMaxBody = 256 << 10
	// DefaultMaxSkew is how far a push's signed timestamp may be from our
	// clock. WeChat signs each delivery afresh and gives up on a push
	// after three tries within about 15 seconds, so an older signature is
	// a replay; messages are also deduplicated by MsgId, which makes a
	// replay harmless, but events are not all worth replaying.
	DefaultMaxSkew = 5 * time.Minute
	// DefaultTimeout bounds one API call when the caller's context has no
	// earlier deadline.
	DefaultTimeout = 30 * time.Second
	// maxResponseBytes bounds the JSON bodies read from the API.
	maxResponseBytes = 1 << 20
)

// Options configure an Adapter; zero fields take defaults.
type Options struct {
	// HTTPClient calls the WeChat API; a client with DefaultTimeout when nil.
	HTTPClient *http.Client
	// Logger receives what the adapter skips; discarded when nil.
	Logger *slog.Logger
	// Clock checks push timestamps and dates inbound messages; the wall
	// clock when nil.
	Clock clock.Clock
	// MaxBody bounds pushed bodies; DefaultMaxBody when 0.
	MaxBody int
	// MaxSkew bounds the age of a push's timestamp; DefaultMaxSkew when 0,
	// no check when negative.
	MaxSkew time.Duration
}

// Adapter is the WeChat Official Account channel: a channels.Webhook and a
// channels.Sender. It is safe for concurrent use.
type Adapter struct {
	tokens  *wxtoken.Cache
	client  *http.Client
	log     *slog.Logger
	clock   clock.Clock
	maxBody int
	maxSkew time.Duration
}

// New returns an adapter whose access tokens live in tokens (shared with
// every node, and with other adapters of the same app ids).
func New(tokens *wxtoken.Cache, opts Options) *Adapter {
	a := &Adapter{tokens: tokens, client: opts.HTTPClient, log: opts.Logger, clock: opts.Clock, maxBody: opts.MaxBody, maxSkew: opts.MaxSkew}
	if a.client == nil {
		a.client = &http.Client{Timeout: DefaultTimeout}
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.clock == nil {
		a.clock = clock.Real{}
	}
	if a.maxBody <= 0 {
		a.maxBody = DefaultMaxBody
	}
	if a.maxSkew == 0 {
		a.maxSkew = DefaultMaxSkew
	}
	return a
}
