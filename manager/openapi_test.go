package manager

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/meta"
	"github.com/r2m-go/r2m/monitor"
)

// TestOpenAPIDocumentsEveryRoute keeps docs/openapi.yaml in step with the
// routes the server registers.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mon, err := monitor.New(monitor.Config{Store: meta.NewStore(&coord.Coordinator{}), DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	s := &Server{cfg: Config{Coordinator: &coord.Coordinator{}, Monitor: mon}}
	s.kinds = s.opKinds()
	s.routes()
	// Every path registered with a method, as the mux saw it.
	re := regexp.MustCompile(`(?m)^  (/[^:]*):$`)
	documented := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	for _, p := range s.patterns {
		_, path, _ := strings.Cut(p, " ")
		if !documented[path] {
			t.Errorf("route %s is not in docs/openapi.yaml", p)
		}
	}
}
