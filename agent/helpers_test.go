package agent_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/r2m-go/r2m/agent"
	"github.com/r2m-go/r2m/coord"
	_ "github.com/r2m-go/r2m/coord/install"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/meta"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// waitTimeout bounds every wait for the agent to converge. Each wait polls
// real state (the coordinator, /proc, PING) and ends as soon as it holds.
const waitTimeout = 30 * time.Second

// backends runs f once against the shared ZooKeeper and once against the
// shared etcd.
func backends(t *testing.T, f func(t *testing.T, url func(root string) string)) {
	t.Run("zk", func(t *testing.T) { f(t, testenv.SharedZooKeeper(t).URL) })
	t.Run("etcd", func(t *testing.T) { f(t, testenv.SharedEtcd(t).URL) })
}

// logBuffer collects an agent's log output, safe for concurrent writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fixture is one coordinator session under a fresh root, and the log
// output of every agent the test starts.
type fixture struct {
	c    *coord.Coordinator
	st   *meta.Store
	logs *logBuffer
}

func uniqueRoot() string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	return "/agenttest/" + hex.EncodeToString(r[:])
}

// newFixture opens a coordinator session at url (which names the root).
// sessionTimeout zero means the default.
func newFixture(t *testing.T, url string, sessionTimeout time.Duration) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := coord.OpenConfig(ctx, coord.Config{URL: url, SessionTimeout: sessionTimeout, CloseTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{c: c, st: meta.NewStore(c), logs: &logBuffer{}}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("coordinator close: %v", err)
		}
		if t.Failed() || os.Getenv("R2M_AGENT_TEST_LOGS") != "" {
			t.Logf("agent logs:\n%s", f.logs.String())
		}
	})
	return f
}

// options returns agent options with short timings for tests.
func (f *fixture) options(host, dataDir string) agent.Options {
	o := agent.Options{
		Host:              host,
		BindAddr:          "127.0.0.1",
		DataDir:           dataDir,
		Coordinator:       f.c,
		Logger:            slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RestartBackoffMin: 50 * time.Millisecond,
		RestartBackoffMax: 500 * time.Millisecond,
		ProbeInterval:     50 * time.Millisecond,
		ReportInterval:    300 * time.Millisecond,
		ResyncInterval:    500 * time.Millisecond,
		StopTimeout:       5 * time.Second,
		CoordTimeout:      time.Second,
	}
	p, err := testenv.RedisServerPath()
	if err == nil {
		o.RedisServerPath = p
	}
	agent.DieWithTestBinary(&o)
	return o
}

// running is an agent whose Run executes in a goroutine.
type running struct {
	a      *agent.Agent
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
	// stopped: the test called stop and judged the result itself.
	stopped bool
}

// start runs an agent until the test ends (or stop is called). A Run
// error at the end of the test fails it.
func (f *fixture) start(t *testing.T, o agent.Options) *running {
	t.Helper()
	if _, err := testenv.RedisServerPath(); err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{a: a, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		explicit := r.stopped
		if err := r.finish(); err != nil && !explicit {
			t.Errorf("agent %s Run: %v", o.Host, err)
		}
	})
	return r
}

// stop cancels Run and returns its result, which the test then judges. It
// may be called again.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.stopped = true
	return r.finish()
}

func (r *running) finish() error {
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(waitTimeout):
			r.err = errors.New("Run did not return within 30s of its context ending")
		}
	})
	return r.err
}

// newDataDir returns a data directory whose redis-server processes are
// killed when the test ends. The agent deliberately leaves them running,
// so the test stops them itself and then checks that none survived.
func newDataDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, pid := range pidsUnder(dir) {
			killPID(t, pid)
		}
		if left := pidsUnder(dir); len(left) > 0 {
			t.Errorf("redis-server processes under %s survived the test: %v", dir, left)
		}
	})
	return dir
}

// procLine returns a process's command line with spaces for NULs, and
// whether it is alive (not a zombie).
func procLine(pid int) (string, bool) {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", false
	}
	if i := bytes.LastIndexByte(st, ')'); i < 0 || i+2 >= len(st) || st[i+2] == 'Z' {
		return "", false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))), true
}

func allPIDs() []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// redisPIDs lists the live redis-server processes on port, from /proc.
func redisPIDs(port int) []int {
	var out []int
	for _, pid := range allPIDs() {
		line, ok := procLine(pid)
		if !ok || !strings.Contains(line, "redis-server") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if strings.HasSuffix(f, ":"+strconv.Itoa(port)) {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// pidsUnder lists live processes whose working directory is below dir.
func pidsUnder(dir string) []int {
	var out []int
	for _, pid := range allPIDs() {
		cwd, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
		if err != nil || !strings.HasPrefix(cwd, dir+"/") {
			continue
		}
		if _, ok := procLine(pid); ok {
			out = append(out, pid)
		}
	}
	return out
}

// killPID sends SIGKILL and waits until the process is gone, reaping it if
// it is this test binary's child (agents started in this process leave
// their instances as its children).
func killPID(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill %d: %v", pid, err)
	}
	waitFor(t, fmt.Sprintf("pid %d to end after SIGKILL", pid), func() (bool, string) {
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		_, alive := procLine(pid)
		return !alive, "still alive"
	})
}

// freePorts returns n distinct free ports whose cluster bus port is free
// too, and none of which is another's bus port (p+10000): instances in
// cluster mode would take each other's port.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var out []int
	for len(out) < n {
		p, err := testenv.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if p+10000 > 65535 || slices.ContainsFunc(out, func(q int) bool { return q == p || q == p+10000 || q+10000 == p }) {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		if err != nil {
			continue
		}
		l.Close()
		out = append(out, p)
	}
	return out
}

// waitFor polls cond until it holds, failing the test after waitTimeout
// with cond's last description of what it saw.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last saw: %s", waitTimeout, what, seen)
		}
		<-tick.C
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func instance(port int) meta.Instance {
	return meta.Instance{Port: port, Cluster: "c1", NodeTimeout: meta.Duration(2 * time.Second)}
}

// setDesired writes the host's desired state.
func (f *fixture) setDesired(t *testing.T, host string, gen int64, insts ...meta.Instance) {
	t.Helper()
	_, _, err := f.st.Desired(host).Upsert(testCtx(t), func(d *meta.DesiredState) error {
		d.Generation = gen
		d.Instances = insts
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitActual waits until the host's actual state satisfies cond.
func (f *fixture) waitActual(t *testing.T, host, what string, cond func(*meta.ActualState) bool) *meta.ActualState {
	t.Helper()
	var got *meta.ActualState
	waitFor(t, host+" actual state: "+what, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		a, _, err := f.st.Actual(host).Get(ctx)
		if err != nil {
			return false, err.Error()
		}
		got = a
		return cond(a), fmt.Sprintf("%+v", *a)
	})
	return got
}

// status returns the status of port in a, or nil.
func status(a *meta.ActualState, port int) *meta.InstanceStatus {
	for i := range a.Instances {
		if a.Instances[i].Port == port {
			return &a.Instances[i]
		}
	}
	return nil
}

// allRunning reports whether a has observed gen and runs exactly ports.
func allRunning(gen int64, ports ...int) func(*meta.ActualState) bool {
	return func(a *meta.ActualState) bool {
		if a.ObservedGeneration != gen || len(a.Instances) != len(ports) {
			return false
		}
		for _, p := range ports {
			s := status(a, p)
			if s == nil || s.State != agent.StateRunning || s.PID == 0 {
				return false
			}
		}
		return true
	}
}

// pingPort sends PING to 127.0.0.1:port, with AUTH when password is set.
func pingPort(ctx context.Context, port int, password string) error {
	c := redisClient(port, password)
	defer c.Close()
	return c.Ping(ctx).Err()
}

func redisClient(port int, password string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: "127.0.0.1:" + strconv.Itoa(port), Password: password,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second,
		MaxRetries: -1, PoolSize: 1, Protocol: 2,
	})
}

// onlyPID checks that exactly one redis-server process runs on port and
// returns its pid.
func onlyPID(t *testing.T, port int) int {
	t.Helper()
	pids := redisPIDs(port)
	if len(pids) != 1 {
		t.Fatalf("redis-server processes on port %d: %v; want exactly one", port, pids)
	}
	return pids[0]
}
