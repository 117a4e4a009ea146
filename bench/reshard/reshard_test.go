package reshard

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/r2m-go/r2m/cluster"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/redis/go-redis/v9"
)

var (
	numKeys   = flag.Int("keys", 1_000_000, "keys in the moving slots")
	numSlots  = flag.Int("slots", 4096, "slots to move")
	valueSize = flag.Int("value", 32, "value size in bytes")
	fgRate    = flag.Int("fg-rate", 2000, "foreground GET/SET operations per second")
	parallel  = flag.Int("parallel", 0, "R2M: slots moved at once (0: cluster.DefaultParallel)")
	batch     = flag.Int("batch", 0, "R2M: max keys per MIGRATE (0: cluster.DefaultBatchKeys)")
	maxBatch  = flag.Duration("max-batch-time", 0, "R2M: MIGRATE duration that halves the batch (0: default)")
	skipScan  = flag.Bool("skip-scan", false, "R2M: skip the pre-move key sizing scan")
)

func TestMain(m *testing.M) { testenv.Main(m) }

// foreground runs GET/SET at a fixed rate and records each latency in the
// current phase.
type foreground struct {
	cl   *redis.ClusterClient
	keys []string

	mu     sync.Mutex
	phase  string
	lat    map[string][]time.Duration
	errors map[string]int
}

func (f *foreground) setPhase(p string) {
	f.mu.Lock()
	f.phase = p
	f.mu.Unlock()
}

func (f *foreground) run(ctx context.Context, rate int) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		k := f.keys[r.IntN(len(f.keys))]
		t0 := time.Now()
		var err error
		if i%2 == 0 {
			err = f.cl.Get(ctx, k).Err()
		} else {
			err = f.cl.Set(ctx, k, "fg", 0).Err()
		}
		d := time.Since(t0)
		f.mu.Lock()
		if err != nil && err != redis.Nil {
			f.errors[f.phase]++
		} else {
			f.lat[f.phase] = append(f.lat[f.phase], d)
		}
		f.mu.Unlock()
	}
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func BenchmarkReshard(b *testing.B) {
	for range b.N {
		runReshard(b)
	}
}

func runReshard(b *testing.B) {
	ctx := context.Background()
	c := testenv.StartRedisCluster(b, testenv.ClusterOptions{Masters: 2, NodeTimeout: 15 * time.Second})
	a, bb := c.Masters()[0], c.Masters()[1] // a owns 0-8191, bb 8192-16383
	e := cluster.New(cluster.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer e.Close()
	idA, _ := a.Client(b).ClusterMyID(ctx).Result()
	idB, _ := bb.Client(b).ClusterMyID(ctx).Result()

	// The dataset: numKeys small keys spread over slots 0..numSlots-1.
	keys := make([]string, 0, *numKeys)
	for i := 0; len(keys) < *numKeys; i++ {
		k := "k:" + strconv.Itoa(i)
		if cluster.KeySlot(k) < *numSlots {
			keys = append(keys, k)
		}
	}
	val := string(make([]byte, *valueSize))
	load := a.Client(b)
	t0 := time.Now()
	for i := 0; i < len(keys); i += 5000 {
		pipe := load.Pipeline()
		for _, k := range keys[i:min(i+5000, len(keys))] {
			pipe.Set(ctx, k, val, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("loaded %d keys of %d bytes into slots 0-%d in %v", len(keys), *valueSize, *numSlots-1, time.Since(t0).Round(time.Millisecond))

	fg := &foreground{cl: c.Client(b), keys: keys, lat: map[string][]time.Duration{}, errors: map[string]int{}}
	fgCtx, stopFG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { fg.run(fgCtx, *fgRate) })
	defer func() { stopFG(); wg.Wait() }()

	idle := func(name string) {
		fg.setPhase(name)
		t := time.NewTimer(5 * time.Second)
		<-t.C
	}
	idle("idle before")

	// R2M: slots 0..numSlots-1 from a to b.
	moves := make([]cluster.Move, *numSlots)
	for s := range moves {
		moves[s] = cluster.Move{Slot: s, From: idA, To: idB}
	}
	fg.setPhase("during R2M move")
	t0 = time.Now()
	opts := cluster.MoveOptions{Parallel: *parallel, BatchKeys: *batch, MaxBatchTime: *maxBatch, SkipScan: *skipScan}
	res, err := e.MoveSlots(ctx, a.Addr, moves, opts)
	r2m := time.Since(t0)
	if err != nil {
		b.Fatalf("R2M MoveSlots: %v", err)
	}
	if _, err := e.WaitConverged(ctx, a.Addr, time.Minute); err != nil {
		b.Fatal(err)
	}
	idle("idle between")

	// redis-cli: the same slots (now bb's lowest) back from bb to a.
	cli, err := testenv.RedisCLIPath()
	if err != nil {
		b.Fatal(err)
	}
	fg.setPhase("during redis-cli reshard")
	t0 = time.Now()
	out, err := exec.Command(cli, "--cluster", "reshard", bb.Addr, "--cluster-from", idB, "--cluster-to", idA,
		"--cluster-slots", strconv.Itoa(*numSlots), "--cluster-yes").CombinedOutput()
	rcli := time.Since(t0)
	if err != nil {
		b.Fatalf("redis-cli reshard: %v\n%s", err, tail(out))
	}
	fg.setPhase("after")
	if _, err := e.WaitConverged(ctx, a.Addr, time.Minute); err != nil {
		b.Fatal(err)
	}
	n, _ := a.Client(b).DBSize(ctx).Result()
	if n < int64(len(keys)) {
		b.Fatalf("after both moves node a holds %d keys, want %d", n, len(keys))
	}

	r2mRate := float64(len(keys)) / r2m.Seconds()
	cliRate := float64(len(keys)) / rcli.Seconds()
	fmt.Printf("\nslot move of %d slots, %d keys of %d bytes (2 masters, loopback, 2 cores)\n", *numSlots, len(keys), *valueSize)
	fmt.Printf("  R2M MoveSlots           %8.2fs  %10.0f keys/s  (options %+v; scan found %d big keys)\n",
		r2m.Seconds(), r2mRate, opts, len(res.BigKeys))
	fmt.Printf("  redis-cli reshard       %8.2fs  %10.0f keys/s  (default pipeline 10)\n", rcli.Seconds(), cliRate)
	fmt.Printf("  ratio R2M / redis-cli   %8.2fx\n", r2mRate/cliRate)
	fmt.Printf("foreground GET/SET at %d ops/s through go-redis ClusterClient:\n", *fgRate)
	fg.mu.Lock()
	for _, ph := range []string{"idle before", "during R2M move", "idle between", "during redis-cli reshard"} {
		l := fg.lat[ph]
		fmt.Printf("  %-26s ops %7d  errors %4d  p50 %8v  p99 %8v  max %8v\n", ph, len(l), fg.errors[ph],
			pct(l, .5).Round(time.Microsecond), pct(l, .99).Round(time.Microsecond), pct(l, 1).Round(time.Microsecond))
	}
	idleP99 := pct(append(slices.Clone(fg.lat["idle before"]), fg.lat["idle between"]...), .99)
	r2mP99, cliP99 := pct(fg.lat["during R2M move"], .99), pct(fg.lat["during redis-cli reshard"], .99)
	fg.mu.Unlock()
	fmt.Printf("  p99 during move / idle p99: R2M %.2fx, redis-cli %.2fx\n", float64(r2mP99)/float64(idleP99), float64(cliP99)/float64(idleP99))
	b.ReportMetric(r2mRate, "r2m-keys/s")
	b.ReportMetric(cliRate, "redis-cli-keys/s")
	b.ReportMetric(r2mRate/cliRate, "ratio")
	b.ReportMetric(float64(r2mP99)/float64(idleP99), "r2m-p99/idle")
}

func tail(b []byte) string {
	if len(b) > 2000 {
		return string(b[len(b)-2000:])
	}
	return string(b)
}
