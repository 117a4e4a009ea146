package migrate

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/rueidis"
)

// RemoveCheckpoints deletes the checkpoint keys an exactly-once link left on
// its target (see [ExactlyOnce]) and returns how many it deleted. Run it
// only for a link that will never run again: a link that resumes without
// its checkpoints applies again what it applied after its last saved
// position. It scans every target master for the link's keys only; keys of
// other links stay.
func RemoveCheckpoints(ctx context.Context, target Endpoint, link string) (int, error) {
	if link == "" {
		return 0, fmt.Errorf("migrate: remove checkpoints: no link named")
	}
	t, err := newTarget(ctx, target, slog.New(slog.DiscardHandler))
	if err != nil {
		return 0, fmt.Errorf("migrate: remove checkpoints: %w", err)
	}
	defer t.close()
	// ckKey: ckPrefix + "{" + tag + "}:" + link + ":" + shard. Link names
	// hold no glob characters (meta.ValidateName).
	pattern := ckPrefix + "{*}:" + link + ":*"
	removed := 0
	for _, addr := range t.masterAddrs() {
		c, err := t.client(addr)
		if err != nil {
			return removed, fmt.Errorf("migrate: remove checkpoints: %w", err)
		}
		cursor := uint64(0)
		for {
			e, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Match(pattern).Count(1000).Build()).AsScanEntry()
			if err != nil {
				return removed, fmt.Errorf("migrate: remove checkpoints: SCAN on %s: %w", addr, err)
			}
			// One key per UNLINK: checkpoint keys of different slots
			// cannot share a command in cluster mode.
			cmds := make(rueidis.Commands, 0, len(e.Elements))
			for _, k := range e.Elements {
				cmds = append(cmds, c.B().Unlink().Key(k).Build())
			}
			for i, r := range c.DoMulti(ctx, cmds...) {
				gone, err := r.AsInt64()
				if err != nil {
					return removed, fmt.Errorf("migrate: remove checkpoints: UNLINK %s on %s: %w", e.Elements[i], addr, err)
				}
				removed += int(gone)
			}
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
	return removed, nil
}
