package sessionsql

import (
	"context"
	"encoding/json"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/outbox"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/session"
)

// queueOutbound writes m's row in the durable outbox of its channel
// account, inside the transaction that appended m (DESIGN D8): the message
// exists exactly when its send is queued. The recipient is m.Deliver.To
// when the sender knows it (an answer to the message just received), else
// the contact's identity on the account that wrote last (after a merge a
// contact can have two on one account).
func (s *Store) queueOutbound(ctx context.Context, m session.Message) error {
	ext := m.Deliver.To
	if ext != "" {
		return s.queueTo(ctx, m, ext)
	}
	if err := s.get(ctx, &ext, `SELECT i.external_id FROM conversations c
		JOIN identities i ON i.tenant_id = c.tenant_id AND i.account_id = c.account_id AND i.contact_id = c.contact_id
		WHERE c.tenant_id = ? AND c.id = ?
		ORDER BY i.last_inbound_at DESC NULLS LAST, i.created_at DESC LIMIT 1`, m.TenantID, m.ConversationID); err != nil {
		if errs.Is(err, errs.NotFound) {
			return errs.E("", errs.Conflict, "conversation %s has no identity on account %s to send to", m.ConversationID, m.Deliver.AccountID)
		}
		return err
	}
	return s.queueTo(ctx, m, ext)
}

// queueTo writes m's outbox row addressed to the customer's id ext.
func (s *Store) queueTo(ctx context.Context, m session.Message, ext string) error {
	out := Outbound(m)
	out.ExternalID = ext
	return outbox.Insert(ctx, s.ex, s.db.Dialect, outbox.Item{
		TenantID: m.TenantID, AccountID: m.Deliver.AccountID, ConversationID: m.ConversationID,
		MessageID: m.ID, Out: out, CreatedAt: m.CreatedAt,
	})
}

// Outbound renders a stored outbound message for a provider: text, text
// with choices (buttons or a list where the channel has them, a numbered
// list where not), or a template. Other bodies go as their text.
func Outbound(m session.Message) channels.Outbound {
	var b session.TextBody
	_ = json.Unmarshal(m.Body, &b)
	out := channels.Outbound{MessageID: m.ID, IdempotencyKey: m.ID, Type: channels.MsgText, Text: b.Text}
	if m.Deliver != nil {
		out.AccountID = m.Deliver.AccountID
	}
	if b.Template != nil {
		out.Type, out.Text = channels.MsgTemplate, ""
		out.Template = &channels.Template{Name: b.Template.Name, Language: b.Template.Language, Components: b.Template.Components}
		return out
	}
	if len(b.Choices) > 0 {
		out.Type = channels.MsgInteractive
		for _, c := range b.Choices {
			out.Choices = append(out.Choices, channels.Choice{ID: c.Value, Title: c.Label})
		}
	}
	return out
}
