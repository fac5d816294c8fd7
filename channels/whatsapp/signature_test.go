package whatsapp_test

import (
	"bufio"
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/switchboard-acd/switchboard/channels/whatsapp"
	"github.com/switchboard-acd/switchboard/channels/whatsapp/whatsapptest"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// vector is one HMAC test vector: the header for payload under secret.
type vector struct {
	name    string
	secret  string
	payload []byte
	hex     string
}

// signatureVectors reads samples/whatsapp_signature_vectors.txt: the
// public vector, the vectors over sample files, the inline payload and
// the courier vectors.
func signatureVectors(t *testing.T) []vector {
	t.Helper()
	var (
		out     []vector
		secret  string
		payload []byte
		file    string
	)
	reFile := regexp.MustCompile(`^file=(\S+) bytes=(\d+)`)
	reHeader := regexp.MustCompile(`X-Hub-Signature-256: sha256=([0-9a-f]{64})`)
	reCourier := regexp.MustCompile(`^body "([^"]*)"\s*->\s*([0-9a-f]{64})`)
	sc := bufio.NewScanner(bytes.NewReader(testenv.ChannelSample(t, "whatsapp_signature_vectors.txt")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		key, val, _ := strings.Cut(line, "=")
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch {
		case strings.HasPrefix(line, "secret"):
			secret = val
		case key == "payload":
			payload, file = []byte(val), ""
		case key == "hex":
			out = append(out, vector{name: "public " + string(payload), secret: secret, payload: payload, hex: val})
		case reFile.MatchString(line):
			file = reFile.FindStringSubmatch(line)[1]
			payload = testenv.ChannelSample(t, file)
		case strings.HasPrefix(line, "inline payload (no trailing newline): "):
			payload, file = []byte(strings.TrimPrefix(line, "inline payload (no trailing newline): ")), "inline"
		case reHeader.MatchString(line) && payload != nil && strings.HasPrefix(line, "X-Hub"):
			name := file
			if name == "" {
				name = "inline"
			}
			out = append(out, vector{name: name, secret: secret, payload: payload, hex: reHeader.FindStringSubmatch(line)[1]})
		case reCourier.MatchString(line):
			m := reCourier.FindStringSubmatch(line)
			out = append(out, vector{name: "courier " + m[1], secret: secret, payload: []byte(m[1]), hex: m[2]})
		}
	}
	return out
}

func TestSignatureVectors(t *testing.T) {
	vs := signatureVectors(t)
	// The public vector from the notes, whatever the file holds.
	vs = append(vs, vector{name: "notes public", secret: "secret", payload: []byte("test"),
		hex: "0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914"})
	if len(vs) < 8 {
		t.Fatalf("read %d vectors from the vectors file, want at least 8 (format changed?)", len(vs))
	}
	for _, v := range vs {
		t.Run(v.name, func(t *testing.T) {
			header := "sha256=" + v.hex
			if got := whatsapp.Sign(v.secret, v.payload); got != header {
				t.Errorf("Sign = %s, want %s", got, header)
			}
			if got := whatsapptest.Sign(v.secret, v.payload); got != header {
				t.Errorf("whatsapptest.Sign = %s, want %s", got, header)
			}
			if err := whatsapp.VerifySignature(v.secret, v.payload, header); err != nil {
				t.Errorf("VerifySignature: %v", err)
			}
			if err := whatsapp.VerifySignature(v.secret, v.payload, "sha256="+strings.ToUpper(v.hex)); err != nil {
				t.Errorf("VerifySignature with upper-case hex: %v", err)
			}
			if err := whatsapp.VerifySignature(v.secret+"x", v.payload, header); !errs.Is(err, errs.Unauthorized) {
				t.Errorf("wrong secret: %v, want unauthorized", err)
			}
			if err := whatsapp.VerifySignature(v.secret, append(append([]byte(nil), v.payload...), ' '), header); !errs.Is(err, errs.Unauthorized) {
				t.Errorf("one more byte: %v, want unauthorized", err)
			}
		})
	}
}

func TestVerifySignatureRefusals(t *testing.T) {
	body := []byte("test")
	good := whatsapp.Sign("secret", body)
	for name, h := range map[string]string{
		"empty":     "",
		"no prefix": strings.TrimPrefix(good, "sha256="),
		"spaces":    " " + good,
		"long":      good + "00",
		"odd":       good[:len(good)-1],
	} {
		if err := whatsapp.VerifySignature("secret", body, h); !errs.Is(err, errs.Unauthorized) {
			t.Errorf("%s: %v, want unauthorized", name, err)
		}
	}
	if err := whatsapp.VerifySignature("", body, whatsapp.Sign("", body)); !errs.Is(err, errs.Unauthorized) {
		t.Errorf("empty app secret: %v, want unauthorized (an unset secret must not accept anything)", err)
	}
}
