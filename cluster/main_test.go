package cluster_test

import (
	"context"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/r2m-go/r2m/cluster"
	"github.com/r2m-go/r2m/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// ctxFor returns a context bounded by d and cancelled when the test ends.
func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newEngine returns an engine for c's password, closed when the test ends.
func newEngine(t *testing.T, password string) *cluster.Engine {
	t.Helper()
	e := cluster.New(cluster.Config{Password: password, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { e.Close() })
	return e
}

// requireCheck runs the real `redis-cli --cluster check` against addr and
// fails the test unless it exits 0. Replicas learn slot changes by gossip,
// a moment after the masters, so it retries for a bounded time before
// failing with the last output.
func requireCheck(t *testing.T, addr, password string) {
	t.Helper()
	cli, err := testenv.RedisCLIPath()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--cluster", "check", addr}
	if password != "" {
		args = append([]string{"-a", password, "--no-auth-warning"}, args...)
	}
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		out, err := exec.Command(cli, args...).CombinedOutput()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-cli --cluster check %s: %v\n%s", addr, err, out)
		}
		<-tick.C
	}
}

// requireHealthy asserts that Check finds nothing wrong and that redis-cli
// agrees.
func requireHealthy(t *testing.T, e *cluster.Engine, addr, password string) *cluster.View {
	t.Helper()
	requireCheck(t, addr, password)
	ctx := ctxFor(t, 30*time.Second)
	v, err := e.WaitConverged(ctx, addr, 20*time.Second)
	if err != nil {
		t.Fatalf("WaitConverged: %v", err)
	}
	for _, f := range cluster.Analyze(v) {
		if f.Severity == cluster.SevError {
			t.Fatalf("Check finding after convergence: %s", f)
		}
	}
	return v
}

// keyInSlot returns a key named prefix+N that hashes to slot.
func keyInSlot(prefix string, slot int) string {
	for i := 0; ; i++ {
		k := prefix + itoa(i)
		if cluster.KeySlot(k) == slot {
			return k
		}
	}
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	if i == 0 {
		return "0"
	}
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}

func hasFinding(fs []cluster.Finding, k cluster.FindingKind) bool {
	for _, f := range fs {
		if f.Kind == k {
			return true
		}
	}
	return false
}

func describe(fs []cluster.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	return b.String()
}
