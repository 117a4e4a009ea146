package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the control plane, and anything meant for tests
// only, out of what an application pulls in when it imports the client.
func TestDependencies(t *testing.T) {
	banned := map[string]string{
		"github.com/r2m-go/r2m/manager":          "the control plane",
		"github.com/r2m-go/r2m/agent":            "the host agent",
		"github.com/r2m-go/r2m/cluster":          "cluster administration",
		"github.com/r2m-go/r2m/monitor":          "monitoring and alerting",
		"github.com/r2m-go/r2m/cmd":              "the r2m binary",
		"github.com/r2m-go/r2m/internal/testenv": "test servers",
		"github.com/r2m-go/r2m/coord/coordtest":  "the coordinator conformance suite",
		"github.com/redis/go-redis/v9":           "the outside client of tests and benchmarks",
		"go.etcd.io/etcd/server/v3":              "the embedded etcd server",
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/r2m-go/r2m/client").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %v", deps)
	}
	for _, d := range deps {
		for b, why := range banned {
			if d == b || strings.HasPrefix(d, b+"/") {
				t.Errorf("client depends on %s (%s)", d, why)
			}
		}
	}
}
