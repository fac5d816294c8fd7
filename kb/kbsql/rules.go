package kbsql

import (
	"context"
	"time"

	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/kb"
)

const ruleColumns = `tenant_id, id, name, kind, keywords, priority, answer, entry_id, handoff, group_id, enabled,
	version, created_at, updated_at`

type ruleRow struct {
	TenantID  string    `db:"tenant_id"`
	ID        string    `db:"id"`
	Name      string    `db:"name"`
	Kind      string    `db:"kind"`
	Keywords  string    `db:"keywords"`
	Priority  int       `db:"priority"`
	Answer    string    `db:"answer"`
	EntryID   string    `db:"entry_id"`
	Handoff   bool      `db:"handoff"`
	GroupID   string    `db:"group_id"`
	Enabled   bool      `db:"enabled"`
	Version   int       `db:"version"`
	CreatedAt time.Time `db:"created_at"`
	UpdatedAt time.Time `db:"updated_at"`
}

func (r ruleRow) toDomain() (kb.Rule, error) {
	out := kb.Rule{
		TenantID:  r.TenantID,
		ID:        r.ID,
		Name:      r.Name,
		Kind:      kb.RuleKind(r.Kind),
		Priority:  r.Priority,
		EntryID:   r.EntryID,
		Handoff:   r.Handoff,
		GroupID:   r.GroupID,
		Enabled:   r.Enabled,
		Version:   r.Version,
		CreatedAt: r.CreatedAt.UTC(),
		UpdatedAt: r.UpdatedAt.UTC(),
	}
	var err error
	if out.Keywords, err = decodeStrings("keywords", r.Keywords); err != nil {
		return kb.Rule{}, err
	}
	if err = decode("answer", r.Answer, &out.Answer); err != nil {
		return kb.Rule{}, err
	}
	out.Answer = out.Answer.Normalize()
	return out, nil
}

// prepareRule checks a rule for a write, puts it in stored form and
// encodes its JSON columns.
func prepareRule(op string, r kb.Rule) (kb.Rule, string, string, error) {
	if err := requireIDs(op, r.TenantID, r.ID); err != nil {
		return kb.Rule{}, "", "", err
	}
	r = r.Normalize()
	if err := r.Validate(); err != nil {
		return kb.Rule{}, "", "", errs.Wrap(op, err)
	}
	kws, err := encode(r.Keywords)
	if err != nil {
		return kb.Rule{}, "", "", errs.Wrap(op, err)
	}
	ans, err := encode(r.Answer)
	if err != nil {
		return kb.Rule{}, "", "", errs.Wrap(op, err)
	}
	return r, kws, ans, nil
}

// RuleCreate implements kb.Store. A zero CreatedAt is the time of the
// write, a zero UpdatedAt is CreatedAt; an id taken in the tenant is
// errs.Duplicate.
func (s *Store) RuleCreate(ctx context.Context, r kb.Rule) (kb.Rule, error) {
	const op = "kbsql.RuleCreate"
	r, kws, ans, err := prepareRule(op, r)
	if err != nil {
		return kb.Rule{}, err
	}
	r.Version = 1
	r.CreatedAt = ts(r.CreatedAt)
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = r.CreatedAt
	}
	r.UpdatedAt = ts(r.UpdatedAt)
	var out kb.Rule
	err = s.inTx(ctx, op, func(tx *Store) error {
		if err := tx.bump(ctx, r.TenantID); err != nil {
			return err
		}
		n, err := tx.exec(ctx, `INSERT INTO kb_rules (`+ruleColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, id) DO NOTHING`,
			r.TenantID, r.ID, r.Name, string(r.Kind), kws, r.Priority, ans, r.EntryID, r.Handoff, r.GroupID, r.Enabled,
			r.Version, r.CreatedAt, r.UpdatedAt)
		if err != nil {
			return err
		}
		if n == 0 {
			return errs.E(op, errs.Duplicate, "rule %s already exists", r.ID)
		}
		out, err = ruleGet(ctx, tx, r.TenantID, r.ID)
		return err
	})
	if err != nil {
		return kb.Rule{}, fail(op, err, "rule")
	}
	return out, nil
}

func ruleGet(ctx context.Context, s *Store, tenantID, id string) (kb.Rule, error) {
	var r ruleRow
	if err := s.get(ctx, &r, `SELECT `+ruleColumns+` FROM kb_rules WHERE tenant_id = ? AND id = ?`, tenantID, id); err != nil {
		return kb.Rule{}, err
	}
	return r.toDomain()
}

// RuleGet implements kb.Store.
func (s *Store) RuleGet(ctx context.Context, tenantID, id string) (kb.Rule, error) {
	r, err := ruleGet(ctx, s, tenantID, id)
	if err != nil {
		return kb.Rule{}, fail("kbsql.RuleGet", err, "rule")
	}
	return r, nil
}

// RuleList implements kb.Store. Names are ordered in byte order.
func (s *Store) RuleList(ctx context.Context, tenantID string) ([]kb.Rule, error) {
	const op = "kbsql.RuleList"
	var rows []ruleRow
	if err := s.sel(ctx, &rows, `SELECT `+ruleColumns+` FROM kb_rules WHERE tenant_id = ?
		ORDER BY priority DESC, `+s.collate("name")+`, `+s.collate("id"), tenantID); err != nil {
		return nil, fail(op, err, "rule")
	}
	out := make([]kb.Rule, len(rows))
	for i, r := range rows {
		rule, err := r.toDomain()
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		out[i] = rule
	}
	return out, nil
}

// RuleUpdate implements kb.Store: every field but CreatedAt is replaced and
// the rule is stored as version+1. A zero UpdatedAt is the time of the
// write; a stale version is errs.Conflict whose details hold the stored
// "version".
func (s *Store) RuleUpdate(ctx context.Context, r kb.Rule) (kb.Rule, error) {
	const op = "kbsql.RuleUpdate"
	r, kws, ans, err := prepareRule(op, r)
	if err != nil {
		return kb.Rule{}, err
	}
	r.UpdatedAt = ts(r.UpdatedAt)
	var out kb.Rule
	err = s.inTx(ctx, op, func(tx *Store) error {
		if err := tx.bump(ctx, r.TenantID); err != nil {
			return err
		}
		n, err := tx.exec(ctx, `UPDATE kb_rules SET name = ?, kind = ?, keywords = ?, priority = ?, answer = ?,
			entry_id = ?, handoff = ?, group_id = ?, enabled = ?, version = version + 1, updated_at = ?
			WHERE tenant_id = ? AND id = ? AND version = ?`,
			r.Name, string(r.Kind), kws, r.Priority, ans, r.EntryID, r.Handoff, r.GroupID, r.Enabled, r.UpdatedAt,
			r.TenantID, r.ID, r.Version)
		if err != nil {
			return err
		}
		if n == 0 {
			return staleOrMissing(ctx, tx, op, "kb_rules", "rule", r.TenantID, r.ID, r.Version)
		}
		out, err = ruleGet(ctx, tx, r.TenantID, r.ID)
		return err
	})
	if err != nil {
		return kb.Rule{}, fail(op, err, "rule")
	}
	return out, nil
}

// RuleDelete implements kb.Store.
func (s *Store) RuleDelete(ctx context.Context, tenantID, id string) error {
	const op = "kbsql.RuleDelete"
	err := s.inTx(ctx, op, func(tx *Store) error {
		if err := tx.bump(ctx, tenantID); err != nil {
			return err
		}
		n, err := tx.exec(ctx, `DELETE FROM kb_rules WHERE tenant_id = ? AND id = ?`, tenantID, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return errs.E(op, errs.NotFound, "rule not found")
		}
		return nil
	})
	if err != nil {
		return fail(op, err, "rule")
	}
	return nil
}
