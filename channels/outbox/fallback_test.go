package outbox_test

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/outbox"
)

func TestFallbackText(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  channels.Outbound
		want string
	}{
		{"text", channels.Outbound{Type: channels.MsgText, Text: " Hello "}, "Hello"},
		{"image with caption", channels.Outbound{Type: channels.MsgImage,
			Media: &channels.Media{URL: "https://x.example/a.jpg", Caption: "Receipt"}}, "Receipt\nhttps://x.example/a.jpg"},
		{"caption repeated as text", channels.Outbound{Type: channels.MsgDocument, Text: "Invoice",
			Media: &channels.Media{URL: "https://x.example/i.pdf", Caption: "Invoice", Filename: "i.pdf"}}, "Invoice\nhttps://x.example/i.pdf"},
		{"media id only", channels.Outbound{Type: channels.MsgAudio, Media: &channels.Media{ID: "123"}}, ""},
		{"interactive", channels.Outbound{Type: channels.MsgInteractive, Text: "Pick one",
			Choices: []channels.Choice{{ID: "a", Title: "Billing"}, {ID: "b", Title: " "}, {ID: "c", Title: "Sales"}}},
			"Pick one\n1. Billing\n3. Sales"},
		{"location", channels.Outbound{Type: channels.MsgLocation, Location: &channels.Location{
			Latitude: 22.543096, Longitude: 114.057865, Name: "Office", Address: "1 Road"}}, "Office\n1 Road\n22.543096,114.057865"},
		{"template with text", channels.Outbound{Type: channels.MsgTemplate, Text: "Your order shipped",
			Template: &channels.Template{Name: "shipped", Language: "en"}}, "Your order shipped"},
		{"template without text", channels.Outbound{Type: channels.MsgTemplate, Template: &channels.Template{Name: "shipped"}}, ""},
		{"empty", channels.Outbound{Type: channels.MsgText}, ""},
	} {
		if got := outbox.FallbackText(tc.out); got != tc.want {
			t.Errorf("%s: FallbackText = %q, want %q", tc.name, got, tc.want)
		}
	}
	long := strings.Repeat("😀", outbox.MaxFallbackLength) // two UTF-16 units each
	got := outbox.FallbackText(channels.Outbound{Type: channels.MsgText, Text: long})
	if n := len(utf16.Encode([]rune(got))); n > outbox.MaxFallbackLength || !strings.HasSuffix(got, "…") {
		t.Errorf("long text: %d units, suffix %q", n, got[len(got)-3:])
	}
}

// FuzzFallbackText feeds Outbound JSON, as the outbox stores it, to the
// SMS rendering: it must not panic, must give valid UTF-8 within the SMS
// bound, and must carry a media URL when there is one.
func FuzzFallbackText(f *testing.F) {
	for _, s := range []string{
		`{"type":"text","text":"hello"}`,
		`{"type":"image","media":{"url":"https://x.example/a.jpg","caption":"c"}}`,
		`{"type":"interactive","text":"pick","choices":[{"id":"1","title":"A"},{"id":"2","title":"B"}]}`,
		`{"type":"location","location":{"latitude":1e308,"longitude":-0,"name":"n"}}`,
		`{"type":"template","template":{"name":"t","language":"en","components":[]}}`,
		`{"type":"video","text":"\u00ff\ud800","media":{"url":" u "}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var out channels.Outbound
		if json.Unmarshal(b, &out) != nil {
			return
		}
		got := outbox.FallbackText(out)
		if !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8: %q", got)
		}
		if n := len(utf16.Encode([]rune(got))); n > outbox.MaxFallbackLength {
			t.Fatalf("%d UTF-16 units, over %d", n, outbox.MaxFallbackLength)
		}
		if got != strings.TrimSpace(got) {
			t.Fatalf("untrimmed: %q", got)
		}
		media := out.Type == channels.MsgImage || out.Type == channels.MsgVideo || out.Type == channels.MsgAudio ||
			out.Type == channels.MsgDocument || out.Type == channels.MsgSticker
		if out.Media == nil || !media || strings.HasSuffix(got, "…") {
			return // no media, or the text was cut
		}
		if u := strings.ToValidUTF8(strings.TrimSpace(out.Media.URL), "\uFFFD"); u != "" && !strings.Contains(got, u) {
			t.Fatalf("media URL %q missing from %q", u, got)
		}
	})
}

// FuzzRateOf feeds account settings, which operators write, to the rate
// parsing: any input gives a usable rate.
func FuzzRateOf(f *testing.F) {
	for _, s := range []string{`{}`, `{"rate_per_sec":80,"burst":10}`, `{"rate_per_sec":1e400}`, `{"rate_per_sec":-5}`,
		`{"burst":-1}`, `[]`, `null`, `{"rate_per_sec":0.0001}`, `{"fallback_account_id":"sms"}`} {
		f.Add([]byte(s), "whatsapp")
	}
	f.Fuzz(func(t *testing.T, settings []byte, typ string) {
		r, _ := outbox.RateOf(channels.Account{ID: "a", Type: channels.Type(typ), Settings: settings})
		if !(r.PerSec >= 0.001 && r.PerSec <= 1e6) || r.Burst < 1 {
			t.Fatalf("RateOf(%q) = %+v", settings, r)
		}
	})
}
