package layering

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/r2m-go/r2m/"

// rules lists, per package, the R2M packages it must not depend on,
// directly or not. "*" means every R2M package but the ones in allow.
var rules = []struct {
	pkg   string
	deny  []string
	allow []string // with deny "*"
}{
	{pkg: "coord", deny: []string{"*"}, allow: []string{"internal/backoff", "internal/lifecycle"}},
	{pkg: "rdb", deny: []string{"*"}},
	{pkg: "repl", deny: []string{"*"}},
	{pkg: "api", deny: []string{"*"}},
	{pkg: "migrate", deny: []string{"*"}, allow: []string{"rdb", "repl", "internal/backoff", "internal/lifecycle"}},
	{pkg: "web", deny: []string{"*"}, allow: []string{"api", "internal/buildinfo"}},
	{pkg: "cluster", deny: []string{"coord", "meta", "manager", "client", "monitor", "agent", "web"}},
	{pkg: "meta", deny: []string{"client", "cluster", "manager", "agent", "monitor", "web", "migrate"}},
	{pkg: "client", deny: []string{"manager", "agent", "cluster", "monitor", "web", "migrate", "internal/testenv"}},
	{pkg: "monitor", deny: []string{"manager", "client", "web", "internal/testenv"}},
	{pkg: "agent", deny: []string{"manager", "cluster", "client", "web", "internal/testenv"}},
	{pkg: "manager", deny: []string{"client", "web", "internal/testenv"}},
}

// TestImportRules checks each package's dependencies (go list -deps, so
// indirect ones count) against the rules.
func TestImportRules(t *testing.T) {
	for _, r := range rules {
		t.Run(r.pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", "-json=ImportPath", module+r.pkg).Output()
			if err != nil {
				t.Fatalf("go list -deps %s: %v", r.pkg, err)
			}
			dec := json.NewDecoder(strings.NewReader(string(out)))
			seen := 0
			for dec.More() {
				var p struct{ ImportPath string }
				if err := dec.Decode(&p); err != nil {
					t.Fatal(err)
				}
				seen++
				dep, ok := strings.CutPrefix(p.ImportPath, module)
				if !ok || dep == r.pkg {
					continue
				}
				if denied(dep, r.deny, r.allow) {
					t.Errorf("%s depends on %s, which docs/architecture.md rules out", r.pkg, dep)
				}
			}
			if seen < 2 {
				t.Fatalf("go list -deps %s listed %d packages", r.pkg, seen)
			}
		})
	}
}

func denied(dep string, deny, allow []string) bool {
	for _, d := range deny {
		if d == "*" {
			for _, a := range allow {
				if dep == a || strings.HasPrefix(dep, a+"/") {
					return false
				}
			}
			return true
		}
		if dep == d || strings.HasPrefix(dep, d+"/") {
			return true
		}
	}
	return false
}
