package sessiontest

import (
	"testing"

	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/session"
)

// testMessageChannelIDDedupe: a provider's message id is stored once per
// conversation (webhook retries, re-pulled pages); the retry changes
// nothing and finds the original.
func testMessageChannelIDDedupe(t *testing.T, f *fixture) {
	conv := f.conversation(TenantA, "acc1", "ext1")
	other := f.conversation(TenantA, "acc1", "ext2")
	m1 := newMessage(conv, "s1", "m1", "hello", "")
	m1.ChannelMsgID = "wamid.A"
	if _, err := f.s.MessageAppend(f.ctx, m1); err != nil {
		t.Fatalf("MessageAppend: %v", err)
	}
	again := newMessage(conv, "s1", "m1-retry", "hello", "")
	again.ChannelMsgID = "wamid.A"
	_, err := f.s.MessageAppend(f.ctx, again)
	wantCode(t, "MessageAppend with a stored channel id", err, errs.Duplicate)

	got, err := f.s.MessageGetByChannelID(f.ctx, TenantA, conv.ID, "wamid.A")
	if err != nil {
		t.Fatalf("MessageGetByChannelID: %v", err)
	}
	if got.ID != "m1" || got.Seq != 1 {
		t.Errorf("MessageGetByChannelID = %s seq %d, want m1 seq 1", got.ID, got.Seq)
	}
	c, err := f.s.ConversationGet(f.ctx, TenantA, conv.ID)
	if err != nil {
		t.Fatalf("ConversationGet: %v", err)
	}
	if c.LastSeq != 1 {
		t.Errorf("LastSeq = %d after a refused duplicate, want 1 (no gap)", c.LastSeq)
	}

	// The same provider id in another conversation is another message.
	m2 := newMessage(other, "s2", "m2", "hello", "")
	m2.ChannelMsgID = "wamid.A"
	if _, err := f.s.MessageAppend(f.ctx, m2); err != nil {
		t.Errorf("same channel id in another conversation: %v", err)
	}
	for _, tc := range []struct{ name, tenant, conv, id string }{
		{"unknown id", TenantA, conv.ID, "wamid.none"},
		{"empty id", TenantA, conv.ID, ""},
		{"other tenant", TenantB, conv.ID, "wamid.A"},
	} {
		_, err := f.s.MessageGetByChannelID(f.ctx, tc.tenant, tc.conv, tc.id)
		wantCode(t, "MessageGetByChannelID "+tc.name, err, errs.NotFound)
	}

	// Outbound messages carry the id the provider gave them after sending;
	// a status callback finds them by it.
	out := newMessage(conv, "s1", "m3", "reply", "")
	out.Direction, out.SenderKind, out.Status = session.Outbound, session.SenderAgent, session.StatusSent
	out.ChannelMsgID = "wamid.B"
	if _, err := f.s.MessageAppend(f.ctx, out); err != nil {
		t.Fatalf("MessageAppend outbound: %v", err)
	}
	if got, err := f.s.MessageGetByChannelID(f.ctx, TenantA, conv.ID, "wamid.B"); err != nil || got.ID != "m3" {
		t.Errorf("MessageGetByChannelID outbound = %s, %v; want m3", got.ID, err)
	}
}
