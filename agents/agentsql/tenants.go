package agentsql

import (
	"context"
	"time"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

const tenantColumns = `id, name, created_at`

type tenantRow struct {
	ID        string    `db:"id"`
	Name      string    `db:"name"`
	CreatedAt time.Time `db:"created_at"`
}

func (r tenantRow) toDomain() agents.Tenant {
	return agents.Tenant{ID: r.ID, Name: r.Name, CreatedAt: r.CreatedAt.UTC()}
}

// TenantCreate implements agents.Store.
func (s *Store) TenantCreate(ctx context.Context, t agents.Tenant) (agents.Tenant, error) {
	const op = "agentsql.TenantCreate"
	if err := t.Validate(); err != nil {
		return agents.Tenant{}, errs.Wrap(op, err)
	}
	t.CreatedAt = ts(t.CreatedAt)
	if _, err := exec(ctx, s.db, `INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)`,
		t.ID, t.Name, t.CreatedAt); err != nil {
		return agents.Tenant{}, fail(op, err, "tenant")
	}
	return t, nil
}

// TenantGet implements agents.Store.
func (s *Store) TenantGet(ctx context.Context, id string) (agents.Tenant, error) {
	var r tenantRow
	if err := get(ctx, s.db, &r, `SELECT `+tenantColumns+` FROM tenants WHERE id = ?`, id); err != nil {
		return agents.Tenant{}, fail("agentsql.TenantGet", err, "tenant")
	}
	return r.toDomain(), nil
}

// TenantList implements agents.Store.
func (s *Store) TenantList(ctx context.Context) ([]agents.Tenant, error) {
	var rows []tenantRow
	if err := sel(ctx, s.db, &rows, `SELECT `+tenantColumns+` FROM tenants ORDER BY id`); err != nil {
		return nil, fail("agentsql.TenantList", err, "tenant")
	}
	out := make([]agents.Tenant, len(rows))
	for i, r := range rows {
		out[i] = r.toDomain()
	}
	return out, nil
}
