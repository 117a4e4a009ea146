package monitor

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go
)

// historyFile is the database's name in the data dir.
const historyFile = "monitor.db"

// historySchema is PRAGMA user_version of the layout below. Raise it and
// migrate in openHistory when the layout changes. Version 1 stored one row
// per point; migrateV1 converts it.
const historySchema = 2

// The layout. A series is one metric of one subject. Its points live in
// chunks (chunk.go), one row per series per blockSpan in each tier: tier 0
// holds raw points, tier 1 minute points (min, max, sum and count, so the
// average of any range of them stays exact). Both are written together
// when a block ends, so downsampling costs no extra read. The key puts
// time before series, so that write appends at the end of the B-tree
// instead of touching a page per series, and retention deletes a key
// range; a query names its blocks one by one (history.chunks). Once an
// hour is written, its twelve minute chunks of a series are folded into
// one (tier 2), so a 14-day chart reads 336 rows, not 4,032 (fold.go). kv
// holds how far folding has got.
const historyDDL = `
CREATE TABLE IF NOT EXISTS series (
	id      INTEGER PRIMARY KEY,
	cluster TEXT NOT NULL,
	node    TEXT NOT NULL,
	app     TEXT NOT NULL,
	metric  TEXT NOT NULL,
	last    INTEGER NOT NULL DEFAULT 0,
	UNIQUE (cluster, node, app, metric)
);
CREATE TABLE IF NOT EXISTS chunks (
	tier   INTEGER NOT NULL,
	block  INTEGER NOT NULL,
	series INTEGER NOT NULL,
	n      INTEGER NOT NULL,
	data   BLOB NOT NULL,
	PRIMARY KEY (tier, block, series)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv (
	key   TEXT PRIMARY KEY,
	value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_events (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	ts         INTEGER NOT NULL,
	kind       TEXT NOT NULL,
	key        TEXT NOT NULL,
	rule       TEXT NOT NULL,
	severity   TEXT NOT NULL,
	cluster    TEXT NOT NULL,
	node       TEXT NOT NULL,
	app        TEXT NOT NULL,
	client     TEXT NOT NULL,
	value      REAL NOT NULL,
	op         TEXT NOT NULL,
	threshold  REAL NOT NULL,
	summary    TEXT NOT NULL,
	labels     TEXT NOT NULL,
	starts_at  INTEGER NOT NULL,
	deliveries TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS alert_events_ts ON alert_events (ts);
`

// appendChunkSQL writes a chunk, or appends its segments to the chunk
// already at its key (segments concatenate, chunk.go).
const appendChunkSQL = `INSERT INTO chunks (tier, block, series, n, data) VALUES (?, ?, ?, ?, ?)
	ON CONFLICT (tier, block, series) DO UPDATE SET n = n + excluded.n, data = data || excluded.data`

// Chunk tiers, and the span of a chunk in seconds.
const (
	tierRaw    = 0
	tierMinute = 1
	tierHour   = 2 // minute points, one row per series per hour
	// blockSpan is how much history the head holds before it is written:
	// a crash loses at most this much, and every series gets one row per
	// block and tier. A whole number of minutes, so that no minute
	// straddles two blocks.
	blockSpan = 300
	hourSpan  = 3600
)

// history is the SQLite store of series and alert events. It is safe for
// concurrent use: writes come from the collecting pass and the notifier,
// reads from API calls (WAL lets readers run beside the writer).
//
// Points gather in memory (the head), with their minute aggregates, and
// are written as one raw and one minute chunk per series when their block
// ends, so a pass costs no disk I/O; queries read the head too. Close
// writes what the head holds.
type history struct {
	db *sql.DB

	mu        sync.Mutex
	ids       map[seriesKey]int64 // series ids already in the table
	head      map[int64]*headSeries
	headBlock int64           // the block every point in head belongs to
	headN     int             // points in head
	touched   map[int64]int64 // the day each series' last was raised, in this process
	fold      folding
	lastGC    time.Time // last retention pass, by the monitor's clock
	lastGO    time.Time // last orphan-series cleanup
}

type seriesKey struct{ cluster, node, app, metric string }

func openHistory(dir string) (_ *history, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("monitor: history: %w", err)
	}
	path := filepath.Join(dir, historyFile)
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("monitor: history: data dir %q: '?' and '#' are not allowed in the path", dir)
	}
	// 16 KiB pages keep an hour chunk (up to about 4 KiB) inside its B-tree
	// page; with the default 4 KiB, rows over about 1 KiB spill into an
	// overflow page each, mostly empty. It takes effect in new files only.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=page_size(16384)&_busy_timeout=10000&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("monitor: history: open %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			db.Close()
		}
	}()
	// A handful of connections: one writer at a time in any case, a few
	// readers for the API.
	db.SetMaxOpenConns(4)
	db.SetConnMaxIdleTime(5 * time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var version int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return nil, fmt.Errorf("monitor: history: open %s: %w", path, err)
	}
	if version > historySchema {
		return nil, fmt.Errorf("monitor: history: %s has layout version %d, this program knows %d; use a newer r2m or another data dir", path, version, historySchema)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("monitor: history: open %s: %w", path, err)
	}
	defer tx.Rollback()
	if version == 1 {
		if err := migrateV1(ctx, tx); err != nil {
			return nil, fmt.Errorf("monitor: history: convert %s to layout %d: %w", path, historySchema, err)
		}
	}
	if _, err := tx.ExecContext(ctx, historyDDL); err != nil {
		return nil, fmt.Errorf("monitor: history: create tables in %s: %w", path, err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", historySchema)); err != nil {
		return nil, fmt.Errorf("monitor: history: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("monitor: history: open %s: %w", path, err)
	}
	h := &history{db: db, ids: make(map[seriesKey]int64), head: make(map[int64]*headSeries), touched: make(map[int64]int64),
		fold: folding{batchIDs: foldBatchIDs, budgetRows: foldBudgetRows}}
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(value), 0) FROM kv WHERE key = ?", foldedToKey).Scan(&h.fold.hour); err != nil {
		return nil, fmt.Errorf("monitor: history: open %s: %w", path, err)
	}
	return h, nil
}

// writeHead writes what the head holds now.
func (h *history) writeHead(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.flush(ctx)
}

// close writes the head and closes the database.
func (h *history) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h.mu.Lock()
	err := h.flush(ctx)
	h.mu.Unlock()
	return errors.Join(err, h.db.Close())
}

// point is one value to store.
type point struct {
	key   seriesKey
	value float64
}

// pointsOf lists the stored values of a snapshot's subjects.
func pointsOf(s *snapshot) []point {
	var out []point
	for _, sub := range s.subjects {
		if sub.scope == ScopeClient {
			continue
		}
		for metric, v := range sub.values {
			if mi := catalogByName[metric]; mi == nil || !mi.Stored {
				continue
			}
			out = append(out, point{key: seriesKeyOf(sub, metric), value: v})
		}
	}
	return out
}

// seriesKeyOf names a subject's series by its own coordinates only: an
// app's series is found by the app's name alone, whatever its cluster.
func seriesKeyOf(sub *subject, metric string) seriesKey {
	switch sub.scope {
	case ScopeApp:
		return seriesKey{app: sub.app, metric: metric}
	case ScopeCluster:
		return seriesKey{cluster: sub.cluster, metric: metric}
	}
	return seriesKey{cluster: sub.cluster, node: sub.node, metric: metric}
}

// write adds points at time at to the head. It touches the database only
// to add series it has not seen and, when at starts a new block, to write
// the previous one.
func (h *history) write(ctx context.Context, at time.Time, pts []point) error {
	if len(pts) == 0 {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ts := at.Unix()
	block := floorTo(ts, blockSpan)
	if h.headN > 0 && block != h.headBlock {
		if err := h.flush(ctx); err != nil {
			return err
		}
	}
	// One map lookup per point on this path, which runs every pass for
	// every series; points of series not seen before wait for their ids.
	h.headBlock = block
	var missing []int
	for i, p := range pts {
		id, ok := h.ids[p.key]
		if !ok {
			missing = append(missing, i)
			continue
		}
		h.headOf(id).add(ts, p.value)
		h.headN++
	}
	if len(missing) == 0 {
		return nil
	}
	keys := make([]seriesKey, len(missing))
	for j, i := range missing {
		keys[j] = pts[i].key
	}
	if err := h.addSeries(ctx, ts, keys); err != nil {
		return err // the known series' points are in; these are not
	}
	for _, i := range missing {
		h.headOf(h.ids[pts[i].key]).add(ts, pts[i].value)
		h.headN++
	}
	return nil
}

// headOf returns series id's place in the head, making it on first use.
func (h *history) headOf(id int64) *headSeries {
	e := h.head[id]
	if e == nil {
		e = &headSeries{}
		h.head[id] = e
	}
	return e
}

// addSeries gives ids to series not in h.ids, in one transaction. Callers
// hold h.mu.
func (h *history) addSeries(ctx context.Context, now int64, missing []seriesKey) error {
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("monitor: history: %w", err)
	}
	defer tx.Rollback()
	added := make(map[seriesKey]int64, len(missing))
	for _, k := range missing {
		if _, ok := added[k]; ok {
			continue
		}
		id, err := seriesID(ctx, tx, k, now)
		if err != nil {
			return err
		}
		added[k] = id
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("monitor: history: %w", err)
	}
	maps.Copy(h.ids, added)
	return nil
}

// headSeries is one series' points in the head: the raw points and the
// minutes they make.
type headSeries struct {
	raw    rawEncoder
	minute minuteFolder
}

func (s *headSeries) add(ts int64, v float64) {
	s.raw.add(ts, v)
	s.minute.add(ts, v)
}

func (s *headSeries) reset() {
	s.raw.reset()
	s.minute.reset()
}

// minuteFolder folds raw points into minute entries. Points of a series
// come in time order; one older than the minute being filled (a clock
// that stepped back) becomes an entry of its own, which queries merge.
type minuteFolder struct {
	enc minuteEncoder
	cur bucket // the minute being filled; count 0 when none
}

func (f *minuteFolder) add(ts int64, v float64) {
	m := floorTo(ts, 60)
	switch {
	case f.cur.count > 0 && m == f.cur.ts:
		f.cur.merge(bucket{ts: m, min: v, max: v, sum: v, count: 1})
		return
	case f.cur.count > 0 && m < f.cur.ts:
		f.enc.add(bucket{ts: m, min: v, max: v, sum: v, count: 1})
		return
	case f.cur.count > 0:
		f.enc.add(f.cur)
	}
	f.cur = bucket{ts: m, min: v, max: v, sum: v, count: 1}
}

// segment closes the minute being filled and returns the entries.
func (f *minuteFolder) segment() (int, []byte) {
	if f.cur.count > 0 {
		f.enc.add(f.cur)
		f.cur = bucket{}
	}
	return f.enc.n, f.enc.segment()
}

func (f *minuteFolder) reset() { *f = minuteFolder{enc: minuteEncoder{buf: f.enc.buf[:0]}} }

// flush writes the head as one raw and one minute chunk per series and
// empties it. Callers hold h.mu. A chunk that already exists (a restart
// within a block, a clock that stepped back) gets the new points
// appended.
func (h *history) flush(ctx context.Context) error {
	if h.headN == 0 {
		return nil
	}
	ids := make([]int64, 0, len(h.head))
	for id, e := range h.head {
		if e.raw.n == 0 {
			delete(h.head, id) // a series that stopped; its buffers go too
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids) // key order: the rows append to the B-tree
	day := h.headBlock / 86400
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("monitor: history: write block: %w", err)
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, appendChunkSQL)
	if err != nil {
		return fmt.Errorf("monitor: history: write block: %w", err)
	}
	defer ins.Close()
	for _, id := range ids {
		e := h.head[id]
		if _, err := ins.ExecContext(ctx, tierRaw, h.headBlock, id, e.raw.n, e.raw.segment()); err != nil {
			return fmt.Errorf("monitor: history: write block of series %d: %w", id, err)
		}
	}
	for _, id := range ids {
		n, seg := h.head[id].minute.segment()
		tier, block := h.fold.minuteKey(h.headBlock, id)
		if _, err := ins.ExecContext(ctx, tier, block, id, n, seg); err != nil {
			return fmt.Errorf("monitor: history: write block of series %d: %w", id, err)
		}
	}
	// series.last, which decides when a series is forgotten, is raised
	// once a day per series, not on every block.
	var touched []int64
	touch, err := tx.PrepareContext(ctx, "UPDATE series SET last = ? WHERE id = ?")
	if err != nil {
		return fmt.Errorf("monitor: history: write block: %w", err)
	}
	defer touch.Close()
	for _, id := range ids {
		if d, ok := h.touched[id]; ok && d >= day {
			continue
		}
		if _, err := touch.ExecContext(ctx, h.headBlock, id); err != nil {
			return fmt.Errorf("monitor: history: write block of series %d: %w", id, err)
		}
		touched = append(touched, id)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("monitor: history: write block: %w", err)
	}
	for _, id := range touched {
		h.touched[id] = day
	}
	for _, id := range ids {
		h.head[id].reset()
	}
	h.headN = 0
	return nil
}

// floorTo rounds ts down to a multiple of span, also below zero.
func floorTo(ts, span int64) int64 {
	r := ts % span
	if r < 0 {
		r += span
	}
	return ts - r
}

// seriesID returns k's id, adding the series if it is new.
func seriesID(ctx context.Context, tx *sql.Tx, k seriesKey, now int64) (int64, error) {
	if _, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO series (cluster, node, app, metric, last) VALUES (?, ?, ?, ?, ?)",
		k.cluster, k.node, k.app, k.metric, now); err != nil {
		return 0, fmt.Errorf("monitor: history: add series: %w", err)
	}
	var id int64
	err := tx.QueryRowContext(ctx, "SELECT id FROM series WHERE cluster = ? AND node = ? AND app = ? AND metric = ?",
		k.cluster, k.node, k.app, k.metric).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("monitor: history: add series: %w", err)
	}
	return id, nil
}

// lookup returns a series id, or 0 when there is no such series.
func (h *history) lookup(ctx context.Context, k seriesKey) (int64, error) {
	h.mu.Lock()
	id, ok := h.ids[k]
	h.mu.Unlock()
	if ok {
		return id, nil
	}
	err := h.db.QueryRowContext(ctx, "SELECT id FROM series WHERE cluster = ? AND node = ? AND app = ? AND metric = ?",
		k.cluster, k.node, k.app, k.metric).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("monitor: history: %w", err)
	}
	return id, nil
}

// maintain writes the head once its block has ended, folds a bounded part
// of the hours wholly written, then drops chunks and alert events past
// their retention. It is cheap when there is nothing to do, so the monitor
// calls it after every pass.
func (h *history) maintain(ctx context.Context, now time.Time, raw, minute, alerts time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	sec := now.Unix()
	if h.headN > 0 && h.headBlock+blockSpan <= sec {
		if err := h.flush(ctx); err != nil {
			return err
		}
	}
	if err := h.foldHours(ctx, sec); err != nil {
		return err
	}
	if now.Sub(h.lastGC) >= time.Minute || now.Before(h.lastGC) {
		if err := h.retain(ctx, sec, raw, minute, alerts); err != nil {
			return err
		}
		h.lastGC = now
	}
	if now.Sub(h.lastGO) >= time.Hour || now.Before(h.lastGO) {
		// A series is forgotten a day after its last minute chunk went.
		if err := h.dropSeries(ctx, sec-int64(minute/time.Second)-2*86400); err != nil {
			return err
		}
		h.lastGO = now
	}
	return nil
}

// retain deletes chunks that lie wholly before their retention (queries
// cut the older part of a chunk that straddles it) and old alert events.
func (h *history) retain(ctx context.Context, now int64, raw, minute, alerts time.Duration) error {
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("monitor: history: retention: %w", err)
	}
	defer tx.Rollback()
	for _, d := range []struct {
		q    string
		args []any
	}{
		{"DELETE FROM chunks WHERE tier = ? AND block <= ?", []any{tierRaw, now - int64(raw/time.Second) - blockSpan}},
		{"DELETE FROM chunks WHERE tier = ? AND block <= ?", []any{tierMinute, now - int64(minute/time.Second) - blockSpan}},
		{"DELETE FROM chunks WHERE tier = ? AND block <= ?", []any{tierHour, now - int64(minute/time.Second) - hourSpan}},
		{"DELETE FROM alert_events WHERE ts < ?", []any{(now - int64(alerts/time.Second)) * 1000}}, // milliseconds
	} {
		if _, err := tx.ExecContext(ctx, d.q, d.args...); err != nil {
			return fmt.Errorf("monitor: history: retention: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("monitor: history: retention: %w", err)
	}
	return nil
}

// dropSeries forgets series with no minute chunk since before and no
// point in the head. Callers hold h.mu.
func (h *history) dropSeries(ctx context.Context, before int64) error {
	rows, err := h.db.QueryContext(ctx, "SELECT id FROM series WHERE last < ?", before)
	if err != nil {
		return fmt.Errorf("monitor: history: drop old series: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("monitor: history: drop old series: %w", err)
		}
		if e := h.head[id]; e == nil || e.raw.n == 0 {
			ids = append(ids, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("monitor: history: drop old series: %w", err)
	}
	if len(ids) == 0 {
		return nil
	}
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("monitor: history: drop old series: %w", err)
	}
	defer tx.Rollback()
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, "DELETE FROM series WHERE id = ?", id); err != nil {
			return fmt.Errorf("monitor: history: drop old series: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("monitor: history: drop old series: %w", err)
	}
	gone := make(map[int64]bool, len(ids))
	for _, id := range ids {
		gone[id] = true
		delete(h.head, id)
		delete(h.touched, id)
	}
	maps.DeleteFunc(h.ids, func(_ seriesKey, id int64) bool { return gone[id] })
	return nil
}

// bucket is one aggregated step of a series, and a minute entry.
type bucket struct {
	ts            int64
	min, max, sum float64
	count         int64
}

func (b *bucket) merge(o bucket) {
	if b.count == 0 {
		*b = o
		return
	}
	b.min, b.max = min(b.min, o.min), max(b.max, o.max)
	b.sum += o.sum
	b.count += o.count
}

// query aggregates a series over [from, to) into buckets of step seconds
// aligned to from, from raw points or from minute points; the head's
// points count in both. Minute points before keepFrom, past the minute
// retention but in a chunk not yet deleted, are left out.
func (h *history) query(ctx context.Context, id, from, to, step int64, minutes bool, keepFrom int64) ([]bucket, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	agg := map[int64]*bucket{}
	lo := from
	if minutes {
		lo = max(from, floorTo(keepFrom+59, 60))
	}
	add := func(b bucket) {
		if b.ts < lo || b.ts >= to {
			return
		}
		k := (b.ts - from) / step
		if a := agg[k]; a != nil {
			a.merge(b)
			return
		}
		b.ts = from + k*step
		agg[k] = &b
	}
	rawPoint := func(ts int64, v float64) { add(bucket{ts: ts, min: v, max: v, sum: v, count: 1}) }
	var err error
	if minutes {
		// An hour's minutes of a series are either folded or not; the
		// hour being folded is read from both tiers.
		minute := func(data []byte) error { return eachMinute(data, add) }
		err = h.chunks(ctx, tierHour, id, lo, min(to, h.fold.hour+hourSpan), hourSpan, minute)
		if err == nil {
			err = h.chunks(ctx, tierMinute, id, max(lo, h.fold.hour), to, blockSpan, minute)
		}
	} else {
		err = h.chunks(ctx, tierRaw, id, lo, to, blockSpan, func(data []byte) error { return eachRaw(data, rawPoint) })
	}
	if err != nil {
		return nil, err
	}
	if e := h.head[id]; e != nil && e.raw.n > 0 && h.headBlock+blockSpan > lo && h.headBlock < to {
		if minutes {
			// Raw points bucket the same as their minutes would.
			rawPoint = func(ts int64, v float64) { add(bucket{ts: floorTo(ts, 60), min: v, max: v, sum: v, count: 1}) }
		}
		if err := eachRaw(e.raw.segment(), rawPoint); err != nil {
			return nil, fmt.Errorf("monitor: history: query: %w", err)
		}
	}
	out := make([]bucket, 0, len(agg))
	for _, b := range agg {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b bucket) int { return cmp.Compare(a.ts, b.ts) })
	return out, nil
}

// chunks calls fn with the data of each chunk of series id in tier whose
// block, span seconds long, overlaps [from, to). It names the blocks one by one, so SQLite
// seeks each (tier, block, series) key rather than scanning every series
// of the range.
func (h *history) chunks(ctx context.Context, tier int, id, from, to, span int64, fn func([]byte) error) error {
	if to <= from {
		return nil
	}
	const perQuery = 500
	first := floorTo(from, span)
	for lo := first; lo < to; lo += perQuery * span {
		args := []any{tier, id}
		var marks strings.Builder
		for b := lo; b < to && b < lo+perQuery*span; b += span {
			if len(args) > 2 {
				marks.WriteString(",")
			}
			marks.WriteString("?")
			args = append(args, b)
		}
		rows, err := h.db.QueryContext(ctx, "SELECT data FROM chunks WHERE tier = ? AND series = ? AND block IN ("+marks.String()+") ORDER BY block", args...)
		if err != nil {
			return fmt.Errorf("monitor: history: query: %w", err)
		}
		for rows.Next() {
			var data []byte
			if err := rows.Scan(&data); err != nil {
				rows.Close()
				return fmt.Errorf("monitor: history: query: %w", err)
			}
			if err := fn(data); err != nil {
				rows.Close()
				return fmt.Errorf("monitor: history: query: %w", err)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("monitor: history: query: %w", err)
		}
	}
	return nil
}
