package outbox

import (
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/switchboard-acd/switchboard/channels"
)

// ReasonFellBack starts the LastError of a row given up in favour of an SMS
// fallback row; the provider's own reason follows it.
const ReasonFellBack = "fell back to sms"

// MaxFallbackLength bounds a fallback text, in UTF-16 code units as SMS
// providers count: the longest body of a concatenated SMS that the common
// APIs accept (Twilio: 1600). A longer text is cut and ends with "…", so
// that the customer gets most of it rather than nothing.
const MaxFallbackLength = 1600

// FallbackText renders out as the plain text an SMS fallback carries, or ""
// when nothing in it can be said in text (then there is no fallback):
//   - text as is;
//   - media as its text or caption followed by its public URL (a provider
//     media id means nothing to the customer and is left out);
//   - interactive as the text followed by numbered choices ("1. Title"),
//     which the customer answers with the digit;
//   - a location as its name, address, coordinates and URL;
//   - a template as the Text the sender gave it (its parameters live in
//     provider JSON that has no plain-text form).
func FallbackText(out channels.Outbound) string {
	var parts []string
	add := func(s string) {
		if s = strings.TrimSpace(s); s != "" {
			parts = append(parts, s)
		}
	}
	add(out.Text)
	switch out.Type {
	case channels.MsgImage, channels.MsgAudio, channels.MsgVideo, channels.MsgDocument, channels.MsgSticker:
		if m := out.Media; m != nil {
			if strings.TrimSpace(m.Caption) != strings.TrimSpace(out.Text) {
				add(m.Caption)
			}
			add(m.URL)
		}
	case channels.MsgInteractive:
		for i, c := range out.Choices {
			if t := strings.TrimSpace(c.Title); t != "" {
				add(strconv.Itoa(i+1) + ". " + t)
			}
		}
	case channels.MsgLocation:
		if l := out.Location; l != nil {
			add(l.Name)
			add(l.Address)
			add(strconv.FormatFloat(l.Latitude, 'f', -1, 64) + "," + strconv.FormatFloat(l.Longitude, 'f', -1, 64))
			add(l.URL)
		}
	}
	return clipUTF16(strings.ToValidUTF8(strings.Join(parts, "\n"), "\uFFFD"), MaxFallbackLength)
}

// clipUTF16 cuts s to at most n UTF-16 code units, ending with "…" when cut.
func clipUTF16(s string, n int) string {
	units := 0
	for _, r := range s {
		units += utf16.RuneLen(r)
	}
	if units <= n {
		return s
	}
	units = 0
	for i, r := range s {
		if units+utf16.RuneLen(r) > n-1 { // room for "…" (one unit)
			return s[:i] + "…"
		}
		units += utf16.RuneLen(r)
	}
	return s
}
