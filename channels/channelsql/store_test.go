package channelsql_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/channelsql"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

func TestAccounts(t *testing.T) {
	for _, kind := range testenv.DBKinds {
		t.Run(kind, func(t *testing.T) {
			d := testenv.DB(t, kind)
			ctx := t.Context()
			for _, id := range []string{"t1", "t2"} {
				if _, err := d.ExecContext(ctx, d.Rebind(`INSERT INTO tenants (id, name, settings, created_at) VALUES (?, ?, ?, ?)`), id, id, "{}", time.Now().UTC()); err != nil {
					t.Fatal(err)
				}
			}
			s := channelsql.New(d)
			at := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
			a := channels.Account{TenantID: "t1", ID: "wc1", Type: channels.WebChat, Name: "Site", PublicKey: "k1", Secret: "s",
				DefaultGroupID: "g", Settings: []byte(`{}`), SessionCost: 3, CreatedAt: at}
			if err := s.AccountCreate(ctx, a); err != nil {
				t.Fatal(err)
			}
			got, err := s.AccountByKey(ctx, "k1")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(a, got); diff != "" {
				t.Errorf("AccountByKey (-want +got):\n%s", diff)
			}
			if _, err := s.AccountGet(ctx, "t2", "wc1"); !errs.Is(err, errs.NotFound) {
				t.Errorf("other tenant's account: %v, want not_found", err)
			}
			dup := a
			dup.ID = "wc2"
			if err := s.AccountCreate(ctx, dup); !errs.Is(err, errs.Duplicate) {
				t.Errorf("duplicate public key: %v, want duplicate", err)
			}
			// A zero session cost is stored as the default; one out of
			// range is refused.
			plain := channels.Account{TenantID: "t1", ID: "wc3", Type: channels.WebChat, Name: "Plain", PublicKey: "k3", Secret: "s", CreatedAt: at}
			if err := s.AccountCreate(ctx, plain); err != nil {
				t.Fatal(err)
			}
			if got, err := s.AccountGet(ctx, "t1", "wc3"); err != nil || got.SessionCost != channels.DefaultSessionCost {
				t.Errorf("session cost of an account created without one = %d, %v, want %d", got.SessionCost, err, channels.DefaultSessionCost)
			}
			for _, cost := range []int{-1, channels.MaxSessionCost + 1} {
				bad := plain
				bad.ID, bad.PublicKey, bad.SessionCost = "wc4", "k4", cost
				if err := s.AccountCreate(ctx, bad); !errs.Is(err, errs.Invalid) {
					t.Errorf("session cost %d: %v, want invalid", cost, err)
				}
			}
			list, err := s.AccountList(ctx, "t1")
			if err != nil || len(list) != 2 {
				t.Fatalf("AccountList = %v, %v", list, err)
			}
			if list, _ := s.AccountList(ctx, "t2"); len(list) != 0 {
				t.Errorf("tenant t2 sees %v", list)
			}
		})
	}
}
