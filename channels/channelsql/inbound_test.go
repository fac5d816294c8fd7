package channelsql_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/channelsql"
	"github.com/switchboard-acd/switchboard/channels/inbox"
	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// inboundStore returns a store with a web chat account for every
// "tenant/id" given: every inbound_log row needs its account.
func inboundStore(t *testing.T, d *db.DB, accounts ...string) *channelsql.Store {
	t.Helper()
	s := channelsql.New(d)
	for _, ta := range accounts {
		tenant, id, _ := strings.Cut(ta, "/")
		a := channels.Account{TenantID: tenant, ID: id, Type: channels.WebChat, Name: "Site " + id, PublicKey: tenant + "-" + id,
			Secret: "s", Enabled: true, CreatedAt: at}
		if err := s.AccountCreate(t.Context(), a); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// logEntry is an entry of account tenant/account with provider id key,
// due at next.
func logEntry(tenant, account, key string, received, next time.Time) inbox.Entry {
	return inbox.Entry{TenantID: tenant, AccountID: account, DedupeKey: key, ReceivedAt: received, NextAt: next,
		Inbound: channels.Inbound{AccountID: account, ExternalID: "cust-" + key, ChannelMsgID: key, Type: channels.MsgText, Text: "text of " + key}}
}

// claimAll takes every entry due at now, leased for an hour.
func claimAll(t *testing.T, s *channelsql.Store, now time.Time) []inbox.Entry {
	t.Helper()
	es, err := s.InboundClaim(t.Context(), now, now.Add(time.Hour), 10_000)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func seqsOf(es []inbox.Entry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

// lastError reads a row's last failure as stored.
func lastError(t *testing.T, d *db.DB, seq int64) string {
	t.Helper()
	var s string
	if err := d.GetContext(t.Context(), &s, d.Rebind(`SELECT last_error FROM inbound_log WHERE seq = ?`), seq); err != nil {
		t.Fatal(err)
	}
	return s
}

func backlog(t *testing.T, s *channelsql.Store) (int64, time.Time) {
	t.Helper()
	n, oldest, err := s.InboundBacklog(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n, oldest
}

func TestInboundAppend(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		s := inboundStore(t, d, "t1/a1", "t1/a2", "t2/a1")
		if seqs, err := s.InboundAppend(ctx, nil); err != nil || len(seqs) != 0 {
			t.Errorf("append of nothing = %v, %v", seqs, err)
		}
		batch := []inbox.Entry{
			logEntry("t1", "a1", "m1", at, at),
			logEntry("t1", "a1", "m2", at, at),
			logEntry("t1", "a2", "m1", at, at), // another account: not a duplicate
			logEntry("t2", "a1", "m1", at, at), // another tenant: not a duplicate
			logEntry("t1", "a1", "m1", at, at), // twice in the batch: only the first is written
			logEntry("t1", "a1", "m3", at, at),
		}
		batch[4].Inbound.Text = "the second copy"
		seqs, err := s.InboundAppend(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if len(seqs) != len(batch) {
			t.Fatalf("InboundAppend returned %d seqs for %d entries", len(seqs), len(batch))
		}
		if seqs[4] != 0 {
			t.Errorf("second entry with key m1 in the batch got seq %d, want 0", seqs[4])
		}
		written := []int64{seqs[0], seqs[1], seqs[2], seqs[3], seqs[5]}
		for i, seq := range written {
			if seq <= 0 || (i > 0 && seq <= written[i-1]) {
				t.Fatalf("seqs %v: the written ones must be positive and rise in input order", seqs)
			}
		}

		// Keys already in the log are not written again, new ones are; a
		// duplicate within the batch of a new key too.
		again, err := s.InboundAppend(ctx, []inbox.Entry{
			logEntry("t1", "a1", "m2", at, at),
			logEntry("t1", "a1", "m4", at, at),
			logEntry("t2", "a1", "m1", at, at),
			logEntry("t1", "a1", "m4", at, at),
		})
		if err != nil {
			t.Fatal(err)
		}
		if again[0] != 0 || again[2] != 0 || again[3] != 0 || again[1] <= seqs[5] {
			t.Errorf("second append = %v; want [0 >%d 0 0]", again, seqs[5])
		}

		// Every seq names its own entry, and the first copy is the one kept.
		want := map[int64]string{seqs[0]: "t1/a1/m1", seqs[1]: "t1/a1/m2", seqs[2]: "t1/a2/m1", seqs[3]: "t2/a1/m1", seqs[5]: "t1/a1/m3", again[1]: "t1/a1/m4"}
		got := map[int64]string{}
		for _, e := range claimAll(t, s, at) {
			got[e.Seq] = e.TenantID + "/" + e.AccountID + "/" + e.DedupeKey
			if e.Inbound.Text != "text of "+e.DedupeKey {
				t.Errorf("entry %d kept text %q, want the first copy's", e.Seq, e.Inbound.Text)
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("log after two appends (-want +got):\n%s", diff)
		}
		if n, _ := backlog(t, s); n != 6 {
			t.Errorf("backlog %d, want 6", n)
		}

		// One bad entry fails the whole batch (PostgreSQL refuses a NUL in
		// text; SQLite stores anything, so there the batch cannot fail).
		if d.Dialect == db.Postgres {
			_, err = s.InboundAppend(ctx, []inbox.Entry{logEntry("t1", "a1", "m9", at, at), logEntry("t1", "a1", "bad\x00key", at, at)})
			if err == nil {
				t.Error("append of a key with a NUL byte succeeded")
			}
			if n, _ := backlog(t, s); n != 6 {
				t.Errorf("backlog %d after a failed append, want 6: a failed batch writes nothing", n)
			}
			// The key of the failed batch is free.
			if seqs, err := s.InboundAppend(ctx, []inbox.Entry{logEntry("t1", "a1", "m9", at, at)}); err != nil || seqs[0] == 0 {
				t.Errorf("append after a failed batch = %v, %v; want a seq", seqs, err)
			}
		}
	})
}

func TestInboundPayloadRoundTrip(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		s := inboundStore(t, d, "t1/wa1")
		received := at.Add(1500 * time.Millisecond)
		full := channels.Inbound{
			AccountID: "wa1", ExternalID: "8613800000000", DisplayName: "李雷 🚀", UnionID: "o6_bmasdasdsad6", Phone: "+8613800000000",
			ChannelMsgID: "wamid.HBgL", ClientMsgID: "client-7", Type: channels.MsgInteractive, Text: "Refund \"status\"\n<b>&</b>",
			Media: &channels.Media{ID: "m1", URL: "https://example.com/m1", MIMEType: "image/jpeg", SHA256: "abc", Filename: "r.jpg",
				Caption: "receipt", Voice: true, Recognition: "转人工"},
			Location: &channels.Location{Latitude: 31.2304, Longitude: 121.4737, Name: "Office", Address: "1 Road", URL: "https://maps",
				Precision: 12.5, Scale: 15},
			Choice:   &channels.Choice{ID: "2", Title: "Refund status", Description: "where is my money"},
			Reaction: &channels.Reaction{MessageID: "wamid.Y", Emoji: "👍"},
			ReplyTo:  "wamid.X",
			Event:    &channels.Event{Kind: channels.EventLocation, Key: "K", Scene: "poster-7", Ticket: "tk", Name: "LOCATION", Location: &channels.Location{Latitude: -1}},
			Raw:      json.RawMessage(`{"from":"8613800000000","id":"wamid.HBgL","nested":{"a":[1,2,{"b":null}]},"text":{"body":"hi"}}`),
			// A provider's own timestamp keeps its nanoseconds: it travels
			// in the payload, not in a column.
			ReceivedAt: time.Date(2026, 11, 21, 7, 59, 58, 123456789, time.UTC),
		}
		bare := channels.Inbound{AccountID: "wa1", ExternalID: "x", ChannelMsgID: "bare", Type: channels.MsgText, Text: "hi"}
		in := []inbox.Entry{
			{TenantID: "t1", AccountID: "wa1", DedupeKey: full.ChannelMsgID, Inbound: full, ReceivedAt: received, NextAt: received},
			{TenantID: "t1", AccountID: "wa1", DedupeKey: "bare", Inbound: bare, ReceivedAt: received, NextAt: received},
		}
		seqs, err := s.InboundAppend(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		// The lease's end is stored to the microsecond.
		until := at.Add(time.Hour + 987654321*time.Nanosecond)
		got, err := s.InboundClaim(ctx, at.Add(time.Minute), until, 10)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]inbox.Entry, len(in))
		for i, e := range in {
			e.Seq, e.Attempts, e.NextAt = seqs[i], 1, until.Truncate(time.Microsecond)
			want[i] = e
		}
		if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(inbox.Entry{}), jsonEqual); diff != "" {
			t.Errorf("claimed entries (-want +got):\n%s", diff)
		}
		for _, e := range got {
			if e.ReceivedAt.Location() != time.UTC || e.NextAt.Location() != time.UTC {
				t.Errorf("entry %d: times in %v and %v, want UTC", e.Seq, e.ReceivedAt.Location(), e.NextAt.Location())
			}
		}
	})
}

func TestInboundClaim(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		s := inboundStore(t, d, "t1/a1", "t2/a1")
		now := at
		seqs, err := s.InboundAppend(ctx, []inbox.Entry{
			logEntry("t1", "a1", "e1", now.Add(-3*time.Minute), now.Add(-time.Minute)),
			logEntry("t2", "a1", "e2", now.Add(-3*time.Minute), now.Add(time.Minute)), // leased by the node that took it
			logEntry("t1", "a1", "e3", now.Add(-2*time.Minute), now),                  // due exactly now
			logEntry("t2", "a1", "e4", now.Add(-time.Minute), now.Add(-2*time.Minute)),
		})
		if err != nil {
			t.Fatal(err)
		}
		s1, s2, s3, s4 := seqs[0], seqs[1], seqs[2], seqs[3]
		claim := func(now, until time.Time, limit int) []inbox.Entry {
			t.Helper()
			es, err := s.InboundClaim(ctx, now, until, limit)
			if err != nil {
				t.Fatal(err)
			}
			return es
		}
		check := func(name string, es []inbox.Entry, seqs []int64, attempts int, until time.Time) {
			t.Helper()
			if diff := cmp.Diff(seqs, seqsOf(es), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s: seqs (-want +got):\n%s", name, diff)
			}
			for _, e := range es {
				if e.Attempts != attempts || !e.NextAt.Equal(until) {
					t.Errorf("%s: entry %d has attempts %d, next %v; want %d, %v", name, e.Seq, e.Attempts, e.NextAt, attempts, until)
				}
			}
		}

		// Only due entries, the earliest due first, up to the limit (returned
		// in log order), counting an attempt.
		check("first claim", claim(now, now.Add(5*time.Minute), 2), []int64{s1, s4}, 1, now.Add(5*time.Minute))
		// Leased entries are not taken again while their lease runs.
		check("second claim", claim(now, now.Add(5*time.Minute), 10), []int64{s3}, 1, now.Add(5*time.Minute))
		check("nothing due", claim(now.Add(time.Minute-time.Microsecond), now.Add(time.Hour), 10), nil, 0, time.Time{})
		check("e2 due", claim(now.Add(time.Minute), now.Add(10*time.Minute), 10), []int64{s2}, 1, now.Add(10*time.Minute))
		// Once the lease ends another node takes them, counting another attempt.
		check("lease over", claim(now.Add(5*time.Minute), now.Add(6*time.Minute), 10), []int64{s1, s3, s4}, 2, now.Add(6*time.Minute))
		check("all leased", claim(now.Add(5*time.Minute), now.Add(6*time.Minute), 10), nil, 0, time.Time{})

		for _, limit := range []int{0, -1} {
			if _, err := s.InboundClaim(ctx, now, now, limit); !errs.Is(err, errs.Invalid) {
				t.Errorf("claim with limit %d: %v, want invalid", limit, err)
			}
		}
	})
}

func TestInboundClaimConcurrent(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		s := inboundStore(t, d, "t1/a1")
		const total = 300
		var batch []inbox.Entry
		for i := range total {
			batch = append(batch, logEntry("t1", "a1", fmt.Sprintf("m%03d", i), at, at))
		}
		if _, err := s.InboundAppend(ctx, batch); err != nil {
			t.Fatal(err)
		}
		// Claimers go until they find nothing; whatever one skipped while
		// another held it locked, that one returns.
		const claimers = 4
		got := make([][]int64, claimers)
		errc := make(chan error, claimers)
		var wg sync.WaitGroup
		for c := range claimers {
			wg.Go(func() {
				for {
					es, err := s.InboundClaim(ctx, at, at.Add(time.Hour), 7)
					if err != nil {
						errc <- err
						return
					}
					if len(es) == 0 {
						return
					}
					got[c] = append(got[c], seqsOf(es)...)
				}
			})
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Fatalf("concurrent claim: %v", err)
		}
		seen := map[int64]int{}
		for c, seqs := range got {
			for _, seq := range seqs {
				if prev, ok := seen[seq]; ok {
					t.Errorf("entry %d claimed by claimers %d and %d", seq, prev, c)
				}
				seen[seq] = c
			}
		}
		if len(seen) != total {
			t.Errorf("%d entries claimed, want %d", len(seen), total)
		}
		if rest := claimAll(t, s, at); len(rest) != 0 {
			t.Errorf("%d entries left unclaimed", len(rest))
		}
	})
}

func TestInboundDoneReleaseBacklog(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		s := inboundStore(t, d, "t1/a1")
		if n, oldest := backlog(t, s); n != 0 || !oldest.IsZero() {
			t.Errorf("backlog of an empty log = %d, %v; want 0 and the zero time", n, oldest)
		}
		seqs, err := s.InboundAppend(ctx, []inbox.Entry{
			logEntry("t1", "a1", "m1", at, at),
			logEntry("t1", "a1", "m2", at.Add(time.Second), at.Add(time.Second)),
			logEntry("t1", "a1", "m3", at.Add(2*time.Second), at.Add(2*time.Second)),
		})
		if err != nil {
			t.Fatal(err)
		}
		s1, s2, s3 := seqs[0], seqs[1], seqs[2]
		if n, oldest := backlog(t, s); n != 3 || !oldest.Equal(at) || oldest.Location() != time.UTC {
			t.Errorf("backlog = %d, %v; want 3, %v (UTC)", n, oldest, at)
		}
		if es := claimAll(t, s, at.Add(3*time.Second)); len(es) != 3 {
			t.Fatalf("claimed %d, want 3", len(es))
		}

		// A released entry is due at the time given, with its failure kept.
		if err := s.InboundRelease(ctx, []int64{s1, s2}, at.Add(10*time.Second), "receive: disk full"); err != nil {
			t.Fatal(err)
		}
		if es := claimAll(t, s, at.Add(10*time.Second-time.Microsecond)); len(es) != 0 {
			t.Errorf("released entries taken before they are due: %v", seqsOf(es))
		}
		es := claimAll(t, s, at.Add(10*time.Second))
		if diff := cmp.Diff([]int64{s1, s2}, seqsOf(es)); diff != "" {
			t.Errorf("due after release (-want +got):\n%s", diff)
		}
		for _, e := range es {
			if e.Attempts != 2 {
				t.Errorf("entry %d: %d attempts, want 2", e.Seq, e.Attempts)
			}
		}
		if got := lastError(t, d, s1); got != "receive: disk full" {
			t.Errorf("last_error = %q", got)
		}
		if got := lastError(t, d, s3); got != "" {
			t.Errorf("last_error of an entry never released = %q", got)
		}
		// Handed back without a reason (a stopping node): the last failure
		// stays, and the entry is due at once.
		stop := at.Add(20 * time.Second)
		if err := s.InboundRelease(ctx, []int64{s1, s3}, stop, ""); err != nil {
			t.Fatal(err)
		}
		if got := lastError(t, d, s1); got != "receive: disk full" {
			t.Errorf("last_error after a release without reason = %q, want the previous failure", got)
		}
		if diff := cmp.Diff([]int64{s1, s3}, seqsOf(claimAll(t, s, stop))); diff != "" {
			t.Errorf("due after hand-back (-want +got):\n%s", diff)
		}
		// A new failure replaces the last; a long one is clipped, still UTF-8.
		long := strings.Repeat("長", 400) // 1,200 bytes
		if err := s.InboundRelease(ctx, []int64{s1}, stop, long); err != nil {
			t.Fatal(err)
		}
		if got := lastError(t, d, s1); len(got) > 1000 || len(got) < 990 || !utf8.ValidString(got) || !strings.HasPrefix(long, got) {
			t.Errorf("long failure stored as %d bytes (valid %v); want a valid prefix of at most 1000 bytes", len(got), utf8.ValidString(got))
		}
		if err := s.InboundRelease(ctx, []int64{s1}, stop, "second failure"); err != nil {
			t.Fatal(err)
		}
		if got := lastError(t, d, s1); got != "second failure" {
			t.Errorf("last_error = %q, want the newest failure", got)
		}

		// Nothing to do, or entries already gone, is not an error.
		for name, err := range map[string]error{
			"done of nothing":     s.InboundDone(ctx, nil),
			"release of nothing":  s.InboundRelease(ctx, nil, stop, "x"),
			"release of the gone": s.InboundRelease(ctx, []int64{s3 + 1000}, stop, "x"),
		} {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}

		// Done deletes; the backlog's oldest moves on.
		if err := s.InboundDone(ctx, []int64{s1}); err != nil {
			t.Fatal(err)
		}
		if n, oldest := backlog(t, s); n != 2 || !oldest.Equal(at.Add(time.Second)) {
			t.Errorf("backlog = %d, %v; want 2, %v", n, oldest, at.Add(time.Second))
		}
		if err := s.InboundDone(ctx, []int64{s1, s2, s3}); err != nil {
			t.Fatal(err)
		}
		if n, oldest := backlog(t, s); n != 0 || !oldest.IsZero() {
			t.Errorf("backlog after all done = %d, %v; want 0 and the zero time", n, oldest)
		}
		if es := claimAll(t, s, stop.Add(time.Hour)); len(es) != 0 {
			t.Errorf("deleted entries claimed: %v", seqsOf(es))
		}
	})
}

// TestInboundLogKeepsItsAccount: an account whose received messages are
// still in the log cannot be deleted (the log has no foreign key to hold
// it); once they are taken in, it can, and other accounts' entries stay.
func TestInboundLogKeepsItsAccount(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *db.DB) {
		ctx := t.Context()
		s := inboundStore(t, d, "t1/a1", "t1/a2", "t2/a1")
		seqs, err := s.InboundAppend(ctx, []inbox.Entry{
			logEntry("t1", "a1", "m1", at, at),
			logEntry("t1", "a2", "m2", at, at),
			logEntry("t1", "a1", "m3", at, at),
			logEntry("t2", "a1", "m4", at, at),
		})
		if err != nil {
			t.Fatal(err)
		}
		// Messages not yet taken in keep their account.
		if err := s.AccountDelete(ctx, "t1", "a1", 0); !errs.Is(err, errs.Conflict) {
			t.Fatalf("delete with 2 messages in the log: %v, want conflict", err)
		}
		if err := s.InboundDone(ctx, []int64{seqs[0], seqs[2]}); err != nil {
			t.Fatal(err)
		}
		// Other accounts' messages (same id on another tenant) do not count.
		if err := s.AccountDelete(ctx, "t1", "a1", 0); err != nil {
			t.Fatalf("delete once its messages are taken: %v", err)
		}
		var left []string
		for _, e := range claimAll(t, s, at) {
			left = append(left, e.TenantID+"/"+e.AccountID+"/"+e.DedupeKey)
		}
		if diff := cmp.Diff([]string{"t1/a2/m2", "t2/a1/m4"}, left); diff != "" {
			t.Errorf("entries left (-want +got):\n%s", diff)
		}
	})
}

// TestInboundStoreClosed: a database that is gone is an error, never an
// empty log.
func TestInboundStoreClosed(t *testing.T) {
	forEachDB(t, func(t *testing.T, d *db.DB) {
		s := inboundStore(t, d, "t1/a1")
		d.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if _, err := s.InboundAppend(ctx, []inbox.Entry{logEntry("t1", "a1", "m1", at, at)}); err == nil {
			t.Error("append on a closed database succeeded")
		}
		if _, err := s.InboundClaim(ctx, at, at, 1); err == nil {
			t.Error("claim on a closed database succeeded")
		}
		if _, _, err := s.InboundBacklog(ctx); err == nil {
			t.Error("backlog on a closed database succeeded")
		}
		if err := s.InboundDone(ctx, []int64{1}); err == nil {
			t.Error("done on a closed database succeeded")
		}
		if err := s.InboundRelease(ctx, []int64{1}, at, ""); err == nil {
			t.Error("release on a closed database succeeded")
		}
	})
}
