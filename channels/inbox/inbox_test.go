package inbox

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/session"
)

func TestIncoming(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       channels.Inbound
		keep     bool
		typ      session.MessageType
		text     string
		botReads string // what the engine's bot turn will read
		onlyOpen bool
		bodyHas  string
	}{
		{name: "text", in: channels.Inbound{Type: channels.MsgText, Text: "hello"},
			keep: true, typ: session.TypeText, text: "hello", botReads: "hello"},
		{name: "text replying to one of ours keeps the reference",
			in:   channels.Inbound{Type: channels.MsgText, Text: "yes", ReplyTo: "wamid.X"},
			keep: true, typ: session.TypeText, text: "yes", botReads: "yes", bodyHas: `"reply_to":"wamid.X"`},
		{name: "picked button: shown by title, the bot reads its id",
			in:   channels.Inbound{Type: channels.MsgInteractive, Choice: &channels.Choice{ID: "2", Title: "Refund status"}},
			keep: true, typ: "interactive", text: "Refund status", botReads: "2", bodyHas: `"choice":{"id":"2"`},
		{name: "image with caption: the bot reads the caption",
			in:   channels.Inbound{Type: channels.MsgImage, Text: "my receipt", Media: &channels.Media{ID: "m1", MIMEType: "image/jpeg"}},
			keep: true, typ: "image", text: "my receipt", botReads: "my receipt", bodyHas: `"media":{"id":"m1"`},
		{name: "image without caption is stored, not answered",
			in:   channels.Inbound{Type: channels.MsgImage, Media: &channels.Media{ID: "m1"}},
			keep: true, typ: "image", botReads: ""},
		{name: "voice note: the bot reads the transcription",
			in:   channels.Inbound{Type: channels.MsgAudio, Media: &channels.Media{ID: "v1", Voice: true, Recognition: "转人工"}},
			keep: true, typ: "audio", botReads: "转人工"},
		{name: "reaction joins an open session only",
			in:   channels.Inbound{Type: channels.MsgReaction, Reaction: &channels.Reaction{MessageID: "wamid.Y", Emoji: "👍"}},
			keep: true, typ: "reaction", botReads: "", onlyOpen: true},
		{name: "location is stored, not answered",
			in:   channels.Inbound{Type: channels.MsgLocation, Text: "Office", Location: &channels.Location{Latitude: 1, Longitude: 2}},
			keep: true, typ: "location", text: "Office", botReads: ""},
		{name: "subscribe through a QR code keeps the scene",
			in:   channels.Inbound{Type: channels.MsgEvent, Event: &channels.Event{Kind: channels.EventSubscribe, Scene: "poster-7"}},
			keep: true, typ: session.TypeEvent, botReads: "", bodyHas: `"scene":"poster-7"`},
		{name: "menu click: the bot reads the key",
			in:   channels.Inbound{Type: channels.MsgEvent, Event: &channels.Event{Kind: channels.EventClick, Key: "MENU_REFUND"}},
			keep: true, typ: session.TypeEvent, botReads: "MENU_REFUND"},
		{name: "location report joins an open session only",
			in:   channels.Inbound{Type: channels.MsgEvent, Event: &channels.Event{Kind: channels.EventLocation, Location: &channels.Location{Latitude: 1}}},
			keep: true, typ: session.TypeEvent, botReads: "", onlyOpen: true},
		{name: "unsubscribe is not a message",
			in: channels.Inbound{Type: channels.MsgEvent, Event: &channels.Event{Kind: channels.EventUnsubscribe}}},
		{name: "event without event", in: channels.Inbound{Type: channels.MsgEvent}},
		{name: "unknown type is stored as unsupported, not answered",
			in:   channels.Inbound{Type: "hologram", Text: "Message type unknown"},
			keep: true, typ: channels.MsgUnsupported, text: "Message type unknown", botReads: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.ChannelMsgID = "id-1"
			got, keep := Incoming(tc.in)
			if keep != tc.keep {
				t.Fatalf("keep = %v, want %v", keep, tc.keep)
			}
			if !keep {
				return
			}
			if got.Type != tc.typ || got.Text != tc.text || got.OnlyOpen != tc.onlyOpen || got.ChannelMsgID != "id-1" {
				t.Errorf("got type %q text %q onlyOpen %v id %q; want %q %q %v id-1", got.Type, got.Text, got.OnlyOpen, got.ChannelMsgID, tc.typ, tc.text, tc.onlyOpen)
			}
			reads := got.BotText
			if reads == "" {
				reads = got.Text
			}
			if strings.TrimSpace(reads) != tc.botReads {
				t.Errorf("bot reads %q, want %q", reads, tc.botReads)
			}
			if got.Body != nil {
				var obj map[string]any
				if err := json.Unmarshal(got.Body, &obj); err != nil {
					t.Fatalf("body is not a JSON object: %v", err)
				}
				if obj["text"] != tc.text {
					t.Errorf("body text = %v, want %q", obj["text"], tc.text)
				}
			}
			if tc.bodyHas != "" && !strings.Contains(string(got.Body), tc.bodyHas) {
				t.Errorf("body %s lacks %s", got.Body, tc.bodyHas)
			}
		})
	}
}

func TestIncomingClipsLongAndBrokenText(t *testing.T) {
	long := strings.Repeat("长", session.MaxTextLen+50) + "\xff"
	got, keep := Incoming(channels.Inbound{Type: channels.MsgImage, Text: long, Media: &channels.Media{ID: "m"}})
	if !keep {
		t.Fatal("dropped")
	}
	if n := utf8.RuneCountInString(got.Text); n != session.MaxTextLen || !utf8.ValidString(got.Text) {
		t.Errorf("clipped text has %d runes (valid %v), want %d", n, utf8.ValidString(got.Text), session.MaxTextLen)
	}
}
