package agent_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/r2m-go/r2m/agent"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/meta"
)

// TestStopOnExitAndStopAll: with StopOnExit, Run stops its instances
// before it returns and keeps their data, so the next agent brings back the
// same cluster nodes; without it, StopAll stops them after Run, and refuses
// while Run holds the data directory.
func TestStopOnExitAndStopAll(t *testing.T) {
	ctx := testCtx(t)
	dir := newDataDir(t)
	f := newFixture(t, testenv.SharedEtcd(t).URL(uniqueRoot()), 0)
	ports := freePorts(t, 2)
	f.setDesired(t, "host-a", 1, instance(ports[0]), instance(ports[1]))
	o := f.options("host-a", dir)
	o.StopOnExit = true
	r := f.start(t, o)
	f.waitActual(t, "host-a", "running", allRunning(1, ports...))
	ids := map[int]string{}
	for _, p := range ports {
		id, err := redisClient(p, "").ClusterMyID(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids[p] = id
	}
	if err := r.a.StopAll(ctx); !errors.Is(err, agent.ErrLocked) {
		t.Fatalf("StopAll while Run runs: %v; want ErrLocked", err)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run with StopOnExit: %v", err)
	}
	for _, p := range ports {
		if pids := redisPIDs(p); len(pids) != 0 {
			t.Fatalf("port %d still runs %v after Run with StopOnExit returned", p, pids)
		}
		if _, err := os.Stat(filepath.Join(dir, "redis-"+strconv.Itoa(p), "nodes.conf")); err != nil {
			t.Fatalf("StopOnExit must keep the instance's data: %v", err)
		}
	}
	f.waitActual(t, "host-a", "all stopped", func(a *meta.ActualState) bool {
		for _, s := range a.Instances {
			if s.State != agent.StateStopped || s.PID != 0 {
				return false
			}
		}
		return len(a.Instances) == 2
	})

	// The next agent starts them again, as the same cluster nodes.
	r = f.start(t, f.options("host-a", dir))
	f.waitActual(t, "host-a", "running again", allRunning(1, ports...))
	for _, p := range ports {
		if id, err := redisClient(p, "").ClusterMyID(ctx).Result(); err != nil || id != ids[p] {
			t.Fatalf("port %d node id %q, %v after the restart; want %q from nodes.conf", p, id, err, ids[p])
		}
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		onlyPID(t, p) // still running: no StopOnExit this time
	}
	if err := r.a.StopAll(ctx); err != nil {
		t.Fatalf("StopAll: %v", err)
	}
	for _, p := range ports {
		if pids := redisPIDs(p); len(pids) != 0 {
			t.Fatalf("port %d still runs %v after StopAll", p, pids)
		}
	}
}

// TestDataDirLock: a second agent on a data directory in use fails at
// once with ErrLocked and does not touch the instances.
func TestDataDirLock(t *testing.T) {
	dir := newDataDir(t)
	f := newFixture(t, testenv.SharedEtcd(t).URL(uniqueRoot()), 0)
	port := freePorts(t, 1)[0]
	f.setDesired(t, "host-a", 1, instance(port))
	f.start(t, f.options("host-a", dir))
	act := f.waitActual(t, "host-a", "running", allRunning(1, port))
	second, err := agent.New(f.options("host-b", dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Run(context.Background()); !errors.Is(err, agent.ErrLocked) {
		t.Fatalf("second Run on the same data dir: %v; want ErrLocked", err)
	}
	if pid := onlyPID(t, port); pid != status(act, port).PID {
		t.Fatalf("pid %d; want %d untouched", pid, status(act, port).PID)
	}
	if err := second.Run(context.Background()); !errors.Is(err, agent.ErrAlreadyRun) {
		t.Fatalf("Run called twice: %v; want ErrAlreadyRun", err)
	}
}

// TestNewValidatesOptions: every problem is reported at once.
func TestNewValidatesOptions(t *testing.T) {
	_, err := agent.New(agent.Options{Host: "../x", BindAddr: "not-an-ip", RedisServerPath: "/nonexistent/redis-server", RestartBackoffMin: -1})
	if !errors.Is(err, agent.ErrInvalidOptions) || !errors.Is(err, meta.ErrInvalidName) {
		t.Fatalf("New with bad options: %v; want ErrInvalidOptions wrapping meta.ErrInvalidName", err)
	}
	for _, want := range []string{"host name", "not an IP address", "missing DataDir", "missing Coordinator", "redis-server binary", "RestartBackoffMin is negative"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
