package agents

import (
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/switchboard-acd/switchboard/internal/errs"
)

// Limits of a reason tree. They keep the tree small enough to send to every
// console and to walk on every wrap-up.
const (
	MaxReasonDepth = 5
	MaxReasonNodes = 2000
	MaxReasonLabel = 200 // characters
)

var reasonCodeRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// ReasonTree is one version of a tenant's contact-reason (disposition)
// tree. Trees are never edited in place: every save is a new version, and a
// wrap-up records the version its codes came from, so reports keep their
// meaning when the tree changes.
type ReasonTree struct {
	TenantID string `json:"tenant_id"`
	// Version is assigned by the store on save: 1, 2, 3... per tenant.
	Version int          `json:"version"`
	Nodes   []ReasonNode `json:"nodes"`
	// Mandatory means an agent must pick at least one code to finish a
	// wrap-up.
	Mandatory bool      `json:"mandatory"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// ReasonNode is one contact reason. Inner nodes group reasons; only leaves
// are recorded on a session, so reports count like with like.
type ReasonNode struct {
	Code     string       `json:"code"`
	Label    string       `json:"label"`
	Children []ReasonNode `json:"children,omitempty"`
}

// Validate checks the shape of the tree: codes are 1–64 of
// [A-Za-z0-9_.-] and unique across the whole tree (a code alone identifies a
// reason), labels are non-empty and at most 200 characters, the tree is at
// most 5 levels deep with at most 2000 nodes, and a mandatory tree has at
// least one code. The error is Invalid and names the first offending node by
// its path, e.g. "nodes[0].children[2].code: ...".
func (t ReasonTree) Validate() error {
	v := treeValidator{seen: map[string]string{}}
	if err := v.walk(t.Nodes, "nodes", 1); err != nil {
		return errs.E("agents.ReasonTree.Validate", errs.Invalid, "%s", err.Error())
	}
	if t.Mandatory && v.count == 0 {
		return errs.E("agents.ReasonTree.Validate", errs.Invalid, "nodes: a mandatory tree needs at least one reason")
	}
	return nil
}

type treeValidator struct {
	count int
	seen  map[string]string // code -> path of its first node
}

func (v *treeValidator) walk(nodes []ReasonNode, path string, depth int) error {
	if len(nodes) > 0 && depth > MaxReasonDepth {
		return fmt.Errorf("%s: tree is deeper than %d levels", path, MaxReasonDepth)
	}
	for i, n := range nodes {
		p := fmt.Sprintf("%s[%d]", path, i)
		v.count++
		if v.count > MaxReasonNodes {
			return fmt.Errorf("%s: tree has more than %d nodes", p, MaxReasonNodes)
		}
		if n.Code == "" {
			return fmt.Errorf("%s.code: must not be empty", p)
		}
		if !reasonCodeRE.MatchString(n.Code) {
			return fmt.Errorf("%s.code: %q must be 1-64 characters of A-Z, a-z, 0-9, '_', '.', '-'", p, n.Code)
		}
		if first, dup := v.seen[n.Code]; dup {
			return fmt.Errorf("%s.code: duplicate code %q (first at %s)", p, n.Code, first)
		}
		v.seen[n.Code] = p
		if n.Label == "" {
			return fmt.Errorf("%s.label: must not be empty", p)
		}
		if utf8.RuneCountInString(n.Label) > MaxReasonLabel {
			return fmt.Errorf("%s.label: must be at most %d characters", p, MaxReasonLabel)
		}
		if err := v.walk(n.Children, p+".children", depth+1); err != nil {
			return err
		}
	}
	return nil
}

// find returns the node with code, or nil.
func find(nodes []ReasonNode, code string) *ReasonNode {
	for i := range nodes {
		if nodes[i].Code == code {
			return &nodes[i]
		}
		if n := find(nodes[i].Children, code); n != nil {
			return n
		}
	}
	return nil
}

// Has reports whether code is anywhere in the tree.
func (t ReasonTree) Has(code string) bool { return find(t.Nodes, code) != nil }

// IsLeaf reports whether code is in the tree and has no children; wrap-up
// accepts leaf codes only.
func (t ReasonTree) IsLeaf(code string) bool {
	n := find(t.Nodes, code)
	return n != nil && len(n.Children) == 0
}
