package clientbench

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/r2m-go/r2m/client"
)

var (
	runFor    = flag.Duration("r2m.duration", 2*time.Second, "how long each throughput measurement runs")
	rounds    = flag.Int("r2m.rounds", 7, "rounds of each throughput comparison; medians are reported")
	workers   = flag.Int("r2m.workers", 50, "concurrent workers")
	implsFlag = flag.String("r2m.impls", "r2m,rueidis,go-redis,redis-benchmark", "clients to compare in BenchmarkThroughput")
)

// A driver issues GETs or SETs, one at a time or depth at once, from one
// worker. Each worker has its own driver state (command slices, pipelines).
type driver interface {
	// call sends one GET or SET (depth 1) or a batch of depth of them, for
	// keys picked by r, and returns the first error.
	call(ctx context.Context, r *rand.Rand, set bool, depth int) error
}

// r2mDriver and rueidisDriver issue the same rueidis commands, through the
// R2M client and through a rueidis client.
type rueidisAPI interface {
	B() rueidis.Builder
	Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult
	DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult
}

type rueidisDriver struct {
	c    rueidisAPI
	cmds rueidis.Commands
}

func (d *rueidisDriver) build(r *rand.Rand, set bool) rueidis.Completed {
	k := keys[r.IntN(keyspace)]
	if set {
		return d.c.B().Set().Key(k).Value(value).Build()
	}
	return d.c.B().Get().Key(k).Build()
}

func (d *rueidisDriver) call(ctx context.Context, r *rand.Rand, set bool, depth int) error {
	if depth == 1 {
		return ignoreNil(d.c.Do(ctx, d.build(r, set)).Error())
	}
	d.cmds = d.cmds[:0]
	for range depth {
		d.cmds = append(d.cmds, d.build(r, set))
	}
	for _, res := range d.c.DoMulti(ctx, d.cmds...) {
		if err := ignoreNil(res.Error()); err != nil {
			return err
		}
	}
	return nil
}

func ignoreNil(err error) error {
	if rueidis.IsRedisNil(err) || errors.Is(err, redis.Nil) {
		return nil
	}
	return err
}

type goRedisDriver struct{ c *redis.ClusterClient }

func (d goRedisDriver) call(ctx context.Context, r *rand.Rand, set bool, depth int) error {
	if depth == 1 {
		k := keys[r.IntN(keyspace)]
		if set {
			return d.c.Set(ctx, k, value, 0).Err()
		}
		return ignoreNil(d.c.Get(ctx, k).Err())
	}
	p := d.c.Pipeline()
	for range depth {
		k := keys[r.IntN(keyspace)]
		if set {
			p.Set(ctx, k, value, 0)
		} else {
			p.Get(ctx, k)
		}
	}
	_, err := p.Exec(ctx)
	return ignoreNil(err)
}

// cpuTime returns the CPU time (user and system) this process has used:
// the clients' own cost, since Redis runs in other processes.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs workers concurrent workers for d and returns commands per
// second.
func measure(d time.Duration, nw int, newDriver func() driver, set bool, depth int) (float64, error) {
	rate, _, err := measureCPU(d, nw, newDriver, set, depth)
	return rate, err
}

// measureCPU is measure that also returns the process's CPU time per
// command.
func measureCPU(d time.Duration, nw int, newDriver func() driver, set bool, depth int) (float64, time.Duration, error) {
	var (
		stop  atomic.Bool
		total atomic.Int64
		first atomic.Pointer[error]
		wg    sync.WaitGroup
	)
	ctx := context.Background()
	start, cpu0 := time.Now(), cpuTime()
	for w := range nw {
		drv := newDriver()
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			n := int64(0)
			for !stop.Load() {
				if err := drv.call(ctx, r, set, depth); err != nil {
					first.CompareAndSwap(nil, &err)
					break
				}
				n += int64(depth)
			}
			total.Add(n)
		})
	}
	time.AfterFunc(d, func() { stop.Store(true) })
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	if e := first.Load(); e != nil {
		return 0, 0, *e
	}
	n := max(total.Load(), 1)
	return float64(n) / elapsed.Seconds(), cpu / time.Duration(n), nil
}

// redisBenchmark runs redis-benchmark --cluster with matching keys and
// values and returns its requests per second.
func redisBenchmark(addr string, set bool, depth, clients int, requests int64) (float64, error) {
	host, port, _ := strings.Cut(addr, ":")
	test := "get"
	if set {
		test = "set"
	}
	args := []string{"--cluster", "-h", host, "-p", port, "-c", strconv.Itoa(clients),
		"-n", strconv.FormatInt(requests, 10), "-r", strconv.Itoa(keyspace), "-d", "16",
		"-P", strconv.Itoa(depth), "-t", test, "--csv"}
	out, err := exec.Command("redis-benchmark", args...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("redis-benchmark %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	// CSV: a header, then "SET","123456.79",...; cluster mode prints node
	// lines first.
	for _, line := range strings.Split(string(out), "\n") {
		recs, err := csv.NewReader(strings.NewReader(line)).ReadAll()
		if err != nil || len(recs) != 1 || len(recs[0]) < 2 {
			continue
		}
		if strings.EqualFold(recs[0][0], test) {
			return strconv.ParseFloat(recs[0][1], 64)
		}
	}
	return 0, fmt.Errorf("no %s result in redis-benchmark output:\n%s", test, out)
}

// BenchmarkThroughput compares GET and SET at pipeline depth 1 and 16 for
// the R2M client, raw rueidis, raw go-redis and redis-benchmark, against one
// cluster, in rounds that interleave them, and prints median commands per
// second and the ratios.
func BenchmarkThroughput(b *testing.B) {
	w := newWorld(b)
	ctx := context.Background()
	r2m, err := client.New(ctx, w.options("bench"))
	must(b, err)
	defer r2m.Close()
	// Raw rueidis with the settings the R2M client uses by default (its app
	// config leaves the client-side cache off).
	// One seed, as the R2M client gives its inner clients: given several,
	// rueidis dials them all and closes a dial that lands during its first
	// refresh on a goroutine that sleeps 5 s first, outliving Close and
	// failing the package's leak check at random.
	raw, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: w.rc.Addrs()[:1], DisableCache: true})
	must(b, err)
	defer raw.Close()
	gr := redis.NewClusterClient(&redis.ClusterOptions{Addrs: w.rc.Addrs()})
	defer gr.Close()
	// GETs find their keys.
	for start := 0; start < keyspace; start += 1000 {
		cmds := make(rueidis.Commands, 0, 1000)
		for _, k := range keys[start : start+1000] {
			cmds = append(cmds, raw.B().Set().Key(k).Value(value).Build())
		}
		for _, r := range raw.DoMulti(ctx, cmds...) {
			must(b, r.Error())
		}
	}

	drivers := map[string]func() driver{
		"r2m":      func() driver { return &rueidisDriver{c: r2m} },
		"rueidis":  func() driver { return &rueidisDriver{c: raw} },
		"go-redis": func() driver { return goRedisDriver{gr} },
	}
	names := strings.Split(*implsFlag, ",")
	type cell struct{ op, impl string }
	results := map[cell][]float64{}
	cpus := map[cell][]float64{} // CPU nanoseconds per command
	var ops []string
	fmt.Printf("\nThroughput rounds (%v each, %d workers; the order of the clients rotates every round; load average %s at start):\n", *runFor, *workers, loadavg())
	for _, depth := range []int{1, 16} {
		for _, set := range []bool{false, true} {
			op := fmt.Sprintf("%s P%d", map[bool]string{false: "GET", true: "SET"}[set], depth)
			ops = append(ops, op)
			// A discarded warm-up: the first measurement after a change of
			// workload runs measurably slower, whichever client it is.
			for _, name := range names {
				if drv, ok := drivers[name]; ok {
					_, err := measure(*runFor/2, *workers, drv, set, depth)
					must(b, err)
				}
			}
			for round := range *rounds {
				line := fmt.Sprintf("  %-8s round %d:", op, round+1)
				order := slices.Clone(names)
				for range round % len(order) {
					order = append(order[1:], order[0])
				}
				var last float64 // the latest client rate: redis-benchmark runs about as long
				for _, name := range order {
					var rate float64
					var err error
					if name == "redis-benchmark" {
						n := int64(max(last, 50_000) * runFor.Seconds())
						rate, err = redisBenchmark(w.rc.Nodes[0].Addr, set, depth, *workers, n)
					} else {
						drv, ok := drivers[name]
						if !ok {
							b.Fatalf("unknown client %q in -r2m.impls", name)
						}
						var cpu time.Duration
						rate, cpu, err = measureCPU(*runFor, *workers, drv, set, depth)
						last = rate
						cpus[cell{op, name}] = append(cpus[cell{op, name}], float64(cpu))
						line += fmt.Sprintf(" %s %.0f (%.2fµs cpu)", name, rate, float64(cpu)/1e3)
					}
					must(b, err)
					results[cell{op, name}] = append(results[cell{op, name}], rate)
					if name == "redis-benchmark" {
						line += fmt.Sprintf(" %s %.0f", name, rate)
					}
				}
				fmt.Println(line)
			}
		}
	}
	// Each round measures the clients back to back, so the ratio within a
	// round cancels much of the machine's drift; its median is the figure
	// to read. CPU per command is the clients' own cost, which other load
	// on the machine disturbs far less than throughput.
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "op\tr2m\trueidis\tgo-redis\tredis-benchmark\tr2m/rueidis\tr2m/go-redis\tr2m/redis-benchmark\trueidis/go-redis\tCPU µs/cmd r2m\trueidis\tgo-redis\tr2m/rueidis CPU\t\n")
	for _, op := range ops {
		m := map[string]float64{}
		c := map[string]float64{}
		for _, im := range []string{"r2m", "rueidis", "go-redis", "redis-benchmark"} {
			if v := results[cell{op, im}]; len(v) > 0 {
				m[im] = median(v)
			}
			if v := cpus[cell{op, im}]; len(v) > 0 {
				c[im] = median(v) / 1e3
			}
		}
		ratio := func(x map[cell][]float64, a, b string) float64 { return paired(x[cell{op, a}], x[cell{op, b}]) }
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.3f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.3f\t\n", op,
			m["r2m"], m["rueidis"], m["go-redis"], m["redis-benchmark"],
			ratio(results, "r2m", "rueidis"), ratio(results, "r2m", "go-redis"), ratio(results, "r2m", "redis-benchmark"), ratio(results, "rueidis", "go-redis"),
			c["r2m"], c["rueidis"], c["go-redis"], ratio(cpus, "r2m", "rueidis"))
		b.ReportMetric(m["r2m"], strings.ReplaceAll(op, " ", "_")+"_r2m_cmds/s")
	}
	tw.Flush()
	fmt.Printf("\nThroughput, commands/s: medians of %d rounds of %v, %d workers, keys and values as redis-benchmark -r %d -d 16;\nratios: medians of the ratios within each round; CPU: this process's CPU time per command, medians (load average %s at the end):\n%s\n",
		*rounds, *runFor, *workers, keyspace, loadavg(), buf.String())
	if s := r2m.Stats(); s.Errors != 0 {
		b.Fatalf("the R2M client counted %d errors", s.Errors)
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// paired returns the median of x[i]/y[i].
func paired(x, y []float64) float64 {
	if len(x) == 0 || len(x) != len(y) {
		return 0
	}
	rs := make([]float64, len(x))
	for i := range x {
		rs[i] = x[i] / y[i]
	}
	return median(rs)
}

// BenchmarkHotKey compares a read-heavy hot-key workload (99% GET of 16
// hot keys, 1% SET of one of them) with and without client-side caching.
func BenchmarkHotKey(b *testing.B) {
	w := newWorld(b)
	ctx := context.Background()
	hot := keys[:16]
	type res struct {
		rate    float64
		hitRate float64
	}
	results := map[string]res{}
	for _, mode := range []string{"cache off (Do)", "cache on (DoCache)"} {
		app := "bench"
		if strings.HasPrefix(mode, "cache on") {
			app = "bench-cache"
		}
		c, err := client.New(ctx, w.options(app))
		must(b, err)
		cached := app == "bench-cache"
		before := c.Stats()
		rate, err := measure(*runFor, *workers, func() driver { return hotDriver{c: c, hot: hot, cached: cached} }, false, 1)
		must(b, err)
		after := c.Stats()
		hits := float64(after.CacheHits-before.CacheHits) / float64(after.Commands-before.Commands)
		results[mode] = res{rate, hits}
		must(b, c.Close())
	}
	off, on := results["cache off (Do)"], results["cache on (DoCache)"]
	fmt.Printf("\nHot keys (16 keys, 99%% GET / 1%% SET, %d workers, %v, load average %s):\n  cache off: %.0f cmds/s\n  cache on:  %.0f cmds/s (%.1f%% hits) = %.2fx\n\n",
		*workers, *runFor, loadavg(), off.rate, on.rate, 100*on.hitRate, on.rate/off.rate)
	b.ReportMetric(off.rate, "nocache_cmds/s")
	b.ReportMetric(on.rate, "cache_cmds/s")
}

type hotDriver struct {
	c      *client.Client
	hot    []string
	cached bool
}

func (d hotDriver) call(ctx context.Context, r *rand.Rand, _ bool, _ int) error {
	k := d.hot[r.IntN(len(d.hot))]
	if r.IntN(100) == 0 {
		return d.c.Do(ctx, d.c.B().Set().Key(k).Value(value).Build()).Error()
	}
	if d.cached {
		return ignoreNil(d.c.DoCache(ctx, d.c.B().Get().Key(k).Cache(), time.Minute).Error())
	}
	return ignoreNil(d.c.Do(ctx, d.c.B().Get().Key(k).Build()).Error())
}

// BenchmarkNewClose measures New followed by Close: alone (New opens the
// coordinator session and Close ends it) and with another client of the
// same URL open (the session is shared and stays).
func BenchmarkNewClose(b *testing.B) {
	w := newWorld(b)
	ctx := context.Background()
	const n = 200
	run := func(b *testing.B) (p50, p99, mean time.Duration) {
		var ds []time.Duration
		var sum time.Duration
		for range n {
			start := time.Now()
			c, err := client.New(ctx, w.options("bench"))
			must(b, err)
			must(b, c.Close())
			d := time.Since(start)
			ds = append(ds, d)
			sum += d
		}
		slices.Sort(ds)
		return ds[n/2], ds[n*99/100], sum / n
	}
	p50, p99, mean := run(b)
	anchor, err := client.New(ctx, w.options("bench"))
	must(b, err)
	sp50, sp99, smean := run(b)
	must(b, anchor.Close())
	fmt.Printf("\nNew+Close (%d each, ZooKeeper, 3×1 cluster, load average %s):\n  own session:    mean %v, p50 %v, p99 %v\n  shared session: mean %v, p50 %v, p99 %v\n\n",
		n, loadavg(), mean.Round(time.Microsecond), p50.Round(time.Microsecond), p99.Round(time.Microsecond),
		smean.Round(time.Microsecond), sp50.Round(time.Microsecond), sp99.Round(time.Microsecond))
	b.ReportMetric(float64(mean.Microseconds()), "own_session_us/op")
	b.ReportMetric(float64(smean.Microseconds()), "shared_session_us/op")
}
