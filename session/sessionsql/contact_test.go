package sessionsql_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-acd/switchboard/internal/testenv"
	"github.com/switchboard-acd/switchboard/session"
	"github.com/switchboard-acd/switchboard/session/sessionsql"
)

// An identity still pointing to a merged contact — a resolve that raced a
// merge — resolves to the end of the merged_into chain.
func TestContactResolveFollowsMerges(t *testing.T) {
	for _, kind := range testenv.DBKinds {
		t.Run(kind, func(t *testing.T) {
			d := newDB(t, kind, "t1")
			s := sessionsql.New(d)
			ctx := t.Context()
			var ids []string
			for i := range 3 {
				c, err := s.ContactResolve(ctx, "t1", "acc1", fmt.Sprintf("ext%d", i), "", t0)
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, c.ID)
			}
			// ext0's contact into ext1's, then ext1's into ext2's.
			for _, pair := range [][2]string{{ids[1], ids[0]}, {ids[2], ids[1]}} {
				if _, err := s.ContactMerge(ctx, "t1", pair[0], pair[1], session.MergeManual, "sup", t0); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := d.ExecContext(ctx, d.Rebind(`UPDATE identities SET contact_id = ? WHERE tenant_id = 't1' AND external_id = 'ext0'`), ids[0]); err != nil {
				t.Fatal(err)
			}
			c, err := s.ContactResolve(ctx, "t1", "acc1", "ext0", "", t0)
			if err != nil || c.ID != ids[2] {
				t.Errorf("ContactResolve = %s, %v; want the last survivor %s", c.ID, err, ids[2])
			}
		})
	}
}

// BenchmarkIdentityUpdateFacts measures the per-message facts update:
// same-minute messages bring nothing new (a read), a message a minute
// later is recorded (a write and its commit).
func BenchmarkIdentityUpdateFacts(b *testing.B) {
	for _, kind := range testenv.DBKinds {
		for _, step := range []struct {
			name string
			gap  time.Duration
		}{{"same-minute", time.Millisecond}, {"new-minute", session.LastInboundStep}} {
			b.Run(kind+"/"+step.name, func(b *testing.B) {
				s := sessionsql.New(newDB(b, kind, "t1"))
				ctx := b.Context()
				if _, err := s.ContactResolve(ctx, "t1", "wa1", "8613800138000", "", t0); err != nil {
					b.Fatal(err)
				}
				f := session.IdentityFacts{Channel: "whatsapp", Phone: "+8613800138000", PhoneVerified: true, DisplayName: "Li Lei"}
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					f.InboundAt = t0.Add(time.Duration(i) * step.gap)
					if _, _, err := s.IdentityUpdateFacts(ctx, "t1", "wa1", "8613800138000", f); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
