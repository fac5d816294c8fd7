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
	TenantID       string          `json:"tenant_id"`
	ID             string          `json:"id"`
	Type           Type            `json:"type"`
	Name           string          `json:"name"`
	PublicKey      string          `json:"public_key"`
	Secret         string          `json:"-"`
	DefaultGroupID string          `json:"default_group_id,omitempty"`
	Settings       json.RawMessage `json:"settings,omitempty"`
	// SessionCost is how many units of an agent's capacity (max_sessions)
	// a session from this account takes: a voice-like channel that needs
	// full attention can cost more than a chat. MinSessionCost..
	// MaxSessionCost; 0 on input takes DefaultSessionCost.
	SessionCost int       `json:"session_cost"`
	CreatedAt   time.Time `json:"created_at"`
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

// Inbound is one message from a customer as a provider delivered it,
// normalised.
type Inbound struct {
	AccountID string
	// ExternalID identifies the customer on the channel (wa_id, openid,
	// visitor id...).
	ExternalID  string
	DisplayName string
	// ChannelMsgID is the provider's message id: the idempotency key for
	// webhook retries. ClientMsgID is the client's own id (web chat).
	ChannelMsgID string
	ClientMsgID  string
	Type         string
	Text         string
	// Raw keeps the provider payload for types not normalised yet.
	Raw        json.RawMessage
	ReceivedAt time.Time
}

// Receiver takes inbound messages into the system; it must persist before
// returning, so that an adapter acknowledges the provider only afterwards.
type Receiver interface {
	Receive(ctx context.Context, acct Account, in Inbound) (duplicate bool, err error)
}

// Outbound is one message to send to a customer.
type Outbound struct {
	AccountID  string
	ExternalID string
	MessageID  string
	// IdempotencyKey is passed to providers that support one.
	IdempotencyKey string
	Type           string
	Text           string
	Raw            json.RawMessage
}

// SendResult is what the provider said about a send.
type SendResult struct {
	ChannelMsgID string
}

// Sender delivers outbound messages to a provider. Errors must say whether
// a retry can help (see Retryable).
type Sender interface {
	Send(ctx context.Context, acct Account, out Outbound) (SendResult, error)
}

// Retryable is implemented by send errors that know whether retrying helps
// (rate limits, 5xx, timeouts) or not (invalid recipient, closed window).
type Retryable interface {
	Retryable() bool
}

// Puller fetches inbound messages from providers that only notify (WeCom
// customer service): from cursor on, returning the next cursor to persist.
type Puller interface {
	Pull(ctx context.Context, acct Account, cursor string) (msgs []Inbound, next string, err error)
}

// StatusUpdate is a delivery-status callback for a message we sent.
type StatusUpdate struct {
	AccountID    string
	ChannelMsgID string
	// Status is sent, delivered, read or failed.
	Status string
	Error  string
	At     time.Time
}
