package whatsapptest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
)

// SignatureHeader is the header Meta signs notifications with.
const SignatureHeader = "X-Hub-Signature-256"

// Sign returns the X-Hub-Signature-256 value of body: "sha256=" and the
// hex HMAC-SHA256 keyed with the app secret. It is computed here rather
// than by the adapter so that tests check one against the other.
func Sign(appSecret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// WebhookRequest is a signed notification as the adapter receives it
// from the HTTP layer.
func WebhookRequest(appSecret string, body []byte) channels.WebhookRequest {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(SignatureHeader, Sign(appSecret, body))
	return channels.WebhookRequest{Method: http.MethodPost, URL: "https://switchboard.example/webhooks/whatsapp",
		Query: url.Values{}, Header: h, Body: body}
}

// WebhookRequest is a notification signed with the fake account's app
// secret.
func (s *Server) WebhookRequest(body []byte) channels.WebhookRequest {
	return WebhookRequest(s.appSecret, body)
}

// HandshakeRequest is Meta's GET subscription request.
func HandshakeRequest(verifyToken, challenge string) channels.WebhookRequest {
	q := url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {verifyToken}, "hub.challenge": {challenge}}
	return channels.WebhookRequest{Method: http.MethodGet,
		URL: "https://switchboard.example/webhooks/whatsapp?" + q.Encode(), Query: q, Header: http.Header{}}
}

// NewWebhookPost builds the HTTP request Meta would make to deliver body
// to target, signed with appSecret: for tests and load generators that
// drive the real HTTP ingest route.
func NewWebhookPost(ctx context.Context, target, appSecret string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(appSecret, body))
	return req, nil
}

// Text is one inbound text message of a notification.
type Text struct {
	// From is the customer's wa_id; Name their profile name.
	From string
	Name string
	// ID is the wamid; a unique one is derived from From and At when empty.
	ID   string
	Body string
	At   time.Time
	// ReplyTo makes it a reply to one of our messages (context.id).
	ReplyTo string
}

// Status is one delivery status of a notification.
type Status struct {
	// ID is the wamid the send returned.
	ID string
	// Status is sent, delivered, read or failed.
	Status      string
	RecipientID string
	At          time.Time
	// Code, Title and Details describe a failure.
	Code    int
	Title   string
	Details string
}

// TextNotification is a real-shaped notification of text messages to the
// business number phoneNumberID.
func TextNotification(phoneNumberID string, msgs ...Text) []byte {
	type contact struct {
		Profile struct {
			Name string `json:"name"`
		} `json:"profile"`
		WAID string `json:"wa_id"`
	}
	var contacts []contact
	seen := map[string]bool{}
	var messages []map[string]any
	for i, m := range msgs {
		if !seen[m.From] {
			seen[m.From] = true
			c := contact{WAID: m.From}
			c.Profile.Name = m.Name
			contacts = append(contacts, c)
		}
		id := m.ID
		if id == "" {
			id = "wamid.in." + m.From + "." + strconv.FormatInt(m.At.UnixNano(), 36) + "." + strconv.Itoa(i)
		}
		msg := map[string]any{
			"from": m.From, "id": id, "timestamp": strconv.FormatInt(m.At.Unix(), 10),
			"type": "text", "text": map[string]string{"body": m.Body},
		}
		if m.ReplyTo != "" {
			msg["context"] = map[string]string{"from": phoneNumberID, "id": m.ReplyTo}
		}
		messages = append(messages, msg)
	}
	return notification(phoneNumberID, map[string]any{"contacts": contacts, "messages": messages})
}

// StatusNotification is a real-shaped notification of delivery statuses
// of messages sent from phoneNumberID.
func StatusNotification(phoneNumberID string, sts ...Status) []byte {
	var statuses []map[string]any
	for _, s := range sts {
		st := map[string]any{
			"id": s.ID, "status": s.Status, "timestamp": strconv.FormatInt(s.At.Unix(), 10), "recipient_id": s.RecipientID,
		}
		if s.Status == "failed" || s.Code != 0 {
			st["errors"] = []map[string]any{{
				"code": s.Code, "title": s.Title, "message": s.Title,
				"error_data": map[string]string{"details": s.Details},
				"href":       "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
			}}
		} else {
			st["conversation"] = map[string]any{"id": "7270432eae37498234f4444b35ffc5", "origin": map[string]string{"type": "service"}}
			st["pricing"] = map[string]any{"billable": true, "pricing_model": "CBP", "category": "service"}
		}
		statuses = append(statuses, st)
	}
	return notification(phoneNumberID, map[string]any{"statuses": statuses})
}

// notification wraps a change value in the envelope.
func notification(phoneNumberID string, value map[string]any) []byte {
	value["messaging_product"] = "whatsapp"
	value["metadata"] = map[string]string{"display_phone_number": "15550783881", "phone_number_id": phoneNumberID}
	b, err := json.Marshal(map[string]any{
		"object": "whatsapp_business_account",
		"entry": []map[string]any{{
			"id":      WABAID,
			"changes": []map[string]any{{"value": value, "field": "messages"}},
		}},
	})
	if err != nil {
		panic(err) // maps of strings and numbers always encode
	}
	return b
}
