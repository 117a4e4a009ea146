package clientbench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/r2m-go/r2m/client"
	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/meta"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild()) // a propagation child process; see propagation_test.go
	}
	testenv.Main(m)
}

// world is what every benchmark runs against: the package's Redis Cluster
// (3 masters × 1 replica) and its ZooKeeper, with the records the control
// plane would write for two apps: "bench" (client-side cache off, the
// default) and "bench-cache" (cache on).
type world struct {
	rc  *testenv.RedisCluster
	url string // coordinator URL with a fresh root
	st  *meta.Store
	co  *coord.Coordinator
}

func newWorld(tb testing.TB) *world {
	tb.Helper()
	rc := testenv.SharedRedisCluster(tb, testenv.ClusterOptions{Masters: 3, Replicas: 1})
	var r [4]byte
	_, _ = rand.Read(r[:])
	url := testenv.SharedZooKeeper(tb).URL("/bench/" + hex.EncodeToString(r[:]))
	ctx := context.Background()
	co, err := coord.OpenConfig(ctx, coord.Config{URL: url})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { co.Close() })
	w := &world{rc: rc, url: url, st: meta.NewStore(co), co: co}
	must(tb, w.st.Cluster("c1").Create(ctx, &meta.Cluster{Name: "c1", State: meta.ClusterActive, Masters: 3, ReplicasPerMaster: 1}))
	must(tb, w.st.Topology("c1").Create(ctx, w.topology(tb, 1)))
	for app, cfg := range map[string]meta.ClientConfig{"bench": {}, "bench-cache": {ClientCache: true}} {
		must(tb, w.st.App(app).Create(ctx, &meta.App{Name: app, ActiveCluster: "c1", Client: cfg, ConfigVersion: 1}))
	}
	return w
}

// topology reads the cluster's nodes from CLUSTER NODES.
func (w *world) topology(tb testing.TB, epoch int64) *meta.Topology {
	gr := redis.NewClient(&redis.Options{Addr: w.rc.Nodes[0].Addr, Protocol: 2})
	defer gr.Close()
	out, err := gr.ClusterNodes(context.Background()).Result()
	must(tb, err)
	tp := &meta.Topology{Cluster: "c1", Epoch: epoch, UpdatedAt: time.Now().UTC()}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		addr, _, _ := strings.Cut(f[1], "@")
		role := meta.RoleReplica
		if strings.Contains(f[2], "master") {
			role = meta.RoleMaster
		}
		tp.Nodes = append(tp.Nodes, meta.Node{ID: f[0], Addr: addr, Role: role, Health: meta.HealthOK})
	}
	return tp
}

// options returns client options for an app; quiet logs.
func (w *world) options(app string) client.Options {
	return client.Options{
		Coordinator: w.url, App: app, Name: "bench",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// smallBuffers keeps 1,000 clients in one process light: rueidis gives
// every connection 1 MiB of buffers by default.
func smallBuffers(o *rueidis.ClientOption) {
	o.ReadBufferEachConn, o.WriteBufferEachConn = 1<<14, 1<<14
}

// loadavg returns the 1-minute load average, to print next to results: on
// a shared machine other processes skew every figure.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(b))[0]
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// keyspace matches redis-benchmark -r 100000: 100,000 keys, 16-byte values
// (-d 16).
const (
	keyspace = 100_000
	value    = "xxxxxxxxxxxxxxxx"
)

var keys = func() []string {
	ks := make([]string, keyspace)
	for i := range ks {
		ks[i] = fmt.Sprintf("key:%012d", i)
	}
	return ks
}()
