package testenv

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// shared holds the servers that the tests of one package share. A test
// binary is one package, so this registry is per package; Main stops them.
// It is the only package-level state in testenv, and it exists because
// starting a JVM or an etcd member per test would multiply the suite's time.
var shared struct {
	mu      sync.Mutex
	active  bool // Main is running the tests
	dir     string
	zk      *ZooKeeper
	etcd    *Etcd
	cluster map[string]*RedisCluster // by fmt.Sprint of the options
}

// Main runs the package's tests and then stops the shared servers, fails
// the run if any process testenv started is still alive, and checks for
// leaked goroutines with goleak. Use it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// opts are passed to goleak (for example goleak.IgnoreTopFunction for a
// dependency's known background goroutine).
func Main(m *testing.M, opts ...goleak.Option) {
	dir, err := os.MkdirTemp("", "r2m-testenv-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		os.Exit(2)
	}
	shared.mu.Lock()
	shared.active, shared.dir = true, dir
	shared.mu.Unlock()

	code := m.Run()

	if err := stopShared(code != 0); err != nil {
		fmt.Fprintln(os.Stderr, "testenv: stopping shared servers:", err)
		code = 1
	}
	if left := survivors(); len(left) > 0 {
		fmt.Fprintln(os.Stderr, "testenv: processes started by the tests are still running after the tests ended:")
		for _, l := range left {
			fmt.Fprintln(os.Stderr, "  ", l)
		}
		killSurvivors()
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(opts...); err != nil {
			fmt.Fprintln(os.Stderr, "testenv: goroutines leaked by the tests:", err)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func stopShared(failed bool) error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	var errs []error
	if z := shared.zk; z != nil {
		if failed {
			fmt.Fprintf(os.Stderr, "shared zookeeper %s log (tail):\n%s\n", z.Addr, z.LogTail(80))
		}
		errs = append(errs, z.Stop())
	}
	if e := shared.etcd; e != nil {
		if failed {
			fmt.Fprintf(os.Stderr, "shared etcd %s log (tail):\n%s\n", e.Addr, e.LogTail(60))
		}
		errs = append(errs, e.close())
	}
	for _, c := range shared.cluster {
		if failed {
			for _, n := range c.Nodes {
				fmt.Fprintf(os.Stderr, "shared redis-server %s log (tail):\n%s\n", n.Addr, n.LogTail(30))
			}
		}
		errs = append(errs, c.stop())
	}
	shared.zk, shared.etcd, shared.cluster = nil, nil, nil
	return errors.Join(errs...)
}

func sharedDir(tb testing.TB) string {
	tb.Helper()
	if !shared.active {
		tb.Fatal("testenv: shared servers need TestMain to call testenv.Main(m), which stops them")
	}
	return shared.dir
}

// SharedZooKeeper returns the package's ZooKeeper server, starting it on
// first use. Tests must not stop it; fault tests start their own with
// [StartZooKeeper].
func SharedZooKeeper(tb testing.TB) *ZooKeeper {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	dir := sharedDir(tb)
	if shared.zk == nil {
		z, err := startZooKeeper(dir)
		if err != nil {
			tb.Fatal(err)
		}
		shared.zk = z
	}
	return shared.zk
}

// SharedEtcd returns the package's embedded etcd, starting it on first use.
// Tests must not stop it; fault tests start their own with [StartEtcd].
func SharedEtcd(tb testing.TB) *Etcd {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	dir := sharedDir(tb)
	if shared.etcd == nil {
		e, err := startEtcd(dir)
		if err != nil {
			tb.Fatal(err)
		}
		shared.etcd = e
	}
	return shared.etcd
}

// SharedRedisCluster returns the package's cluster with these options,
// starting it on first use. Tests that change its topology or kill nodes must
// start their own with [StartRedisCluster].
func SharedRedisCluster(tb testing.TB, opts ClusterOptions) *RedisCluster {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	dir := sharedDir(tb)
	key := fmt.Sprintf("%+v", opts)
	if c := shared.cluster[key]; c != nil {
		return c
	}
	c, err := startRedisCluster(dir, opts)
	if err != nil {
		if c != nil {
			_ = c.stop()
		}
		tb.Fatal(err)
	}
	if shared.cluster == nil {
		shared.cluster = make(map[string]*RedisCluster)
	}
	shared.cluster[key] = c
	return c
}
