package reshard

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
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
	round     = flag.Int("round", 0, "R2M: slots opened and closed together (0: cluster.DefaultRoundSlots)")
	perNode   = flag.Int("migrates-per-node", 0, "R2M: MIGRATEs in flight per source (0: cluster.DefaultMigratesPerNode)")
	inProcess = flag.Bool("in-process", false, "R2M: run the mover inside the benchmark process instead of its own")
)

// moverEnv, when set, makes the test binary run one R2M move described by
// its JSON value (a moverSpec) and exit. The benchmark runs R2M's mover as
// its own process, as redis-cli is one: in production the mover runs in
// r2m server, never inside the application whose latency is measured, and
// in one process the mover's goroutines and garbage would share the Go
// runtime (two Ps on this machine) with the foreground client.
const moverEnv = "R2M_BENCH_MOVER"

// moverSpec is the move a mover process runs: slots 0..Slots-1 from From
// to To.
type moverSpec struct {
	Seed, From, To string
	Slots          int
	Parallel       int
	Batch          int
	MaxBatchTime   time.Duration
	SkipScan       bool
	Round          int
	PerNode        int
}

// moverOut is what a mover process prints on stdout.
type moverOut struct {
	Err     string
	BigKeys int
	Timings cluster.MoveTimings
	Options string
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(moverEnv); spec != "" {
		os.Exit(moverProcess(spec))
	}
	testenv.Main(m)
}

func (sp moverSpec) options() cluster.MoveOptions {
	return cluster.MoveOptions{Parallel: sp.Parallel, BatchKeys: sp.Batch, MaxBatchTime: sp.MaxBatchTime, SkipScan: sp.SkipScan, RoundSlots: sp.Round, MigratesPerNode: sp.PerNode}
}

// runMove runs the move of sp in this process.
func runMove(ctx context.Context, sp moverSpec) moverOut {
	e := cluster.New(cluster.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer e.Close()
	moves := make([]cluster.Move, sp.Slots)
	for s := range moves {
		moves[s] = cluster.Move{Slot: s, From: sp.From, To: sp.To}
	}
	opts := sp.options()
	out := moverOut{Options: fmt.Sprintf("%+v", opts)}
	res, err := e.MoveSlots(ctx, sp.Seed, moves, opts)
	if err != nil {
		out.Err = err.Error()
	}
	if res != nil {
		out.BigKeys, out.Timings = len(res.BigKeys), res.Timings
	}
	return out
}

// moverProcess is the body of a mover process. It connects nothing until
// told to start: it prints "ready" once initialised and waits for a line
// on stdin, so that the measured time does not include starting a Go test
// binary (redis-cli, a small C program, starts in a few milliseconds).
func moverProcess(specJSON string) int {
	var sp moverSpec
	if err := json.Unmarshal([]byte(specJSON), &sp); err != nil {
		fmt.Fprintln(os.Stderr, "mover: bad spec:", err)
		return 2
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fmt.Fprintln(os.Stderr, "mover: waiting for the start:", err)
		return 2
	}
	if err := json.NewEncoder(os.Stdout).Encode(runMove(context.Background(), sp)); err != nil {
		fmt.Fprintln(os.Stderr, "mover:", err)
		return 2
	}
	return 0
}

// toolRun is one measured run of a slot-moving tool.
type toolRun struct {
	elapsed time.Duration
	cpu     time.Duration // user+system CPU of the tool's process
}

// startMover runs the move of sp in a child process (or in this one with
// -in-process); start is called right before the move begins.
func startMover(ctx context.Context, sp moverSpec, start func()) (moverOut, toolRun, error) {
	if *inProcess {
		start()
		t0 := time.Now()
		out := runMove(ctx, sp)
		return out, toolRun{elapsed: time.Since(t0)}, nil
	}
	spec, err := json.Marshal(sp)
	if err != nil {
		return moverOut{}, toolRun{}, err
	}
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), moverEnv+"="+string(spec))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return moverOut{}, toolRun{}, err
	}
	stdoutPipe, err := cmd.StdoutPipe()
	if err != nil {
		return moverOut{}, toolRun{}, err
	}
	if err := cmd.Start(); err != nil {
		return moverOut{}, toolRun{}, fmt.Errorf("mover process: %w", err)
	}
	stdout := bufio.NewReader(stdoutPipe)
	fail := func(err error) (moverOut, toolRun, error) {
		_ = stdin.Close()
		_ = cmd.Wait()
		return moverOut{}, toolRun{}, fmt.Errorf("mover process: %w\n%s", err, stderr.String())
	}
	if line, err := stdout.ReadString('\n'); err != nil || line != "ready\n" {
		return fail(fmt.Errorf("no ready line (%q): %w", line, err))
	}
	start()
	t0 := time.Now()
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		return fail(err)
	}
	rest, err := io.ReadAll(stdout)
	if err != nil {
		return fail(err)
	}
	if err := cmd.Wait(); err != nil {
		return fail(err)
	}
	run := toolRun{elapsed: time.Since(t0), cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	var out moverOut
	if err := json.Unmarshal(rest, &out); err != nil {
		return moverOut{}, run, fmt.Errorf("mover process output %q: %w", rest, err)
	}
	return out, run, nil
}

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
		runReshard(b, flagConfig(), b.ReportMetric)
	}
}

// TestHarness runs the whole comparison on a tiny dataset, so that the
// harness keeps working between benchmark runs. It checks that both movers
// moved every key, never how fast.
func TestHarness(t *testing.T) {
	cfg := flagConfig()
	cfg.keys, cfg.slots, cfg.fgRate = 2000, 64, 200
	runReshard(t, cfg, func(v float64, unit string) { t.Logf("%s: %.2f", unit, v) })
}

// reshardConfig is what one comparison moves; the benchmark takes it from
// the flags.
type reshardConfig struct {
	keys, slots, valueSize, fgRate int
}

func flagConfig() reshardConfig {
	return reshardConfig{keys: *numKeys, slots: *numSlots, valueSize: *valueSize, fgRate: *fgRate}
}

func runReshard(b testing.TB, cfg reshardConfig, report func(float64, string)) {
	ctx := context.Background()
	startLoad := loadAvg()
	c := testenv.StartRedisCluster(b, testenv.ClusterOptions{Masters: 2, NodeTimeout: 15 * time.Second})
	a, bb := c.Masters()[0], c.Masters()[1] // a owns 0-8191, bb 8192-16383
	e := cluster.New(cluster.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer e.Close()
	idA, _ := a.Client(b).ClusterMyID(ctx).Result()
	idB, _ := bb.Client(b).ClusterMyID(ctx).Result()

	// The dataset: numKeys small keys spread over slots 0..numSlots-1.
	keys := make([]string, 0, cfg.keys)
	for i := 0; len(keys) < cfg.keys; i++ {
		k := "k:" + strconv.Itoa(i)
		if cluster.KeySlot(k) < cfg.slots {
			keys = append(keys, k)
		}
	}
	val := string(make([]byte, cfg.valueSize))
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
	b.Logf("loaded %d keys of %d bytes into slots 0-%d in %v", len(keys), cfg.valueSize, cfg.slots-1, time.Since(t0).Round(time.Millisecond))

	fg := &foreground{cl: c.Client(b), keys: keys, lat: map[string][]time.Duration{}, errors: map[string]int{}}
	fgCtx, stopFG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { fg.run(fgCtx, cfg.fgRate) })
	defer func() { stopFG(); wg.Wait() }()

	idle := func(name string) {
		fg.setPhase(name)
		t := time.NewTimer(5 * time.Second)
		<-t.C
	}
	idle("idle before")

	// MIGRATE statistics of each phase's source: how long each call blocked
	// it, which is what a foreground command to it may wait for.
	resetStats := func() {
		for _, n := range c.Masters() {
			if err := n.Client(b).ConfigResetStat(ctx).Err(); err != nil {
				b.Fatal(err)
			}
		}
	}
	// redisCPU sums used_cpu_sys and used_cpu_user of both masters.
	redisCPU := func() time.Duration {
		var sum float64
		for _, n := range c.Masters() {
			info, err := n.Client(b).Info(ctx, "cpu").Result()
			if err != nil {
				b.Fatal(err)
			}
			for line := range strings.SplitSeq(info, "\n") {
				k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
				if k == "used_cpu_sys" || k == "used_cpu_user" {
					f, _ := strconv.ParseFloat(v, 64)
					sum += f
				}
			}
		}
		return time.Duration(sum * float64(time.Second))
	}
	migrateStats := func(src *testenv.RedisServer) string {
		info, err := src.Client(b).Info(ctx, "commandstats").Result()
		if err != nil {
			b.Fatal(err)
		}
		for line := range strings.SplitSeq(info, "\n") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_migrate:"); ok {
				return rest
			}
		}
		return "no MIGRATE"
	}

	// R2M: slots 0..numSlots-1 from a to b.
	resetStats()
	redisCPU0 := redisCPU()
	res, r2mRun, err := startMover(ctx, moverSpec{Seed: a.Addr, From: idA, To: idB, Slots: cfg.slots, Parallel: *parallel,
		Batch: *batch, MaxBatchTime: *maxBatch, SkipScan: *skipScan, Round: *round, PerNode: *perNode},
		func() { fg.setPhase("during R2M move") })
	r2m := r2mRun.elapsed
	if err != nil {
		b.Fatal(err)
	}
	if res.Err != "" {
		b.Fatalf("R2M MoveSlots: %s", res.Err)
	}
	r2mRedisCPU := redisCPU() - redisCPU0
	r2mMigrate := migrateStats(a)
	if _, err := e.WaitConverged(ctx, a.Addr, time.Minute); err != nil {
		b.Fatal(err)
	}
	idle("idle between")

	// redis-cli: the same slots (now bb's lowest) back from bb to a.
	cli, err := testenv.RedisCLIPath()
	if err != nil {
		b.Fatal(err)
	}
	resetStats()
	redisCPU0 = redisCPU()
	fg.setPhase("during redis-cli reshard")
	t0 = time.Now()
	cliCmd := exec.Command(cli, "--cluster", "reshard", bb.Addr, "--cluster-from", idB, "--cluster-to", idA,
		"--cluster-slots", strconv.Itoa(cfg.slots), "--cluster-yes")
	out, err := cliCmd.CombinedOutput()
	rcli := time.Since(t0)
	if err != nil {
		b.Fatalf("redis-cli reshard: %v\n%s", err, tail(out))
	}
	cliCPU := cliCmd.ProcessState.UserTime() + cliCmd.ProcessState.SystemTime()
	fg.setPhase("after")
	cliMigrate := migrateStats(bb)
	cliRedisCPU := redisCPU() - redisCPU0
	if _, err := e.WaitConverged(ctx, a.Addr, time.Minute); err != nil {
		b.Fatal(err)
	}
	n, _ := a.Client(b).DBSize(ctx).Result()
	if n < int64(len(keys)) {
		b.Fatalf("after both moves node a holds %d keys, want %d", n, len(keys))
	}

	r2mRate := float64(len(keys)) / r2m.Seconds()
	cliRate := float64(len(keys)) / rcli.Seconds()
	fmt.Printf("\nload average at start: %s, at end: %s", startLoad, loadAvg())
	fmt.Printf("\nslot move of %d slots, %d keys of %d bytes (2 masters, loopback, 2 cores)\n", cfg.slots, len(keys), cfg.valueSize)
	where := "own process"
	if *inProcess {
		where = "in the benchmark process"
	}
	fmt.Printf("  R2M MoveSlots           %8.2fs  %10.0f keys/s  (%s; options %s; scan found %d big keys)\n",
		r2m.Seconds(), r2mRate, where, res.Options, res.BigKeys)
	fmt.Printf("  R2M time spent          %s\n", res.Timings)
	fmt.Printf("  redis-cli reshard       %8.2fs  %10.0f keys/s  (default pipeline 10)\n", rcli.Seconds(), cliRate)
	fmt.Printf("  ratio R2M / redis-cli   %8.2fx\n", r2mRate/cliRate)
	fmt.Printf("  MIGRATE on the source   R2M %s\n                          redis-cli %s\n", r2mMigrate, cliMigrate)
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }
	fmt.Printf("  CPU used                R2M: mover %v (unknown in-process), both redis-servers %v\n", r(r2mRun.cpu), r(r2mRedisCPU))
	fmt.Printf("                          redis-cli: redis-cli %v, both redis-servers %v\n", r(cliCPU), r(cliRedisCPU))
	fmt.Printf("foreground GET/SET at %d ops/s through go-redis ClusterClient:\n", cfg.fgRate)
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
	report(r2mRate, "r2m-keys/s")
	report(cliRate, "redis-cli-keys/s")
	report(r2mRate/cliRate, "ratio")
	report(float64(r2mP99)/float64(idleP99), "r2m-p99/idle")
}

// loadAvg returns the first three fields of /proc/loadavg, to be printed
// next to the numbers: the machine is shared.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func tail(b []byte) string {
	if len(b) > 2000 {
		return string(b[len(b)-2000:])
	}
	return string(b)
}
