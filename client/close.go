package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/r2m-go/r2m/internal/lifecycle"
)

// Close releases the client, within Options.CloseTimeout, whatever state
// the coordinator and Redis are in. It takes no context and ignores the
// caller's: an interrupted or cancelled caller still gets a complete Close.
//
// In order, it stops the client's control loop (so nothing can register the
// client again), deletes the registration record and waits for the
// coordinator to confirm it while, at the same time, it lets running
// commands finish and closes every Redis connection, then releases the
// process's coordinator session (closing it if this was its last client).
// Every step runs even if an earlier one failed.
//
// It returns nil only if the record is confirmed deleted, every Redis
// connection is closed and every goroutine the client started has exited.
// Otherwise it returns every failure, joined, and logs it. When the
// coordinator could not confirm the delete, the error wraps
// coord.ErrCloseUnconfirmed: the record is deleted when the session
// reconnects, or vanishes when the session times out.
//
// Close is idempotent and safe to call from many goroutines at once, and
// from inside OnEvent: later calls wait for the first and return its result
// (from inside OnEvent they do not wait for the event goroutine, which is
// their own).
func (c *Client) Close() error {
	c.cleanup.Stop()
	return c.k.close()
}

// Budget of Close, as fractions of CloseTimeout from its start. The
// coordinator session gets half of the budget as its own CloseTimeout (see
// session.open), so when this client may be the session's last, the session
// close must be able to start by the half-way mark; when other clients hold
// the session, the delete and the disconnection may use nearly all of it.
const (
	stopLoopBy      = 0.30 // the control loop has stopped
	deleteFor       = 0.25 // the delete's own bound if the session may close next
	disconnectedBy  = 0.45 // record deleted, connections closed, goroutines done …
	sharedBy        = 0.90 // … or by this, if other clients keep the session
	sessionClosedBy = 0.97 // the coordinator session released
)

func (k *core) close() error {
	k.mu.Lock()
	if k.closing {
		k.mu.Unlock()
		return k.waitForClose()
	}
	k.closing = true
	loopDone := k.loopDone
	k.mu.Unlock()

	b := k.opts.CloseTimeout
	start := time.Now()
	by := func(f float64) time.Time { return start.Add(time.Duration(float64(b) * f)) }
	var errs []error

	// 1. Stop the control loop: after New it is the only code that creates
	// the registration record or swaps inner clients.
	k.cancel()
	k.unregisterMetrics()
	if loopDone != nil && !waitUntil(loopDone, by(stopLoopBy)) {
		errs = append(errs, fmt.Errorf("client: control loop still running after %v", time.Since(start).Round(time.Millisecond)))
	}
	k.mu.Lock()
	stopApp, stopTopo := k.stopApp, k.stopTopo
	k.mu.Unlock()
	for _, stop := range []func(){stopApp, stopTopo} {
		if stop != nil {
			stop()
		}
	}
	if k.sess != nil {
		k.sess.unsubscribe(k.mb)
	}

	// 2. Delete the registration and close every inner client, at once.
	k.cur.Store(nil)
	k.mu.Lock()
	inners := make([]*inner, 0, len(k.inners))
	for in := range k.inners {
		inners = append(inners, in)
	}
	clear(k.inners)
	k.mu.Unlock()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		step []error
	)
	report := func(err error) {
		if err != nil {
			mu.Lock()
			step = append(step, err)
			mu.Unlock()
		}
	}
	deleteBy, doneBy := minTime(time.Now().Add(time.Duration(float64(b)*deleteFor)), by(disconnectedBy)), by(disconnectedBy)
	if k.sess != nil && k.sess.shared() {
		deleteBy, doneBy = by(sharedBy), by(sharedBy)
	}
	if k.sess != nil {
		wg.Go(func() {
			ctx, cancel := context.WithDeadline(context.Background(), deleteBy)
			defer cancel()
			report(k.deleteRecord(ctx))
		})
	}
	for _, in := range inners {
		wg.Go(func() { report(k.closeInner(in, doneBy)) })
	}
	wg.Wait()
	errs = append(errs, step...)
	ctx, cancel := context.WithDeadline(context.Background(), doneBy)
	if err := lifecycle.Wait(ctx, &k.wg); err != nil {
		errs = append(errs, fmt.Errorf("client: goroutines still running after %v", time.Since(start).Round(time.Millisecond)))
	}
	cancel()

	// 3. Release the coordinator session.
	if k.sess != nil {
		ctx, cancel := context.WithDeadline(context.Background(), by(sessionClosedBy))
		errs = append(errs, k.sess.release(ctx))
		cancel()
	}

	err := errors.Join(errs...)
	if err != nil {
		err = fmt.Errorf("client: close %s of app %s: %w", k.id, k.opts.App, err)
		k.log.Error("client: Close failed", "err", err, "created_at", k.site)
	}
	k.teardownErr = err
	close(k.teardownDone)

	// 4. The last event, and the end of the event goroutine (unless Close
	// runs on it, inside OnEvent).
	if k.events.running() {
		k.events.emit(Event{Type: EventClosed, Err: err})
		if !k.events.onDispatcher() && !waitUntil(k.events.done, start.Add(b)) {
			derr := errors.New("client: OnEvent is still running; the event goroutine has not exited")
			k.log.Error("client: Close failed", "err", derr, "created_at", k.site)
			err = errors.Join(err, derr)
		}
	}
	k.closeErr = err
	close(k.closeDone)
	return err
}

// waitForClose is a later Close call: it waits for the first.
func (k *core) waitForClose() error {
	bound := time.NewTimer(k.opts.CloseTimeout)
	defer bound.Stop()
	if k.events.onDispatcher() {
		// Inside OnEvent: the first Close may be waiting for this very
		// goroutine, so wait only for its work.
		select {
		case <-k.teardownDone:
			return k.teardownErr
		case <-bound.C:
			return fmt.Errorf("client: close: the first Close is still running after %v", k.opts.CloseTimeout)
		}
	}
	select {
	case <-k.closeDone:
		return k.closeErr
	case <-bound.C:
		return fmt.Errorf("client: close: the first Close is still running after %v", k.opts.CloseTimeout)
	}
}

// closeInner lets the commands running on an inner finish (for at most a
// fifth of the budget), then closes it and confirms its connections closed.
func (k *core) closeInner(in *inner, deadline time.Time) error {
	in.startDrain()
	grace := minTime(time.Now().Add(k.opts.CloseTimeout/5), deadline)
	waitUntil(in.drained, grace)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	return in.close(ctx)
}

// waitUntil waits for ch to close until the deadline and reports whether it
// did.
func waitUntil(ch <-chan struct{}, deadline time.Time) bool {
	if lifecycle.Done(ch) {
		return true
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// leaked runs, as a runtime cleanup, when a Client became unreachable
// without Close. It must not block the runtime's cleanup goroutine, so the
// Close runs on a goroutine of its own, bounded by CloseTimeout.
func (k *core) leaked() {
	k.log.Error("client: leaked: the Client became unreachable without Close; closing it now",
		"created_at", k.site, "name", k.opts.Name)
	go func() {
		if err := k.close(); err != nil {
			k.log.Error("client: closing a leaked client failed", "created_at", k.site, "err", err)
		}
	}()
}
