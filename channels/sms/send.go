package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/switchboard-acd/switchboard/channels"
)

// MaxBodyLength is the longest Body the Messages API takes, counted in
// UTF-16 code units (an emoji outside the BMP counts twice).
const MaxBodyLength = 1600

// bodyLength counts s the way the provider does.
func bodyLength(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// ValidateOutbound checks, without calling the provider, that out can be
// sent as one SMS/MMS: a recipient, a body of at most MaxBodyLength or a
// media URL, and a type SMS can carry. The console can call it before
// queueing; Send calls it too. The error is a permanent *channels.SendError.
func ValidateOutbound(out channels.Outbound) error {
	_, err := render(out)
	return err
}

// rendered is an Outbound as the Messages API sees it.
type rendered struct {
	body     string
	mediaURL string
}

// render turns an Outbound into a body and an optional media URL. SMS has
// no buttons, templates or maps, so:
//   - MsgInteractive becomes the text followed by numbered choices
//     ("1. Title"), which a customer answers with the digit (the bot's menu
//     digits);
//   - MsgLocation becomes the name, address and coordinates (and URL);
//   - MsgTemplate is sent as its Text when the outbox rendered one (a
//     WhatsApp template falling back to SMS), and refused otherwise;
//   - media needs a public URL (MMS); a provider media id is refused.
func render(out channels.Outbound) (rendered, error) {
	perm := func(code, format string, args ...any) error {
		return &channels.SendError{Code: code, Msg: fmt.Sprintf(format, args...)}
	}
	if out.ExternalID == "" {
		return rendered{}, perm("21604", "no recipient")
	}
	var r rendered
	switch out.Type {
	case channels.MsgText, "":
		r.body = out.Text
	case channels.MsgImage, channels.MsgAudio, channels.MsgVideo, channels.MsgDocument, channels.MsgSticker:
		if out.Media == nil || out.Media.URL == "" {
			return rendered{}, perm("21620", "%s needs a public media URL for MMS", out.Type)
		}
		r.mediaURL = out.Media.URL
		r.body = firstNonEmpty(out.Text, out.Media.Caption)
	case channels.MsgInteractive:
		var b strings.Builder
		b.WriteString(out.Text)
		for i, c := range out.Choices {
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			fmt.Fprintf(&b, "%d. %s", i+1, c.Title)
		}
		r.body = b.String()
	case channels.MsgLocation:
		if out.Location == nil {
			return rendered{}, perm("unsupported", "location message without a location")
		}
		l := out.Location
		var parts []string
		for _, s := range []string{out.Text, l.Name, l.Address} {
			if s != "" {
				parts = append(parts, s)
			}
		}
		parts = append(parts, strconv.FormatFloat(l.Latitude, 'f', -1, 64)+","+strconv.FormatFloat(l.Longitude, 'f', -1, 64))
		if l.URL != "" {
			parts = append(parts, l.URL)
		}
		r.body = strings.Join(parts, "\n")
	case channels.MsgTemplate:
		if out.Text == "" {
			return rendered{}, perm("unsupported", "SMS has no templates; a template needs its rendered Text")
		}
		r.body = out.Text
	default:
		return rendered{}, perm("unsupported", "SMS cannot carry %s messages", out.Type)
	}
	if r.body == "" && r.mediaURL == "" {
		return rendered{}, perm("21602", "empty message")
	}
	if n := bodyLength(r.body); n > MaxBodyLength {
		return rendered{}, perm("21617", "body of %d characters over the limit of %d", n, MaxBodyLength)
	}
	return r, nil
}

// apiError is the provider's error body.
type apiError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// Send posts one message to the Messages API with basic auth and returns
// the provider's message sid. Failures are *channels.SendError classified
// by the provider's code (see codes) or, without one, by the HTTP status;
// network errors and timeouts are retryable (the message may have been
// accepted: the API has no idempotency key, so a retry may duplicate it).
func (a *Adapter) Send(ctx context.Context, acct channels.Account, out channels.Outbound) (channels.SendResult, error) {
	creds, err := ParseCredentials(acct.Credentials)
	if err != nil {
		return channels.SendResult{}, &channels.SendError{Code: "credentials", Msg: "account " + acct.ID + " credentials", Auth: true, Err: err}
	}
	r, err := render(out)
	if err != nil {
		return channels.SendResult{}, err
	}
	form := url.Values{"To": {out.ExternalID}}
	if isServiceSID(creds.From) {
		form.Set("MessagingServiceSid", creds.From)
	} else {
		form.Set("From", creds.From)
	}
	if r.body != "" {
		form.Set("Body", r.body)
	}
	if r.mediaURL != "" {
		form.Set("MediaUrl", r.mediaURL)
	}
	if creds.StatusCallbackURL != "" {
		form.Set("StatusCallback", creds.StatusCallbackURL)
	}
	endpoint := creds.baseURL() + "/2010-04-01/Accounts/" + url.PathEscape(creds.AccountSID) + "/Messages.json"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return channels.SendResult{}, &channels.SendError{Code: "request", Msg: "build request", Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(creds.AccountSID, creds.AuthToken)
	resp, err := a.hc.Do(req)
	if err != nil {
		return channels.SendResult{}, &channels.SendError{Code: "network", Msg: "call provider", Retry: true, Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return channels.SendResult{}, &channels.SendError{Code: "network", Msg: "read provider response", Retry: true, Err: err}
	}
	if resp.StatusCode/100 == 2 {
		var ok struct {
			SID string `json:"sid"`
		}
		if err := json.Unmarshal(body, &ok); err != nil || ok.SID == "" {
			// Accepted (2xx) but unreadable: retrying would send the text
			// again, so this is final and logged for an operator.
			a.log.ErrorContext(ctx, "sms send accepted without a message sid", "account", acct.ID, "message", out.MessageID, "status", resp.StatusCode)
			return channels.SendResult{}, &channels.SendError{Code: "bad_response", Msg: fmt.Sprintf("HTTP %d without a message sid", resp.StatusCode), Err: err}
		}
		return channels.SendResult{ChannelMsgID: ok.SID}, nil
	}
	return channels.SendResult{}, classifyHTTP(resp, body, a.clock.Now())
}

// classifyHTTP turns an error response into a SendError.
func classifyHTTP(resp *http.Response, body []byte, now time.Time) *channels.SendError {
	var ae apiError
	_ = json.Unmarshal(body, &ae)
	se := &channels.SendError{Code: strconv.Itoa(resp.StatusCode), Msg: ae.Message}
	if se.Msg == "" {
		se.Msg = http.StatusText(resp.StatusCode)
	}
	if ae.Code != 0 {
		se.Code = strconv.Itoa(ae.Code)
	}
	ci, known := lookup(se.Code)
	switch {
	case known && ae.Code != 0:
		se.Retry = ci.class == retry
		se.Auth = ci.class == auth
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		se.Retry = true
	case resp.StatusCode == http.StatusUnauthorized:
		se.Auth = true
	}
	if se.Retry {
		se.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), now)
	}
	if se.Code == "63016" {
		se.WindowClosed = true
	}
	return se
}

// retryAfter reads a Retry-After header in seconds or as an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// IsOptOut reports whether err says the recipient has opted out (replied
// STOP): the contact should be marked so that no fallback tries SMS again.
func IsOptOut(err error) bool {
	var se *channels.SendError
	return errors.As(err, &se) && se.Code == "21610"
}
