package wecomkf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// Origins of a sync_msg item.
const (
	OriginCustomer = 3 // sent by the WeChat customer
	OriginSystem   = 4 // an event pushed by the system
	OriginServicer = 5 // sent by a receptionist from the WeCom client
)

// Page is one sync_msg page with everything it carried: the customer's
// messages and enter-session events (PullResult.Inbound), delivery
// failures of our sends (Statuses) and the other system events (Events).
type Page struct {
	channels.PullResult
	// Statuses are msg_send_fail events: a message we sent (by its msgid)
	// did not reach the customer.
	Statuses []channels.StatusUpdate
	// Events are the other system events: session and servicer status
	// changes, recalls.
	Events []Event
	// Skipped counts items left out: servicer messages (origin 5), items
	// of another customer-service account, unreadable items.
	Skipped int
}

// Event is a system event of the customer-service account that is not a
// customer's message: a WeCom servicer took, transferred or ended a
// session (session_status_change), a servicer started or stopped
// receiving (servicer_status_change), the customer or a servicer recalled
// a message (user_recall_msg, servicer_recall_msg)... Type is the
// provider's event_type; the fields of other types are zero and Raw keeps
// the whole item.
type Event struct {
	MsgID          string
	Type           string
	OpenKfID       string
	ExternalUserID string
	// ServicerUserID and Status (1 receiving, 2 stopped) for
	// servicer_status_change.
	ServicerUserID string
	Status         int
	// ChangeType (1 taken from the pool, 2 transferred, 3 ended, 4
	// reopened by a servicer), the servicers involved and the msg_code for
	// send_msg_on_event, for session_status_change.
	ChangeType        int
	OldServicerUserID string
	NewServicerUserID string
	MsgCode           string
	// RecallMsgID is the recalled message of a recall event.
	RecallMsgID string
	At          time.Time
	Raw         json.RawMessage
}

// Event types of origin-4 items the adapter reads.
const (
	EventTypeEnterSession  = "enter_session"
	EventTypeMsgSendFail   = "msg_send_fail"
	EventTypeServicerState = "servicer_status_change"
	EventTypeSessionState  = "session_status_change"
	EventTypeUserRecall    = "user_recall_msg"
)

// syncRequest is the body of sync_msg.
type syncRequest struct {
	Cursor      string `json:"cursor,omitempty"`
	Token       string `json:"token,omitempty"`
	Limit       int    `json:"limit"`
	VoiceFormat int    `json:"voice_format"`
	OpenKfID    string `json:"open_kfid"`
}

// syncResponse is the answer of sync_msg; items stay raw so that each is
// kept as the provider sent it and one bad item spoils only itself.
type syncResponse struct {
	ErrCode    int               `json:"errcode"`
	ErrMsg     string            `json:"errmsg"`
	NextCursor string            `json:"next_cursor"`
	HasMore    int               `json:"has_more"`
	MsgList    []json.RawMessage `json:"msg_list"`
}

// Pull implements channels.Puller: one sync_msg page from cursor. It
// returns the customer's messages, the enter-session events and the
// delivery failures of messages we sent; the other system events of the
// page are logged (PullPage returns them).
func (a *Adapter) Pull(ctx context.Context, acct channels.Account, cursor, token string) (channels.PullResult, error) {
	p, err := a.PullPage(ctx, acct, cursor, token)
	if err != nil {
		return channels.PullResult{}, err
	}
	p.PullResult.Statuses = p.Statuses
	for _, ev := range p.Events {
		a.log.InfoContext(ctx, "wecom event", "account", acct.ID, "type", ev.Type, "external_userid", ev.ExternalUserID, "change_type", ev.ChangeType)
	}
	return p.PullResult, nil
}

// PullPage fetches one sync_msg page of the account's customer-service
// account from cursor ("" starts at the oldest message WeCom keeps, 3
// days). token is the callback's token ("" on a timer pull): with it the
// frequency limit is loose. A token WeCom no longer accepts (95007, it
// lasts 10 minutes) is dropped and the page fetched without it. Next is
// the cursor to persist once the page is stored; it stays cursor when
// WeCom returns none. HasMore asks for the next page at once, even when
// this one is empty. Errors are *errs.Error classified like the sender's
// (see classify), with an *APIError cause carrying the errcode.
func (a *Adapter) PullPage(ctx context.Context, acct channels.Account, cursor, token string) (Page, error) {
	const op = "wecomkf.Pull"
	creds, err := ParseCredentials(acct.Credentials)
	if err != nil {
		return Page{}, &errs.Error{Op: op, Code: errs.Unauthorized, Msg: "account " + acct.ID + " credentials", Err: err}
	}
	req := syncRequest{Cursor: cursor, Token: token, Limit: SyncLimit, OpenKfID: creds.OpenKfID}
	var raw json.RawMessage
	err = a.call(ctx, &creds, pathSyncMsg, req, &raw)
	var ae *APIError
	if errors.As(err, &ae) && ae.Code == codeInvalidMsgTok && token != "" {
		a.log.InfoContext(ctx, "wecom sync token refused; pulling without it", "account", acct.ID)
		req.Token = ""
		err = a.call(ctx, &creds, pathSyncMsg, req, &raw)
	}
	if err != nil {
		return Page{}, opError(op, err)
	}
	p, err := parseSync(acct.ID, creds.OpenKfID, raw, a.clock.Now())
	if err != nil {
		return Page{}, errs.Wrap(op, err)
	}
	if p.Next == "" {
		p.Next = cursor
	}
	if p.Skipped > 0 {
		a.log.DebugContext(ctx, "wecom sync items skipped", "account", acct.ID, "skipped", p.Skipped)
	}
	return p, nil
}

// ParseSyncResponse reads a sync_msg answer for the customer-service
// account openKfID of channel account accountID; now dates items without
// a send_time. A non-zero errcode is an *APIError; an answer that is not
// the API's JSON is errs.Invalid. Items that cannot be read are skipped
// (counted in Skipped) rather than failing the page: a page that always
// failed would stop the cursor for good.
func ParseSyncResponse(accountID, openKfID string, body []byte, now time.Time) (Page, error) {
	return parseSync(accountID, openKfID, body, now)
}

func parseSync(accountID, openKfID string, body []byte, now time.Time) (Page, error) {
	const op = "wecomkf.ParseSyncResponse"
	var r syncResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return Page{}, &errs.Error{Op: op, Code: errs.Invalid, Msg: "sync_msg answer is not the API's JSON", Err: err}
	}
	if r.ErrCode != 0 {
		return Page{}, opError(op, &APIError{Path: pathSyncMsg, HTTPStatus: 200, Code: r.ErrCode, Msg: r.ErrMsg})
	}
	p := Page{PullResult: channels.PullResult{Next: r.NextCursor, HasMore: r.HasMore == 1}}
	for _, item := range r.MsgList {
		p.add(accountID, openKfID, item, now)
	}
	return p, nil
}

// item is one msg_list entry.
type item struct {
	MsgID          string `json:"msgid"`
	OpenKfID       string `json:"open_kfid"`
	ExternalUserID string `json:"external_userid"`
	ServicerUserID string `json:"servicer_userid"`
	SendTime       int64  `json:"send_time"`
	Origin         int    `json:"origin"`
	MsgType        string `json:"msgtype"`

	Text *struct {
		Content string `json:"content"`
		MenuID  string `json:"menu_id"`
	} `json:"text"`
	Image    *mediaItem `json:"image"`
	Voice    *mediaItem `json:"voice"`
	Video    *mediaItem `json:"video"`
	File     *mediaItem `json:"file"`
	Location *struct {
		Latitude  float64 `json:"latitude"`
		Longitude float64 `json:"longitude"`
		Name      string  `json:"name"`
		Address   string  `json:"address"`
	} `json:"location"`
	Link *struct {
		Title  string `json:"title"`
		Desc   string `json:"desc"`
		URL    string `json:"url"`
		PicURL string `json:"pic_url"`
	} `json:"link"`
	BusinessCard *struct {
		UserID string `json:"userid"`
	} `json:"business_card"`
	MiniProgram *struct {
		AppID    string `json:"appid"`
		Title    string `json:"title"`
		PagePath string `json:"pagepath"`
	} `json:"miniprogram"`
	Channels *struct {
		Nickname string `json:"nickname"`
		Title    string `json:"title"`
	} `json:"channels"`
	ChannelsShopProduct *struct {
		Title        string `json:"title"`
		SalesPrice   string `json:"sales_price"`
		ShopNickname string `json:"shop_nickname"`
	} `json:"channels_shop_product"`
	ChannelsShopOrder *struct {
		OrderID       string `json:"order_id"`
		ProductTitles string `json:"product_titles"`
		PriceWording  string `json:"price_wording"`
		State         string `json:"state"`
	} `json:"channels_shop_order"`
	MergedMsg *struct {
		Title string `json:"title"`
	} `json:"merged_msg"`
	Event *struct {
		EventType         string `json:"event_type"`
		OpenKfID          string `json:"open_kfid"`
		ExternalUserID    string `json:"external_userid"`
		Scene             string `json:"scene"`
		SceneParam        string `json:"scene_param"`
		WelcomeCode       string `json:"welcome_code"`
		FailMsgID         string `json:"fail_msgid"`
		FailType          int    `json:"fail_type"`
		ServicerUserID    string `json:"servicer_userid"`
		Status            int    `json:"status"`
		ChangeType        int    `json:"change_type"`
		OldServicerUserID string `json:"old_servicer_userid"`
		NewServicerUserID string `json:"new_servicer_userid"`
		MsgCode           string `json:"msg_code"`
		RecallMsgID       string `json:"recall_msgid"`
	} `json:"event"`
}

type mediaItem struct {
	MediaID string `json:"media_id"`
}

// failTypes describes msg_send_fail's fail_type.
var failTypes = map[int]string{
	0:  "unknown reason",
	1:  "customer-service account deleted",
	2:  "app closed",
	4:  "session expired (over 48 hours since the customer's last message)",
	5:  "session closed",
	6:  "over the 5-message limit",
	7:  "no Channels account bound",
	8:  "entity not verified",
	9:  "no Channels account bound and entity not verified",
	10: "customer refuses messages",
}

// add files one raw item into the page.
func (p *Page) add(accountID, openKfID string, raw json.RawMessage, now time.Time) {
	var m item
	if err := json.Unmarshal(raw, &m); err != nil || m.MsgID == "" {
		p.Skipped++
		return
	}
	at := now
	if m.SendTime > 0 && m.SendTime < 1<<40 {
		at = time.Unix(m.SendTime, 0)
	}
	raw = compact(raw)
	switch m.Origin {
	case OriginCustomer:
		if m.ExternalUserID == "" || (m.OpenKfID != "" && m.OpenKfID != openKfID) {
			p.Skipped++
			return
		}
		in := m.inbound()
		in.AccountID, in.ExternalID, in.ChannelMsgID, in.Raw, in.ReceivedAt = accountID, m.ExternalUserID, m.MsgID, raw, at
		p.Inbound = append(p.Inbound, in)
	case OriginSystem:
		if m.Event == nil {
			p.Skipped++
			return
		}
		e := m.Event
		kf := firstNonEmpty(e.OpenKfID, m.OpenKfID)
		user := firstNonEmpty(e.ExternalUserID, m.ExternalUserID)
		if kf != "" && kf != openKfID {
			p.Skipped++
			return
		}
		switch e.EventType {
		case EventTypeEnterSession:
			if user == "" {
				p.Skipped++
				return
			}
			p.Inbound = append(p.Inbound, channels.Inbound{
				AccountID: accountID, ExternalID: user, ChannelMsgID: m.MsgID, Type: channels.MsgEvent,
				Event: &channels.Event{Kind: channels.EventEnterSession, Scene: e.Scene, Key: e.SceneParam, Name: e.EventType},
				Raw:   raw, ReceivedAt: at,
			})
		case EventTypeMsgSendFail:
			if e.FailMsgID == "" {
				p.Skipped++
				return
			}
			why, ok := failTypes[e.FailType]
			if !ok {
				why = "fail_type " + strconv.Itoa(e.FailType)
			}
			p.Statuses = append(p.Statuses, channels.StatusUpdate{
				AccountID: accountID, ChannelMsgID: e.FailMsgID, ExternalID: user, Status: channels.StatusFailed,
				Code: "fail_type_" + strconv.Itoa(e.FailType), Error: why, At: at,
			})
		default:
			p.Events = append(p.Events, Event{
				MsgID: m.MsgID, Type: e.EventType, OpenKfID: kf, ExternalUserID: user,
				ServicerUserID: e.ServicerUserID, Status: e.Status, ChangeType: e.ChangeType,
				OldServicerUserID: e.OldServicerUserID, NewServicerUserID: e.NewServicerUserID, MsgCode: e.MsgCode,
				RecallMsgID: e.RecallMsgID, At: at, Raw: raw,
			})
		}
	default:
		// Origin 5: what a servicer typed in the WeCom client; not the
		// customer's, and not ours to deliver.
		p.Skipped++
	}
}

// inbound normalises a customer message's content. Types the contract has
// no shape for (mini programs, Channels posts and shop cards, merged chat
// records) are MsgUnsupported with a readable Text; Raw keeps the rest.
func (m *item) inbound() channels.Inbound {
	in := channels.Inbound{Type: channels.MsgUnsupported}
	media := func(t string, mi *mediaItem) {
		if mi == nil || mi.MediaID == "" {
			return
		}
		in.Type, in.Media = t, &channels.Media{ID: mi.MediaID}
	}
	switch m.MsgType {
	case "text":
		if m.Text == nil {
			break
		}
		in.Type, in.Text = channels.MsgText, m.Text.Content
		if m.Text.MenuID != "" {
			// The customer tapped an item of a menu we sent (msgmenu).
			in.Type = channels.MsgInteractive
			in.Choice = &channels.Choice{ID: m.Text.MenuID, Title: m.Text.Content}
		}
	case "image":
		media(channels.MsgImage, m.Image)
	case "voice":
		media(channels.MsgAudio, m.Voice)
		if in.Media != nil {
			// Pulled with voice_format 0.
			in.Media.MIMEType, in.Media.Voice = "audio/amr", true
		}
	case "video":
		media(channels.MsgVideo, m.Video)
	case "file":
		media(channels.MsgDocument, m.File)
	case "location":
		if l := m.Location; l != nil {
			in.Type = channels.MsgLocation
			in.Location = &channels.Location{Latitude: l.Latitude, Longitude: l.Longitude, Name: l.Name, Address: l.Address}
			in.Text = firstNonEmpty(l.Name, l.Address)
		}
	case "link":
		if l := m.Link; l != nil {
			in.Type, in.Text = channels.MsgText, joinNonEmpty("\n", l.Title, l.Desc, l.URL)
		}
	case "business_card":
		if b := m.BusinessCard; b != nil {
			in.Type, in.Text = channels.MsgContacts, b.UserID
		}
	case "miniprogram":
		if mp := m.MiniProgram; mp != nil {
			in.Text = joinNonEmpty("\n", mp.Title, mp.PagePath)
		}
	case "channels":
		if c := m.Channels; c != nil {
			in.Text = joinNonEmpty("\n", c.Nickname, c.Title)
		}
	case "channels_shop_product":
		if c := m.ChannelsShopProduct; c != nil {
			in.Text = joinNonEmpty("\n", c.Title, c.SalesPrice, c.ShopNickname)
		}
	case "channels_shop_order":
		if c := m.ChannelsShopOrder; c != nil {
			in.Text = joinNonEmpty("\n", c.OrderID, c.ProductTitles, c.PriceWording, c.State)
		}
	case "merged_msg":
		if c := m.MergedMsg; c != nil {
			in.Text = c.Title
		}
	}
	return in
}

// WelcomeCode returns the welcome_code of an enter-session Inbound: with
// it SendOnEvent may greet the customer once, within 20 seconds. It is ""
// when WeCom gave none (a native welcome message is configured, or the
// customer heard from the account in the last 48 hours).
func WelcomeCode(in channels.Inbound) string {
	if in.Event == nil || in.Event.Kind != channels.EventEnterSession {
		return ""
	}
	var m struct {
		Event struct {
			WelcomeCode string `json:"welcome_code"`
		} `json:"event"`
	}
	if json.Unmarshal(in.Raw, &m) != nil {
		return ""
	}
	return m.Event.WelcomeCode
}

func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}
