package monitor

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// Folding: once every block of an hour is written, the hour's twelve
// minute chunks of each series become one tier-2 chunk. Segments
// concatenate (chunk.go), so folding copies bytes and decodes nothing.
//
// It runs a batch of series ids at a time, a bounded amount per pass, so
// that no pass stalls on a whole hour of 100,000 series. For each series
// an hour is either folded or not, atomically, so a query reads the hour
// being folded from both tiers without counting anything twice. Folding
// state is the hour (in kv, so a restart resumes there) and, within it,
// the first id not yet folded (in memory: a restart folds the hour again
// from the first id, finding nothing left for the ids already done).

// foldedToKey names, in kv, the hour being folded: every hour before it is.
const foldedToKey = "folded_to"

// Defaults for a history's folding; tests make them small to see an hour
// folded in several passes.
const (
	foldBatchIDs   = 20_000  // series ids per batch
	foldBudgetRows = 250_000 // minute chunks read per maintain, at most about
)

// folding is where folding stands. Callers hold history.mu.
type folding struct {
	hour       int64 // the hour being folded; 0 before the first
	cursor     int64 // series ids below it are folded for hour
	batchIDs   int64
	budgetRows int
}

// minuteKey returns where a block's minute chunk of series id goes: its
// own tier-1 row, or, when its hour is already folded for that series (a
// restart within the hour, a clock that stepped back), onto the hour row.
func (f *folding) minuteKey(block, id int64) (tier int, key int64) {
	hour := floorTo(block, hourSpan)
	if hour < f.hour || (hour == f.hour && id < f.cursor) {
		return tierHour, hour
	}
	return tierMinute, block
}

// foldHours folds what the budget allows of the hours wholly written by
// now. Callers hold h.mu.
func (h *history) foldHours(ctx context.Context, now int64) error {
	limit := floorTo(now, hourSpan) // the hour now is in is not complete
	if h.headN > 0 {
		limit = min(limit, floorTo(h.headBlock, hourSpan))
	}
	f := &h.fold
	if f.hour == 0 {
		first, ok, err := h.firstMinuteBlock(ctx, 0)
		if err != nil || !ok {
			return err
		}
		if err := h.setFoldHour(ctx, floorTo(first, hourSpan)); err != nil {
			return err
		}
	}
	if f.hour+hourSpan > limit {
		return nil // the usual case: nothing to fold until the hour ends
	}
	var maxID int64
	if err := h.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(id), 0) FROM series").Scan(&maxID); err != nil {
		return fmt.Errorf("monitor: history: fold: %w", err)
	}
	for read := 0; read < f.budgetRows && f.hour+hourSpan <= limit; {
		if f.cursor > maxID {
			// The hour is done: go on to the next one with minute chunks.
			next, ok, err := h.firstMinuteBlock(ctx, f.hour+hourSpan)
			if err != nil {
				return err
			}
			hour := limit
			if ok {
				hour = min(limit, floorTo(next, hourSpan))
			}
			if err := h.setFoldHour(ctx, hour); err != nil {
				return err
			}
			continue
		}
		n, err := h.foldBatch(ctx, f.hour, f.cursor, f.cursor+f.batchIDs)
		if err != nil {
			return err
		}
		f.cursor += f.batchIDs
		read += n + 1 // an empty batch costs something too
	}
	return nil
}

// firstMinuteBlock returns the first tier-1 block at or after from.
func (h *history) firstMinuteBlock(ctx context.Context, from int64) (int64, bool, error) {
	var first sql.NullInt64
	if err := h.db.QueryRowContext(ctx, "SELECT MIN(block) FROM chunks WHERE tier = ? AND block >= ?", tierMinute, from).Scan(&first); err != nil {
		return 0, false, fmt.Errorf("monitor: history: fold: %w", err)
	}
	return first.Int64, first.Valid, nil
}

func (h *history) setFoldHour(ctx context.Context, hour int64) error {
	if _, err := h.db.ExecContext(ctx, "INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", foldedToKey, hour); err != nil {
		return fmt.Errorf("monitor: history: fold: %w", err)
	}
	h.fold.hour, h.fold.cursor = hour, 0
	return nil
}

// foldBatch folds hour for series ids in [lo, hi) in one transaction and
// returns how many minute chunks it read.
func (h *history) foldBatch(ctx context.Context, hour, lo, hi int64) (int, error) {
	args := []any{tierMinute, lo, hi}
	marks := make([]string, 0, hourSpan/blockSpan)
	for b := hour; b < hour+hourSpan; b += blockSpan {
		marks = append(marks, "?")
		args = append(args, b)
	}
	where := "tier = ? AND series >= ? AND series < ? AND block IN (" + strings.Join(marks, ",") + ")"
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("monitor: history: fold: %w", err)
	}
	defer tx.Rollback()
	type folded struct {
		n    int64
		data []byte
	}
	bySeries := map[int64]*folded{}
	rows, err := tx.QueryContext(ctx, "SELECT series, n, data FROM chunks WHERE "+where+" ORDER BY block", args...)
	if err != nil {
		return 0, fmt.Errorf("monitor: history: fold: %w", err)
	}
	read := 0
	for rows.Next() {
		var id, n int64
		var data sql.RawBytes
		if err := rows.Scan(&id, &n, &data); err != nil {
			rows.Close()
			return 0, fmt.Errorf("monitor: history: fold: %w", err)
		}
		f := bySeries[id]
		if f == nil {
			f = &folded{}
			bySeries[id] = f
		}
		f.n += n
		f.data = append(f.data, data...)
		read++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("monitor: history: fold: %w", err)
	}
	if read == 0 {
		return 0, nil
	}
	ids := make([]int64, 0, len(bySeries))
	for id := range bySeries {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	ins, err := tx.PrepareContext(ctx, appendChunkSQL)
	if err != nil {
		return 0, fmt.Errorf("monitor: history: fold: %w", err)
	}
	defer ins.Close()
	for _, id := range ids {
		f := bySeries[id]
		if _, err := ins.ExecContext(ctx, tierHour, hour, id, f.n, f.data); err != nil {
			return 0, fmt.Errorf("monitor: history: fold series %d: %w", id, err)
		}
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM chunks WHERE "+where, args...); err != nil {
		return 0, fmt.Errorf("monitor: history: fold: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("monitor: history: fold: %w", err)
	}
	return read, nil
}
