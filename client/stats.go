package client

import (
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/r2m-go/r2m/meta"
)

// Stats is a snapshot of a client's counters since New.
type Stats struct {
	// Commands counts the commands sent through Do, DoMulti, DoCache,
	// DoMultiCache, DoStream and DoMultiStream (a DoMulti of 16 counts 16),
	// cache hits included. Dedicated connections, Receive and Nodes bypass
	// the count.
	Commands int64
	// Errors counts commands that failed: network errors and Redis errors
	// other than a missing key (nil reply).
	Errors int64
	// CacheHits counts DoCache and DoMultiCache results served from the
	// client-side cache without a round trip.
	CacheHits int64
	// Invalidations counts invalidation messages received for the client-side
	// cache (a flush of a whole connection's cache counts once).
	Invalidations int64
	// OpenConns is the number of Redis connections open now.
	OpenConns int
	// Rebuilds counts the times the inner rueidis client was replaced.
	Rebuilds int64
	// Cluster, Epoch and ConfigVersion are what the client uses now.
	Cluster       string
	Epoch         int64
	ConfigVersion int64
}

// latency buckets: four per power of two of nanoseconds, so a bucket's
// width is at most a quarter of its value; 64 powers cover any duration.
const histBuckets = 64 * 4

// counters are updated on the data path, with one atomic add per call for
// the latency and, for DoMulti and errors, one more.
type counters struct {
	hist          [histBuckets]atomic.Uint64 // one sample per call
	extra         atomic.Int64               // commands without a latency sample of their own (beyond the first of a multi-command call; streams)
	errors        atomic.Int64
	cacheHits     atomic.Int64
	invalidations atomic.Int64
	rebuilds      atomic.Int64
	openConns     atomic.Int64
}

func bucketOf(d time.Duration) int {
	ns := uint64(max(d, 0))
	if ns < 8 {
		return int(ns)
	}
	e := bits.Len64(ns) - 1 // ns is in [2^e, 2^(e+1))
	return e*4 + int((ns>>(e-2))&3)
}

// bucketUpper is the largest duration that falls in bucket i.
func bucketUpper(i int) time.Duration {
	if i < 8 {
		return time.Duration(i)
	}
	e, sub := i/4, uint64(i%4)
	return time.Duration(((4+sub+1)<<(e-2))-1) * time.Nanosecond
}

// observe records one call of n commands that took d.
func (c *counters) observe(d time.Duration, n int, err error) {
	c.hist[bucketOf(d)].Add(1)
	if n > 1 {
		c.extra.Add(int64(n - 1))
	}
	if err != nil && !rueidis.IsRedisNil(err) {
		c.errors.Add(1)
	}
}

// observeResults records a multi-command call.
func (c *counters) observeResults(d time.Duration, rs []rueidis.RedisResult, cached bool) {
	c.hist[bucketOf(d)].Add(1)
	if len(rs) > 1 {
		c.extra.Add(int64(len(rs) - 1))
	}
	var errs, hits int64
	for i := range rs {
		if err := rs[i].Error(); err != nil && !rueidis.IsRedisNil(err) {
			errs++
		}
		if cached && rs[i].IsCacheHit() {
			hits++
		}
	}
	if errs > 0 {
		c.errors.Add(errs)
	}
	if hits > 0 {
		c.cacheHits.Add(hits)
	}
}

// window computes heartbeat stats from cumulative counters; the heartbeat
// keeps the previous totals to report deltas. Only the control goroutine
// uses it.
type window struct {
	prev       [histBuckets]uint64
	prevExtra  int64
	prevErrors int64
	at         time.Time
}

func (w *window) next(c *counters, now time.Time) meta.Heartbeat {
	var (
		cur   [histBuckets]uint64
		delta [histBuckets]uint64
		calls uint64
	)
	for i := range cur {
		cur[i] = c.hist[i].Load()
		delta[i] = cur[i] - w.prev[i]
		calls += delta[i]
	}
	extra, errs := c.extra.Load(), c.errors.Load()
	hb := meta.Heartbeat{
		At:       now.UTC(),
		Commands: int64(calls) + extra - w.prevExtra,
		Errors:   errs - w.prevErrors,
		P50:      meta.Duration(quantile(&delta, calls, 0.50)),
		P99:      meta.Duration(quantile(&delta, calls, 0.99)),
	}
	if !w.at.IsZero() {
		hb.Interval = meta.Duration(now.Sub(w.at).Round(time.Millisecond))
	}
	w.prev, w.prevExtra, w.prevErrors, w.at = cur, extra, errs, now
	return hb
}

// quantile returns the upper bound of the bucket holding the q-quantile of
// total samples, or 0 without samples.
func quantile(counts *[histBuckets]uint64, total uint64, q float64) time.Duration {
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, n := range counts {
		seen += n
		if seen >= rank {
			return bucketUpper(i)
		}
	}
	return bucketUpper(histBuckets - 1)
}
