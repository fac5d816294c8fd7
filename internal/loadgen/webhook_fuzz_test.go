package loadgen

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// FuzzParseGraphSend feeds the fake Graph API's request parser what a
// server could send it, seeded with the real send-request samples.
func FuzzParseGraphSend(f *testing.F) {
	for _, name := range []string{
		"whatsapp_send_text_request.json", "whatsapp_send_interactive_buttons_request.json",
		"whatsapp_send_template_request.json", "whatsapp_mark_read_request.json", "whatsapp_send_response.json",
	} {
		f.Add(testenv.ChannelSample(f, name))
	}
	f.Add([]byte(`{"messaging_product":"whatsapp","status":"read"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := parseGraphSend(body)
		if err != nil {
			return
		}
		// What it accepts is a WhatsApp message with a recipient and a
		// type, or a read receipt naming a message.
		if s.MessagingProduct != "whatsapp" {
			t.Fatalf("accepted product %q", s.MessagingProduct)
		}
		if s.Status == "" && (s.To == "" || s.Type == "") {
			t.Fatalf("accepted a message without to or type: %s", body)
		}
		if s.Status != "" && (s.Status != "read" || s.MessageID == "") {
			t.Fatalf("accepted status %q without a message id", s.Status)
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON: %q", body)
		}
	})
}

// FuzzParseMetricKey feeds the label parser sample names; a name it
// accepts must come back the same when printed again.
func FuzzParseMetricKey(f *testing.F) {
	for _, s := range []string{
		`switchboard_inbound_messages_total{channel="whatsapp",outcome="stored"}`,
		`switchboard_outbox_pending{account="0193",tenant="demo"}`,
		`m{a="x,y=\"z\"",b="\\n\n"}`, `up`, `m{}`, `m{a="`,
		"0{ =\"\"}", // once accepted with an empty label name
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		name, labels, ok := parseMetricKey(key)
		if !ok {
			return
		}
		if name == "" || strings.ContainsAny(name, "{") {
			t.Fatalf("name %q from %q", name, key)
		}
		if labels == nil {
			if name != key {
				t.Fatalf("no labels but name %q from %q", name, key)
			}
			return
		}
		// Reprint canonically and parse again: the same labels.
		var b strings.Builder
		b.WriteString(name + "{")
		first := true
		for k, v := range labels {
			if !first {
				b.WriteByte(',')
			}
			first = false
			v = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
			b.WriteString(k + `="` + v + `"`)
		}
		b.WriteByte('}')
		name2, labels2, ok := parseMetricKey(b.String())
		if !ok || name2 != name || len(labels2) != len(labels) {
			t.Fatalf("reprinted %q: %q %v %v, from %q", b.String(), name2, labels2, ok, key)
		}
		for k, v := range labels {
			if labels2[k] != v {
				t.Fatalf("label %q: %q then %q", k, v, labels2[k])
			}
		}
	})
}

// FuzzProcParsers feeds the /proc readers arbitrary contents, seeded with
// this machine's own files where readable.
func FuzzProcParsers(f *testing.F) {
	for _, p := range []string{"/proc/self/stat", "/proc/net/tcp", "/proc/net/tcp6"} {
		if b, err := os.ReadFile(filepath.Clean(p)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("1 (a) b) S 1 1 1 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 1 1 1"))
	// Once overflowed the CPU time into a negative Duration.
	f.Add([]byte("()00000 0000000 000 0 00 0000000 0000 0 0 0 0 1000000000000 00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, cpu, ok := parseProcStat(b); ok && cpu < 0 {
			t.Fatalf("negative CPU %v", cpu)
		}
		for _, ino := range listeningInodes(b, 8080) {
			if ino == "" || ino == "0" {
				t.Fatalf("inode %q", ino)
			}
		}
	})
}
