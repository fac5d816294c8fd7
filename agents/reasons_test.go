package agents_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard-acd/switchboard/agents"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

func leaf(code string) agents.ReasonNode {
	return agents.ReasonNode{Code: code, Label: "Label " + code}
}

func branch(code string, children ...agents.ReasonNode) agents.ReasonNode {
	n := leaf(code)
	n.Children = children
	return n
}

// chain is a tree of depth levels, one node per level.
func chain(depth int) []agents.ReasonNode {
	n := leaf(fmt.Sprintf("l%d", depth))
	for d := depth - 1; d >= 1; d-- {
		n = branch(fmt.Sprintf("l%d", d), n)
	}
	return []agents.ReasonNode{n}
}

func flat(n int) []agents.ReasonNode {
	nodes := make([]agents.ReasonNode, n)
	for i := range nodes {
		nodes[i] = leaf(fmt.Sprintf("c%d", i))
	}
	return nodes
}

func TestReasonTreeValidate(t *testing.T) {
	type result struct {
		Code errs.Code
		Msg  string
	}
	ok := result{}
	invalid := func(msg string) result { return result{Code: errs.Invalid, Msg: msg} }

	cases := []struct {
		name string
		tree agents.ReasonTree
		want result
	}{
		{"valid", agents.ReasonTree{Nodes: []agents.ReasonNode{
			branch("billing", leaf("billing.refund"), leaf("billing.invoice")),
			leaf("Other_1-x"),
		}, Mandatory: true}, ok},
		{"empty, optional", agents.ReasonTree{}, ok},
		{"empty, mandatory", agents.ReasonTree{Mandatory: true},
			invalid("nodes: a mandatory tree needs at least one reason")},
		{"empty code", agents.ReasonTree{Nodes: []agents.ReasonNode{leaf("a"), {Label: "x"}}},
			invalid("nodes[1].code: must not be empty")},
		{"code with space", agents.ReasonTree{Nodes: []agents.ReasonNode{leaf("a b")}},
			invalid(`nodes[0].code: "a b" must be 1-64 characters of A-Z, a-z, 0-9, '_', '.', '-'`)},
		{"code 64 chars", agents.ReasonTree{Nodes: []agents.ReasonNode{leaf(strings.Repeat("c", 64))}}, ok},
		{"code 65 chars", agents.ReasonTree{Nodes: []agents.ReasonNode{leaf(strings.Repeat("c", 65))}},
			invalid(fmt.Sprintf(`nodes[0].code: %q must be 1-64 characters of A-Z, a-z, 0-9, '_', '.', '-'`, strings.Repeat("c", 65)))},
		{"duplicate code across levels", agents.ReasonTree{Nodes: []agents.ReasonNode{
			branch("a", leaf("b")),
			branch("c", leaf("a")),
		}}, invalid(`nodes[1].children[0].code: duplicate code "a" (first at nodes[0])`)},
		{"empty label", agents.ReasonTree{Nodes: []agents.ReasonNode{branch("a", agents.ReasonNode{Code: "b"})}},
			invalid("nodes[0].children[0].label: must not be empty")},
		{"label 200 characters", agents.ReasonTree{Nodes: []agents.ReasonNode{{Code: "a", Label: strings.Repeat("原", 200)}}}, ok},
		{"label 201 characters", agents.ReasonTree{Nodes: []agents.ReasonNode{{Code: "a", Label: strings.Repeat("x", 201)}}},
			invalid("nodes[0].label: must be at most 200 characters")},
		{"depth 5", agents.ReasonTree{Nodes: chain(5)}, ok},
		{"depth 6", agents.ReasonTree{Nodes: chain(6)},
			invalid("nodes[0].children[0].children[0].children[0].children[0].children: tree is deeper than 5 levels")},
		{"2000 nodes", agents.ReasonTree{Nodes: flat(2000)}, ok},
		{"2001 nodes", agents.ReasonTree{Nodes: flat(2001)},
			invalid("nodes[2000]: tree has more than 2000 nodes")},
		{"2001 nodes nested", agents.ReasonTree{Nodes: []agents.ReasonNode{branch("root", flat(2000)...)}},
			invalid("nodes[0].children[1999]: tree has more than 2000 nodes")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.tree.Validate()
			got := result{}
			if err != nil {
				got = result{Code: errs.CodeOf(err), Msg: errs.MessageOf(err)}
			}
			if d := cmp.Diff(c.want, got); d != "" {
				t.Errorf("Validate() mismatch (-want +got):\n%s", d)
			}
		})
	}
}

func TestReasonTreeHasIsLeaf(t *testing.T) {
	tree := agents.ReasonTree{Nodes: []agents.ReasonNode{
		branch("billing", leaf("billing.refund"), branch("billing.invoice", leaf("billing.invoice.copy"))),
		leaf("other"),
	}}
	type got struct{ Has, IsLeaf bool }
	want := map[string]got{
		"billing":              {true, false},
		"billing.refund":       {true, true},
		"billing.invoice":      {true, false},
		"billing.invoice.copy": {true, true},
		"other":                {true, true},
		"missing":              {false, false},
		"":                     {false, false},
	}
	res := map[string]got{}
	for code := range want {
		res[code] = got{tree.Has(code), tree.IsLeaf(code)}
	}
	if d := cmp.Diff(want, res); d != "" {
		t.Errorf("Has/IsLeaf mismatch (-want +got):\n%s", d)
	}
}
