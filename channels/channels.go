// Package channels is the contract between Switchboard and the messaging
// channels customers write from (web chat, WhatsApp, WeChat, WeCom, SMS).
// Providers differ in how messages reach us and how we reach them:
//
//   - live push (web chat): the customer holds a connection; outbound
//     messages are delivered on it and replayed from the store on resume;
//   - webhook push with a passive-reply deadline (WeChat Official Accounts):
//     the adapter verifies, persists and acknowledges at once, and replies
//     later through the provider's send API (a Sender);
//   - pull with a cursor (WeCom customer service): a callback only says
//     "something new"; a Puller fetches from a persisted cursor;
//   - delivery-status callbacks (WhatsApp, SMS): StatusUpdates change the
//     delivery status of messages we sent.
//
// Whatever the shape, inbound traffic becomes Inbound values handed to a
// Receiver (the session engine's entry), idempotent on ChannelMsgID, and
// outbound traffic leaves through a Sender fed by the durable outbox.
package channels

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/switchboard-acd/switchboard/internal/errs"
)

// Type names a kind of channel.
type Type string

// Channel types.
const (
	WebChat  Type = "webchat"
	WhatsApp Type = "whatsapp"
	WeChatOA Type = "wechat_oa"
	WeComKF  Type = "wecom_kf"
	SMS      Type = "sms"
)

// Account is one channel account of a tenant: one web-chat widget, one
// WhatsApp number, one WeChat Official Account... PublicKey identifies it in
// URLs (widget key, webhook path); Secret signs or verifies traffic.
type Account struct {
	TenantID  string `json:"tenant_id"`
	ID        string `json:"id"`
	Type      Type   `json:"type"`
	Name      string `json:"name"`
	PublicKey string `json:"public_key"`
	Secret    string `json:"-"`
	// Credentials are the provider's credentials as JSON (app secret,
	// access token, AES key...), each adapter reading its own fields. They
	// are encrypted at rest; here they are in the clear and never
	// serialised to clients.
	Credentials    json.RawMessage `json:"-"`
	DefaultGroupID string          `json:"default_group_id,omitempty"`
	Settings       json.RawMessage `json:"settings,omitempty"`
	// SessionCost is how many units of an agent's capacity (max_sessions)
	// a session from this account takes: a voice-like channel that needs
	// full attention can cost more than a chat. MinSessionCost..
	// MaxSessionCost; 0 on input takes DefaultSessionCost.
	SessionCost int `json:"session_cost"`
	// Enabled accounts take webhooks and send; a disabled one refuses its
	// webhooks and keeps its outbox waiting.
	Enabled bool `json:"enabled"`
	// Version counts updates (optimistic concurrency, ETag).
	Version   int64      `json:"version"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
}

// Limits of Account.SessionCost.
const (
	MinSessionCost     = 1
	MaxSessionCost     = 10
	DefaultSessionCost = 1
)

// ValidateSessionCost checks an account's per-session capacity cost.
func ValidateSessionCost(n int) error {
	if n < MinSessionCost || n > MaxSessionCost {
		return errs.E("channels.ValidateSessionCost", errs.Invalid, "session_cost: must be between %d and %d", MinSessionCost, MaxSessionCost)
	}
	return nil
}

// AccountStore keeps channel accounts.
type AccountStore interface {
	// AccountCreate stores a new account; a zero SessionCost is stored as
	// DefaultSessionCost, one out of range is Invalid.
	AccountCreate(ctx context.Context, a Account) error
	// AccountGet returns an account of a tenant.
	AccountGet(ctx context.Context, tenantID, id string) (Account, error)
	// AccountByKey finds an account by its public key, across tenants.
	AccountByKey(ctx context.Context, key string) (Account, error)
	// AccountList lists a tenant's accounts.
	AccountList(ctx context.Context, tenantID string) ([]Account, error)
}

// Inbound is one message (or event) from a customer as a provider delivered
// it, normalised. Exactly the fields of its Type are set; Raw keeps the
// provider's own JSON of the message for what is not normalised.
type Inbound struct {
	AccountID string
	// ExternalID identifies the customer on the channel (wa_id, openid,
	// external_userid, phone number, visitor id...).
	ExternalID  string
	DisplayName string
	// UnionID (WeChat) and Phone (WhatsApp wa_id, SMS sender) are identity
	// facts that let contacts be merged across channels.
	UnionID string
	Phone   string
	// ChannelMsgID is the provider's message id: the idempotency key for
	// webhook retries and re-pulls. ClientMsgID is the client's own id (web
	// chat).
	ChannelMsgID string
	ClientMsgID  string
	// Type is one of the Msg* constants.
	Type string
	// Text is the text, a caption, or a readable rendering of the message
	// for types that have one (a button title, a location's name).
	Text     string
	Media    *Media
	Location *Location
	// Choice is the button or list row the customer picked (MsgInteractive).
	Choice *Choice
	// Reaction is an emoji on one of our messages (MsgReaction).
	Reaction *Reaction
	// ReplyTo is the provider id of the message the customer replied to.
	ReplyTo string
	// Event is set for MsgEvent (subscribe, scan, menu click, location
	// report, ...): events move no conversation on by themselves, but are
	// recorded (attribution) and may start a session.
	Event *Event
	// Raw keeps the provider payload of this message.
	Raw        json.RawMessage
	ReceivedAt time.Time
}

// Message types of Inbound and Outbound.
const (
	MsgText        = "text"
	MsgImage       = "image"
	MsgAudio       = "audio"
	MsgVideo       = "video"
	MsgDocument    = "document"
	MsgSticker     = "sticker"
	MsgLocation    = "location"
	MsgContacts    = "contacts"
	MsgInteractive = "interactive"
	MsgReaction    = "reaction"
	MsgTemplate    = "template"
	MsgEvent       = "event"
	MsgUnsupported = "unsupported"
)

// Media is an attachment. Inbound media carries the provider's media id
// (fetched later through the adapter's media download); outbound media a
// public URL or a media id uploaded before.
type Media struct {
	ID       string `json:"id,omitempty"`
	URL      string `json:"url,omitempty"`
	MIMEType string `json:"mime_type,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	Filename string `json:"filename,omitempty"`
	Caption  string `json:"caption,omitempty"`
	// Voice marks a voice note (WhatsApp audio.voice); Recognition is the
	// provider's speech-to-text (WeChat voice Recognition).
	Voice       bool   `json:"voice,omitempty"`
	Recognition string `json:"recognition,omitempty"`
}

// Location is a shared or reported position.
type Location struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
	Name      string  `json:"name,omitempty"`
	Address   string  `json:"address,omitempty"`
	URL       string  `json:"url,omitempty"`
	// Precision is the reported accuracy in meters (WeChat LOCATION event);
	// Scale is a map zoom level (WeChat location message).
	Precision float64 `json:"precision,omitempty"`
	Scale     int     `json:"scale,omitempty"`
}

// Choice is one button or list row: ID is what comes back when it is
// picked, Title what the customer sees.
type Choice struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
}

// Reaction is an emoji set on (or, when Emoji is empty, removed from) the
// message with provider id MessageID.
type Reaction struct {
	MessageID string `json:"message_id"`
	Emoji     string `json:"emoji"`
}

// Event kinds.
const (
	EventSubscribe    = "subscribe"
	EventUnsubscribe  = "unsubscribe"
	EventScan         = "scan"
	EventClick        = "click"
	EventView         = "view"
	EventLocation     = "location"
	EventEnterSession = "enter_session"
	EventOther        = "other"
)

// Event is a non-message happening on a channel. Key is the menu key or
// URL (click, view); Scene the QR code's scene for attribution (subscribe
// through a QR code, scan); Ticket the QR ticket.
type Event struct {
	Kind     string    `json:"kind"`
	Key      string    `json:"key,omitempty"`
	Scene    string    `json:"scene,omitempty"`
	Ticket   string    `json:"ticket,omitempty"`
	Location *Location `json:"location,omitempty"`
	// Name is the provider's own name of the event (for EventOther).
	Name string `json:"name,omitempty"`
}

// Receiver takes inbound messages into the system; it must persist before
// returning, so that an adapter acknowledges the provider only afterwards.
type Receiver interface {
	Receive(ctx context.Context, acct Account, in Inbound) (duplicate bool, err error)
}

// WebhookRequest is one HTTP call a provider made to an account's webhook,
// free of any HTTP framework. URL is absolute, as the provider addressed it
// (Twilio signs the URL); Body is the raw body (signatures are over bytes).
type WebhookRequest struct {
	Method string
	URL    string
	Query  url.Values
	Header http.Header
	Body   []byte
}

// WebhookReply is the HTTP response to give the provider, once everything
// the call carried is persisted.
type WebhookReply struct {
	Status      int
	ContentType string
	Body        []byte
}

// WebhookResult is what an adapter made of one webhook call.
type WebhookResult struct {
	Inbound  []Inbound
	Statuses []StatusUpdate
	// Pull asks for the account's Puller to run now (the callback only said
	// "something new", WeCom); PullToken is handed to it.
	Pull      bool
	PullToken string
	Reply     WebhookReply
}

// Webhook is the inbound side of a provider. It verifies and parses; it
// stores nothing. A bad signature, timestamp or app id is errs.Unauthorized
// (nothing is stored), a malformed body errs.Invalid. Verification
// handshakes (hub.challenge, echostr) are answered through Reply with no
// Inbound.
type Webhook interface {
	Webhook(ctx context.Context, acct Account, req WebhookRequest) (WebhookResult, error)
}

// Outbound is one message to send to a customer.
type Outbound struct {
	AccountID  string `json:"account_id"`
	ExternalID string `json:"external_id"`
	MessageID  string `json:"message_id"`
	// IdempotencyKey is passed to providers that support one.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// Type is MsgText, a media type, MsgInteractive (Text + Choices as
	// buttons, or a list beyond 3), MsgTemplate or MsgLocation.
	Type     string          `json:"type"`
	Text     string          `json:"text,omitempty"`
	Media    *Media          `json:"media,omitempty"`
	Choices  []Choice        `json:"choices,omitempty"`
	Template *Template       `json:"template,omitempty"`
	Location *Location       `json:"location,omitempty"`
	ReplyTo  string          `json:"reply_to,omitempty"`
	Raw      json.RawMessage `json:"raw,omitempty"`
}

// Template is a pre-approved message (WhatsApp templates: the only thing
// that may be sent outside the customer-service window). Components is the
// provider's JSON, passed through.
type Template struct {
	Name       string          `json:"name"`
	Language   string          `json:"language"`
	Components json.RawMessage `json:"components,omitempty"`
}

// SendResult is what the provider said about a send.
type SendResult struct {
	ChannelMsgID string
}

// Sender delivers outbound messages to a provider. Errors should be
// *SendError so the outbox knows whether a retry can help.
type Sender interface {
	Send(ctx context.Context, acct Account, out Outbound) (SendResult, error)
}

// Retryable is implemented by send errors that know whether retrying helps
// (rate limits, 5xx, timeouts) or not (invalid recipient, closed window).
type Retryable interface {
	Retryable() bool
}

// SendError is a classified provider failure.
type SendError struct {
	// Code is the provider's error code ("131047", "45015", "429"...).
	Code string
	Msg  string
	// Retry says a later attempt may succeed; RetryAfter, when set, is the
	// provider's own hint.
	Retry      bool
	RetryAfter time.Duration
	// WindowClosed says the customer-service window is closed: only a
	// template (WhatsApp) or nothing (WeChat) can reach the customer now;
	// the outbox may fall back to SMS.
	WindowClosed bool
	// Auth says the account's credentials were refused (expired token):
	// retryable once they are refreshed.
	Auth bool
	Err  error
}

// Error renders the provider's code and message.
func (e *SendError) Error() string {
	s := "send failed"
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap exposes the cause.
func (e *SendError) Unwrap() error { return e.Err }

// Retryable implements Retryable.
func (e *SendError) Retryable() bool { return e.Retry }

// PullResult is one page fetched by a Puller.
type PullResult struct {
	Inbound []Inbound
	// Statuses are delivery outcomes the page reported for messages we
	// sent (WeCom's msg_send_fail).
	Statuses []StatusUpdate
	// Next is the cursor to persist once Inbound is stored; HasMore asks
	// for another pull straight away.
	Next    string
	HasMore bool
}

// Puller fetches inbound messages from providers that only notify (WeCom
// customer service): from cursor on. token is the callback's short-lived
// token ("" when pulling on a timer).
type Puller interface {
	Pull(ctx context.Context, acct Account, cursor, token string) (PullResult, error)
}

// StatusUpdate is a delivery-status callback for a message we sent.
type StatusUpdate struct {
	AccountID    string
	ChannelMsgID string
	// ExternalID is the recipient, when the provider says.
	ExternalID string
	// Status is sent, delivered, read or failed.
	Status string
	// Code and Error describe a failure; Retryable classifies it.
	Code      string
	Error     string
	Retryable bool
	At        time.Time
}

// Delivery statuses.
const (
	StatusSent      = "sent"
	StatusDelivered = "delivered"
	StatusRead      = "read"
	StatusFailed    = "failed"
)

// Window is how long after a customer's last message a channel lets a
// business write freely (the customer-service window); 0 means no window.
func (t Type) Window() time.Duration {
	switch t {
	case WhatsApp:
		return 24 * time.Hour
	case WeChatOA, WeComKF:
		return 48 * time.Hour
	}
	return 0
}

// AccountSettings are the provider-independent settings of an account,
// kept in Account.Settings next to provider-specific ones.
type AccountSettings struct {
	// RatePerSec and Burst bound sends through this account across all
	// nodes (0: the channel's default, DefaultRate).
	RatePerSec float64 `json:"rate_per_sec,omitempty"`
	Burst      int     `json:"burst,omitempty"`
	// FallbackAccountID is an SMS account used when a send fails
	// permanently or the window is closed.
	FallbackAccountID string `json:"fallback_account_id,omitempty"`
	// Hours are the account's business hours (acd hours syntax); empty:
	// the entry group's.
	Hours string `json:"hours,omitempty"`
	// Entry is "bot" (default) or "group": straight to DefaultGroupID.
	Entry string `json:"entry,omitempty"`
}

// DefaultRate is a channel's send rate per account when none is set
// (WhatsApp Cloud API: 80 messages/s per number).
func (t Type) DefaultRate() float64 {
	switch t {
	case WhatsApp:
		return 80
	case WeChatOA, WeComKF:
		return 50
	case SMS:
		return 10
	}
	return 100
}
