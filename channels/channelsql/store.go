// Package channelsql stores channel accounts in PostgreSQL or SQLite: their
// settings, their provider credentials and the read cursors of pull-based
// channels.
//
// Credentials are sealed with a secretbox.Keyring before they are written
// and opened when read, bound to the tenant and account id: the column
// holds "v1:<key id>:<base64>", so the database alone (a dump, a replica,
// a backup) does not reveal them, and a value copied into another account's
// row does not open. Account.Credentials is the clear text, in memory only.
//
// Times are written in UTC truncated to microseconds (PostgreSQL's
// precision), so both dialects return what was written.
package channelsql

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/secretbox"
	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/session"
)

// Store implements channels.AccountAdminStore and the cursor store of
// pull-based channels.
type Store struct {
	db    *db.DB
	keys  *secretbox.Keyring
	clock clock.Clock
}

var (
	_ channels.AccountStore      = (*Store)(nil)
	_ channels.AccountAdminStore = (*Store)(nil)
)

// Option configures a Store.
type Option func(*Store)

// WithKeys gives the store the keyring that seals and opens credentials.
// Without one the store keeps accounts without credentials only: writing
// credentials, or reading an account that has some, fails with a message
// saying no key is configured.
func WithKeys(k *secretbox.Keyring) Option { return func(s *Store) { s.keys = k } }

// WithClock sets the clock that stamps cursor updates (default: the wall
// clock).
func WithClock(c clock.Clock) Option { return func(s *Store) { s.clock = c } }

// New returns a store over d, which must be migrated.
func New(d *db.DB, opts ...Option) *Store {
	s := &Store{db: d, clock: clock.Real{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

type accountRow struct {
	TenantID       string     `db:"tenant_id"`
	ID             string     `db:"id"`
	Type           string     `db:"type"`
	Name           string     `db:"name"`
	PublicKey      string     `db:"public_key"`
	Secret         string     `db:"secret"`
	DefaultGroupID *string    `db:"default_group_id"`
	Settings       string     `db:"settings"`
	SessionCost    int        `db:"session_cost"`
	Credentials    string     `db:"credentials"`
	Enabled        bool       `db:"enabled"`
	Version        int64      `db:"version"`
	CreatedAt      time.Time  `db:"created_at"`
	UpdatedAt      *time.Time `db:"updated_at"`
}

const accountCols = `tenant_id, id, type, name, public_key, secret, default_group_id, settings, session_cost,
	credentials, enabled, version, created_at, updated_at`

// binding is the additional data credentials are sealed against: the
// column, the tenant and the account.
func binding(tenantID, id string) []byte {
	return secretbox.Binding("channel_accounts.credentials", tenantID, id)
}

// account maps a row to the domain type, opening the credentials.
func (s *Store) account(op string, r accountRow) (channels.Account, error) {
	a := channels.Account{
		TenantID: r.TenantID, ID: r.ID, Type: channels.Type(r.Type), Name: r.Name, PublicKey: r.PublicKey,
		Secret: r.Secret, Settings: []byte(r.Settings), SessionCost: r.SessionCost, Enabled: r.Enabled,
		Version: r.Version, CreatedAt: r.CreatedAt.UTC(),
	}
	if r.DefaultGroupID != nil {
		a.DefaultGroupID = *r.DefaultGroupID
	}
	if r.UpdatedAt != nil {
		u := r.UpdatedAt.UTC()
		a.UpdatedAt = &u
	}
	if r.Credentials == "" {
		return a, nil
	}
	if s.keys == nil {
		return channels.Account{}, errs.E(op, errs.Internal,
			"channel account %s has credentials but no credentials key is configured", r.ID)
	}
	pt, err := s.keys.Open(r.Credentials, binding(r.TenantID, r.ID))
	if err != nil {
		return channels.Account{}, &errs.Error{Op: op, Code: errs.Internal, Err: err,
			Msg: "credentials of channel account " + r.ID + ": " + errs.MessageOf(err)}
	}
	a.Credentials = pt
	return a, nil
}

// seal returns the column value of a's credentials: "" for none.
func (s *Store) seal(op string, a channels.Account) (string, error) {
	c := bytes.TrimSpace(a.Credentials)
	if len(c) == 0 || string(c) == "null" {
		return "", nil
	}
	if !json.Valid(c) {
		return "", errs.E(op, errs.Invalid, "credentials: must be JSON")
	}
	if s.keys == nil {
		return "", errs.E(op, errs.Internal, "no credentials key is configured: credentials cannot be stored")
	}
	sealed, err := s.keys.Seal(c, binding(a.TenantID, a.ID))
	return sealed, errs.Wrap(op, err)
}

// ts is a time as stored: UTC, microseconds.
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func settingsText(raw json.RawMessage) string {
	if len(bytes.TrimSpace(raw)) == 0 {
		return "{}"
	}
	return string(raw)
}

// AccountCreate implements channels.AccountStore. The account is stored
// at version 1 with the Enabled it has; a zero SessionCost is stored as
// the default.
func (s *Store) AccountCreate(ctx context.Context, a channels.Account) error {
	const op = "channelsql.AccountCreate"
	if a.SessionCost == 0 {
		a.SessionCost = channels.DefaultSessionCost
	}
	if err := channels.ValidateSessionCost(a.SessionCost); err != nil {
		return errs.Wrap(op, err)
	}
	creds, err := s.seal(op, a)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO channel_accounts (`+accountCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, NULL)`),
		a.TenantID, a.ID, string(a.Type), a.Name, a.PublicKey, a.Secret, nullable(a.DefaultGroupID), settingsText(a.Settings),
		a.SessionCost, creds, a.Enabled, ts(a.CreatedAt))
	return errs.Wrap(op, db.Translate(err))
}

// AccountGet implements channels.AccountStore.
func (s *Store) AccountGet(ctx context.Context, tenantID, id string) (channels.Account, error) {
	const op = "channelsql.AccountGet"
	var r accountRow
	err := s.db.GetStmt(ctx, s.db, &r, s.db.Rebind(`SELECT `+accountCols+` FROM channel_accounts WHERE tenant_id = ? AND id = ?`), tenantID, id)
	if err != nil {
		return channels.Account{}, errs.Wrap(op, db.Translate(err))
	}
	return s.account(op, r)
}

// AccountByKey implements channels.AccountStore. It returns disabled
// accounts too, with Enabled false: callers that take traffic (webhooks,
// the web-chat widget) refuse them.
func (s *Store) AccountByKey(ctx context.Context, key string) (channels.Account, error) {
	const op = "channelsql.AccountByKey"
	var r accountRow
	err := s.db.GetContext(ctx, &r, s.db.Rebind(`SELECT `+accountCols+` FROM channel_accounts WHERE public_key = ?`), key)
	if err != nil {
		return channels.Account{}, errs.Wrap(op, db.Translate(err))
	}
	return s.account(op, r)
}

// AccountList implements channels.AccountStore: every account of the
// tenant, oldest first.
func (s *Store) AccountList(ctx context.Context, tenantID string) ([]channels.Account, error) {
	return s.list(ctx, "channelsql.AccountList", tenantID, channels.AccountFilter{})
}

// AccountListFiltered implements channels.AccountAdminStore.
func (s *Store) AccountListFiltered(ctx context.Context, tenantID string, f channels.AccountFilter) ([]channels.Account, error) {
	return s.list(ctx, "channelsql.AccountListFiltered", tenantID, f)
}

func (s *Store) list(ctx context.Context, op, tenantID string, f channels.AccountFilter) ([]channels.Account, error) {
	q := `SELECT ` + accountCols + ` FROM channel_accounts WHERE tenant_id = ?`
	args := []any{tenantID}
	if f.Enabled != nil {
		q += ` AND enabled = ?`
		args = append(args, *f.Enabled)
	}
	if f.Type != "" {
		q += ` AND type = ?`
		args = append(args, string(f.Type))
	}
	var rows []accountRow
	if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(q+` ORDER BY created_at, id`), args...); err != nil {
		return nil, errs.Wrap(op, db.Translate(err))
	}
	out := make([]channels.Account, len(rows))
	for i, r := range rows {
		a, err := s.account(op, r)
		if err != nil {
			return nil, err
		}
		out[i] = a
	}
	return out, nil
}

// AccountUpdate implements channels.AccountAdminStore. A nil UpdatedAt is
// the time of the write.
func (s *Store) AccountUpdate(ctx context.Context, a channels.Account) (channels.Account, error) {
	const op = "channelsql.AccountUpdate"
	if err := channels.ValidateSessionCost(a.SessionCost); err != nil {
		return channels.Account{}, errs.Wrap(op, err)
	}
	creds, err := s.seal(op, a)
	if err != nil {
		return channels.Account{}, err
	}
	at := s.clock.Now()
	if a.UpdatedAt != nil {
		at = *a.UpdatedAt
	}
	at = ts(at)
	var kept struct {
		Type      string    `db:"type"`
		Version   int64     `db:"version"`
		CreatedAt time.Time `db:"created_at"`
	}
	err = s.db.GetContext(ctx, &kept, s.db.Rebind(`UPDATE channel_accounts SET name = ?, public_key = ?, secret = ?,
		default_group_id = ?, settings = ?, session_cost = ?, credentials = ?, enabled = ?, version = version + 1, updated_at = ?
		WHERE tenant_id = ? AND id = ? AND version = ? RETURNING type, version, created_at`),
		a.Name, a.PublicKey, a.Secret, nullable(a.DefaultGroupID), settingsText(a.Settings), a.SessionCost, creds, a.Enabled, at,
		a.TenantID, a.ID, a.Version)
	if errs.Is(db.Translate(err), errs.NotFound) {
		return channels.Account{}, s.staleOrMissing(ctx, s.db, op, a.TenantID, a.ID, a.Version)
	}
	if err != nil {
		return channels.Account{}, errs.Wrap(op, db.Translate(err))
	}
	a.Type, a.Version, a.CreatedAt, a.UpdatedAt = channels.Type(kept.Type), kept.Version, kept.CreatedAt.UTC(), &at
	if len(bytes.TrimSpace(a.Credentials)) == 0 || string(bytes.TrimSpace(a.Credentials)) == "null" {
		a.Credentials = nil
	}
	a.Settings = []byte(settingsText(a.Settings))
	return a, nil
}

// staleOrMissing tells why a versioned write hit no row: NotFound, or
// Conflict with the stored version in the details.
func (s *Store) staleOrMissing(ctx context.Context, ex db.Executor, op, tenantID, id string, version int64) error {
	var cur int64
	err := db.Translate(ex.GetContext(ctx, &cur, ex.Rebind(`SELECT version FROM channel_accounts WHERE tenant_id = ? AND id = ?`), tenantID, id))
	if errs.Is(err, errs.NotFound) {
		return errs.E(op, errs.NotFound, "channel account not found")
	}
	if err != nil {
		return errs.Wrap(op, err)
	}
	return errs.E(op, errs.Conflict, "channel account %s changed: version %d is stale, the current version is %d", id, version, cur).
		With("version", cur)
}

// openStates are the session states that still use their account.
var openStates = []session.State{session.StateBot, session.StateQueued, session.StateOffered, session.StateActive, session.StateWrapup}

// AccountDelete implements channels.AccountAdminStore. The checks and the
// delete run in one transaction holding the account's row lock (on
// PostgreSQL; SQLite serialises writers), so a concurrent update cannot
// slip between them. A session that starts on the account while it is
// being deleted is not seen: disable the account first to stop new ones.
// History (conversations, messages, identities) keeps the account id.
func (s *Store) AccountDelete(ctx context.Context, tenantID, id string, version int64) error {
	const op = "channelsql.AccountDelete"
	lock := ""
	if s.db.Dialect == db.Postgres {
		lock = " FOR UPDATE"
	}
	err := s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		var cur int64
		err := db.Translate(tx.GetContext(ctx, &cur, tx.Rebind(`SELECT version FROM channel_accounts WHERE tenant_id = ? AND id = ?`+lock), tenantID, id))
		if errs.Is(err, errs.NotFound) {
			return errs.E(op, errs.NotFound, "channel account not found")
		}
		if err != nil {
			return err
		}
		if version != 0 && cur != version {
			return errs.E(op, errs.Conflict, "channel account %s changed: version %d is stale, the current version is %d", id, version, cur).
				With("version", cur)
		}
		states := make([]string, len(openStates))
		for i, st := range openStates {
			states[i] = string(st)
		}
		q, args, err := sqlx.In(`SELECT COUNT(*) FROM sessions WHERE tenant_id = ? AND account_id = ? AND state IN (?)`, tenantID, id, states)
		if err != nil {
			return err
		}
		var open int
		if err := tx.GetContext(ctx, &open, tx.Rebind(q), args...); err != nil {
			return db.Translate(err)
		}
		if open > 0 {
			return errs.E(op, errs.Conflict, "the account has %d open sessions; disable it and let them close first", open).
				With("open_sessions", open)
		}
		var unsent int
		if err := tx.GetContext(ctx, &unsent, tx.Rebind(`SELECT COUNT(*) FROM outbox WHERE tenant_id = ? AND account_id = ? AND state IN ('pending', 'sending')`),
			tenantID, id); err != nil {
			return db.Translate(err)
		}
		if unsent > 0 {
			return errs.E(op, errs.Conflict, "the account has %d messages waiting in the outbox; let them go or fail first", unsent).
				With("unsent_messages", unsent)
		}
		var inbound int
		if err := tx.GetContext(ctx, &inbound, tx.Rebind(`SELECT COUNT(*) FROM inbound_log WHERE tenant_id = ? AND account_id = ?`),
			tenantID, id); err != nil {
			return db.Translate(err)
		}
		if inbound > 0 {
			return errs.E(op, errs.Conflict, "the account has %d received messages not yet taken into their conversations; disable it and try again shortly", inbound).
				With("inbound_messages", inbound)
		}
		// The cursor goes with its account (ON DELETE CASCADE too, but
		// SQLite enforces foreign keys only with the pragma on).
		if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM channel_cursors WHERE tenant_id = ? AND account_id = ?`), tenantID, id); err != nil {
			return db.Translate(err)
		}
		_, err = tx.ExecContext(ctx, tx.Rebind(`DELETE FROM channel_accounts WHERE tenant_id = ? AND id = ?`), tenantID, id)
		return db.Translate(err)
	})
	return errs.Wrap(op, err)
}

// CredentialsRekey re-seals, with the keyring's current key, the
// credentials of every account sealed with an older key, and returns how
// many it re-sealed. After it ran on one node, the old keys can leave the
// configuration. Each row is rewritten only if its credentials are still
// the ones read (a concurrent update wins); the version does not change,
// since the account did not.
func (s *Store) CredentialsRekey(ctx context.Context) (int, error) {
	const op = "channelsql.CredentialsRekey"
	if s.keys == nil {
		return 0, errs.E(op, errs.Internal, "no credentials key is configured")
	}
	var rows []struct {
		TenantID    string `db:"tenant_id"`
		ID          string `db:"id"`
		Credentials string `db:"credentials"`
	}
	prefix := "v1:" + s.keys.CurrentID() + ":"
	if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(`SELECT tenant_id, id, credentials FROM channel_accounts
		WHERE credentials <> '' AND substr(credentials, 1, ?) <> ?`), len(prefix), prefix); err != nil {
		return 0, errs.Wrap(op, db.Translate(err))
	}
	n := 0
	for _, r := range rows {
		if s.keys.Current(r.Credentials) {
			continue
		}
		b := binding(r.TenantID, r.ID)
		pt, err := s.keys.Open(r.Credentials, b)
		if err != nil {
			return n, &errs.Error{Op: op, Code: errs.Internal, Err: err,
				Msg: "credentials of channel account " + r.ID + ": " + errs.MessageOf(err)}
		}
		sealed, err := s.keys.Seal(pt, b)
		if err != nil {
			return n, errs.Wrap(op, err)
		}
		res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE channel_accounts SET credentials = ? WHERE tenant_id = ? AND id = ? AND credentials = ?`),
			sealed, r.TenantID, r.ID, r.Credentials)
		if err != nil {
			return n, errs.Wrap(op, db.Translate(err))
		}
		if k, _ := res.RowsAffected(); k == 1 {
			n++
		}
	}
	return n, nil
}

// CursorGet returns the stored read position of a pull-based account; ""
// when there is none yet (pull from the provider's start).
func (s *Store) CursorGet(ctx context.Context, tenantID, accountID string) (string, error) {
	var c string
	err := db.Translate(s.db.GetContext(ctx, &c, s.db.Rebind(`SELECT cursor FROM channel_cursors WHERE tenant_id = ? AND account_id = ?`),
		tenantID, accountID))
	if errs.Is(err, errs.NotFound) {
		return "", nil
	}
	return c, errs.Wrap("channelsql.CursorGet", err)
}

// CursorSet stores the read position of a pull-based account, once the
// messages before it are stored. The account must exist (errs.Invalid
// otherwise).
func (s *Store) CursorSet(ctx context.Context, tenantID, accountID, cursor string) error {
	const op = "channelsql.CursorSet"
	if strings.TrimSpace(tenantID) == "" || strings.TrimSpace(accountID) == "" {
		return errs.E(op, errs.Invalid, "tenant and account are required")
	}
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO channel_cursors (tenant_id, account_id, cursor, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (tenant_id, account_id) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at`),
		tenantID, accountID, cursor, ts(s.clock.Now()))
	return errs.Wrap(op, db.Translate(err))
}
