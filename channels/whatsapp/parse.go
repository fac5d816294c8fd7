package whatsapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// The notification envelope. Only what Switchboard uses is decoded; each
// message's own JSON is kept whole in Inbound.Raw.
type envelope struct {
	Object string `json:"object"`
	Entry  []struct {
		ID      string `json:"id"`
		Changes []struct {
			Field string `json:"field"`
			// Value is decoded only for the "messages" field: other
			// fields (template reviews, account updates...) have shapes
			// of their own that must not fail the whole notification.
			Value json.RawMessage `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

type changeValue struct {
	MessagingProduct string `json:"messaging_product"`
	Metadata         struct {
		DisplayPhoneNumber string `json:"display_phone_number"`
		PhoneNumberID      string `json:"phone_number_id"`
	} `json:"metadata"`
	Contacts []struct {
		Profile struct {
			Name string `json:"name"`
		} `json:"profile"`
		WAID string `json:"wa_id"`
	} `json:"contacts"`
	Messages []message    `json:"messages"`
	Statuses []status     `json:"statuses"`
	Errors   []graphError `json:"errors"`
}

type message struct {
	From        string        `json:"from"`
	ID          string        `json:"id"`
	Timestamp   flexString    `json:"timestamp"`
	Type        string        `json:"type"`
	Context     *msgContext   `json:"context"`
	Text        *textPayload  `json:"text"`
	Image       *mediaPayload `json:"image"`
	Audio       *mediaPayload `json:"audio"`
	Video       *mediaPayload `json:"video"`
	Document    *mediaPayload `json:"document"`
	Sticker     *mediaPayload `json:"sticker"`
	Interactive *struct {
		Type        string         `json:"type"`
		ButtonReply *choicePayload `json:"button_reply"`
		ListReply   *choicePayload `json:"list_reply"`
		NFMReply    *struct {
			Name string `json:"name"`
			Body string `json:"body"`
		} `json:"nfm_reply"`
	} `json:"interactive"`
	Button *struct {
		Payload string `json:"payload"`
		Text    string `json:"text"`
	} `json:"button"`
	Location *struct {
		Latitude  flexFloat `json:"latitude"`
		Longitude flexFloat `json:"longitude"`
		Name      string    `json:"name"`
		Address   string    `json:"address"`
		URL       string    `json:"url"`
	} `json:"location"`
	Contacts []sharedContact `json:"contacts"`
	Reaction *struct {
		MessageID string `json:"message_id"`
		Emoji     string `json:"emoji"`
	} `json:"reaction"`
	System *struct {
		Body    string `json:"body"`
		Type    string `json:"type"`
		NewWAID string `json:"new_wa_id"`
		WAID    string `json:"wa_id"`
	} `json:"system"`
	Order *struct {
		Text         string            `json:"text"`
		ProductItems []json.RawMessage `json:"product_items"`
	} `json:"order"`
	Errors []graphError `json:"errors"`

	raw json.RawMessage
}

// UnmarshalJSON decodes a message and keeps a copy of its JSON for
// Inbound.Raw: the webhook body may be a buffer the HTTP layer reuses.
func (m *message) UnmarshalJSON(b []byte) error {
	type plain message
	if err := json.Unmarshal(b, (*plain)(m)); err != nil {
		return err
	}
	m.raw = append(json.RawMessage(nil), b...)
	return nil
}

type msgContext struct {
	From                string `json:"from"`
	ID                  string `json:"id"`
	Forwarded           bool   `json:"forwarded"`
	FrequentlyForwarded bool   `json:"frequently_forwarded"`
}

type textPayload struct {
	Body string `json:"body"`
}

type mediaPayload struct {
	ID       string `json:"id"`
	URL      string `json:"url"`
	MIMEType string `json:"mime_type"`
	SHA256   string `json:"sha256"`
	Filename string `json:"filename"`
	Caption  string `json:"caption"`
	Voice    bool   `json:"voice"`
}

type choicePayload struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description"`
}

type sharedContact struct {
	Name struct {
		FormattedName string `json:"formatted_name"`
		FirstName     string `json:"first_name"`
		LastName      string `json:"last_name"`
	} `json:"name"`
	Phones []struct {
		Phone string `json:"phone"`
		WAID  string `json:"wa_id"`
	} `json:"phones"`
}

type status struct {
	ID          string       `json:"id"`
	Status      string       `json:"status"`
	Timestamp   flexString   `json:"timestamp"`
	RecipientID string       `json:"recipient_id"`
	Errors      []graphError `json:"errors"`
}

// graphError is an error object of the Graph API, as sent in error
// responses ({"error": ...}) and in webhooks (messages[].errors,
// statuses[].errors, value.errors).
type graphError struct {
	Code      int       `json:"code"`
	Subcode   int       `json:"error_subcode"`
	Type      string    `json:"type"`
	Title     string    `json:"title"`
	Message   string    `json:"message"`
	ErrorData errorData `json:"error_data"`
	FBTraceID string    `json:"fbtrace_id"`
	Transient bool      `json:"is_transient"`
	UserTitle string    `json:"error_user_title"`
	UserMsg   string    `json:"error_user_msg"`
}

// errorData is error_data: an object with details, or (template APIs) a
// plain string.
type errorData struct {
	Details string
}

// UnmarshalJSON accepts both shapes of error_data.
func (d *errorData) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &d.Details)
	}
	var obj struct {
		Details json.RawMessage `json:"details"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return err
	}
	if len(obj.Details) > 0 && obj.Details[0] == '"' {
		return json.Unmarshal(obj.Details, &d.Details)
	}
	if len(obj.Details) > 0 && string(obj.Details) != "null" {
		d.Details = string(obj.Details)
	}
	return nil
}

// flexString takes a JSON string or number: timestamps are strings in
// every sample, but a number must not fail a whole notification.
type flexString string

// UnmarshalJSON accepts a string, a number or null.
func (s *flexString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, (*string)(s))
	}
	if string(b) == "null" {
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*s = flexString(n)
	return nil
}

// flexFloat takes a JSON number or a numeric string.
type flexFloat float64

// UnmarshalJSON accepts a number, a numeric string or null.
func (f *flexFloat) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("not a number: %q", s)
		}
		*f = flexFloat(v)
		return nil
	}
	return json.Unmarshal(b, (*float64)(f))
}

// parse turns a verified notification body into what it carries for acct.
func (a *Adapter) parse(ctx context.Context, acct channels.Account, creds Credentials, body []byte) (channels.WebhookResult, error) {
	const op = "whatsapp.parse"
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return channels.WebhookResult{}, errs.E(op, errs.Invalid, "notification: %s", jsonProblem(err))
	}
	if env.Object != "whatsapp_business_account" {
		return channels.WebhookResult{}, errs.E(op, errs.Invalid, "notification: object %q is not whatsapp_business_account", truncate(env.Object, 64))
	}
	var res channels.WebhookResult
	for _, e := range env.Entry {
		for _, ch := range e.Changes {
			if ch.Field != "messages" {
				a.log.DebugContext(ctx, "whatsapp: change skipped", slog.String("account", acct.ID), slog.String("field", truncate(ch.Field, 64)))
				continue
			}
			var v changeValue
			if err := json.Unmarshal(ch.Value, &v); err != nil {
				return channels.WebhookResult{}, errs.E(op, errs.Invalid, "notification: messages value: %s", jsonProblem(err))
			}
			if v.Metadata.PhoneNumberID != creds.PhoneNumberID {
				// One app's webhook carries every number of the app; the
				// other numbers are other accounts.
				a.log.DebugContext(ctx, "whatsapp: change for another number skipped",
					slog.String("account", acct.ID), slog.String("phone_number_id", truncate(v.Metadata.PhoneNumberID, 64)))
				continue
			}
			for _, ge := range v.Errors {
				a.log.WarnContext(ctx, "whatsapp: webhook error", slog.String("account", acct.ID),
					slog.Int("code", ge.Code), slog.String("title", ge.title()), slog.String("details", ge.ErrorData.Details))
			}
			for i := range v.Messages {
				m := &v.Messages[i]
				if m.ID == "" || m.From == "" {
					a.log.WarnContext(ctx, "whatsapp: message without id or sender skipped", slog.String("account", acct.ID),
						slog.String("type", truncate(m.Type, 64)))
					continue
				}
				res.Inbound = append(res.Inbound, a.inbound(acct, &v, m))
			}
			for i := range v.Statuses {
				if su, ok := a.statusUpdate(ctx, acct, &v.Statuses[i]); ok {
					res.Statuses = append(res.Statuses, su)
				}
			}
		}
	}
	return res, nil
}

// inbound normalises one message.
func (a *Adapter) inbound(acct channels.Account, v *changeValue, m *message) channels.Inbound {
	in := channels.Inbound{
		AccountID:    acct.ID,
		ExternalID:   m.From,
		Phone:        m.From,
		DisplayName:  profileName(v, m.From),
		ChannelMsgID: m.ID,
		Raw:          m.raw,
		ReceivedAt:   a.at(m.Timestamp),
	}
	if m.Context != nil {
		in.ReplyTo = m.Context.ID
	}
	switch m.Type {
	case "text":
		if m.Text == nil {
			return unsupported(in, m, "text message without a body")
		}
		in.Type = channels.MsgText
		in.Text = m.Text.Body
	case "image", "audio", "video", "document", "sticker":
		p := m.media()
		if p == nil {
			return unsupported(in, m, m.Type+" message without its media")
		}
		in.Type = mediaTypes[m.Type]
		in.Media = &channels.Media{ID: p.ID, URL: p.URL, MIMEType: p.MIMEType, SHA256: p.SHA256,
			Filename: p.Filename, Caption: p.Caption, Voice: p.Voice}
		in.Text = p.Caption
	case "interactive":
		it := m.Interactive
		switch {
		case it != nil && it.Type == "button_reply" && it.ButtonReply != nil:
			in.Choice = &channels.Choice{ID: it.ButtonReply.ID, Title: it.ButtonReply.Title}
		case it != nil && it.Type == "list_reply" && it.ListReply != nil:
			in.Choice = &channels.Choice{ID: it.ListReply.ID, Title: it.ListReply.Title, Description: it.ListReply.Description}
		case it != nil && it.Type == "nfm_reply" && it.NFMReply != nil:
			// A WhatsApp Flow was submitted: the answers are in Raw
			// (nfm_reply.response_json); the flow's name says which.
			in.Choice = &channels.Choice{ID: it.NFMReply.Name, Title: it.NFMReply.Body}
		default:
			kind := ""
			if it != nil {
				kind = " " + it.Type
			}
			return unsupported(in, m, "interactive"+kind+" reply")
		}
		in.Type = channels.MsgInteractive
		in.Text = in.Choice.Title
	case "button":
		// A quick-reply button of a template: the payload is what the
		// template defined, the text what the customer saw.
		if m.Button == nil {
			return unsupported(in, m, "button message without its button")
		}
		in.Type = channels.MsgInteractive
		in.Choice = &channels.Choice{ID: m.Button.Payload, Title: m.Button.Text}
		in.Text = m.Button.Text
	case "location":
		l := m.Location
		if l == nil {
			return unsupported(in, m, "location message without a location")
		}
		in.Type = channels.MsgLocation
		in.Location = &channels.Location{Latitude: float64(l.Latitude), Longitude: float64(l.Longitude),
			Name: l.Name, Address: l.Address, URL: l.URL}
		in.Text = joinNonEmpty(", ", l.Name, l.Address)
	case "contacts":
		in.Type = channels.MsgContacts
		in.Text = contactsSummary(m.Contacts)
	case "reaction":
		if m.Reaction == nil {
			return unsupported(in, m, "reaction message without a reaction")
		}
		in.Type = channels.MsgReaction
		in.Reaction = &channels.Reaction{MessageID: m.Reaction.MessageID, Emoji: m.Reaction.Emoji}
		in.Text = m.Reaction.Emoji
		// The reaction names its message itself; the context, if any,
		// is not a reply.
		in.ReplyTo = ""
	case "system":
		// Number or identity changes: recorded, no conversation moves.
		in.Type = channels.MsgEvent
		ev := &channels.Event{Kind: channels.EventOther, Name: "system"}
		if m.System != nil {
			in.Text = m.System.Body
			if m.System.Type != "" {
				ev.Name = m.System.Type
			}
			// For user_changed_number the new wa_id is the key the
			// contact's identity moves to.
			ev.Key = m.System.NewWAID
		}
		in.Event = ev
	case "request_welcome":
		// The customer opened the chat for the first time (no message
		// yet): a chance to greet.
		in.Type = channels.MsgEvent
		in.Event = &channels.Event{Kind: channels.EventEnterSession, Name: m.Type}
	case "order":
		if m.Order == nil {
			return unsupported(in, m, "order message without its order")
		}
		in.Type = channels.MsgUnsupported
		in.Text = joinNonEmpty(": ", fmt.Sprintf("order of %d item(s)", len(m.Order.ProductItems)), m.Order.Text)
	default:
		return unsupported(in, m, "")
	}
	return in
}

// unsupported maps a message Switchboard cannot show natively: Raw keeps
// it, Text says what it was (the provider's error title when it gave one).
func unsupported(in channels.Inbound, m *message, why string) channels.Inbound {
	in.Type = channels.MsgUnsupported
	in.Media, in.Choice, in.Location, in.Reaction, in.Event = nil, nil, nil, nil, nil
	switch {
	case len(m.Errors) > 0 && m.Errors[0].title() != "":
		in.Text = m.Errors[0].title()
	case why != "":
		in.Text = why
	case m.Type == "" || m.Type == "unsupported":
		in.Text = "unsupported message"
	default:
		in.Text = "unsupported message type " + truncate(m.Type, 64)
	}
	return in
}

// mediaTypes maps WhatsApp media message types to Switchboard's.
var mediaTypes = map[string]string{
	"image":    channels.MsgImage,
	"audio":    channels.MsgAudio,
	"video":    channels.MsgVideo,
	"document": channels.MsgDocument,
	"sticker":  channels.MsgSticker,
}

// media returns the payload of a media message.
func (m *message) media() *mediaPayload {
	switch m.Type {
	case "image":
		return m.Image
	case "audio":
		return m.Audio
	case "video":
		return m.Video
	case "document":
		return m.Document
	case "sticker":
		return m.Sticker
	}
	return nil
}

// statusUpdate maps one delivery status; ok is false for statuses that
// change nothing Switchboard tracks.
func (a *Adapter) statusUpdate(ctx context.Context, acct channels.Account, s *status) (channels.StatusUpdate, bool) {
	su := channels.StatusUpdate{AccountID: acct.ID, ChannelMsgID: s.ID, ExternalID: s.RecipientID, At: a.at(s.Timestamp)}
	switch s.Status {
	case "sent":
		su.Status = channels.StatusSent
	case "delivered":
		su.Status = channels.StatusDelivered
	case "read", "played":
		// A voice note played has been read.
		su.Status = channels.StatusRead
	case "failed":
		su.Status = channels.StatusFailed
		if len(s.Errors) == 0 {
			su.Error = "failed without an error from WhatsApp"
			break
		}
		ge := s.Errors[0]
		su.Code = strconv.Itoa(ge.Code)
		su.Error = ge.describe()
		su.Retryable = classify(0, ge).retry
	default:
		a.log.DebugContext(ctx, "whatsapp: status skipped", slog.String("account", acct.ID), slog.String("status", truncate(s.Status, 64)))
		return su, false
	}
	if s.ID == "" {
		a.log.WarnContext(ctx, "whatsapp: status without a message id skipped", slog.String("account", acct.ID))
		return su, false
	}
	return su, true
}

// at converts a Unix-seconds timestamp, falling back to now.
func (a *Adapter) at(ts flexString) time.Time {
	if sec, err := strconv.ParseInt(string(ts), 10, 64); err == nil && sec > 0 && sec < 1<<40 {
		return time.Unix(sec, 0).UTC()
	}
	return a.clock.Now().UTC()
}

// profileName finds the sender's profile name among the change's contacts.
func profileName(v *changeValue, waID string) string {
	for _, c := range v.Contacts {
		if c.WAID == waID {
			return c.Profile.Name
		}
	}
	if len(v.Contacts) == 1 && v.Contacts[0].WAID == "" {
		return v.Contacts[0].Profile.Name
	}
	return ""
}

// contactsSummary renders shared contact cards: "Name (+1 555...); ...".
func contactsSummary(cs []sharedContact) string {
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		name := c.Name.FormattedName
		if name == "" {
			name = joinNonEmpty(" ", c.Name.FirstName, c.Name.LastName)
		}
		phones := make([]string, 0, len(c.Phones))
		for _, p := range c.Phones {
			if p.Phone != "" {
				phones = append(phones, p.Phone)
			} else if p.WAID != "" {
				phones = append(phones, "+"+p.WAID)
			}
		}
		ph := strings.Join(phones, ", ")
		switch {
		case name != "" && ph != "":
			parts = append(parts, name+" ("+ph+")")
		case name != "" || ph != "":
			parts = append(parts, name+ph)
		}
	}
	if len(parts) == 0 {
		return "contact card"
	}
	return strings.Join(parts, "; ")
}

// title is the error's short description.
func (e graphError) title() string {
	if e.Title != "" {
		return e.Title
	}
	return e.Message
}

// describe renders an error for people: title and details.
func (e graphError) describe() string {
	t := e.title()
	if e.ErrorData.Details != "" && e.ErrorData.Details != t {
		return joinNonEmpty(": ", t, e.ErrorData.Details)
	}
	return t
}

func joinNonEmpty(sep string, parts ...string) string {
	out := ""
	for _, p := range parts {
		if p == "" {
			continue
		}
		if out != "" {
			out += sep
		}
		out += p
	}
	return out
}

// truncate bounds untrusted strings quoted in logs and errors to about n
// bytes, cutting at a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// jsonProblem describes a decoding failure without quoting the input: the
// input may hold secrets or a customer's words.
func jsonProblem(err error) string {
	var ute *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &ute) && ute.Field != "":
		return "field " + ute.Field + ": unexpected " + ute.Value
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return "not valid JSON"
	case errors.Is(err, io.EOF):
		return "empty"
	}
	return "not a JSON object"
}
