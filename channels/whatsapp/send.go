package whatsapp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// Provider limits on outbound messages (Cloud API reference), in
// characters. Labels the customer only glances at (button and row titles,
// header, footer) are shortened to fit; the text of a message is refused
// when too long rather than silently cut.
const (
	MaxTextLen         = 4096
	MaxCaptionLen      = 1024
	MaxInteractiveBody = 1024
	MaxButtons         = 3
	MaxButtonTitle     = 20
	MaxButtonID        = 256
	MaxListRows        = 10
	MaxRowTitle        = 24
	MaxRowDescription  = 72
	MaxRowID           = 200
	MaxListButton      = 20
	MaxHeaderFooter    = 60
)

// DefaultListButton labels the button that opens a list when the Outbound
// does not say (SendOptions.ListButton).
const DefaultListButton = "Choose"

// Fixed values of every send request.
const (
	messagingProduct    = "whatsapp"
	recipientIndividual = "individual"
)

// SendOptions are WhatsApp-only presentation choices an Outbound may carry
// as JSON in Outbound.Raw. Every field is optional.
type SendOptions struct {
	// ListButton labels the button that opens a list (more than
	// MaxButtons choices); DefaultListButton when empty.
	ListButton string `json:"list_button,omitempty"`
	// Header and Footer are short texts above and below an interactive
	// message's body.
	Header string `json:"header,omitempty"`
	Footer string `json:"footer,omitempty"`
	// PreviewURL overrides the link preview of a text message, which is
	// otherwise on when the text holds an http(s) URL.
	PreviewURL *bool `json:"preview_url,omitempty"`
}

// The send request (POST /{version}/{phone-number-id}/messages).
type sendRequest struct {
	MessagingProduct string           `json:"messaging_product"`
	RecipientType    string           `json:"recipient_type,omitempty"`
	To               string           `json:"to,omitempty"`
	Type             string           `json:"type,omitempty"`
	Context          *replyContext    `json:"context,omitempty"`
	Text             *textBody        `json:"text,omitempty"`
	Image            *mediaBody       `json:"image,omitempty"`
	Audio            *mediaBody       `json:"audio,omitempty"`
	Video            *mediaBody       `json:"video,omitempty"`
	Document         *mediaBody       `json:"document,omitempty"`
	Sticker          *mediaBody       `json:"sticker,omitempty"`
	Interactive      *interactiveBody `json:"interactive,omitempty"`
	Template         *templateBody    `json:"template,omitempty"`
	Location         *locationBody    `json:"location,omitempty"`
	// Status and MessageID make a mark-as-read request.
	Status    string `json:"status,omitempty"`
	MessageID string `json:"message_id,omitempty"`
}

type replyContext struct {
	MessageID string `json:"message_id"`
}

type textBody struct {
	PreviewURL bool   `json:"preview_url,omitempty"`
	Body       string `json:"body"`
}

type mediaBody struct {
	ID       string `json:"id,omitempty"`
	Link     string `json:"link,omitempty"`
	Caption  string `json:"caption,omitempty"`
	Filename string `json:"filename,omitempty"`
}

type interactiveBody struct {
	Type   string       `json:"type"`
	Header *headerBody  `json:"header,omitempty"`
	Body   bodyText     `json:"body"`
	Footer *bodyText    `json:"footer,omitempty"`
	Action actionObject `json:"action"`
}

type headerBody struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type bodyText struct {
	Text string `json:"text"`
}

type actionObject struct {
	Buttons  []replyButton `json:"buttons,omitempty"`
	Button   string        `json:"button,omitempty"`
	Sections []listSection `json:"sections,omitempty"`
}

type replyButton struct {
	Type  string     `json:"type"`
	Reply buttonInfo `json:"reply"`
}

type buttonInfo struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

type listSection struct {
	Title string    `json:"title,omitempty"`
	Rows  []listRow `json:"rows"`
}

type listRow struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
}

type templateBody struct {
	Name       string           `json:"name"`
	Language   templateLanguage `json:"language"`
	Components json.RawMessage  `json:"components,omitempty"`
}

type templateLanguage struct {
	Policy string `json:"policy"`
	Code   string `json:"code"`
}

type locationBody struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
	Name      string  `json:"name,omitempty"`
	Address   string  `json:"address,omitempty"`
}

// sendResponse is the answer to a send: accepted, with the wamid that
// status webhooks will name.
type sendResponse struct {
	Messages []struct {
		ID            string `json:"id"`
		MessageStatus string `json:"message_status"`
	} `json:"messages"`
}

// Send implements channels.Sender: it builds the Cloud API message for out
// and posts it. A 200 means WhatsApp accepted the message; delivery comes
// later as status webhooks naming SendResult.ChannelMsgID. Failures are
// *channels.SendError: a message Switchboard cannot express on WhatsApp is
// refused before any call (not retryable, errs.Invalid inside).
func (a *Adapter) Send(ctx context.Context, acct channels.Account, out channels.Outbound) (channels.SendResult, error) {
	creds, err := ParseCredentials(acct.Credentials)
	if err != nil {
		return channels.SendResult{}, credentialsFailure(err)
	}
	body, se := buildMessage(out)
	if se != nil {
		return channels.SendResult{}, se
	}
	data, se := a.call(ctx, &creds, http.MethodPost, creds.endpoint(creds.PhoneNumberID, "messages"), body)
	if se != nil {
		return channels.SendResult{}, se
	}
	var resp sendResponse
	if err := json.Unmarshal(data, &resp); err != nil || len(resp.Messages) == 0 || resp.Messages[0].ID == "" {
		// WhatsApp said 200, so the message was probably accepted: a
		// retry could duplicate it.
		return channels.SendResult{}, &channels.SendError{Code: codeInvalidResponse,
			Msg: "WhatsApp accepted the request but returned no message id"}
	}
	if st := resp.Messages[0].MessageStatus; st != "" && st != "accepted" {
		a.log.InfoContext(ctx, "whatsapp: message not plainly accepted", slog.String("account", acct.ID),
			slog.String("wamid", resp.Messages[0].ID), slog.String("message_status", truncate(st, 64)))
	}
	return channels.SendResult{ChannelMsgID: resp.Messages[0].ID}, nil
}

// MarkRead tells WhatsApp that the message with provider id channelMsgID
// was read (blue ticks for the customer). Failures are *channels.SendError.
func (a *Adapter) MarkRead(ctx context.Context, acct channels.Account, channelMsgID string) error {
	creds, err := ParseCredentials(acct.Credentials)
	if err != nil {
		return credentialsFailure(err)
	}
	if channelMsgID == "" {
		return invalid("mark read: no message id")
	}
	body, err := json.Marshal(sendRequest{MessagingProduct: messagingProduct, Status: "read", MessageID: channelMsgID})
	if err != nil {
		return invalid("encode mark read: %v", err)
	}
	data, se := a.call(ctx, &creds, http.MethodPost, creds.endpoint(creds.PhoneNumberID, "messages"), body)
	if se != nil {
		return se
	}
	var resp struct {
		Success bool `json:"success"`
	}
	if err := json.Unmarshal(data, &resp); err != nil || !resp.Success {
		return &channels.SendError{Code: codeInvalidResponse, Msg: "WhatsApp did not confirm the read receipt"}
	}
	return nil
}

// BuildMessage is the Cloud API request body for out, or the reason out
// cannot be sent on WhatsApp: a *channels.SendError, not retryable, with
// errs.Invalid inside. It lets a caller check a message when it is
// composed, before it reaches the outbox.
func BuildMessage(out channels.Outbound) (json.RawMessage, error) {
	body, se := buildMessage(out)
	if se != nil {
		return nil, se
	}
	return body, nil
}

// buildMessage encodes out as a send request.
func buildMessage(out channels.Outbound) ([]byte, *channels.SendError) {
	var opts SendOptions
	if len(bytes.TrimSpace(out.Raw)) > 0 {
		if err := json.Unmarshal(out.Raw, &opts); err != nil {
			return nil, invalid("raw: must be a JSON object of WhatsApp send options")
		}
	}
	to := strings.TrimSpace(out.ExternalID)
	if to == "" {
		return nil, invalid("no recipient (external_id)")
	}
	r := &sendRequest{MessagingProduct: messagingProduct, RecipientType: recipientIndividual, To: to}
	if out.ReplyTo != "" {
		r.Context = &replyContext{MessageID: out.ReplyTo}
	}
	var se *channels.SendError
	switch out.Type {
	case channels.MsgText:
		se = buildText(r, out, opts)
	case channels.MsgImage, channels.MsgAudio, channels.MsgVideo, channels.MsgDocument, channels.MsgSticker:
		se = buildMedia(r, out)
	case channels.MsgInteractive:
		se = buildInteractive(r, out, opts)
	case channels.MsgTemplate:
		se = buildTemplate(r, out)
	case channels.MsgLocation:
		se = buildLocation(r, out)
	default:
		se = invalid("message type %q cannot be sent on WhatsApp", truncate(out.Type, 64))
	}
	if se != nil {
		return nil, se
	}
	body, err := json.Marshal(r)
	if err != nil {
		return nil, invalid("encode message: %v", err)
	}
	return body, nil
}

func buildText(r *sendRequest, out channels.Outbound, opts SendOptions) *channels.SendError {
	if strings.TrimSpace(out.Text) == "" {
		return invalid("text message without text")
	}
	if n := utf8.RuneCountInString(out.Text); n > MaxTextLen {
		return invalid("text is %d characters, WhatsApp takes at most %d", n, MaxTextLen)
	}
	preview := hasURL(out.Text)
	if opts.PreviewURL != nil {
		preview = *opts.PreviewURL
	}
	r.Type = "text"
	r.Text = &textBody{Body: out.Text, PreviewURL: preview}
	return nil
}

func buildMedia(r *sendRequest, out channels.Outbound) *channels.SendError {
	m := out.Media
	if m == nil || (m.ID == "" && m.URL == "") {
		return invalid("%s message needs a media id or URL", out.Type)
	}
	body := &mediaBody{ID: m.ID}
	if m.ID == "" {
		u, err := url.Parse(m.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return invalid("%s URL must be an absolute http(s) URL", out.Type)
		}
		body.Link = m.URL
	}
	caption := m.Caption
	if caption == "" {
		caption = out.Text
	}
	switch out.Type {
	case channels.MsgImage, channels.MsgVideo, channels.MsgDocument:
		if n := utf8.RuneCountInString(caption); n > MaxCaptionLen {
			return invalid("caption is %d characters, WhatsApp takes at most %d", n, MaxCaptionLen)
		}
		body.Caption = caption
	default:
		if caption != "" {
			return invalid("WhatsApp %s messages cannot carry a caption; send the text separately", out.Type)
		}
	}
	if out.Type == channels.MsgDocument {
		body.Filename = m.Filename
	}
	r.Type = out.Type
	switch out.Type {
	case channels.MsgImage:
		r.Image = body
	case channels.MsgAudio:
		r.Audio = body
	case channels.MsgVideo:
		r.Video = body
	case channels.MsgDocument:
		r.Document = body
	case channels.MsgSticker:
		r.Sticker = body
	}
	return nil
}

func buildInteractive(r *sendRequest, out channels.Outbound, opts SendOptions) *channels.SendError {
	if strings.TrimSpace(out.Text) == "" {
		return invalid("interactive message without body text")
	}
	if n := utf8.RuneCountInString(out.Text); n > MaxInteractiveBody {
		return invalid("interactive body is %d characters, WhatsApp takes at most %d", n, MaxInteractiveBody)
	}
	n := len(out.Choices)
	if n == 0 {
		return invalid("interactive message without choices")
	}
	if n > MaxListRows {
		return invalid("%d choices, WhatsApp lists take at most %d", n, MaxListRows)
	}
	ib := &interactiveBody{Body: bodyText{Text: out.Text}}
	if h := strings.TrimSpace(opts.Header); h != "" {
		ib.Header = &headerBody{Type: "text", Text: shorten(h, MaxHeaderFooter)}
	}
	if f := strings.TrimSpace(opts.Footer); f != "" {
		ib.Footer = &bodyText{Text: shorten(f, MaxHeaderFooter)}
	}
	ids := make(map[string]bool, n)
	titles := make(map[string]bool, n)
	for i, c := range out.Choices {
		title := strings.TrimSpace(c.Title)
		if title == "" {
			return invalid("choice %d has no title", i+1)
		}
		id := c.ID
		if id == "" {
			id = title
		}
		maxID, maxTitle := MaxRowID, MaxRowTitle
		if n <= MaxButtons {
			maxID, maxTitle = MaxButtonID, MaxButtonTitle
		}
		if utf8.RuneCountInString(id) > maxID {
			return invalid("choice %d: id longer than %d characters", i+1, maxID)
		}
		title = shorten(title, maxTitle)
		if ids[id] {
			return invalid("choice %d: id %q is used twice", i+1, truncate(id, 64))
		}
		if titles[title] {
			return invalid("choice %d: title %q is used twice (after shortening to %d characters)", i+1, title, maxTitle)
		}
		ids[id], titles[title] = true, true
		if n <= MaxButtons {
			ib.Action.Buttons = append(ib.Action.Buttons, replyButton{Type: "reply", Reply: buttonInfo{ID: id, Title: title}})
			continue
		}
		if len(ib.Action.Sections) == 0 {
			ib.Action.Sections = []listSection{{Rows: make([]listRow, 0, n)}}
		}
		ib.Action.Sections[0].Rows = append(ib.Action.Sections[0].Rows,
			listRow{ID: id, Title: title, Description: shorten(strings.TrimSpace(c.Description), MaxRowDescription)})
	}
	if n <= MaxButtons {
		ib.Type = "button"
	} else {
		ib.Type = "list"
		label := strings.TrimSpace(opts.ListButton)
		if label == "" {
			label = DefaultListButton
		}
		ib.Action.Button = shorten(label, MaxListButton)
	}
	r.Type = "interactive"
	r.Interactive = ib
	return nil
}

func buildTemplate(r *sendRequest, out channels.Outbound) *channels.SendError {
	t := out.Template
	if t == nil || strings.TrimSpace(t.Name) == "" {
		return invalid("template message without a template name")
	}
	if strings.TrimSpace(t.Language) == "" {
		return invalid("template %q without a language code", truncate(t.Name, 64))
	}
	body := &templateBody{Name: t.Name, Language: templateLanguage{Policy: "deterministic", Code: t.Language}}
	if c := bytes.TrimSpace(t.Components); len(c) > 0 && string(c) != "null" {
		if c[0] != '[' || !json.Valid(c) {
			return invalid("template components must be a JSON array")
		}
		body.Components = json.RawMessage(c)
	}
	r.Type = "template"
	r.Template = body
	return nil
}

func buildLocation(r *sendRequest, out channels.Outbound) *channels.SendError {
	l := out.Location
	if l == nil {
		return invalid("location message without a location")
	}
	if math.IsNaN(l.Latitude) || math.IsNaN(l.Longitude) || l.Latitude < -90 || l.Latitude > 90 || l.Longitude < -180 || l.Longitude > 180 {
		return invalid("location out of range (latitude -90..90, longitude -180..180)")
	}
	r.Type = "location"
	r.Location = &locationBody{Latitude: l.Latitude, Longitude: l.Longitude, Name: l.Name, Address: l.Address}
	return nil
}

// call makes one Graph API request with the account's token and returns
// the body of a 2xx answer.
func (a *Adapter) call(ctx context.Context, creds *Credentials, method, endpoint string, body []byte) ([]byte, *channels.SendError) {
	callCtx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		callCtx, cancel = context.WithTimeout(ctx, a.timeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(callCtx, method, endpoint, rd)
	if err != nil {
		return nil, &channels.SendError{Code: codeCredentials, Auth: true, Msg: "cannot build the request URL", Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+creds.AccessToken)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, networkFailure(ctx, creds, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, networkFailure(ctx, creds, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, a.apiFailure(creds, resp, data)
	}
	if len(data) > maxResponseBytes {
		return nil, &channels.SendError{Code: codeInvalidResponse, Msg: fmt.Sprintf("response over %d bytes", maxResponseBytes)}
	}
	return data, nil
}

// invalid refuses a message that cannot be sent as it is.
func invalid(format string, args ...any) *channels.SendError {
	msg := fmt.Sprintf(format, args...)
	return &channels.SendError{Code: codeInvalidMessage, Msg: msg, Err: errs.E("whatsapp.Send", errs.Invalid, "%s", msg)}
}

// credentialsFailure reports an account whose credentials cannot be used:
// like a refused token, it needs an operator.
func credentialsFailure(err error) *channels.SendError {
	return &channels.SendError{Code: codeCredentials, Auth: true, Msg: "account credentials are unusable", Err: err}
}

// hasURL reports whether text holds a link WhatsApp would preview.
func hasURL(text string) bool {
	for _, p := range []string{"https://", "http://"} {
		if containsFold(text, p) {
			return true
		}
	}
	return false
}

// containsFold is a case-insensitive strings.Contains for an ASCII needle.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// shorten cuts s to at most n characters, marking the cut with "…".
func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	runes := []rune(s)
	return strings.TrimSpace(string(runes[:n-1])) + "…"
}
