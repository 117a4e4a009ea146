package monitor

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

var (
	benchSeries      = flag.Int("bench-series", 100_000, "BenchmarkHistoryStore: simulated series")
	benchStorePasses = flag.Int("bench-store-passes", 360, "BenchmarkHistoryStore: simulated passes, 10s apart (360: one hour)")
)

// storeMetrics are the stored node metrics: a simulated node has one
// series of each, as a real replica does.
var storeMetrics = func() []string {
	var out []string
	for _, m := range catalog {
		if m.Scope == ScopeNode && m.Stored {
			out = append(out, m.Name)
		}
	}
	return out
}()

// simSeries is one simulated series and the value it had last.
type simSeries struct {
	integral bool // counts, bytes and booleans are whole numbers; rates and ratios are not
	base     float64
	value    float64
}

// simValues makes n series of simulated nodes (len(storeMetrics) series
// each, nodes grouped ten to a cluster) with deterministic values.
func simValues(n int) ([]point, []simSeries) {
	pts := make([]point, n)
	sims := make([]simSeries, n)
	for i := range n {
		node, metric := i/len(storeMetrics), storeMetrics[i%len(storeMetrics)]
		pts[i].key = seriesKey{
			cluster: "sim-" + strconv.Itoa(node/clusterNodes),
			node:    fmt.Sprintf("10.%d.%d.%d:6379", node>>16&255, node>>8&255, node&255),
			metric:  metric,
		}
		s := &sims[i]
		switch catalogByName[metric].Unit {
		case "bool":
			s.integral, s.base = true, 1
		case "count":
			s.integral, s.base = true, 1_000+float64(i%9_000)
		case "bytes":
			s.integral, s.base = true, 100<<20+float64(i%1_000)*4096
		default:
			s.base = 10 + float64(i%1_000)
		}
		s.value = s.base
	}
	return pts, sims
}

// step moves every simulated value: whole numbers by a small random walk
// (booleans stay 1), the others around their base by up to ±10%.
func step(rng *rand.Rand, pts []point, sims []simSeries) {
	for i := range sims {
		s := &sims[i]
		switch {
		case s.integral && s.base == 1:
		case s.integral:
			s.value = max(0, s.value+float64(rng.IntN(101)-50))
		default:
			s.value = s.base * (0.9 + 0.2*rng.Float64())
		}
		pts[i].value = s.value
	}
}

// storeResult is what writing the simulated series cost.
type storeResult struct {
	series, passes int
	first          usage      // the first write, which adds every series
	writes         usageStats // the other passes' writes: the head in memory
	flush          usageStats // the write that starts a block, writing the previous one
	fold           usageStats // maintain that folded minute chunks into hour chunks
	idle           usageStats // maintain otherwise
	rawRows        int64      // raw chunks
	minuteRows     int64      // minute chunks, per block or folded per hour
	rawPoints      int64
	minutePoints   int64
	fileBytes      int64 // monitor.db after a WAL checkpoint
	maxWALBytes    int64 // monitor.db-wal after any pass
	rawBytes       int64 // the chunks table's pages, shared by tier in proportion to blob bytes
	minuteBytes    int64
	seriesBytes    int64 // the series table and its unique index
	rawQuery       usage // one series, the whole run at 10 s steps (at most a day)
	minuteQuery    usage // one series, the whole run at 1 min steps
}

// perDay extrapolates the measured bytes per point to a day of the
// simulated series at the default 10s interval: raw points, minute
// points, and the file at steady state under the default retentions.
func (r storeResult) perDay() (raw, minute, steady float64) {
	raw = float64(r.rawBytes) / float64(r.rawPoints) * float64(r.series) * float64(24*time.Hour/DefaultInterval)
	minute = float64(r.minuteBytes) / float64(r.minutePoints) * float64(r.series) * 24 * 60
	days := func(d time.Duration) float64 { return d.Hours() / 24 }
	steady = raw*days(DefaultRawRetention) + minute*days(DefaultMinuteRetention) + float64(r.seriesBytes)
	return raw, minute, steady
}

func (r storeResult) String() string {
	raw, minute, steady := r.perDay()
	const mib, gib = 1 << 20, 1 << 30
	return fmt.Sprintf("%d series × %d passes (%v simulated)\n"+
		"  first write (adds every series): wall %v, CPU %v\n"+
		"  write per pass (in memory): %s\n"+
		"  write that starts a block (writes the last 5 minutes, raw and minute chunks): %s\n"+
		"  maintain that folded (%d ids a batch): %s\n"+
		"  maintain in other passes: %s\n"+
		"  %d raw points in %d chunks, %.1f bytes each; %d minute points in %d chunks, %.1f bytes each; series table %.1f MiB\n"+
		"  monitor.db %.1f MiB after checkpoint, WAL at most %.1f MiB\n"+
		"  query of one series over the run: raw at 10 s wall %v, by minute wall %v\n"+
		"  per day: %.2f GiB raw + %.2f GiB minute points; steady state (24h raw, 14 days minute): %.1f GiB",
		r.series, r.passes, time.Duration(r.passes)*DefaultInterval,
		ms(r.first.wall), ms(r.first.cpu), &r.writes, &r.flush, foldBatchIDs, &r.fold, &r.idle,
		r.rawPoints, r.rawRows, float64(r.rawBytes)/float64(r.rawPoints), r.minutePoints, r.minuteRows,
		float64(r.minuteBytes)/float64(r.minutePoints), float64(r.seriesBytes)/mib,
		float64(r.fileBytes)/mib, float64(r.maxWALBytes)/mib, ms(r.rawQuery.wall), ms(r.minuteQuery.wall),
		raw/gib, minute/gib, steady/gib)
}

// runStore writes series simulated values into a fresh history in dir
// every 10s of a simulated clock for passes passes, running the monitor's
// downsampling and retention after each as a pass does, then measures the
// file. logf, if set, gets the write cost of every simulated 10 minutes.
func runStore(ctx context.Context, dir string, series, passes int, logf func(string, ...any)) (res storeResult, err error) {
	res = storeResult{series: series, passes: passes}
	h, err := openHistory(dir)
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := h.close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close history: %w", cerr))
		}
	}()
	pts, sims := simValues(series)
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	wal := filepath.Join(dir, historyFile+"-wal")
	var window usageStats // the writes since the last log line: how the cost grows with the file
	for k := range passes {
		at := t0.Add(time.Duration(k) * DefaultInterval)
		step(rng, pts, sims)
		mt, err := startMeter()
		if err != nil {
			return res, err
		}
		if err := h.write(ctx, at, pts); err != nil {
			return res, err
		}
		u, err := mt.stop()
		if err != nil {
			return res, err
		}
		switch {
		case k == 0:
			res.first = u
		case at.Unix()%blockSpan == 0:
			res.flush.add(u)
			window.add(u)
		default:
			res.writes.add(u)
			window.add(u)
		}
		if mt, err = startMeter(); err != nil {
			return res, err
		}
		before := h.fold
		if err := h.maintain(ctx, at, DefaultRawRetention, DefaultMinuteRetention, DefaultAlertRetention); err != nil {
			return res, err
		}
		if u, err = mt.stop(); err != nil {
			return res, err
		}
		if h.fold != before {
			res.fold.add(u)
		} else {
			res.idle.add(u)
		}
		if st, err := os.Stat(wal); err == nil {
			res.maxWALBytes = max(res.maxWALBytes, st.Size())
		}
		if logf != nil && (k+1)%60 == 0 {
			logf("simulated %v: write, last %d passes: %s; load %s", time.Duration(k+1)*DefaultInterval, window.n, &window, loadAvg())
			window = usageStats{}
		}
	}
	// Write the last block and downsample the last complete hour, then
	// fold the WAL into the file.
	end := t0.Add(time.Duration(passes) * DefaultInterval)
	mt, err := startMeter()
	if err != nil {
		return res, err
	}
	if err := h.maintain(ctx, end, DefaultRawRetention, DefaultMinuteRetention, DefaultAlertRetention); err != nil {
		return res, err
	}
	u, err := mt.stop()
	if err != nil {
		return res, err
	}
	res.flush.add(u) // it writes the last block
	if _, err := h.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return res, fmt.Errorf("checkpoint: %w", err)
	}
	st, err := os.Stat(filepath.Join(dir, historyFile))
	if err != nil {
		return res, fmt.Errorf("history size: %w", err)
	}
	res.fileBytes = st.Size()
	// What a chart costs: the first series over the whole run, from the
	// raw chunks (within their retention) and from the minute chunks.
	id, err := h.lookup(ctx, pts[0].key)
	if err != nil {
		return res, err
	}
	for _, q := range []struct {
		dst     *usage
		from    time.Time
		step    int64
		minutes bool
	}{
		{&res.rawQuery, time.Unix(max(t0.Unix(), end.Add(-DefaultRawRetention).Unix()), 0), 10, false},
		{&res.minuteQuery, t0, 60, true},
	} {
		mt, err := startMeter()
		if err != nil {
			return res, err
		}
		got, err := h.query(ctx, id, q.from.Unix(), end.Unix(), q.step, q.minutes, t0.Unix())
		if err != nil {
			return res, err
		}
		if *q.dst, err = mt.stop(); err != nil {
			return res, err
		}
		if len(got) == 0 {
			return res, fmt.Errorf("query of %v from %v: no points", pts[0].key, q.from)
		}
	}
	var rawBlob, minuteBlob int64
	for _, q := range []struct {
		sql string
		dst *int64
	}{
		{"SELECT COUNT(*) FROM chunks WHERE tier = 0", &res.rawRows},
		{"SELECT COUNT(*) FROM chunks WHERE tier > 0", &res.minuteRows},
		{"SELECT COALESCE(SUM(n), 0) FROM chunks WHERE tier = 0", &res.rawPoints},
		{"SELECT COALESCE(SUM(n), 0) FROM chunks WHERE tier > 0", &res.minutePoints},
		{"SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name = 'chunks'", &res.rawBytes},
		{"SELECT COALESCE(SUM(length(data)), 0) FROM chunks WHERE tier = 0", &rawBlob},
		{"SELECT COALESCE(SUM(length(data)), 0) FROM chunks WHERE tier > 0", &minuteBlob},
		{"SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name = 'series' OR name LIKE 'sqlite_autoindex_series%'", &res.seriesBytes},
	} {
		if err := h.db.QueryRowContext(ctx, q.sql).Scan(q.dst); err != nil {
			return res, fmt.Errorf("%s: %w", q.sql, err)
		}
	}
	// One table holds both tiers: share its pages by blob bytes.
	if total := rawBlob + minuteBlob; total > 0 {
		pages := res.rawBytes
		res.rawBytes = int64(float64(pages) * float64(rawBlob) / float64(total)) // the product overflows int64 past ~1 GiB
		res.minuteBytes = pages - res.rawBytes
	}
	return res, nil
}

// BenchmarkHistoryStore writes -bench-series simulated series (default
// 100,000) every 10s of a simulated clock for -bench-store-passes passes
// (default 360, one hour) through the history store's own write and
// maintain, and reports the CPU of each write and downsampling and the
// bytes per point, extrapolated to a day.
func BenchmarkHistoryStore(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 110*time.Minute)
	defer cancel()
	for range b.N {
		load := loadAvg()
		res, err := runStore(ctx, b.TempDir(), *benchSeries, *benchStorePasses, benchf)
		if err != nil {
			b.Fatal(err)
		}
		benchf("load %s before, %s after\n%s", load, loadAvg(), res)
		raw, minute, steady := res.perDay()
		b.ReportMetric(float64(res.writes.mean().cpu.Microseconds())/1000, "write-cpu-ms/pass")
		b.ReportMetric(float64(res.flush.mean().cpu.Microseconds())/1000, "block-write-cpu-ms")
		b.ReportMetric(float64(res.fold.mean().cpu.Microseconds())/1000, "fold-cpu-ms")
		all := res.writes.sum.cpu + res.flush.sum.cpu + res.fold.sum.cpu + res.idle.sum.cpu
		b.ReportMetric(float64(all.Microseconds())/1000/float64(res.passes-1), "all-cpu-ms/pass")
		b.ReportMetric((raw+minute)/(1<<30), "GiB/day")
		b.ReportMetric(steady/(1<<30), "GiB-steady")
	}
}

var (
	benchQuerySeries = flag.Int("bench-query-series", 2_000, "BenchmarkHistoryQuery: simulated series")
	benchQueryDays   = flag.Int("bench-query-days", 14, "BenchmarkHistoryQuery: simulated days of history")
)

// BenchmarkHistoryQuery fills a store with -bench-query-days of
// -bench-query-series series at the default retentions, then times the
// queries a chart makes of one series: the last hour and day of raw
// points, and the whole range by minute, each over 20 series.
func BenchmarkHistoryQuery(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 110*time.Minute)
	defer cancel()
	h, err := openHistory(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer h.close()
	pts, sims := simValues(*benchQuerySeries)
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	passes := *benchQueryDays * int(24*time.Hour/DefaultInterval)
	start := time.Now()
	for k := range passes {
		at := t0.Add(time.Duration(k) * DefaultInterval)
		step(rng, pts, sims)
		if err := h.write(ctx, at, pts); err != nil {
			b.Fatal(err)
		}
		if err := h.maintain(ctx, at, DefaultRawRetention, DefaultMinuteRetention, DefaultAlertRetention); err != nil {
			b.Fatal(err)
		}
	}
	end := t0.Add(time.Duration(passes) * DefaultInterval)
	if err := h.maintain(ctx, end, DefaultRawRetention, DefaultMinuteRetention, DefaultAlertRetention); err != nil {
		b.Fatal(err)
	}
	var rows int64
	if err := h.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM chunks").Scan(&rows); err != nil {
		b.Fatal(err)
	}
	benchf("%d series × %d days written in %v; %d chunks; load %s", len(pts), *benchQueryDays, time.Since(start).Round(time.Second), rows, loadAvg())
	for _, q := range []struct {
		name    string
		from    time.Time
		step    int64
		minutes bool
	}{
		{"raw-1h", end.Add(-time.Hour), 10, false},
		{"raw-24h", end.Add(-24 * time.Hour), 60, false},
		{"minute-all", t0, 600, true},
	} {
		b.Run(q.name, func(b *testing.B) {
			for i := range b.N {
				id, err := h.lookup(ctx, pts[(i*97)%len(pts)].key)
				if err != nil {
					b.Fatal(err)
				}
				got, err := h.query(ctx, id, q.from.Unix(), end.Unix(), q.step, q.minutes, end.Add(-DefaultMinuteRetention).Unix())
				if err != nil || len(got) == 0 {
					b.Fatalf("query: %d buckets, %v", len(got), err)
				}
			}
		})
	}
}
