package migrate

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/migrate"
)

var (
	numKeys  = flag.Int("keys", 1_000_000, "keys loaded before the full sync")
	streamD  = flag.Duration("stream", 60*time.Second, "length of the stream phase")
	writers  = flag.Int("writers", 4, "writer connections in the stream phase")
	pipeline = flag.Int("pipeline", 100, "commands per writer round trip")
	rate     = flag.Int("rate", 0, "source writes per second in the stream phase (0: as fast as the writers go)")
)

func TestMain(m *testing.M) { testenv.Main(m) }

// buildR2M builds the r2m binary once for the benchmark.
func buildR2M(b testing.TB) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "r2m")
	out, err := exec.Command("go", "build", "-o", bin, "../../cmd/r2m").CombinedOutput()
	if err != nil {
		b.Fatalf("go build ./cmd/r2m: %v\n%s", err, out)
	}
	return bin
}

// load writes n mixed keys: 70% strings, 10% hashes of 5 fields, 10% lists
// of 5 elements, 5% sets and 5% sorted sets of 5 members; every tenth key
// has a one-hour TTL.
func load(b testing.TB, ctx context.Context, c *redis.Client, n int) {
	b.Helper()
	var wg sync.WaitGroup
	per := (n + 3) / 4
	val := strings.Repeat("v", 32)
	errs := make([]error, 4)
	for g := range 4 {
		wg.Go(func() {
			for start := g * per; start < min((g+1)*per, n); start += 1000 {
				p := c.Pipeline()
				for i := start; i < min(start+1000, (g+1)*per, n); i++ {
					k := "k:" + strconv.Itoa(i)
					switch i % 20 {
					case 0, 1:
						p.HSet(ctx, k, "a", val, "b", val, "c", val, "d", val, "e", val)
					case 2, 3:
						p.RPush(ctx, k, val, val, val, val, val)
					case 4:
						p.SAdd(ctx, k, "m1", "m2", "m3", "m4", "m5")
					case 5:
						p.ZAdd(ctx, k, redis.Z{Score: 1, Member: "m1"}, redis.Z{Score: 2, Member: "m2"}, redis.Z{Score: 3, Member: "m3"},
							redis.Z{Score: 4, Member: "m4"}, redis.Z{Score: 5, Member: "m5"})
					default:
						p.Set(ctx, k, val, 0)
					}
					if i%10 == 9 {
						p.Expire(ctx, k, time.Hour)
					}
				}
				if _, err := p.Exec(ctx); err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
}

// workerStats follows the JSON stats lines the worker prints.
type workerStats struct {
	mu   sync.Mutex
	last migrate.Stats
	hist []sample
}

type sample struct {
	at time.Time
	st migrate.Stats
}

func (w *workerStats) follow(r *bufio.Scanner, logf *os.File) {
	for r.Scan() {
		line := r.Bytes()
		if len(line) > 0 && line[0] == '{' {
			var st migrate.Stats
			if json.Unmarshal(line, &st) == nil {
				w.mu.Lock()
				w.last = st
				w.hist = append(w.hist, sample{time.Now(), st})
				w.mu.Unlock()
				continue
			}
		}
		fmt.Fprintln(logf, string(line))
	}
}

func (w *workerStats) get() migrate.Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

func waitFor(b testing.TB, ctx context.Context, what string, cond func() bool) {
	b.Helper()
	tk := time.NewTicker(20 * time.Millisecond)
	defer tk.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			b.Fatalf("gave up waiting for %s", what)
		case <-tk.C:
		}
	}
}

// peakRSS reads VmHWM (peak resident memory) of pid, in bytes.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			f := strings.Fields(v)
			n, _ := strconv.ParseInt(f[0], 10, 64)
			return n << 10
		}
	}
	return 0
}

func sourceOffset(ctx context.Context, c *redis.Client) int64 {
	info, _ := c.Info(ctx, "replication").Result()
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "master_repl_offset:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

func BenchmarkMigrate(b *testing.B) {
	for range b.N {
		runBench(b, flagConfig(), b.ReportMetric)
	}
}

// TestHarness runs the whole benchmark on a small dataset and a short
// stream, so that the harness keeps working between benchmark runs. It
// fails where the benchmark would: a worker that does not start, a full
// sync that does not finish, a link that does not drain to the source's
// final offset. Rates are logged, never checked.
func TestHarness(t *testing.T) {
	cfg := flagConfig()
	cfg.keys, cfg.stream, cfg.writers, cfg.rate = 5000, 2*time.Second, 2, 2000
	runBench(t, cfg, func(v float64, unit string) { t.Logf("%s: %.2f", unit, v) })
}

// benchConfig is one run's workload; the benchmark takes it from the flags.
type benchConfig struct {
	keys, writers, pipeline, rate int
	stream                        time.Duration
}

func flagConfig() benchConfig {
	return benchConfig{keys: *numKeys, writers: *writers, pipeline: *pipeline, rate: *rate, stream: *streamD}
}

func runBench(b testing.TB, cfg benchConfig, report func(float64, string)) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	bin := buildR2M(b)
	src := testenv.StartRedis(b, testenv.RedisOptions{Config: []string{"repl-backlog-size 256mb", "client-output-buffer-limit replica 0 0 0"}})
	dst := testenv.StartRedisCluster(b, testenv.ClusterOptions{Masters: 3})
	sc := src.Client(b)
	t0 := time.Now()
	load(b, ctx, sc, cfg.keys)
	dbsize, _ := sc.DBSize(ctx).Result()
	b.Logf("loaded %d keys in %v", dbsize, time.Since(t0).Round(time.Millisecond))

	dir := b.TempDir()
	logf, err := os.Create(filepath.Join(dir, "worker.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "migrate", "run", "--from", "redis://"+src.Addr, "--to-url", "redis://"+dst.Nodes[0].Addr,
		"--spool", filepath.Join(dir, "spool"), "--stats-every", "100ms", "--link", "bench")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	ws := &workerStats{}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		ws.follow(bufio.NewScanner(stderr), logf)
	}()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-followed
		_ = cmd.Wait()
	}()

	// RDB phase.
	var maxSpool atomic.Int64
	waitFor(b, ctx, "the RDB phase to end", func() bool {
		st := ws.get()
		maxSpool.Store(max(maxSpool.Load(), st.SpoolBytes))
		return len(st.Shards) == 1 && st.Shards[0].Phase == migrate.PhaseStream
	})
	rdbTook := time.Since(start)
	rdbKeys := ws.get().RDBKeys
	rdbRSS := peakRSS(cmd.Process.Pid)

	// Stream phase: writers as fast as they go.
	var ops atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range cfg.writers {
		wg.Go(func() {
			c := redis.NewClient(&redis.Options{Addr: src.Addr, Protocol: 2})
			defer c.Close()
			val := strings.Repeat("x", 32)
			var tick <-chan time.Time
			if cfg.rate > 0 {
				tk := time.NewTicker(time.Duration(float64(time.Second) * float64(cfg.pipeline*cfg.writers) / float64(cfg.rate)))
				defer tk.Stop()
				tick = tk.C
			}
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				if tick != nil {
					select {
					case <-stop:
						return
					case <-tick:
					}
				}
				p := c.Pipeline()
				for i := range cfg.pipeline {
					k := "s:" + strconv.Itoa(g) + ":" + strconv.Itoa((seq*(cfg.pipeline)+i)%100000)
					switch i % 4 {
					case 0:
						p.Set(ctx, k, val, 0)
					case 1:
						p.Incr(ctx, "c:"+strconv.Itoa(g)+":"+strconv.Itoa(i))
					case 2:
						p.RPush(ctx, "l:"+strconv.Itoa(g)+":"+strconv.Itoa(seq%1000), val)
					default:
						p.HSet(ctx, "h:"+strconv.Itoa(g)+":"+strconv.Itoa(seq%1000), strconv.Itoa(i), val)
					}
				}
				if _, err := p.Exec(ctx); err != nil {
					return
				}
				ops.Add(int64(cfg.pipeline))
			}
		})
	}
	streamStart := time.Now()
	cmdsAt := ws.get().Commands
	var lagMs, lagBytes []int64
	tk := time.NewTicker(100 * time.Millisecond)
	warm := streamStart.Add(min(10*time.Second, cfg.stream/4))
	for time.Since(streamStart) < cfg.stream {
		<-tk.C
		st := ws.get()
		maxSpool.Store(max(maxSpool.Load(), st.SpoolBytes))
		if time.Now().After(warm) && len(st.Shards) == 1 {
			lagMs = append(lagMs, st.Shards[0].LagMs)
			lagBytes = append(lagBytes, st.Shards[0].LagBytes)
		}
	}
	tk.Stop()
	close(stop)
	wg.Wait()
	streamTook := time.Since(streamStart)
	written := ops.Load()
	applied := ws.get().Commands - cmdsAt
	// Drain.
	want := sourceOffset(ctx, sc)
	drainStart := time.Now()
	waitFor(b, ctx, "the drain", func() bool {
		st := ws.get()
		return len(st.Shards) == 1 && st.Shards[0].AppliedOffset >= want
	})
	drain := time.Since(drainStart)
	appliedAll := ws.get().Commands - cmdsAt
	rss := peakRSS(cmd.Process.Pid)
	slices.Sort(lagMs)
	slices.Sort(lagBytes)
	pct := func(s []int64, p float64) int64 {
		if len(s) == 0 {
			return 0
		}
		return s[min(len(s)-1, int(float64(len(s))*p))]
	}
	rdbRate := float64(rdbKeys) / rdbTook.Seconds()
	srcRate := float64(written) / streamTook.Seconds()
	appliedRate := float64(applied) / streamTook.Seconds()
	report(rdbRate, "rdb-keys/s")
	report(srcRate, "source-writes/s")
	report(appliedRate, "applied-cmds/s")
	report(float64(pct(lagMs, 0.5)), "lag-p50-ms")
	report(float64(pct(lagMs, 0.99)), "lag-p99-ms")
	report(float64(rss)/(1<<20), "worker-peak-MiB")
	report(float64(maxSpool.Load())/(1<<20), "spool-peak-MiB")
	b.Logf("RDB phase: %d keys in %v = %.0f keys/s (worker peak RSS %d MiB during it)", rdbKeys, rdbTook.Round(time.Millisecond), rdbRate, rdbRSS>>20)
	b.Logf("stream phase %v: source %.0f writes/s (%d writers × pipeline %d); applied %.0f cmds/s during it, %d of %d by the end of a %v drain",
		streamTook.Round(time.Millisecond), srcRate, cfg.writers, cfg.pipeline, appliedRate, appliedAll, written, drain.Round(time.Millisecond))
	b.Logf("steady-state lag (after warm-up): p50 %d ms / %d bytes, p99 %d ms / %d bytes, max %d ms", pct(lagMs, 0.5), pct(lagBytes, 0.5),
		pct(lagMs, 0.99), pct(lagBytes, 0.99), pct(lagMs, 1))
	b.Logf("worker: peak RSS %d MiB, peak spool %d MiB", rss>>20, maxSpool.Load()>>20)
}
