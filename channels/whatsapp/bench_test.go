package whatsapp_test

import (
	"context"
	"testing"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/whatsapp"
	"github.com/switchboard-acd/switchboard/channels/whatsapp/whatsapptest"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// BenchmarkWebhook is the inbound hot path of one text message: read the
// account's credentials, verify the signature, parse and normalise.
func BenchmarkWebhook(b *testing.B) {
	a := whatsapp.New(whatsapp.Options{})
	acct := sampleAccount(b)
	req := whatsapptest.WebhookRequest(sampleAppSecret, testenv.ChannelSample(b, "whatsapp_inbound_text.json"))
	ctx := context.Background()
	b.SetBytes(int64(len(req.Body)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := a.Webhook(ctx, acct, req)
		if err != nil || len(res.Inbound) != 1 {
			b.Fatalf("%v %d", err, len(res.Inbound))
		}
	}
}

// BenchmarkWebhookStatus is the same for one delivery status.
func BenchmarkWebhookStatus(b *testing.B) {
	a := whatsapp.New(whatsapp.Options{})
	acct := sampleAccount(b)
	req := whatsapptest.WebhookRequest(sampleAppSecret, testenv.ChannelSample(b, "whatsapp_status_delivered.json"))
	ctx := context.Background()
	b.SetBytes(int64(len(req.Body)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := a.Webhook(ctx, acct, req)
		if err != nil || len(res.Statuses) != 1 {
			b.Fatalf("%v %d", err, len(res.Statuses))
		}
	}
}

// BenchmarkSend is one text send through the fake Graph API over loopback
// HTTP: mostly the HTTP round trip, the adapter's share is the rest.
func BenchmarkSend(b *testing.B) {
	srv := whatsapptest.New(b)
	a := whatsapp.New(whatsapp.Options{HTTPClient: srv.Client()})
	acct := srv.Account("t1", "a")
	out := channels.Outbound{ExternalID: "16505551234", Type: channels.MsgText, Text: "Your order has shipped."}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Send(ctx, acct, out); err != nil {
			b.Fatal(err)
		}
	}
}
