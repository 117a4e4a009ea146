package monitor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// migrateV1 converts layout 1 (a row per point in points_raw and
// points_1m, and a watermark in kv up to which minutes were downsampled)
// into chunks, inside the caller's transaction, and drops the old tables.
// Raw points past the watermark are downsampled here.
func migrateV1(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, historyDDL); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "ALTER TABLE series ADD COLUMN last INTEGER NOT NULL DEFAULT 0"); err != nil {
		return fmt.Errorf("add series.last: %w", err)
	}
	const v1Watermark = "downsampled_to"
	var wm int64
	err := tx.QueryRowContext(ctx, "SELECT value FROM kv WHERE key = ?", v1Watermark).Scan(&wm)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	ins, err := tx.PrepareContext(ctx, appendChunkSQL)
	if err != nil {
		return err
	}
	defer ins.Close()

	// Rows come ordered by series and time; chunks are written when the
	// series or the block changes.
	var (
		id, block int64 = -1, 0
		raw       rawEncoder
		minute    minuteFolder
	)
	put := func() error {
		if raw.n > 0 {
			if _, err := ins.ExecContext(ctx, tierRaw, block, id, raw.n, raw.segment()); err != nil {
				return err
			}
		}
		if n, seg := minute.segment(); n > 0 {
			if _, err := ins.ExecContext(ctx, tierMinute, block, id, n, seg); err != nil {
				return err
			}
		}
		raw.reset()
		minute.reset()
		return nil
	}
	rows, err := tx.QueryContext(ctx, "SELECT series, ts, value FROM points_raw ORDER BY series, ts")
	if err != nil {
		return err
	}
	for rows.Next() {
		var s, ts int64
		var v float64
		if err := rows.Scan(&s, &ts, &v); err != nil {
			rows.Close()
			return err
		}
		if s != id || floorTo(ts, blockSpan) != block {
			if err := put(); err != nil {
				rows.Close()
				return err
			}
			id, block = s, floorTo(ts, blockSpan)
		}
		raw.add(ts, v)
		if ts >= wm {
			minute.add(ts, v)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if err := put(); err != nil {
		return err
	}

	id = -1
	rows, err = tx.QueryContext(ctx, "SELECT series, ts, min, max, sum, count FROM points_1m WHERE ts < ? ORDER BY series, ts", wm)
	if err != nil {
		return err
	}
	for rows.Next() {
		var s int64
		var b bucket
		if err := rows.Scan(&s, &b.ts, &b.min, &b.max, &b.sum, &b.count); err != nil {
			rows.Close()
			return err
		}
		if s != id || floorTo(b.ts, blockSpan) != block {
			if err := put(); err != nil {
				rows.Close()
				return err
			}
			id, block = s, floorTo(b.ts, blockSpan)
		}
		minute.enc.add(b)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if err := put(); err != nil {
		return err
	}
	for _, q := range []string{
		"UPDATE series SET last = strftime('%s', 'now')",
		"DROP TABLE points_raw",
		"DROP TABLE points_1m",
		"DELETE FROM kv WHERE key = '" + v1Watermark + "'",
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}
