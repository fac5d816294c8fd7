package wechat

import (
	"context"
	"encoding/xml"
	"net/http"
	"strconv"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/wxcrypt"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// successReply is the answer to every accepted push: WeChat then shows
// the customer nothing and expects the reply through the customer-service
// API. It is plain text in every mode; WeChat does not want "success"
// encrypted.
var successReply = channels.WebhookReply{Status: http.StatusOK, ContentType: "text/plain; charset=utf-8", Body: []byte("success")}

// Webhook verifies and parses one call of WeChat to the account's server
// URL:
//
//   - GET with signature, timestamp, nonce and echostr is the server-URL
//     verification: the echostr is answered verbatim (text/plain) when the
//     signature over (token, timestamp, nonce) is right;
//   - POST without encrypt_type (plain mode) must carry that signature.
//     It does not cover the body, so a captured signature could carry
//     another body: the timestamp check bounds that to MaxSkew, and safe
//     mode (whose msg_signature covers the ciphertext) closes it;
//   - POST with encrypt_type=aes (compatible and safe mode) must carry
//     msg_signature over (token, timestamp, nonce, Encrypt); the message is
//     the decrypted Encrypt element, and the plaintext fields compatible
//     mode puts beside it are ignored. A push in plain mode is accepted
//     for an account that has an AES key too: the token authenticates it
//     either way.
//
// A wrong or missing signature, a timestamp further than MaxSkew from now,
// or an encrypted message for another app id is errs.Unauthorized; a body
// over MaxBody errs.TooLarge; a body that is not a WeChat message
// errs.Invalid. An accepted push answers "success" with one Inbound, or
// with a StatusUpdate for a template message's delivery report.
func (a *Adapter) Webhook(ctx context.Context, acct channels.Account, req channels.WebhookRequest) (channels.WebhookResult, error) {
	const op = "wechat.Webhook"
	creds, err := ParseCredentials(acct.Credentials)
	if err != nil {
		return channels.WebhookResult{}, errs.Wrap(op, err)
	}
	q := req.Query
	ts, nonce := q.Get("timestamp"), q.Get("nonce")
	if err := a.checkTimestamp(ts); err != nil {
		return channels.WebhookResult{}, errs.Wrap(op, err)
	}
	switch req.Method {
	case http.MethodGet:
		echostr := q.Get("echostr")
		if !wxcrypt.Verify(q.Get("signature"), creds.Token, ts, nonce) {
			return channels.WebhookResult{}, errs.E(op, errs.Unauthorized, "bad signature")
		}
		if echostr == "" {
			return channels.WebhookResult{}, errs.E(op, errs.Invalid, "verification without echostr")
		}
		return channels.WebhookResult{Reply: channels.WebhookReply{Status: http.StatusOK, ContentType: "text/plain; charset=utf-8", Body: []byte(echostr)}}, nil
	case http.MethodPost:
	default:
		return channels.WebhookResult{}, errs.E(op, errs.Invalid, "method %s", req.Method)
	}
	if len(req.Body) > a.maxBody {
		return channels.WebhookResult{}, errs.E(op, errs.TooLarge, "body of %d bytes over %d", len(req.Body), a.maxBody)
	}

	body := req.Body
	switch et := q.Get("encrypt_type"); et {
	case "", "raw":
		if !wxcrypt.Verify(q.Get("signature"), creds.Token, ts, nonce) {
			return channels.WebhookResult{}, errs.E(op, errs.Unauthorized, "bad signature")
		}
	case "aes":
		if creds.EncodingAESKey == "" {
			return channels.WebhookResult{}, errs.E(op, errs.Unauthorized, "encrypted push, but the account has no encoding_aes_key")
		}
		var env struct {
			XMLName xml.Name `xml:"xml"`
			Encrypt string   `xml:"Encrypt"`
		}
		if err := xml.Unmarshal(body, &env); err != nil {
			return channels.WebhookResult{}, errs.E(op, errs.Invalid, "envelope: not WeChat XML")
		}
		if env.Encrypt == "" {
			return channels.WebhookResult{}, errs.E(op, errs.Invalid, "envelope: no Encrypt element")
		}
		c, err := wxcrypt.New(creds.Token, creds.EncodingAESKey, creds.AppID)
		if err != nil {
			return channels.WebhookResult{}, errs.Wrap(op, err)
		}
		if body, err = c.Decrypt(q.Get("msg_signature"), ts, nonce, env.Encrypt); err != nil {
			return channels.WebhookResult{}, errs.Wrap(op, err)
		}
	default:
		return channels.WebhookResult{}, errs.E(op, errs.Invalid, "encrypt_type %q", et)
	}

	m, err := parseMessage(body)
	if err != nil {
		return channels.WebhookResult{}, errs.Wrap(op, err)
	}
	res := channels.WebhookResult{Reply: successReply}
	if st, ok := m.status(acct.ID); ok {
		res.Statuses = []channels.StatusUpdate{st}
		return res, nil
	}
	res.Inbound = []channels.Inbound{m.inbound(acct.ID, a.clock.Now())}
	return res, nil
}

// checkTimestamp refuses a push signed too long ago (or in the future).
func (a *Adapter) checkTimestamp(ts string) error {
	const op = "wechat.checkTimestamp"
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errs.E(op, errs.Unauthorized, "missing or malformed timestamp")
	}
	if a.maxSkew < 0 {
		return nil
	}
	d := a.clock.Now().Sub(time.Unix(sec, 0))
	if d > a.maxSkew || d < -a.maxSkew {
		return errs.E(op, errs.Unauthorized, "timestamp %d is %s away from now", sec, d.Round(time.Second))
	}
	return nil
}
