package monitor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestHistoryDownsampling writes a known series at 10s steps under a fake
// clock and checks raw points, minute points (min, max, average), wider
// steps, the union of minute and not-yet-downsampled raw points, and both
// retentions.
func TestHistoryDownsampling(t *testing.T) {
	st, _ := newStore(t)
	clk := newFakeClock() // 10:00:00, a whole hour
	m := newMonitor(t, Config{Store: st, Interval: 10 * time.Second, RawRetention: 10 * time.Minute,
		MinuteRetention: 90 * time.Minute, Now: clk.Now})
	ctx := testCtx(t, 60*time.Second)
	key := seriesKey{cluster: "c1", node: "10.0.0.1:7000", metric: mUsedMemory}
	q := func(from, to time.Time, step time.Duration) []Point {
		t.Helper()
		pts, err := m.Series(ctx, SeriesQuery{Cluster: "c1", Node: "10.0.0.1:7000", Metric: mUsedMemory, From: from, To: to, Step: step})
		if err != nil {
			t.Fatal(err)
		}
		return pts
	}

	t0 := clk.Now()
	// 2h40m of points: value i at t0 + 10s·i; minute k holds 6k … 6k+5.
	const n = 960
	for i := range n {
		now := clk.Now()
		if err := m.hist.write(ctx, now, []point{{key, float64(i)}}); err != nil {
			t.Fatal(err)
		}
		if err := m.hist.maintain(ctx, now, m.cfg.RawRetention, m.cfg.MinuteRetention, m.cfg.AlertRetention); err != nil {
			t.Fatal(err)
		}
		clk.Advance(10 * time.Second)
	}
	now := clk.Now() // t0 + 2h40m
	if err := m.hist.maintain(ctx, now, m.cfg.RawRetention, m.cfg.MinuteRetention, m.cfg.AlertRetention); err != nil {
		t.Fatal(err)
	}

	// Within the raw retention: one point per 10s, exact values, from the
	// written blocks and the head.
	raw := q(now.Add(-8*time.Minute), now, 0)
	if len(raw) != 48 {
		t.Fatalf("last 8 minutes at full resolution: %d points, want 48", len(raw))
	}
	for _, p := range raw {
		want := float64(p.Time.Sub(t0) / (10 * time.Second))
		if p.Count != 1 || p.Avg != want || p.Min != want || p.Max != want {
			t.Fatalf("raw point %v = %+v, want the single value %v", p.Time, p, want)
		}
	}

	// Beyond the raw retention: minute points keep min, max and average,
	// from written blocks and the head alike.
	mins := q(now.Add(-80*time.Minute), now, 0)
	if len(mins) != 80 {
		t.Fatalf("last 80 minutes: %d points, want 80 one-minute points", len(mins))
	}
	for _, p := range mins {
		k := float64(p.Time.Sub(t0) / time.Minute)
		if p.Count != 6 || p.Min != 6*k || p.Max != 6*k+5 || p.Avg != 6*k+2.5 {
			t.Fatalf("minute point %v = %+v, want min %v, max %v, avg %v over 6 samples", p.Time, p, 6*k, 6*k+5, 6*k+2.5)
		}
	}
	// A 5-minute step over minute points: exact min, max and average of
	// the 30 samples.
	wide := q(t0.Add(75*time.Minute), t0.Add(85*time.Minute), 5*time.Minute)
	if len(wide) != 2 {
		t.Fatalf("two 5-minute steps: %d points", len(wide))
	}
	if p := wide[0]; p.Count != 30 || p.Min != 450 || p.Max != 479 || p.Avg != 464.5 {
		t.Errorf("5-minute point = %+v, want min 450, max 479, avg 464.5 over 30", p)
	}
	// Raw chunks wholly past the raw retention are gone: 12:30-12:35 is
	// the oldest block left, and 12:35-12:40 was written when it ended.
	var rawLeft, oldest int64
	if err := m.hist.db.QueryRowContext(ctx, "SELECT COUNT(*), MIN(block) FROM chunks WHERE tier = 0").Scan(&rawLeft, &oldest); err != nil {
		t.Fatal(err)
	}
	if want := now.Add(-m.cfg.RawRetention).Unix(); rawLeft != 2 || oldest != want {
		t.Errorf("%d raw chunks, the oldest at %v; want two, the oldest at %v", rawLeft, time.Unix(oldest, 0).UTC(), time.Unix(want, 0).UTC())
	}
	// Minute points older than the minute retention are not served.
	all := q(t0.Add(-time.Minute), now, time.Minute)
	if len(all) == 0 || all[0].Time.Before(now.Add(-m.cfg.MinuteRetention)) {
		t.Errorf("oldest minute point %v, want none before %v", all[0].Time, now.Add(-m.cfg.MinuteRetention))
	}

	// The minute that is not complete yet comes from raw points.
	clk.Advance(20 * time.Second)
	if err := m.hist.write(ctx, clk.Now(), []point{{key, 1000}}); err != nil {
		t.Fatal(err)
	}
	if err := m.hist.maintain(ctx, clk.Now(), m.cfg.RawRetention, m.cfg.MinuteRetention, m.cfg.AlertRetention); err != nil {
		t.Fatal(err)
	}
	tail := q(now.Add(-20*time.Minute), clk.Now().Add(time.Second), time.Minute)
	if last := tail[len(tail)-1]; !last.Time.Equal(now) || last.Max != 1000 || last.Count != 1 {
		t.Errorf("current minute = %+v, want the raw point 1000 at %v", last, now)
	}

	// Past both retentions nothing is left, in queries or on disk.
	clk.Advance(3 * time.Hour)
	if err := m.hist.maintain(ctx, clk.Now(), m.cfg.RawRetention, m.cfg.MinuteRetention, m.cfg.AlertRetention); err != nil {
		t.Fatal(err)
	}
	if pts := q(t0, clk.Now(), time.Minute); len(pts) != 0 {
		t.Errorf("after both retentions: %d points, want none", len(pts))
	}
	var chunks int
	if err := m.hist.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM chunks").Scan(&chunks); err != nil {
		t.Fatal(err)
	}
	if chunks != 0 {
		t.Errorf("%d chunks left after both retentions", chunks)
	}
}

// TestHistoryRestart checks that Close writes the head, that a reopened
// store serves it, and that writing into a block that already has a chunk
// appends to it.
func TestHistoryRestart(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	dir := t.TempDir()
	key := seriesKey{cluster: "c1", metric: mClusterOps}
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	h, err := openHistory(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := h.write(ctx, t0.Add(time.Duration(i)*10*time.Second), []point{{key, float64(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.close(); err != nil {
		t.Fatal(err)
	}
	if h, err = openHistory(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.close() })
	var pageSize int
	if err := h.db.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil || pageSize != 16384 {
		t.Errorf("page size %d (%v), want 16384 in a new file", pageSize, err)
	}
	// The same block again, after the restart.
	if err := h.write(ctx, t0.Add(30*time.Second), []point{{key, 3}}); err != nil {
		t.Fatal(err)
	}
	if err := h.maintain(ctx, t0.Add(6*time.Minute), time.Hour, 2*time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	id, err := h.lookup(ctx, key)
	if err != nil || id == 0 {
		t.Fatalf("lookup after restart = %d, %v", id, err)
	}
	got, err := h.query(ctx, id, t0.Unix(), t0.Add(time.Minute).Unix(), 10, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("after restart: %d points, want 4: %+v", len(got), got)
	}
	for i, b := range got {
		if b.ts != t0.Unix()+int64(i)*10 || b.sum != float64(i) || b.count != 1 {
			t.Errorf("point %d = %+v", i, b)
		}
	}
	var rows, n int
	if err := h.db.QueryRowContext(ctx, "SELECT COUNT(*), SUM(n) FROM chunks WHERE tier = 0").Scan(&rows, &n); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || n != 4 {
		t.Errorf("%d raw chunks holding %d points, want one chunk of 4", rows, n)
	}
}

// TestHistoryMigrateV1 builds a database in the first layout, a row per
// point, and checks that opening it converts every point.
func TestHistoryMigrateV1(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	dir := t.TempDir()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, historyFile))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC).Unix()
	for _, q := range []string{
		`CREATE TABLE series (id INTEGER PRIMARY KEY, cluster TEXT NOT NULL, node TEXT NOT NULL, app TEXT NOT NULL,
			metric TEXT NOT NULL, UNIQUE (cluster, node, app, metric))`,
		`CREATE TABLE points_raw (series INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL,
			PRIMARY KEY (series, ts)) WITHOUT ROWID`,
		`CREATE INDEX points_raw_ts ON points_raw (ts)`,
		`CREATE TABLE points_1m (series INTEGER NOT NULL, ts INTEGER NOT NULL, min REAL NOT NULL, max REAL NOT NULL,
			sum REAL NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (series, ts)) WITHOUT ROWID`,
		`CREATE TABLE kv (key TEXT PRIMARY KEY, value INTEGER NOT NULL)`,
		`INSERT INTO series VALUES (7, 'c1', '', '', '` + mClusterOps + `')`,
		// Minutes before 10:02 were downsampled (the watermark); their
		// values here differ from what the raw points would give, so a
		// minute counted twice shows.
		fmt.Sprintf(`INSERT INTO kv VALUES ('downsampled_to', %d)`, t0+120),
		fmt.Sprintf(`INSERT INTO points_1m VALUES (7, %d, 1, 2, 3, 2), (7, %d, 5, 5, 5, 1), (7, %d, 9, 9, 9, 1)`, t0-3600, t0, t0+60),
		`PRAGMA user_version = 1`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for i := range 400 { // 10:00:00 to 11:06:30
		if _, err := db.ExecContext(ctx, "INSERT INTO points_raw VALUES (7, ?, ?)", t0+int64(i)*10, i); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	h, err := openHistory(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.close() })
	var version int
	if err := h.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil || version != historySchema {
		t.Fatalf("user_version = %d, %v; want %d", version, err, historySchema)
	}
	raw, err := h.query(ctx, 7, t0, t0+4000, 10, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 400 || raw[399].sum != 399 {
		t.Fatalf("raw after conversion: %d points, want 400", len(raw))
	}
	// Minutes before the watermark come from the old minute points, the
	// ones after it from the raw points (12 … 17 make 10:02).
	mins, err := h.query(ctx, 7, t0-3600, t0+180, 60, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []bucket{{t0 - 3600, 1, 2, 3, 2}, {t0, 5, 5, 5, 1}, {t0 + 60, 9, 9, 9, 1}, {t0 + 120, 12, 17, 87, 6}}
	if !slices.Equal(mins, want) {
		t.Errorf("minute points after conversion = %+v, want %+v", mins, want)
	}
	var left int
	if err := h.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('points_raw', 'points_1m')").Scan(&left); err != nil || left != 0 {
		t.Errorf("%d layout-1 tables left (%v)", left, err)
	}
}

// TestChunkCodec round-trips values that stress the XOR coding and checks
// that segments concatenate and that damage is reported, not panicked on.
func TestChunkCodec(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals []float64
	}{
		{"constant", []float64{5, 5, 5, 5}},
		{"whole numbers", []float64{1 << 30, 1<<30 + 4096, 1<<30 + 8192, 3}},
		{"fractions", []float64{0.1, 0.2, 0.30000000000000004, -1e-300, 1e300}},
		{"specials", []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.MaxFloat64, math.SmallestNonzeroFloat64}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e rawEncoder
			for i, v := range tc.vals {
				e.add(1_700_000_000+int64(i)*10-int64(i%2)*25, v) // also a step back
			}
			seg := e.segment()
			data := append(append([]byte{}, seg...), seg...)
			var got []sample
			if err := eachRaw(data, func(ts int64, v float64) { got = append(got, sample{ts, v}) }); err != nil {
				t.Fatal(err)
			}
			if len(got) != 2*len(tc.vals) {
				t.Fatalf("%d points back, want %d", len(got), 2*len(tc.vals))
			}
			for i, s := range got {
				j := i % len(tc.vals)
				if math.Float64bits(s.value) != math.Float64bits(tc.vals[j]) || s.ts != 1_700_000_000+int64(j)*10-int64(j%2)*25 {
					t.Errorf("point %d = %+v, want %v", i, s, tc.vals[j])
				}
			}
			for cut := 1; cut < len(seg); cut++ {
				if err := eachRaw(seg[:cut], func(int64, float64) {}); !errors.Is(err, errCorruptChunk) {
					t.Fatalf("segment cut at %d of %d: err %v, want errCorruptChunk", cut, len(seg), err)
				}
			}
		})
	}
	var m minuteEncoder
	in := []bucket{{ts: 60, min: 1, max: 3, sum: 6, count: 3}, {ts: 120, min: 1, max: 3, sum: 6, count: 3}, {ts: 180, min: -2.5, max: 1e9, sum: 7, count: 7}}
	for _, b := range in {
		m.add(b)
	}
	var out []bucket
	if err := eachMinute(m.segment(), func(b bucket) { out = append(out, b) }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(in, out) {
		t.Errorf("minute round trip = %+v, want %+v", out, in)
	}
}

// FuzzChunk feeds arbitrary bytes to both decoders: they may fail, never
// panic, and never return more points than the bytes could hold.
func FuzzChunk(f *testing.F) {
	var e rawEncoder
	e.add(1_700_000_000, 1)
	e.add(1_700_000_010, 1.5)
	f.Add(e.segment())
	var m minuteEncoder
	m.add(bucket{ts: 60, min: 1, max: 2, sum: 3, count: 2})
	f.Add(m.segment())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		n := 0
		_ = eachRaw(data, func(int64, float64) { n++ })
		_ = eachMinute(data, func(bucket) { n++ })
		if n > len(data) {
			t.Fatalf("%d points from %d bytes", n, len(data))
		}
	})
}

// TestSeriesValidation checks that bad queries name the field.
func TestSeriesValidation(t *testing.T) {
	st, _ := newStore(t)
	m := newMonitor(t, Config{Store: st})
	ctx := testCtx(t, 10*time.Second)
	now := time.Now()
	for _, tc := range []struct {
		q     SeriesQuery
		field string
	}{
		{SeriesQuery{Cluster: "c", Node: "n"}, "metric"},
		{SeriesQuery{Cluster: "c", Node: "n", Metric: "nope"}, "metric"},
		{SeriesQuery{Cluster: "c", Node: "n", Metric: mCommands}, "metric"}, // a counter, not stored
		{SeriesQuery{Cluster: "c", Metric: mUsedMemory}, "node"},
		{SeriesQuery{Node: "n", Metric: mUsedMemory}, "cluster"},
		{SeriesQuery{Metric: mRegistered}, "app"},
		{SeriesQuery{Cluster: "c", Node: "n", Metric: mClusterOps}, "node"},
		{SeriesQuery{Cluster: "bad/name", Metric: mClusterOps}, "cluster"},
		{SeriesQuery{Cluster: "c", Metric: mClusterOps, From: now, To: now.Add(-time.Hour)}, "from"},
		{SeriesQuery{Cluster: "c", Metric: mClusterOps, Step: -time.Second}, "step"},
	} {
		_, err := m.Series(ctx, tc.q)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, ErrInvalid) {
			t.Errorf("Series(%v) = %v, want a FieldError on %q", tc.q, err, tc.field)
		}
	}
	q := SeriesQuery{Cluster: "c", Metric: mClusterOps, From: now.Add(-24 * time.Hour), To: now, Step: time.Second}
	if pts, err := m.Series(ctx, q); err != nil || len(pts) != 0 {
		t.Errorf("Series over an empty history = %v, %v; want no points, no error", pts, err)
	}

	// Too many points: the step widens to a multiple of the interval, and
	// at most MaxPoints come back.
	const n = 3 * MaxPoints
	start := now.Add(-n * 10 * time.Second).Unix()
	for i := range n {
		if err := m.hist.write(ctx, time.Unix(start+int64(i)*10, 0), []point{{seriesKey{cluster: "c", metric: mClusterOps}, float64(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	pts, err := m.Series(ctx, SeriesQuery{Cluster: "c", Metric: mClusterOps, From: time.Unix(start, 0), To: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) > MaxPoints || len(pts) < MaxPoints/2 {
		t.Fatalf("%d samples at 10s: %d points, want at most %d and not needlessly fewer", n, len(pts), MaxPoints)
	}
	if step := pts[1].Time.Sub(pts[0].Time); step%(10*time.Second) != 0 {
		t.Errorf("step %v is not a multiple of the 10s interval", step)
	}
	var total int64
	for _, p := range pts {
		total += p.Count
	}
	if total != n {
		t.Errorf("points cover %d samples, want all %d", total, n)
	}
}

// TestHistoryFold folds three hours of five series two ids at a time, so
// hours are read half folded, and checks every minute after each step; a
// point written late into a folded hour lands on the hour's row; a
// reopened store knows how far folding got.
func TestHistoryFold(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	dir := t.TempDir()
	h, err := openHistory(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.close() })
	h.fold.batchIDs, h.fold.budgetRows = 2, 12
	const nSeries = 5
	keys := make([]point, nSeries)
	for j := range keys {
		keys[j].key = seriesKey{cluster: "c1", node: fmt.Sprintf("10.0.0.%d:7000", j), metric: mUsedMemory}
	}
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	value := func(j, i int) float64 { return float64(j*100_000 + i) }
	const passes = 3 * 360
	// Minute m of series j holds the values of passes 6m … 6m+5, plus
	// extra[j][m] from late points.
	extra := map[[2]int]float64{}
	check := func(when string) {
		t.Helper()
		for j := range keys {
			id, err := h.lookup(ctx, keys[j].key)
			if err != nil {
				t.Fatal(err)
			}
			got, err := h.query(ctx, id, t0.Unix(), t0.Add(3*time.Hour).Unix(), 60, true, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 180 {
				t.Fatalf("%s: series %d: %d minutes, want 180", when, j, len(got))
			}
			for m, b := range got {
				want := 6*value(j, 6*m) + 15
				n := int64(6)
				if e, ok := extra[[2]int{j, m}]; ok {
					want += e
					n++
				}
				if b.count != n || b.sum != want {
					t.Fatalf("%s: series %d minute %d = %+v, want %d points summing to %v", when, j, m, b, n, want)
				}
			}
		}
	}
	for i := range passes {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		for j := range keys {
			keys[j].value = value(j, i)
		}
		if err := h.write(ctx, at, keys); err != nil {
			t.Fatal(err)
		}
		if err := h.maintain(ctx, at, 24*time.Hour, 14*24*time.Hour, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	end := t0.Add(3 * time.Hour)
	partial := 0
	for step := 0; h.fold.hour < end.Unix(); step++ {
		if step > 100 {
			t.Fatalf("folding stuck at %v, cursor %d", time.Unix(h.fold.hour, 0).UTC(), h.fold.cursor)
		}
		if err := h.maintain(ctx, end, 24*time.Hour, 14*24*time.Hour, time.Hour); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("fold step %d (hour %v, cursor %d)", step, time.Unix(h.fold.hour, 0).UTC(), h.fold.cursor))
		if h.fold.cursor > 0 && h.fold.hour < end.Unix() {
			partial++
		}
	}
	if partial == 0 {
		t.Error("no check saw an hour half folded")
	}
	count := func(tier int) (n int) {
		t.Helper()
		if err := h.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM chunks WHERE tier = ?", tier).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if m, hr := count(tierMinute), count(tierHour); m != 0 || hr != 3*nSeries {
		t.Errorf("after folding: %d minute chunks and %d hour chunks, want 0 and %d", m, hr, 3*nSeries)
	}

	// A clock that stepped back writes into the folded 10:30.
	late := t0.Add(30*time.Minute + 5*time.Second)
	keys[0].value = 7
	if err := h.write(ctx, late, keys[:1]); err != nil {
		t.Fatal(err)
	}
	if err := h.maintain(ctx, end, 24*time.Hour, 14*24*time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	extra[[2]int{0, 30}] = 7
	check("after a late point")
	if m := count(tierMinute); m != 0 {
		t.Errorf("the late point made %d minute chunks, want it on the hour's row", m)
	}

	if err := h.close(); err != nil {
		t.Fatal(err)
	}
	if h, err = openHistory(dir); err != nil {
		t.Fatal(err)
	}
	if h.fold.hour != end.Unix() {
		t.Errorf("reopened: folding at %v, want %v", time.Unix(h.fold.hour, 0).UTC(), end)
	}
	check("reopened")
}

// TestRunEndWritesHead: when Run ends (leadership lost), the points held
// in memory are written, not kept until this server leads again.
func TestRunEndWritesHead(t *testing.T) {
	st, _ := newStore(t)
	m := newMonitor(t, Config{Store: st, Interval: time.Hour})
	ctx := testCtx(t, 30*time.Second)
	if err := m.hist.write(ctx, time.Now(), []point{{seriesKey{cluster: "c1", metric: mClusterOps}, 42}}); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(rctx) }()
	waitFor(t, 5*time.Second, "Run to start", m.isRunning)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var n int
	if err := m.hist.db.QueryRowContext(ctx, "SELECT COALESCE(SUM(n), 0) FROM chunks WHERE tier = ?", tierRaw).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 || m.hist.headN != 0 {
		t.Errorf("after Run ended: %d raw points written, %d left in the head; want 1 and 0", n, m.hist.headN)
	}
}
