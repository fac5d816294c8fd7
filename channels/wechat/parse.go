package wechat

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// message is every field a push may carry (field names as WeChat spells
// them, which differ in case: MsgId for messages, MsgID in template
// reports). Numbers are kept as text and parsed per type, so a field a
// message type does not use cannot make the whole push fail. The JSON
// names are WeChat's too: the struct is the Raw of the Inbound.
type message struct {
	XMLName      xml.Name `xml:"xml" json:"-"`
	ToUserName   string   `xml:"ToUserName" json:"ToUserName,omitempty"`
	FromUserName string   `xml:"FromUserName" json:"FromUserName,omitempty"`
	CreateTime   string   `xml:"CreateTime" json:"CreateTime,omitempty"`
	MsgType      string   `xml:"MsgType" json:"MsgType,omitempty"`
	MsgID        string   `xml:"MsgId" json:"MsgId,omitempty"`
	MsgDataID    string   `xml:"MsgDataId" json:"MsgDataId,omitempty"`
	Idx          string   `xml:"Idx" json:"Idx,omitempty"`

	Content      string `xml:"Content" json:"Content,omitempty"`
	BizMsgMenuID string `xml:"bizmsgmenuid" json:"bizmsgmenuid,omitempty"`
	PicURL       string `xml:"PicUrl" json:"PicUrl,omitempty"`
	MediaID      string `xml:"MediaId" json:"MediaId,omitempty"`
	Format       string `xml:"Format" json:"Format,omitempty"`
	Recognition  string `xml:"Recognition" json:"Recognition,omitempty"`
	ThumbMediaID string `xml:"ThumbMediaId" json:"ThumbMediaId,omitempty"`
	LocationX    string `xml:"Location_X" json:"Location_X,omitempty"`
	LocationY    string `xml:"Location_Y" json:"Location_Y,omitempty"`
	Scale        string `xml:"Scale" json:"Scale,omitempty"`
	Label        string `xml:"Label" json:"Label,omitempty"`
	Title        string `xml:"Title" json:"Title,omitempty"`
	Description  string `xml:"Description" json:"Description,omitempty"`
	URL          string `xml:"Url" json:"Url,omitempty"`
	AppID        string `xml:"AppId" json:"AppId,omitempty"`
	PagePath     string `xml:"PagePath" json:"PagePath,omitempty"`

	Event     string `xml:"Event" json:"Event,omitempty"`
	EventKey  string `xml:"EventKey" json:"EventKey,omitempty"`
	Ticket    string `xml:"Ticket" json:"Ticket,omitempty"`
	Latitude  string `xml:"Latitude" json:"Latitude,omitempty"`
	Longitude string `xml:"Longitude" json:"Longitude,omitempty"`
	Precision string `xml:"Precision" json:"Precision,omitempty"`
	MenuID    string `xml:"MenuId" json:"MenuId,omitempty"`
	UnionID   string `xml:"UnionId" json:"UnionId,omitempty"`
	// TemplateMsgID and Status are the delivery report of a template
	// message (Event TEMPLATESENDJOBFINISH).
	TemplateMsgID string `xml:"MsgID" json:"MsgID,omitempty"`
	Status        string `xml:"Status" json:"Status,omitempty"`
}

// parseMessage reads a decrypted or plain push. The sender, the type and,
// when present, a numeric CreateTime are required.
func parseMessage(body []byte) (*message, error) {
	const op = "wechat.parse"
	var m message
	if err := xml.Unmarshal(body, &m); err != nil {
		return nil, errs.E(op, errs.Invalid, "not WeChat XML")
	}
	m.FromUserName = strings.TrimSpace(m.FromUserName)
	m.MsgType = strings.TrimSpace(m.MsgType)
	m.MsgID = strings.TrimSpace(m.MsgID)
	m.CreateTime = strings.TrimSpace(m.CreateTime)
	switch {
	case m.FromUserName == "":
		return nil, errs.E(op, errs.Invalid, "no FromUserName")
	case m.MsgType == "":
		return nil, errs.E(op, errs.Invalid, "no MsgType")
	}
	if m.CreateTime != "" {
		// Up to the year 9999, so that the time stays encodable.
		if sec, err := strconv.ParseInt(m.CreateTime, 10, 64); err != nil || sec < 0 || sec > 253402300799 {
			return nil, errs.E(op, errs.Invalid, "CreateTime: not a Unix time")
		}
	}
	if m.MsgID != "" {
		if _, err := strconv.ParseUint(m.MsgID, 10, 64); err != nil {
			return nil, errs.E(op, errs.Invalid, "MsgId: not a number")
		}
	}
	return &m, nil
}

// status turns a template message's delivery report into a StatusUpdate
// of the message we sent (its msgid is the ChannelMsgID Send returned).
func (m *message) status(accountID string) (channels.StatusUpdate, bool) {
	if m.MsgType != "event" || !strings.EqualFold(m.Event, "TEMPLATESENDJOBFINISH") || strings.TrimSpace(m.TemplateMsgID) == "" {
		return channels.StatusUpdate{}, false
	}
	st := channels.StatusUpdate{AccountID: accountID, ChannelMsgID: strings.TrimSpace(m.TemplateMsgID), ExternalID: m.FromUserName, At: m.created()}
	switch s := strings.TrimSpace(m.Status); {
	case s == "success":
		st.Status = channels.StatusDelivered
	case strings.Contains(s, "user block"):
		st.Status, st.Code, st.Error = channels.StatusFailed, "user_block", "the customer blocked the account's template messages"
	default:
		// "failed: system failed" and anything new: WeChat's side failed.
		st.Status, st.Code, st.Error, st.Retryable = channels.StatusFailed, "system_failed", s, true
	}
	return st, true
}

// created is CreateTime as a time (zero when absent or not positive).
func (m *message) created() time.Time {
	sec, err := strconv.ParseInt(m.CreateTime, 10, 64)
	if err != nil || sec <= 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}

// inbound normalises the message. What WeChat sends but the contract has
// no field for stays in Raw. ReceivedAt is when the customer sent it
// (CreateTime), now when the push does not say.
func (m *message) inbound(accountID string, now time.Time) channels.Inbound {
	in := channels.Inbound{
		AccountID:    accountID,
		ExternalID:   m.FromUserName,
		UnionID:      strings.TrimSpace(m.UnionID),
		ChannelMsgID: m.MsgID,
		ReceivedAt:   m.created(),
	}
	if in.ReceivedAt.IsZero() {
		in.ReceivedAt = now
	}
	in.Raw, _ = json.Marshal(m) // strings only: cannot fail
	switch m.MsgType {
	case "text":
		in.Type, in.Text = channels.MsgText, m.Content
		if id := strings.TrimSpace(m.BizMsgMenuID); id != "" {
			// A tap on a msgmenu item we sent comes back as text with the
			// item's id.
			in.Type = channels.MsgInteractive
			in.Choice = &channels.Choice{ID: id, Title: m.Content}
		}
	case "image":
		in.Type = channels.MsgImage
		in.Media = &channels.Media{ID: m.MediaID, URL: m.PicURL}
	case "voice":
		// WeChat's speech recognition doubles as the text, so the bot and
		// agent assist can work on a voice note.
		in.Type, in.Text = channels.MsgAudio, m.Recognition
		in.Media = &channels.Media{ID: m.MediaID, MIMEType: voiceMIME(m.Format), Voice: true, Recognition: m.Recognition}
	case "video", "shortvideo":
		in.Type = channels.MsgVideo
		in.Media = &channels.Media{ID: m.MediaID}
	case "location":
		in.Type, in.Text = channels.MsgLocation, m.Label
		scale, _ := strconv.Atoi(strings.TrimSpace(m.Scale))
		in.Location = &channels.Location{Latitude: number(m.LocationX), Longitude: number(m.LocationY), Name: m.Label, Scale: scale}
	case "link":
		// The contract has no link type; its text form carries everything
		// an agent needs, Raw the rest.
		in.Type, in.Text = channels.MsgText, joinNonEmpty("\n", m.Title, m.Description, m.URL)
	case "event":
		in.Type, in.Event = channels.MsgEvent, m.event()
	default:
		// miniprogrampage and whatever comes next.
		in.Type, in.Text = channels.MsgUnsupported, m.Title
	}
	if in.ChannelMsgID == "" {
		in.ChannelMsgID = m.fallbackID()
	}
	return in
}

// event normalises an event push.
func (m *message) event() *channels.Event {
	key := strings.TrimSpace(m.EventKey)
	e := &channels.Event{Kind: channels.EventOther, Name: m.Event, Key: key}
	switch strings.ToLower(strings.TrimSpace(m.Event)) {
	case "subscribe":
		e.Kind, e.Key = channels.EventSubscribe, ""
		// A follow through a parametric QR code carries its scene.
		if scene, ok := strings.CutPrefix(key, "qrscene_"); ok {
			e.Scene, e.Ticket = scene, strings.TrimSpace(m.Ticket)
		}
	case "unsubscribe":
		e.Kind, e.Key = channels.EventUnsubscribe, ""
	case "scan":
		e.Kind, e.Key, e.Scene, e.Ticket = channels.EventScan, "", key, strings.TrimSpace(m.Ticket)
	case "click":
		e.Kind = channels.EventClick
	case "view":
		e.Kind = channels.EventView
	case "location":
		e.Kind, e.Key = channels.EventLocation, ""
		e.Location = &channels.Location{Latitude: number(m.Latitude), Longitude: number(m.Longitude), Precision: number(m.Precision)}
	}
	if e.Kind != channels.EventOther {
		e.Name = ""
	}
	return e
}

// fallbackID is the idempotency key of a push without MsgId, which is
// every event: WeChat says to deduplicate events by sender and CreateTime.
// The event (or type) and its key are added so that two different events
// of one second stay apart; a long key (a VIEW URL) is hashed to keep the
// id short. Retries of one push carry the same fields, so the same id.
func (m *message) fallbackID() string {
	prefix, kind, key := "msg:", m.MsgType, ""
	if m.MsgType == "event" {
		prefix, kind, key = "event:", strings.TrimSpace(m.Event), strings.TrimSpace(m.EventKey)
	}
	if len(key) > 64 {
		sum := sha1.Sum([]byte(key))
		key = "sha1:" + hex.EncodeToString(sum[:10])
	}
	return prefix + m.FromUserName + ":" + m.CreateTime + ":" + kind + ":" + key
}

// voiceMIME is the media type of a voice message's Format (amr, speex).
func voiceMIME(format string) string {
	switch strings.ToLower(strings.TrimSpace(format)) {
	case "amr":
		return "audio/amr"
	case "speex":
		return "audio/speex"
	case "mp3":
		return "audio/mpeg"
	}
	return ""
}

// number parses a coordinate or precision; WeChat sends well-formed
// decimals, and a malformed one reads as 0 rather than losing the message.
func number(s string) float64 {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}
