package agentsql

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

const reasonTreeColumns = `tenant_id, version, tree, mandatory, created_by, created_at`

// reasonTreeRow holds the nodes as JSON (JSONB on PostgreSQL, TEXT on
// SQLite): the tree is always read and written whole.
type reasonTreeRow struct {
	TenantID  string    `db:"tenant_id"`
	Version   int       `db:"version"`
	Tree      string    `db:"tree"`
	Mandatory bool      `db:"mandatory"`
	CreatedBy string    `db:"created_by"`
	CreatedAt time.Time `db:"created_at"`
}

func (r reasonTreeRow) toDomain() (agents.ReasonTree, error) {
	nodes, err := decodeNodes(r.Tree)
	if err != nil {
		return agents.ReasonTree{}, err
	}
	return agents.ReasonTree{
		TenantID:  r.TenantID,
		Version:   r.Version,
		Nodes:     nodes,
		Mandatory: r.Mandatory,
		CreatedBy: r.CreatedBy,
		CreatedAt: r.CreatedAt.UTC(),
	}, nil
}

func encodeNodes(nodes []agents.ReasonNode) (string, error) {
	if nodes == nil {
		nodes = []agents.ReasonNode{}
	}
	b, err := json.Marshal(nodes)
	return string(b), err
}

// decodeNodes reads stored nodes; an empty tree comes back as nil on every
// path, so saved and read trees compare equal.
func decodeNodes(s string) ([]agents.ReasonNode, error) {
	var nodes []agents.ReasonNode
	if err := json.Unmarshal([]byte(s), &nodes); err != nil {
		return nil, errs.E("agentsql.decodeNodes", errs.Internal, "stored reason tree is not valid JSON: %v", err)
	}
	if nodes == nil {
		nodes = []agents.ReasonNode{} // an empty tree is [], never null
	}
	return nodes, nil
}

// ReasonTreeSave implements agents.Store. The tenant row is locked for the
// transaction, so two saves cannot both read the same highest version.
func (s *Store) ReasonTreeSave(ctx context.Context, tree agents.ReasonTree) (agents.ReasonTree, error) {
	const op = "agentsql.ReasonTreeSave"
	if tree.TenantID == "" {
		return agents.ReasonTree{}, errs.E(op, errs.Invalid, "tenant_id: must not be empty")
	}
	if err := tree.Validate(); err != nil {
		return agents.ReasonTree{}, errs.Wrap(op, err)
	}
	if tree.Nodes == nil {
		tree.Nodes = []agents.ReasonNode{}
	}
	doc, err := encodeNodes(tree.Nodes)
	if err != nil {
		return agents.ReasonTree{}, errs.E(op, errs.Internal, "encode tree: %v", err)
	}
	// What a read returns, so the caller gets the same value.
	if tree.Nodes, err = decodeNodes(doc); err != nil {
		return agents.ReasonTree{}, errs.Wrap(op, err)
	}
	tree.CreatedAt = ts(tree.CreatedAt)
	err = s.db.InTx(ctx, func(tx *sqlx.Tx) error {
		var id string
		if err := get(ctx, tx, &id, `SELECT id FROM tenants WHERE id = ?`+s.lockSuffix(), tree.TenantID); err != nil {
			return fail(op, err, "tenant")
		}
		var last int
		if err := get(ctx, tx, &last, `SELECT COALESCE(MAX(version), 0) FROM reason_trees WHERE tenant_id = ?`, tree.TenantID); err != nil {
			return err
		}
		tree.Version = last + 1
		_, err := exec(ctx, tx, `INSERT INTO reason_trees (`+reasonTreeColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
			tree.TenantID, tree.Version, doc, tree.Mandatory, tree.CreatedBy, tree.CreatedAt)
		return err
	})
	if err != nil {
		return agents.ReasonTree{}, fail(op, err, "reason tree version")
	}
	return tree, nil
}

// ReasonTreeCurrent implements agents.Store.
func (s *Store) ReasonTreeCurrent(ctx context.Context, tenantID string) (agents.ReasonTree, error) {
	const op = "agentsql.ReasonTreeCurrent"
	var r reasonTreeRow
	if err := get(ctx, s.db, &r, `SELECT `+reasonTreeColumns+` FROM reason_trees
		WHERE tenant_id = ? ORDER BY version DESC LIMIT 1`, tenantID); err != nil {
		return agents.ReasonTree{}, fail(op, err, "reason tree")
	}
	t, err := r.toDomain()
	if err != nil {
		return agents.ReasonTree{}, errs.Wrap(op, err)
	}
	return t, nil
}

// ReasonTreeGet implements agents.Store.
func (s *Store) ReasonTreeGet(ctx context.Context, tenantID string, version int) (agents.ReasonTree, error) {
	const op = "agentsql.ReasonTreeGet"
	var r reasonTreeRow
	if err := get(ctx, s.db, &r, `SELECT `+reasonTreeColumns+` FROM reason_trees
		WHERE tenant_id = ? AND version = ?`, tenantID, version); err != nil {
		return agents.ReasonTree{}, fail(op, err, "reason tree version")
	}
	t, err := r.toDomain()
	if err != nil {
		return agents.ReasonTree{}, errs.Wrap(op, err)
	}
	return t, nil
}

// ReasonTreeList implements agents.Store.
func (s *Store) ReasonTreeList(ctx context.Context, tenantID string) ([]agents.ReasonTree, error) {
	const op = "agentsql.ReasonTreeList"
	var rows []reasonTreeRow
	if err := sel(ctx, s.db, &rows, `SELECT `+reasonTreeColumns+` FROM reason_trees
		WHERE tenant_id = ? ORDER BY version DESC`, tenantID); err != nil {
		return nil, fail(op, err, "reason tree")
	}
	out := make([]agents.ReasonTree, len(rows))
	for i, r := range rows {
		t, err := r.toDomain()
		if err != nil {
			return nil, errs.Wrap(op, err)
		}
		out[i] = t
	}
	return out, nil
}
