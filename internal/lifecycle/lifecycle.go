// Package lifecycle has the small pieces that bounded shutdowns share. It
// imports only the standard library.
package lifecycle

import (
	"context"
	"sync"
)

// Wait waits for wg until ctx ends and returns ctx's error if it ended
// first. A WaitGroup offers no channel, so a goroutine turns Wait into one;
// that goroutine ends when wg does.
func Wait(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done reports whether ch is closed, without blocking.
func Done(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
