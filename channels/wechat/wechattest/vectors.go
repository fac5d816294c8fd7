package wechattest

import (
	"regexp"
	"strings"
	"testing"

	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// Vector is one official WXBizMsgCrypt test vector as read from the channel
// samples (wechat_encrypted_vector.txt, wechat_reply_encrypted_envelope.txt).
// Every field the vector states is set; the others are empty.
type Vector struct {
	Name           string
	Token          string
	EncodingAESKey string
	ReceiverID     string
	Timestamp      string
	Nonce          string
	// MsgSignature signs (Token, Timestamp, Nonce, Encrypt).
	MsgSignature string
	Encrypt      string
	// Random is the 16-byte prefix the vector was encrypted with, when the
	// vector fixes it (A, E): then encrypting Plain reproduces Encrypt.
	Random string
	// Plain is the exact message inside Encrypt.
	Plain []byte
	// Body is the pushed XML body, when the vector has one (B2, C).
	Body []byte
}

// Vector E's parameters are not in the envelope sample, which only holds
// the reply; they are the ones the official mini-program message-push page
// states for that reply (token "AAAAA", a key of 43 "A", app id
// wx134c8103faa5a59e). The envelope's signature and plaintext check them.
const (
	vectorEToken    = "AAAAA"
	vectorEReceiver = "wx134c8103faa5a59e"
	vectorERandom   = "999951349e8ee746"
	vectorEPlain    = "<xml><demo_resp>[CDATA[good luck]]</demo_resp></xml>"
)

// Vectors parses the official vectors of the channel samples, by name: A1,
// A2 (Official Account, fixed random, no signature in the source), B
// (WeCom URL verification: Encrypt is the echostr), B2 (WeCom POST), C
// (Official Account compatible mode), D (Official Account safe mode), E
// (encrypted passive reply). A vector it cannot read fails the test.
func Vectors(t testing.TB) map[string]Vector {
	t.Helper()
	text := string(testenv.ChannelSample(t, "wechat_encrypted_vector.txt"))
	sections := map[string]string{}
	for _, part := range regexp.MustCompile(`(?m)^# Vector `).Split(text, -1)[1:] {
		name, _, _ := strings.Cut(part, " ")
		sections[name] = part
	}
	need := func(name, section, s string) string {
		if s == "" {
			t.Fatalf("vector %s: %s not found in the sample", section, name)
		}
		return s
	}
	field := func(section, name string) string {
		m := regexp.MustCompile(`(?m)(?:^|[\s?&])` + regexp.QuoteMeta(name) + `\s*=\s*([^\s&]+)`).FindStringSubmatch(sections[section])
		if m == nil {
			return need(name, section, "")
		}
		return m[1]
	}
	// lineField is field for a "name = value" line only, where the name
	// also appears as a query parameter (echostr).
	lineField := func(section, name string) string {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s*=\s*(\S+)`).FindStringSubmatch(sections[section])
		if m == nil {
			return need(name, section, "")
		}
		return m[1]
	}
	// plaintext is the rest of the line "<n>.plaintext_msg (<note>) = ...".
	plaintext := func(section, n string) []byte {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(n) + `\.plaintext_msg \([^)]*\) = (.*)$`).FindStringSubmatch(sections[section])
		if m == nil {
			t.Fatalf("vector %s: no %s.plaintext_msg in the sample", section, n)
		}
		return []byte(m[1])
	}
	afterLine := func(section, prefix string) string {
		lines := strings.Split(sections[section], "\n")
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) && i+1 < len(lines) {
				return lines[i+1]
			}
		}
		return need(prefix, section, "")
	}
	// decrypted is the multi-line XML after the "Decrypted msg" line, up to
	// and including </xml>, joined with "\n" as the vectors say.
	decrypted := func(section string) []byte {
		lines := strings.Split(sections[section], "\n")
		for i, l := range lines {
			if !strings.HasPrefix(l, "Decrypted msg") {
				continue
			}
			var out []string
			for _, x := range lines[i+1:] {
				out = append(out, x)
				if x == "</xml>" {
					return []byte(strings.Join(out, "\n"))
				}
			}
		}
		t.Fatalf("vector %s: no decrypted message in the sample", section)
		return nil
	}
	encryptOf := func(body string) string {
		m := regexp.MustCompile(`<Encrypt><!\[CDATA\[([^\]]*)\]\]></Encrypt>`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no Encrypt element in %q", body)
		}
		return m[1]
	}
	for _, s := range []string{"A", "B", "B2", "C", "D"} {
		if sections[s] == "" {
			t.Fatalf("vector %s missing from wechat_encrypted_vector.txt", s)
		}
	}

	out := map[string]Vector{}
	a := Vector{Token: field("A", "Token"), EncodingAESKey: field("A", "EncodingAESKey"), ReceiverID: field("A", "AppID"),
		Timestamp: field("A", "Timestamp"), Nonce: field("A", "Nonce"), Random: field("A", "Random(16B)")}
	for _, n := range []string{"A1", "A2"} {
		v := a
		v.Name = n
		v.Plain = plaintext("A", n)
		v.Encrypt = field("A", n+".Encrypt")
		out[n] = v
	}

	b := Vector{Name: "B", Token: field("B", "Token"), EncodingAESKey: field("B", "EncodingAESKey"), ReceiverID: field("B", "ReceiveID"),
		MsgSignature: field("B", "msg_signature"), Timestamp: field("B", "timestamp"), Nonce: field("B", "nonce"),
		Encrypt: lineField("B", "echostr"), Plain: []byte(field("B", "expected response body (decrypted echostr)"))}
	out["B"] = b

	b2body := afterLine("B2", "Body:")
	out["B2"] = Vector{Name: "B2", Token: field("B2", "Token"), EncodingAESKey: field("B2", "EncodingAESKey"), ReceiverID: field("B2", "ReceiveID"),
		MsgSignature: field("B2", "msg_signature"), Timestamp: field("B2", "timestamp"), Nonce: field("B2", "nonce"),
		Encrypt: encryptOf(b2body), Body: []byte(b2body), Plain: decrypted("B2")}

	cbody := afterLine("C", "Body:")
	out["C"] = Vector{Name: "C", Token: field("C", "Token"), EncodingAESKey: field("C", "EncodingAESKey"), ReceiverID: field("C", "AppID"),
		MsgSignature: field("C", "msg_signature"), Timestamp: field("C", "timestamp"), Nonce: field("C", "nonce"),
		Encrypt: encryptOf(cbody), Body: []byte(cbody), Plain: decrypted("C")}

	out["D"] = Vector{Name: "D", Token: field("D", "Token"), EncodingAESKey: field("D", "EncodingAESKey"), ReceiverID: field("D", "AppID"),
		MsgSignature: field("D", "msg_signature"), Timestamp: field("D", "timestamp"), Nonce: field("D", "nonce"),
		Encrypt: field("D", "Encrypt"), Plain: decrypted("D")}

	env := string(testenv.ChannelSample(t, "wechat_reply_encrypted_envelope.txt"))
	elem := func(name string) string {
		m := regexp.MustCompile(`<` + name + `>(?:<!\[CDATA\[)?([^<\]]*)(?:\]\]>)?</` + name + `>`).FindStringSubmatch(env)
		if m == nil {
			t.Fatalf("vector E: no %s in wechat_reply_encrypted_envelope.txt", name)
		}
		return m[1]
	}
	out["E"] = Vector{Name: "E", Token: vectorEToken, EncodingAESKey: strings.Repeat("A", 43), ReceiverID: vectorEReceiver,
		Timestamp: elem("TimeStamp"), Nonce: elem("Nonce"), MsgSignature: elem("MsgSignature"), Encrypt: elem("Encrypt"),
		Random: vectorERandom, Plain: []byte(vectorEPlain)}
	return out
}
