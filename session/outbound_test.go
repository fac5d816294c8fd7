package session_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/outbox"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
	"github.com/switchboard-acd/switchboard/session"
)

// TestProviderRepliesGoThroughTheOutbox: on a provider channel an agent's
// reply (text or template) is queued in the outbox in the message's own
// transaction, addressed to the customer's identity; on web chat it is
// sent on commit and nothing is queued. Templates are WhatsApp's only.
func TestProviderRepliesGoThroughTheOutbox(t *testing.T) {
	for _, kind := range testenv.DBKinds {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t, kind, "embedded")
			ctx := t.Context()
			wa, err := f.eng.ResolveCustomer(ctx, "t1", "wa-acct", "whatsapp", "16505551234", "Ana")
			if err != nil {
				t.Fatal(err)
			}
			first, _, err := f.eng.Receive(ctx, wa, session.Incoming{ChannelMsgID: "wamid.1", Text: "hi"})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := f.eng.Receive(ctx, wa, session.Incoming{ChannelMsgID: "wamid.2", Text: "agent please"}); err != nil {
				t.Fatal(err)
			}
			if err := f.eng.AgentReady(ctx, "t1", "a1"); err != nil {
				t.Fatal(err)
			}
			a1 := session.Actor{AgentID: "a1"}
			text, _, err := f.eng.Reply(ctx, "t1", first.SessionID, a1, "Hello Ana", "")
			if err != nil {
				t.Fatalf("reply: %v", err)
			}
			if text.Status != session.StatusQueued {
				t.Errorf("provider reply status %s, want queued", text.Status)
			}
			tpl := session.Template{Name: "order_update", Language: "en_US", Components: json.RawMessage(`[{"type":"body","parameters":[{"type":"text","text":"42"}]}]`)}
			tm, _, err := f.eng.ReplyTemplate(ctx, "t1", first.SessionID, a1, tpl, "")
			if err != nil {
				t.Fatalf("template reply: %v", err)
			}
			if tm.Type != session.TypeTemplate || tm.Status != session.StatusQueued {
				t.Errorf("template message %s %s, want template queued", tm.Type, tm.Status)
			}
			for _, bad := range []session.Template{{Name: "Order Update", Language: "en"}, {Name: "x", Language: "english"}, {Name: "x", Language: "en", Components: json.RawMessage(`{}`)}} {
				if _, _, err := f.eng.ReplyTemplate(ctx, "t1", first.SessionID, a1, bad, ""); !errs.Is(err, errs.Invalid) {
					t.Errorf("template %+v: %v, want invalid", bad, err)
				}
			}

			// The conversation's queue, in order (one claimable at a time):
			// the bot's greeting and answers, then the text, then the template.
			ob := outbox.NewStore(f.db)
			var queued []outbox.Item
			for range 20 {
				items, err := ob.Claim(ctx, "test", time.Now().Add(time.Hour), time.Minute, 10)
				if err != nil {
					t.Fatal(err)
				}
				if len(items) == 0 {
					break
				}
				if len(items) != 1 {
					t.Fatalf("claimed %d rows of one conversation at once", len(items))
				}
				queued = append(queued, items[0])
				if err := ob.MarkSent(ctx, items[0].ID, "wamid.out."+items[0].MessageID, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			if len(queued) < 3 {
				t.Fatalf("queued %d rows, want the bot's, the text and the template", len(queued))
			}
			last2 := queued[len(queued)-2:]
			if last2[0].MessageID != text.ID || last2[1].MessageID != tm.ID {
				t.Fatalf("the last two rows are %s, %s; want the text %s then the template %s", last2[0].MessageID, last2[1].MessageID, text.ID, tm.ID)
			}
			out := last2[0].Out
			if out.Type != channels.MsgText || out.Text != "Hello Ana" || out.ExternalID != "16505551234" || last2[0].AccountID != "wa-acct" {
				t.Errorf("queued %+v, want the text to 16505551234 through wa-acct", out)
			}
			if tp := last2[1].Out; tp.Type != channels.MsgTemplate || tp.Template == nil || tp.Template.Name != "order_update" ||
				tp.Template.Language != "en_US" || !sameJSON(tp.Template.Components, tpl.Components) {
				t.Errorf("queued template %+v (%+v), want order_update en_US with its components", tp, tp.Template)
			}

			// The bot's greeting and answers were addressed from the message
			// they answered; the agent's reply by the identity that wrote last.
			for _, it := range queued[:len(queued)-2] {
				if it.Out.ExternalID != "16505551234" {
					t.Errorf("bot row %s addressed to %q, want 16505551234", it.MessageID, it.Out.ExternalID)
				}
			}
			// A sender that names the recipient is obeyed.
			direct := session.Message{TenantID: "t1", ID: "direct-1", ConversationID: first.ConversationID, SessionID: first.SessionID,
				Direction: session.Outbound, SenderKind: session.SenderSystem, Type: session.TypeText, Body: json.RawMessage(`{"text":"x"}`),
				Status: session.StatusQueued, CreatedAt: time.Now(), Deliver: &session.Delivery{AccountID: "wa-acct", Channel: "whatsapp", To: "16505550000"}}
			if _, err := f.eng.Store().MessageAppend(ctx, direct); err != nil {
				t.Fatal(err)
			}
			items, err := ob.Claim(ctx, "test", time.Now().Add(time.Hour), time.Minute, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(items) != 1 || items[0].MessageID != "direct-1" || items[0].Out.ExternalID != "16505550000" {
				t.Errorf("claimed %+v, want direct-1 to 16505550000", items)
			}

			// Web chat: sent on commit, never queued; no templates there.
			m := f.say(t, "c1", "hi")
			f.say(t, "c2", "agent please")
			if err := f.eng.AgentReady(ctx, "t1", "a2"); err != nil {
				t.Fatal(err)
			}
			s := f.get(t, m.SessionID)
			who := session.Actor{AgentID: s.AgentID}
			wm, _, err := f.eng.Reply(ctx, "t1", m.SessionID, who, "hello visitor", "")
			if err != nil {
				t.Fatal(err)
			}
			if wm.Status != session.StatusSent {
				t.Errorf("web-chat reply status %s, want sent", wm.Status)
			}
			if _, _, err := f.eng.ReplyTemplate(ctx, "t1", m.SessionID, who, tpl, ""); !errs.Is(err, errs.Invalid) {
				t.Errorf("template on web chat: %v, want invalid", err)
			}
		})
	}
}

// sameJSON compares two JSON documents by value (PostgreSQL's jsonb
// reorders keys and drops spaces).
func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
