package whatsapp_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/whatsapp"
	"github.com/switchboard-acd/switchboard/channels/whatsapp/whatsapptest"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// jsonValue decodes JSON for a structural comparison.
func jsonValue(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return v
}

func TestBuildMessageMatchesSamples(t *testing.T) {
	tests := []struct {
		file string
		out  channels.Outbound
	}{
		{"whatsapp_send_text_request.json", channels.Outbound{ExternalID: "+16505555555", Type: channels.MsgText,
			Text: "Here's the info you requested! https://www.meta.com/quest/quest-3/"}},
		{"whatsapp_send_template_request.json", channels.Outbound{ExternalID: "12345678901", Type: channels.MsgTemplate,
			Template: &channels.Template{Name: "Subscribe", Language: "en_US",
				Components: json.RawMessage(`[{"type":"body","parameters":[{"type":"text","text":"newsletter"}]}]`)}}},
		{"whatsapp_send_interactive_buttons_request.json", channels.Outbound{ExternalID: "<WHATSAPP_USER_PHONE_NUMBER>",
			Type: channels.MsgInteractive, Text: "<BODY_TEXT>",
			Choices: []channels.Choice{{ID: "<BUTTON_ID>", Title: "<BUTTON_LABEL_TEXT>"}},
			Raw:     json.RawMessage(`{"footer":"<FOOTER_TEXT>"}`)}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			got, err := whatsapp.BuildMessage(tc.out)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(jsonValue(t, testenv.ChannelSample(t, tc.file)), jsonValue(t, got)); diff != "" {
				t.Errorf("request (-sample +built):\n%s", diff)
			}
		})
	}
}

func TestBuildMessageShapes(t *testing.T) {
	choices := func(n int) []channels.Choice {
		cs := make([]channels.Choice, n)
		for i := range cs {
			cs[i] = channels.Choice{ID: "opt" + strconv.Itoa(i+1), Title: "Option " + strconv.Itoa(i+1), Description: "row " + strconv.Itoa(i+1)}
		}
		return cs
	}
	long := strings.Repeat("é", 80)
	tests := []struct {
		name string
		out  channels.Outbound
		want string
	}{
		{"plain text, no preview", channels.Outbound{Type: channels.MsgText, Text: "hello"},
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"1","type":"text","text":{"body":"hello"}}`},
		{"preview forced off", channels.Outbound{Type: channels.MsgText, Text: "see HTTPS://x.y", Raw: json.RawMessage(`{"preview_url":false}`)},
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"1","type":"text","text":{"body":"see HTTPS://x.y"}}`},
		{"reply context", channels.Outbound{Type: channels.MsgText, Text: "yes", ReplyTo: "wamid.abc"},
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"1","type":"text","context":{"message_id":"wamid.abc"},"text":{"body":"yes"}}`},
		{"image by link, text as caption", channels.Outbound{Type: channels.MsgImage, Text: "our menu", Media: &channels.Media{URL: "https://cdn.example/menu.jpg"}},
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"1","type":"image","image":{"link":"https://cdn.example/menu.jpg","caption":"our menu"}}`},
		{"document by id", channels.Outbound{Type: channels.MsgDocument, Media: &channels.Media{ID: "1013859600285441", Filename: "invoice.pdf", Caption: "invoice"}},
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"1","type":"document","document":{"id":"1013859600285441","caption":"invoice","filename":"invoice.pdf"}}`},
		{"audio", channels.Outbound{Type: channels.MsgAudio, Media: &channels.Media{ID: "55", Filename: "ignored.ogg"}},
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"1","type":"audio","audio":{"id":"55"}}`},
		{"video", channels.Outbound{Type: channels.MsgVideo, Media: &channels.Media{URL: "http://cdn.example/v.mp4", Caption: "clip"}},
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"1","type":"video","video":{"link":"http://cdn.example/v.mp4","caption":"clip"}}`},
		{"sticker", channels.Outbound{Type: channels.MsgSticker, Media: &channels.Media{ID: "77"}},
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"1","type":"sticker","sticker":{"id":"77"}}`},
		{"location", channels.Outbound{Type: channels.MsgLocation, Location: &channels.Location{Latitude: 37.4611978, Longitude: -122.2164385, Name: "HQ", Address: "1 Hacker Way"}},
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"1","type":"location","location":{"latitude":37.4611978,"longitude":-122.2164385,"name":"HQ","address":"1 Hacker Way"}}`},
		{"template without components", channels.Outbound{Type: channels.MsgTemplate, Template: &channels.Template{Name: "hello_world", Language: "en_US"}},
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"1","type":"template","template":{"name":"hello_world","language":{"policy":"deterministic","code":"en_US"}}}`},
		{"three buttons, titles and ids shortened", channels.Outbound{Type: channels.MsgInteractive, Text: "Pick one",
			Choices: []channels.Choice{{ID: "a", Title: "A title that is far too long"}, {Title: "No id"}, {ID: strings.Repeat("x", 256), Title: long}}},
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"1","type":"interactive","interactive":{"type":"button","body":{"text":"Pick one"},"action":{"buttons":[` +
				`{"type":"reply","reply":{"id":"a","title":"A title that is far…"}},` +
				`{"type":"reply","reply":{"id":"No id","title":"No id"}},` +
				`{"type":"reply","reply":{"id":"` + strings.Repeat("x", 256) + `","title":"` + strings.Repeat("é", 19) + `…"}}]}}}`},
		{"four choices become a list", channels.Outbound{Type: channels.MsgInteractive, Text: "Menu", Choices: choices(4),
			Raw: json.RawMessage(`{"list_button":"See the options please","header":"Welcome"}`)},
			`{"messaging_product":"whatsapp","recipient_type":"individual","to":"1","type":"interactive","interactive":{"type":"list","header":{"type":"text","text":"Welcome"},"body":{"text":"Menu"},"action":{"button":"See the options ple…","sections":[{"rows":[` +
				`{"id":"opt1","title":"Option 1","description":"row 1"},{"id":"opt2","title":"Option 2","description":"row 2"},` +
				`{"id":"opt3","title":"Option 3","description":"row 3"},{"id":"opt4","title":"Option 4","description":"row 4"}]}]}}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.out.ExternalID = "1"
			got, err := whatsapp.BuildMessage(tc.out)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(jsonValue(t, []byte(tc.want)), jsonValue(t, got)); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}

	// A ten-row list: row titles, descriptions and the default label fit.
	cs := choices(10)
	cs[9] = channels.Choice{ID: "last", Title: strings.Repeat("t", 30), Description: strings.Repeat("d", 100)}
	got, err := whatsapp.BuildMessage(channels.Outbound{ExternalID: "1", Type: channels.MsgInteractive, Text: "Menu", Choices: cs})
	if err != nil {
		t.Fatal(err)
	}
	var req struct {
		Interactive struct {
			Action struct {
				Button   string `json:"button"`
				Sections []struct {
					Rows []struct{ ID, Title, Description string } `json:"rows"`
				} `json:"sections"`
			} `json:"action"`
		} `json:"interactive"`
	}
	if err := json.Unmarshal(got, &req); err != nil {
		t.Fatal(err)
	}
	rows := req.Interactive.Action.Sections[0].Rows
	last := rows[len(rows)-1]
	if len(rows) != 10 || req.Interactive.Action.Button != whatsapp.DefaultListButton ||
		len([]rune(last.Title)) != whatsapp.MaxRowTitle || len([]rune(last.Description)) != whatsapp.MaxRowDescription {
		t.Errorf("list: button %q, %d rows, last %+v", req.Interactive.Action.Button, len(rows), last)
	}
}

func TestBuildMessageRefusals(t *testing.T) {
	tests := map[string]channels.Outbound{
		"no recipient":       {Type: channels.MsgText, Text: "x"},
		"unknown type":       {ExternalID: "1", Type: "hologram"},
		"reaction":           {ExternalID: "1", Type: channels.MsgReaction},
		"empty text":         {ExternalID: "1", Type: channels.MsgText, Text: "  "},
		"text too long":      {ExternalID: "1", Type: channels.MsgText, Text: strings.Repeat("a", whatsapp.MaxTextLen+1)},
		"media missing":      {ExternalID: "1", Type: channels.MsgImage},
		"media empty":        {ExternalID: "1", Type: channels.MsgImage, Media: &channels.Media{}},
		"media bad url":      {ExternalID: "1", Type: channels.MsgImage, Media: &channels.Media{URL: "file:///etc/passwd"}},
		"caption too long":   {ExternalID: "1", Type: channels.MsgImage, Media: &channels.Media{ID: "1", Caption: strings.Repeat("c", 1025)}},
		"audio with caption": {ExternalID: "1", Type: channels.MsgAudio, Text: "listen", Media: &channels.Media{ID: "1"}},
		"no choices":         {ExternalID: "1", Type: channels.MsgInteractive, Text: "x"},
		"eleven choices":     {ExternalID: "1", Type: channels.MsgInteractive, Text: "x", Choices: make([]channels.Choice, 11)},
		"no body":            {ExternalID: "1", Type: channels.MsgInteractive, Choices: []channels.Choice{{ID: "a", Title: "A"}}},
		"body too long":      {ExternalID: "1", Type: channels.MsgInteractive, Text: strings.Repeat("b", 1025), Choices: []channels.Choice{{ID: "a", Title: "A"}}},
		"untitled choice":    {ExternalID: "1", Type: channels.MsgInteractive, Text: "x", Choices: []channels.Choice{{ID: "a"}}},
		"duplicate ids":      {ExternalID: "1", Type: channels.MsgInteractive, Text: "x", Choices: []channels.Choice{{ID: "a", Title: "A"}, {ID: "a", Title: "B"}}},
		"titles collide":     {ExternalID: "1", Type: channels.MsgInteractive, Text: "x", Choices: []channels.Choice{{ID: "a", Title: strings.Repeat("z", 25) + "1"}, {ID: "b", Title: strings.Repeat("z", 25) + "2"}}},
		"id too long":        {ExternalID: "1", Type: channels.MsgInteractive, Text: "x", Choices: []channels.Choice{{ID: strings.Repeat("i", 257), Title: "A"}}},
		"no template":        {ExternalID: "1", Type: channels.MsgTemplate},
		"template no lang":   {ExternalID: "1", Type: channels.MsgTemplate, Template: &channels.Template{Name: "t"}},
		"template object":    {ExternalID: "1", Type: channels.MsgTemplate, Template: &channels.Template{Name: "t", Language: "en", Components: json.RawMessage(`{"type":"body"}`)}},
		"no location":        {ExternalID: "1", Type: channels.MsgLocation},
		"latitude 91":        {ExternalID: "1", Type: channels.MsgLocation, Location: &channels.Location{Latitude: 91}},
		"raw not object":     {ExternalID: "1", Type: channels.MsgText, Text: "x", Raw: json.RawMessage(`[1]`)},
	}
	for name, out := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := whatsapp.BuildMessage(out)
			var se *channels.SendError
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a *channels.SendError", err)
			}
			if se.Retry || se.WindowClosed || se.Auth || !errs.Is(err, errs.Invalid) {
				t.Errorf("got %+v (code %s), want a permanent invalid_message", se, errs.CodeOf(err))
			}
		})
	}
}

func fakeAdapter(srv *whatsapptest.Server) *whatsapp.Adapter {
	return whatsapp.New(whatsapp.Options{HTTPClient: srv.Client(), Clock: clock.NewFake(fixedNow)})
}

func TestSendThroughFake(t *testing.T) {
	srv := whatsapptest.New(t)
	a := fakeAdapter(srv)
	acct := srv.Account("t1", "acct-1")
	outs := []channels.Outbound{
		{Type: channels.MsgText, Text: "hello https://example.com", ReplyTo: "wamid.in"},
		{Type: channels.MsgImage, Media: &channels.Media{URL: "https://cdn.example/a.jpg", Caption: "a"}},
		{Type: channels.MsgAudio, Media: &channels.Media{ID: "123"}},
		{Type: channels.MsgVideo, Media: &channels.Media{ID: "124"}},
		{Type: channels.MsgDocument, Media: &channels.Media{ID: "125", Filename: "a.pdf"}},
		{Type: channels.MsgSticker, Media: &channels.Media{ID: "126"}},
		{Type: channels.MsgInteractive, Text: "Pick", Choices: []channels.Choice{{ID: "y", Title: "Yes"}, {ID: "n", Title: "No"}}},
		{Type: channels.MsgInteractive, Text: "Menu", Choices: []channels.Choice{{Title: "1"}, {Title: "2"}, {Title: "3"}, {Title: "4"}, {Title: "5"}}},
		{Type: channels.MsgTemplate, Template: &channels.Template{Name: "order_update", Language: "en_US", Components: json.RawMessage(`[{"type":"body","parameters":[{"type":"text","text":"42"}]}]`)}},
		{Type: channels.MsgLocation, Location: &channels.Location{Latitude: 1.5, Longitude: 2.5}},
	}
	ids := map[string]bool{}
	for i, out := range outs {
		out.ExternalID = "+1 650-555-1234"
		res, err := a.Send(context.Background(), acct, out)
		if err != nil {
			t.Fatalf("send %d (%s): %v; fake refused: %v", i, out.Type, err, srv.Rejected())
		}
		if !strings.HasPrefix(res.ChannelMsgID, "wamid.") || ids[res.ChannelMsgID] {
			t.Fatalf("send %d: ChannelMsgID %q", i, res.ChannelMsgID)
		}
		ids[res.ChannelMsgID] = true
	}
	sent := srv.Sent()
	if len(sent) != len(outs) {
		t.Fatalf("fake recorded %d messages, want %d", len(sent), len(outs))
	}
	if sent[0].Text != "hello https://example.com" || sent[0].ReplyTo != "wamid.in" || sent[0].To != "+1 650-555-1234" {
		t.Errorf("first message recorded as %+v", sent[0])
	}
	if sent[8].Type != "template" || sent[7].Type != "interactive" {
		t.Errorf("types recorded: %s, %s", sent[7].Type, sent[8].Type)
	}
}

func TestSendResponseSample(t *testing.T) {
	var (
		mu  sync.Mutex
		got *http.Request
	)
	resp := testenv.ChannelSample(t, "whatsapp_send_response.json")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Clone(context.Background())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(resp)
	}))
	defer srv.Close()
	acct := sampleAccount(t)
	acct.Credentials = credsJSON(t, func(m map[string]any) { m["base_url"], m["api_version"] = srv.URL, "v17.0" })
	a := whatsapp.New(whatsapp.Options{HTTPClient: srv.Client()})
	res, err := a.Send(context.Background(), acct, channels.Outbound{ExternalID: "16505555555", Type: channels.MsgText, Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if res.ChannelMsgID != "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA" {
		t.Errorf("ChannelMsgID = %q", res.ChannelMsgID)
	}
	mu.Lock()
	defer mu.Unlock()
	if got.Method != http.MethodPost || got.URL.Path != "/v17.0/106540352242922/messages" ||
		got.Header.Get("Authorization") != "Bearer "+secretToken || got.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request %s %s auth=%q ct=%q", got.Method, got.URL.Path, got.Header.Get("Authorization"), got.Header.Get("Content-Type"))
	}
}

func TestMarkRead(t *testing.T) {
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		_, _ = w.Write([]byte(`{"success": true}`))
	}))
	defer srv.Close()
	acct := sampleAccount(t)
	acct.Credentials = credsJSON(t, func(m map[string]any) { m["base_url"] = srv.URL })
	a := whatsapp.New(whatsapp.Options{HTTPClient: srv.Client()})
	if err := a.MarkRead(context.Background(), acct, "wamid.xyzxyz"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(jsonValue(t, testenv.ChannelSample(t, "whatsapp_mark_read_request.json")), jsonValue(t, body)); diff != "" {
		t.Errorf("mark read (-sample +sent):\n%s", diff)
	}

	fake := whatsapptest.New(t)
	fa := fakeAdapter(fake)
	if err := fa.MarkRead(context.Background(), fake.Account("t1", "a"), "wamid.1"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"wamid.1"}, fake.Reads()); diff != "" {
		t.Errorf("reads (-want +got):\n%s", diff)
	}
	if err := fa.MarkRead(context.Background(), fake.Account("t1", "a"), ""); !errs.Is(err, errs.Invalid) {
		t.Errorf("empty id: %v, want invalid", err)
	}
}

func TestSendErrorClassification(t *testing.T) {
	sample := func(name string) []byte { return testenv.ChannelSample(t, name) }
	graph := func(code int) []byte {
		return whatsapptest.GraphError(code, "OAuthException", "(#"+strconv.Itoa(code)+") error", "details")
	}
	type want struct {
		code       string
		retry      bool
		window     bool
		auth       bool
		retryAfter time.Duration
	}
	tests := []struct {
		name   string
		status int
		body   []byte
		header http.Header
		want   want
	}{
		{"sample 131047 re-engagement", 400, sample("whatsapp_error_131047_reengagement.json"), nil, want{code: "131047", window: true}},
		{"sample 131056 pair rate", 429, sample("whatsapp_error_131056_pair_rate.json"), nil, want{code: "131056", retry: true}},
		{"sample 190 expired token", 401, sample("whatsapp_error_190_expired_token.json"), nil, want{code: "190", auth: true}},
		{"130429 throughput with Retry-After", 429, whatsapptest.ThroughputError(), http.Header{"Retry-After": {"7"}}, want{code: "130429", retry: true, retryAfter: 7 * time.Second}},
		{"Retry-After date", 429, graph(130429), http.Header{"Retry-After": {fixedNow.Add(90 * time.Second).Format(http.TimeFormat)}}, want{code: "130429", retry: true, retryAfter: 90 * time.Second}},
		{"business use case header", 400, graph(80007), http.Header{"X-Business-Use-Case-Usage": {`{"102290129340398":[{"type":"whatsapp","call_count":100,"estimated_time_to_regain_access":2}]}`}}, want{code: "80007", retry: true, retryAfter: 2 * time.Minute}},
		{"131048 spam rate", 400, graph(131048), nil, want{code: "131048", retry: true}},
		{"4 app rate", 400, graph(4), nil, want{code: "4", retry: true}},
		{"1 unknown", 500, graph(1), nil, want{code: "1", retry: true}},
		{"2 service", 503, graph(2), nil, want{code: "2", retry: true}},
		{"131000 went wrong", 500, graph(131000), nil, want{code: "131000", retry: true}},
		{"131016 unavailable", 503, graph(131016), nil, want{code: "131016", retry: true}},
		{"502 without a body", 502, []byte("<html>Bad Gateway</html>"), nil, want{code: "502", retry: true}},
		{"429 without a code", 429, []byte(`{}`), nil, want{code: "429", retry: true}},
		{"transient flag", 400, []byte(`{"error":{"code":99999,"message":"x","is_transient":true}}`), nil, want{code: "99999", retry: true}},
		{"131026 undeliverable", 400, whatsapptest.UndeliverableError(), nil, want{code: "131026"}},
		{"131051 unsupported type", 400, graph(131051), nil, want{code: "131051"}},
		{"131052 media download", 400, graph(131052), nil, want{code: "131052"}},
		{"131053 media upload", 400, graph(131053), nil, want{code: "131053"}},
		{"132000 template params", 400, graph(132000), nil, want{code: "132000"}},
		{"132001 template missing", 404, graph(132001), nil, want{code: "132001"}},
		{"132016 template disabled", 400, graph(132016), nil, want{code: "132016"}},
		{"100 invalid parameter", 400, whatsapptest.InvalidParameterError("bad"), nil, want{code: "100"}},
		{"131009 invalid value", 400, graph(131009), nil, want{code: "131009"}},
		{"131021 recipient is sender", 400, graph(131021), nil, want{code: "131021"}},
		{"10 permission", 403, graph(10), nil, want{code: "10", auth: true}},
		{"200 permission", 403, graph(200), nil, want{code: "200", auth: true}},
		{"0 auth exception", 401, whatsapptest.OAuthError(0, 0, "We were unable to authenticate the app user"), nil, want{code: "0", auth: true}},
		{"401 without a code", 401, nil, nil, want{code: "401", auth: true}},
	}
	srv := whatsapptest.New(t)
	a := fakeAdapter(srv)
	acct := srv.Account("t1", "acct-1")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if body == nil {
				body = []byte{}
			}
			srv.Fail(whatsapptest.Fault{Status: tc.status, Body: body, Header: tc.header})
			_, err := a.Send(context.Background(), acct, channels.Outbound{ExternalID: "16505551234", Type: channels.MsgText, Text: "hi"})
			var se *channels.SendError
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want *channels.SendError", err)
			}
			got := want{code: se.Code, retry: se.Retry, window: se.WindowClosed, auth: se.Auth, retryAfter: se.RetryAfter}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("classification (-want +got):\n%s\nerror: %v", diff, err)
			}
			if se.Retryable() != tc.want.retry {
				t.Errorf("Retryable() = %v", se.Retryable())
			}
			if se.Msg == "" {
				t.Errorf("no message in %v", err)
			}
		})
	}
	if n := len(srv.Sent()); n != 0 {
		t.Errorf("fake accepted %d messages while failing", n)
	}
	// The sample's message reaches the error text, and the trace id the
	// APIError.
	srv.Fail(whatsapptest.Fault{Status: 401, Body: sample("whatsapp_error_190_expired_token.json")})
	_, err := a.Send(context.Background(), acct, channels.Outbound{ExternalID: "1", Type: channels.MsgText, Text: "hi"})
	var ae *whatsapp.APIError
	if !errors.As(err, &ae) || ae.Subcode != 463 || ae.FBTraceID != "ACEyrTehk6IAd0lm05Ixogh" || !strings.Contains(err.Error(), "Session has expired") {
		t.Errorf("expired token error: %v (%+v)", err, ae)
	}
}

func TestSendFakeBehaviours(t *testing.T) {
	srv := whatsapptest.New(t)
	a := fakeAdapter(srv)
	acct := srv.Account("t1", "acct-1")
	text := channels.Outbound{ExternalID: "16505551234", Type: channels.MsgText, Text: "hi"}
	send := func(out channels.Outbound) error {
		_, err := a.Send(context.Background(), acct, out)
		return err
	}

	// A closed window refuses free-form messages, not templates.
	srv.CloseWindow("+1 (650) 555-1234")
	var se *channels.SendError
	if err := send(text); !errors.As(err, &se) || !se.WindowClosed || se.Retry {
		t.Fatalf("closed window: %v", err)
	}
	if err := send(channels.Outbound{ExternalID: "16505551234", Type: channels.MsgTemplate, Template: &channels.Template{Name: "hello_world", Language: "en_US"}}); err != nil {
		t.Fatalf("template in a closed window: %v", err)
	}
	srv.OpenWindow("16505551234")

	// Faults count down and can target one recipient.
	srv.FailNext(2, 429, whatsapptest.PairRateError())
	srv.Fail(whatsapptest.Fault{Status: 400, Body: whatsapptest.UndeliverableError(), To: "15550000000", Times: -1})
	for i := 0; i < 2; i++ {
		if err := send(text); !errors.As(err, &se) || se.Code != "131056" {
			t.Fatalf("fault %d: %v", i, err)
		}
	}
	if err := send(text); err != nil {
		t.Fatalf("after the faults: %v", err)
	}
	for i := 0; i < 3; i++ {
		if err := send(channels.Outbound{ExternalID: "15550000000", Type: channels.MsgText, Text: "x"}); !errors.As(err, &se) || se.Code != "131026" {
			t.Fatalf("targeted fault %d: %v", i, err)
		}
	}
	srv.ClearFaults()

	// Another account's token or number is refused like Graph does.
	bad := srv.Account("t1", "acct-2")
	bad.Credentials = credsJSON(t, func(m map[string]any) { m["base_url"], m["phone_number_id"] = srv.URL, "999" })
	_, err := a.Send(context.Background(), bad, text)
	if !errors.As(err, &se) || !se.Auth || se.Code != "190" {
		t.Fatalf("wrong token: %v", err)
	}
	srv.SetAccessToken(secretToken)
	_, err = a.Send(context.Background(), bad, text)
	if !errors.As(err, &se) || se.Code != "100" || se.Retry {
		t.Fatalf("wrong phone number id: %v", err)
	}
	if len(srv.Rejected()) != 2 {
		t.Errorf("rejections recorded: %q", srv.Rejected())
	}
}

func TestSendNetworkFailures(t *testing.T) {
	srv := whatsapptest.New(t)
	acct := srv.Account("t1", "acct-1")
	text := channels.Outbound{ExternalID: "16505551234", Type: channels.MsgText, Text: "hi"}

	srv.SetLatency(2 * time.Second)
	a := whatsapp.New(whatsapp.Options{HTTPClient: srv.Client(), Timeout: 50 * time.Millisecond})
	_, err := a.Send(context.Background(), acct, text)
	var se *channels.SendError
	if !errors.As(err, &se) || !se.Retry || se.Code != "network" {
		t.Fatalf("adapter timeout: %v", err)
	}
	srv.AddMedia("5", "image/png", []byte("png"))
	if _, _, err := a.Media(context.Background(), acct, "5"); !errs.Is(err, errs.Unavailable) || !errors.As(err, &se) || !se.Retry {
		t.Fatalf("media timeout: %v", err)
	}
	client := srv.Client()
	client.Timeout = 50 * time.Millisecond
	_, err = whatsapp.New(whatsapp.Options{HTTPClient: client}).Send(context.Background(), acct, text)
	if !errors.As(err, &se) || !se.Retry || se.Code != "network" {
		t.Fatalf("client timeout: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = fakeAdapter(srv).Send(ctx, acct, text)
	if !errors.As(err, &se) || !se.Retry || se.Code != "canceled" {
		t.Fatalf("caller deadline: %v", err)
	}
	srv.SetLatency(0)

	// Nothing listens.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	acct.Credentials = credsJSON(t, func(m map[string]any) { m["base_url"] = dead.URL })
	_, err = whatsapp.New(whatsapp.Options{}).Send(context.Background(), acct, text)
	if !errors.As(err, &se) || !se.Retry || se.Code != "network" {
		t.Fatalf("connection refused: %v", err)
	}
	if strings.Contains(err.Error(), secretToken) {
		t.Fatalf("error leaks the token: %v", err)
	}
}

func TestSendNeverLeaksToken(t *testing.T) {
	srv := whatsapptest.New(t)
	srv.SetAccessToken(secretToken)
	acct := srv.Account("t1", "acct-1")
	a := fakeAdapter(srv)
	// A (hypothetical) error that quotes the token back.
	srv.Fail(whatsapptest.Fault{Status: 400, Body: whatsapptest.GraphError(100, "OAuthException",
		"Invalid token "+secretToken, "token "+secretToken+" is malformed")})
	_, err := a.Send(context.Background(), acct, channels.Outbound{ExternalID: "1", Type: channels.MsgText, Text: "x"})
	if err == nil {
		t.Fatal("no error")
	}
	var ae *whatsapp.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("no APIError in %v", err)
	}
	if strings.Contains(err.Error(), secretToken) || strings.Contains(ae.Message, secretToken) || strings.Contains(ae.Details, secretToken) {
		t.Fatalf("error leaks the token: %v", err)
	}
	if !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("redaction not visible: %v", err)
	}
}

func TestSendUnusableCredentials(t *testing.T) {
	a := whatsapp.New(whatsapp.Options{})
	acct := channels.Account{ID: "x", Credentials: json.RawMessage(`{"phone_number_id":"12","access_token":"` + secretToken + `"}`)}
	_, err := a.Send(context.Background(), acct, channels.Outbound{ExternalID: "1", Type: channels.MsgText, Text: "x"})
	var se *channels.SendError
	if !errors.As(err, &se) || !se.Auth || se.Retry || se.Code != "credentials" {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), secretToken) {
		t.Fatalf("error leaks the token: %v", err)
	}
	if err := a.MarkRead(context.Background(), acct, "wamid.1"); !errors.As(err, &se) || !se.Auth {
		t.Fatalf("mark read: %v", err)
	}
}

func TestSendBadSuccessResponse(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"messaging_product":"whatsapp","messages":[]}`))
	}))
	defer srv.Close()
	acct := sampleAccount(t)
	acct.Credentials = credsJSON(t, func(m map[string]any) { m["base_url"] = srv.URL })
	_, err := whatsapp.New(whatsapp.Options{}).Send(context.Background(), acct, channels.Outbound{ExternalID: "1", Type: channels.MsgText, Text: "x"})
	var se *channels.SendError
	if !errors.As(err, &se) || se.Retry || se.Code != "invalid_response" {
		t.Fatalf("got %v; a 200 without an id must not be retried (it may have been sent)", err)
	}
}
