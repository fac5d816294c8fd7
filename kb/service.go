// This file holds the Service editors work the knowledge base through: it
// assigns ids and times, applies the validation rules before anything is
// stored, runs the multi-step operations (promote, import) in one
// transaction, and tells the cluster after every write so each node
// rebuilds its index (DESIGN D9).

package kb

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-acd/switchboard/internal/clock"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// Publisher is told after every successful write to a tenant's entries,
// rules or settings, once the write is committed. The composition root
// wires it to the cross-node pub/sub, so every node reloads the tenant's
// matcher; it must not block for long and reports no error (a node that
// misses the news still sees the revision change).
type Publisher interface {
	KBChanged(ctx context.Context, tenantID string)
}

// MaxPromoteGroups bounds the miss groups one promote may take, so one
// request holds the transaction for a bounded time.
const MaxPromoteGroups = 100

// Service is the editor's side of the knowledge base. It is safe for
// concurrent use.
type Service struct {
	store Store
	clk   clock.Clock
	pub   Publisher
	// newID returns a fresh object id: a UUIDv7, so ids sort by creation
	// and index well.
	newID func() string
}

// NewService returns a Service over store, telling time by clk and
// announcing writes to pub (nil announces nothing).
func NewService(store Store, clk clock.Clock, pub Publisher) *Service {
	return &Service{store: store, clk: clk, pub: pub, newID: func() string { return uuid.Must(uuid.NewV7()).String() }}
}

// Store is the store the service writes to, for readers that need more
// than the service offers (the matcher loading a tenant).
func (s *Service) Store() Store { return s.store }

// now is the service time in UTC at the precision the store keeps, so
// values returned to callers equal the values read back later.
func (s *Service) now() time.Time { return s.clk.Now().UTC().Truncate(time.Microsecond) }

func (s *Service) changed(ctx context.Context, tenantID string) {
	if s.pub != nil {
		s.pub.KBChanged(ctx, tenantID)
	}
}

// CreateEntry stores e as a new entry of tenantID with a generated id,
// version 1 and the current time, written by actor. e's id, version and
// times are ignored.
func (s *Service) CreateEntry(ctx context.Context, tenantID, actor string, e Entry) (Entry, error) {
	const op = "kb.CreateEntry"
	e = e.Normalize()
	if err := e.Validate(); err != nil {
		return Entry{}, errs.Wrap(op, err)
	}
	now := s.now()
	e.TenantID, e.ID, e.Version, e.CreatedAt, e.UpdatedAt = tenantID, s.newID(), 1, now, now
	out, err := s.store.EntryCreate(ctx, e, actor)
	if err != nil {
		return Entry{}, errs.Wrap(op, err)
	}
	s.changed(ctx, tenantID)
	return out, nil
}

// GetEntry returns one entry.
func (s *Service) GetEntry(ctx context.Context, tenantID, id string) (Entry, error) {
	e, err := s.store.EntryGet(ctx, tenantID, id)
	return e, errs.Wrap("kb.GetEntry", err)
}

// ListEntries returns the entries matching f, by question.
func (s *Service) ListEntries(ctx context.Context, tenantID string, f EntryFilter) ([]Entry, error) {
	es, err := s.store.EntryList(ctx, tenantID, f)
	return es, errs.Wrap("kb.ListEntries", err)
}

// UpdateEntry replaces entry e.ID with e when e.Version is the stored
// version (errs.Conflict otherwise, with the stored "version" in the
// details), written by actor now. CreatedAt is kept.
func (s *Service) UpdateEntry(ctx context.Context, tenantID, actor string, e Entry) (Entry, error) {
	const op = "kb.UpdateEntry"
	if e.Version < 1 {
		return Entry{}, errs.E(op, errs.Invalid, "version: the version the update is based on is required")
	}
	e = e.Normalize()
	if err := e.Validate(); err != nil {
		return Entry{}, errs.Wrap(op, err)
	}
	e.TenantID, e.UpdatedAt = tenantID, s.now()
	out, err := s.store.EntryUpdate(ctx, e, actor)
	if err != nil {
		return Entry{}, errs.Wrap(op, err)
	}
	s.changed(ctx, tenantID)
	return out, nil
}

// DeleteEntry removes an entry; its history stays. Rules and choices that
// name it keep the id (the bot treats a dangling one as a miss).
func (s *Service) DeleteEntry(ctx context.Context, tenantID, id, actor string) error {
	if err := s.store.EntryDelete(ctx, tenantID, id, actor); err != nil {
		return errs.Wrap("kb.DeleteEntry", err)
	}
	s.changed(ctx, tenantID)
	return nil
}

// EntryHistory returns an entry's changes, newest first, also after it was
// deleted.
func (s *Service) EntryHistory(ctx context.Context, tenantID, id string) ([]Change, error) {
	cs, err := s.store.EntryHistory(ctx, tenantID, id)
	return cs, errs.Wrap("kb.EntryHistory", err)
}

// CreateRule stores r as a new rule of tenantID with a generated id and
// version 1.
func (s *Service) CreateRule(ctx context.Context, tenantID string, r Rule) (Rule, error) {
	const op = "kb.CreateRule"
	r = r.Normalize()
	if err := r.Validate(); err != nil {
		return Rule{}, errs.Wrap(op, err)
	}
	now := s.now()
	r.TenantID, r.ID, r.Version, r.CreatedAt, r.UpdatedAt = tenantID, s.newID(), 1, now, now
	out, err := s.store.RuleCreate(ctx, r)
	if err != nil {
		return Rule{}, errs.Wrap(op, err)
	}
	s.changed(ctx, tenantID)
	return out, nil
}

// GetRule returns one rule.
func (s *Service) GetRule(ctx context.Context, tenantID, id string) (Rule, error) {
	r, err := s.store.RuleGet(ctx, tenantID, id)
	return r, errs.Wrap("kb.GetRule", err)
}

// ListRules returns a tenant's rules by priority (highest first), name, id.
func (s *Service) ListRules(ctx context.Context, tenantID string) ([]Rule, error) {
	rs, err := s.store.RuleList(ctx, tenantID)
	return rs, errs.Wrap("kb.ListRules", err)
}

// UpdateRule replaces rule r.ID with r when r.Version is the stored
// version (errs.Conflict otherwise).
func (s *Service) UpdateRule(ctx context.Context, tenantID string, r Rule) (Rule, error) {
	const op = "kb.UpdateRule"
	if r.Version < 1 {
		return Rule{}, errs.E(op, errs.Invalid, "version: the version the update is based on is required")
	}
	r = r.Normalize()
	if err := r.Validate(); err != nil {
		return Rule{}, errs.Wrap(op, err)
	}
	r.TenantID, r.UpdatedAt = tenantID, s.now()
	out, err := s.store.RuleUpdate(ctx, r)
	if err != nil {
		return Rule{}, errs.Wrap(op, err)
	}
	s.changed(ctx, tenantID)
	return out, nil
}

// DeleteRule removes a rule.
func (s *Service) DeleteRule(ctx context.Context, tenantID, id string) error {
	if err := s.store.RuleDelete(ctx, tenantID, id); err != nil {
		return errs.Wrap("kb.DeleteRule", err)
	}
	s.changed(ctx, tenantID)
	return nil
}

// GetSettings returns a tenant's bot settings (DefaultSettings until it
// saves some).
func (s *Service) GetSettings(ctx context.Context, tenantID string) (Settings, error) {
	st, err := s.store.SettingsGet(ctx, tenantID)
	return st, errs.Wrap("kb.GetSettings", err)
}

// PutSettings replaces a tenant's bot settings.
func (s *Service) PutSettings(ctx context.Context, tenantID string, st Settings) (Settings, error) {
	const op = "kb.PutSettings"
	st = st.Normalize()
	if err := st.Validate(); err != nil {
		return Settings{}, errs.Wrap(op, err)
	}
	st.TenantID, st.UpdatedAt = tenantID, s.now()
	out, err := s.store.SettingsPut(ctx, st)
	if err != nil {
		return Settings{}, errs.Wrap(op, err)
	}
	s.changed(ctx, tenantID)
	return out, nil
}

// ListMisses returns the tenant's unmatched-question groups, most counted
// first; limit <= 0 returns all.
func (s *Service) ListMisses(ctx context.Context, tenantID string, limit int) ([]MissGroup, error) {
	gs, err := s.store.MissList(ctx, tenantID, limit)
	return gs, errs.Wrap("kb.ListMisses", err)
}

// GetMiss returns one unmatched-question group.
func (s *Service) GetMiss(ctx context.Context, tenantID, id string) (MissGroup, error) {
	g, err := s.store.MissGet(ctx, tenantID, id)
	return g, errs.Wrap("kb.GetMiss", err)
}

// DeleteMisses removes unmatched-question groups an editor dismissed; an
// unknown id is NotFound and removes nothing. Misses are not KB content:
// nothing is announced.
func (s *Service) DeleteMisses(ctx context.Context, tenantID string, ids []string) error {
	return errs.Wrap("kb.DeleteMisses", s.store.MissDelete(ctx, tenantID, ids))
}

// Promotion turns unmatched-question groups into knowledge: the texts
// customers wrote become variants of a new entry (Question and Answer
// given) or of an existing one (EntryID given).
type Promotion struct {
	// GroupIDs are the miss groups to promote (1 to MaxPromoteGroups).
	GroupIDs []string `json:"group_ids"`
	// EntryID, when set, adds the texts to this entry's variants.
	EntryID string `json:"entry_id,omitempty"`
	// EntryVersion, when set with EntryID, makes the promote fail with
	// errs.Conflict if the entry changed since the editor read it.
	EntryVersion int `json:"entry_version,omitempty"`
	// Question, Answer, Keywords, Category and Language make a new entry
	// when EntryID is empty; Question and Answer.Text are then required.
	Question string   `json:"question,omitempty"`
	Answer   Answer   `json:"answer"`
	Keywords []string `json:"keywords,omitempty"`
	Category string   `json:"category,omitempty"`
	Language Language `json:"language,omitempty"`
}

// Promote applies p in one transaction: it reads the groups, creates or
// updates the entry with their texts (each group's first text and its
// samples, without duplicates; texts longer than MaxQuestionLen are left
// out) and deletes the groups. It returns the entry as stored and whether
// it was created.
func (s *Service) Promote(ctx context.Context, tenantID, actor string, p Promotion) (Entry, bool, error) {
	const op = "kb.Promote"
	var ps problems
	switch {
	case len(p.GroupIDs) == 0:
		ps.Add("group_ids", "at least one miss group is required")
	case len(p.GroupIDs) > MaxPromoteGroups:
		ps.Add("group_ids", "more than %d miss groups", MaxPromoteGroups)
	}
	if p.EntryID != "" {
		if p.Question != "" || p.Answer.Text != "" || len(p.Answer.Choices) > 0 {
			ps.Add("entry_id", "give entry_id to add variants to an entry, or question and answer for a new one, not both")
		}
		if p.EntryVersion < 0 {
			ps.Add("entry_version", "must not be negative")
		}
	}
	if err := ps.Err(op); err != nil {
		return Entry{}, false, err
	}
	create := p.EntryID == ""
	var out Entry
	err := s.store.InTx(ctx, func(tx Store) error {
		var texts []string
		for _, id := range p.GroupIDs {
			g, err := tx.MissGet(ctx, tenantID, id)
			if err != nil {
				return err
			}
			texts = append(texts, promotable(g.Text))
			for _, sm := range g.Samples {
				texts = append(texts, promotable(sm.Text))
			}
		}
		now := s.now()
		var err error
		if create {
			e := Entry{
				TenantID: tenantID, ID: s.newID(), Question: p.Question, Variants: texts, Answer: p.Answer,
				Keywords: p.Keywords, Category: p.Category, Language: p.Language, Enabled: true,
				Version: 1, CreatedAt: now, UpdatedAt: now,
			}.Normalize()
			if err := e.Validate(); err != nil {
				return err
			}
			if out, err = tx.EntryCreate(ctx, e, actor); err != nil {
				return err
			}
		} else {
			e, err := tx.EntryGet(ctx, tenantID, p.EntryID)
			if err != nil {
				return err
			}
			if p.EntryVersion > 0 && p.EntryVersion != e.Version {
				return errs.E(op, errs.Conflict, "entry %s changed: version %d is stale, the current version is %d",
					e.ID, p.EntryVersion, e.Version).With("version", e.Version)
			}
			e.Variants = append(e.Variants, texts...)
			e = e.Normalize()
			if err := e.Validate(); err != nil {
				return err
			}
			e.UpdatedAt = now
			if out, err = tx.EntryUpdate(ctx, e, actor); err != nil {
				return err
			}
		}
		return tx.MissDelete(ctx, tenantID, p.GroupIDs)
	})
	if err != nil {
		return Entry{}, false, errs.Wrap(op, err)
	}
	s.changed(ctx, tenantID)
	return out, create, nil
}

// promotable returns a customer's text as a variant, or "" (dropped by
// Normalize) when it could not be one: too long, or not storable text.
func promotable(text string) string {
	var p problems
	checkText(&p, "text", text, MaxQuestionLen, true)
	if len(p) > 0 {
		return ""
	}
	return text
}
