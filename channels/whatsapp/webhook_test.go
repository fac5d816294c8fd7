package whatsapp_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/whatsapp"
	"github.com/switchboard-acd/switchboard/channels/whatsapp/whatsapptest"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// The samples are addressed to this number and signed (in the vectors
// file) with this app secret.
const (
	samplePhoneNumberID = "1122334455667"
	sampleAppSecret     = "test_app_secret"
	sampleVerifyToken   = "meatyhamhock"
	sampleCustomer      = "972987654321"
)

var fixedNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// sampleAccount is the account the samples were sent to.
func sampleAccount(t testing.TB) channels.Account {
	t.Helper()
	creds, err := json.Marshal(whatsapp.Credentials{
		PhoneNumberID: samplePhoneNumberID, AccessToken: "EAAsample", AppSecret: sampleAppSecret,
		VerifyToken: sampleVerifyToken,
	})
	if err != nil {
		t.Fatal(err)
	}
	return channels.Account{TenantID: "t1", ID: "acct-wa", Type: channels.WhatsApp, Credentials: creds}
}

func newAdapter() *whatsapp.Adapter {
	return whatsapp.New(whatsapp.Options{Clock: clock.NewFake(fixedNow)})
}

// post delivers a body signed with the sample app secret.
func post(t testing.TB, a *whatsapp.Adapter, acct channels.Account, body []byte) (channels.WebhookResult, error) {
	t.Helper()
	return a.Webhook(context.Background(), acct, whatsapptest.WebhookRequest(sampleAppSecret, body))
}

func at(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

func TestWebhookInboundSamples(t *testing.T) {
	base := channels.Inbound{AccountID: "acct-wa", ExternalID: sampleCustomer, Phone: sampleCustomer,
		DisplayName: "Test Name", ChannelMsgID: "wamid.xyzxyz"}
	with := func(f func(*channels.Inbound)) channels.Inbound {
		in := base
		f(&in)
		return in
	}
	tests := []struct {
		file string
		want channels.Inbound
	}{
		{"whatsapp_inbound_text.json", with(func(in *channels.Inbound) {
			in.Type, in.Text, in.ReceivedAt = channels.MsgText, "Body Text", at(1697043223)
		})},
		{"whatsapp_inbound_text_reply_context.json", with(func(in *channels.Inbound) {
			in.Type, in.Text, in.ReplyTo, in.ReceivedAt = channels.MsgText, "replied text", "wamid.xyzxyz==", at(1697044746)
		})},
		{"whatsapp_inbound_image.json", with(func(in *channels.Inbound) {
			in.Type, in.ReceivedAt = channels.MsgImage, at(1697043379)
			in.Media = &channels.Media{ID: "65463453", MIMEType: "image/jpeg", SHA256: "4654+8g="}
		})},
		{"whatsapp_inbound_video.json", with(func(in *channels.Inbound) {
			in.Type, in.Text, in.ReceivedAt = channels.MsgVideo, "caption", at(1697044362)
			in.Media = &channels.Media{ID: "765756756", MIMEType: "video/mp4",
				SHA256: "Jh+2ij6PzUv/J2y+grrtegr/ZMzRxkEPwc24Oyib4s03w9Jc=", Caption: "caption"}
		})},
		{"whatsapp_inbound_audio.json", with(func(in *channels.Inbound) {
			in.Type, in.ReceivedAt = channels.MsgAudio, at(1697043509)
			in.Media = &channels.Media{ID: "1234567890987654321", MIMEType: "audio/ogg; codecs=opus",
				SHA256: "E3dxS/PdYZE7ppA3pQ4mpCFaXBJ8pX4SRN/dsfvds/iPGA="}
		})},
		{"whatsapp_inbound_document.json", with(func(in *channels.Inbound) {
			in.Type, in.Text, in.ReceivedAt = channels.MsgDocument, "caption", at(1697043666)
			in.Media = &channels.Media{ID: "1234567890987654321", MIMEType: "application/pdf",
				SHA256: "grwfwe/ZPx0wAbdfbdeFUNItPZ0RylL8gGUvdt3YFqc18SY=", Filename: "filename.pdf", Caption: "caption"}
		})},
		{"whatsapp_inbound_sticker.json", with(func(in *channels.Inbound) {
			in.Type, in.ReceivedAt = channels.MsgSticker, at(1697043760)
			in.Media = &channels.Media{ID: "1234567890987654321", MIMEType: "image/webp",
				SHA256: "OmT4nhjUhCMIPNmj7eeOZeCYjTXkLxoOv85OMCFwSuc="}
		})},
		{"whatsapp_inbound_interactive_button_reply.json", with(func(in *channels.Inbound) {
			in.Type, in.Text, in.ReplyTo, in.ReceivedAt = channels.MsgInteractive, "title", "wamid.xyzxyz", at(1698266730)
			in.Choice = &channels.Choice{ID: "callback_data", Title: "title"}
		})},
		{"whatsapp_inbound_interactive_list_reply.json", with(func(in *channels.Inbound) {
			in.ChannelMsgID = "wamid.zyzxyz"
			in.Type, in.Text, in.ReplyTo, in.ReceivedAt = channels.MsgInteractive, "title", "wamid.xyzxyz", at(1698266905)
			in.Choice = &channels.Choice{ID: "callback_data", Title: "title", Description: "description"}
		})},
		{"whatsapp_inbound_template_quick_reply_button.json", with(func(in *channels.Inbound) {
			in.ChannelMsgID = "wamid.xsidjw"
			in.Type, in.Text, in.ReplyTo, in.ReceivedAt = channels.MsgInteractive, "title", "wamid.xyzxyz==", at(1698269027)
			in.Choice = &channels.Choice{ID: "callback_data", Title: "title"}
		})},
		{"whatsapp_inbound_location_chosen.json", with(func(in *channels.Inbound) {
			in.Type, in.Text, in.ReceivedAt = channels.MsgLocation, "Facebook HQ, 1 Hacker Way, Menlo Park, CA 94025", at(1697044557)
			in.Location = &channels.Location{Latitude: 37.4611978, Longitude: -122.2164385, Name: "Facebook HQ",
				Address: "1 Hacker Way, Menlo Park, CA 94025", URL: "https://maps.google.com/?cid=2000000000000000000"}
		})},
		{"whatsapp_inbound_location_current.json", with(func(in *channels.Inbound) {
			in.Type, in.ReceivedAt = channels.MsgLocation, at(1697044557)
			in.Location = &channels.Location{Latitude: 12.25089, Longitude: 43.90539}
		})},
		{"whatsapp_inbound_contacts.json", with(func(in *channels.Inbound) {
			in.Type, in.ReceivedAt = channels.MsgContacts, at(1697044621)
			in.Text = "Chandler Bing (+1 555-555-5555); Monica (+1 666-666-6666); Rachel Green (+1 777-777-7777)"
		})},
		{"whatsapp_inbound_reaction.json", with(func(in *channels.Inbound) {
			in.Type, in.Text, in.ReceivedAt = channels.MsgReaction, "😮", at(1697044456)
			in.Reaction = &channels.Reaction{MessageID: "wamid.yzxyzx=", Emoji: "😮"}
		})},
	}
	a := newAdapter()
	acct := sampleAccount(t)
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			body := testenv.ChannelSample(t, tc.file)
			res, err := post(t, a, acct, body)
			if err != nil {
				t.Fatalf("Webhook: %v", err)
			}
			if len(res.Inbound) != 1 || len(res.Statuses) != 0 {
				t.Fatalf("got %d inbound, %d statuses; want 1, 0", len(res.Inbound), len(res.Statuses))
			}
			got := res.Inbound[0]
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(channels.Inbound{}, "Raw")); diff != "" {
				t.Errorf("inbound (-want +got):\n%s", diff)
			}
			checkRaw(t, body, got.Raw)
			if res.Reply.Status != http.StatusOK {
				t.Errorf("reply status %d, want 200", res.Reply.Status)
			}
		})
	}
}

// checkRaw asserts Raw is the message object of the body, byte for byte
// equal once compacted.
func checkRaw(t *testing.T, body []byte, raw json.RawMessage) {
	t.Helper()
	var env struct {
		Entry []struct {
			Changes []struct {
				Value struct {
					Messages []json.RawMessage `json:"messages"`
				} `json:"value"`
			} `json:"changes"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	var want, got bytes.Buffer
	if err := json.Compact(&want, env.Entry[0].Changes[0].Value.Messages[0]); err != nil {
		t.Fatal(err)
	}
	if err := json.Compact(&got, raw); err != nil {
		t.Fatalf("Raw is not JSON: %v", err)
	}
	if want.String() != got.String() {
		t.Errorf("Raw = %s\nwant %s", got.String(), want.String())
	}
}

func TestWebhookStatusSamples(t *testing.T) {
	base := channels.StatusUpdate{AccountID: "acct-wa", ChannelMsgID: "wamid.xyzxyz", ExternalID: sampleCustomer}
	tests := []struct {
		file string
		want channels.StatusUpdate
	}{
		{"whatsapp_status_sent.json", channels.StatusUpdate{Status: channels.StatusSent, At: at(1698266945)}},
		{"whatsapp_status_delivered.json", channels.StatusUpdate{Status: channels.StatusDelivered, At: at(1698266945)}},
		{"whatsapp_status_read.json", channels.StatusUpdate{Status: channels.StatusRead, At: at(1689380458)}},
		{"whatsapp_status_failed.json", channels.StatusUpdate{Status: channels.StatusFailed, At: at(1689380458),
			Code:  "130472",
			Error: "User's number is part of an experiment: Failed to send message because this user's phone number is part of an experiment"}},
	}
	a := newAdapter()
	acct := sampleAccount(t)
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			res, err := post(t, a, acct, testenv.ChannelSample(t, tc.file))
			if err != nil {
				t.Fatalf("Webhook: %v", err)
			}
			if len(res.Inbound) != 0 || len(res.Statuses) != 1 {
				t.Fatalf("got %d inbound, %d statuses; want 0, 1", len(res.Inbound), len(res.Statuses))
			}
			want := tc.want
			want.AccountID, want.ChannelMsgID, want.ExternalID = base.AccountID, base.ChannelMsgID, base.ExternalID
			if diff := cmp.Diff(want, res.Statuses[0]); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}

// envelopeWith wraps message and status JSON in a notification to the
// sample number, as the notes document the shapes that have no sample.
func envelopeWith(phoneNumberID, messages, statuses, errors string) []byte {
	v := `{"messaging_product":"whatsapp","metadata":{"display_phone_number":"972123456789","phone_number_id":"` + phoneNumberID + `"},` +
		`"contacts":[{"profile":{"name":"Test Name"},"wa_id":"972987654321"}]`
	if messages != "" {
		v += `,"messages":[` + messages + `]`
	}
	if statuses != "" {
		v += `,"statuses":[` + statuses + `]`
	}
	if errors != "" {
		v += `,"errors":[` + errors + `]`
	}
	v += `}`
	return []byte(`{"object":"whatsapp_business_account","entry":[{"id":"1234567890987654321","changes":[{"value":` + v + `,"field":"messages"}]}]}`)
}

func msg(typ, payload string) string {
	m := `{"from":"972987654321","id":"wamid.t1","timestamp":"1697043223","type":"` + typ + `"`
	if payload != "" {
		m += `,` + payload
	}
	return m + `}`
}

func TestWebhookOtherTypes(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want func(in *channels.Inbound)
	}{
		{"voice note", msg("audio", `"audio":{"mime_type":"audio/ogg; codecs=opus","sha256":"abc=","id":"42","voice":true}`),
			func(in *channels.Inbound) {
				in.Type = channels.MsgAudio
				in.Media = &channels.Media{ID: "42", MIMEType: "audio/ogg; codecs=opus", SHA256: "abc=", Voice: true}
			}},
		{"image with url", msg("image", `"image":{"mime_type":"image/jpeg","sha256":"x","id":"7","url":"https://lookaside.fbsbx.com/x","caption":"look"}`),
			func(in *channels.Inbound) {
				in.Type, in.Text = channels.MsgImage, "look"
				in.Media = &channels.Media{ID: "7", URL: "https://lookaside.fbsbx.com/x", MIMEType: "image/jpeg", SHA256: "x", Caption: "look"}
			}},
		{"unreaction", msg("reaction", `"reaction":{"message_id":"wamid.ours","emoji":""}`),
			func(in *channels.Inbound) {
				in.Type = channels.MsgReaction
				in.Reaction = &channels.Reaction{MessageID: "wamid.ours"}
			}},
		{"unsupported", msg("unsupported", `"errors":[{"code":131051,"title":"Message type unknown","message":"Message type unknown","error_data":{"details":"Message type is currently not supported."}}]`),
			func(in *channels.Inbound) { in.Type, in.Text = channels.MsgUnsupported, "Message type unknown" }},
		{"unknown type", msg("hologram", `"hologram":{"x":1}`),
			func(in *channels.Inbound) {
				in.Type, in.Text = channels.MsgUnsupported, "unsupported message type hologram"
			}},
		{"text without body", msg("text", ""),
			func(in *channels.Inbound) { in.Type, in.Text = channels.MsgUnsupported, "text message without a body" }},
		{"unknown interactive", msg("interactive", `"interactive":{"type":"carousel_reply"}`),
			func(in *channels.Inbound) {
				in.Type, in.Text = channels.MsgUnsupported, "interactive carousel_reply reply"
			}},
		{"flow reply", msg("interactive", `"interactive":{"type":"nfm_reply","nfm_reply":{"response_json":"{\"a\":1}","body":"Sent","name":"booking"}}`),
			func(in *channels.Inbound) {
				in.Type, in.Text = channels.MsgInteractive, "Sent"
				in.Choice = &channels.Choice{ID: "booking", Title: "Sent"}
			}},
		{"number change", msg("system", `"system":{"body":"NAME changed from 972987654321 to 972987654322","new_wa_id":"972987654322","type":"user_changed_number"}`),
			func(in *channels.Inbound) {
				in.Type, in.Text = channels.MsgEvent, "NAME changed from 972987654321 to 972987654322"
				in.Event = &channels.Event{Kind: channels.EventOther, Name: "user_changed_number", Key: "972987654322"}
			}},
		{"welcome request", msg("request_welcome", ""),
			func(in *channels.Inbound) {
				in.Type = channels.MsgEvent
				in.Event = &channels.Event{Kind: channels.EventEnterSession, Name: "request_welcome"}
			}},
		{"order", msg("order", `"order":{"catalog_id":"1","text":"asap","product_items":[{"product_retailer_id":"a","quantity":"1"},{"product_retailer_id":"b","quantity":"2"}]}`),
			func(in *channels.Inbound) { in.Type, in.Text = channels.MsgUnsupported, "order of 2 item(s): asap" }},
		{"numeric timestamp", `{"from":"972987654321","id":"wamid.t1","timestamp":1697043223,"type":"text","text":{"body":"hi"}}`,
			func(in *channels.Inbound) { in.Type, in.Text = channels.MsgText, "hi" }},
	}
	a := newAdapter()
	acct := sampleAccount(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := post(t, a, acct, envelopeWith(samplePhoneNumberID, tc.msg, "", ""))
			if err != nil {
				t.Fatalf("Webhook: %v", err)
			}
			if len(res.Inbound) != 1 {
				t.Fatalf("got %d inbound, want 1", len(res.Inbound))
			}
			want := channels.Inbound{AccountID: "acct-wa", ExternalID: sampleCustomer, Phone: sampleCustomer,
				DisplayName: "Test Name", ChannelMsgID: "wamid.t1", ReceivedAt: at(1697043223)}
			tc.want(&want)
			if diff := cmp.Diff(want, res.Inbound[0], cmpopts.IgnoreFields(channels.Inbound{}, "Raw")); diff != "" {
				t.Errorf("inbound (-want +got):\n%s", diff)
			}
			if !json.Valid(res.Inbound[0].Raw) {
				t.Errorf("Raw is not JSON: %s", res.Inbound[0].Raw)
			}
		})
	}
}

func TestWebhookExtras(t *testing.T) {
	a := newAdapter()
	acct := sampleAccount(t)
	res, err := post(t, a, acct, testenv.ChannelSample(t, "whatsapp_inbound_video.json"))
	if err != nil {
		t.Fatal(err)
	}
	x, err := whatsapp.InboundExtras(res.Inbound[0])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(whatsapp.Extras{Forwarded: true}, x); diff != "" {
		t.Errorf("forwarded sample extras (-want +got):\n%s", diff)
	}

	ad := msg("text", `"text":{"body":"Is this still available?"},"referral":{"source_url":"https://fb.me/ad","source_id":"120","source_type":"ad","headline":"Sale","body":"50% off","media_type":"image","image_url":"https://x/i.jpg","ctwa_clid":"ARAkLkA"}`)
	res, err = post(t, a, acct, envelopeWith(samplePhoneNumberID, ad, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	x, err = whatsapp.InboundExtras(res.Inbound[0])
	if err != nil {
		t.Fatal(err)
	}
	want := whatsapp.Extras{Referral: &whatsapp.Referral{SourceURL: "https://fb.me/ad", SourceID: "120", SourceType: "ad",
		Headline: "Sale", Body: "50% off", MediaType: "image", ImageURL: "https://x/i.jpg", CTWAClickID: "ARAkLkA"}}
	if diff := cmp.Diff(want, x); diff != "" {
		t.Errorf("referral extras (-want +got):\n%s", diff)
	}
	if _, err := whatsapp.InboundExtras(channels.Inbound{Raw: []byte("{")}); !errs.Is(err, errs.Invalid) {
		t.Errorf("broken raw: %v, want invalid", err)
	}
}

func TestWebhookStatusVariants(t *testing.T) {
	a := newAdapter()
	acct := sampleAccount(t)
	st := func(status, extra string) string {
		return `{"id":"wamid.s","status":"` + status + `","timestamp":"1698266945","recipient_id":"972987654321"` + extra + `}`
	}
	body := envelopeWith(samplePhoneNumberID, "", strings.Join([]string{
		st("played", ""),
		st("deleted", ""),
		st("failed", `,"errors":[{"code":131047,"title":"Re-engagement message"}]`),
		st("failed", `,"errors":[{"code":130429,"title":"Rate limit hit","error_data":{"details":"throughput"}}]`),
		st("failed", ""),
		`{"status":"delivered","timestamp":"1698266945"}`,
	}, ","), "")
	res, err := post(t, a, acct, body)
	if err != nil {
		t.Fatal(err)
	}
	base := channels.StatusUpdate{AccountID: "acct-wa", ChannelMsgID: "wamid.s", ExternalID: sampleCustomer, At: at(1698266945)}
	mk := func(f func(*channels.StatusUpdate)) channels.StatusUpdate { s := base; f(&s); return s }
	want := []channels.StatusUpdate{
		mk(func(s *channels.StatusUpdate) { s.Status = channels.StatusRead }),
		mk(func(s *channels.StatusUpdate) {
			s.Status, s.Code, s.Error = channels.StatusFailed, "131047", "Re-engagement message"
		}),
		mk(func(s *channels.StatusUpdate) {
			s.Status, s.Code, s.Error, s.Retryable = channels.StatusFailed, "130429", "Rate limit hit: throughput", true
		}),
		mk(func(s *channels.StatusUpdate) {
			s.Status, s.Error = channels.StatusFailed, "failed without an error from WhatsApp"
		}),
	}
	if diff := cmp.Diff(want, res.Statuses); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}

func TestWebhookSkipsOtherNumbersAndFields(t *testing.T) {
	a := newAdapter()
	acct := sampleAccount(t)
	other := envelopeWith("999999999", msg("text", `"text":{"body":"not ours"}`), "", "")
	res, err := post(t, a, acct, other)
	if err != nil || len(res.Inbound) != 0 || res.Reply.Status != http.StatusOK {
		t.Fatalf("other number: %v, %d inbound, reply %d; want no error, nothing, 200", err, len(res.Inbound), res.Reply.Status)
	}

	// A batch with a template review change, a change for another number
	// and one for ours: only ours comes out.
	ours := envelopeWith(samplePhoneNumberID, msg("text", `"text":{"body":"ours"}`), "", `{"code":131000,"title":"Something went wrong"}`)
	var env map[string]any
	if err := json.Unmarshal(ours, &env); err != nil {
		t.Fatal(err)
	}
	var otherEnv map[string]any
	if err := json.Unmarshal(other, &otherEnv); err != nil {
		t.Fatal(err)
	}
	entry := env["entry"].([]any)[0].(map[string]any)
	changes := entry["changes"].([]any)
	changes = append([]any{
		map[string]any{"field": "message_template_status_update", "value": map[string]any{"event": "APPROVED", "message_template_id": 12345}},
		otherEnv["entry"].([]any)[0].(map[string]any)["changes"].([]any)[0],
	}, changes...)
	entry["changes"] = changes
	body, _ := json.Marshal(env)
	res, err = post(t, a, acct, body)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Inbound) != 1 || res.Inbound[0].Text != "ours" {
		t.Fatalf("batch: got %+v, want only the message to our number", res.Inbound)
	}

	// Messages without an id or a sender cannot be stored idempotently.
	res, err = post(t, a, acct, envelopeWith(samplePhoneNumberID,
		`{"from":"972987654321","timestamp":"1","type":"text","text":{"body":"x"}},`+msg("text", `"text":{"body":"kept"}`), "", ""))
	if err != nil || len(res.Inbound) != 1 || res.Inbound[0].Text != "kept" {
		t.Fatalf("message without id: %v, %+v", err, res.Inbound)
	}
}

func TestWebhookMissingTimestampUsesClock(t *testing.T) {
	a := newAdapter()
	res, err := post(t, a, sampleAccount(t), envelopeWith(samplePhoneNumberID,
		`{"from":"972987654321","id":"wamid.t","type":"text","text":{"body":"x"}}`, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Inbound[0].ReceivedAt; !got.Equal(fixedNow) {
		t.Errorf("ReceivedAt = %v, want the clock's %v", got, fixedNow)
	}
}

func TestWebhookMalformed(t *testing.T) {
	a := newAdapter()
	acct := sampleAccount(t)
	for name, body := range map[string]string{
		"not json":        `{"object":`,
		"wrong object":    `{"object":"page","entry":[]}`,
		"array":           `[]`,
		"typed wrong":     `{"object":"whatsapp_business_account","entry":{}}`,
		"value not obj":   `{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":[1]}]}]}`,
		"messages wrong":  string(envelopeWith(samplePhoneNumberID, `"text"`, "", "")),
		"location string": string(envelopeWith(samplePhoneNumberID, msg("location", `"location":{"latitude":"north"}`), "", "")),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := post(t, a, acct, []byte(body))
			if !errs.Is(err, errs.Invalid) {
				t.Errorf("got %v, want invalid", err)
			}
		})
	}
	// The empty batch of the vectors file is well formed.
	res, err := post(t, a, acct, []byte(`{"object":"whatsapp_business_account","entry":[]}`))
	if err != nil || len(res.Inbound)+len(res.Statuses) != 0 || res.Reply.Status != http.StatusOK {
		t.Errorf("empty batch: %v %+v", err, res)
	}
}

func TestWebhookSignatureRequired(t *testing.T) {
	a := newAdapter()
	acct := sampleAccount(t)
	body := testenv.ChannelSample(t, "whatsapp_inbound_text.json")
	good := whatsapptest.Sign(sampleAppSecret, body)
	tamperedBody := bytes.Replace(body, []byte("Body Text"), []byte("Body Tixt"), 1)
	cases := map[string]struct {
		body   []byte
		header http.Header
	}{
		"missing":       {body, http.Header{}},
		"wrong secret":  {body, http.Header{"X-Hub-Signature-256": {whatsapptest.Sign("other", body)}}},
		"tampered body": {tamperedBody, http.Header{"X-Hub-Signature-256": {good}}},
		"no prefix":     {body, http.Header{"X-Hub-Signature-256": {strings.TrimPrefix(good, "sha256=")}}},
		"sha1":          {body, http.Header{"X-Hub-Signature-256": {"sha1=" + strings.TrimPrefix(good, "sha256=")}}},
		"short":         {body, http.Header{"X-Hub-Signature-256": {good[:len(good)-2]}}},
		"not hex":       {body, http.Header{"X-Hub-Signature-256": {"sha256=" + strings.Repeat("zz", 32)}}},
		// Garbage with no signature is refused before parsing.
		"garbage": {[]byte("not json at all"), http.Header{}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			res, err := a.Webhook(context.Background(), acct, channels.WebhookRequest{Method: http.MethodPost, Header: tc.header, Body: tc.body})
			if !errs.Is(err, errs.Unauthorized) {
				t.Fatalf("got %v, want unauthorized", err)
			}
			if len(res.Inbound) != 0 {
				t.Fatalf("inbound parsed despite a bad signature")
			}
		})
	}
	// A header map with the key as it came on the wire still works.
	res, err := a.Webhook(context.Background(), acct, channels.WebhookRequest{Method: http.MethodPost,
		Header: http.Header{"x-hub-signature-256": {good}}, Body: body})
	if err != nil || len(res.Inbound) != 1 {
		t.Fatalf("lower-case header key: %v", err)
	}
}

func TestWebhookRawIsACopy(t *testing.T) {
	a := newAdapter()
	body := testenv.ChannelSample(t, "whatsapp_inbound_text.json")
	res, err := post(t, a, sampleAccount(t), body)
	if err != nil {
		t.Fatal(err)
	}
	before := string(res.Inbound[0].Raw)
	for i := range body {
		body[i] = 'x'
	}
	if string(res.Inbound[0].Raw) != before {
		t.Fatal("Raw aliases the request body, which the HTTP layer may reuse")
	}
}

// handshakeSample reads the GET request line of the verification sample.
func handshakeSample(t *testing.T) (*url.URL, string) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(testenv.ChannelSample(t, "whatsapp_verify_get.txt")))
	var u *url.URL
	var lines []string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "GET "); ok {
			var err error
			if u, err = url.Parse(rest); err != nil {
				t.Fatal(err)
			}
		}
		if line != "" && !strings.HasPrefix(line, "#") {
			lines = append(lines, line)
		}
	}
	if u == nil || len(lines) == 0 {
		t.Fatal("no GET line in the sample")
	}
	// The last non-comment line is the expected body.
	return u, lines[len(lines)-1]
}

func TestWebhookHandshake(t *testing.T) {
	a := newAdapter()
	acct := sampleAccount(t)
	u, wantBody := handshakeSample(t)

	res, err := a.Webhook(context.Background(), acct, channels.WebhookRequest{Method: http.MethodGet, URL: u.String(), Query: u.Query()})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if res.Reply.Status != http.StatusOK || string(res.Reply.Body) != wantBody || !strings.HasPrefix(res.Reply.ContentType, "text/plain") {
		t.Fatalf("reply %d %q %q, want 200 text/plain %q", res.Reply.Status, res.Reply.ContentType, res.Reply.Body, wantBody)
	}
	if len(res.Inbound) != 0 {
		t.Fatal("handshake produced inbound messages")
	}
	// Query left nil: read from the URL.
	res, err = a.Webhook(context.Background(), acct, channels.WebhookRequest{Method: http.MethodGet, URL: u.String()})
	if err != nil || string(res.Reply.Body) != wantBody {
		t.Fatalf("handshake from URL: %v %q", err, res.Reply.Body)
	}

	for name, tc := range map[string]struct {
		req  channels.WebhookRequest
		code errs.Code
	}{
		"wrong token":    {whatsapptest.HandshakeRequest("meatyhamhocks", "1158201444"), errs.Forbidden},
		"empty token":    {whatsapptest.HandshakeRequest("", "1158201444"), errs.Forbidden},
		"bad mode":       {channels.WebhookRequest{Method: http.MethodGet, Query: url.Values{"hub.mode": {"unsubscribe"}, "hub.verify_token": {sampleVerifyToken}, "hub.challenge": {"1"}}}, errs.Invalid},
		"no challenge":   {whatsapptest.HandshakeRequest(sampleVerifyToken, ""), errs.Invalid},
		"html":           {whatsapptest.HandshakeRequest(sampleVerifyToken, "<script>alert(1)</script>"), errs.Invalid},
		"other method":   {channels.WebhookRequest{Method: http.MethodPut}, errs.Invalid},
		"long challenge": {whatsapptest.HandshakeRequest(sampleVerifyToken, strings.Repeat("9", 129)), errs.Invalid},
	} {
		t.Run(name, func(t *testing.T) {
			res, err := a.Webhook(context.Background(), acct, tc.req)
			if !errs.Is(err, tc.code) {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
			if len(res.Reply.Body) != 0 {
				t.Fatalf("challenge echoed on failure: %q", res.Reply.Body)
			}
		})
	}
}

func TestWebhookUnusableCredentials(t *testing.T) {
	a := newAdapter()
	acct := sampleAccount(t)
	acct.Credentials = json.RawMessage(`{"phone_number_id":"1"}`)
	body := testenv.ChannelSample(t, "whatsapp_inbound_text.json")
	if _, err := post(t, a, acct, body); !errs.Is(err, errs.Unavailable) {
		t.Fatalf("got %v, want unavailable (Meta retries until the operator fixes the account)", err)
	}
}

func TestWebhookNotificationsFromFake(t *testing.T) {
	srv := whatsapptest.New(t)
	acct := srv.Account("t1", "acct-fake")
	a := newAdapter()
	ts := time.Unix(1700000000, 0).UTC()
	body := whatsapptest.TextNotification(srv.PhoneNumberID(),
		whatsapptest.Text{From: "16505551234", Name: "Sheena", Body: "hello", At: ts},
		whatsapptest.Text{From: "16505559999", Name: "Ann", Body: "hi", At: ts, ReplyTo: "wamid.ours"})
	res, err := a.Webhook(context.Background(), acct, srv.WebhookRequest(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Inbound) != 2 || res.Inbound[0].DisplayName != "Sheena" || res.Inbound[1].DisplayName != "Ann" ||
		res.Inbound[1].ReplyTo != "wamid.ours" || !res.Inbound[0].ReceivedAt.Equal(ts) || res.Inbound[0].ChannelMsgID == res.Inbound[1].ChannelMsgID {
		t.Fatalf("inbound from the fake's notification: %+v", res.Inbound)
	}
	body = whatsapptest.StatusNotification(srv.PhoneNumberID(),
		whatsapptest.Status{ID: "wamid.a", Status: "delivered", RecipientID: "16505551234", At: ts},
		whatsapptest.Status{ID: "wamid.b", Status: "failed", RecipientID: "16505551234", At: ts, Code: 131026, Title: "Message undeliverable"})
	res, err = a.Webhook(context.Background(), acct, srv.WebhookRequest(body))
	if err != nil {
		t.Fatal(err)
	}
	want := []channels.StatusUpdate{
		{AccountID: "acct-fake", ChannelMsgID: "wamid.a", ExternalID: "16505551234", Status: channels.StatusDelivered, At: ts},
		{AccountID: "acct-fake", ChannelMsgID: "wamid.b", ExternalID: "16505551234", Status: channels.StatusFailed, At: ts,
			Code: "131026", Error: "Message undeliverable"},
	}
	if diff := cmp.Diff(want, res.Statuses); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}
