// Package sessiontest is the conformance suite for session.Store. Every
// implementation runs it against fresh stores of its own:
//
//	func TestStore(t *testing.T) {
//		sessiontest.Run(t, func(t *testing.T, tenantIDs ...string) session.Store { ... })
//	}
//
// Besides the interface doc comments, the suite pins down these contracts:
//   - times come back in UTC and with microsecond precision (inputs in the
//     suite are microsecond-exact, in other zones);
//   - Session.ReasonCodes is never nil ([] when empty);
//   - a SessionUpdate conflict carries Details "state" (session.State) and
//     "version" (int64) of the stored session;
//   - ConversationSetCurrent keeps last agent and close time when given ""
//     and nil;
//   - ConversationMarkRead caps the watermark at last_seq and takes only
//     session.SenderContact and session.SenderAgent (else errs.Invalid);
//   - ids of another tenant are NotFound, its lists empty.
package sessiontest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/session"
)

// The tenants Run asks the factory for.
const (
	TenantA = "t1"
	TenantB = "t2"
)

// NewStore returns an empty store of its own for one test whose database
// already holds a tenant for each of tenantIDs (the schema's foreign keys
// want one). It registers its cleanup with t.
type NewStore func(t *testing.T, tenantIDs ...string) session.Store

// Run runs the conformance suite; each subtest gets a fresh store with
// tenants TenantA and TenantB.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"ContactResolve", testContactResolve},
		{"ContactResolveConcurrent", testContactResolveConcurrent},
		{"ContactSetVIP", testContactSetVIP},
		{"ConversationEnsure", testConversationEnsure},
		{"ConversationEnsureConcurrent", testConversationEnsureConcurrent},
		{"ConversationSetCurrent", testConversationSetCurrent},
		{"ConversationMarkRead", testConversationMarkRead},
		{"SessionInsertGet", testSessionInsertGet},
		{"SessionUpdate", testSessionUpdate},
		{"SessionTouch", testSessionTouch},
		{"SessionList", testSessionList},
		{"SessionListPaging", testSessionListPaging},
		{"SessionListDue", testSessionListDue},
		{"SessionCountByState", testSessionCountByState},
		{"SessionCountByBotOutcome", testSessionCountByBotOutcome},
		{"Events", testEvents},
		{"MessageAppend", testMessageAppend},
		{"MessageAppendConcurrent", testMessageAppendConcurrent},
		{"MessageAppendDuplicate", testMessageAppendDuplicate},
		{"MessageChannelIDDedupe", testMessageChannelIDDedupe},
		{"MessageAppendOpen", testMessageAppendOpen},
		{"MessageAppendOpenConcurrent", testMessageAppendOpenConcurrent},
		{"SessionCurrent", testSessionCurrent},
		{"ConversationOpenSession", testConversationOpenSession},
		{"MessageAppendRollback", testMessageAppendRollback},
		{"InTx", testInTx},
		{"MessageListPaging", testMessageListPaging},
		{"MessageListBySession", testMessageListBySession},
		{"MessageSetPinned", testMessageSetPinned},
		{"MessageSetStatus", testMessageSetStatus},
		{"Notes", testNotes},
		{"TenantIsolation", testTenantIsolation},
	}
	tests = append(tests, contactTests...) // contactstore.go
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, &fixture{t: t, ctx: t.Context(), s: newStore(t, TenantA, TenantB)})
		})
	}
}

// t0 is the suite's clock start; microsecond-exact, as stores keep no more.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 123456000, time.UTC)

// zone is a non-UTC zone inputs are given in, to check stores return UTC.
var zone = time.FixedZone("UTC+5", 5*3600)

// at is t0 plus d, expressed in zone.
func at(d time.Duration) time.Time { return t0.Add(d).In(zone) }

func ptr[T any](v T) *T { return &v }

// cmpOpts compares JSON semantically: PostgreSQL's jsonb reorders keys and
// changes spacing.
var cmpOpts = cmp.Options{
	cmp.Transformer("json", func(r json.RawMessage) any {
		if len(r) == 0 {
			return nil
		}
		var v any
		if err := json.Unmarshal(r, &v); err != nil {
			return "invalid JSON: " + string(r)
		}
		return v
	}),
}

// listOpts also treats nil and empty lists as equal.
var listOpts = cmp.Options{cmpOpts, cmpopts.EquateEmpty()}

// fixture carries the store under test and builds the rows tests need.
type fixture struct {
	t   *testing.T
	ctx context.Context
	s   session.Store
}

// conversation resolves a contact and ensures its conversation.
func (f *fixture) conversation(tenantID, accountID, externalID string) session.Conversation {
	f.t.Helper()
	c, err := f.s.ContactResolve(f.ctx, tenantID, accountID, externalID, "Contact "+externalID, t0)
	if err != nil {
		f.t.Fatalf("ContactResolve: %v", err)
	}
	conv, err := f.s.ConversationEnsure(f.ctx, tenantID, accountID, c.ID, t0)
	if err != nil {
		f.t.Fatalf("ConversationEnsure: %v", err)
	}
	return conv
}

// newSession returns a bot session in conv, not stored yet.
func newSession(conv session.Conversation, id string) session.Session {
	return session.Session{
		TenantID:       conv.TenantID,
		ID:             id,
		ConversationID: conv.ID,
		ContactID:      conv.ContactID,
		AccountID:      conv.AccountID,
		Channel:        "webchat",
		State:          session.StateBot,
		Version:        1,
		Cost:           2,
		ReasonCodes:    []string{},
		CreatedAt:      t0,
		LastContactAt:  t0,
	}
}

// insertSession stores a session of conv after applying mut.
func (f *fixture) insertSession(conv session.Conversation, id string, mut func(*session.Session)) session.Session {
	f.t.Helper()
	s := newSession(conv, id)
	if mut != nil {
		mut(&s)
	}
	if err := f.s.SessionInsert(f.ctx, s); err != nil {
		f.t.Fatalf("SessionInsert %s: %v", id, err)
	}
	return s
}

// newMessage returns an inbound text message, not stored yet.
func newMessage(conv session.Conversation, sessionID, id, text, clientID string) session.Message {
	body, _ := json.Marshal(session.TextBody{Text: text})
	return session.Message{
		TenantID:       conv.TenantID,
		ID:             id,
		ConversationID: conv.ID,
		SessionID:      sessionID,
		Direction:      session.Inbound,
		SenderKind:     session.SenderContact,
		SenderID:       conv.ContactID,
		Type:           session.TypeText,
		Body:           body,
		ClientMsgID:    clientID,
		Status:         session.StatusReceived,
		CreatedAt:      at(time.Second),
	}
}

// appendN appends n messages to conv and returns them as stored.
func (f *fixture) appendN(conv session.Conversation, sessionID string, n int) []session.Message {
	f.t.Helper()
	out := make([]session.Message, 0, n)
	for i := range n {
		m, err := f.s.MessageAppend(f.ctx, newMessage(conv, sessionID, fmt.Sprintf("%s-m%d", sessionID, i+1), fmt.Sprintf("message %d", i+1), ""))
		if err != nil {
			f.t.Fatalf("MessageAppend %d: %v", i+1, err)
		}
		out = append(out, m)
	}
	return out
}

// wantCode fails unless err carries code.
func wantCode(t *testing.T, what string, err error, code errs.Code) {
	t.Helper()
	if got := errs.CodeOf(err); got != code {
		t.Errorf("%s: error code %q (%v), want %q", what, got, err, code)
	}
}

func seqs(ms []session.Message) []int64 {
	out := make([]int64, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Seq)
	}
	return out
}

var timeType = reflect.TypeFor[time.Time]()

// checkUTC fails for every time in v (a struct, pointer or slice of them)
// that is not in UTC.
func checkUTC(t *testing.T, v any) {
	t.Helper()
	var walk func(path string, rv reflect.Value)
	walk = func(path string, rv reflect.Value) {
		switch {
		case rv.Type() == timeType:
			if tm := rv.Interface().(time.Time); tm.Location() != time.UTC {
				t.Errorf("%s = %v is not in UTC", path, tm)
			}
		case rv.Kind() == reflect.Pointer:
			if !rv.IsNil() {
				walk(path, rv.Elem())
			}
		case rv.Kind() == reflect.Slice:
			for i := range rv.Len() {
				walk(fmt.Sprintf("%s[%d]", path, i), rv.Index(i))
			}
		case rv.Kind() == reflect.Struct:
			for i := range rv.NumField() {
				if rv.Type().Field(i).IsExported() {
					walk(path+"."+rv.Type().Field(i).Name, rv.Field(i))
				}
			}
		}
	}
	walk(reflect.TypeOf(v).String(), reflect.ValueOf(v))
}
