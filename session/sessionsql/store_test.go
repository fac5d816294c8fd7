package sessionsql_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
	"github.com/switchboard-acd/switchboard/session"
	"github.com/switchboard-acd/switchboard/session/sessionsql"
	"github.com/switchboard-acd/switchboard/session/sessiontest"
)

// newDB opens a migrated database of kind holding the given tenants.
func newDB(t testing.TB, kind string, tenantIDs ...string) *db.DB {
	t.Helper()
	d := testenv.DB(t, kind)
	for _, id := range tenantIDs {
		if _, err := d.ExecContext(t.Context(), d.Rebind(`INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)`),
			id, "Tenant "+id, time.Now().UTC()); err != nil {
			t.Fatalf("insert tenant %s: %v", id, err)
		}
	}
	return d
}

func TestStore(t *testing.T) {
	for _, kind := range testenv.DBKinds {
		t.Run(kind, func(t *testing.T) {
			sessiontest.Run(t, func(t *testing.T, tenantIDs ...string) session.Store {
				return sessionsql.New(newDB(t, kind, tenantIDs...))
			})
		})
	}
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture makes a contact, conversation and session of tenant t1 in d.
func fixture(t testing.TB, d *db.DB) (*sessionsql.Store, session.Conversation, session.Session) {
	t.Helper()
	s := sessionsql.New(d)
	ctx := t.Context()
	c, err := s.ContactResolve(ctx, "t1", "acc1", "ext1", "Ada", t0)
	if err != nil {
		t.Fatalf("ContactResolve: %v", err)
	}
	conv, err := s.ConversationEnsure(ctx, "t1", "acc1", c.ID, t0)
	if err != nil {
		t.Fatalf("ConversationEnsure: %v", err)
	}
	se := session.Session{
		TenantID: "t1", ID: "s1", ConversationID: conv.ID, ContactID: c.ID, AccountID: "acc1",
		Channel: "webchat", State: session.StateBot, Version: 1, CreatedAt: t0, LastContactAt: t0,
	}
	if err := s.SessionInsert(ctx, se); err != nil {
		t.Fatalf("SessionInsert: %v", err)
	}
	return s, conv, se
}

func message(conv session.Conversation, id, clientID string) session.Message {
	return session.Message{
		TenantID: conv.TenantID, ID: id, ConversationID: conv.ID, SessionID: "s1",
		Direction: session.Inbound, SenderKind: session.SenderContact, Type: session.TypeText,
		Body: json.RawMessage(`{"text":"hi"}`), ClientMsgID: clientID, Status: session.StatusReceived, CreatedAt: t0,
	}
}

// A duplicate client id inside a caller's transaction does not poison it,
// although PostgreSQL aborts a transaction on a raised unique violation.
func TestMessageAppendDuplicateKeepsTxUsable(t *testing.T) {
	for _, kind := range testenv.DBKinds {
		t.Run(kind, func(t *testing.T) {
			s, conv, _ := fixture(t, newDB(t, kind, "t1"))
			ctx := t.Context()
			if _, err := s.MessageAppend(ctx, message(conv, "m1", "c1")); err != nil {
				t.Fatalf("MessageAppend: %v", err)
			}
			err := s.InTx(ctx, func(tx session.Store) error {
				if _, err := tx.MessageAppend(ctx, message(conv, "m2", "c1")); !errs.Is(err, errs.Duplicate) {
					return fmt.Errorf("want a duplicate, got %v", err)
				}
				orig, err := tx.MessageGetByClientID(ctx, "t1", conv.ID, "c1")
				if err != nil {
					return fmt.Errorf("read the original in the same transaction: %w", err)
				}
				if orig.ID != "m1" {
					return fmt.Errorf("original is %s, want m1", orig.ID)
				}
				m, err := tx.MessageAppend(ctx, message(conv, "m3", "c3"))
				if err != nil {
					return err
				}
				if m.Seq != 2 {
					return fmt.Errorf("seq after the duplicate = %d, want 2", m.Seq)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("InTx: %v", err)
			}
			c, err := s.ConversationGet(ctx, "t1", conv.ID)
			if err != nil || c.LastSeq != 2 {
				t.Fatalf("after commit: last_seq %d, %v; want 2", c.LastSeq, err)
			}
		})
	}
}

// Empty strings are stored as NULL, empty reason codes as a JSON array and
// times in UTC, so SQL written elsewhere (reports, KPIs) sees clean columns.
func TestStoredRepresentation(t *testing.T) {
	for _, kind := range testenv.DBKinds {
		t.Run(kind, func(t *testing.T) {
			d := newDB(t, kind, "t1")
			s, conv, se := fixture(t, d)
			ctx := t.Context()
			if _, err := s.MessageAppend(ctx, message(conv, "m1", "")); err != nil {
				t.Fatalf("MessageAppend: %v", err)
			}
			if err := s.EventInsert(ctx, session.EventRecord{TenantID: "t1", SessionID: se.ID, Type: session.EvCreated, At: t0}); err != nil {
				t.Fatalf("EventInsert: %v", err)
			}
			checks := []struct{ name, query string }{
				{"session nullable text", `SELECT COUNT(*) FROM sessions WHERE group_id IS NULL AND agent_id IS NULL`},
				{"session reason codes", `SELECT COUNT(*) FROM sessions WHERE reason_codes = '[]'`},
				{"conversation nullable columns", `SELECT COUNT(*) FROM conversations WHERE current_session_id IS NULL AND last_agent_id IS NULL AND last_closed_at IS NULL`},
				{"message nullable text", `SELECT COUNT(*) FROM messages WHERE client_msg_id IS NULL AND channel_msg_id IS NULL`},
				{"event nullable text and data", `SELECT COUNT(*) FROM session_events WHERE agent_id IS NULL AND group_id IS NULL AND data = '{}'`},
			}
			if kind == "sqlite" {
				checks = append(checks, struct{ name, query string }{
					"times as UTC text", `SELECT COUNT(*) FROM sessions WHERE created_at = '2025-03-01 12:00:00+00:00'`,
				})
			}
			for _, c := range checks {
				var n int
				if err := d.GetContext(ctx, &n, c.query); err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if n != 1 {
					t.Errorf("%s: %d matching rows, want 1", c.name, n)
				}
			}
		})
	}
}

func TestInvalidJSONIsRefused(t *testing.T) {
	s, conv, se := fixture(t, newDB(t, "sqlite", "t1"))
	m := message(conv, "m1", "")
	m.Body = json.RawMessage(`{"text":`)
	_, err := s.MessageAppend(t.Context(), m)
	if !errs.Is(err, errs.Invalid) {
		t.Errorf("MessageAppend with a broken body: %v, want invalid", err)
	}
	err = s.EventInsert(t.Context(), session.EventRecord{TenantID: "t1", SessionID: se.ID, Type: session.EvCreated, Data: json.RawMessage(`nope`), At: t0})
	if !errs.Is(err, errs.Invalid) {
		t.Errorf("EventInsert with broken data: %v, want invalid", err)
	}
	if c, err := s.ConversationGet(t.Context(), "t1", conv.ID); err != nil || c.LastSeq != 0 {
		t.Errorf("conversation after refused append: last_seq %d, %v; want 0", c.LastSeq, err)
	}
}

func TestErrorsCarryTheOperation(t *testing.T) {
	s := sessionsql.New(newDB(t, "sqlite", "t1"))
	_, err := s.SessionGet(t.Context(), "t1", "nope")
	var e *errs.Error
	if !errors.As(err, &e) {
		t.Fatalf("SessionGet error %T is not *errs.Error", err)
	}
	type opCode struct {
		Op   string
		Code errs.Code
	}
	if diff := cmp.Diff(opCode{"sessionsql.SessionGet", errs.NotFound}, opCode{e.Op, errs.CodeOf(err)}); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
}

// BenchmarkMessageAppend measures appends from parallel writers, each to a
// conversation of its own (the normal case) and all to one conversation
// (serialised on its row lock).
func BenchmarkMessageAppend(b *testing.B) {
	for _, kind := range testenv.DBKinds {
		b.Run(kind, func(b *testing.B) {
			s := sessionsql.New(newDB(b, kind, "t1"))
			var n atomic.Int64
			newConversation := func(ctx context.Context) (session.Conversation, error) {
				c, err := s.ContactResolve(ctx, "t1", "acc1", fmt.Sprintf("ext%d", n.Add(1)), "", t0)
				if err != nil {
					return session.Conversation{}, err
				}
				return s.ConversationEnsure(ctx, "t1", "acc1", c.ID, t0)
			}
			run := func(b *testing.B, conv func() (session.Conversation, error)) {
				b.ReportAllocs()
				// Appends wait on the database, not the CPU: run more
				// writers than GOMAXPROCS.
				b.SetParallelism(8)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					c, err := conv()
					if err != nil {
						b.Errorf("conversation: %v", err)
						return
					}
					for pb.Next() {
						if _, err := s.MessageAppend(b.Context(), message(c, "", "")); err != nil {
							b.Errorf("MessageAppend: %v", err)
							return
						}
					}
				})
			}
			b.Run("conversation-per-writer", func(b *testing.B) {
				run(b, func() (session.Conversation, error) { return newConversation(b.Context()) })
			})
			b.Run("one-conversation", func(b *testing.B) {
				shared, err := newConversation(b.Context())
				if err != nil {
					b.Fatalf("conversation: %v", err)
				}
				run(b, func() (session.Conversation, error) { return shared, nil })
			})
		})
	}
}
