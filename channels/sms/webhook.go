package sms

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// MaxWebhookBody bounds a webhook body; a real one is a few kilobytes even
// with ten media URLs.
const MaxWebhookBody = 64 << 10

// maxMedia bounds how many MediaUrlN parameters are read (the provider
// sends at most 10).
const maxMedia = 20

// emptyTwiML answers a webhook without sending a reply message: replies go
// through the outbox, not the webhook response. The provider ignores the
// body of a status-callback response, so both kinds get it.
var emptyTwiML = []byte(`<?xml version="1.0" encoding="UTF-8"?><Response/>`)

// Webhook verifies and parses one provider call to the account's webhook: an
// inbound text (MessageStatus/SmsStatus absent or "received") becomes one
// Inbound, a delivery report one StatusUpdate (or nothing for the
// intermediate states accepted/scheduled/queued/sending, which tell nothing
// the outbox does not know). POST calls carry the parameters in the
// form-encoded body, GET calls in the URL, which is then the whole signed
// text. A missing or wrong X-Twilio-Signature, or a call for another
// provider account (AccountSid), is errs.Unauthorized; a body that is not a
// form or lacks From / MessageSid is errs.Invalid.
func (a *Adapter) Webhook(ctx context.Context, acct channels.Account, req channels.WebhookRequest) (channels.WebhookResult, error) {
	const op = "sms.Webhook"
	creds, err := ParseCredentials(acct.Credentials)
	if err != nil {
		// Our configuration, not the caller, is wrong: a 5xx makes the
		// provider retry once it is fixed instead of dropping the text.
		return channels.WebhookResult{}, &errs.Error{Op: op, Code: errs.Internal, Msg: "account " + acct.ID + " credentials", Err: err}
	}
	if len(req.Body) > MaxWebhookBody {
		return channels.WebhookResult{}, errs.E(op, errs.TooLarge, "body over %d bytes", MaxWebhookBody)
	}
	if req.URL == "" {
		return channels.WebhookResult{}, errs.E(op, errs.Unauthorized, "no request URL to verify the signature against")
	}
	form, signed, err := webhookParams(req)
	if err != nil {
		return channels.WebhookResult{}, errs.Wrap(op, err)
	}
	if !ValidSignature(creds.AuthToken, req.URL, signed, req.Header.Get(SignatureHeader)) {
		return channels.WebhookResult{}, errs.E(op, errs.Unauthorized, "bad or missing %s", SignatureHeader)
	}
	if sid := form.Get("AccountSid"); sid != "" && sid != creds.AccountSID {
		return channels.WebhookResult{}, errs.E(op, errs.Unauthorized, "webhook for provider account %q, not this account's", sid)
	}
	res := channels.WebhookResult{Reply: channels.WebhookReply{Status: http.StatusOK, ContentType: "text/xml", Body: emptyTwiML}}
	status := form.Get("MessageStatus")
	if status == "" {
		status = form.Get("SmsStatus")
	}
	if status == "" || status == "received" || status == "receiving" {
		in, err := a.inbound(acct, form)
		if err != nil {
			return channels.WebhookResult{}, errs.Wrap(op, err)
		}
		res.Inbound = []channels.Inbound{in}
		return res, nil
	}
	su, ok, err := a.statusUpdate(acct, form, status)
	if err != nil {
		return channels.WebhookResult{}, errs.Wrap(op, err)
	}
	if ok {
		res.Statuses = []channels.StatusUpdate{su}
	} else {
		a.log.DebugContext(ctx, "sms status callback ignored", "account", acct.ID, "status", status, "message_sid", su.ChannelMsgID)
	}
	return res, nil
}

// webhookParams returns the call's parameters and the ones that are signed
// (the POST form; none for GET).
func webhookParams(req channels.WebhookRequest) (form, signed url.Values, err error) {
	switch req.Method {
	case http.MethodPost, "":
		if ct := req.Header.Get("Content-Type"); ct != "" {
			mt, _, perr := mime.ParseMediaType(ct)
			if perr != nil || mt != "application/x-www-form-urlencoded" {
				return nil, nil, errs.E("", errs.Invalid, "content type %q: want application/x-www-form-urlencoded", ct)
			}
		}
		form, err = url.ParseQuery(string(req.Body))
		if err != nil {
			return nil, nil, &errs.Error{Code: errs.Invalid, Msg: "body is not a form", Err: err}
		}
		return form, form, nil
	case http.MethodGet:
		u, perr := url.Parse(req.URL)
		if perr != nil {
			return nil, nil, &errs.Error{Code: errs.Invalid, Msg: "request URL", Err: perr}
		}
		form, err = url.ParseQuery(u.RawQuery)
		if err != nil {
			return nil, nil, &errs.Error{Code: errs.Invalid, Msg: "query is not a form", Err: err}
		}
		return form, nil, nil
	}
	return nil, nil, errs.E("", errs.Invalid, "method %s not accepted", req.Method)
}

// messageSID is the message's id under its current and its legacy names.
func messageSID(form url.Values) string {
	for _, k := range []string{"MessageSid", "SmsMessageSid", "SmsSid"} {
		if v := form.Get(k); v != "" {
			return v
		}
	}
	return ""
}

// inbound normalises an incoming text or MMS. The first attachment becomes
// the message's Media, with the body as its caption; further attachments
// are listed in Text so that an agent sees them (the contract has one Media
// per message) and Raw keeps every parameter.
func (a *Adapter) inbound(acct channels.Account, form url.Values) (channels.Inbound, error) {
	from := form.Get("From")
	sid := messageSID(form)
	if from == "" {
		return channels.Inbound{}, errs.E("", errs.Invalid, "inbound message without From")
	}
	if sid == "" {
		return channels.Inbound{}, errs.E("", errs.Invalid, "inbound message without MessageSid")
	}
	raw, err := rawJSON(form)
	if err != nil {
		return channels.Inbound{}, err
	}
	in := channels.Inbound{
		AccountID:    acct.ID,
		ExternalID:   from,
		DisplayName:  form.Get("ProfileName"),
		ChannelMsgID: sid,
		Type:         channels.MsgText,
		Text:         form.Get("Body"),
		ReplyTo:      form.Get("OriginalRepliedMessageSid"),
		Raw:          raw,
		ReceivedAt:   a.clock.Now(),
	}
	// SMS senders are phone numbers; the WhatsApp flavour of the same
	// webhook prefixes them with "whatsapp:".
	if p := strings.TrimPrefix(from, "whatsapp:"); e164Re.MatchString(p) {
		in.Phone = p
	}
	media, err := mediaOf(form)
	if err != nil {
		return channels.Inbound{}, err
	}
	if len(media) > 0 {
		m := media[0]
		in.Type = mediaType(m.MIMEType)
		in.Media = &channels.Media{URL: m.URL, MIMEType: m.MIMEType, Caption: in.Text}
		if len(media) > 1 {
			var b strings.Builder
			b.WriteString(in.Text)
			for i, m := range media[1:] {
				if b.Len() > 0 {
					b.WriteByte('\n')
				}
				fmt.Fprintf(&b, "[attachment %d of %d, %s] %s", i+2, len(media), m.MIMEType, m.URL)
			}
			in.Text = b.String()
		}
		return in, nil
	}
	if lat, lng := form.Get("Latitude"), form.Get("Longitude"); lat != "" && lng != "" {
		la, err1 := strconv.ParseFloat(lat, 64)
		lo, err2 := strconv.ParseFloat(lng, 64)
		if err1 == nil && err2 == nil && la >= -90 && la <= 90 && lo >= -180 && lo <= 180 {
			in.Type = channels.MsgLocation
			in.Location = &channels.Location{Latitude: la, Longitude: lo, Name: form.Get("Label"), Address: form.Get("Address")}
			if in.Text == "" {
				in.Text = firstNonEmpty(in.Location.Name, in.Location.Address, lat+","+lng)
			}
		}
	}
	return in, nil
}

type mediaRef struct{ URL, MIMEType string }

// mediaOf reads NumMedia and MediaUrlN / MediaContentTypeN.
func mediaOf(form url.Values) ([]mediaRef, error) {
	ns := form.Get("NumMedia")
	if ns == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(ns)
	if err != nil || n < 0 {
		return nil, errs.E("", errs.Invalid, "NumMedia %q is not a count", ns)
	}
	var out []mediaRef
	for i := 0; i < n && i < maxMedia; i++ {
		u := form.Get("MediaUrl" + strconv.Itoa(i))
		if u == "" {
			continue
		}
		out = append(out, mediaRef{URL: u, MIMEType: form.Get("MediaContentType" + strconv.Itoa(i))})
	}
	return out, nil
}

// mediaType maps a MIME type to the Inbound type; what is neither image,
// audio nor video (PDF, vCard...) is a document.
func mediaType(mimeType string) string {
	switch major, _, _ := strings.Cut(strings.ToLower(mimeType), "/"); major {
	case "image":
		return channels.MsgImage
	case "audio":
		return channels.MsgAudio
	case "video":
		return channels.MsgVideo
	}
	return channels.MsgDocument
}

// statusUpdate turns a delivery report into a StatusUpdate; ok is false
// for states that carry no news (accepted, scheduled, queued, sending) and
// for states this adapter does not know.
func (a *Adapter) statusUpdate(acct channels.Account, form url.Values, status string) (channels.StatusUpdate, bool, error) {
	su := channels.StatusUpdate{
		AccountID:    acct.ID,
		ChannelMsgID: messageSID(form),
		ExternalID:   form.Get("To"),
		At:           a.clock.Now(),
	}
	if su.ChannelMsgID == "" {
		return su, false, errs.E("", errs.Invalid, "status callback without MessageSid")
	}
	switch status {
	case "sent":
		su.Status = channels.StatusSent
	case "delivered":
		su.Status = channels.StatusDelivered
	case "read":
		su.Status = channels.StatusRead
	case "failed", "undelivered":
		su.Status = channels.StatusFailed
		su.Code = form.Get("ErrorCode")
		su.Error = form.Get("ErrorMessage")
		ci, known := lookup(su.Code)
		if su.Error == "" {
			su.Error = status
			if known {
				su.Error = ci.desc
			}
		}
		su.Retryable = known && ci.class == retry
	case "canceled":
		su.Status = channels.StatusFailed
		su.Code = "canceled"
		su.Error = "canceled before sending"
	default:
		return su, false, nil
	}
	return su, true, nil
}

// rawJSON keeps every parameter, one string per name (a list when the name
// repeats).
func rawJSON(form url.Values) (json.RawMessage, error) {
	m := make(map[string]any, len(form))
	for k, vs := range form {
		if len(vs) == 1 {
			m[k] = vs[0]
		} else {
			m[k] = vs
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, &errs.Error{Code: errs.Invalid, Msg: "parameters are not valid text", Err: err}
	}
	return b, nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
