package sessionsql

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/session"
)

// newID returns a time-ordered id for rows the store creates itself.
func newID() string { return uuid.Must(uuid.NewV7()).String() }

// contactFullColumns is the select list of a contact with the columns of
// migration 0006; erased contacts (erased_at set) are filtered by every
// query, never read.
const contactFullColumns = `tenant_id, id, display_name, vip_level, tags, attributes, merged_into,
	created_at, updated_at`

type contactFullRow struct {
	TenantID    string         `db:"tenant_id"`
	ID          string         `db:"id"`
	DisplayName string         `db:"display_name"`
	VIPLevel    int            `db:"vip_level"`
	Tags        string         `db:"tags"`       // JSON array of strings
	Attributes  string         `db:"attributes"` // JSON object of strings
	MergedInto  sql.NullString `db:"merged_into"`
	CreatedAt   time.Time      `db:"created_at"`
	UpdatedAt   sql.NullTime   `db:"updated_at"`
}

// contact maps the row; empty tags and attributes become nil, so a contact
// read back equals the one ContactResolve created.
func (r contactFullRow) contact() (session.Contact, error) {
	c := session.Contact{
		TenantID:    r.TenantID,
		ID:          r.ID,
		DisplayName: r.DisplayName,
		VIPLevel:    r.VIPLevel,
		MergedInto:  r.MergedInto.String,
		CreatedAt:   r.CreatedAt.UTC(),
		UpdatedAt:   timePtr(r.UpdatedAt),
	}
	if r.Tags != "" {
		if err := json.Unmarshal([]byte(r.Tags), &c.Tags); err != nil {
			return session.Contact{}, fmt.Errorf("contact %s: tags: %w", r.ID, err)
		}
	}
	if r.Attributes != "" {
		if err := json.Unmarshal([]byte(r.Attributes), &c.Attributes); err != nil {
			return session.Contact{}, fmt.Errorf("contact %s: attributes: %w", r.ID, err)
		}
	}
	if len(c.Tags) == 0 {
		c.Tags = nil
	}
	if len(c.Attributes) == 0 {
		c.Attributes = nil
	}
	return c, nil
}

func contactsFromRows(rows []contactFullRow) ([]session.Contact, error) {
	out := make([]session.Contact, 0, len(rows))
	for _, r := range rows {
		c, err := r.contact()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// tagsJSON and attributesJSON encode profile fields for their columns,
// empty as [] and {}.
func tagsJSON(tags []string) string {
	if len(tags) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(tags)
	return string(b)
}

func attributesJSON(a map[string]string) string {
	if len(a) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(a)
	return string(b)
}

const identityColumns = `tenant_id, account_id, external_id, contact_id, channel, union_id, phone,
	phone_verified, display_name, last_inbound_at, created_at`

type identityRow struct {
	TenantID      string         `db:"tenant_id"`
	AccountID     string         `db:"account_id"`
	ExternalID    string         `db:"external_id"`
	ContactID     string         `db:"contact_id"`
	Channel       string         `db:"channel"`
	UnionID       sql.NullString `db:"union_id"`
	Phone         sql.NullString `db:"phone"`
	PhoneVerified bool           `db:"phone_verified"`
	DisplayName   string         `db:"display_name"`
	LastInboundAt sql.NullTime   `db:"last_inbound_at"`
	CreatedAt     time.Time      `db:"created_at"`
}

func (r identityRow) identity() session.Identity {
	return session.Identity{
		TenantID:      r.TenantID,
		AccountID:     r.AccountID,
		ExternalID:    r.ExternalID,
		ContactID:     r.ContactID,
		Channel:       r.Channel,
		UnionID:       r.UnionID.String,
		Phone:         r.Phone.String,
		PhoneVerified: r.PhoneVerified,
		DisplayName:   r.DisplayName,
		LastInboundAt: timePtr(r.LastInboundAt),
		CreatedAt:     r.CreatedAt.UTC(),
	}
}

func identitiesFromRows(rows []identityRow) []session.Identity {
	out := make([]session.Identity, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.identity())
	}
	return out
}

// maxMergeHops bounds how far ContactResolve follows merged_into. Merges
// move identities to the survivor, so an identity points to a merged
// contact only after a race with a merge; a chain longer than this means
// corrupt data, not a real history.
const maxMergeHops = 16

// ContactResolve returns the contact behind an identity, creating contact
// and identity on first sight. Two concurrent first sightings end with one
// contact: the identity insert of the loser does nothing (ON CONFLICT), so
// it removes the contact it had just created and reads the winner's. An
// identity of a merged contact resolves to the survivor.
func (s *Store) ContactResolve(ctx context.Context, tenantID, accountID, externalID, displayName string, now time.Time) (session.Contact, error) {
	const op = "sessionsql.ContactResolve"
	c, err := s.contactByIdentity(ctx, tenantID, accountID, externalID)
	switch {
	case err == nil:
		return c, nil
	case !errs.Is(err, errs.NotFound):
		return session.Contact{}, errs.Wrap(op, err)
	}
	err = s.inTx(ctx, op, func(tx *Store) error {
		row := contactRow{TenantID: tenantID, ID: newID(), DisplayName: displayName, CreatedAt: dbTime(now)}
		if _, err := tx.exec(ctx, `INSERT INTO contacts (`+contactColumns+`) VALUES (?, ?, ?, ?, ?)`,
			row.TenantID, row.ID, row.DisplayName, row.VIPLevel, row.CreatedAt); err != nil {
			return err
		}
		n, err := tx.exec(ctx, `INSERT INTO identities (tenant_id, account_id, external_id, contact_id, created_at)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (tenant_id, account_id, external_id) DO NOTHING`,
			tenantID, accountID, externalID, row.ID, row.CreatedAt)
		if err != nil {
			return err
		}
		if n == 1 {
			c = row.contact()
			return nil
		}
		// Lost the race for the identity: drop our contact, take theirs.
		if _, err := tx.exec(ctx, `DELETE FROM contacts WHERE tenant_id = ? AND id = ?`, tenantID, row.ID); err != nil {
			return err
		}
		c, err = tx.contactByIdentity(ctx, tenantID, accountID, externalID)
		return err
	})
	if err != nil {
		return session.Contact{}, errs.Wrap(op, err)
	}
	return c, nil
}

// contactByIdentity reads the contact of an identity, following
// merged_into to the survivor.
func (s *Store) contactByIdentity(ctx context.Context, tenantID, accountID, externalID string) (session.Contact, error) {
	var r contactFullRow
	err := s.get(ctx, &r, `SELECT `+prefixed("c", contactFullColumns)+`
		FROM identities i
		JOIN contacts c ON c.tenant_id = i.tenant_id AND c.id = i.contact_id
		WHERE i.tenant_id = ? AND i.account_id = ? AND i.external_id = ? AND c.erased_at IS NULL`,
		tenantID, accountID, externalID)
	if err != nil {
		return session.Contact{}, err
	}
	c, err := r.contact()
	for hops := 0; err == nil && c.MergedInto != ""; hops++ {
		if hops == maxMergeHops {
			return session.Contact{}, errs.E("", errs.Internal, "contact %s: merged_into chain longer than %d", r.ID, maxMergeHops)
		}
		c, err = s.contactGet(ctx, tenantID, c.MergedInto)
	}
	return c, err
}

// ContactGet returns one contact that is not erased.
func (s *Store) ContactGet(ctx context.Context, tenantID, id string) (session.Contact, error) {
	c, err := s.contactGet(ctx, tenantID, id)
	return c, errs.Wrap("sessionsql.ContactGet", err)
}

func (s *Store) contactGet(ctx context.Context, tenantID, id string) (session.Contact, error) {
	var r contactFullRow
	if err := s.get(ctx, &r, `SELECT `+contactFullColumns+` FROM contacts
		WHERE tenant_id = ? AND id = ? AND erased_at IS NULL`, tenantID, id); err != nil {
		if errs.Is(err, errs.NotFound) {
			return session.Contact{}, errs.E("", errs.NotFound, "contact %s not found", id)
		}
		return session.Contact{}, err
	}
	return r.contact()
}

// ContactSetVIP sets a contact's VIP level.
func (s *Store) ContactSetVIP(ctx context.Context, tenantID, id string, level int) error {
	return s.execOne(ctx, "sessionsql.ContactSetVIP", "contact", id,
		`UPDATE contacts SET vip_level = ? WHERE tenant_id = ? AND id = ? AND erased_at IS NULL`, level, tenantID, id)
}

// likeEscaper makes user text literal inside a LIKE pattern (ESCAPE '\').
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// ContactList lists a tenant's contacts, newest first. A name search reads
// every contact of the tenant (a substring match uses no index); the exact
// matches go through the identity indexes.
func (s *Store) ContactList(ctx context.Context, tenantID string, f session.ContactFilter) ([]session.Contact, error) {
	const op = "sessionsql.ContactList"
	query := `SELECT ` + contactFullColumns + ` FROM contacts WHERE tenant_id = ? AND erased_at IS NULL`
	args := []any{tenantID}
	if !f.IncludeMerged {
		query += ` AND merged_into IS NULL`
	}
	if q := strings.TrimSpace(f.Query); q != "" {
		if len(q) > session.MaxQueryLen {
			return nil, errs.E(op, errs.Invalid, "query: longer than %d bytes", session.MaxQueryLen)
		}
		phone := q
		if p, err := session.NormalizePhone(q); err == nil {
			phone = p
		}
		like := "%" + likeEscaper.Replace(strings.ToLower(q)) + "%"
		query += ` AND (id = ? OR LOWER(display_name) LIKE ? ESCAPE '\'
			OR id IN (SELECT contact_id FROM identities WHERE tenant_id = ?
				AND (external_id = ? OR union_id = ? OR phone = ? OR LOWER(display_name) LIKE ? ESCAPE '\')))`
		args = append(args, q, like, tenantID, q, q, phone, like)
	}
	if f.After != "" {
		var at time.Time
		if err := s.get(ctx, &at, `SELECT created_at FROM contacts WHERE tenant_id = ? AND id = ?`, tenantID, f.After); err != nil {
			if errs.Is(err, errs.NotFound) {
				return nil, errs.E(op, errs.Invalid, "after: no contact %s", f.After)
			}
			return nil, errs.Wrap(op, err)
		}
		at = dbTime(at)
		query += ` AND (created_at < ? OR (created_at = ? AND id < ?))`
		args = append(args, at, at, f.After)
	}
	query += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, clampLimit(f.Limit))
	var rows []contactFullRow
	if err := s.sel(ctx, &rows, query, args...); err != nil {
		return nil, errs.Wrap(op, err)
	}
	out, err := contactsFromRows(rows)
	return out, errs.Wrap(op, err)
}

// ContactUpdate writes only the columns the patch gives, so concurrent
// patches of different fields do not undo each other.
func (s *Store) ContactUpdate(ctx context.Context, tenantID, id string, p session.ContactPatch, now time.Time) (session.Contact, error) {
	const op = "sessionsql.ContactUpdate"
	var name, tags, attrs sql.NullString
	var vip sql.NullInt64
	if p.DisplayName != nil {
		name = sql.NullString{String: *p.DisplayName, Valid: true}
	}
	if p.VIPLevel != nil {
		vip = sql.NullInt64{Int64: int64(*p.VIPLevel), Valid: true}
	}
	if p.Tags != nil {
		tags = sql.NullString{String: tagsJSON(*p.Tags), Valid: true}
	}
	if p.Attributes != nil {
		attrs = sql.NullString{String: attributesJSON(*p.Attributes), Valid: true}
	}
	var r contactFullRow
	err := s.get(ctx, &r, `UPDATE contacts SET display_name = COALESCE(?, display_name),
			vip_level = COALESCE(?, vip_level), tags = COALESCE(?, tags),
			attributes = COALESCE(?, attributes), updated_at = ?
		WHERE tenant_id = ? AND id = ? AND erased_at IS NULL AND merged_into IS NULL
		RETURNING `+contactFullColumns,
		name, vip, tags, attrs, dbTime(now), tenantID, id)
	if errs.Is(err, errs.NotFound) {
		c, gerr := s.contactGet(ctx, tenantID, id)
		if gerr != nil {
			return session.Contact{}, errs.Wrap(op, gerr)
		}
		return session.Contact{}, errs.E(op, errs.Conflict, "contact %s was merged into %s: change the survivor", id, c.MergedInto).
			With("merged_into", c.MergedInto)
	}
	if err != nil {
		return session.Contact{}, errs.Wrap(op, err)
	}
	c, err := r.contact()
	return c, errs.Wrap(op, err)
}

// ContactIdentities lists a contact's identities, oldest first; an unknown
// contact is NotFound.
func (s *Store) ContactIdentities(ctx context.Context, tenantID, contactID string) ([]session.Identity, error) {
	const op = "sessionsql.ContactIdentities"
	var rows []identityRow
	if err := s.sel(ctx, &rows, `SELECT `+identityColumns+` FROM identities
		WHERE tenant_id = ? AND contact_id = ?
		ORDER BY created_at, account_id, external_id`, tenantID, contactID); err != nil {
		return nil, errs.Wrap(op, err)
	}
	if len(rows) == 0 {
		if _, err := s.contactGet(ctx, tenantID, contactID); err != nil {
			return nil, errs.Wrap(op, err)
		}
	}
	return identitiesFromRows(rows), nil
}

// IdentityGet returns one identity.
func (s *Store) IdentityGet(ctx context.Context, tenantID, accountID, externalID string) (session.Identity, error) {
	var r identityRow
	if err := s.get(ctx, &r, `SELECT `+identityColumns+` FROM identities
		WHERE tenant_id = ? AND account_id = ? AND external_id = ?`, tenantID, accountID, externalID); err != nil {
		if errs.Is(err, errs.NotFound) {
			return session.Identity{}, errs.E("sessionsql.IdentityGet", errs.NotFound, "identity %s/%s not found", accountID, externalID)
		}
		return session.Identity{}, errs.Wrap("sessionsql.IdentityGet", err)
	}
	return r.identity(), nil
}

// factsSet is the SET clause of IdentityUpdateFacts; its parameters are
// factsArgs. Empty facts keep the stored values; a new phone takes the new
// verified flag, the same phone keeps a verification it had; the last
// inbound time only moves forward.
const factsSet = `channel = CASE WHEN ? = '' THEN channel ELSE ? END,
	union_id = COALESCE(?, union_id),
	phone = COALESCE(?, phone),
	phone_verified = CASE WHEN ? IS NULL THEN phone_verified
		WHEN phone = ? THEN (phone_verified OR ?) ELSE ? END,
	display_name = CASE WHEN ? = '' THEN display_name ELSE ? END,
	last_inbound_at = CASE WHEN ? IS NULL THEN last_inbound_at
		WHEN last_inbound_at IS NULL OR last_inbound_at < ? THEN ? ELSE last_inbound_at END`

func factsArgs(f session.IdentityFacts) []any {
	union, phone := nullString(f.UnionID), nullString(f.Phone)
	var at sql.NullTime
	if !f.InboundAt.IsZero() {
		at = sql.NullTime{Time: dbTime(f.InboundAt), Valid: true}
	}
	return []any{f.Channel, f.Channel, union, phone,
		phone, phone, f.PhoneVerified, f.PhoneVerified,
		f.DisplayName, f.DisplayName,
		at, at, at}
}

// identityFactsRow is an identity as updated, with its union id and phone
// before the update.
type identityFactsRow struct {
	identityRow
	OldUnion    sql.NullString `db:"o_union"`
	OldPhone    sql.NullString `db:"o_phone"`
	OldVerified bool           `db:"o_verified"`
}

// IdentityUpdateFacts implements session.ContactStore. A first read
// settles the common case, a message that brings nothing new, without a
// write. Otherwise, on PostgreSQL it is one statement (the old values come
// from a locking CTE, so of concurrent callers bringing the same new fact
// exactly one sees it change); on SQLite, whose writers are serialised
// anyway, a read and an update in one transaction.
func (s *Store) IdentityUpdateFacts(ctx context.Context, tenantID, accountID, externalID string, f session.IdentityFacts) (session.Identity, bool, error) {
	const op = "sessionsql.IdentityUpdateFacts"
	if f.Phone != "" && !session.ValidE164(f.Phone) {
		return session.Identity{}, false, errs.E(op, errs.Invalid, "phone %q is not in E.164 form", f.Phone)
	}
	if len(f.UnionID) > session.MaxUnionIDLen {
		return session.Identity{}, false, errs.E(op, errs.Invalid, "union_id: longer than %d bytes", session.MaxUnionIDLen)
	}
	// Most messages bring nothing new: one read, no write (and no commit
	// to wait for).
	var cur identityRow
	if err := s.get(ctx, &cur, `SELECT `+identityColumns+` FROM identities
		WHERE tenant_id = ? AND account_id = ? AND external_id = ?`, tenantID, accountID, externalID); err != nil {
		if errs.Is(err, errs.NotFound) {
			return session.Identity{}, false, errs.E(op, errs.NotFound, "identity %s/%s not found", accountID, externalID)
		}
		return session.Identity{}, false, errs.Wrap(op, err)
	}
	if !factsChange(cur.identity(), f) {
		return cur.identity(), false, nil
	}
	var r identityFactsRow
	var err error
	if s.db.Dialect == db.Postgres {
		args := append(append([]any{tenantID, accountID, externalID}, factsArgs(f)...), tenantID, accountID, externalID)
		err = s.get(ctx, &r, `WITH old AS (
				SELECT union_id AS o_union, phone AS o_phone, phone_verified AS o_verified FROM identities
				WHERE tenant_id = ? AND account_id = ? AND external_id = ? FOR UPDATE)
			UPDATE identities SET `+pgFactsSet+` FROM old
			WHERE tenant_id = ? AND account_id = ? AND external_id = ?
			RETURNING `+identityColumns+`, o_union, o_phone, o_verified`, args...)
	} else {
		err = s.inTx(ctx, op, func(tx *Store) error {
			if err := tx.get(ctx, &r, `SELECT union_id AS o_union, phone AS o_phone, phone_verified AS o_verified
				FROM identities WHERE tenant_id = ? AND account_id = ? AND external_id = ?`,
				tenantID, accountID, externalID); err != nil {
				return err
			}
			args := append(factsArgs(f), tenantID, accountID, externalID)
			return tx.get(ctx, &r.identityRow, `UPDATE identities SET `+factsSet+`
				WHERE tenant_id = ? AND account_id = ? AND external_id = ?
				RETURNING `+identityColumns, args...)
		})
	}
	if errs.Is(err, errs.NotFound) {
		return session.Identity{}, false, errs.E(op, errs.NotFound, "identity %s/%s not found", accountID, externalID)
	}
	if err != nil {
		return session.Identity{}, false, errs.Wrap(op, err)
	}
	id := r.identity()
	changed := (id.UnionID != "" && id.UnionID != r.OldUnion.String) ||
		(id.Phone != "" && id.PhoneVerified && (id.Phone != r.OldPhone.String || !r.OldVerified))
	return id, changed, nil
}

// factsChange reports whether f would change identity i: a new fact, or a
// message at least session.LastInboundStep after the recorded one.
func factsChange(i session.Identity, f session.IdentityFacts) bool {
	switch {
	case f.Channel != "" && f.Channel != i.Channel,
		f.UnionID != "" && f.UnionID != i.UnionID,
		f.Phone != "" && (f.Phone != i.Phone || f.PhoneVerified && !i.PhoneVerified),
		f.DisplayName != "" && f.DisplayName != i.DisplayName:
		return true
	}
	return !f.InboundAt.IsZero() && (i.LastInboundAt == nil || !dbTime(f.InboundAt).Before(i.LastInboundAt.Add(session.LastInboundStep)))
}

// pgFactsSet is factsSet with the parameter types PostgreSQL cannot infer
// from a bare "? IS NULL".
var pgFactsSet = strings.NewReplacer(
	"WHEN ? IS NULL THEN phone_verified", "WHEN ?::text IS NULL THEN phone_verified",
	"(phone_verified OR ?) ELSE ? END", "(phone_verified OR ?::boolean) ELSE ?::boolean END",
	"WHEN ? IS NULL THEN last_inbound_at", "WHEN ?::timestamptz IS NULL THEN last_inbound_at",
	"last_inbound_at < ? THEN ? ELSE", "last_inbound_at < ?::timestamptz THEN ?::timestamptz ELSE",
	"CASE WHEN ? = '' THEN channel", "CASE WHEN ?::text = '' THEN channel",
	"CASE WHEN ? = '' THEN display_name", "CASE WHEN ?::text = '' THEN display_name",
).Replace(factsSet)

// ContactSettingsGet returns the tenant's contact settings; a tenant that
// never saved any gets the defaults.
func (s *Store) ContactSettingsGet(ctx context.Context, tenantID string) (session.ContactSettings, error) {
	var r struct {
		AutoMerge bool           `db:"auto_merge_union_id"`
		UpdatedAt time.Time      `db:"updated_at"`
		UpdatedBy sql.NullString `db:"updated_by"`
	}
	err := s.get(ctx, &r, `SELECT auto_merge_union_id, updated_at, updated_by FROM contact_settings WHERE tenant_id = ?`, tenantID)
	switch {
	case errs.Is(err, errs.NotFound):
		return session.ContactSettings{TenantID: tenantID}, nil
	case err != nil:
		return session.ContactSettings{}, errs.Wrap("sessionsql.ContactSettingsGet", err)
	}
	at := r.UpdatedAt.UTC()
	return session.ContactSettings{TenantID: tenantID, AutoMergeUnionID: r.AutoMerge, UpdatedAt: &at, UpdatedBy: r.UpdatedBy.String}, nil
}

// ContactSettingsPut saves the tenant's contact settings (UpdatedAt is
// required); an unknown tenant is Invalid.
func (s *Store) ContactSettingsPut(ctx context.Context, cs session.ContactSettings) error {
	const op = "sessionsql.ContactSettingsPut"
	if cs.UpdatedAt == nil {
		return errs.E(op, errs.Invalid, "updated_at is required")
	}
	_, err := s.exec(ctx, `INSERT INTO contact_settings (tenant_id, auto_merge_union_id, updated_at, updated_by)
		VALUES (?, ?, ?, ?)
		ON CONFLICT (tenant_id) DO UPDATE SET auto_merge_union_id = excluded.auto_merge_union_id,
			updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		cs.TenantID, cs.AutoMergeUnionID, dbTime(*cs.UpdatedAt), nullString(cs.UpdatedBy))
	return errs.Wrap(op, err)
}

// family returns a contact and every contact merged into it, directly or
// through others, none erased; the contact itself comes first. An unknown
// contact is NotFound.
func (s *Store) family(ctx context.Context, tenantID, contactID string) ([]string, error) {
	var ids []string
	if err := s.sel(ctx, &ids, `WITH RECURSIVE fam(id, depth) AS (
			SELECT id, 0 FROM contacts WHERE tenant_id = ? AND id = ? AND erased_at IS NULL
			UNION
			SELECT c.id, fam.depth + 1 FROM contacts c JOIN fam ON c.merged_into = fam.id
			WHERE c.tenant_id = ? AND c.erased_at IS NULL AND fam.depth < 1000)
		SELECT id FROM fam ORDER BY depth, id`, tenantID, contactID, tenantID); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, errs.E("", errs.NotFound, "contact %s not found", contactID)
	}
	return ids, nil
}

// in expands a query with IN (?) lists for the dialect's placeholders.
func in(query string, args ...any) (string, []any, error) {
	return sqlx.In(query, args...)
}
