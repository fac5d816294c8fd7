package kbsql

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/kb"
)

const missColumns = `tenant_id, id, key, text, miss_count, first_seen, last_seen, samples`

type missRow struct {
	TenantID  string    `db:"tenant_id"`
	ID        string    `db:"id"`
	Key       string    `db:"key"`
	Text      string    `db:"text"`
	Count     int       `db:"miss_count"`
	FirstSeen time.Time `db:"first_seen"`
	LastSeen  time.Time `db:"last_seen"`
	Samples   string    `db:"samples"`
}

func (r missRow) toDomain() (kb.MissGroup, error) {
	g := kb.MissGroup{
		TenantID:  r.TenantID,
		ID:        r.ID,
		Key:       r.Key,
		Text:      r.Text,
		Count:     r.Count,
		FirstSeen: r.FirstSeen.UTC(),
		LastSeen:  r.LastSeen.UTC(),
	}
	if err := decode("samples", r.Samples, &g.Samples); err != nil {
		return kb.MissGroup{}, err
	}
	if g.Samples == nil {
		g.Samples = []kb.MissSample{}
	}
	for i := range g.Samples {
		g.Samples[i].At = g.Samples[i].At.UTC()
	}
	return g, nil
}

// MissRecord implements kb.Store. Texts are cut to kb.MaxMessageLen bytes;
// a zero At is the time of the write. Samples are kept newest first.
//
// Several nodes may record the same key at once. The upsert counts
// atomically (ON CONFLICT ... DO UPDATE), and on PostgreSQL it also locks
// the group's row until commit, so the samples read and rewritten after it
// cannot be overwritten by a concurrent recorder; SQLite serialises the
// writing transactions. No count and no sample is lost.
func (s *Store) MissRecord(ctx context.Context, m kb.Miss) (kb.MissGroup, error) {
	const op = "kbsql.MissRecord"
	if m.TenantID == "" {
		return kb.MissGroup{}, errs.E(op, errs.Invalid, "tenant_id: must not be empty")
	}
	if strings.TrimSpace(m.Key) == "" {
		return kb.MissGroup{}, errs.E(op, errs.Invalid, "key: must not be empty")
	}
	m.Key = capText(m.Key, kb.MaxMessageLen)
	m.Text = capText(m.Text, kb.MaxMessageLen)
	m.At = ts(m.At)
	sample := kb.MissSample{SessionID: m.SessionID, Text: m.Text, At: m.At}
	var out kb.MissGroup
	err := s.inTx(ctx, op, func(tx *Store) error {
		var r missRow
		if err := tx.get(ctx, &r, `INSERT INTO kb_misses (`+missColumns+`) VALUES (?, ?, ?, ?, 1, ?, ?, '[]')
			ON CONFLICT (tenant_id, key) DO UPDATE SET miss_count = kb_misses.miss_count + 1
			RETURNING `+missColumns,
			m.TenantID, uuid.Must(uuid.NewV7()).String(), m.Key, m.Text, m.At, m.At); err != nil {
			if errs.Is(err, errs.Invalid) { // the foreign key to tenants
				return &errs.Error{Code: errs.NotFound, Msg: "tenant not found", Err: err}
			}
			return err
		}
		g, err := r.toDomain()
		if err != nil {
			return err
		}
		g.FirstSeen = minTime(g.FirstSeen, m.At)
		g.LastSeen = maxTime(g.LastSeen, m.At)
		g.Samples = addSample(g.Samples, sample)
		samples, err := encode(g.Samples)
		if err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `UPDATE kb_misses SET first_seen = ?, last_seen = ?, samples = ?
			WHERE tenant_id = ? AND id = ?`, g.FirstSeen, g.LastSeen, samples, g.TenantID, g.ID); err != nil {
			return err
		}
		out = g
		return nil
	})
	if err != nil {
		return kb.MissGroup{}, fail(op, err, "miss group")
	}
	return out, nil
}

// addSample inserts s among samples (newest first) and keeps the
// kb.MaxMissSamples most recent. Misses recorded by several nodes may
// arrive out of order, so s goes where its time puts it.
func addSample(samples []kb.MissSample, s kb.MissSample) []kb.MissSample {
	out := append([]kb.MissSample{s}, samples...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	if len(out) > kb.MaxMissSamples {
		out = out[:kb.MaxMissSamples]
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// MissList implements kb.Store; a limit of 0 or less returns every group.
// Equal counts and times are ordered by id, so pages are stable.
func (s *Store) MissList(ctx context.Context, tenantID string, limit int) ([]kb.MissGroup, error) {
	const op = "kbsql.MissList"
	q := `SELECT ` + missColumns + ` FROM kb_misses WHERE tenant_id = ?
		ORDER BY miss_count DESC, last_seen DESC, ` + s.collate("id")
	args := []any{tenantID}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	var rows []missRow
	if err := s.sel(ctx, &rows, q, args...); err != nil {
		return nil, fail(op, err, "miss group")
	}
	out := make([]kb.MissGroup, len(rows))
	for i, r := range rows {
		g, err := r.toDomain()
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		out[i] = g
	}
	return out, nil
}

// MissGet implements kb.Store.
func (s *Store) MissGet(ctx context.Context, tenantID, id string) (kb.MissGroup, error) {
	const op = "kbsql.MissGet"
	var r missRow
	if err := s.get(ctx, &r, `SELECT `+missColumns+` FROM kb_misses WHERE tenant_id = ? AND id = ?`, tenantID, id); err != nil {
		return kb.MissGroup{}, fail(op, err, "miss group")
	}
	g, err := r.toDomain()
	if err != nil {
		return kb.MissGroup{}, errs.Wrap(op, err)
	}
	return g, nil
}

// MissDelete implements kb.Store. Repeated ids count once; no ids is a
// no-op. The details of a NotFound list the "missing" ids.
func (s *Store) MissDelete(ctx context.Context, tenantID string, ids []string) error {
	const op = "kbsql.MissDelete"
	uniq := make([]string, 0, len(ids))
	seen := map[string]bool{}
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	if len(uniq) == 0 {
		return nil
	}
	err := s.inTx(ctx, op, func(tx *Store) error {
		var found []string
		if err := tx.sel(ctx, &found, `SELECT id FROM kb_misses WHERE tenant_id = ? AND id IN (`+placeholders(len(uniq))+`)`+tx.lockSuffix(),
			append([]any{tenantID}, anySlice(uniq)...)...); err != nil {
			return err
		}
		if len(found) != len(uniq) {
			have := map[string]bool{}
			for _, id := range found {
				have[id] = true
			}
			var missing []string
			for _, id := range uniq {
				if !have[id] {
					missing = append(missing, id)
				}
			}
			return errs.E(op, errs.NotFound, "miss group %s not found", missing[0]).With("missing", missing)
		}
		_, err := tx.exec(ctx, `DELETE FROM kb_misses WHERE tenant_id = ? AND id IN (`+placeholders(len(uniq))+`)`,
			append([]any{tenantID}, anySlice(uniq)...)...)
		return err
	})
	if err != nil {
		return fail(op, err, "miss group")
	}
	return nil
}

// placeholders returns n comma-separated ? placeholders.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
