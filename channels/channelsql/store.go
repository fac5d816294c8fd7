// Package channelsql stores channel accounts in PostgreSQL or SQLite.
package channelsql

import (
	"context"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// Store implements channels.AccountStore.
type Store struct{ db *db.DB }

var _ channels.AccountStore = (*Store)(nil)

// New returns a store over d.
func New(d *db.DB) *Store { return &Store{db: d} }

type accountRow struct {
	TenantID       string    `db:"tenant_id"`
	ID             string    `db:"id"`
	Type           string    `db:"type"`
	Name           string    `db:"name"`
	PublicKey      string    `db:"public_key"`
	Secret         string    `db:"secret"`
	DefaultGroupID *string   `db:"default_group_id"`
	Settings       string    `db:"settings"`
	SessionCost    int       `db:"session_cost"`
	CreatedAt      time.Time `db:"created_at"`
}

func (r accountRow) account() channels.Account {
	a := channels.Account{
		TenantID: r.TenantID, ID: r.ID, Type: channels.Type(r.Type), Name: r.Name, PublicKey: r.PublicKey,
		Secret: r.Secret, Settings: []byte(r.Settings), SessionCost: r.SessionCost, CreatedAt: r.CreatedAt.UTC(),
	}
	if r.DefaultGroupID != nil {
		a.DefaultGroupID = *r.DefaultGroupID
	}
	return a
}

const accountCols = `tenant_id, id, type, name, public_key, secret, default_group_id, settings, session_cost, created_at`

// AccountCreate implements channels.AccountStore.
func (s *Store) AccountCreate(ctx context.Context, a channels.Account) error {
	const op = "channelsql.AccountCreate"
	if a.SessionCost == 0 {
		a.SessionCost = channels.DefaultSessionCost
	}
	if err := channels.ValidateSessionCost(a.SessionCost); err != nil {
		return errs.Wrap(op, err)
	}
	settings := string(a.Settings)
	if settings == "" {
		settings = "{}"
	}
	var group *string
	if a.DefaultGroupID != "" {
		group = &a.DefaultGroupID
	}
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO channel_accounts (`+accountCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		a.TenantID, a.ID, string(a.Type), a.Name, a.PublicKey, a.Secret, group, settings, a.SessionCost, a.CreatedAt.UTC())
	return errs.Wrap(op, db.Translate(err))
}

// AccountGet implements channels.AccountStore.
func (s *Store) AccountGet(ctx context.Context, tenantID, id string) (channels.Account, error) {
	var r accountRow
	err := s.db.GetContext(ctx, &r, s.db.Rebind(`SELECT `+accountCols+` FROM channel_accounts WHERE tenant_id = ? AND id = ?`), tenantID, id)
	if err != nil {
		return channels.Account{}, errs.Wrap("channelsql.AccountGet", db.Translate(err))
	}
	return r.account(), nil
}

// AccountByKey implements channels.AccountStore.
func (s *Store) AccountByKey(ctx context.Context, key string) (channels.Account, error) {
	var r accountRow
	err := s.db.GetContext(ctx, &r, s.db.Rebind(`SELECT `+accountCols+` FROM channel_accounts WHERE public_key = ?`), key)
	if err != nil {
		return channels.Account{}, errs.Wrap("channelsql.AccountByKey", db.Translate(err))
	}
	return r.account(), nil
}

// AccountList implements channels.AccountStore.
func (s *Store) AccountList(ctx context.Context, tenantID string) ([]channels.Account, error) {
	var rows []accountRow
	err := s.db.SelectContext(ctx, &rows, s.db.Rebind(`SELECT `+accountCols+` FROM channel_accounts WHERE tenant_id = ? ORDER BY created_at`), tenantID)
	if err != nil {
		return nil, errs.Wrap("channelsql.AccountList", db.Translate(err))
	}
	out := make([]channels.Account, len(rows))
	for i, r := range rows {
		out[i] = r.account()
	}
	return out, nil
}
