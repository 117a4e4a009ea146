package agent_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/r2m-go/r2m/agent"
	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/meta"
)

// TestRunsDesiredInstances: two desired instances run and answer, are
// reported with the desired generation, a killed one is restarted, a
// removed one is stopped and forgotten, and the agent's registration
// follows its Run.
func TestRunsDesiredInstances(t *testing.T) {
	backends(t, func(t *testing.T, url func(string) string) {
		ctx := testCtx(t)
		dir := newDataDir(t)
		f := newFixture(t, url(uniqueRoot()), 0)
		ports := freePorts(t, 2)
		f.setDesired(t, "host-a", 1, instance(ports[0]), instance(ports[1]))
		r := f.start(t, f.options("host-a", dir))

		act := f.waitActual(t, "host-a", "generation 1, both running", allRunning(1, ports...))
		for _, p := range ports {
			if err := pingPort(ctx, p, ""); err != nil {
				t.Fatalf("PING port %d: %v", p, err)
			}
			if pid := onlyPID(t, p); pid != status(act, p).PID {
				t.Fatalf("port %d: /proc shows pid %d, actual state reports %d", p, pid, status(act, p).PID)
			}
			info, err := redisClient(p, "").Info(ctx, "cluster").Result()
			if err != nil || !strings.Contains(info, "cluster_enabled:1") {
				t.Fatalf("port %d INFO cluster = %q, %v; want cluster_enabled:1", p, info, err)
			}
			conf := filepath.Join(dir, "redis-"+strconv.Itoa(p), "redis.conf")
			if st, err := os.Stat(conf); err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("%s: %v, %v; want mode 0600", conf, st.Mode(), err)
			}
			if _, err := os.Stat(filepath.Join(dir, "redis-"+strconv.Itoa(p), "nodes.conf")); err != nil {
				t.Fatalf("nodes.conf is not in the instance directory: %v", err)
			}
		}

		// Registration: the host record and the live record of this session.
		host, _, err := f.st.Agent("host-a").Get(ctx)
		if err != nil || host.Addr != "127.0.0.1" || host.Host != "host-a" {
			t.Fatalf("host record = %+v, %v", host, err)
		}
		live, err := f.c.Get(ctx, f.st.AgentLive("host-a").Path())
		if err != nil || !live.Ephemeral || live.Owner != f.c.SessionID() {
			t.Fatalf("live record = %+v, %v; want an ephemeral owned by session %s", live, err, f.c.SessionID())
		}

		// kill -9: the agent restarts it, with a new pid and a restart counted.
		old := status(act, ports[0]).PID
		killPID(t, old)
		act = f.waitActual(t, "host-a", "the killed instance restarted", func(a *meta.ActualState) bool {
			s := status(a, ports[0])
			return s != nil && s.State == agent.StateRunning && s.PID != old && s.PID != 0 && s.Restarts == 1
		})
		if pid := onlyPID(t, ports[0]); pid != status(act, ports[0]).PID {
			t.Fatalf("after restart /proc shows pid %d, actual state %d", pid, status(act, ports[0]).PID)
		}
		if err := pingPort(ctx, ports[0], ""); err != nil {
			t.Fatalf("PING after restart: %v", err)
		}
		if s := status(act, ports[1]); s.Restarts != 0 {
			t.Fatalf("untouched instance reports %d restarts", s.Restarts)
		}

		// Removal: the process ends, the directory and the status go.
		removed := status(act, ports[1]).PID
		f.setDesired(t, "host-a", 2, instance(ports[0]))
		f.waitActual(t, "host-a", "generation 2 with one instance", allRunning(2, ports[0]))
		if pids := redisPIDs(ports[1]); len(pids) != 0 {
			t.Fatalf("removed instance still runs: pids %v (was %d)", pids, removed)
		}
		if _, err := os.Stat(filepath.Join(dir, "redis-"+strconv.Itoa(ports[1]))); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("removed instance's directory: %v; want it gone", err)
		}

		// Stopping the agent deletes its live record and leaves the instance.
		kept := onlyPID(t, ports[0])
		if err := r.stop(t); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if _, err := f.c.Get(ctx, f.st.AgentLive("host-a").Path()); !errors.Is(err, coord.ErrNotFound) {
			t.Fatalf("live record after Run returned: %v; want ErrNotFound", err)
		}
		if pid := onlyPID(t, ports[0]); pid != kept {
			t.Fatalf("instance pid %d after the agent stopped; want %d still running", pid, kept)
		}
	})
}

// TestAdoptsAfterRestart: a new agent on the same data directory adopts
// the running instances (even without their pidfile), starts one that died
// while no agent ran, and stops one removed meanwhile: no duplicates, no
// orphans.
func TestAdoptsAfterRestart(t *testing.T) {
	backends(t, func(t *testing.T, url func(string) string) {
		ctx := testCtx(t)
		dir := newDataDir(t)
		f := newFixture(t, url(uniqueRoot()), 0)
		ports := freePorts(t, 3)
		f.setDesired(t, "host-a", 1, instance(ports[0]), instance(ports[1]), instance(ports[2]))
		first := f.start(t, f.options("host-a", dir))
		act := f.waitActual(t, "host-a", "three running", allRunning(1, ports...))
		pids := make([]int, 3)
		for i, p := range ports {
			pids[i] = status(act, p).PID
		}
		if err := first.stop(t); err != nil {
			t.Fatalf("Run: %v", err)
		}
		for i, p := range ports {
			if pid := onlyPID(t, p); pid != pids[i] {
				t.Fatalf("port %d runs pid %d after the agent stopped; want %d", p, pid, pids[i])
			}
		}

		// While no agent runs: one instance is removed from the desired state,
		// one dies, and one loses its pidfile.
		f.setDesired(t, "host-a", 2, instance(ports[0]), instance(ports[1]))
		killPID(t, pids[1])
		if err := os.Remove(filepath.Join(dir, "redis-"+strconv.Itoa(ports[0]), "redis.pid")); err != nil {
			t.Fatal(err)
		}

		f.start(t, f.options("host-a", dir))
		act = f.waitActual(t, "host-a", "generation 2 adopted", allRunning(2, ports[0], ports[1]))
		if s := status(act, ports[0]); s.PID != pids[0] || s.Restarts != 0 {
			t.Fatalf("adopted instance reports pid %d, %d restarts; want pid %d, 0 restarts", s.PID, s.Restarts, pids[0])
		}
		if pid := onlyPID(t, ports[0]); pid != pids[0] {
			t.Fatalf("port %d runs pid %d; want the adopted %d", ports[0], pid, pids[0])
		}
		if s := status(act, ports[1]); s.PID == pids[1] {
			t.Fatalf("instance that died while no agent ran still reports its old pid %d", s.PID)
		}
		onlyPID(t, ports[1])
		waitFor(t, "the orphan to stop", func() (bool, string) {
			left := redisPIDs(ports[2])
			return len(left) == 0, "pids " + strconv.Itoa(len(left))
		})
		if _, err := os.Stat(filepath.Join(dir, "redis-"+strconv.Itoa(ports[2]))); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("orphan's directory: %v; want it removed", err)
		}
		for _, p := range ports[:2] {
			if err := pingPort(ctx, p, ""); err != nil {
				t.Fatalf("PING %d: %v", p, err)
			}
		}
		if strings.Contains(f.logs.String(), "config applied to the running instance") {
			t.Error("adoption changed the running instance's config; it should find it as written")
		}
		// Still exactly one process each after later probe rounds.
		f.waitActual(t, "host-a", "a later report, still the adopted pid", func(a *meta.ActualState) bool {
			return a.UpdatedAt.After(act.UpdatedAt) && status(a, ports[0]) != nil && status(a, ports[0]).PID == pids[0]
		})
		onlyPID(t, ports[0])
		onlyPID(t, ports[1])
	})
}

// TestThreeAgentsOneMachine: three agents with different host names on this
// machine run their own instances; a killed instance is restarted by its
// own agent only; restarting an agent creates no duplicate process.
func TestThreeAgentsOneMachine(t *testing.T) {
	backends(t, func(t *testing.T, url func(string) string) {
		f := newFixture(t, url(uniqueRoot()), 0)
		hosts := []string{"host-a", "host-b", "host-c"}
		all := freePorts(t, 6)
		ports := map[string][]int{}
		runs := map[string]*running{}
		dirs := map[string]string{}
		for i, h := range hosts {
			ports[h] = all[2*i : 2*i+2]
			dirs[h] = newDataDir(t)
			f.setDesired(t, h, 1, instance(ports[h][0]), instance(ports[h][1]))
			runs[h] = f.start(t, f.options(h, dirs[h]))
		}
		pids := map[int]int{}
		for _, h := range hosts {
			act := f.waitActual(t, h, "both running", allRunning(1, ports[h]...))
			for _, p := range ports[h] {
				pids[p] = status(act, p).PID
				if onlyPID(t, p) != pids[p] {
					t.Fatalf("%s port %d: pid mismatch", h, p)
				}
				cwd, _ := os.Readlink("/proc/" + strconv.Itoa(pids[p]) + "/cwd")
				if !strings.HasPrefix(cwd, dirs[h]+"/") {
					t.Fatalf("%s port %d runs in %s, outside its agent's data dir %s", h, p, cwd, dirs[h])
				}
			}
		}

		victim := ports["host-b"][0]
		killPID(t, pids[victim])
		act := f.waitActual(t, "host-b", "the killed instance restarted", func(a *meta.ActualState) bool {
			s := status(a, victim)
			return s != nil && s.State == agent.StateRunning && s.PID != pids[victim] && s.Restarts == 1
		})
		pids[victim] = status(act, victim).PID
		for _, h := range []string{"host-a", "host-c"} {
			act := f.waitActual(t, h, "a report after host-b's restart", func(a *meta.ActualState) bool { return allRunning(1, ports[h]...)(a) })
			for _, p := range ports[h] {
				if s := status(act, p); s.PID != pids[p] || s.Restarts != 0 {
					t.Fatalf("%s port %d: pid %d, %d restarts; want pid %d untouched", h, p, s.PID, s.Restarts, pids[p])
				}
			}
		}

		// Restarting host-b's agent adopts; no process is added anywhere.
		if err := runs["host-b"].stop(t); err != nil {
			t.Fatalf("Run: %v", err)
		}
		f.start(t, f.options("host-b", dirs["host-b"]))
		waitFor(t, "host-b's new agent to register", func() (bool, string) {
			n, err := f.c.Get(context.Background(), f.st.AgentLive("host-b").Path())
			return err == nil && n.Owner == f.c.SessionID(), "not yet"
		})
		act = f.waitActual(t, "host-b", "both adopted", func(a *meta.ActualState) bool {
			return allRunning(1, ports["host-b"]...)(a) && status(a, victim).PID == pids[victim] && status(a, ports["host-b"][1]).PID == pids[ports["host-b"][1]]
		})
		for _, p := range all {
			if pid := onlyPID(t, p); pid != pids[p] {
				t.Fatalf("port %d runs pid %d; want %d", p, pid, pids[p])
			}
		}
		if s := status(act, victim); s.Restarts != 1 {
			t.Fatalf("restart count after the agent restarted = %d; want the 1 reported before", s.Restarts)
		}
		for _, h := range hosts {
			a, _, err := f.st.Actual(h).Get(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Instances) != 2 || status(a, ports[h][0]) == nil || status(a, ports[h][1]) == nil {
				t.Fatalf("%s reports %+v; want exactly its own two ports %v", h, a.Instances, ports[h])
			}
		}
	})
}

// TestKeepsRunningThroughCoordinatorOutage: with the coordinator down the
// agent restarts a killed instance; an agent restarted during the outage
// does so too, from its local copy of the desired state; when the
// coordinator returns, registration and reports resume.
func TestKeepsRunningThroughCoordinatorOutage(t *testing.T) {
	for _, b := range []struct {
		name  string
		start func(t *testing.T) (url string, stop, restart func() error)
	}{
		{"zk", func(t *testing.T) (string, func() error, func() error) {
			z := testenv.StartZooKeeper(t)
			return z.URL(uniqueRoot()), z.Stop, z.Start
		}},
		{"etcd", func(t *testing.T) (string, func() error, func() error) {
			e := testenv.StartEtcd(t)
			return e.URL(uniqueRoot()), e.Stop, e.Start
		}},
	} {
		t.Run(b.name, func(t *testing.T) {
			ctx := testCtx(t)
			url, stopServer, startServer := b.start(t)
			dir := newDataDir(t)
			f := newFixture(t, url, 2*time.Second)
			port := freePorts(t, 1)[0]
			f.setDesired(t, "host-a", 1, instance(port))
			first := f.start(t, f.options("host-a", dir))
			act := f.waitActual(t, "host-a", "running", allRunning(1, port))
			pid := status(act, port).PID

			if err := stopServer(); err != nil {
				t.Fatal(err)
			}
			killPID(t, pid)
			pid = waitNewPID(t, port, pid)

			// An agent restarted during the outage adopts, and supervises on its
			// local copy of the desired state.
			if err := first.stop(t); err == nil {
				t.Log("first agent stopped without an error although the coordinator is down")
			} else {
				t.Logf("first agent stopped during the outage: %v", err)
			}
			if onlyPID(t, port) != pid {
				t.Fatal("instance changed while no agent ran")
			}
			f.start(t, f.options("host-a", dir))
			// Its supervisor adopts the instance once the startup wait
			// (CoordTimeout) is over; kill it only then, so the kill tests
			// supervision, not a first start.
			waitFor(t, "the second agent to adopt the instance", func() (bool, string) {
				return strings.Contains(f.logs.String(), "running on the local copy of the desired state") &&
					strings.Count(f.logs.String(), "adopted running redis-server") >= 1, "no adoption logged yet"
			})
			killPID(t, pid)
			pid = waitNewPID(t, port, pid)

			if err := startServer(); err != nil {
				t.Fatal(err)
			}
			f.waitActual(t, "host-a", "the restarted instance reported after the outage", func(a *meta.ActualState) bool {
				s := status(a, port)
				return s != nil && s.PID == pid && s.State == agent.StateRunning && s.Restarts >= 1
			})
			waitFor(t, "the live record of the current session", func() (bool, string) {
				n, err := f.c.Get(ctx, f.st.AgentLive("host-a").Path())
				if err != nil {
					return false, err.Error()
				}
				return n.Owner == f.c.SessionID(), "owner " + n.Owner + ", session " + f.c.SessionID()
			})
			onlyPID(t, port)
		})
	}
}

// waitNewPID waits until a redis-server other than old runs on port and
// answers PING, and returns its pid.
func waitNewPID(t *testing.T, port, old int) int {
	t.Helper()
	var pid int
	waitFor(t, "a new redis-server on port "+strconv.Itoa(port), func() (bool, string) {
		pids := redisPIDs(port)
		if len(pids) != 1 || pids[0] == old {
			return false, "pids " + fmtInts(pids)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := pingPort(ctx, port, ""); err != nil {
			return false, err.Error()
		}
		pid = pids[0]
		return true, ""
	})
	return pid
}

func fmtInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return "[" + strings.Join(s, " ") + "]"
}
