package client

import (
	"context"
	"sync"
	"time"

	"github.com/redis/rueidis"
	"github.com/redis/rueidis/rueidiscompat"
)

// The data path. Each method takes the current inner rueidis client with a
// reference (so that a swap drains it before closing it), runs the rueidis
// method, and counts the command and its latency. Concurrent calls are
// auto-pipelined by rueidis onto one connection per node.

// acquire returns the current inner client with a reference held, or nil
// once Close has begun. The second load closes the race with a swap: a
// reference taken on an inner that was replaced meanwhile is dropped and the
// new one is taken instead, so the drain of the old one, which starts after
// the swap, sees every reference that will use it.
func (k *core) acquire() *inner {
	for {
		in := k.cur.Load()
		if in == nil {
			return nil
		}
		in.refs.Add(1)
		if k.cur.Load() == in {
			return in
		}
		in.release()
	}
}

// B returns the command builder. Commands built with it are cluster-aware
// (they carry their key's slot) and can be passed to any method of the
// client once.
func (c *Client) B() rueidis.Builder { return c.k.builder }

// Do sends one command, routed by its key's slot.
func (c *Client) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	in := c.k.acquire()
	if in == nil {
		return rueidis.NewErrorResult(ErrClosed)
	}
	start := time.Now()
	resp := in.rc.Do(ctx, cmd)
	c.k.stats.observe(time.Since(start), 1, resp.Error())
	in.release()
	return resp
}

// DoMulti sends several commands at once; commands for different nodes are
// sent to each node in parallel. Results are in the order of the commands.
func (c *Client) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	in := c.k.acquire()
	if in == nil {
		return errorResults(len(multi))
	}
	start := time.Now()
	resps := in.rc.DoMulti(ctx, multi...)
	c.k.stats.observeResults(time.Since(start), resps, false)
	in.release()
	return resps
}

// DoCache sends a read-only command through the client-side cache: a hit is
// served from memory without a round trip, and Redis invalidates the entry
// when the key changes (RESP3 CLIENT TRACKING). The app config turns the
// cache on (client_cache) and sizes it; with the cache off, DoCache is Do.
func (c *Client) DoCache(ctx context.Context, cmd rueidis.Cacheable, ttl time.Duration) rueidis.RedisResult {
	in := c.k.acquire()
	if in == nil {
		return rueidis.NewErrorResult(ErrClosed)
	}
	start := time.Now()
	resp := in.rc.DoCache(ctx, cmd, ttl)
	c.k.stats.observe(time.Since(start), 1, resp.Error())
	if resp.IsCacheHit() {
		c.k.stats.cacheHits.Add(1)
	}
	in.release()
	return resp
}

// DoMultiCache is DoCache for several commands.
func (c *Client) DoMultiCache(ctx context.Context, multi ...rueidis.CacheableTTL) []rueidis.RedisResult {
	in := c.k.acquire()
	if in == nil {
		return errorResults(len(multi))
	}
	start := time.Now()
	resps := in.rc.DoMultiCache(ctx, multi...)
	c.k.stats.observeResults(time.Since(start), resps, true)
	in.release()
	return resps
}

// DoStream sends a command on a dedicated connection and returns a stream
// of its reply; see rueidis.Client.DoStream. Read the stream promptly: if the
// client is rebuilt meanwhile, the old connections close after
// Options.DrainTimeout.
func (c *Client) DoStream(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResultStream {
	in := c.k.acquire()
	if in == nil {
		return rueidis.NewErrorResultStream(ErrClosed)
	}
	defer in.release()
	c.k.stats.extra.Add(1) // counted, without a latency: the reply is read later
	return in.rc.DoStream(ctx, cmd)
}

// DoMultiStream is DoStream for several commands of one slot.
func (c *Client) DoMultiStream(ctx context.Context, multi ...rueidis.Completed) rueidis.MultiRedisResultStream {
	in := c.k.acquire()
	if in == nil {
		return rueidis.NewErrorResultStream(ErrClosed)
	}
	defer in.release()
	c.k.stats.extra.Add(int64(len(multi)))
	return in.rc.DoMultiStream(ctx, multi...)
}

// Receive subscribes (SUBSCRIBE, SSUBSCRIBE, PSUBSCRIBE) and calls fn for
// each message until the subscription ends; see rueidis.Client.Receive. If
// the client is rebuilt (another cluster, new config), the subscription on
// the old connections ends after Options.DrainTimeout with an error, and the
// caller subscribes again.
func (c *Client) Receive(ctx context.Context, subscribe rueidis.Completed, fn func(msg rueidis.PubSubMessage)) error {
	in := c.k.acquire()
	if in == nil {
		return ErrClosed
	}
	defer in.release()
	return in.rc.Receive(ctx, subscribe, fn)
}

// Dedicated runs fn with a connection of its own (WATCH/MULTI/EXEC); see
// rueidis.Client.Dedicated.
func (c *Client) Dedicated(fn func(rueidis.DedicatedClient) error) error {
	in := c.k.acquire()
	if in == nil {
		return ErrClosed
	}
	defer in.release()
	return in.rc.Dedicated(fn)
}

// Dedicate returns a connection of its own and the function that gives it
// back, which must be called; see rueidis.Client.Dedicate.
func (c *Client) Dedicate() (rueidis.DedicatedClient, func()) {
	in := c.k.acquire()
	if in == nil {
		return closedDedicated{c.k.builder}, func() {}
	}
	dc, cancel := in.rc.Dedicate()
	var once sync.Once
	return dc, func() {
		once.Do(func() {
			cancel()
			in.release()
		})
	}
}

// Nodes returns a client per node the inner rueidis client knows now. They
// bypass the client's routing, counting and draining: use them for
// per-node commands (INFO, SCAN) and do not keep them.
func (c *Client) Nodes() map[string]rueidis.Client {
	in := c.k.acquire()
	if in == nil {
		return map[string]rueidis.Client{}
	}
	defer in.release()
	return in.rc.Nodes()
}

// Rueidis returns a rueidis.Client view of the client, for libraries that
// take one. Its Close closes the client and logs what Close returns.
func (c *Client) Rueidis() rueidis.Client { return view{c} }

// Compat returns the go-redis-style API of rueidiscompat over the client,
// for code moving over from go-redis.
func (c *Client) Compat() rueidiscompat.Cmdable { return c.compat }

func errorResults(n int) []rueidis.RedisResult {
	out := make([]rueidis.RedisResult, n)
	for i := range out {
		out[i] = rueidis.NewErrorResult(ErrClosed)
	}
	return out
}

// view adapts *Client to rueidis.Client, whose Close returns nothing.
type view struct{ c *Client }

var _ rueidis.Client = view{}

func (v view) B() rueidis.Builder { return v.c.B() }
func (v view) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	return v.c.Do(ctx, cmd)
}
func (v view) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	return v.c.DoMulti(ctx, multi...)
}
func (v view) DoCache(ctx context.Context, cmd rueidis.Cacheable, ttl time.Duration) rueidis.RedisResult {
	return v.c.DoCache(ctx, cmd, ttl)
}
func (v view) DoMultiCache(ctx context.Context, multi ...rueidis.CacheableTTL) []rueidis.RedisResult {
	return v.c.DoMultiCache(ctx, multi...)
}
func (v view) DoStream(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResultStream {
	return v.c.DoStream(ctx, cmd)
}
func (v view) DoMultiStream(ctx context.Context, multi ...rueidis.Completed) rueidis.MultiRedisResultStream {
	return v.c.DoMultiStream(ctx, multi...)
}
func (v view) Receive(ctx context.Context, subscribe rueidis.Completed, fn func(msg rueidis.PubSubMessage)) error {
	return v.c.Receive(ctx, subscribe, fn)
}
func (v view) Dedicated(fn func(rueidis.DedicatedClient) error) error { return v.c.Dedicated(fn) }
func (v view) Dedicate() (rueidis.DedicatedClient, func())            { return v.c.Dedicate() }
func (v view) Nodes() map[string]rueidis.Client                       { return v.c.Nodes() }
func (v view) Mode() rueidis.ClientMode                               { return rueidis.ClientModeCluster }

// Close closes the client; rueidis.Client.Close returns nothing, so the
// error is logged.
func (v view) Close() {
	if err := v.c.Close(); err != nil {
		v.c.k.log.Warn("client: Close through the rueidis view failed", "err", err)
	}
}

// closedDedicated is what Dedicate returns after Close: every call fails
// with ErrClosed.
type closedDedicated struct{ b rueidis.Builder }

var _ rueidis.DedicatedClient = closedDedicated{}

func (d closedDedicated) B() rueidis.Builder { return d.b }
func (closedDedicated) Do(context.Context, rueidis.Completed) rueidis.RedisResult {
	return rueidis.NewErrorResult(ErrClosed)
}
func (closedDedicated) DoMulti(_ context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	return errorResults(len(multi))
}
func (closedDedicated) Receive(context.Context, rueidis.Completed, func(rueidis.PubSubMessage)) error {
	return ErrClosed
}
func (closedDedicated) SetPubSubHooks(rueidis.PubSubHooks) <-chan error { return closedErrCh() }
func (closedDedicated) SetOnInvalidations(func([]rueidis.RedisMessage)) <-chan error {
	return closedErrCh()
}

func closedErrCh() <-chan error {
	ch := make(chan error, 1)
	ch <- ErrClosed
	close(ch)
	return ch
}
func (closedDedicated) Close() {}
