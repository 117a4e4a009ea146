package cluster

import (
	"context"
	"fmt"
	"time"
)

// pollInterval is how often waits re-read cluster state. Redis offers no
// notification for gossip convergence, so waits poll real state with a
// bounded deadline.
const pollInterval = 50 * time.Millisecond

// poll calls f every pollInterval until it reports done, returns an error,
// or ctx ends; last describes what was still missing for the error message.
func poll(ctx context.Context, f func() (done bool, last string, err error)) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		done, last, err := f()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			if last != "" {
				return fmt.Errorf("%s: %w", last, ctx.Err())
			}
			return ctx.Err()
		case <-t.C:
		}
	}
}

// WaitConverged waits until the cluster seen from seed has no finding of
// error severity: every node reachable, known to every other node, agreeing
// on roles and slot owners, and reporting cluster_state:ok. It waits at most
// timeout (and no longer than ctx allows).
func (e *Engine) WaitConverged(ctx context.Context, seed string, timeout time.Duration) (*View, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var view *View
	err := poll(ctx, func() (bool, string, error) {
		v, err := e.Inspect(ctx, seed)
		if err != nil {
			return false, err.Error(), nil
		}
		for _, f := range Analyze(v) {
			if f.Severity == SevError {
				return false, f.String(), nil
			}
		}
		view = v
		return true, "", nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotConverged, err)
	}
	return view, nil
}
