package kbsql

import (
	"context"
	"time"

	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/kb"
)

const settingsColumns = `tenant_id, answer_threshold, suggest_threshold, handoff_words, max_misses, greeting,
	fallback_text, updated_at`

type settingsRow struct {
	TenantID         string    `db:"tenant_id"`
	AnswerThreshold  float64   `db:"answer_threshold"`
	SuggestThreshold float64   `db:"suggest_threshold"`
	HandoffWords     string    `db:"handoff_words"`
	MaxMisses        int       `db:"max_misses"`
	Greeting         string    `db:"greeting"`
	FallbackText     string    `db:"fallback_text"`
	UpdatedAt        time.Time `db:"updated_at"`
}

// SettingsGet implements kb.Store. The defaults of a tenant that saved
// none have a zero UpdatedAt.
func (s *Store) SettingsGet(ctx context.Context, tenantID string) (kb.Settings, error) {
	const op = "kbsql.SettingsGet"
	var r settingsRow
	err := s.get(ctx, &r, `SELECT `+settingsColumns+` FROM kb_settings WHERE tenant_id = ?`, tenantID)
	if errs.Is(err, errs.NotFound) {
		return kb.DefaultSettings(tenantID), nil
	}
	if err != nil {
		return kb.Settings{}, errs.Wrap(op, err)
	}
	words, err := decodeStrings("handoff_words", r.HandoffWords)
	if err != nil {
		return kb.Settings{}, errs.Wrap(op, err)
	}
	return kb.Settings{
		TenantID:         r.TenantID,
		AnswerThreshold:  r.AnswerThreshold,
		SuggestThreshold: r.SuggestThreshold,
		HandoffWords:     words,
		MaxMisses:        r.MaxMisses,
		Greeting:         r.Greeting,
		FallbackText:     r.FallbackText,
		UpdatedAt:        r.UpdatedAt.UTC(),
	}, nil
}

// SettingsPut implements kb.Store. Settings are normalised and validated
// (kb.Settings.Validate); a zero UpdatedAt is the time of the write. An
// unknown tenant is errs.NotFound.
func (s *Store) SettingsPut(ctx context.Context, in kb.Settings) (kb.Settings, error) {
	const op = "kbsql.SettingsPut"
	if in.TenantID == "" {
		return kb.Settings{}, errs.E(op, errs.Invalid, "tenant_id: must not be empty")
	}
	in = in.Normalize()
	if err := in.Validate(); err != nil {
		return kb.Settings{}, errs.Wrap(op, err)
	}
	in.UpdatedAt = ts(in.UpdatedAt)
	words, err := encode(in.HandoffWords)
	if err != nil {
		return kb.Settings{}, errs.Wrap(op, err)
	}
	err = s.inTx(ctx, op, func(tx *Store) error {
		if err := tx.bump(ctx, in.TenantID); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `INSERT INTO kb_settings (`+settingsColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (tenant_id) DO UPDATE SET answer_threshold = EXCLUDED.answer_threshold,
				suggest_threshold = EXCLUDED.suggest_threshold, handoff_words = EXCLUDED.handoff_words,
				max_misses = EXCLUDED.max_misses, greeting = EXCLUDED.greeting,
				fallback_text = EXCLUDED.fallback_text, updated_at = EXCLUDED.updated_at`,
			in.TenantID, in.AnswerThreshold, in.SuggestThreshold, words, in.MaxMisses, in.Greeting, in.FallbackText,
			in.UpdatedAt)
		return err
	})
	if err != nil {
		return kb.Settings{}, fail(op, err, "tenant")
	}
	return in, nil
}
