package kbsql

import (
	"context"
	"strings"
	"time"

	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/kb"
)

const entryColumns = `tenant_id, id, question, variants, answer, keywords, category, language, enabled,
	version, created_at, updated_at, updated_by`

type entryRow struct {
	TenantID  string    `db:"tenant_id"`
	ID        string    `db:"id"`
	Question  string    `db:"question"`
	Variants  string    `db:"variants"`
	Answer    string    `db:"answer"`
	Keywords  string    `db:"keywords"`
	Category  string    `db:"category"`
	Language  string    `db:"language"`
	Enabled   bool      `db:"enabled"`
	Version   int       `db:"version"`
	CreatedAt time.Time `db:"created_at"`
	UpdatedAt time.Time `db:"updated_at"`
	UpdatedBy string    `db:"updated_by"`
}

func (r entryRow) toDomain() (kb.Entry, error) {
	e := kb.Entry{
		TenantID:  r.TenantID,
		ID:        r.ID,
		Question:  r.Question,
		Category:  r.Category,
		Language:  kb.Language(r.Language),
		Enabled:   r.Enabled,
		Version:   r.Version,
		CreatedAt: r.CreatedAt.UTC(),
		UpdatedAt: r.UpdatedAt.UTC(),
		UpdatedBy: r.UpdatedBy,
	}
	var err error
	if e.Variants, err = decodeStrings("variants", r.Variants); err != nil {
		return kb.Entry{}, err
	}
	if e.Keywords, err = decodeStrings("keywords", r.Keywords); err != nil {
		return kb.Entry{}, err
	}
	if err = decode("answer", r.Answer, &e.Answer); err != nil {
		return kb.Entry{}, err
	}
	e.Answer = e.Answer.Normalize()
	return e, nil
}

// entryCols are the JSON columns of an entry, encoded.
type entryCols struct{ variants, answer, keywords string }

func encodeEntry(e kb.Entry) (entryCols, error) {
	var c entryCols
	var err error
	if c.variants, err = encode(e.Variants); err != nil {
		return c, err
	}
	if c.answer, err = encode(e.Answer); err != nil {
		return c, err
	}
	c.keywords, err = encode(e.Keywords)
	return c, err
}

// prepareEntry checks an entry for a write and puts it in stored form.
func prepareEntry(op string, e kb.Entry) (kb.Entry, error) {
	if err := requireIDs(op, e.TenantID, e.ID); err != nil {
		return kb.Entry{}, err
	}
	e = e.Normalize()
	if err := e.Validate(); err != nil {
		return kb.Entry{}, errs.Wrap(op, err)
	}
	return e, nil
}

// EntryCreate implements kb.Store. UpdatedBy is set to actor; a zero
// CreatedAt is the time of the write and a zero UpdatedAt is CreatedAt. An
// id taken in the tenant is errs.Duplicate; the id of a deleted entry may
// be used again, and its history goes on.
func (s *Store) EntryCreate(ctx context.Context, e kb.Entry, actor string) (kb.Entry, error) {
	const op = "kbsql.EntryCreate"
	e, err := prepareEntry(op, e)
	if err != nil {
		return kb.Entry{}, err
	}
	e.Version = 1
	e.CreatedAt = ts(e.CreatedAt)
	if e.UpdatedAt.IsZero() {
		e.UpdatedAt = e.CreatedAt
	}
	e.UpdatedAt = ts(e.UpdatedAt)
	e.UpdatedBy = actor
	cols, err := encodeEntry(e)
	if err != nil {
		return kb.Entry{}, errs.Wrap(op, err)
	}
	var out kb.Entry
	err = s.inTx(ctx, op, func(tx *Store) error {
		if err := tx.bump(ctx, e.TenantID); err != nil {
			return err
		}
		// DO NOTHING rather than a unique violation: on PostgreSQL a failed
		// statement would poison the caller's transaction (an import).
		n, err := tx.exec(ctx, `INSERT INTO kb_entries (`+entryColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, id) DO NOTHING`,
			e.TenantID, e.ID, e.Question, cols.variants, cols.answer, cols.keywords, e.Category, string(e.Language),
			e.Enabled, e.Version, e.CreatedAt, e.UpdatedAt, e.UpdatedBy)
		if err != nil {
			return err
		}
		if n == 0 {
			return errs.E(op, errs.Duplicate, "entry %s already exists", e.ID)
		}
		// e is in stored form already (normalised, times at the stored
		// precision), so it is what a read returns: no read-back.
		out = e
		return tx.changeInsert(ctx, out, kb.ActionCreate, out.Version, actor, out.UpdatedAt)
	})
	if err != nil {
		return kb.Entry{}, fail(op, err, "entry")
	}
	return out, nil
}

func entryGet(ctx context.Context, s *Store, tenantID, id string) (kb.Entry, error) {
	var r entryRow
	if err := s.get(ctx, &r, `SELECT `+entryColumns+` FROM kb_entries WHERE tenant_id = ? AND id = ?`, tenantID, id); err != nil {
		return kb.Entry{}, err
	}
	return r.toDomain()
}

// EntryGet implements kb.Store.
func (s *Store) EntryGet(ctx context.Context, tenantID, id string) (kb.Entry, error) {
	e, err := entryGet(ctx, s, tenantID, id)
	if err != nil {
		return kb.Entry{}, fail("kbsql.EntryGet", err, "entry")
	}
	return e, nil
}

// likeEscape escapes the LIKE wildcards of a literal text, with \ as the
// escape character.
var likeEscape = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// EntryList implements kb.Store. The Text filter folds case with the
// database's LOWER: Unicode-aware on PostgreSQL, ASCII only on SQLite.
// Questions are ordered in byte order on both.
func (s *Store) EntryList(ctx context.Context, tenantID string, f kb.EntryFilter) ([]kb.Entry, error) {
	const op = "kbsql.EntryList"
	var q strings.Builder
	args := []any{tenantID}
	q.WriteString(`SELECT ` + entryColumns + ` FROM kb_entries WHERE tenant_id = ?`)
	if f.Category != "" {
		q.WriteString(` AND category = ?`)
		args = append(args, f.Category)
	}
	if f.Language != kb.LangAuto {
		q.WriteString(` AND language = ?`)
		args = append(args, string(f.Language))
	}
	if f.Enabled != nil {
		q.WriteString(` AND enabled = ?`)
		args = append(args, *f.Enabled)
	}
	if f.Text != "" {
		q.WriteString(` AND LOWER(question) LIKE ? ESCAPE '\'`)
		args = append(args, "%"+likeEscape.Replace(strings.ToLower(f.Text))+"%")
	}
	q.WriteString(` ORDER BY ` + s.collate("question") + `, ` + s.collate("id"))
	switch {
	case f.Limit > 0:
		q.WriteString(` LIMIT ? OFFSET ?`)
		args = append(args, f.Limit, max(f.Offset, 0))
	case f.Offset > 0 && s.db.Dialect == db.SQLite:
		q.WriteString(` LIMIT -1 OFFSET ?`) // SQLite has no OFFSET without LIMIT
		args = append(args, f.Offset)
	case f.Offset > 0:
		q.WriteString(` OFFSET ?`)
		args = append(args, f.Offset)
	}
	var rows []entryRow
	if err := s.sel(ctx, &rows, q.String(), args...); err != nil {
		return nil, fail(op, err, "entry")
	}
	out := make([]kb.Entry, len(rows))
	for i, r := range rows {
		e, err := r.toDomain()
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		out[i] = e
	}
	return out, nil
}

// EntryUpdate implements kb.Store. UpdatedBy is set to actor; a zero
// UpdatedAt is the time of the write. A stale version is errs.Conflict
// whose details hold the stored "version".
func (s *Store) EntryUpdate(ctx context.Context, e kb.Entry, actor string) (kb.Entry, error) {
	const op = "kbsql.EntryUpdate"
	e, err := prepareEntry(op, e)
	if err != nil {
		return kb.Entry{}, err
	}
	e.UpdatedAt = ts(e.UpdatedAt)
	e.UpdatedBy = actor
	cols, err := encodeEntry(e)
	if err != nil {
		return kb.Entry{}, errs.Wrap(op, err)
	}
	var out kb.Entry
	err = s.inTx(ctx, op, func(tx *Store) error {
		if err := tx.bump(ctx, e.TenantID); err != nil {
			return err
		}
		// RETURNING gives what the row keeps of its own (the creation time);
		// the rest is e in stored form, so there is no read-back.
		var kept struct {
			Version   int       `db:"version"`
			CreatedAt time.Time `db:"created_at"`
		}
		err := tx.get(ctx, &kept, `UPDATE kb_entries SET question = ?, variants = ?, answer = ?, keywords = ?,
			category = ?, language = ?, enabled = ?, version = version + 1, updated_at = ?, updated_by = ?
			WHERE tenant_id = ? AND id = ? AND version = ? RETURNING version, created_at`,
			e.Question, cols.variants, cols.answer, cols.keywords, e.Category, string(e.Language), e.Enabled,
			e.UpdatedAt, e.UpdatedBy, e.TenantID, e.ID, e.Version)
		if errs.Is(err, errs.NotFound) {
			return staleOrMissing(ctx, tx, op, "kb_entries", "entry", e.TenantID, e.ID, e.Version)
		}
		if err != nil {
			return err
		}
		out = e
		out.Version, out.CreatedAt = kept.Version, kept.CreatedAt.UTC()
		return tx.changeInsert(ctx, out, kb.ActionUpdate, out.Version, actor, out.UpdatedAt)
	})
	if err != nil {
		return kb.Entry{}, fail(op, err, "entry")
	}
	return out, nil
}

// staleOrMissing tells why a versioned UPDATE hit no row: NotFound, or
// Conflict with the stored version in the details.
func staleOrMissing(ctx context.Context, s *Store, op, table, what, tenantID, id string, version int) error {
	var cur int
	err := s.get(ctx, &cur, `SELECT version FROM `+table+` WHERE tenant_id = ? AND id = ?`, tenantID, id)
	if errs.Is(err, errs.NotFound) {
		return errs.E(op, errs.NotFound, "%s not found", what)
	}
	if err != nil {
		return err
	}
	return errs.E(op, errs.Conflict, "%s %s changed: version %d is stale, the current version is %d", what, id, version, cur).
		With("version", cur)
}

// EntryDelete implements kb.Store. The delete change has the entry's
// version plus one: it is the entry's last change.
func (s *Store) EntryDelete(ctx context.Context, tenantID, id, actor string) error {
	const op = "kbsql.EntryDelete"
	err := s.inTx(ctx, op, func(tx *Store) error {
		if err := tx.bump(ctx, tenantID); err != nil {
			return err
		}
		var r entryRow
		if err := tx.get(ctx, &r, `SELECT `+entryColumns+` FROM kb_entries WHERE tenant_id = ? AND id = ?`+tx.lockSuffix(), tenantID, id); err != nil {
			return err
		}
		e, err := r.toDomain()
		if err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM kb_entries WHERE tenant_id = ? AND id = ?`, tenantID, id); err != nil {
			return err
		}
		return tx.changeInsert(ctx, e, kb.ActionDelete, e.Version+1, actor, ts(time.Time{}))
	})
	if err != nil {
		return fail(op, err, "entry")
	}
	return nil
}

const changeColumns = `tenant_id, entry_id, version, action, actor, at, entry`

type changeRow struct {
	TenantID string    `db:"tenant_id"`
	EntryID  string    `db:"entry_id"`
	Version  int       `db:"version"`
	Action   string    `db:"action"`
	Actor    string    `db:"actor"`
	At       time.Time `db:"at"`
	Entry    string    `db:"entry"`
}

func (r changeRow) toDomain() (kb.Change, error) {
	c := kb.Change{
		EntryID: r.EntryID,
		Version: r.Version,
		Action:  kb.Action(r.Action),
		Actor:   r.Actor,
		At:      r.At.UTC(),
	}
	if err := decode("change entry", r.Entry, &c.Entry); err != nil {
		return kb.Change{}, err
	}
	// The snapshot leaves the tenant out (json:"-"); it is the row's.
	c.Entry.TenantID = r.TenantID
	c.Entry.CreatedAt = c.Entry.CreatedAt.UTC()
	c.Entry.UpdatedAt = c.Entry.UpdatedAt.UTC()
	c.Entry.Answer = c.Entry.Answer.Normalize()
	if c.Entry.Variants == nil {
		c.Entry.Variants = []string{}
	}
	if c.Entry.Keywords == nil {
		c.Entry.Keywords = []string{}
	}
	return c, nil
}

// changeInsert records one change of e in its history.
func (s *Store) changeInsert(ctx context.Context, e kb.Entry, action kb.Action, version int, actor string, at time.Time) error {
	snap, err := encode(e)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO kb_entry_changes (`+changeColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		e.TenantID, e.ID, version, string(action), actor, ts(at), snap)
	return err
}

// EntryHistory implements kb.Store.
func (s *Store) EntryHistory(ctx context.Context, tenantID, id string) ([]kb.Change, error) {
	const op = "kbsql.EntryHistory"
	var rows []changeRow
	if err := s.sel(ctx, &rows, `SELECT `+changeColumns+` FROM kb_entry_changes
		WHERE tenant_id = ? AND entry_id = ? ORDER BY seq DESC`, tenantID, id); err != nil {
		return nil, fail(op, err, "entry")
	}
	if len(rows) == 0 {
		return nil, errs.E(op, errs.NotFound, "entry not found")
	}
	out := make([]kb.Change, len(rows))
	for i, r := range rows {
		c, err := r.toDomain()
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		out[i] = c
	}
	return out, nil
}
