package whatsapptest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/whatsapp"
	"github.com/switchboard-acd/switchboard/channels/whatsapp/whatsapptest"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

type graphResponse struct {
	status int
	header http.Header
	Error  *struct {
		Code    int    `json:"code"`
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
	Contacts []struct {
		Input string `json:"input"`
		WAID  string `json:"wa_id"`
	} `json:"contacts"`
	Messages []struct {
		ID string `json:"id"`
	} `json:"messages"`
	Success bool `json:"success"`
}

// do sends a raw request to the fake.
func do(t *testing.T, srv *whatsapptest.Server, method, path, token, ctype, body string) graphResponse {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var g graphResponse
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("answer is not JSON: %s", b)
	}
	g.status, g.header = resp.StatusCode, resp.Header
	return g
}

const msgPath = "/" + whatsapptest.APIVersion + "/" + whatsapptest.PhoneNumberID + "/messages"

func TestFakeAcceptsTheDocumentedRequests(t *testing.T) {
	srv := whatsapptest.New(t)
	for _, file := range []string{"whatsapp_send_text_request.json", "whatsapp_send_template_request.json", "whatsapp_send_interactive_buttons_request.json"} {
		// The documentation's placeholder recipient is no number.
		body := strings.Replace(string(testenv.ChannelSample(t, file)), "<WHATSAPP_USER_PHONE_NUMBER>", "16505551234", 1)
		g := do(t, srv, http.MethodPost, msgPath, whatsapptest.AccessToken, "application/json", body)
		if g.status != http.StatusOK || len(g.Messages) != 1 || !strings.HasPrefix(g.Messages[0].ID, "wamid.") {
			t.Fatalf("%s: %d %+v; rejected: %q", file, g.status, g, srv.Rejected())
		}
	}
	g := do(t, srv, http.MethodPost, msgPath, whatsapptest.AccessToken, "application/json", string(testenv.ChannelSample(t, "whatsapp_mark_read_request.json")))
	if g.status != http.StatusOK || !g.Success {
		t.Fatalf("mark read: %d %+v", g.status, g)
	}
	sent := srv.Sent()
	if len(sent) != 3 || sent[0].To != "+16505555555" || sent[0].Type != "text" || sent[1].Type != "template" || sent[2].Text != "<BODY_TEXT>" {
		t.Fatalf("recorded %+v", sent)
	}
	if reads := srv.Reads(); len(reads) != 1 || reads[0] != "wamid.xyzxyz" {
		t.Fatalf("reads %q", reads)
	}
	if srv.Requests() != 4 {
		t.Errorf("Requests() = %d, want 4", srv.Requests())
	}
}

func TestFakeRefusesLikeGraph(t *testing.T) {
	srv := whatsapptest.New(t)
	text := `{"messaging_product":"whatsapp","to":"1","type":"text","text":{"body":"x"}}`
	tests := []struct {
		name, method, path, token, ctype, body string
		status, code                           int
	}{
		{"no token", "POST", msgPath, "", "application/json", text, 401, 190},
		{"wrong token", "POST", msgPath, "nope", "application/json", text, 401, 190},
		{"other number", "POST", "/" + whatsapptest.APIVersion + "/42/messages", whatsapptest.AccessToken, "application/json", text, 400, 100},
		{"other version", "POST", "/v1.0/" + whatsapptest.PhoneNumberID + "/messages", whatsapptest.AccessToken, "application/json", text, 400, 100},
		{"form body", "POST", msgPath, whatsapptest.AccessToken, "application/x-www-form-urlencoded", text, 400, 100},
		{"not json", "POST", msgPath, whatsapptest.AccessToken, "application/json", `{`, 400, 100},
		{"no product", "POST", msgPath, whatsapptest.AccessToken, "application/json", `{"to":"1","type":"text","text":{"body":"x"}}`, 400, 100},
		{"no recipient", "POST", msgPath, whatsapptest.AccessToken, "application/json", `{"messaging_product":"whatsapp","type":"text","text":{"body":"x"}}`, 400, 100},
		{"empty text", "POST", msgPath, whatsapptest.AccessToken, "application/json", `{"messaging_product":"whatsapp","to":"1","type":"text","text":{"body":""}}`, 400, 100},
		{"id and link", "POST", msgPath, whatsapptest.AccessToken, "application/json", `{"messaging_product":"whatsapp","to":"1","type":"image","image":{"id":"1","link":"https://x"}}`, 400, 100},
		{"audio caption", "POST", msgPath, whatsapptest.AccessToken, "application/json", `{"messaging_product":"whatsapp","to":"1","type":"audio","audio":{"id":"1","caption":"c"}}`, 400, 100},
		{"four buttons", "POST", msgPath, whatsapptest.AccessToken, "application/json", `{"messaging_product":"whatsapp","to":"1","type":"interactive","interactive":{"type":"button","body":{"text":"b"},"action":{"buttons":[` +
			strings.Repeat(`{"type":"reply","reply":{"id":"a","title":"a"}},`, 3) + `{"type":"reply","reply":{"id":"d","title":"d"}}]}}}`, 400, 100},
		{"long button title", "POST", msgPath, whatsapptest.AccessToken, "application/json", `{"messaging_product":"whatsapp","to":"1","type":"interactive","interactive":{"type":"button","body":{"text":"b"},"action":{"buttons":[{"type":"reply","reply":{"id":"a","title":"twenty-one characters"}}]}}}`, 400, 100},
		{"list without label", "POST", msgPath, whatsapptest.AccessToken, "application/json", `{"messaging_product":"whatsapp","to":"1","type":"interactive","interactive":{"type":"list","body":{"text":"b"},"action":{"sections":[{"rows":[{"id":"a","title":"a"}]}]}}}`, 400, 100},
		{"template without language", "POST", msgPath, whatsapptest.AccessToken, "application/json", `{"messaging_product":"whatsapp","to":"1","type":"template","template":{"name":"t"}}`, 400, 100},
		{"location without longitude", "POST", msgPath, whatsapptest.AccessToken, "application/json", `{"messaging_product":"whatsapp","to":"1","type":"location","location":{"latitude":1}}`, 400, 100},
		{"bad mark read", "POST", msgPath, whatsapptest.AccessToken, "application/json", `{"messaging_product":"whatsapp","status":"delivered","message_id":"w"}`, 400, 100},
		{"unknown media", "GET", "/" + whatsapptest.APIVersion + "/777", whatsapptest.AccessToken, "", "", 400, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := do(t, srv, tc.method, tc.path, tc.token, tc.ctype, tc.body)
			if g.status != tc.status || g.Error == nil || g.Error.Code != tc.code || g.Error.Message == "" {
				t.Fatalf("got %d %+v, want %d with Graph error code %d", g.status, g.Error, tc.status, tc.code)
			}
		})
	}
	if n := len(srv.Sent()); n != 0 {
		t.Errorf("fake accepted %d invalid requests", n)
	}
	if n := len(srv.Rejected()); n != len(tests) {
		t.Errorf("Rejected() has %d reasons, want %d", n, len(tests))
	}
}

func TestFakeFaultsAndLatency(t *testing.T) {
	srv := whatsapptest.New(t)
	text := `{"messaging_product":"whatsapp","to":"16505551234","type":"text","text":{"body":"x"}}`
	srv.Fail(whatsapptest.Fault{Status: 429, Body: whatsapptest.ThroughputError(), Header: http.Header{"Retry-After": {"3"}}, Times: 2})
	for i := 0; i < 2; i++ {
		g := do(t, srv, "POST", msgPath, whatsapptest.AccessToken, "application/json", text)
		if g.status != 429 || g.Error == nil || g.Error.Code != 130429 || g.header.Get("Retry-After") != "3" {
			t.Fatalf("fault %d: %d %+v %v", i, g.status, g.Error, g.header)
		}
	}
	if g := do(t, srv, "POST", msgPath, whatsapptest.AccessToken, "application/json", text); g.status != 200 {
		t.Fatalf("after the faults: %d %+v", g.status, g.Error)
	}
	srv.Fail(whatsapptest.Fault{Status: 500, Times: -1})
	for i := 0; i < 3; i++ {
		if g := do(t, srv, "POST", msgPath, whatsapptest.AccessToken, "application/json", text); g.status != 500 || g.Error == nil {
			t.Fatalf("permanent fault %d: %d", i, g.status)
		}
	}
	srv.ClearFaults()
	srv.SetLatency(150 * time.Millisecond)
	start := time.Now()
	if g := do(t, srv, "POST", msgPath, whatsapptest.AccessToken, "application/json", text); g.status != 200 {
		t.Fatalf("slow send: %d", g.status)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("answered in %v, latency 150ms", d)
	}
}

func TestFakeConcurrentSends(t *testing.T) {
	srv := whatsapptest.New(t)
	a := whatsapp.New(whatsapp.Options{HTTPClient: srv.Client()})
	acct := srv.Account("t1", "a")
	srv.FailNext(5, 429, whatsapptest.PairRateError())
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed, ids := 0, map[string]bool{}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				res, err := a.Send(context.Background(), acct, channels.Outbound{ExternalID: "16505551234", Type: channels.MsgText, Text: "x"})
				mu.Lock()
				if err != nil {
					failed++
				} else {
					ids[res.ChannelMsgID] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if failed != 5 || len(ids) != 75 || len(srv.Sent()) != 75 {
		t.Fatalf("failed %d, %d ids, %d recorded; want 5, 75, 75", failed, len(ids), len(srv.Sent()))
	}
}

func TestWebhookHelpers(t *testing.T) {
	body := whatsapptest.TextNotification(whatsapptest.PhoneNumberID, whatsapptest.Text{From: "1", Body: "hi", At: time.Unix(1700000000, 0)})
	req := whatsapptest.WebhookRequest("s3cret", body)
	if err := whatsapp.VerifySignature("s3cret", req.Body, req.Header.Get(whatsapptest.SignatureHeader)); err != nil {
		t.Fatalf("helper signature refused by the adapter: %v", err)
	}

	// NewWebhookPost reaches a real HTTP endpoint with the signature.
	var got []byte
	var sig string
	ep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		sig = r.Header.Get(whatsapptest.SignatureHeader)
	}))
	defer ep.Close()
	hreq, err := whatsapptest.NewWebhookPost(context.Background(), ep.URL+"/webhooks/whatsapp/key", "s3cret", body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ep.Client().Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !bytes.Equal(got, body) || whatsapp.VerifySignature("s3cret", got, sig) != nil {
		t.Fatalf("posted %q with %q", got, sig)
	}

	// The handshake helper is answered by the adapter.
	srv := whatsapptest.New(t)
	res, err := whatsapp.New(whatsapp.Options{}).Webhook(context.Background(), srv.Account("t", "a"), whatsapptest.HandshakeRequest(srv.VerifyToken(), "12345"))
	if err != nil || string(res.Reply.Body) != "12345" {
		t.Fatalf("handshake: %v %q", err, res.Reply.Body)
	}
}
