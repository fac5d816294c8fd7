package whatsapp_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/whatsapp"
	"github.com/switchboard-acd/switchboard/channels/whatsapp/whatsapptest"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

func TestMediaFromFake(t *testing.T) {
	srv := whatsapptest.New(t)
	data := bytes.Repeat([]byte("jpegdata"), 1000)
	srv.AddMedia("4242", "image/jpeg", data)
	acct := srv.Account("t1", "a")

	rc, mime, err := fakeAdapter(srv).Media(context.Background(), acct, "4242")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) || mime != "image/jpeg" {
		t.Fatalf("got %d bytes, %q, %v; want %d bytes image/jpeg", len(got), mime, err, len(data))
	}

	// The announced size is over the limit: refused before downloading.
	small := whatsapp.New(whatsapp.Options{HTTPClient: srv.Client(), MaxMediaBytes: 1000})
	if _, _, err := small.Media(context.Background(), acct, "4242"); !errs.Is(err, errs.TooLarge) {
		t.Fatalf("over the limit: %v, want too_large", err)
	}
	if _, _, err := fakeAdapter(srv).Media(context.Background(), acct, "999"); !errs.Is(err, errs.NotFound) {
		t.Fatalf("unknown id: %v, want not_found", err)
	}
	if _, _, err := fakeAdapter(srv).Media(context.Background(), acct, "../me"); !errs.Is(err, errs.Invalid) {
		t.Fatalf("path in id: %v, want invalid", err)
	}
	srv.SetAccessToken("rotated")
	_, _, err = fakeAdapter(srv).Media(context.Background(), acct, "4242")
	var se *channels.SendError
	if !errs.Is(err, errs.Unauthorized) || !errors.As(err, &se) || !se.Auth {
		t.Fatalf("refused token: %v, want unauthorized with an Auth SendError inside", err)
	}
}

// graphTransport answers Graph API and lookaside requests in-process, so
// that the real sample (with Meta's URLs) can be served as is.
type graphTransport struct {
	mu      sync.Mutex
	handler func(r *http.Request) *http.Response
	hosts   []string // guarded by mu
	auths   []string // guarded by mu
}

func (g *graphTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	g.mu.Lock()
	g.hosts = append(g.hosts, r.URL.Host)
	g.auths = append(g.auths, r.Header.Get("Authorization"))
	g.mu.Unlock()
	resp := g.handler(r)
	resp.Request = r
	return resp, nil
}

func response(status int, ctype string, body io.Reader, length int64) *http.Response {
	return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {ctype}},
		Body: io.NopCloser(body), ContentLength: length, ProtoMajor: 1, ProtoMinor: 1}
}

func TestMediaSampleFlow(t *testing.T) {
	info := testenv.ChannelSample(t, "whatsapp_media_url_response.json")
	file := bytes.Repeat([]byte{0xff}, 61901) // file_size of the sample
	tr := &graphTransport{handler: func(r *http.Request) *http.Response {
		switch {
		case r.URL.Host == "graph.facebook.com" && r.URL.Path == "/v21.0/137524587935346":
			return response(200, "application/json", bytes.NewReader(info), int64(len(info)))
		case r.URL.Host == "lookaside.fbsbx.com" && r.URL.Query().Get("mid") == "645645":
			return response(200, "image/jpeg", bytes.NewReader(file), int64(len(file)))
		}
		return response(404, "text/plain", strings.NewReader("no"), 2)
	}}
	a := whatsapp.New(whatsapp.Options{HTTPClient: &http.Client{Transport: tr}})
	acct := sampleAccount(t)
	rc, mime, err := a.Media(context.Background(), acct, "137524587935346")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || len(got) != len(file) || mime != "image/jpeg" {
		t.Fatalf("got %d bytes %q %v", len(got), mime, err)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if strings.Join(tr.hosts, ",") != "graph.facebook.com,lookaside.fbsbx.com" {
		t.Errorf("hosts %v", tr.hosts)
	}
	for i, h := range tr.auths {
		if h != "Bearer EAAsample" {
			t.Errorf("request %d Authorization %q, want the bearer token on both steps", i, h)
		}
	}
}

func TestMediaDownloadGuards(t *testing.T) {
	data := []byte("0123456789")
	sum := sha256.Sum256(data)
	tests := []struct {
		name     string
		infoJSON string
		body     []byte
		length   int64 // Content-Length of the download, -1 unknown
		status   int
		code     errs.Code // from Media
		readCode errs.Code // from reading the body
		noFetch  bool      // the download must not even be requested
	}{
		{name: "checksum ok", infoJSON: `{"url":"https://lookaside.fbsbx.com/x","mime_type":"text/plain","sha256":"` + hex.EncodeToString(sum[:]) + `","file_size":10}`,
			body: data, length: 10},
		{name: "checksum mismatch", infoJSON: `{"url":"https://lookaside.fbsbx.com/x","sha256":"` + strings.Repeat("00", 32) + `"}`,
			body: data, length: 10, readCode: errs.Invalid},
		{name: "size lies", infoJSON: `{"url":"https://lookaside.fbsbx.com/x","file_size":5}`,
			body: bytes.Repeat([]byte("a"), 200), length: -1, readCode: errs.TooLarge},
		{name: "content length over", infoJSON: `{"url":"https://lookaside.fbsbx.com/x"}`,
			body: bytes.Repeat([]byte("a"), 200), length: 200, code: errs.TooLarge},
		{name: "plain http elsewhere", infoJSON: `{"url":"http://evil.example/x"}`, code: errs.Unavailable, noFetch: true},
		{name: "no url", infoJSON: `{"id":"1"}`, code: errs.Unavailable, noFetch: true},
		{name: "download fails", infoJSON: `{"url":"https://lookaside.fbsbx.com/x"}`, body: []byte("oops"), length: 4, status: 503, code: errs.Unavailable},
		{name: "download expired", infoJSON: `{"url":"https://lookaside.fbsbx.com/x"}`, body: []byte(`{"error":{"code":100,"message":"expired"}}`), length: -1, status: 404, code: errs.NotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := &graphTransport{handler: func(r *http.Request) *http.Response {
				if r.URL.Host == "graph.facebook.com" {
					return response(200, "application/json", strings.NewReader(tc.infoJSON), -1)
				}
				status := tc.status
				if status == 0 {
					status = 200
				}
				return response(status, "application/octet-stream", bytes.NewReader(tc.body), tc.length)
			}}
			a := whatsapp.New(whatsapp.Options{HTTPClient: &http.Client{Transport: tr}, MaxMediaBytes: 100})
			rc, _, err := a.Media(context.Background(), sampleAccount(t), "1")
			if tc.code != "" {
				if !errs.Is(err, tc.code) {
					t.Fatalf("Media: %v, want %s", err, tc.code)
				}
			} else {
				if err != nil {
					t.Fatalf("Media: %v", err)
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if tc.readCode != "" {
					if !errs.Is(err, tc.readCode) {
						t.Fatalf("read: %v, want %s", err, tc.readCode)
					}
				} else if err != nil || !bytes.Equal(got, tc.body) {
					t.Fatalf("read %q, %v", got, err)
				}
			}
			tr.mu.Lock()
			defer tr.mu.Unlock()
			if tc.noFetch && len(tr.hosts) != 1 {
				t.Errorf("requests went to %v; the token must not leave for the download", tr.hosts)
			}
		})
	}
}
