package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"github.com/redis/rueidis/rueidiscompat"

	"github.com/r2m-go/r2m/coord"
	_ "github.com/r2m-go/r2m/coord/install" // zk:// and etcd:// work without another import
	"github.com/r2m-go/r2m/internal/backoff"
	"github.com/r2m-go/r2m/meta"
)

// Client is a connection to one app's active Redis Cluster, found through
// the coordinator. It is safe for concurrent use. Create it with [New] and
// release it with [Client.Close].
//
// Client holds nothing but a pointer to its internals, so that the runtime
// can tell when the application has dropped it: a Client that becomes
// unreachable without Close is closed by a cleanup, which logs where it was
// created (see the package documentation).
type Client struct {
	k       *core
	compat  rueidiscompat.Cmdable
	cleanup runtime.Cleanup
}

// core is everything a Client owns. Goroutines and the process-wide session
// refer to the core, never to the Client, so that an abandoned Client can
// be collected and its cleanup can close the core.
type core struct {
	opts    Options // with defaults
	id      string
	site    string // file:line of the New call
	created time.Time
	log     *slog.Logger

	// ctx lives as long as the client; Close cancels it, which stops the
	// control loop, drains and heartbeats.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the control loop, builds and drains

	sess     *session
	mb       *mailbox
	stopApp  func()
	stopTopo func()

	cur     atomic.Pointer[inner] // the inner client commands use; nil once Close began
	builder rueidis.Builder
	stats   counters
	events  *dispatcher
	metrics *collector // registered with opts.Registerer; nil without one

	// regLock serialises creating and deleting the registration record, so
	// that a registration can never land after Close deleted it (the seed
	// incident's second race). A channel, so that Close can give up waiting.
	regLock    chan struct{}
	registered bool // a record of ours may exist; guarded by regLock

	mu           sync.Mutex
	closing      bool
	inners       map[*inner]struct{} // every inner not yet closed
	applied      applied
	loopDone     chan struct{} // nil until the control loop starts
	teardownDone chan struct{} // closed when Close's work is done …
	teardownErr  error         // … with this result
	closeDone    chan struct{} // closed when Close has returned …
	closeErr     error         // … this

	testHook func(stage string)

	loop loopState // owned by the control loop (and by New before it starts)
}

// applied is what the client uses now, for Stats and the registration.
type applied struct {
	cluster string
	epoch   int64
	cfgVer  int64
}

// New connects to the app's active cluster and registers the client. It
// returns only once the client is usable: the app record and the cluster's
// topology have been read, the inner rueidis client is connected, and the
// registration record exists. If ctx ends first, everything New started is
// torn down before it returns, and the error wraps ctx's error. ctx bounds
// New only; the client's life ends with Close.
func New(ctx context.Context, opts Options) (_ *Client, err error) {
	site := "unknown"
	if _, file, line, ok := runtime.Caller(1); ok {
		site = fmt.Sprintf("%s:%d", file, line)
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	k := newCore(opts.withDefaults(), site)
	defer func() {
		if err != nil {
			err = fmt.Errorf("client: new client of app %s via %s: %w", k.opts.App, coord.Redact(k.opts.Coordinator), err)
			if cerr := k.close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
	}()
	if err := k.start(ctx); err != nil {
		return nil, err
	}
	if err := k.registerMetrics(); err != nil {
		return nil, err
	}
	c := &Client{k: k}
	c.compat = rueidiscompat.NewAdapter(view{c})
	c.cleanup = runtime.AddCleanup(c, (*core).leaked, k)
	return c, nil
}

func newCore(o Options, site string) *core {
	k := &core{
		opts: o, id: newID(), site: site, created: time.Now().UTC().Truncate(time.Millisecond),
		mb: newMailbox(), regLock: make(chan struct{}, 1), inners: make(map[*inner]struct{}),
		teardownDone: make(chan struct{}), closeDone: make(chan struct{}),
		testHook: o.testHook,
	}
	k.log = o.Logger.With("app", o.App, "client", k.id)
	k.ctx, k.cancel = context.WithCancel(context.Background())
	k.events = newDispatcher(o.OnEvent, k.log)
	return k
}

func (k *core) hook(stage string) {
	if k.testHook != nil {
		k.testHook(stage)
	}
}

// start does New's work in order. Each step checks ctx; the caller tears
// down whatever was done when it fails.
func (k *core) start(ctx context.Context) error {
	s, err := acquireSession(ctx, &k.opts)
	if err != nil {
		return err
	}
	k.sess = s
	// Subscribe before reading anything, so that no session event or record
	// change after the reads can be missed.
	s.subscribe(k.mb)
	k.hook("session")

	app, appVersion, err := s.store.App(k.opts.App).Get(ctx)
	if err != nil {
		return fmt.Errorf("read app record: %w", err)
	}
	k.loop.appVersion, k.loop.appSeen = appVersion, true
	if app.ActiveCluster == "" {
		return fmt.Errorf("%w: app record /apps/%s names no active cluster", ErrNoCluster, k.opts.App)
	}
	if _, k.stopApp, err = s.follow(kindApp, k.opts.App, k.mb); err != nil {
		return err
	}
	k.hook("app")

	sp, err := k.resolve(ctx, app.ActiveCluster)
	if err != nil {
		return err
	}
	sp.cfg, sp.cfgVer = app.Client, app.ConfigVersion
	if k.loop.topoPath, k.stopTopo, err = s.follow(kindTopology, sp.cluster, k.mb); err != nil {
		return err
	}
	k.hook("resolved")

	if err := ctx.Err(); err != nil {
		return err
	}
	in, built := k.startBuild(sp)
	select {
	case r := <-built:
		if r.err != nil {
			return r.err
		}
	case <-ctx.Done():
		return ctx.Err() // Close closes the inner, wherever its build is
	}
	k.builder = in.client().B()
	k.cur.Store(in)
	k.loop.want, k.loop.have = sp, sp
	k.setApplied(sp)
	k.hook("built")

	if err := k.registerUntil(ctx); err != nil {
		return err
	}
	k.hook("registered")
	// The registration may have finished after ctx ended (it is never cut
	// short, see createRecord): Close then deletes it.
	if err := ctx.Err(); err != nil {
		return err
	}

	k.mu.Lock()
	k.loopDone = make(chan struct{})
	k.wg.Add(1)
	k.mu.Unlock()
	go k.run()
	k.events.emit(Event{Type: EventRegistered, Cluster: sp.cluster, Epoch: sp.epoch, ConfigVersion: sp.cfgVer, SessionID: s.co.SessionID()})
	k.events.start()
	k.log.Debug("client: ready", "created_at", k.site, "spec", sp)
	return nil
}

// resolve reads what connecting to a cluster takes: its record, its
// password if it has one, and its topology.
func (k *core) resolve(ctx context.Context, cluster string) (spec, error) {
	st := k.sess.store
	cl, _, err := st.Cluster(cluster).Get(ctx)
	if err != nil {
		return spec{}, fmt.Errorf("read cluster record of %s: %w", cluster, err)
	}
	sp := spec{cluster: cluster}
	if cl.HasPassword {
		cr, _, err := st.Credentials(cluster).Get(ctx)
		if err != nil {
			return spec{}, fmt.Errorf("read credentials of cluster %s: %w", cluster, err)
		}
		sp.password = cr.Password
	}
	tp, _, err := st.Topology(cluster).Get(ctx)
	if err != nil {
		return spec{}, fmt.Errorf("read topology of cluster %s: %w", cluster, err)
	}
	sp.epoch = tp.Epoch
	sp.nodes, sp.init = topologyAddrs(tp)
	if len(sp.nodes) == 0 {
		return spec{}, fmt.Errorf("%w: topology of cluster %s (epoch %d) lists no nodes", ErrNoCluster, cluster, tp.Epoch)
	}
	return sp, nil
}

// topologyAddrs returns every node address, sorted, and the seeds for
// rueidis: the masters not known to have failed. Seeds are dialled at once,
// the other nodes only when rueidis needs them; masters suffice because
// every node knows the whole cluster.
func topologyAddrs(tp *meta.Topology) (nodes, init []string) {
	seen := make(map[string]bool)
	for _, n := range tp.Nodes {
		if n.Addr == "" || seen[n.Addr] {
			continue
		}
		seen[n.Addr] = true
		nodes = append(nodes, n.Addr)
		if n.Role == meta.RoleMaster && n.Health != meta.HealthFail {
			init = append(init, n.Addr)
		}
	}
	slices.Sort(nodes)
	slices.Sort(init)
	if len(init) == 0 {
		init = slices.Clone(nodes)
	}
	return nodes, init
}

func (k *core) setApplied(sp spec) {
	k.mu.Lock()
	k.applied = applied{cluster: sp.cluster, epoch: sp.epoch, cfgVer: sp.cfgVer}
	k.mu.Unlock()
}

func (k *core) appliedNow() applied {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.applied
}

// ID returns the client's id, the name of its registration record
// (/apps/{app}/clients/{id}).
func (c *Client) ID() string { return c.k.id }

// App returns the app the client serves.
func (c *Client) App() string { return c.k.opts.App }

// Stats returns a snapshot of the client's counters.
func (c *Client) Stats() Stats {
	k := c.k
	a := k.appliedNow()
	var calls int64
	for i := range k.stats.hist {
		calls += int64(k.stats.hist[i].Load())
	}
	return Stats{
		Commands:      calls + k.stats.extra.Load(),
		Errors:        k.stats.errors.Load(),
		CacheHits:     k.stats.cacheHits.Load(),
		Invalidations: k.stats.invalidations.Load(),
		OpenConns:     int(k.stats.openConns.Load()),
		Rebuilds:      k.stats.rebuilds.Load(),
		Cluster:       a.cluster,
		Epoch:         a.epoch,
		ConfigVersion: a.cfgVer,
	}
}

// registerUntil creates the registration record, retrying while the session
// is being replaced or the coordinator is briefly unreachable, until ctx
// ends.
func (k *core) registerUntil(ctx context.Context) error {
	bo := backoff.Backoff{Min: 20 * time.Millisecond, Max: time.Second}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := k.createRecord()
		if err == nil {
			return nil
		}
		// Retry what can change: a session being replaced, a coordinator
		// briefly unreachable or slow, a record left by an expired session
		// of ours that the server is about to delete.
		if !errors.Is(err, coord.ErrSessionExpired) && !errors.Is(err, coord.ErrUnavailable) &&
			!errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, coord.ErrExists) {
			return err
		}
		k.log.Debug("client: registration failed; retrying", "err", err)
		if err := bo.Wait(ctx); err != nil {
			return err
		}
	}
}
