package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/switchboard-acd/switchboard/channels"
)

// Paths of the send APIs.
const (
	pathCustomSend   = "/cgi-bin/message/custom/send"
	pathTemplateSend = "/cgi-bin/message/template/send"
)

// Send delivers one message to a follower of the account:
//
//   - text, image, audio (voice), video and interactive (text with
//     Choices as a msgmenu: the customer taps an item and it comes back as
//     a text message with the item's id) go through the customer-service
//     API, which only reaches customers who wrote in the last 48 hours;
//     media must have been uploaded to WeChat before (Media.ID is the
//     media_id);
//   - location has no customer-service form and is sent as text;
//   - template goes through the template-message API, which works outside
//     the window: Template.Name is the template_id and Template.Components
//     the template's "data" object (the whole request body may be given in
//     Outbound.Raw instead, for a url or miniprogram jump).
//
// The customer-service API returns no message id, so ChannelMsgID is empty
// except for templates (whose delivery report the webhook turns into a
// StatusUpdate).
func (a *Adapter) Send(ctx context.Context, acct channels.Account, out channels.Outbound) (channels.SendResult, error) {
	creds, err := ParseCredentials(acct.Credentials)
	if err != nil {
		return channels.SendResult{}, &channels.SendError{Code: codeCredentials, Auth: true, Msg: "account credentials are not usable", Err: err}
	}
	if strings.TrimSpace(out.ExternalID) == "" {
		return channels.SendResult{}, &channels.SendError{Code: codeInvalidMessage, Msg: "no recipient openid"}
	}
	if out.Type == channels.MsgTemplate {
		return a.sendTemplate(ctx, &creds, out)
	}
	body, se := customBody(out)
	if se != nil {
		return channels.SendResult{}, se
	}
	if se := a.call(ctx, &creds, http.MethodPost, pathCustomSend, nil, body, nil); se != nil {
		return channels.SendResult{}, se
	}
	return channels.SendResult{}, nil
}

// customMessage is the body of custom/send.
type customMessage struct {
	ToUser  string       `json:"touser"`
	MsgType string       `json:"msgtype"`
	Text    *textBody    `json:"text,omitempty"`
	Image   *mediaBody   `json:"image,omitempty"`
	Voice   *mediaBody   `json:"voice,omitempty"`
	Video   *videoBody   `json:"video,omitempty"`
	MsgMenu *msgMenuBody `json:"msgmenu,omitempty"`
}

type textBody struct {
	Content string `json:"content"`
}

type mediaBody struct {
	MediaID string `json:"media_id"`
}

type videoBody struct {
	MediaID      string `json:"media_id"`
	ThumbMediaID string `json:"thumb_media_id,omitempty"`
	Title        string `json:"title,omitempty"`
	Description  string `json:"description,omitempty"`
}

type msgMenuBody struct {
	HeadContent string        `json:"head_content"`
	List        []msgMenuItem `json:"list"`
	TailContent string        `json:"tail_content"`
}

type msgMenuItem struct {
	ID      string `json:"id"`
	Content string `json:"content"`
}

// customBody builds the custom/send request for out.
func customBody(out channels.Outbound) ([]byte, *channels.SendError) {
	invalid := func(format string, args ...any) *channels.SendError {
		return &channels.SendError{Code: codeInvalidMessage, Msg: fmt.Sprintf(format, args...)}
	}
	m := customMessage{ToUser: out.ExternalID}
	mediaID := func() (string, *channels.SendError) {
		if out.Media == nil || strings.TrimSpace(out.Media.ID) == "" {
			return "", invalid("%s: WeChat sends media by media_id; upload the file first", out.Type)
		}
		return out.Media.ID, nil
	}
	switch out.Type {
	case channels.MsgText:
		if strings.TrimSpace(out.Text) == "" {
			return nil, invalid("text: empty")
		}
		m.MsgType, m.Text = "text", &textBody{Content: out.Text}
	case channels.MsgImage:
		id, se := mediaID()
		if se != nil {
			return nil, se
		}
		m.MsgType, m.Image = "image", &mediaBody{MediaID: id}
	case channels.MsgAudio:
		id, se := mediaID()
		if se != nil {
			return nil, se
		}
		m.MsgType, m.Voice = "voice", &mediaBody{MediaID: id}
	case channels.MsgVideo:
		id, se := mediaID()
		if se != nil {
			return nil, se
		}
		m.MsgType, m.Video = "video", &videoBody{MediaID: id, Description: out.Media.Caption}
	case channels.MsgInteractive:
		if len(out.Choices) == 0 {
			return nil, invalid("interactive: no choices")
		}
		menu := &msgMenuBody{HeadContent: out.Text, List: make([]msgMenuItem, 0, len(out.Choices))}
		for i, c := range out.Choices {
			if strings.TrimSpace(c.ID) == "" || strings.TrimSpace(c.Title) == "" {
				return nil, invalid("interactive: choice %d needs an id and a title", i)
			}
			menu.List = append(menu.List, msgMenuItem{ID: c.ID, Content: c.Title})
		}
		m.MsgType, m.MsgMenu = "msgmenu", menu
	case channels.MsgLocation:
		if out.Location == nil {
			return nil, invalid("location: missing")
		}
		l := out.Location
		text := joinNonEmpty("\n", l.Name, l.Address, l.URL)
		if text == "" {
			text = strconv.FormatFloat(l.Latitude, 'f', -1, 64) + "," + strconv.FormatFloat(l.Longitude, 'f', -1, 64)
		}
		m.MsgType, m.Text = "text", &textBody{Content: text}
	default:
		return nil, invalid("%s: not supported by the WeChat customer-service API", out.Type)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, invalid("encoding: %v", err)
	}
	return b, nil
}

// sendTemplate sends a template message.
func (a *Adapter) sendTemplate(ctx context.Context, creds *Credentials, out channels.Outbound) (channels.SendResult, error) {
	var body []byte
	switch {
	case len(bytes.TrimSpace(out.Raw)) > 0:
		var req map[string]json.RawMessage
		if err := json.Unmarshal(out.Raw, &req); err != nil {
			return channels.SendResult{}, &channels.SendError{Code: codeInvalidMessage, Msg: "template: raw is not a JSON object"}
		}
		to, _ := json.Marshal(out.ExternalID)
		req["touser"] = to
		body, _ = json.Marshal(req)
	case out.Template != nil && strings.TrimSpace(out.Template.Name) != "":
		req := map[string]any{"touser": out.ExternalID, "template_id": out.Template.Name}
		if len(bytes.TrimSpace(out.Template.Components)) > 0 {
			if !json.Valid(out.Template.Components) {
				return channels.SendResult{}, &channels.SendError{Code: codeInvalidMessage, Msg: "template: components are not JSON"}
			}
			req["data"] = out.Template.Components
		}
		body, _ = json.Marshal(req)
	default:
		return channels.SendResult{}, &channels.SendError{Code: codeInvalidMessage, Msg: "template: no template_id"}
	}
	var ans struct {
		MsgID json.Number `json:"msgid"`
	}
	if se := a.call(ctx, creds, http.MethodPost, pathTemplateSend, nil, body, &ans); se != nil {
		return channels.SendResult{}, se
	}
	return channels.SendResult{ChannelMsgID: ans.MsgID.String()}, nil
}
