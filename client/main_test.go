package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/r2m-go/r2m/client"
	"github.com/r2m-go/r2m/coord"
	_ "github.com/r2m-go/r2m/coord/install"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/meta"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// testTimeout bounds every wait in this package's tests.
const testTimeout = 60 * time.Second

// A backend is a coordinator kind the tests run against, with its shared
// server and a way to start a private one behind a proxy for fault tests.
type backend struct {
	name   string
	shared func(t testing.TB) (url func(root string) string)
	fault  func(t testing.TB) *faultCoord
}

// faultCoord is a private coordinator server that a test may stop, restart
// or cut off (through its proxy).
type faultCoord struct {
	url       func(root string) string // through the proxy
	directURL func(root string) string // bypassing it, for observers
	stop      func() error
	start     func() error
	proxy     *testenv.Proxy
}

var backends = []backend{
	{
		name: "zk",
		shared: func(t testing.TB) func(string) string {
			return testenv.SharedZooKeeper(t).URL
		},
		fault: func(t testing.TB) *faultCoord {
			z := testenv.StartZooKeeper(t)
			p := testenv.StartProxy(t, z.Addr)
			return &faultCoord{
				url:       func(root string) string { return "zk://" + p.Addr + root },
				directURL: z.URL, stop: z.Stop, start: z.Start, proxy: p,
			}
		},
	},
	{
		name: "etcd",
		shared: func(t testing.TB) func(string) string {
			return testenv.SharedEtcd(t).URL
		},
		fault: func(t testing.TB) *faultCoord {
			e := testenv.StartEtcd(t)
			p := testenv.StartProxy(t, e.Addr)
			return &faultCoord{
				url:       func(root string) string { return "etcd://" + p.Addr + root },
				directURL: e.URL, stop: e.Stop, start: e.Start, proxy: p,
			}
		},
	},
}

// forEachBackend runs f as a subtest per backend.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func uniqueRoot(t testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := strings.NewReplacer("/", "-", " ", "_", "=", "-").Replace(t.Name())
	return "/clienttest/" + name + "-" + hex.EncodeToString(b[:])
}

// sharedCluster is the package's 3-master × 1-replica cluster.
func sharedCluster(t testing.TB) *testenv.RedisCluster {
	return testenv.SharedRedisCluster(t, testenv.ClusterOptions{Masters: 3, Replicas: 1})
}

// env is one test's view of a coordinator and an app: an observer with a
// coordinator session of its own (never the clients' shared one), which
// writes the records the control plane would and checks the registry.
type env struct {
	t       testing.TB
	url     string // the clients' coordinator URL
	obs     *coord.Coordinator
	st      *meta.Store
	app     string
	cluster string
}

// newEnv writes an app whose active cluster is rc, with client config cfg,
// under a fresh root. obsURL, when not empty, is the observer's URL (for
// fault tests, a direct one that bypasses the proxy).
func newEnv(t testing.TB, url, obsURL string, rc *testenv.RedisCluster, cfg meta.ClientConfig) *env {
	t.Helper()
	if obsURL == "" {
		obsURL = url
	}
	obs := openObserver(t, obsURL)
	e := &env{t: t, url: url, obs: obs, st: meta.NewStore(obs), app: "app", cluster: "c1"}
	e.writeCluster(e.cluster, rc)
	ts := time.Now().UTC()
	if err := e.st.App(e.app).Create(testContext(t), &meta.App{Name: e.app, ActiveCluster: e.cluster, Client: cfg, ConfigVersion: 1, CreatedAt: ts, UpdatedAt: ts}); err != nil {
		t.Fatal(err)
	}
	return e
}

func openObserver(t testing.TB, url string) *coord.Coordinator {
	t.Helper()
	obs, err := coord.OpenConfig(testContext(t), coord.Config{URL: url, CloseTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open observer session %s: %v", url, err)
	}
	t.Cleanup(func() {
		if err := obs.Close(); err != nil && !errors.Is(err, coord.ErrClosed) {
			t.Errorf("close observer: %v", err)
		}
	})
	return obs
}

// writeCluster writes the cluster, credentials and topology records of rc,
// as the control plane would, reading roles from Redis itself.
func (e *env) writeCluster(name string, rc *testenv.RedisCluster) {
	e.t.Helper()
	ctx := testContext(e.t)
	cl := &meta.Cluster{Name: name, State: meta.ClusterActive, Masters: len(rc.Masters()), ReplicasPerMaster: len(rc.ReplicasOf(0)), HasPassword: rc.Password() != "", CreatedAt: time.Now().UTC()}
	if err := e.st.Cluster(name).Create(ctx, cl); err != nil {
		e.t.Fatal(err)
	}
	if rc.Password() != "" {
		if err := e.st.Credentials(name).Create(ctx, &meta.Credentials{Password: rc.Password()}); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := e.st.Topology(name).Create(ctx, topologyOf(e.t, name, rc, 1)); err != nil {
		e.t.Fatal(err)
	}
}

// topologyOf reads a cluster's nodes and roles from CLUSTER NODES.
func topologyOf(t testing.TB, name string, rc *testenv.RedisCluster, epoch int64) *meta.Topology {
	t.Helper()
	ctx := testContext(t)
	var out string
	var err error
	for _, n := range rc.Nodes {
		if !n.Running() {
			continue
		}
		// Closed at once, not at the test's end: fd checks come before.
		rcl := redis.NewClient(&redis.Options{Addr: n.Addr, Password: rc.Password(), Protocol: 2, MaxRetries: -1})
		out, err = rcl.ClusterNodes(ctx).Result()
		rcl.Close()
		if err == nil {
			break
		}
	}
	if err != nil || out == "" {
		t.Fatalf("CLUSTER NODES: %v", err)
	}
	tp := &meta.Topology{Cluster: name, Epoch: epoch, UpdatedAt: time.Now().UTC()}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 8 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		n := meta.Node{ID: f[0], Addr: addr, Role: meta.RoleReplica, Health: meta.HealthOK}
		if strings.Contains(f[2], "master") {
			n.Role = meta.RoleMaster
		} else {
			n.MasterID = f[3]
		}
		if strings.Contains(f[2], "fail") {
			n.Health = meta.HealthFail
		}
		for _, r := range f[8:] {
			lo, hi, ok := strings.Cut(r, "-")
			if strings.HasPrefix(r, "[") {
				continue
			}
			a, _ := strconv.Atoi(lo)
			b := a
			if ok {
				b, _ = strconv.Atoi(hi)
			}
			n.Slots = append(n.Slots, meta.SlotRange{Start: a, End: b})
		}
		tp.Nodes = append(tp.Nodes, n)
	}
	return tp
}

// bumpTopology raises the topology epoch as the control plane's observer
// would after a change, re-reading the nodes from Redis, and returns the
// new epoch.
func (e *env) bumpTopology(name string, rc *testenv.RedisCluster) int64 {
	e.t.Helper()
	fresh := topologyOf(e.t, name, rc, 0)
	tp, _, err := e.st.Topology(name).Update(testContext(e.t), func(tp *meta.Topology) error {
		tp.Epoch++
		tp.Nodes, tp.UpdatedAt = fresh.Nodes, time.Now().UTC()
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return tp.Epoch
}

// options returns client options for the env's app.
func (e *env) options(onEvent func(client.Event)) client.Options {
	return client.Options{
		Coordinator: e.url, App: e.app, Name: "clienttest", OnEvent: onEvent,
		Logger: testLogger(e.t), ReloadJitter: 50 * time.Millisecond,
	}
}

// clientIDs lists the app's registrations, as the observer sees them.
func (e *env) clientIDs() []string {
	e.t.Helper()
	ids, err := e.st.Clients(e.app).Names(testContext(e.t))
	if err != nil {
		e.t.Fatalf("list registrations: %v", err)
	}
	return ids
}

// requireNoClients checks, from the observer's own session, that the app has
// no registration left.
func (e *env) requireNoClients() {
	e.t.Helper()
	if ids := e.clientIDs(); len(ids) != 0 {
		e.t.Fatalf("registrations left under /apps/%s/clients: %v", e.app, ids)
	}
}

// waitFor polls real state until ok holds or the bound passes.
func waitFor(t testing.TB, what string, bound time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", bound, what)
		}
		<-tick.C
	}
}

// waitEvent reads events until one satisfies ok.
func waitEvent(t testing.TB, ch <-chan client.Event, what string, ok func(client.Event) bool) client.Event {
	t.Helper()
	return waitEventWithin(t, ch, what, testTimeout, ok)
}

// waitEventWithin is waitEvent with its own bound.
func waitEventWithin(t testing.TB, ch <-chan client.Event, what string, bound time.Duration, ok func(client.Event) bool) client.Event {
	t.Helper()
	timer := time.NewTimer(bound)
	defer timer.Stop()
	for {
		select {
		case ev := <-ch:
			if ok(ev) {
				return ev
			}
		case <-timer.C:
			t.Fatalf("no %s event within %v", what, bound)
		}
	}
}

// eventChan returns an OnEvent that forwards into a buffered channel.
func eventChan() (func(client.Event), chan client.Event) {
	ch := make(chan client.Event, 1024)
	return func(ev client.Event) {
		select {
		case ch <- ev:
		default:
		}
	}, ch
}

// testLogger sends log lines to the test log while the test runs, and to
// nowhere after it ended (a leaked client's cleanup may log later).
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// openFDs counts this process's open file descriptors.
func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("count open fds: %v", err)
	}
	return len(ents)
}

// clientGoroutines returns the stacks of the goroutines that run code the
// client uses (the client itself, coord, rueidis, the coordinator client
// libraries), keyed by goroutine id.
func clientGoroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	marks := []string{
		"github.com/r2m-go/r2m/client.", "github.com/r2m-go/r2m/coord", "github.com/r2m-go/r2m/meta.",
		"github.com/redis/rueidis", "github.com/go-zookeeper/zk", "go.etcd.io/etcd/client/v3",
		"grpc/internal/transport.newHTTP2Client", "grpc.(*ClientConn)", "grpc.(*addrConn)", "grpc.(*ccBalancerWrapper)",
	}
	out := make(map[string]string)
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		s := string(g)
		if strings.Contains(s, "client_test.clientGoroutines") || strings.Contains(s, "testing.tRunner") {
			continue
		}
		for _, m := range marks {
			if strings.Contains(s, m) {
				id, _, _ := strings.Cut(strings.TrimPrefix(s, "goroutine "), " ")
				out[id] = s
				break
			}
		}
	}
	return out
}

// baseline records goroutines and fds; check waits until both are back.
type baseline struct {
	fds        int
	goroutines map[string]string
}

func takeBaseline(t testing.TB) baseline {
	return baseline{fds: openFDs(t), goroutines: clientGoroutines()}
}

// check waits (bounded) until no client-related goroutine started since the
// baseline is alive and the fd count is back to the baseline.
func (b baseline) check(t testing.TB) {
	t.Helper()
	var leaked []string
	var fds int
	ok := func() bool {
		leaked = leaked[:0]
		for id, s := range clientGoroutines() {
			if _, old := b.goroutines[id]; !old {
				leaked = append(leaked, s)
			}
		}
		fds = openFDs(t)
		return len(leaked) == 0 && fds <= b.fds
	}
	start := time.Now()
	deadline := start.Add(20 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !ok() {
		if time.Now().After(deadline) {
			slices.Sort(leaked)
			t.Fatalf("after 20s: %d open fds (baseline %d); %d client goroutines left:\n%s",
				fds, b.fds, len(leaked), strings.Join(leaked, "\n\n"))
		}
		<-tick.C
	}
	t.Logf("goroutines and fds back to baseline (%d fds) after %v", fds, time.Since(start).Round(time.Millisecond))
}

// goRedis returns a plain go-redis cluster client: a client we did not
// write, to judge ours.
func goRedis(t testing.TB, rc *testenv.RedisCluster) *redis.ClusterClient { return rc.Client(t) }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var _ = fmt.Sprintf
