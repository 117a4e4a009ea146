package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/r2m-go/r2m/meta"
)

// spec is everything an inner rueidis client is built from. The password is
// in it, so it is never logged as a whole.
type spec struct {
	cluster  string
	epoch    int64
	nodes    []string // every node address in the topology record, sorted
	init     []string // the addresses given to rueidis as InitAddress
	password string
	cfg      meta.ClientConfig
	cfgVer   int64
}

// LogValue implements slog.LogValuer so that logging a spec shows what is
// useful and never the password.
func (s spec) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("cluster", s.cluster),
		slog.Int64("epoch", s.epoch),
		slog.Any("nodes", s.nodes),
		slog.Int64("config_version", s.cfgVer),
		slog.Bool("password", s.password != ""),
	)
}

var _ slog.LogValuer = spec{}

// inner is one rueidis cluster client and the connections it opened. The
// client swaps inners atomically; commands hold a reference (refs) while
// they run so that a replaced inner is closed only once they have finished.
type inner struct {
	spec spec

	refs     atomic.Int64
	draining atomic.Bool
	drained  chan struct{} // closed when draining and refs reached zero
	drainMu  sync.Once

	conns *connSet

	mu        sync.Mutex
	rc        rueidis.Client // nil until built
	abandoned bool           // close began; a client built later is closed at once
	closing   bool           // the first close call has begun
	closed    chan struct{}  // closed when the first close call has finished
	closeErr  error          // its result, set before closed is closed
}

func newInner(sp spec, openConns *atomic.Int64) *inner {
	return &inner{spec: sp, drained: make(chan struct{}), closed: make(chan struct{}), conns: newConnSet(openConns)}
}

// release drops a command's reference.
func (in *inner) release() {
	if in.refs.Add(-1) == 0 && in.draining.Load() {
		in.signalDrained()
	}
}

func (in *inner) signalDrained() { in.drainMu.Do(func() { close(in.drained) }) }

// startDrain marks the inner as replaced; drained closes once the commands
// that still hold it have finished.
func (in *inner) startDrain() {
	in.draining.Store(true)
	if in.refs.Load() == 0 {
		in.signalDrained()
	}
}

// client returns the rueidis client, nil while building or once abandoned.
func (in *inner) client() rueidis.Client {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.rc
}

// known returns the addresses this inner's rueidis client can ask for a
// refresh: its seeds and every node it has discovered.
func (in *inner) known() map[string]bool {
	out := make(map[string]bool)
	for _, a := range in.spec.init {
		out[a] = true
	}
	if rc := in.client(); rc != nil {
		for a := range rc.Nodes() {
			out[a] = true
		}
	}
	return out
}

// close closes the rueidis client and confirms that every connection it
// opened is closed, within ctx. A later call waits for the first, within its
// own ctx.
func (in *inner) close(ctx context.Context) error {
	in.mu.Lock()
	first := !in.closing
	in.closing = true
	in.mu.Unlock()
	if first {
		in.closeErr = in.doClose(ctx)
		close(in.closed)
		return in.closeErr
	}
	select {
	case <-in.closed:
		return in.closeErr
	case <-ctx.Done():
		return fmt.Errorf("client: closing Redis connections: %w", ctx.Err())
	}
}

func (in *inner) doClose(ctx context.Context) error {
	in.mu.Lock()
	in.abandoned = true
	rc := in.rc
	in.mu.Unlock()
	in.conns.seal()
	if rc == nil {
		// Still being built: cut its connections so that NewClient returns;
		// the building goroutine closes whatever it returns.
		in.conns.closeAll()
	} else {
		// rueidis closes each connection on a goroutine of its own after a
		// last PING; give that most of the time, then force the rest.
		rc.Close()
		soft := ctx
		if dl, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			soft, cancel = context.WithDeadline(ctx, dl.Add(-time.Until(dl)/4))
			defer cancel()
		}
		select {
		case <-in.conns.empty:
			return nil
		case <-soft.Done():
		}
		in.conns.closeAll()
	}
	select {
	case <-in.conns.empty:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("client: %d Redis connections still open: %w", in.conns.count(), ctx.Err())
	}
}

// connSet tracks the connections of one inner client. It exists because
// rueidis's Close returns before its connections are closed (and a refresh
// may leave a connection to close five seconds later): counting them is how
// Close confirms that none is left, and closing them is its last resort.
type connSet struct {
	openConns *atomic.Int64 // the client-wide count

	mu     sync.Mutex
	m      map[*trackedConn]struct{}
	sealed bool          // no new connections; empty closes when m is empty
	empty  chan struct{} // closed once sealed and empty
	ctx    context.Context
	cancel context.CancelFunc // aborts dials in progress
}

func newConnSet(openConns *atomic.Int64) *connSet {
	s := &connSet{openConns: openConns, m: make(map[*trackedConn]struct{}), empty: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

var errConnSetSealed = errors.New("client: connection refused: the inner client is closing")

// dial is the rueidis DialCtxFn.
func (s *connSet) dial(ctx context.Context, addr string, d *net.Dialer, tlsCfg *tls.Config) (net.Conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	var (
		c   net.Conn
		err error
	)
	if tlsCfg != nil {
		c, err = (&tls.Dialer{NetDialer: d, Config: tlsCfg}).DialContext(ctx, "tcp", addr)
	} else {
		c, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		if s.ctx.Err() != nil {
			return nil, errConnSetSealed
		}
		return nil, err
	}
	tc := &trackedConn{Conn: c, set: s}
	s.mu.Lock()
	if s.sealed {
		s.mu.Unlock()
		c.Close()
		return nil, errConnSetSealed
	}
	s.m[tc] = struct{}{}
	s.mu.Unlock()
	s.openConns.Add(1)
	return tc, nil
}

func (s *connSet) remove(tc *trackedConn) {
	s.mu.Lock()
	if _, ok := s.m[tc]; !ok {
		s.mu.Unlock()
		return
	}
	delete(s.m, tc)
	done := s.sealed && len(s.m) == 0
	s.mu.Unlock()
	s.openConns.Add(-1)
	if done {
		close(s.empty)
	}
}

// seal refuses new connections and aborts dials in progress.
func (s *connSet) seal() {
	s.cancel()
	s.mu.Lock()
	if s.sealed {
		s.mu.Unlock()
		return
	}
	s.sealed = true
	done := len(s.m) == 0
	s.mu.Unlock()
	if done {
		close(s.empty)
	}
}

// closeAll seals the set and closes every connection.
func (s *connSet) closeAll() {
	s.seal()
	s.mu.Lock()
	all := make([]*trackedConn, 0, len(s.m))
	for tc := range s.m {
		all = append(all, tc)
	}
	s.mu.Unlock()
	for _, tc := range all {
		tc.Close()
	}
}

func (s *connSet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// trackedConn is a connection that leaves its set when closed.
type trackedConn struct {
	net.Conn
	set  *connSet
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.set.remove(c) })
	return err
}

// rueidisOptions turns a spec and the app's client config into rueidis
// options for an inner client; newRueidis sets the seed.
func (k *core) rueidisOptions(in *inner) rueidis.ClientOption {
	sp := in.spec
	opt := rueidis.ClientOption{}
	applyConfig(&opt, sp.cfg)
	if k.opts.RueidisOption != nil {
		k.opts.RueidisOption(&opt)
	}
	opt.Password = sp.password
	opt.ClientName = "r2m-" + k.id
	opt.DialCtxFn = in.conns.dial
	opt.DialFn = nil
	stats := &k.stats
	opt.OnInvalidations = func(ms []rueidis.RedisMessage) {
		stats.invalidations.Add(int64(max(len(ms), 1))) // nil: the whole cache was flushed
	}
	return opt
}

// applyConfig maps the app's client config onto rueidis options. Zero
// values keep rueidis's defaults.
func applyConfig(opt *rueidis.ClientOption, cfg meta.ClientConfig) {
	if cfg.PoolSize > 0 {
		opt.BlockingPoolSize = cfg.PoolSize
	}
	if cfg.DialTimeout > 0 {
		opt.Dialer.Timeout = time.Duration(cfg.DialTimeout)
	}
	// rueidis has one deadline for both directions: it bounds how long a
	// connection waits for replies and for writes, and paces its PINGs.
	if rw := max(cfg.ReadTimeout, cfg.WriteTimeout); rw > 0 {
		opt.ConnWriteTimeout = time.Duration(rw)
	}
	switch {
	case cfg.MaxRetries < 0:
		opt.DisableRetry = true
	case cfg.MaxRetries > 0:
		limit := cfg.MaxRetries
		opt.RetryDelay = func(attempts int, _ rueidis.Completed, _ error) time.Duration {
			if attempts > limit {
				return -1
			}
			// rueidis's own schedule: exponential from 2µs, at most 1s.
			return min(time.Second, time.Duration(1<<min(attempts, 20))*time.Microsecond)
		}
	}
	if cfg.ReadFromReplica {
		opt.SendToReplicas = func(cmd rueidis.Completed) bool { return cmd.IsReadOnly() }
	}
	opt.DisableCache = !cfg.ClientCache
	if cfg.ClientCacheBytes > 0 {
		opt.CacheSizeEachConn = int(cfg.ClientCacheBytes)
	}
}

// rueidisConfig is the part of a client config that rueidis takes, once, at
// construction: a change in it needs a new inner client.
func rueidisConfig(cfg meta.ClientConfig) meta.ClientConfig {
	cfg.HeartbeatInterval = 0 // the client's own business, not rueidis's
	return cfg
}

type buildResult struct {
	in  *inner
	err error
}

// startBuild builds an inner client on a goroutine, since rueidis dials
// without a context. The inner is registered with the core first, so Close
// finds it however far the build got. The result arrives on the returned
// channel, which has room for it: nobody has to read it.
func (k *core) startBuild(sp spec) (*inner, <-chan buildResult) {
	in := newInner(sp, &k.stats.openConns)
	res := make(chan buildResult, 1)
	if !k.track(in) {
		res <- buildResult{in, ErrClosed}
		return in, res
	}
	opt := k.rueidisOptions(in)
	go func() {
		defer k.wg.Done()
		rc, err := newRueidis(opt, sp.init, in)
		in.mu.Lock()
		abandoned := in.abandoned
		if err == nil && !abandoned {
			in.rc = rc
		}
		in.mu.Unlock()
		switch {
		case err != nil:
			in.conns.closeAll()
			err = fmt.Errorf("client: connect to cluster %s (%v): %w", sp.cluster, sp.init, err)
		case abandoned:
			rc.Close()
			in.conns.closeAll()
			err = ErrClosed
		}
		res <- buildResult{in, err}
	}()
	return in, res
}

// newRueidis builds a rueidis cluster client from the first seed, in random
// order, that works. One seed at a time, because given several, rueidis dials
// them all, returns with the first, and lets the other dials finish in the
// background; when one lands during its first topology refresh, the refresh
// closes the loser on a goroutine that sleeps five seconds first, which
// would outlive Close. Random order spreads many clients' first requests.
func newRueidis(opt rueidis.ClientOption, seeds []string, in *inner) (rueidis.Client, error) {
	seeds = slices.Clone(seeds)
	rand.Shuffle(len(seeds), func(i, j int) { seeds[i], seeds[j] = seeds[j], seeds[i] })
	var errs []error
	for _, seed := range seeds {
		opt.InitAddress = []string{seed}
		rc, err := rueidis.NewClient(opt)
		if err == nil {
			return rc, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", seed, err))
		if in.conns.ctx.Err() != nil {
			break // abandoned: do not try the others
		}
	}
	return nil, errors.Join(errs...)
}

// track adds an inner to the set Close closes, and counts the goroutine
// that builds it, unless Close has begun. Both happen under the lock that
// Close takes to begin, so Close's wait cannot miss the goroutine.
func (k *core) track(in *inner) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closing {
		return false
	}
	k.inners[in] = struct{}{}
	k.wg.Add(1)
	return true
}

func (k *core) untrack(in *inner) {
	k.mu.Lock()
	delete(k.inners, in)
	k.mu.Unlock()
}

// drain waits until the commands running on a replaced inner have finished
// (or DrainTimeout), then closes it. Close takes over if it begins first.
func (k *core) drain(old *inner) {
	old.startDrain()
	t := time.NewTimer(k.opts.DrainTimeout)
	defer t.Stop()
	select {
	case <-old.drained:
	case <-t.C:
		k.log.Warn("client: closing a replaced inner client with commands still running on it", "after", k.opts.DrainTimeout, "cluster", old.spec.cluster)
	case <-k.ctx.Done():
		return // Close closes every inner
	}
	// Not k.ctx: if Close begins meanwhile it waits for this close, which
	// must not be cut short by it.
	ctx, cancel := context.WithTimeout(context.Background(), k.opts.CloseTimeout)
	defer cancel()
	if err := old.close(ctx); err != nil {
		k.log.Warn("client: closing a replaced inner client", "err", err)
	}
	if k.ctx.Err() == nil {
		k.untrack(old)
	}
}
