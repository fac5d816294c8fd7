package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/sms/smstest"
	"github.com/switchboard-acd/switchboard/channels/wecomkf/wecomkftest"
	"github.com/switchboard-acd/switchboard/channels/whatsapp/whatsapptest"
	"github.com/switchboard-acd/switchboard/internal/apptest"
)

// waCustomer is the WhatsApp user of these tests.
const waCustomer = "16505551234"

// TestWhatsAppEndToEnd drives a WhatsApp account through the real node and
// a fake Graph API: the signed webhook is stored and answered by the bot,
// the answer leaves through the outbox, retries survive a provider outage
// in order, delivery callbacks reach the message, and retried or forged
// webhooks change nothing.
func TestWhatsAppEndToEnd(t *testing.T) {
	for _, backend := range apptest.Backends {
		t.Run(backend, func(t *testing.T) {
			n := apptest.Start(t, backend)
			fake := whatsapptest.New(t)
			admin := n.Login(t, "admin")
			sup := n.Login(t, "supervisor")
			key := createWhatsAppAccount(t, n, admin, fake)

			// A customer writes; the webhook answers only once it is stored.
			hello := whatsapptest.TextNotification(fake.PhoneNumberID(), whatsapptest.Text{
				From: waCustomer, Name: "Ana", ID: "wamid.in.1", Body: "hello", At: time.Now()})
			if st, body := postWebhook(t, n, key, fake.AppSecret(), hello); st != 200 {
				t.Fatalf("webhook: %d %s", st, body)
			}
			sess := waitSession(t, n, sup)
			msgs := sessionMessages(t, n, sup, sess)
			if len(msgs) == 0 || msgs[0].Direction != "in" || msgs[0].Body.Text != "hello" || msgs[0].ChannelMsgID != "wamid.in.1" {
				t.Fatalf("first message = %+v, want the customer's hello", msgs)
			}
			// The agent sees the 24-hour window, open since the customer wrote.
			var view struct {
				Window *struct {
					Hours  int       `json:"hours"`
					Open   bool      `json:"open"`
					EndsAt time.Time `json:"ends_at"`
				} `json:"window"`
			}
			n.Do(t, "GET", "/api/v1/sessions/"+sess, sup, nil).JSON(t, &view)
			if w := view.Window; w == nil || w.Hours != 24 || !w.Open || time.Until(w.EndsAt) < 23*time.Hour {
				t.Errorf("window = %+v, want 24 h, open, ending in about a day", w)
			}

			// The bot's answer leaves through the outbox to the customer.
			first := waitSent(t, fake, 1)
			if first[0].To != waCustomer {
				t.Errorf("sent to %q, want %q", first[0].To, waCustomer)
			}
			out := waitMessage(t, n, sup, sess, func(m apiMessage) bool {
				return m.Direction == "out" && m.ChannelMsgID == first[0].ID && m.Status == "sent"
			})

			// Webhook retries and forged calls store nothing.
			count := len(sessionMessages(t, n, sup, sess))
			if st, _ := postWebhook(t, n, key, fake.AppSecret(), hello); st != 200 {
				t.Errorf("retried webhook: %d, want 200", st)
			}
			waitInbound(t, n)
			forged := bytes.Replace(hello, []byte("hello"), []byte("hullo"), 1)
			if st, _ := postWebhookSigned(t, n, key, whatsapptest.Sign(fake.AppSecret(), hello), forged); st != 401 {
				t.Errorf("forged webhook: %d, want 401", st)
			}
			if st, _ := postWebhook(t, n, key, "wrong-secret", hello); st != 401 {
				t.Errorf("webhook signed with another secret: %d, want 401", st)
			}
			if st, _ := postWebhook(t, n, "no-such-key", fake.AppSecret(), hello); st != 404 {
				t.Errorf("webhook for an unknown account: %d, want 404", st)
			}
			waitInbound(t, n)
			if got := len(sessionMessages(t, n, sup, sess)); got != count {
				t.Errorf("messages after retried and forged webhooks = %d, want %d", got, count)
			}

			// Delivery callbacks move the message forward, never back.
			statuses := whatsapptest.StatusNotification(fake.PhoneNumberID(),
				whatsapptest.Status{ID: out.ChannelMsgID, Status: "read", RecipientID: waCustomer, At: time.Now()},
				whatsapptest.Status{ID: out.ChannelMsgID, Status: "delivered", RecipientID: waCustomer, At: time.Now()})
			if st, body := postWebhook(t, n, key, fake.AppSecret(), statuses); st != 200 {
				t.Fatalf("status webhook: %d %s", st, body)
			}
			waitMessage(t, n, sup, sess, func(m apiMessage) bool { return m.ID == out.ID && m.Status == "read" })

			// The provider fails for a while: the next answers wait, retry
			// and arrive in order.
			fake.Fail(whatsapptest.Fault{Status: 500, Times: 2})
			again := whatsapptest.TextNotification(fake.PhoneNumberID(), whatsapptest.Text{
				From: waCustomer, Name: "Ana", ID: "wamid.in.2", Body: "opening hours", At: time.Now()})
			if st, body := postWebhook(t, n, key, fake.AppSecret(), again); st != 200 {
				t.Fatalf("webhook: %d %s", st, body)
			}
			before := len(first)
			sent := waitSent(t, fake, before+1)
			var outIDs []string
			for _, m := range sessionMessages(t, n, sup, sess) {
				if m.Direction == "out" {
					outIDs = append(outIDs, m.ChannelMsgID)
				}
			}
			waitMessage(t, n, sup, sess, func(m apiMessage) bool {
				return m.Direction == "out" && m.Seq > out.Seq && m.Status == "sent"
			})
			for i, m := range sent {
				if i < len(outIDs) && outIDs[i] != "" && outIDs[i] != m.ID {
					t.Errorf("send %d went out as %s, but message %d of the session is %s: order not kept", i, m.ID, i, outIDs[i])
				}
			}
		})
	}
}

func createWhatsAppAccount(t *testing.T, n *apptest.Node, admin string, fake *whatsapptest.Server) string {
	t.Helper()
	r := n.Do(t, "POST", "/api/v1/channel-accounts", admin, map[string]any{
		"type": "whatsapp", "name": "WhatsApp test", "credentials": json.RawMessage(fake.Credentials()),
	})
	if r.Status != 201 {
		t.Fatalf("create account: %d %s", r.Status, r.Body)
	}
	var acct struct {
		PublicKey  string `json:"public_key"`
		WebhookURL string `json:"webhook_url"`
	}
	r.JSON(t, &acct)
	if !strings.HasSuffix(acct.WebhookURL, "/webhooks/"+acct.PublicKey) {
		t.Errorf("webhook_url = %q, want …/webhooks/%s", acct.WebhookURL, acct.PublicKey)
	}
	// Meta's verification handshake.
	res, err := http.Get(fmt.Sprintf("%s/webhooks/%s?hub.mode=subscribe&hub.verify_token=%s&hub.challenge=1158201444", n.URL, acct.PublicKey, fake.VerifyToken()))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "1158201444" {
		t.Errorf("handshake: %d %q, want 200 1158201444", res.StatusCode, body)
	}
	return acct.PublicKey
}

// waitInbound waits until the node has taken every accepted webhook
// message into its conversation.
func waitInbound(t *testing.T, n *apptest.Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := n.App.WaitInbound(ctx); err != nil {
		t.Fatalf("inbound messages not taken in: %v", err)
	}
}

func postWebhook(t *testing.T, n *apptest.Node, key, secret string, body []byte) (int, string) {
	return postWebhookSigned(t, n, key, whatsapptest.Sign(secret, body), body)
}

func postWebhookSigned(t *testing.T, n *apptest.Node, key, signature string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", n.URL+"/webhooks/"+key, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", signature)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

type apiMessage struct {
	ID           string `json:"id"`
	Seq          int64  `json:"seq"`
	Direction    string `json:"direction"`
	Status       string `json:"status"`
	ChannelMsgID string `json:"channel_msg_id"`
	Body         struct {
		Text string `json:"text"`
	} `json:"body"`
}

// waitSession returns the id of the WhatsApp session, once there is one.
func waitSession(t *testing.T, n *apptest.Node, token string) string {
	t.Helper()
	var id string
	poll(t, "a whatsapp session", func() bool {
		r := n.Do(t, "GET", "/api/v1/sessions", token, nil)
		var out struct {
			Sessions []struct {
				ID      string `json:"id"`
				Channel string `json:"channel"`
			} `json:"sessions"`
		}
		r.JSON(t, &out)
		for _, s := range out.Sessions {
			if s.Channel == "whatsapp" {
				id = s.ID
				return true
			}
		}
		return false
	})
	return id
}

func sessionMessages(t *testing.T, n *apptest.Node, token, sessionID string) []apiMessage {
	t.Helper()
	r := n.Do(t, "GET", "/api/v1/sessions/"+sessionID+"/messages", token, nil)
	if r.Status != 200 {
		t.Fatalf("messages: %d %s", r.Status, r.Body)
	}
	var out struct {
		Messages []apiMessage `json:"messages"`
	}
	r.JSON(t, &out)
	return out.Messages
}

func waitMessage(t *testing.T, n *apptest.Node, token, sessionID string, match func(apiMessage) bool) apiMessage {
	t.Helper()
	var got apiMessage
	poll(t, "a matching message", func() bool {
		for _, m := range sessionMessages(t, n, token, sessionID) {
			if match(m) {
				got = m
				return true
			}
		}
		return false
	})
	return got
}

func waitSent(t *testing.T, fake *whatsapptest.Server, n int) []whatsapptest.Message {
	t.Helper()
	var sent []whatsapptest.Message
	poll(t, fmt.Sprintf("%d sends at the provider", n), func() bool {
		sent = fake.Sent()
		return len(sent) >= n
	})
	return sent
}

// poll waits up to 20 s for cond (the outbox retries with backoff).
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWeComEndToEnd: a WeCom customer-service callback makes the node pull
// from the account's cursor, the message opens a session, the customer is
// put in the state in which WeCom lets us answer, and the bot's answer
// goes out through send_msg. A repeated callback stores nothing twice.
func TestWeComEndToEnd(t *testing.T) {
	for _, backend := range apptest.Backends {
		t.Run(backend, func(t *testing.T) {
			n := apptest.Start(t, backend)
			fake := wecomkftest.NewServer()
			t.Cleanup(fake.Close)
			admin := n.Login(t, "admin")
			sup := n.Login(t, "supervisor")
			r := n.Do(t, "POST", "/api/v1/channel-accounts", admin, map[string]any{
				"type": "wecom_kf", "name": "WeCom test", "credentials": json.RawMessage(fake.Credentials()),
			})
			if r.Status != 201 {
				t.Fatalf("create account: %d %s", r.Status, r.Body)
			}
			var acct struct {
				PublicKey string `json:"public_key"`
			}
			r.JSON(t, &acct)
			hook := n.URL + "/webhooks/" + acct.PublicKey

			// URL verification when the callback is saved.
			if st, body := doWebhook(t, fake.VerifyRequest(t, hook, "echo-4711")); st != 200 || body != "echo-4711" {
				t.Errorf("verification: %d %q, want 200 echo-4711", st, body)
			}

			fake.AddMessages(fake.Customer("kfmsg-1", "wmCustomer1", "text", map[string]any{"content": "hello"}))
			req, _ := fake.Doorbell(t, hook)
			if st, body := doWebhook(t, req); st != 200 {
				t.Fatalf("callback: %d %s", st, body)
			}
			var sess string
			poll(t, "a wecom session", func() bool {
				r := n.Do(t, "GET", "/api/v1/sessions", sup, nil)
				var out struct {
					Sessions []struct {
						ID      string `json:"id"`
						Channel string `json:"channel"`
					} `json:"sessions"`
				}
				r.JSON(t, &out)
				for _, s := range out.Sessions {
					if s.Channel == "wecom_kf" {
						sess = s.ID
						return true
					}
				}
				return false
			})
			msgs := sessionMessages(t, n, sup, sess)
			if len(msgs) == 0 || msgs[0].Body.Text != "hello" || msgs[0].ChannelMsgID != "kfmsg-1" {
				t.Fatalf("first message = %+v, want the customer's hello", msgs)
			}
			poll(t, "the customer in state 1 (smart assistant)", func() bool {
				st, _ := fake.State("wmCustomer1")
				return st == 1
			})
			poll(t, "the bot's answer at WeCom", func() bool {
				for _, s := range fake.Sent() {
					if s.ToUser == "wmCustomer1" {
						return true
					}
				}
				return false
			})

			// The same callback again: the cursor moved on, nothing new.
			count := len(sessionMessages(t, n, sup, sess))
			req, _ = fake.Doorbell(t, hook)
			if st, body := doWebhook(t, req); st != 200 {
				t.Fatalf("callback: %d %s", st, body)
			}
			n.App.WaitPulls()
			waitInbound(t, n)
			if got := len(sessionMessages(t, n, sup, sess)); got != count {
				t.Errorf("messages after a repeated callback = %d, want %d", got, count)
			}
		})
	}
}

// doWebhook sends a provider request built by a fake to the node.
func doWebhook(t *testing.T, wr channels.WebhookRequest) (int, string) {
	t.Helper()
	req, err := http.NewRequest(wr.Method, wr.URL, bytes.NewReader(wr.Body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range wr.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestWhatsAppFallsBackToSMS: the customer's 24-hour window is closed at
// WhatsApp, so the bot's answer is refused there (131047); the account
// falls back to its SMS account, which sends the text to the customer's
// WhatsApp number, and the message ends up sent, not failed.
func TestWhatsAppFallsBackToSMS(t *testing.T) {
	for _, backend := range apptest.Backends {
		t.Run(backend, func(t *testing.T) {
			n := apptest.Start(t, backend)
			wa := whatsapptest.New(t)
			sms := smstest.NewServer("AC0123456789abcdef0123456789abcdef", "sms-auth-token")
			t.Cleanup(sms.Close)
			admin := n.Login(t, "admin")
			sup := n.Login(t, "supervisor")

			r := n.Do(t, "POST", "/api/v1/channel-accounts", admin, map[string]any{
				"type": "sms", "name": "SMS fallback", "credentials": json.RawMessage(sms.Credentials("+15005550006", "")),
			})
			if r.Status != 201 {
				t.Fatalf("create sms account: %d %s", r.Status, r.Body)
			}
			var smsAcct struct {
				ID string `json:"id"`
			}
			r.JSON(t, &smsAcct)
			r = n.Do(t, "POST", "/api/v1/channel-accounts", admin, map[string]any{
				"type": "whatsapp", "name": "WhatsApp with fallback", "credentials": json.RawMessage(wa.Credentials()),
				"settings": map[string]any{"fallback_account_id": smsAcct.ID},
			})
			if r.Status != 201 {
				t.Fatalf("create whatsapp account: %d %s", r.Status, r.Body)
			}
			var waAcct struct {
				PublicKey string `json:"public_key"`
			}
			r.JSON(t, &waAcct)

			wa.CloseWindow(waCustomer)
			hello := whatsapptest.TextNotification(wa.PhoneNumberID(), whatsapptest.Text{
				From: waCustomer, Name: "Ana", ID: "wamid.fb.1", Body: "hello", At: time.Now()})
			if st, body := postWebhook(t, n, waAcct.PublicKey, wa.AppSecret(), hello); st != 200 {
				t.Fatalf("webhook: %d %s", st, body)
			}
			poll(t, "the answer by SMS", func() bool { return len(sms.Messages()) > 0 })
			got := sms.Messages()[0]
			if got.To != "+"+waCustomer || got.Body == "" {
				t.Errorf("SMS to %q with %q, want to +%s with the bot's text", got.To, got.Body, waCustomer)
			}
			if len(wa.Sent()) != 0 {
				t.Errorf("WhatsApp accepted %d sends with the window closed", len(wa.Sent()))
			}
			sess := waitSession(t, n, sup)
			waitMessage(t, n, sup, sess, func(m apiMessage) bool {
				return m.Direction == "out" && m.Status == "sent" && m.ChannelMsgID == got.SID
			})
		})
	}
}
