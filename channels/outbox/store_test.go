package outbox_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jmoiron/sqlx"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/outbox"
	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

func wantCode(t *testing.T, what string, err error, code errs.Code) {
	t.Helper()
	if !errs.Is(err, code) {
		t.Errorf("%s: error %v, want %s", what, err, code)
	}
}

func ids(its []outbox.Item) []string {
	out := make([]string, len(its))
	for i, it := range its {
		out[i] = it.MessageID
	}
	return out
}

func TestInsert(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		in := item("wa", "c1", 1, t0)
		in.Out.Media = &channels.Media{URL: "https://example.com/a.jpg"}
		id, err := e.store.Insert(ctx, in)
		if err != nil {
			t.Fatalf("Insert: %v", err)
		}
		got, err := e.store.Get(ctx, tenant, id)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		want := in
		want.ID, want.State, want.NextAt, want.QueuedAt = id, outbox.StatePending, t0, t0
		want.Out.AccountID, want.Out.MessageID, want.Out.IdempotencyKey = "wa", in.MessageID, in.MessageID
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("stored item (-want +got):\n%s", d)
		}
		if _, err := e.store.Get(ctx, "t2", id); !errs.Is(err, errs.NotFound) {
			t.Errorf("Get from another tenant: %v, want not_found", err)
		}

		for _, tc := range []struct {
			name string
			mod  func(*outbox.Item)
		}{
			{"no tenant", func(it *outbox.Item) { it.TenantID = "" }},
			{"no account", func(it *outbox.Item) { it.AccountID = "" }},
			{"no conversation", func(it *outbox.Item) { it.ConversationID = " " }},
			{"no message", func(it *outbox.Item) { it.MessageID = "" }},
			{"no type", func(it *outbox.Item) { it.Out.Type = "" }},
			{"no created_at", func(it *outbox.Item) { it.CreatedAt = time.Time{} }},
		} {
			it := item("wa", "c1", 9, t0)
			tc.mod(&it)
			_, err := e.store.Insert(ctx, it)
			wantCode(t, "Insert "+tc.name, err, errs.Invalid)
		}

		// The same message through the same account is refused, and on
		// PostgreSQL the caller's transaction goes on.
		err = e.db.InTx(ctx, func(tx *sqlx.Tx) error {
			wantCode(t, "Insert duplicate", outbox.Insert(ctx, tx, e.db.Dialect, in), errs.Duplicate)
			return outbox.Insert(ctx, tx, e.db.Dialect, item("wa", "c1", 2, t0))
		})
		if err != nil {
			t.Fatalf("transaction after a refused duplicate: %v", err)
		}
		// Through another account it is another row (a fallback).
		other := in
		other.AccountID = "sms"
		if _, err := e.store.Insert(ctx, other); err != nil {
			t.Errorf("same message through another account: %v", err)
		}
		if n := e.states(t)[outbox.StatePending]; n != 3 {
			t.Errorf("%d pending rows, want 3", n)
		}
	})
}

// TestInsertRolledBackIsNotQueued: the outbox row is written with the
// message in one transaction; a rollback leaves neither.
func TestInsertRolledBackIsNotQueued(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		errAbort := errs.E("test", errs.Conflict, "abort")
		err := e.db.InTx(ctx, func(tx *sqlx.Tx) error {
			if err := insertMessage(ctx, tx, e.db.Dialect, "c1", "c1/0001"); err != nil {
				return err
			}
			if err := outbox.Insert(ctx, tx, e.db.Dialect, item("wa", "c1", 1, t0)); err != nil {
				return err
			}
			return errAbort
		})
		if err != errAbort {
			t.Fatalf("InTx = %v, want the abort", err)
		}
		var n int
		if err := e.db.GetContext(ctx, &n, `SELECT (SELECT COUNT(*) FROM outbox) + (SELECT COUNT(*) FROM messages)`); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d rows left after rollback, want 0", n)
		}
		got, err := e.store.Claim(ctx, "n1", t0.Add(time.Hour), time.Minute, 10)
		if err != nil || len(got) != 0 {
			t.Errorf("Claim after rollback = %v, %v; want nothing", ids(got), err)
		}
	})
}

// insertMessage stores a bare outbound message row, as the session store
// does before queueing it.
func insertMessage(ctx context.Context, ex db.Executor, d db.Dialect, conv, id string) error {
	q := `INSERT INTO messages (tenant_id, id, conversation_id, session_id, seq, direction, sender_kind, type, body, status, created_at)
		VALUES (?, ?, ?, 's1', 1, 'out', 'agent', 'text', '{}', 'queued', ?)`
	if d == db.Postgres {
		q = sqlx.Rebind(sqlx.DOLLAR, q)
	}
	_, err := ex.ExecContext(ctx, q, tenant, id, conv, t0)
	return err
}

func TestClaimOrderAndLeases(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.queue(t, item("wa", "A", 1, t0), item("wa", "A", 2, t0), item("wa", "B", 1, t0.Add(time.Second)),
			item("wa", "C", 1, t0.Add(time.Hour)))
		claim := func(owner string, now time.Time, want ...string) []outbox.Item {
			t.Helper()
			got, err := e.store.Claim(ctx, owner, now, 30*time.Second, 10)
			if err != nil {
				t.Fatalf("Claim: %v", err)
			}
			if d := cmp.Diff(want, ids(got), cmpopts.EquateEmpty()); d != "" {
				t.Fatalf("Claim at +%s (-want +got):\n%s", now.Sub(t0), d)
			}
			return got
		}
		// Only the first live row of each conversation, and only due ones.
		got := claim("n1", t0.Add(2*time.Second), "A/0001", "B/0001")
		a1, b1 := got[0], got[1]
		if a1.State != outbox.StateSending || a1.Attempts != 1 || a1.LeaseOwner != "n1" ||
			a1.LeaseUntil == nil || !a1.LeaseUntil.Equal(t0.Add(32*time.Second)) || !a1.NextAt.Equal(*a1.LeaseUntil) {
			t.Errorf("claimed row = %+v", a1)
		}
		// Claimed rows and their successors are not claimed again.
		claim("n2", t0.Add(3*time.Second))

		// A retry keeps the successor waiting until the row is final.
		if err := e.store.MarkRetry(ctx, a1.Lease(), t0.Add(10*time.Second), "130429", "throttled"); err != nil {
			t.Fatalf("MarkRetry: %v", err)
		}
		claim("n2", t0.Add(9*time.Second))
		got = claim("n2", t0.Add(10*time.Second), "A/0001")
		a1 = got[0]
		if a1.Attempts != 2 || a1.LastCode != "130429" || a1.LastError != "throttled" {
			t.Errorf("retried row = %+v", a1)
		}
		if err := e.store.MarkSent(ctx, a1.ID, "wamid.1", t0.Add(11*time.Second)); err != nil {
			t.Fatalf("MarkSent: %v", err)
		}
		wantCode(t, "MarkSent twice", e.store.MarkSent(ctx, a1.ID, "wamid.1", t0.Add(11*time.Second)), errs.Conflict)
		wantCode(t, "MarkSent unknown", e.store.MarkSent(ctx, 1<<40, "x", t0), errs.NotFound)
		a2 := claim("n2", t0.Add(11*time.Second), "A/0002")[0]

		// n1 dies holding B/0001: its lease runs out and n2 takes over;
		// n1's late outcome is refused by the fence.
		b1n2 := claim("n2", t0.Add(32*time.Second), "B/0001")[0]
		if b1n2.Attempts != 2 || b1n2.LeaseOwner != "n2" {
			t.Errorf("taken-over row = %+v", b1n2)
		}
		wantCode(t, "stale MarkRetry", e.store.MarkRetry(ctx, b1.Lease(), t0, "x", "y"), errs.Conflict)
		wantCode(t, "stale MarkDead", e.store.MarkDead(ctx, b1.Lease(), t0, "x", "y"), errs.Conflict)
		wantCode(t, "stale MarkDeferred", e.store.MarkDeferred(ctx, b1.Lease(), t0, false), errs.Conflict)

		// A deferral does not count as an attempt and keeps its slot.
		if err := e.store.MarkDeferred(ctx, b1n2.Lease(), t0.Add(40*time.Second), true); err != nil {
			t.Fatalf("MarkDeferred: %v", err)
		}
		b1 = claim("n2", t0.Add(40*time.Second), "B/0001")[0]
		if b1.Attempts != 2 || b1.SlotAt == nil || !b1.SlotAt.Equal(t0.Add(40*time.Second)) {
			t.Errorf("deferred row = attempts %d slot %v; want 2 and +40s", b1.Attempts, b1.SlotAt)
		}

		// Dead is final: the successor goes, the dead letter is listed.
		if err := e.store.MarkDead(ctx, a2.Lease(), t0.Add(41*time.Second), "131026", "undeliverable"); err != nil {
			t.Fatalf("MarkDead: %v", err)
		}
		dead, err := e.store.ListDead(ctx, tenant, outbox.DeadFilter{})
		if err != nil || len(dead) != 1 || dead[0].MessageID != "A/0002" || dead[0].LastCode != "131026" || dead[0].LastError != "undeliverable" {
			t.Fatalf("ListDead = %+v, %v", dead, err)
		}
		if it, err := e.store.ByChannelMsgID(ctx, tenant, "wa", "wamid.1"); err != nil || it.MessageID != "A/0001" || it.State != outbox.StateSent ||
			it.SentAt == nil || !it.SentAt.Equal(t0.Add(11*time.Second)) {
			t.Errorf("ByChannelMsgID = %+v, %v", it, err)
		}
		for _, tc := range []struct{ tenant, account, id string }{{"t2", "wa", "wamid.1"}, {tenant, "sms", "wamid.1"}, {tenant, "wa", ""}} {
			_, err := e.store.ByChannelMsgID(ctx, tc.tenant, tc.account, tc.id)
			wantCode(t, "ByChannelMsgID "+tc.tenant+"/"+tc.account+"/"+tc.id, err, errs.NotFound)
		}

		// Requeue gives a dead letter a new life; only dead rows.
		wantCode(t, "Requeue a sent row", e.store.Requeue(ctx, tenant, a1.ID, t0), errs.Conflict)
		wantCode(t, "Requeue unknown", e.store.Requeue(ctx, tenant, 1<<40, t0), errs.NotFound)
		wantCode(t, "Requeue another tenant's", e.store.Requeue(ctx, "t2", a2.ID, t0), errs.NotFound)
		if err := e.store.Requeue(ctx, tenant, a2.ID, t0.Add(time.Minute)); err != nil {
			t.Fatalf("Requeue: %v", err)
		}
		a2 = claim("n1", t0.Add(time.Minute), "A/0002")[0]
		if a2.Attempts != 1 || !a2.QueuedAt.Equal(t0.Add(time.Minute)) || !a2.CreatedAt.Equal(t0) {
			t.Errorf("requeued row = attempts %d queued %v created %v", a2.Attempts, a2.QueuedAt, a2.CreatedAt)
		}
	})
}

// TestFallbackTakesThePlaceOfTheRow: the SMS row replacing a row goes
// before the conversation's later rows, and marking the row dead and
// queueing the fallback happen together or not at all.
func TestFallbackTakesThePlaceOfTheRow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.queue(t, item("wa", "A", 1, t0), item("wa", "A", 2, t0))
		c := mustClaim(t, e, t0, 10)
		if len(c) != 1 {
			t.Fatalf("claimed %v", ids(c))
		}
		fb := outbox.Item{TenantID: tenant, AccountID: "sms", ConversationID: "A", MessageID: "A/0001",
			Out: channels.Outbound{ExternalID: "+15550100", Type: channels.MsgText, Text: "message 1"}, CreatedAt: t0}

		// A fallback under a lost lease changes nothing.
		stale := c[0].Lease()
		stale.Attempt++
		if _, err := e.store.Fallback(ctx, stale, t0, "131047", "window closed", fb); !errs.Is(err, errs.Conflict) {
			t.Fatalf("Fallback with a stale lease: %v, want conflict", err)
		}
		if n := e.states(t); n[outbox.StateDead] != 0 || n[outbox.StatePending]+n[outbox.StateSending] != 2 {
			t.Fatalf("states after a refused fallback: %v", n)
		}

		got, err := e.store.Fallback(ctx, c[0].Lease(), t0, "131047", outbox.ReasonFellBack+": window closed", fb)
		if err != nil {
			t.Fatalf("Fallback: %v", err)
		}
		if got.FallbackOf != c[0].ID || got.State != outbox.StatePending || got.AccountID != "sms" || got.Out.ExternalID != "+15550100" {
			t.Errorf("fallback row = %+v", got)
		}
		orig, _ := e.store.Get(ctx, tenant, c[0].ID)
		if orig.State != outbox.StateDead || orig.LastCode != "131047" {
			t.Errorf("replaced row = %+v", orig)
		}
		// The fallback (id 3) goes before A/0002 (id 2).
		c = mustClaim(t, e, t0, 10)
		if len(c) != 1 || c[0].ID != got.ID {
			t.Fatalf("claimed %+v, want the fallback row %d", c, got.ID)
		}
		if err := e.store.MarkSent(ctx, got.ID, "SM1", t0); err != nil {
			t.Fatal(err)
		}
		c = mustClaim(t, e, t0, 10)
		if d := cmp.Diff([]string{"A/0002"}, ids(c)); d != "" {
			t.Errorf("after the fallback (-want +got):\n%s", d)
		}
		// Falling back twice to one account is refused, nothing changes.
		fb2 := fb
		fb2.MessageID = "A/0002"
		if _, err := e.store.Insert(ctx, fb2); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.Fallback(ctx, c[0].Lease(), t0, "131047", "window closed", fb2); !errs.Is(err, errs.Duplicate) {
			t.Errorf("second fallback: %v, want duplicate", err)
		}
		if it, _ := e.store.Get(ctx, tenant, c[0].ID); it.State != outbox.StateSending {
			t.Errorf("row after a refused fallback is %s, want sending", it.State)
		}
	})
}

func mustClaim(t *testing.T, e *env, now time.Time, limit int) []outbox.Item {
	t.Helper()
	got, err := e.store.Claim(context.Background(), "n1", now, time.Minute, limit)
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	return got
}

func TestListDeadStatsPurge(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		// Five conversations on wa, one on wb; all claimed, then settled.
		for i := range 5 {
			e.queue(t, item("wa", string(rune('a'+i)), 1, t0.Add(time.Duration(i)*time.Second)))
		}
		e.queue(t, item("wb", "z", 1, t0), item("wb", "z", 2, t0.Add(time.Minute)))
		c := mustClaim(t, e, t0.Add(time.Hour), 10)
		if len(c) != 6 {
			t.Fatalf("claimed %v", ids(c))
		}
		for _, it := range c {
			switch it.ConversationID {
			case "a", "b", "c":
				if err := e.store.MarkDead(ctx, it.Lease(), t0, "c", "r"); err != nil {
					t.Fatal(err)
				}
			case "d":
				if err := e.store.MarkSent(ctx, it.ID, "", t0.Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
			case "e":
				if err := e.store.MarkSent(ctx, it.ID, "", t0.Add(3*time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
		}
		stats, err := e.store.Stats(ctx, t0.Add(2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		want := []outbox.AccountStats{
			{TenantID: tenant, AccountID: "wa", Dead: 3},
			{TenantID: tenant, AccountID: "wb", Pending: 2, OldestPending: 2 * time.Hour},
		}
		if d := cmp.Diff(want, stats); d != "" {
			t.Errorf("Stats (-want +got):\n%s", d)
		}

		page1, err := e.store.ListDead(ctx, tenant, outbox.DeadFilter{AccountID: "wa", Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		page2, err := e.store.ListDead(ctx, tenant, outbox.DeadFilter{AccountID: "wa", Limit: 2, BeforeID: page1[1].ID})
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff([]string{"c/0001", "b/0001", "a/0001"}, append(ids(page1), ids(page2)...)); d != "" {
			t.Errorf("ListDead pages (-want +got):\n%s", d)
		}
		if got, _ := e.store.ListDead(ctx, tenant, outbox.DeadFilter{ConversationID: "b"}); len(got) != 1 {
			t.Errorf("ListDead by conversation = %v", ids(got))
		}
		if got, _ := e.store.ListDead(ctx, "t2", outbox.DeadFilter{}); len(got) != 0 {
			t.Errorf("ListDead of another tenant = %v", ids(got))
		}

		// Sent before +2h: only d goes.
		n, err := e.store.PurgeSent(ctx, t0.Add(2*time.Hour), 100)
		if err != nil || n != 1 {
			t.Errorf("PurgeSent = %d, %v; want 1", n, err)
		}
		if s := e.states(t); s[outbox.StateSent] != 1 || s[outbox.StateDead] != 3 {
			t.Errorf("states after purge: %v", s)
		}
	})
}

// TestPayloadRoundTrip: every field of an Outbound survives the JSON
// column on both databases.
func TestPayloadRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		in := item("wa", "c", 1, t0)
		in.Out = channels.Outbound{ExternalID: "8613800000000", IdempotencyKey: "k", Type: channels.MsgInteractive,
			Text: "选择 🙂", Choices: []channels.Choice{{ID: "1", Title: "Yes"}, {ID: "2", Title: "No", Description: "d"}},
			Template: &channels.Template{Name: "n", Language: "zh_CN", Components: json.RawMessage(`[{"type":"body"}]`)},
			Location: &channels.Location{Latitude: 22.5, Longitude: 114.05, Name: "n"}, ReplyTo: "wamid.x",
			Raw: json.RawMessage(`{"a":[1,2]}`), Media: &channels.Media{ID: "m", URL: "u", Caption: "c", Voice: true}}
		id, err := e.store.Insert(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.store.Get(context.Background(), tenant, id)
		if err != nil {
			t.Fatal(err)
		}
		want := in.Out
		want.AccountID, want.MessageID = "wa", in.MessageID
		if d := cmp.Diff(want, got.Out, cmp.Comparer(jsonSame)); d != "" {
			t.Errorf("payload (-want +got):\n%s", d)
		}
	})
}

// jsonSame compares JSON by value: PostgreSQL's JSONB respaces.
func jsonSame(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return string(a) == string(b)
	}
	return cmp.Equal(x, y)
}

// TestFollowersParked: the later rows of a conversation stay out of the
// due range while their predecessor is live (parked once, when queued
// behind it, and not written again by later claims and retries), and come
// due one by one as their predecessors finish.
func TestFollowersParked(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.queue(t, item("wa", "A", 1, t0), item("wa", "A", 2, t0), item("wa", "A", 3, t0), item("wa", "B", 1, t0))
		nextAt := func(msg string) time.Duration {
			t.Helper()
			return e.byMessage(t, msg)[0].NextAt.Sub(t0)
		}
		c := mustClaim(t, e, t0, 10) // lease: one minute
		if d := cmp.Diff([]string{"A/0001", "B/0001"}, ids(c)); d != "" {
			t.Fatalf("claimed (-want +got):\n%s", d)
		}
		parked := outbox.ParkHorizon
		if a2, a3 := nextAt("A/0002"), nextAt("A/0003"); a2 != parked || a3 != parked {
			t.Errorf("after the claim A/0002, A/0003 are due at +%s, +%s; want parked since queued (+%s)", a2, a3, parked)
		}
		if err := e.store.MarkRetry(ctx, c[0].Lease(), t0.Add(5*time.Second), "500", "x"); err != nil {
			t.Fatal(err)
		}
		if a2, a3 := nextAt("A/0002"), nextAt("A/0003"); a2 != parked || a3 != parked {
			t.Errorf("after the retry A/0002, A/0003 are due at +%s, +%s; want still parked (+%s), after A/0001 (+5s)", a2, a3, parked)
		}
		c = mustClaim(t, e, t0.Add(5*time.Second), 10)
		if len(c) != 1 || c[0].MessageID != "A/0001" {
			t.Fatalf("claimed %v", ids(c))
		}
		if err := e.store.MarkSent(ctx, c[0].ID, "", t0.Add(6*time.Second)); err != nil {
			t.Fatal(err)
		}
		if a2, a3 := nextAt("A/0002"), nextAt("A/0003"); a2 != 6*time.Second || a3 != parked {
			t.Errorf("after the send A/0002, A/0003 are due at +%s, +%s; want +6s (released) and +%s (still parked)", a2, a3, parked)
		}
		c = mustClaim(t, e, t0.Add(6*time.Second), 10)
		if len(c) != 1 || c[0].MessageID != "A/0002" {
			t.Fatalf("claimed %v", ids(c))
		}
		if err := e.store.MarkDead(ctx, c[0].Lease(), t0.Add(7*time.Second), "x", "y"); err != nil {
			t.Fatal(err)
		}
		if a3 := nextAt("A/0003"); a3 != 7*time.Second {
			t.Errorf("after a dead letter A/0003 is due at +%s, want +7s", a3)
		}
	})
}
