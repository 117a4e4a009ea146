package migrate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/migrate"
)

// killIterations is how many times the kill tests kill -9 the worker: 20,
// as the migration's acceptance asks, unless R2M_KILL_ITERATIONS says
// otherwise (fewer for a quick local run).
func killIterations() int {
	if n, err := strconv.Atoi(os.Getenv("R2M_KILL_ITERATIONS")); err == nil && n > 0 {
		return n
	}
	return 20
}

// worker is a link worker process (this test binary, re-executed).
type worker struct {
	cmd   *exec.Cmd
	cfg   workerConfig
	log   *os.File
	waitc chan error
}

func startWorker(t *testing.T, cfg workerConfig, n int) *worker {
	t.Helper()
	b, err := json.Marshal(cfg)
	must(t, err)
	logf, err := os.Create(filepath.Join(filepath.Dir(cfg.StatsFile), fmt.Sprintf("worker-%d.log", n)))
	must(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), workerEnv+"="+string(b))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // dies with the test binary
	_ = os.Remove(cfg.StatsFile)
	must(t, cmd.Start())
	w := &worker{cmd: cmd, cfg: cfg, log: logf, waitc: make(chan error, 1)}
	go func() { w.waitc <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-w.waitc
		w.waitc <- nil
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("worker %d log (tail):\n%s", n, b)
		}
	})
	return w
}

// stats reads the worker's last stats; ok=false before the first.
func (w *worker) stats() (migrate.Stats, bool) {
	var st migrate.Stats
	b, err := os.ReadFile(w.cfg.StatsFile)
	if err != nil || json.Unmarshal(b, &st) != nil {
		return st, false
	}
	return st, true
}

func (w *worker) kill9(t *testing.T) {
	t.Helper()
	must(t, w.cmd.Process.Signal(syscall.SIGKILL))
	err := <-w.waitc
	w.waitc <- err
}

func (w *worker) exited() bool {
	select {
	case err := <-w.waitc:
		w.waitc <- err
		return true
	default:
		return false
	}
}

// waitApplied waits until the worker has applied everything the source had
// written when it was called.
func (w *worker) waitApplied(t *testing.T, ctx context.Context, src *redis.Client) {
	t.Helper()
	info, err := src.Info(ctx, "replication").Result()
	must(t, err)
	var want int64
	for _, l := range splitLines(info) {
		if v, ok := cutPrefix(l, "master_repl_offset:"); ok {
			want, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	waitFor(t, ctx, fmt.Sprintf("the worker to apply offset %d", want), func() bool {
		if w.exited() {
			t.Fatalf("the worker exited")
		}
		st, ok := w.stats()
		return ok && len(st.Shards) == 1 && st.Shards[0].Phase == migrate.PhaseStream && st.Shards[0].AppliedOffset >= want
	})
}

// runKillTest kills the worker with SIGKILL mid-RDB (twice) and then
// mid-stream, restarting it each time from its spool directory and state,
// while paced writers run; then it drains and checks the writers' logs.
// It returns the duplicates found in the lists.
func runKillTest(t *testing.T, mode migrate.Mode) (dups int, iterations int) {
	ctx := ctxFor(t, 4*time.Minute)
	src := testenv.StartRedis(t, testenv.RedisOptions{Config: []string{"repl-backlog-size 64mb"}})
	dst := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 3})
	sc := src.Client(t)
	preload(t, ctx, sc, 60_000)
	dir := t.TempDir()
	cfg := workerConfig{
		ID: "kill", Source: migrate.Endpoint{Addrs: []string{src.Addr}}, Target: migrate.Endpoint{Addrs: dst.Addrs()[:1]},
		SpoolDir: filepath.Join(dir, "spool"), StateDir: filepath.Join(dir, "state"), Mode: mode,
		StatsFile: filepath.Join(dir, "stats.json"), RateLimit: 40000, SaveInterval: 100 * time.Millisecond,
	}
	w := startWriters(t, sc, 4, 4*time.Millisecond)
	defer func() {
		select {
		case <-w.stop:
		default:
			w.halt()
		}
	}()
	iterations = killIterations()
	for i := range iterations {
		wk := startWorker(t, cfg, i)
		midRDB := i < 2
		// Wait for the phase to kill in, then a random moment within it.
		waitFor(t, ctx, "the worker to reach the phase", func() bool {
			if wk.exited() {
				t.Fatalf("worker %d exited", i)
			}
			st, ok := wk.stats()
			if !ok || len(st.Shards) != 1 {
				return false
			}
			if midRDB {
				return st.Shards[0].Phase == migrate.PhaseRDB && st.RDBKeys > 2000
			}
			return st.Shards[0].Phase == migrate.PhaseStream && st.Units > 50
		})
		delay := time.Duration(rand.IntN(150)) * time.Millisecond
		tm := time.NewTimer(delay)
		<-tm.C
		st, _ := wk.stats()
		wk.kill9(t)
		t.Logf("kill -9 #%d (%s) after %v: phase %s, rdb keys %d, applied %d", i+1, map[bool]string{true: "mid-RDB", false: "mid-stream"}[midRDB],
			delay, st.Shards[0].Phase, st.RDBKeys, st.Shards[0].AppliedOffset)
		if midRDB && st.Shards[0].Phase != migrate.PhaseRDB {
			t.Errorf("kill #%d was meant to hit the RDB phase, hit %s", i+1, st.Shards[0].Phase)
		}
	}
	wk := startWorker(t, cfg, iterations)
	wk.waitApplied(t, ctx, sc)
	w.halt()
	wk.waitApplied(t, ctx, sc)
	st, _ := wk.stats()
	t.Logf("final worker: full syncs %d, resumes %d, skipped units %d, commands %d, writer ops %d",
		st.Shards[0].FullSyncs, st.Shards[0].Resumes, st.Skipped, st.Commands, w.ops.Load())
	must(t, wk.cmd.Process.Signal(syscall.SIGTERM))
	if err := <-wk.waitc; err != nil {
		t.Errorf("worker stop: %v", err)
	}
	wk.waitc <- nil
	tc := dst.Client(t)
	if mode == migrate.ExactlyOnce {
		checkWriters(t, ctx, tc, w)
		verify(t, ctx, cfg.Source, migrate.Endpoint{Addrs: dst.Addrs()})
		return 0, iterations
	}
	return countDuplicates(t, ctx, tc, w), iterations
}

// TestKill9ExactlyOnce: in exactly-once mode, kill -9 of the worker
// mid-RDB and mid-stream loses nothing and duplicates nothing: every list
// and stream holds each acknowledged sequence exactly once, in order, and
// counters equal the acknowledged counts.
func TestKill9ExactlyOnce(t *testing.T) {
	runKillTest(t, migrate.ExactlyOnce)
}

// TestKill9AtLeastOnce: in at-least-once mode the same kills lose nothing;
// commands applied after the last saved offset (saved every 100 ms here)
// may be applied again, and the test reports how many were.
func TestKill9AtLeastOnce(t *testing.T) {
	dups, n := runKillTest(t, migrate.AtLeastOnce)
	// A kill can replay at most what was applied since the last save (100
	// ms of a writer: 25 iterations at its 4 ms pace) plus the pipelines in
	// flight, per list, per kill.
	bound := (n - 2) * (25 + 2*migrate.DefaultWindow)
	t.Logf("at-least-once: %d duplicated list elements after %d kills (bound %d)", dups, n, bound)
	if dups > bound {
		t.Errorf("%d duplicates, more than the bound %d", dups, bound)
	}
}

// countDuplicates checks that nothing acknowledged is missing and returns
// how many list elements were applied twice.
func countDuplicates(t *testing.T, ctx context.Context, tc *redis.ClusterClient, w *writers) int {
	t.Helper()
	dups := 0
	for i, lg := range w.logs {
		tag := "{w" + strconv.Itoa(i) + "}"
		list, err := tc.LRange(ctx, "log:"+tag, 0, -1).Result()
		must(t, err)
		seen := map[string]int{}
		for _, s := range list {
			seen[s]++
		}
		for _, a := range lg.acked {
			if seen[strconv.FormatInt(a, 10)] == 0 {
				t.Errorf("writer %d: acknowledged sequence %d is missing (lost write)", i, a)
				break
			}
		}
		for _, c := range seen {
			dups += c - 1
		}
		v, _ := tc.Get(ctx, "cnt:"+tag).Int64()
		if v < lg.incr {
			t.Errorf("writer %d: counter %d below the acknowledged %d (lost writes)", i, v, lg.incr)
		}
	}
	return dups
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, trimCR(s[start:i]))
			start = i + 1
		}
	}
	return append(out, trimCR(s[start:]))
}

func trimCR(s string) string {
	if len(s) > 0 && s[len(s)-1] == '\r' {
		return s[:len(s)-1]
	}
	return s
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}
