package app

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportRules keeps the import graph a DAG with the composition root on
// top: domain packages never reach the console, the HTTP framework or the
// wiring in internal/app.
func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`,
		"github.com/switchboard-acd/switchboard/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/switchboard-acd/switchboard/"
	forbidden := []string{mod + "console", mod + "internal/app", "github.com/gofiber/fiber/v2"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, deps := fields[0], fields[1:]
		rel := strings.TrimPrefix(pkg, mod)
		if strings.HasPrefix(rel, "console") || strings.HasPrefix(rel, "internal/app") || strings.HasPrefix(rel, "cmd/") {
			continue
		}
		for _, d := range deps {
			for _, f := range forbidden {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("%s imports %s", rel, d)
				}
			}
		}
	}
}
