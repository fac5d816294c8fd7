package wecomkf

import (
	"context"
	"encoding/xml"
	"net/http"
	"net/url"
	"strings"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/wxcrypt"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// callbackAck is the answer to a callback: WeCom only needs a 200 within
// 5 seconds (it retries otherwise); "success" is what its other callbacks
// expect and is harmless here.
var callbackAck = []byte("success")

// envelope is the encrypted callback as posted.
type envelope struct {
	ToUserName string `xml:"ToUserName"`
	AgentID    string `xml:"AgentID"`
	Encrypt    string `xml:"Encrypt"`
}

// Callback is a decrypted customer-service callback: a doorbell saying
// that OpenKfID has new messages or events, with the Token that lets
// sync_msg fetch them without the strict frequency limit (valid 10
// minutes).
type Callback struct {
	ToUserName string `xml:"ToUserName"`
	CreateTime int64  `xml:"CreateTime"`
	MsgType    string `xml:"MsgType"`
	Event      string `xml:"Event"`
	Token      string `xml:"Token"`
	OpenKfID   string `xml:"OpenKfId"`
}

// ParseCallback reads a decrypted callback.
func ParseCallback(plain []byte) (Callback, error) {
	var cb Callback
	if err := xml.Unmarshal(plain, &cb); err != nil {
		return Callback{}, &errs.Error{Op: "wecomkf.ParseCallback", Code: errs.Invalid, Msg: "decrypted callback is not XML", Err: err}
	}
	return cb, nil
}

// Webhook answers the app's callback URL:
//
//   - GET is the URL verification: msg_signature over the encrypted
//     echostr is checked and the decrypted echostr is the answer;
//   - POST is a callback: the envelope is verified and decrypted (its
//     plaintext must end with the account's corp id), and a
//     kf_msg_or_event for this account's open_kfid (or one that names no
//     account) becomes WebhookResult{Pull: true, PullToken: Token}.
//
// Callbacks about another open_kfid of the same app, or of other kinds,
// are acknowledged and ignored: one app has one callback URL, so when
// several customer-service accounts of an app are separate channel
// accounts, only the one whose URL is configured hears the doorbell and
// the others rely on their timer pulls (or on a router that uses
// ParseCallback to pick the account by open_kfid). The timestamp is not
// checked for age: a replayed doorbell only causes a pull from the
// persisted cursor, which is harmless.
//
// A bad signature or a plaintext for another corp id is errs.Unauthorized,
// a body or echostr that cannot be read errs.Invalid, and broken account
// credentials errs.Internal (so that WeCom retries once they are fixed).
func (a *Adapter) Webhook(ctx context.Context, acct channels.Account, req channels.WebhookRequest) (channels.WebhookResult, error) {
	const op = "wecomkf.Webhook"
	creds, err := ParseCredentials(acct.Credentials)
	if err != nil {
		return channels.WebhookResult{}, &errs.Error{Op: op, Code: errs.Internal, Msg: "account " + acct.ID + " credentials", Err: err}
	}
	crypter, err := wxcrypt.New(creds.Token, creds.EncodingAESKey, creds.CorpID)
	if err != nil {
		return channels.WebhookResult{}, &errs.Error{Op: op, Code: errs.Internal, Msg: "account " + acct.ID + " credentials", Err: err}
	}
	q := req.Query
	if q == nil {
		if u, perr := url.Parse(req.URL); perr == nil {
			q = u.Query()
		}
	}
	sig, ts, nonce := q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce")
	switch req.Method {
	case http.MethodGet:
		echostr := base64Param(q.Get("echostr"))
		if echostr == "" {
			return channels.WebhookResult{}, errs.E(op, errs.Invalid, "URL verification without echostr")
		}
		plain, err := crypter.VerifyURL(sig, ts, nonce, echostr)
		if err != nil {
			return channels.WebhookResult{}, errs.Wrap(op, err)
		}
		return channels.WebhookResult{Reply: channels.WebhookReply{Status: http.StatusOK, ContentType: "text/plain; charset=utf-8", Body: plain}}, nil
	case http.MethodPost:
	default:
		return channels.WebhookResult{}, errs.E(op, errs.Invalid, "method %s not accepted", req.Method)
	}
	if len(req.Body) > MaxCallbackBody {
		return channels.WebhookResult{}, errs.E(op, errs.TooLarge, "body over %d bytes", MaxCallbackBody)
	}
	var env envelope
	if err := xml.Unmarshal(req.Body, &env); err != nil {
		return channels.WebhookResult{}, &errs.Error{Op: op, Code: errs.Invalid, Msg: "body is not the encrypted XML envelope", Err: err}
	}
	if env.Encrypt == "" {
		return channels.WebhookResult{}, errs.E(op, errs.Invalid, "envelope without Encrypt")
	}
	plain, err := crypter.Decrypt(sig, ts, nonce, strings.TrimSpace(env.Encrypt))
	if err != nil {
		return channels.WebhookResult{}, errs.Wrap(op, err)
	}
	cb, err := ParseCallback(plain)
	if err != nil {
		return channels.WebhookResult{}, errs.Wrap(op, err)
	}
	res := channels.WebhookResult{Reply: channels.WebhookReply{Status: http.StatusOK, ContentType: "text/plain; charset=utf-8", Body: callbackAck}}
	switch {
	case cb.MsgType != "event" || cb.Event != "kf_msg_or_event":
		a.log.DebugContext(ctx, "wecom callback ignored", "account", acct.ID, "msg_type", cb.MsgType, "event", cb.Event)
	case cb.OpenKfID != "" && cb.OpenKfID != creds.OpenKfID:
		a.log.WarnContext(ctx, "wecom callback for another customer-service account of the app ignored", "account", acct.ID, "open_kfid", cb.OpenKfID)
	default:
		res.Pull, res.PullToken = true, cb.Token
	}
	return res, nil
}

// base64Param undoes a form decoding that turned a base64 "+" sent
// unescaped into a space.
func base64Param(s string) string { return strings.ReplaceAll(s, " ", "+") }
