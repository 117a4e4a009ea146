// Package backoff computes retry delays: exponential, capped, with full
// jitter so that many processes retrying the same server spread out instead
// of arriving together. It imports nothing from R2M.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff yields growing delays between Min and Max. The zero value uses
// 50ms and 2s. It is not safe for concurrent use; each retry loop owns one.
type Backoff struct {
	Min, Max time.Duration
	attempt  int
}

// Next returns the delay before the next attempt: a random duration in
// [d/2, d] where d doubles from Min with each call, up to Max.
func (b *Backoff) Next() time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = 50 * time.Millisecond
	}
	if hi <= 0 {
		hi = 2 * time.Second
	}
	d := lo << min(b.attempt, 30)
	if d > hi || d <= 0 {
		d = hi
	}
	b.attempt++
	half := d / 2
	return half + rand.N(half+1)
}

// Reset starts the sequence over after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// Wait sleeps for Next() or until ctx ends, and returns ctx's error if it
// ended first.
func (b *Backoff) Wait(ctx context.Context) error {
	t := time.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
