package agent

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/r2m-go/r2m/internal/backoff"
	"github.com/r2m-go/r2m/meta"
)

// Instance states as reported in meta.InstanceStatus.State.
const (
	StateStarting = "starting" // process started (or adopted), PING not answered yet
	StateRunning  = "running"  // process alive and answering PING
	StateCrashed  = "crashed"  // process ended, or could not be started; a restart is scheduled
	StateStopped  = "stopped"  // not running on purpose (invalid desired entry, or being removed)
)

// board holds what the agent reports in /agents/{host}/actual. Supervisors
// and the reconcile loop write it; the reporter reads it. changed (capacity
// 1) says "something to write"; it coalesces bursts.
type board struct {
	mu        sync.Mutex
	gen       int64
	instances map[int]meta.InstanceStatus
	// base holds the restart counts found in the actual record left by a
	// previous agent process, so that a restarted agent continues them.
	base       map[int]int
	baseLoaded bool
	changed    chan struct{}
}

func newBoard() *board {
	return &board{instances: make(map[int]meta.InstanceStatus), base: make(map[int]int), changed: make(chan struct{}, 1)}
}

func (b *board) notify() {
	select {
	case b.changed <- struct{}{}:
	default:
	}
}

// set records an instance's status. Since is kept while the state stays the
// same, and set to now when it changes.
func (b *board) set(st meta.InstanceStatus) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old, ok := b.instances[st.Port]
	if ok && old.State == st.State {
		st.Since = old.Since
	} else {
		st.Since = time.Now().UTC().Truncate(time.Millisecond)
	}
	if ok && old == st {
		return
	}
	b.instances[st.Port] = st
	b.notify()
}

// remove forgets an instance, including any restart count carried over.
func (b *board) remove(port int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.instances[port]
	delete(b.instances, port)
	delete(b.base, port)
	if ok {
		b.notify()
	}
}

func (b *board) setGeneration(gen int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gen != gen {
		b.gen = gen
		b.notify()
	}
}

// fill writes the board into an actual-state record. prev is the record as
// stored; the first time, its restart counts become the base.
func (b *board) fill(rec *meta.ActualState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.baseLoaded {
		for _, is := range rec.Instances {
			b.base[is.Port] = is.Restarts
		}
		b.baseLoaded = true
	}
	rec.ObservedGeneration = b.gen
	rec.Instances = make([]meta.InstanceStatus, 0, len(b.instances))
	for _, port := range slices.Sorted(maps.Keys(b.instances)) {
		st := b.instances[port]
		st.Restarts += b.base[port]
		rec.Instances = append(rec.Instances, st)
	}
	rec.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
}

// report writes the actual state whenever the board changes and every
// ReportInterval, until ctx ends. A failed write (coordinator outage) is
// retried with backoff; supervision never waits for it.
func (a *Agent) report(ctx context.Context) {
	ref := a.store.Actual(a.opts.Host)
	tick := time.NewTicker(a.opts.ReportInterval)
	defer tick.Stop()
	retry := time.NewTimer(0) // write once at start
	defer retry.Stop()
	bo := backoff.Backoff{Min: 100 * time.Millisecond, Max: a.opts.ReportInterval}
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.board.changed:
		case <-tick.C:
		case <-retry.C:
		}
		wctx, cancel := context.WithTimeout(ctx, a.opts.CoordTimeout)
		_, _, err := ref.Upsert(wctx, func(rec *meta.ActualState) error {
			a.board.fill(rec)
			return nil
		})
		cancel()
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			if !failing {
				a.log.Warn("cannot write actual state; instances stay supervised, will retry", "path", ref.Path(), "err", err)
			} else {
				a.log.Debug("actual state write failed again", "path", ref.Path(), "err", err)
			}
			failing = true
			retry.Reset(bo.Next())
		default:
			if failing {
				a.log.Info("actual state reporting resumed", "path", ref.Path())
			}
			failing = false
			bo.Reset()
		}
	}
}
