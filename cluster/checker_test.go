package cluster_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// writeChecker writes through a go-redis ClusterClient while an operation
// runs: unique keys with known values, and INCR counters. It records what
// the cluster acknowledged so that verify can prove nothing acknowledged
// was lost.
type writeChecker struct {
	cl       *redis.ClusterClient
	addrs    []string
	password string
	prefix   string
	workers  int

	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	acked    map[string]string // key -> value the cluster acknowledged
	counters []atomic.Int64    // acknowledged INCRs per counter
	errors   atomic.Int64      // writes that failed (not acknowledged)
}

const checkerCounters = 16

// startChecker starts workers writers; stop them with stop.
func startChecker(t *testing.T, addrs []string, password, prefix string, workers int) *writeChecker {
	t.Helper()
	cl := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: addrs, Password: password, Protocol: 2,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		MaxRedirects: 16,
	})
	t.Cleanup(func() { cl.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	w := &writeChecker{cl: cl, addrs: addrs, password: password, prefix: prefix, workers: workers, cancel: cancel,
		acked: map[string]string{}, counters: make([]atomic.Int64, checkerCounters)}
	for i := range workers {
		w.wg.Go(func() { w.run(ctx, i) })
	}
	t.Cleanup(w.stop)
	return w
}

func (w *writeChecker) run(ctx context.Context, worker int) {
	for n := 0; ctx.Err() == nil; n++ {
		key := fmt.Sprintf("%s:w%d:%d", w.prefix, worker, n)
		val := fmt.Sprintf("v%d-%d", worker, n)
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := w.cl.Set(cctx, key, val, 0).Err()
		cancel()
		if err != nil {
			w.errors.Add(1)
		} else {
			w.mu.Lock()
			w.acked[key] = val
			w.mu.Unlock()
		}
		c := (worker + n) % checkerCounters
		cctx, cancel = context.WithTimeout(ctx, 3*time.Second)
		err = w.cl.Incr(cctx, w.counterKey(c)).Err()
		cancel()
		if err != nil {
			w.errors.Add(1)
		} else {
			w.counters[c].Add(1)
		}
	}
}

func (w *writeChecker) counterKey(c int) string { return fmt.Sprintf("%s:counter:%d", w.prefix, c) }

// stop ends the writers and waits for them. It is idempotent.
func (w *writeChecker) stop() {
	w.cancel()
	w.wg.Wait()
}

// lossReport counts acknowledged writes that did not survive.
type lossReport struct {
	keys, lostKeys         int
	increments, lostIncrs  int64
	failedWrites           int64
	firstLost, firstDetail string
}

func (r lossReport) String() string {
	return fmt.Sprintf("%d acked keys, %d lost; %d acked INCRs, %d lost; %d writes not acknowledged; first loss %s %s",
		r.keys, r.lostKeys, r.increments, r.lostIncrs, r.failedWrites, r.firstLost, r.firstDetail)
}

// check stops the writers and reads every acknowledged key back.
func (w *writeChecker) check(t *testing.T) lossReport {
	t.Helper()
	w.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Read back through a fresh client: the writers' client may still hold
	// a slot map naming a node the operation removed.
	rd := redis.NewClusterClient(&redis.ClusterOptions{Addrs: w.addrs, Password: w.password, Protocol: 2, MaxRedirects: 16})
	defer rd.Close()
	w.mu.Lock()
	defer w.mu.Unlock()
	r := lossReport{keys: len(w.acked), failedWrites: w.errors.Load()}
	keys := make([]string, 0, len(w.acked))
	for k := range w.acked {
		keys = append(keys, k)
	}
	const chunk = 500
	for i := 0; i < len(keys); i += chunk {
		part := keys[i:min(i+chunk, len(keys))]
		pipe := rd.Pipeline()
		cmds := make([]*redis.StringCmd, len(part))
		for j, k := range part {
			cmds[j] = pipe.Get(ctx, k)
		}
		_, _ = pipe.Exec(ctx)
		for j, c := range cmds {
			got, err := c.Result()
			if err != nil && err != redis.Nil {
				t.Fatalf("read back %s: %v", part[j], err)
			}
			if got != w.acked[part[j]] {
				r.lostKeys++
				if r.firstLost == "" {
					r.firstLost, r.firstDetail = part[j], fmt.Sprintf("(got %q want %q)", got, w.acked[part[j]])
				}
			}
		}
	}
	for c := range checkerCounters {
		acked := w.counters[c].Load()
		r.increments += acked
		got, err := rd.Get(ctx, w.counterKey(c)).Int64()
		if err != nil && err != redis.Nil {
			t.Fatalf("read back counter %d: %v", c, err)
		}
		if got < acked {
			r.lostIncrs += acked - got
			if r.firstLost == "" {
				r.firstLost, r.firstDetail = w.counterKey(c), fmt.Sprintf("(got %d want >= %d)", got, acked)
			}
		}
	}
	return r
}

// requireNoLoss fails the test if any acknowledged write is missing or if
// the checker did too little to prove anything.
func (w *writeChecker) requireNoLoss(t *testing.T) lossReport {
	t.Helper()
	r := w.check(t)
	t.Logf("zero-loss checker: %s", r)
	if r.keys < 100 {
		t.Fatalf("checker acknowledged only %d writes; the operation ran too briefly to prove anything", r.keys)
	}
	if r.lostKeys > 0 || r.lostIncrs > 0 {
		t.Fatalf("acknowledged writes lost: %s", r)
	}
	return r
}

// waitAcked waits until the checker has at least n acknowledged keys, so an
// operation starts under real load.
func (w *writeChecker) waitAcked(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		w.mu.Lock()
		got := len(w.acked)
		w.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-deadline:
			t.Fatalf("checker acknowledged %d writes in 20s, want %d", got, n)
		case <-tick.C:
		}
	}
}
