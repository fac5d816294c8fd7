package agentsql

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/internal/db"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

const groupColumns = `tenant_id, id, name, strategy, sl_threshold_sec, max_queue,
	fallback_strategy, weight, priority_step_sec, max_wait_sec, overflow_action, overflow_group_id,
	sticky_wait_sec, ring_step_sec, offer_timeout_sec, max_missed_offers, hours, off_hours_message,
	busy_message, created_at`

type groupRow struct {
	TenantID         string    `db:"tenant_id"`
	ID               string    `db:"id"`
	Name             string    `db:"name"`
	Strategy         string    `db:"strategy"`
	SLThresholdSec   int       `db:"sl_threshold_sec"`
	MaxQueue         int       `db:"max_queue"`
	FallbackStrategy string    `db:"fallback_strategy"`
	Weight           float64   `db:"weight"`
	PriorityStepSec  int       `db:"priority_step_sec"`
	MaxWaitSec       int       `db:"max_wait_sec"`
	OverflowAction   string    `db:"overflow_action"`
	OverflowGroupID  string    `db:"overflow_group_id"`
	StickyWaitSec    int       `db:"sticky_wait_sec"`
	RingStepSec      int       `db:"ring_step_sec"`
	OfferTimeoutSec  int       `db:"offer_timeout_sec"`
	MaxMissedOffers  int       `db:"max_missed_offers"`
	Hours            string    `db:"hours"`
	OffHoursMessage  string    `db:"off_hours_message"`
	BusyMessage      string    `db:"busy_message"`
	CreatedAt        time.Time `db:"created_at"`
}

func (r groupRow) toDomain() agents.Group {
	return agents.Group{
		TenantID:         r.TenantID,
		ID:               r.ID,
		Name:             r.Name,
		Strategy:         r.Strategy,
		SLThresholdSec:   r.SLThresholdSec,
		MaxQueue:         r.MaxQueue,
		FallbackStrategy: r.FallbackStrategy,
		Weight:           r.Weight,
		PriorityStepSec:  r.PriorityStepSec,
		MaxWaitSec:       r.MaxWaitSec,
		OverflowAction:   r.OverflowAction,
		OverflowGroupID:  r.OverflowGroupID,
		StickyWaitSec:    r.StickyWaitSec,
		RingStepSec:      r.RingStepSec,
		OfferTimeoutSec:  r.OfferTimeoutSec,
		MaxMissedOffers:  r.MaxMissedOffers,
		Hours:            agents.HoursJSON(r.Hours),
		OffHoursMessage:  r.OffHoursMessage,
		BusyMessage:      r.BusyMessage,
		CreatedAt:        r.CreatedAt.UTC(),
	}
}

// GroupCreate implements agents.Store. The group is stored normalized
// (agents.Group.Normalize), which is also what it returns.
func (s *Store) GroupCreate(ctx context.Context, g agents.Group) (agents.Group, error) {
	const op = "agentsql.GroupCreate"
	g = g.Normalize()
	if err := g.Validate(); err != nil {
		return agents.Group{}, errs.Wrap(op, err)
	}
	g.CreatedAt = ts(g.CreatedAt)
	if _, err := exec(ctx, s.db, `INSERT INTO skill_groups (`+groupColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		g.TenantID, g.ID, g.Name, g.Strategy, g.SLThresholdSec, g.MaxQueue,
		g.FallbackStrategy, g.Weight, g.PriorityStepSec, g.MaxWaitSec, g.OverflowAction, g.OverflowGroupID,
		g.StickyWaitSec, g.RingStepSec, g.OfferTimeoutSec, g.MaxMissedOffers, string(g.Hours), g.OffHoursMessage,
		g.BusyMessage, g.CreatedAt); err != nil {
		return agents.Group{}, fail(op, err, "skill group")
	}
	return g, nil
}

func groupGet(ctx context.Context, ex db.Executor, tenantID, id string) (agents.Group, error) {
	var r groupRow
	if err := get(ctx, ex, &r, `SELECT `+groupColumns+` FROM skill_groups WHERE tenant_id = ? AND id = ?`, tenantID, id); err != nil {
		return agents.Group{}, err
	}
	return r.toDomain(), nil
}

// GroupGet implements agents.Store.
func (s *Store) GroupGet(ctx context.Context, tenantID, id string) (agents.Group, error) {
	g, err := groupGet(ctx, s.db, tenantID, id)
	if err != nil {
		return agents.Group{}, fail("agentsql.GroupGet", err, "skill group")
	}
	return g, nil
}

// GroupList implements agents.Store.
func (s *Store) GroupList(ctx context.Context, tenantID string) ([]agents.Group, error) {
	var rows []groupRow
	if err := sel(ctx, s.db, &rows, `SELECT `+groupColumns+` FROM skill_groups WHERE tenant_id = ? ORDER BY name`, tenantID); err != nil {
		return nil, fail("agentsql.GroupList", err, "skill group")
	}
	out := make([]agents.Group, len(rows))
	for i, r := range rows {
		out[i] = r.toDomain()
	}
	return out, nil
}

// GroupUpdate implements agents.Store. Like GroupCreate it stores the
// group normalized.
func (s *Store) GroupUpdate(ctx context.Context, g agents.Group) (agents.Group, error) {
	const op = "agentsql.GroupUpdate"
	g = g.Normalize()
	if err := g.Validate(); err != nil {
		return agents.Group{}, errs.Wrap(op, err)
	}
	var out agents.Group
	err := s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		if err := execOne(ctx, tx, `UPDATE skill_groups SET name = ?, strategy = ?, sl_threshold_sec = ?, max_queue = ?,
			fallback_strategy = ?, weight = ?, priority_step_sec = ?, max_wait_sec = ?, overflow_action = ?,
			overflow_group_id = ?, sticky_wait_sec = ?, ring_step_sec = ?, offer_timeout_sec = ?,
			max_missed_offers = ?, hours = ?, off_hours_message = ?, busy_message = ?
			WHERE tenant_id = ? AND id = ?`,
			g.Name, g.Strategy, g.SLThresholdSec, g.MaxQueue,
			g.FallbackStrategy, g.Weight, g.PriorityStepSec, g.MaxWaitSec, g.OverflowAction,
			g.OverflowGroupID, g.StickyWaitSec, g.RingStepSec, g.OfferTimeoutSec,
			g.MaxMissedOffers, string(g.Hours), g.OffHoursMessage, g.BusyMessage,
			g.TenantID, g.ID); err != nil {
			return err
		}
		var err error
		out, err = groupGet(ctx, tx, g.TenantID, g.ID)
		return err
	})
	if err != nil {
		return agents.Group{}, fail(op, err, "skill group")
	}
	return out, nil
}

// GroupDelete implements agents.Store. Agents' skills in the group go with
// it (ON DELETE CASCADE).
func (s *Store) GroupDelete(ctx context.Context, tenantID, id string) error {
	if err := execOne(ctx, s.db, `DELETE FROM skill_groups WHERE tenant_id = ? AND id = ?`, tenantID, id); err != nil {
		return fail("agentsql.GroupDelete", err, "skill group")
	}
	return nil
}
