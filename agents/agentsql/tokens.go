package agentsql

import (
	"context"
	"time"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

const tokenColumns = `token_hash, tenant_id, agent_id, created_at, expires_at, revoked_at`

type tokenRow struct {
	Hash      string     `db:"token_hash"`
	TenantID  string     `db:"tenant_id"`
	AgentID   string     `db:"agent_id"`
	CreatedAt time.Time  `db:"created_at"`
	ExpiresAt time.Time  `db:"expires_at"`
	RevokedAt *time.Time `db:"revoked_at"`
}

func (r tokenRow) toDomain() agents.Token {
	t := agents.Token{
		Hash:      r.Hash,
		TenantID:  r.TenantID,
		AgentID:   r.AgentID,
		CreatedAt: r.CreatedAt.UTC(),
		ExpiresAt: r.ExpiresAt.UTC(),
	}
	if r.RevokedAt != nil {
		at := r.RevokedAt.UTC()
		t.RevokedAt = &at
	}
	return t
}

// TokenCreate implements agents.Store.
func (s *Store) TokenCreate(ctx context.Context, t agents.Token) error {
	const op = "agentsql.TokenCreate"
	if t.Hash == "" || t.TenantID == "" || t.AgentID == "" {
		return errs.E(op, errs.Invalid, "token: hash, tenant and agent are required")
	}
	if t.ExpiresAt.IsZero() {
		return errs.E(op, errs.Invalid, "token: expires_at is required")
	}
	var revoked *time.Time
	if t.RevokedAt != nil {
		at := ts(*t.RevokedAt)
		revoked = &at
	}
	if _, err := exec(ctx, s.db, `INSERT INTO auth_tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		t.Hash, t.TenantID, t.AgentID, ts(t.CreatedAt), ts(t.ExpiresAt), revoked); err != nil {
		return fail(op, err, "token")
	}
	return nil
}

// TokenGet implements agents.Store.
func (s *Store) TokenGet(ctx context.Context, hash string) (agents.Token, error) {
	var r tokenRow
	if err := get(ctx, s.db, &r, `SELECT `+tokenColumns+` FROM auth_tokens WHERE token_hash = ?`, hash); err != nil {
		return agents.Token{}, fail("agentsql.TokenGet", err, "token")
	}
	return r.toDomain(), nil
}

// TokenRevoke implements agents.Store.
func (s *Store) TokenRevoke(ctx context.Context, hash string, at time.Time) error {
	if err := execOne(ctx, s.db, `UPDATE auth_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE token_hash = ?`,
		ts(at), hash); err != nil {
		return fail("agentsql.TokenRevoke", err, "token")
	}
	return nil
}

// TokenRevokeAgent implements agents.Store.
func (s *Store) TokenRevokeAgent(ctx context.Context, tenantID, agentID string, at time.Time) (int, error) {
	n, err := execN(ctx, s.db, `UPDATE auth_tokens SET revoked_at = ?
		WHERE tenant_id = ? AND agent_id = ? AND revoked_at IS NULL`, ts(at), tenantID, agentID)
	if err != nil {
		return 0, fail("agentsql.TokenRevokeAgent", err, "token")
	}
	return n, nil
}

// TokenDeleteExpired implements agents.Store. On SQLite the comparison is
// textual; it is correct because every time is written in UTC in one format.
func (s *Store) TokenDeleteExpired(ctx context.Context, before time.Time) (int, error) {
	n, err := execN(ctx, s.db, `DELETE FROM auth_tokens WHERE expires_at < ?`, ts(before))
	if err != nil {
		return 0, fail("agentsql.TokenDeleteExpired", err, "token")
	}
	return n, nil
}
