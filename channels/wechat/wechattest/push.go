package wechattest

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/wxcrypt"
)

// WebhookURL is the address pushes are built for.
const WebhookURL = "https://switchboard.example/webhooks/wechat"

// Pusher builds the webhook calls WeChat makes to an account's server URL,
// signed with the account's token and, for compatible and safe mode,
// encrypted with its AES key, as WeChat does.
// Its methods may be called from fuzz targets and other goroutines.
type Pusher struct {
	Token string
	AppID string
	crypt *wxcrypt.Crypter // nil in plain mode
	nonce atomic.Int64
}

// NewPusher returns a Pusher for an account; encodingAESKey may be empty
// for plain mode only. A bad key fails the test.
func NewPusher(t testing.TB, token, appID, encodingAESKey string) *Pusher {
	t.Helper()
	p := &Pusher{Token: token, AppID: appID}
	if encodingAESKey != "" {
		c, err := wxcrypt.New(token, encodingAESKey, appID)
		if err != nil {
			t.Fatalf("wechattest: %v", err)
		}
		p.crypt = c
	}
	p.nonce.Store(1000000)
	return p
}

func (p *Pusher) next() string { return strconv.FormatInt(p.nonce.Add(1), 10) }

func request(method string, q url.Values, body []byte) channels.WebhookRequest {
	h := http.Header{}
	if body != nil {
		h.Set("Content-Type", "text/xml")
	}
	return channels.WebhookRequest{Method: method, URL: WebhookURL + "?" + q.Encode(), Query: q, Header: h, Body: body}
}

// Verify is the server-URL verification WeChat makes when the operator
// saves the configuration.
func (p *Pusher) Verify(at time.Time, echostr string) channels.WebhookRequest {
	ts, nonce := strconv.FormatInt(at.Unix(), 10), p.next()
	q := url.Values{"signature": {wxcrypt.Signature(p.Token, ts, nonce)}, "timestamp": {ts}, "nonce": {nonce}, "echostr": {echostr}}
	return request(http.MethodGet, q, nil)
}

// Plain is a push in plain mode: body as is, signed in the query.
func (p *Pusher) Plain(at time.Time, body []byte) channels.WebhookRequest {
	ts, nonce := strconv.FormatInt(at.Unix(), 10), p.next()
	q := url.Values{"signature": {wxcrypt.Signature(p.Token, ts, nonce)}, "timestamp": {ts}, "nonce": {nonce}}
	if from := field(body, "FromUserName"); from != "" {
		q.Set("openid", from)
	}
	return request(http.MethodPost, q, body)
}

// Safe is a push in safe mode: only ToUserName and Encrypt in the body.
func (p *Pusher) Safe(at time.Time, body []byte) channels.WebhookRequest {
	return p.encrypted(at, body, false)
}

// Compat is a push in compatible mode: the plaintext fields and Encrypt
// side by side.
func (p *Pusher) Compat(at time.Time, body []byte) channels.WebhookRequest {
	return p.encrypted(at, body, true)
}

func (p *Pusher) encrypted(at time.Time, body []byte, compat bool) channels.WebhookRequest {
	if p.crypt == nil {
		panic("wechattest: an encrypted push needs a Pusher with an AES key")
	}
	ts, nonce := strconv.FormatInt(at.Unix(), 10), p.next()
	enc, msgSig, err := p.crypt.Encrypt(body, ts, nonce)
	if err != nil {
		// Only a failing system random source gets here.
		panic("wechattest: " + err.Error())
	}
	var env []byte
	if compat {
		i := bytes.LastIndex(body, []byte("</xml>"))
		if i < 0 {
			i = len(body)
		}
		env = append(append(append([]byte{}, body[:i]...), "<Encrypt>"+CDATA(enc)+"</Encrypt>"...), body[i:]...)
	} else {
		env = []byte("<xml><ToUserName>" + CDATA(field(body, "ToUserName")) + "</ToUserName><Encrypt>" + CDATA(enc) + "</Encrypt></xml>")
	}
	q := url.Values{"signature": {wxcrypt.Signature(p.Token, ts, nonce)}, "timestamp": {ts}, "nonce": {nonce},
		"encrypt_type": {"aes"}, "msg_signature": {msgSig}}
	if from := field(body, "FromUserName"); from != "" {
		q.Set("openid", from)
	}
	return request(http.MethodPost, q, env)
}

// field reads one top-level element of a push ("" when absent or not XML).
func field(body []byte, name string) string {
	dec := xml.NewDecoder(bytes.NewReader(body))
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 && t.Name.Local == name {
				var s string
				if dec.DecodeElement(&s, &t) != nil {
					return ""
				}
				return s
			}
		case xml.EndElement:
			depth--
		}
	}
}

// CDATA wraps s in CDATA sections as WeChat does, splitting any "]]>".
func CDATA(s string) string {
	return "<![CDATA[" + strings.ReplaceAll(s, "]]>", "]]]]><![CDATA[>") + "]]>"
}

// Text builds a text message push from openid from to the account (its
// original id to).
func Text(from, to string, at time.Time, msgID int64, content string) []byte {
	return fmt.Appendf(nil, "<xml><ToUserName>%s</ToUserName><FromUserName>%s</FromUserName><CreateTime>%d</CreateTime>"+
		"<MsgType><![CDATA[text]]></MsgType><Content>%s</Content><MsgId>%d</MsgId></xml>",
		CDATA(to), CDATA(from), at.Unix(), CDATA(content), msgID)
}

// MenuTap builds the text push WeChat sends when the customer taps an item
// of a msgmenu we sent.
func MenuTap(from, to string, at time.Time, msgID int64, content, itemID string) []byte {
	return fmt.Appendf(nil, "<xml><ToUserName>%s</ToUserName><FromUserName>%s</FromUserName><CreateTime>%d</CreateTime>"+
		"<MsgType><![CDATA[text]]></MsgType><Content>%s</Content><MsgId>%d</MsgId><bizmsgmenuid>%s</bizmsgmenuid></xml>",
		CDATA(to), CDATA(from), at.Unix(), CDATA(content), msgID, itemID)
}

// Event builds an event push (subscribe, SCAN, CLICK...) with an optional
// EventKey.
func Event(from, to string, at time.Time, event, key string) []byte {
	k := ""
	if key != "" {
		k = "<EventKey>" + CDATA(key) + "</EventKey>"
	}
	return fmt.Appendf(nil, "<xml><ToUserName>%s</ToUserName><FromUserName>%s</FromUserName><CreateTime>%d</CreateTime>"+
		"<MsgType><![CDATA[event]]></MsgType><Event>%s</Event>%s</xml>",
		CDATA(to), CDATA(from), at.Unix(), CDATA(event), k)
}

// TemplateReport builds the delivery report of a template message
// (status "success", "failed:user block" or "failed: system failed").
func TemplateReport(from, to string, at time.Time, msgID, status string) []byte {
	return fmt.Appendf(nil, "<xml><ToUserName>%s</ToUserName><FromUserName>%s</FromUserName><CreateTime>%d</CreateTime>"+
		"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>%s</MsgID><Status>%s</Status></xml>",
		CDATA(to), CDATA(from), at.Unix(), msgID, CDATA(status))
}
