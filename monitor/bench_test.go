package monitor

// The cost of monitoring, for docs/benchmarks.md ("Monitoring: collection
// cost"):
//
//	go test -run '^$' -bench 'Collect|HistoryStore' -benchtime 1x -timeout 2h ./monitor/
//
// BenchmarkCollect runs collection passes over real redis-server processes
// (about 2 minutes for 100); BenchmarkHistoryStore writes simulated series
// into the history store (about 30 minutes for the default hour of
// 100,000 series on the 2-core machine).
// Both live in package monitor because the units they measure, a pass
// (runner.pass) and the store (history), are not exported. Flags go after
// -args. TestCostHarness runs both briefly in every `go test ./monitor/`,
// so the harness keeps working between benchmark runs; it asserts what the
// passes produced, never how long they took.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/meta"
)

var (
	benchNodes  = flag.Int("bench-nodes", 100, "BenchmarkCollect: redis-server processes to poll, in clusters of up to 5 masters with a replica each (even)")
	benchPasses = flag.Int("bench-passes", 10, "BenchmarkCollect: measured passes, after one warm-up pass")
)

// clusterNodes is the size of the benchmark's clusters: 5 masters with one
// replica each, a common production shape.
const clusterNodes = 10

// usage is what a stretch of work cost the whole test process.
type usage struct {
	wall   time.Duration
	cpu    time.Duration // user + system, every thread of the process
	allocs uint64        // heap objects allocated
	bytes  uint64        // heap bytes allocated
}

// meter measures one stretch of work; see [startMeter].
type meter struct {
	at time.Time
	ru syscall.Rusage
	ms runtime.MemStats
}

// startMeter reads the process's CPU time and allocation counters. The
// reading itself (ReadMemStats stops the world briefly) is outside what
// stop measures.
func startMeter() (meter, error) {
	var m meter
	runtime.ReadMemStats(&m.ms)
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &m.ru); err != nil {
		return m, fmt.Errorf("getrusage: %w", err)
	}
	m.at = time.Now()
	return m, nil
}

func (m meter) stop() (usage, error) {
	wall := time.Since(m.at)
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return usage{}, fmt.Errorf("getrusage: %w", err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	cpu := func(r *syscall.Rusage) time.Duration {
		return time.Duration(r.Utime.Nano() + r.Stime.Nano())
	}
	return usage{wall: wall, cpu: cpu(&ru) - cpu(&m.ru), allocs: ms.Mallocs - m.ms.Mallocs, bytes: ms.TotalAlloc - m.ms.TotalAlloc}, nil
}

// usageStats sums and bounds a set of measurements.
type usageStats struct {
	n                int
	sum              usage
	minWall, maxWall time.Duration
	minCPU, maxCPU   time.Duration
}

func (s *usageStats) add(u usage) {
	if s.n == 0 || u.wall < s.minWall {
		s.minWall = u.wall
	}
	if s.n == 0 || u.cpu < s.minCPU {
		s.minCPU = u.cpu
	}
	s.maxWall, s.maxCPU = max(s.maxWall, u.wall), max(s.maxCPU, u.cpu)
	s.n++
	s.sum.wall += u.wall
	s.sum.cpu += u.cpu
	s.sum.allocs += u.allocs
	s.sum.bytes += u.bytes
}

// mean returns the average measurement; zero when there is none.
func (s *usageStats) mean() usage {
	if s.n == 0 {
		return usage{}
	}
	n := uint64(s.n)
	return usage{wall: s.sum.wall / time.Duration(n), cpu: s.sum.cpu / time.Duration(n), allocs: s.sum.allocs / n, bytes: s.sum.bytes / n}
}

func (s *usageStats) String() string {
	m := s.mean()
	return fmt.Sprintf("wall %v (%v–%v), CPU %v (%v–%v), %d allocs / %.1f MiB",
		ms(m.wall), ms(s.minWall), ms(s.maxWall), ms(m.cpu), ms(s.minCPU), ms(s.maxCPU), m.allocs, float64(m.bytes)/(1<<20))
}

// benchf prints a benchmark's results to stdout: the testing package cuts
// a benchmark's b.Log output short after a few lines.
func benchf(format string, args ...any) { fmt.Printf(format+"\n", args...) }

func ms(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }

// loadAvg returns /proc/loadavg's three load averages, to print beside
// every result: other processes on a shared machine skew each figure.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// startFleet starts nodes redis-server processes (nodes must be even) as
// Redis Clusters of up to clusterNodes nodes, half masters and half their
// replicas, puts a little data in each, and describes them in st as the
// manager would: cluster record, credentials and topology. They stop when
// tb ends.
func startFleet(tb testing.TB, st *meta.Store, nodes int) []*testenv.RedisCluster {
	tb.Helper()
	if nodes < 2 || nodes%2 != 0 {
		tb.Fatalf("fleet of %d nodes: want an even number, at least 2", nodes)
	}
	var out []*testenv.RedisCluster
	for i := 0; nodes > 0; i++ {
		size := min(nodes, clusterNodes)
		nodes -= size
		rc := testenv.StartRedisCluster(tb, testenv.ClusterOptions{Masters: size / 2, Replicas: 1, Password: "bench",
			Config: []string{"maxmemory 256mb", "latency-monitor-threshold 5"}})
		if err := prepareFleetCluster(tb, st, "bench-"+strconv.Itoa(i), rc); err != nil {
			tb.Fatal(err)
		}
		out = append(out, rc)
	}
	return out
}

// prepareFleetCluster fills and describes one cluster of the fleet.
func prepareFleetCluster(tb testing.TB, st *meta.Store, name string, rc *testenv.RedisCluster) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := fillFleetCluster(ctx, tb, rc); err != nil {
		return err
	}
	return describeFleetCluster(ctx, tb, st, name, rc)
}

// fillFleetCluster writes and reads 1,000 keys, so that the nodes' INFO has
// a keyspace, command statistics and hits and misses, as a used node has.
func fillFleetCluster(ctx context.Context, tb testing.TB, rc *testenv.RedisCluster) error {
	c := rc.Client(tb)
	pipe := c.Pipeline()
	for i := range 1000 {
		pipe.Set(ctx, "k"+strconv.Itoa(i), strings.Repeat("v", 64), 0)
		pipe.Get(ctx, "k"+strconv.Itoa(i*2))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) { // half the GETs miss
		return fmt.Errorf("fill cluster: %w", err)
	}
	return nil
}

// describeFleetCluster writes a cluster's records. Its roles are the ones
// testenv created, as nothing failed over yet.
func describeFleetCluster(ctx context.Context, tb testing.TB, st *meta.Store, name string, rc *testenv.RedisCluster) error {
	ids := make(map[string]string, len(rc.Nodes))
	for _, n := range rc.Nodes {
		id, err := n.Client(tb).ClusterMyID(ctx).Result()
		if err != nil {
			return fmt.Errorf("%s: CLUSTER MYID: %w", n.Addr, err)
		}
		ids[n.Addr] = id
	}
	var nodes []meta.Node
	for i, m := range rc.Masters() {
		nodes = append(nodes, meta.Node{ID: ids[m.Addr], Addr: m.Addr, Role: meta.RoleMaster, Health: meta.HealthOK})
		for _, r := range rc.ReplicasOf(i) {
			nodes = append(nodes, meta.Node{ID: ids[r.Addr], Addr: r.Addr, Role: meta.RoleReplica, MasterID: ids[m.Addr], Health: meta.HealthOK})
		}
	}
	now := time.Now().UTC()
	rec := &meta.Cluster{Name: name, State: meta.ClusterActive, Adopted: true, Datacenter: "dc1",
		Masters: len(rc.Masters()), ReplicasPerMaster: 1, HasPassword: true, CreatedAt: now, UpdatedAt: now}
	if err := st.Cluster(name).Create(ctx, rec); err != nil {
		return fmt.Errorf("cluster %s: %w", name, err)
	}
	if err := st.Credentials(name).Create(ctx, &meta.Credentials{Password: rc.Password()}); err != nil {
		return fmt.Errorf("cluster %s: credentials: %w", name, err)
	}
	if err := st.Topology(name).Create(ctx, &meta.Topology{Cluster: name, Epoch: 1, Nodes: nodes, UpdatedAt: now}); err != nil {
		return fmt.Errorf("cluster %s: topology: %w", name, err)
	}
	return nil
}

// openBenchStore opens a session under a fresh root of url(root) and
// returns a store on it, closed when tb ends.
func openBenchStore(tb testing.TB, url func(root string) string) *meta.Store {
	tb.Helper()
	var r [4]byte
	_, _ = rand.Read(r[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := coord.Open(ctx, url("/monitorbench/"+hex.EncodeToString(r[:])))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Errorf("close coordinator: %v", err)
		}
	})
	return meta.NewStore(c)
}

// passResult is what the measured passes produced and cost.
type passResult struct {
	first       usage // the warm-up pass: dials and authenticates every node
	passes      usageStats
	nodesOK     int
	nodesFailed int
	subjects    int // nodes, clusters and apps of the last pass
	points      int // values the last pass stored
	pollMean    time.Duration
	pollMax     time.Duration
}

// measurePasses runs one warm-up pass and then passes measured ones of a
// monitor over st, as Run would, back to back.
func measurePasses(ctx context.Context, st *meta.Store, dataDir string, passes int) (res passResult, err error) {
	m, err := New(Config{Store: st, DataDir: dataDir, ServerID: "bench"})
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := m.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	r := m.newRunner()
	defer r.close()
	for i := -1; i < passes; i++ {
		mt, err := startMeter()
		if err != nil {
			return res, err
		}
		snap, _ := r.pass(ctx)
		u, err := mt.stop()
		if err != nil {
			return res, err
		}
		if snap == nil {
			return res, fmt.Errorf("pass %d: no snapshot: %w", i+1, context.Cause(ctx))
		}
		if i < 0 {
			res.first = u
		} else {
			res.passes.add(u)
		}
		res.nodesOK, res.nodesFailed, res.pollMean, res.pollMax = 0, 0, 0, 0
		for _, sub := range snap.byScope(ScopeNode) {
			if sub.values[mUp] == 1 {
				res.nodesOK++
			} else {
				res.nodesFailed++
			}
			d := time.Duration(sub.values[mPollSeconds] * float64(time.Second))
			res.pollMean += d
			res.pollMax = max(res.pollMax, d)
		}
		if n := res.nodesOK + res.nodesFailed; n > 0 {
			res.pollMean /= time.Duration(n)
		}
		res.subjects, res.points = len(snap.subjects), len(pointsOf(snap))
	}
	return res, nil
}

// BenchmarkCollect polls -bench-nodes real redis-server processes (default
// 100, as 10 clusters of 5 masters × 1 replica) with the default
// configuration, and reports the wall time, process CPU time and
// allocations of each pass. The coordinator is ZooKeeper, a separate
// process, so the CPU figures are the monitor's alone (the embedded etcd
// would add its own server work to the process).
func BenchmarkCollect(b *testing.B) {
	st := openBenchStore(b, testenv.SharedZooKeeper(b).URL)
	started := time.Now()
	fleet := startFleet(b, st, *benchNodes)
	benchf("started %d redis-server processes in %d clusters in %v (load %s)",
		*benchNodes, len(fleet), time.Since(started).Round(100*time.Millisecond), loadAvg())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	for range b.N {
		load := loadAvg()
		res, err := measurePasses(ctx, st, b.TempDir(), *benchPasses)
		if err != nil {
			b.Fatal(err)
		}
		mean := res.passes.mean()
		benchf("%d nodes (%d ok, %d failed), %d subjects, %d stored values per pass; load %s before, %s after\n"+
			"  first pass (dials every node): wall %v, CPU %v\n"+
			"  %d passes: %s\n"+
			"  node poll (last pass): mean %v, max %v; CPU per pass = %.2f%% of one core at the 10s interval",
			res.nodesOK+res.nodesFailed, res.nodesOK, res.nodesFailed, res.subjects, res.points, load, loadAvg(),
			ms(res.first.wall), ms(res.first.cpu), res.passes.n, &res.passes,
			ms(res.pollMean), ms(res.pollMax), 100*mean.cpu.Seconds()/DefaultInterval.Seconds())
		b.ReportMetric(float64(mean.wall.Microseconds())/1000, "wall-ms/pass")
		b.ReportMetric(float64(mean.cpu.Microseconds())/1000, "cpu-ms/pass")
		b.ReportMetric(float64(mean.allocs), "allocs/pass")
		b.ReportMetric(float64(res.nodesOK), "nodes-ok")
		b.ReportMetric(float64(res.points), "values/pass")
	}
}

// TestCostHarness runs both benchmarks briefly: a few passes over four
// real nodes in two clusters, and an hour of simulated series in the
// store. It checks what they produced; timings are only logged.
func TestCostHarness(t *testing.T) {
	st, _ := newStore(t)
	fleet := startFleet(t, st, 4)
	ctx := testCtx(t, 2*time.Minute)
	res, err := measurePasses(ctx, st, t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("collection: %d passes: %s; load %s", res.passes.n, &res.passes, loadAvg())
	if res.nodesOK != 4 || res.nodesFailed != 0 {
		t.Errorf("nodes ok/failed = %d/%d, want 4/0", res.nodesOK, res.nodesFailed)
	}
	// Four nodes and two clusters, each with stored values.
	if res.subjects != 4+len(fleet) || res.points < 4*10 {
		t.Errorf("last pass: %d subjects, %d stored values; want %d subjects and at least 40 values", res.subjects, res.points, 4+len(fleet))
	}
	if res.passes.n != 2 {
		t.Errorf("measured %d passes, want 2", res.passes.n)
	}

	// One simulated hour: twelve blocks of raw chunks, and the minute
	// chunks folded into one per series at the end.
	sr, err := runStore(ctx, t.TempDir(), 2000, 360, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("store: %s", sr)
	if sr.rawPoints != 2000*360 || sr.minutePoints != 2000*60 || sr.rawRows != 2000*12 || sr.minuteRows != 2000 {
		t.Errorf("store holds %d raw points in %d chunks and %d minute points in %d chunks, want %d in %d and %d in %d",
			sr.rawPoints, sr.rawRows, sr.minutePoints, sr.minuteRows, 2000*360, 2000*12, 2000*60, 2000)
	}
	if sr.fileBytes <= 0 || sr.rawBytes <= 0 || sr.minuteBytes <= 0 {
		t.Errorf("store sizes: file %d, raw %d, minute %d bytes; want all positive", sr.fileBytes, sr.rawBytes, sr.minuteBytes)
	}
}
