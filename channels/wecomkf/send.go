package wecomkf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/switchboard-acd/switchboard/channels"
)

// Limits of send_msg.
const (
	// MaxTextBytes is the longest text content WeCom takes (bytes of
	// UTF-8, not characters: about 680 Chinese characters).
	MaxTextBytes = 2048
	// MaxMsgIDLen is the longest msgid WeCom takes.
	MaxMsgIDLen = 32
)

var msgIDRe = regexp.MustCompile(`^[0-9A-Za-z_-]{1,32}$`)

// MsgID is the msgid sent with a message whose idempotency key is key:
// key itself when WeCom accepts it (at most 32 of [0-9A-Za-z_-]), else
// the first 32 hex digits of its SHA-256 (a UUID with its hyphens is 36
// characters). It is deterministic, so a retried send carries the same
// msgid and WeCom does not deliver it twice; it is also the ChannelMsgID
// that a later msg_send_fail names.
func MsgID(key string) string {
	if msgIDRe.MatchString(key) {
		return key
	}
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])[:MaxMsgIDLen]
}

// sendRequest is the body of send_msg (and, with Code, send_msg_on_event).
type sendRequest struct {
	ToUser   string        `json:"touser,omitempty"`
	OpenKfID string        `json:"open_kfid,omitempty"`
	Code     string        `json:"code,omitempty"`
	MsgID    string        `json:"msgid,omitempty"`
	MsgType  string        `json:"msgtype"`
	Text     *textBody     `json:"text,omitempty"`
	Image    *mediaItem    `json:"image,omitempty"`
	Voice    *mediaItem    `json:"voice,omitempty"`
	Video    *mediaItem    `json:"video,omitempty"`
	File     *mediaItem    `json:"file,omitempty"`
	MsgMenu  *msgMenuBody  `json:"msgmenu,omitempty"`
	Location *locationBody `json:"location,omitempty"`
}

type textBody struct {
	Content string `json:"content"`
}

type msgMenuBody struct {
	HeadContent string        `json:"head_content,omitempty"`
	List        []msgMenuItem `json:"list"`
	TailContent string        `json:"tail_content,omitempty"`
}

type msgMenuItem struct {
	Type  string     `json:"type"`
	Click *menuClick `json:"click,omitempty"`
}

type menuClick struct {
	ID      string `json:"id"`
	Content string `json:"content"`
}

type locationBody struct {
	Name      string  `json:"name,omitempty"`
	Address   string  `json:"address,omitempty"`
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
}

// sendAnswer is the answer of send_msg.
type sendAnswer struct {
	MsgID string `json:"msgid"`
}

// Send delivers one message to a customer of the account through
// send_msg:
//
//   - text (at most MaxTextBytes), image, audio (voice), video, document
//     (file) and sticker (as image); media must have been uploaded to
//     WeCom before (Media.ID is the media_id);
//   - interactive: Text as the menu's head and each Choice as a click item
//     (its ID comes back as the menu_id of the customer's text);
//   - location;
//   - any type with Raw set: Raw is the provider's own message object
//     (msgtype plus its body, e.g. a link or a mini-program card) and is
//     sent as is, with touser, open_kfid and msgid set by the adapter.
//
// Templates do not exist on this channel. The msgid is MsgID of the
// IdempotencyKey (or of MessageID), so a retried send is deduplicated by
// WeCom; ChannelMsgID is the msgid WeCom echoes. Failures are
// *channels.SendError classified by classify: the 48-hour window, the
// 5-message allowance and the service-state rule are WindowClosed.
func (a *Adapter) Send(ctx context.Context, acct channels.Account, out channels.Outbound) (channels.SendResult, error) {
	creds, err := ParseCredentials(acct.Credentials)
	if err != nil {
		return channels.SendResult{}, &channels.SendError{Code: codeCredentials, Auth: true, Msg: "account credentials are not usable", Err: err}
	}
	if strings.TrimSpace(out.ExternalID) == "" {
		return channels.SendResult{}, &channels.SendError{Code: codeInvalidMessage, Msg: "no recipient external_userid"}
	}
	key := out.IdempotencyKey
	if key == "" {
		key = out.MessageID
	}
	base := sendRequest{ToUser: out.ExternalID, OpenKfID: creds.OpenKfID}
	if key != "" {
		base.MsgID = MsgID(key)
	}
	body, se := messageBody(base, out)
	if se != nil {
		return channels.SendResult{}, se
	}
	var ans sendAnswer
	if err := a.call(ctx, &creds, pathSendMsg, body, &ans); err != nil {
		return channels.SendResult{}, sendError(err)
	}
	if ans.MsgID == "" {
		ans.MsgID = base.MsgID
	}
	return channels.SendResult{ChannelMsgID: ans.MsgID}, nil
}

// SendOnEvent answers an event with the one message WeCom allows for it
// (send_msg_on_event): code is an enter-session welcome_code (WelcomeCode,
// valid 20 seconds) or a msg_code from a service-state change or a
// session_status_change event (valid 48 hours or 20 seconds, see the
// provider's table). Only text and interactive (msgmenu) are accepted.
// Failures are classified like Send's.
func (a *Adapter) SendOnEvent(ctx context.Context, acct channels.Account, code string, out channels.Outbound) (channels.SendResult, error) {
	creds, err := ParseCredentials(acct.Credentials)
	if err != nil {
		return channels.SendResult{}, &channels.SendError{Code: codeCredentials, Auth: true, Msg: "account credentials are not usable", Err: err}
	}
	if code == "" {
		return channels.SendResult{}, &channels.SendError{Code: codeInvalidMessage, Msg: "no event code"}
	}
	if out.Type != channels.MsgText && out.Type != channels.MsgInteractive {
		return channels.SendResult{}, &channels.SendError{Code: codeInvalidMessage, Msg: fmt.Sprintf("%s: event messages are text or menus only", out.Type)}
	}
	base := sendRequest{Code: code}
	if key := firstNonEmpty(out.IdempotencyKey, out.MessageID); key != "" {
		base.MsgID = MsgID(key)
	}
	body, se := messageBody(base, out)
	if se != nil {
		return channels.SendResult{}, se
	}
	var ans sendAnswer
	if err := a.call(ctx, &creds, pathSendOnEvt, body, &ans); err != nil {
		return channels.SendResult{}, sendError(err)
	}
	return channels.SendResult{ChannelMsgID: firstNonEmpty(ans.MsgID, base.MsgID)}, nil
}

// messageBody fills base with out's content; the result is a sendRequest
// or, for Raw, the provider's object with base's addressing merged in.
func messageBody(base sendRequest, out channels.Outbound) (any, *channels.SendError) {
	invalid := func(format string, args ...any) *channels.SendError {
		return &channels.SendError{Code: codeInvalidMessage, Msg: fmt.Sprintf(format, args...)}
	}
	if len(bytes.TrimSpace(out.Raw)) > 0 {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(out.Raw, &obj); err != nil || len(obj["msgtype"]) == 0 {
			return nil, invalid("raw: not a message object with a msgtype")
		}
		for k, v := range map[string]string{"touser": base.ToUser, "open_kfid": base.OpenKfID, "code": base.Code, "msgid": base.MsgID} {
			delete(obj, k)
			if v != "" {
				obj[k], _ = json.Marshal(v)
			}
		}
		return obj, nil
	}
	m := base
	mediaID := func() (string, *channels.SendError) {
		if out.Media == nil || strings.TrimSpace(out.Media.ID) == "" {
			return "", invalid("%s: WeCom sends media by media_id; upload the file first", out.Type)
		}
		return out.Media.ID, nil
	}
	switch out.Type {
	case channels.MsgText, "":
		if strings.TrimSpace(out.Text) == "" {
			return nil, invalid("text: empty")
		}
		if len(out.Text) > MaxTextBytes {
			return nil, invalid("text: %d bytes over the limit of %d", len(out.Text), MaxTextBytes)
		}
		m.MsgType, m.Text = "text", &textBody{Content: out.Text}
	case channels.MsgImage, channels.MsgSticker, channels.MsgAudio, channels.MsgVideo, channels.MsgDocument:
		id, se := mediaID()
		if se != nil {
			return nil, se
		}
		mi := &mediaItem{MediaID: id}
		switch out.Type {
		case channels.MsgAudio:
			m.MsgType, m.Voice = "voice", mi
		case channels.MsgVideo:
			m.MsgType, m.Video = "video", mi
		case channels.MsgDocument:
			m.MsgType, m.File = "file", mi
		default:
			m.MsgType, m.Image = "image", mi
		}
	case channels.MsgInteractive:
		if len(out.Choices) == 0 {
			return nil, invalid("interactive: no choices")
		}
		menu := &msgMenuBody{HeadContent: out.Text, List: make([]msgMenuItem, 0, len(out.Choices))}
		for i, c := range out.Choices {
			if strings.TrimSpace(c.ID) == "" || strings.TrimSpace(c.Title) == "" {
				return nil, invalid("interactive: choice %d needs an id and a title", i)
			}
			menu.List = append(menu.List, msgMenuItem{Type: "click", Click: &menuClick{ID: c.ID, Content: c.Title}})
		}
		m.MsgType, m.MsgMenu = "msgmenu", menu
	case channels.MsgLocation:
		if out.Location == nil {
			return nil, invalid("location: missing")
		}
		l := out.Location
		m.MsgType, m.Location = "location", &locationBody{Name: l.Name, Address: l.Address, Latitude: l.Latitude, Longitude: l.Longitude}
	default:
		return nil, invalid("%s: not supported by the WeCom customer-service API", out.Type)
	}
	return m, nil
}
