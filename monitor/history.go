package monitor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go
)

// historyFile is the database's name in the data dir.
const historyFile = "monitor.db"

// historySchema is PRAGMA user_version of the layout below. Raise it and
// migrate in openHistory when the layout changes.
const historySchema = 1

// The layout: a series is one metric of one subject; raw points are kept
// at the collection interval, minute points hold min, max, sum and count,
// so the average of any range of them stays exact.
const historyDDL = `
CREATE TABLE IF NOT EXISTS series (
	id      INTEGER PRIMARY KEY,
	cluster TEXT NOT NULL,
	node    TEXT NOT NULL,
	app     TEXT NOT NULL,
	metric  TEXT NOT NULL,
	UNIQUE (cluster, node, app, metric)
);
CREATE TABLE IF NOT EXISTS points_raw (
	series INTEGER NOT NULL,
	ts     INTEGER NOT NULL,
	value  REAL NOT NULL,
	PRIMARY KEY (series, ts)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS points_raw_ts ON points_raw (ts);
CREATE TABLE IF NOT EXISTS points_1m (
	series INTEGER NOT NULL,
	ts     INTEGER NOT NULL,
	min    REAL NOT NULL,
	max    REAL NOT NULL,
	sum    REAL NOT NULL,
	count  INTEGER NOT NULL,
	PRIMARY KEY (series, ts)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS points_1m_ts ON points_1m (ts);
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

// history is the SQLite store of series and alert events. It is safe for
// concurrent use: writes come from the collecting pass and the notifier,
// reads from API calls (WAL lets readers run beside the writer).
type history struct {
	db *sql.DB

	mu     sync.Mutex
	ids    map[seriesKey]int64 // series ids already in the table
	lastGC time.Time           // last retention pass, by the monitor's clock
	lastGO time.Time           // last orphan-series cleanup
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
	db, err := sql.Open("sqlite", "file:"+path+"?_busy_timeout=10000&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate")
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var version int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return nil, fmt.Errorf("monitor: history: open %s: %w", path, err)
	}
	if version > historySchema {
		return nil, fmt.Errorf("monitor: history: %s has layout version %d, this program knows %d; use a newer r2m or another data dir", path, version, historySchema)
	}
	if _, err := db.ExecContext(ctx, historyDDL); err != nil {
		return nil, fmt.Errorf("monitor: history: create tables in %s: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", historySchema)); err != nil {
		return nil, fmt.Errorf("monitor: history: %w", err)
	}
	return &history{db: db, ids: make(map[seriesKey]int64)}, nil
}

func (h *history) close() error { return h.db.Close() }

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

// write stores points at time at, in one transaction.
func (h *history) write(ctx context.Context, at time.Time, pts []point) error {
	if len(pts) == 0 {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("monitor: history: %w", err)
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, "INSERT OR REPLACE INTO points_raw (series, ts, value) VALUES (?, ?, ?)")
	if err != nil {
		return fmt.Errorf("monitor: history: %w", err)
	}
	defer ins.Close()
	added := map[seriesKey]int64{}
	ts := at.Unix()
	for _, p := range pts {
		id, ok := h.ids[p.key]
		if !ok {
			if id, ok = added[p.key]; !ok {
				if id, err = seriesID(ctx, tx, p.key); err != nil {
					return err
				}
				added[p.key] = id
			}
		}
		if _, err := ins.ExecContext(ctx, id, ts, p.value); err != nil {
			return fmt.Errorf("monitor: history: write %v: %w", p.key, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("monitor: history: %w", err)
	}
	for k, id := range added {
		h.ids[k] = id
	}
	return nil
}

func seriesID(ctx context.Context, tx *sql.Tx, k seriesKey) (int64, error) {
	if _, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO series (cluster, node, app, metric) VALUES (?, ?, ?, ?)",
		k.cluster, k.node, k.app, k.metric); err != nil {
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

const watermarkKey = "downsampled_to"

// watermark is the end (exclusive, unix seconds) of what has been
// downsampled into minute points.
func (h *history) watermark(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int64, error) {
	var wm int64
	err := q.QueryRowContext(ctx, "SELECT value FROM kv WHERE key = ?", watermarkKey).Scan(&wm)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return wm, err
}

// maintain downsamples every complete minute not yet downsampled, then
// drops points and alert events past their retention. It is cheap when
// there is nothing to do, so the monitor calls it after every pass.
func (h *history) maintain(ctx context.Context, now time.Time, raw, minute, alerts time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	cutoff := now.Unix() / 60 * 60
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("monitor: history: %w", err)
	}
	defer tx.Rollback()
	wm, err := h.watermark(ctx, tx)
	if err != nil {
		return fmt.Errorf("monitor: history: %w", err)
	}
	if cutoff > wm {
		// Late points (a clock that stepped back) merge into their minute.
		_, err := tx.ExecContext(ctx, `
INSERT INTO points_1m (series, ts, min, max, sum, count)
SELECT series, ts / 60 * 60 AS b, MIN(value), MAX(value), SUM(value), COUNT(*)
FROM points_raw WHERE ts >= ? AND ts < ? GROUP BY series, b
ON CONFLICT (series, ts) DO UPDATE SET
	min = MIN(points_1m.min, excluded.min), max = MAX(points_1m.max, excluded.max),
	sum = points_1m.sum + excluded.sum, count = points_1m.count + excluded.count`, wm, cutoff)
		if err != nil {
			return fmt.Errorf("monitor: history: downsample: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", watermarkKey, cutoff); err != nil {
			return fmt.Errorf("monitor: history: %w", err)
		}
	}
	gc := now.Sub(h.lastGC) >= time.Minute || now.Before(h.lastGC)
	if gc {
		for _, d := range []struct {
			q     string
			limit int64
		}{
			// Raw points go only once downsampled: the watermark bounds the delete.
			{"DELETE FROM points_raw WHERE ts < MIN(?, (SELECT COALESCE(MAX(value), 0) FROM kv WHERE key = '" + watermarkKey + "'))", now.Add(-raw).Unix()},
			{"DELETE FROM points_1m WHERE ts < ?", now.Add(-minute).Unix()},
			{"DELETE FROM alert_events WHERE ts < ?", now.Add(-alerts).UnixMilli()}, // milliseconds
		} {
			if _, err := tx.ExecContext(ctx, d.q, d.limit); err != nil {
				return fmt.Errorf("monitor: history: retention: %w", err)
			}
		}
	}
	orphans := now.Sub(h.lastGO) >= time.Hour || now.Before(h.lastGO)
	if orphans {
		if _, err := tx.ExecContext(ctx, `DELETE FROM series WHERE
			NOT EXISTS (SELECT 1 FROM points_raw r WHERE r.series = series.id) AND
			NOT EXISTS (SELECT 1 FROM points_1m m WHERE m.series = series.id)`); err != nil {
			return fmt.Errorf("monitor: history: drop empty series: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("monitor: history: %w", err)
	}
	if gc {
		h.lastGC = now
	}
	if orphans {
		h.lastGO = now
		clear(h.ids) // ids of dropped series must not be reused from the cache
	}
	return nil
}

// bucket is one aggregated step of a series.
type bucket struct {
	ts            int64
	min, max, sum float64
	count         int64
}

// query aggregates a series over [from, to) into buckets of step seconds
// aligned to from, from raw points or from minute points (plus the raw
// points not yet downsampled).
func (h *history) query(ctx context.Context, id, from, to, step int64, minutes bool) ([]bucket, error) {
	var rows *sql.Rows
	var err error
	if !minutes {
		rows, err = h.db.QueryContext(ctx, `
SELECT (ts - ?1) / ?2 AS b, MIN(value), MAX(value), SUM(value), COUNT(*)
FROM points_raw WHERE series = ?3 AND ts >= ?1 AND ts < ?4
GROUP BY b ORDER BY b`, from, step, id, to)
	} else {
		rows, err = h.db.QueryContext(ctx, `
SELECT (ts - ?1) / ?2 AS b, MIN(mn), MAX(mx), SUM(sm), SUM(n) FROM (
	SELECT ts, min AS mn, max AS mx, sum AS sm, count AS n FROM points_1m
	WHERE series = ?3 AND ts >= ?1 AND ts < ?4
	UNION ALL
	SELECT ts, value, value, value, 1 FROM points_raw
	WHERE series = ?3 AND ts < ?4
	  AND ts >= MAX(?1, (SELECT COALESCE(MAX(value), 0) FROM kv WHERE key = '`+watermarkKey+`'))
) GROUP BY b ORDER BY b`, from, step, id, to)
	}
	if err != nil {
		return nil, fmt.Errorf("monitor: history: query: %w", err)
	}
	defer rows.Close()
	var out []bucket
	for rows.Next() {
		var b bucket
		if err := rows.Scan(&b.ts, &b.min, &b.max, &b.sum, &b.count); err != nil {
			return nil, fmt.Errorf("monitor: history: query: %w", err)
		}
		b.ts = from + b.ts*step
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("monitor: history: query: %w", err)
	}
	return out, nil
}
