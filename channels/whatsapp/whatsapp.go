// Package whatsapp is the WhatsApp Business Cloud API adapter: it verifies
// and parses Meta's webhooks (the subscription handshake, signed message
// and delivery-status notifications) into channels.Inbound and
// channels.StatusUpdate values, sends outbound messages through the Graph
// API, marks messages read and downloads customers' media.
//
// Errors from the Graph API become *channels.SendError classified for the
// outbox: throttling and outages are retried, a closed 24-hour window
// (131047) is reported as WindowClosed so that a template or another
// channel can be used, refused credentials as Auth, and everything else as
// a permanent failure of that message.
//
// Inbound messages keep WhatsApp's own JSON in Inbound.Raw and map as
// follows: text, image, audio (Media.Voice for voice notes), video,
// document and sticker to the same Msg* types; interactive button and list
// replies and template quick-reply buttons ("button") to MsgInteractive
// with Choice; location, contacts and reaction to their types (an empty
// reaction emoji is a removal); system notices (number changes) and
// request_welcome (a first chat opened) to MsgEvent; unsupported, order
// and unknown types to MsgUnsupported with a readable Text. Forwarding
// and ad referrals are read with InboundExtras.
//
// The adapter holds no per-account state: every call reads the account's
// Credentials, so credential changes take effect on the next call.
package whatsapp

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/clock"
)

// Compile-time checks that the adapter fulfils the channel contract.
var (
	_ channels.Webhook = (*Adapter)(nil)
	_ channels.Sender  = (*Adapter)(nil)
)

// Limits of the adapter.
const (
	// DefaultMaxMediaBytes bounds a media download: Meta's own cap is
	// 100 MB (documents), so anything larger is not a real attachment.
	DefaultMaxMediaBytes = 100 << 20
	// DefaultTimeout bounds one Graph API call (and the wait for a media
	// download's first byte) when the caller's context has no deadline.
	DefaultTimeout = 30 * time.Second
	// maxResponseBytes bounds the JSON bodies read from the Graph API.
	maxResponseBytes = 1 << 20
)

// Options configure an Adapter; zero fields take defaults.
type Options struct {
	// HTTPClient sends Graph API requests; a plain client when nil. A
	// client-wide Timeout also cuts long media downloads short, so leave
	// it unset and use Timeout and contexts instead.
	HTTPClient *http.Client
	// Timeout bounds calls made with a context that has no deadline;
	// DefaultTimeout when 0.
	Timeout time.Duration
	// Logger receives what the adapter skips or cannot use (changes of
	// other numbers, webhook-level errors); discarded when nil.
	Logger *slog.Logger
	// Clock dates messages whose timestamp is missing and resolves
	// Retry-After dates; the wall clock when nil.
	Clock clock.Clock
	// MaxMediaBytes bounds media downloads; DefaultMaxMediaBytes when 0.
	MaxMediaBytes int64
}

// Adapter is the WhatsApp channel: a channels.Webhook and a
// channels.Sender. It is safe for concurrent use.
type Adapter struct {
	client   *http.Client
	timeout  time.Duration
	log      *slog.Logger
	clock    clock.Clock
	maxMedia int64
}

// New returns an adapter.
func New(opts Options) *Adapter {
	a := &Adapter{client: opts.HTTPClient, timeout: opts.Timeout, log: opts.Logger, clock: opts.Clock, maxMedia: opts.MaxMediaBytes}
	if a.client == nil {
		a.client = &http.Client{}
	}
	if a.timeout <= 0 {
		a.timeout = DefaultTimeout
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.clock == nil {
		a.clock = clock.Real{}
	}
	if a.maxMedia <= 0 {
		a.maxMedia = DefaultMaxMediaBytes
	}
	return a
}
