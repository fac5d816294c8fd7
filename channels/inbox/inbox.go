// Package inbox takes what providers send into Switchboard. A webhook call
// is verified and parsed by the channel's adapter, every message it carries
// is persisted through the session engine (idempotent on the provider's
// message id), delivery statuses are applied to our messages, and only then
// is the provider answered (DESIGN D8): a crash before the answer makes the
// provider retry, and the retry changes nothing that was already stored.
// Pull-based channels (WeCom customer service) are fetched here too, from a
// cursor persisted only after the page is stored.
package inbox

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/session"
)

// Engine is the part of the session engine the inbox feeds.
type Engine interface {
	ResolveCustomer(ctx context.Context, tenantID, accountID, channel, externalID, displayName string) (session.Customer, error)
	Receive(ctx context.Context, cu session.Customer, in session.Incoming) (session.Message, bool, error)
}

// Facts records what a provider told about a customer's identity with each
// message (UnionID, phone, display name, time of the message: the start of
// the customer-service window). It reports whether the identity moved to
// another contact (an automatic merge), so the customer is resolved again.
type Facts interface {
	IdentityTouch(ctx context.Context, acct channels.Account, in channels.Inbound) (moved bool, err error)
}

// Inbox turns normalised inbound messages into stored conversation
// messages. It implements channels.Receiver.
type Inbox struct {
	engine Engine
	facts  Facts
	log    *slog.Logger
}

var _ channels.Receiver = (*Inbox)(nil)

// New returns an Inbox over the engine; facts may be nil.
func New(engine Engine, facts Facts, log *slog.Logger) *Inbox {
	return &Inbox{engine: engine, facts: facts, log: log}
}

// MaxExternalIDLen caps a provider's customer id.
const MaxExternalIDLen = 256

// body is the stored body of a provider message: "text" is what the
// console shows and the bot reads; the rest is the type's own content.
type body struct {
	Text     string             `json:"text"`
	Media    *channels.Media    `json:"media,omitempty"`
	Location *channels.Location `json:"location,omitempty"`
	Choice   *channels.Choice   `json:"choice,omitempty"`
	Reaction *channels.Reaction `json:"reaction,omitempty"`
	ReplyTo  string             `json:"reply_to,omitempty"`
	Event    *channels.Event    `json:"event,omitempty"`
	Contacts json.RawMessage    `json:"contacts,omitempty"`
}

// Receive implements channels.Receiver: it resolves the customer, records
// the identity facts and stores the message through the engine, which
// opens a session, runs the bot or pushes it to the agent.
func (b *Inbox) Receive(ctx context.Context, acct channels.Account, in channels.Inbound) (bool, error) {
	const op = "inbox.Receive"
	if in.ExternalID == "" || len(in.ExternalID) > MaxExternalIDLen || !utf8.ValidString(in.ExternalID) {
		return false, errs.E(op, errs.Invalid, "customer id missing or malformed")
	}
	inc, keep := Incoming(in)
	if !keep {
		b.log.Debug("inbound event not stored", "account", acct.ID, "event", eventName(in))
		return false, nil
	}
	cu, err := b.engine.ResolveCustomer(ctx, acct.TenantID, acct.ID, string(acct.Type), in.ExternalID, displayName(in.DisplayName))
	if err != nil {
		return false, errs.Wrap(op, err)
	}
	if b.facts != nil {
		moved, err := b.facts.IdentityTouch(ctx, acct, in)
		if err != nil {
			return false, errs.Wrap(op, err)
		}
		if moved {
			if cu, err = b.engine.ResolveCustomer(ctx, acct.TenantID, acct.ID, string(acct.Type), in.ExternalID, displayName(in.DisplayName)); err != nil {
				return false, errs.Wrap(op, err)
			}
		}
	}
	_, dup, err := b.engine.Receive(ctx, cu, inc)
	if err != nil {
		return false, errs.Wrap(op, err)
	}
	return dup, nil
}

func eventName(in channels.Inbound) string {
	if in.Event == nil {
		return in.Type
	}
	return in.Event.Kind
}

// displayName bounds a provider's profile name.
func displayName(s string) string {
	s = strings.ToValidUTF8(strings.TrimSpace(s), "")
	if utf8.RuneCountInString(s) > 100 {
		s = string([]rune(s)[:100])
	}
	return s
}

// Incoming maps a provider message onto the engine's Incoming; keep is
// false for events that are not worth a message (unsubscribe, menu views,
// unknown events).
//
//   - Text stays a plain text message; a reply to an earlier message keeps
//     the provider id of that message.
//   - Media, locations, contacts, picked buttons and reactions are stored
//     with their content; their "text" is the caption or a readable form.
//     The bot reads the id of a picked button (our menus send choice values
//     as ids), a voice note's transcription, or a caption.
//   - Reactions and location reports join an open session only.
//   - Subscribe, scan, menu clicks and "entered the chat" events are stored
//     as event messages: they open a session (so the bot greets) and keep
//     the QR scene for attribution; a click's key goes to the bot.
func Incoming(in channels.Inbound) (session.Incoming, bool) {
	out := session.Incoming{ChannelMsgID: in.ChannelMsgID, Text: clip(in.Text)}
	bd := body{Text: out.Text, Media: in.Media, Location: in.Location, Choice: in.Choice,
		Reaction: in.Reaction, ReplyTo: in.ReplyTo, Event: in.Event}
	switch in.Type {
	case channels.MsgText:
		out.Type = session.TypeText
		if in.ReplyTo == "" {
			return out, true
		}
	case channels.MsgInteractive:
		out.Type = session.MessageType(in.Type)
		if in.Choice != nil {
			if out.Text == "" {
				out.Text, bd.Text = clip(in.Choice.Title), clip(in.Choice.Title)
			}
			out.BotText = in.Choice.ID
		}
	case channels.MsgAudio:
		out.Type = session.MessageType(in.Type)
		if in.Media != nil && in.Media.Recognition != "" {
			out.BotText = clip(in.Media.Recognition)
		}
	case channels.MsgReaction:
		out.Type, out.OnlyOpen, out.BotText = session.MessageType(in.Type), true, silent
	case channels.MsgContacts:
		out.Type = session.MessageType(in.Type)
		bd.Contacts = in.Raw
	case channels.MsgEvent:
		if in.Event == nil {
			return session.Incoming{}, false
		}
		out.Type = session.TypeEvent
		switch in.Event.Kind {
		case channels.EventSubscribe, channels.EventScan, channels.EventEnterSession:
			out.BotText = silent
		case channels.EventClick:
			out.BotText = in.Event.Key
		case channels.EventLocation:
			out.OnlyOpen, out.BotText = true, silent
		default:
			return session.Incoming{}, false
		}
	case channels.MsgLocation:
		out.Type, out.BotText = session.MessageType(in.Type), silent
	case channels.MsgImage, channels.MsgVideo, channels.MsgDocument, channels.MsgSticker:
		out.Type = session.MessageType(in.Type) // the bot reads the caption
	default:
		out.Type, out.BotText = channels.MsgUnsupported, silent
	}
	if out.BotText == "" && out.Text == "" {
		out.BotText = silent
	}
	raw, err := json.Marshal(bd)
	if err != nil {
		return session.Incoming{}, false
	}
	out.Body = raw
	return out, true
}

// silent is a BotText that keeps the engine from falling back to Text: the
// message is stored and routed, not answered.
const silent = " "

// clip bounds a provider text to what a message may hold, keeping it valid
// UTF-8: providers allow longer texts than our agents should scroll, and
// refusing the message would make the provider retry it forever.
func clip(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= session.MaxTextLen {
		return s
	}
	r := []rune(s)
	return string(r[:session.MaxTextLen-1]) + "…"
}
