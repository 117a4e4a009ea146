package monitor

import (
	"errors"
	"testing"
	"time"
)

// TestHistoryDownsampling writes a known series at 10s steps under a fake
// clock and checks raw points, minute points (min, max, average), wider
// steps, the union of minute and not-yet-downsampled raw points, and both
// retentions.
func TestHistoryDownsampling(t *testing.T) {
	st, _ := newStore(t)
	clk := newFakeClock()
	m := newMonitor(t, Config{Store: st, Interval: 10 * time.Second, RawRetention: 10 * time.Minute,
		MinuteRetention: 30 * time.Minute, Now: clk.Now})
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
	// 40 minutes of points: value i at t0 + 10s·i; minute k holds 6k … 6k+5.
	const n = 240
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
	now := clk.Now() // t0 + 40m
	if err := m.hist.maintain(ctx, now, m.cfg.RawRetention, m.cfg.MinuteRetention, m.cfg.AlertRetention); err != nil {
		t.Fatal(err)
	}

	// Within the raw retention: one point per 10s, exact values.
	raw := q(now.Add(-5*time.Minute), now, 0)
	if len(raw) != 30 {
		t.Fatalf("last 5 minutes at full resolution: %d points, want 30", len(raw))
	}
	for _, p := range raw {
		want := float64(p.Time.Sub(t0) / (10 * time.Second))
		if p.Count != 1 || p.Avg != want || p.Min != want || p.Max != want {
			t.Fatalf("raw point %v = %+v, want the single value %v", p.Time, p, want)
		}
	}

	// Beyond the raw retention: minute points keep min, max and average.
	mins := q(now.Add(-25*time.Minute), now, 0)
	if len(mins) != 25 {
		t.Fatalf("last 25 minutes: %d points, want 25 one-minute points", len(mins))
	}
	for _, p := range mins {
		k := float64(p.Time.Sub(t0) / time.Minute)
		if p.Count != 6 || p.Min != 6*k || p.Max != 6*k+5 || p.Avg != 6*k+2.5 {
			t.Fatalf("minute point %v = %+v, want min %v, max %v, avg %v over 6 samples", p.Time, p, 6*k, 6*k+5, 6*k+2.5)
		}
	}
	// A 5-minute step over minute points: exact min, max and average of
	// the 30 samples.
	wide := q(t0.Add(15*time.Minute), t0.Add(25*time.Minute), 5*time.Minute)
	if len(wide) != 2 {
		t.Fatalf("two 5-minute steps: %d points", len(wide))
	}
	if p := wide[0]; p.Count != 30 || p.Min != 90 || p.Max != 119 || p.Avg != 104.5 {
		t.Errorf("5-minute point = %+v, want min 90, max 119, avg 104.5 over 30", p)
	}
	// Raw points older than the raw retention are gone (downsampled first).
	var left int
	if err := m.hist.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM points_raw WHERE ts < ?", now.Add(-11*time.Minute).Unix()).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d raw points older than the raw retention remain", left)
	}
	// Minute points older than the minute retention are gone.
	all := q(t0.Add(-time.Minute), now, time.Minute)
	if len(all) == 0 || all[0].Time.Before(now.Add(-30*time.Minute)) {
		t.Errorf("oldest minute point %v, want none before %v", all[0].Time, now.Add(-30*time.Minute))
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

	// Past both retentions nothing is left.
	clk.Advance(31 * time.Minute)
	if err := m.hist.maintain(ctx, clk.Now(), m.cfg.RawRetention, m.cfg.MinuteRetention, m.cfg.AlertRetention); err != nil {
		t.Fatal(err)
	}
	if pts := q(t0, clk.Now(), time.Minute); len(pts) != 0 {
		t.Errorf("after both retentions: %d points, want none", len(pts))
	}
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
	tx, err := m.hist.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := seriesID(ctx, tx, seriesKey{cluster: "c", metric: mClusterOps})
	if err != nil {
		t.Fatal(err)
	}
	start := now.Add(-n * 10 * time.Second).Unix()
	for i := range n {
		if _, err := tx.ExecContext(ctx, "INSERT INTO points_raw VALUES (?, ?, ?)", id, start+int64(i)*10, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
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
