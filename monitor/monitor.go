package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/r2m-go/r2m/meta"
)

// Monitor collects metrics from every cluster's nodes, keeps their
// history, exports them to Prometheus and evaluates alert rules. Create it
// with [New]; run collection with [Monitor.Run] on the leading server only;
// serve [Monitor.MetricsHandler] and the API methods on every server;
// release it with [Monitor.Close].
type Monitor struct {
	cfg     Config
	log     *slog.Logger
	hist    *history
	metrics *metricsSet
	alerts  alerter
	cache   targetCache

	// ctx lives as long as the Monitor; Close cancels it, which ends a
	// running Run.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	running bool
	runDone chan struct{} // closed when the current Run has returned
	pub     published
}

// New checks cfg, fills in defaults and opens the history database in
// cfg.DataDir. It talks to no Redis node and no coordinator; Run does.
func New(cfg Config) (*Monitor, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	hist, err := openHistory(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	m := &Monitor{cfg: cfg, log: cfg.Logger.With("component", "monitor"), hist: hist}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.metrics = newMetrics(m)
	return m, nil
}

// Interval returns the collection interval in effect.
func (m *Monitor) Interval() time.Duration { return m.cfg.Interval }

func (m *Monitor) checkOpen() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	return nil
}

func (m *Monitor) isRunning() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.running
}

// closeWait bounds how long Close waits for a running Run to stop.
const closeWait = 15 * time.Second

// Close ends a running Run, waits for it (at most 15s), and closes the
// history database. It is idempotent; calls after the first return nil.
func (m *Monitor) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	done := m.runDone
	running := m.running
	m.mu.Unlock()
	m.cancel()
	var errs []error
	if running {
		select {
		case <-done:
		case <-time.After(closeWait):
			errs = append(errs, fmt.Errorf("monitor: close: Run still running %v after cancel", closeWait))
		}
	}
	if err := m.hist.close(); err != nil {
		errs = append(errs, fmt.Errorf("monitor: close history: %w", err))
	}
	return errors.Join(errs...)
}

// Run collects, stores and evaluates alerts every interval until ctx ends
// (or Close is called), then stops every goroutine it started, closes its
// node connections and returns nil. Only the leading server should run
// it: call it from the leader's duties with the leadership context. A
// second concurrent Run fails with ErrRunning; Run after Close fails with
// ErrClosed.
//
// Passes never overlap: a pass that takes longer than the interval (many
// slow nodes) delays the next one instead of piling up.
func (m *Monitor) Run(ctx context.Context) error {
	m.mu.Lock()
	switch {
	case m.closed:
		m.mu.Unlock()
		return ErrClosed
	case m.running:
		m.mu.Unlock()
		return ErrRunning
	}
	m.running = true
	done := make(chan struct{})
	m.runDone = done
	m.pub.alerts = true
	m.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(m.ctx, cancel)
	defer stop()

	m.log.Info("monitor started", "interval", m.cfg.Interval, "node_timeout", m.cfg.NodeTimeout)
	m.metrics.collecting.Set(1)
	r := m.newRunner()
	defer func() {
		m.log.Info("stopping monitor")
		r.close()
		// What the head holds is written now, not when this server
		// leads again or closes.
		fctx, fcancel := context.WithTimeout(context.Background(), closeWait)
		if err := m.hist.writeHead(fctx); err != nil {
			m.metrics.errors.WithLabelValues("history").Inc()
			m.log.Error("monitor: writing the history head", "err", err)
		}
		fcancel()
		m.alerts.reset()
		m.metrics.collecting.Set(0)
		m.mu.Lock()
		m.running = false
		m.pub = published{} // stale node metrics must not outlive leadership
		close(done)
		m.mu.Unlock()
		m.log.Info("monitor stopped")
	}()

	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		r.pass(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// runner holds what lives for one Run: node connections, the memory
// needed for rates, and the notifier.
type runner struct {
	m    *Monitor
	pool *nodePool
	d    *deriver
	n    *notifier
}

func (m *Monitor) newRunner() *runner {
	return &runner{m: m, pool: newNodePool(m.cfg.NodeTimeout), d: newDeriver(&m.cfg), n: newNotifier(m)}
}

// close stops the notifier (letting queued notifications go out within
// NotifyTimeout) and closes every node connection.
func (r *runner) close() {
	r.n.stop()
	r.pool.close()
}

// coordTimeout bounds the coordinator reads of one pass.
func (m *Monitor) coordTimeout() time.Duration { return max(m.cfg.Interval, 5*time.Second) }

// pass is one collection pass: read what to poll, poll every node with
// bounded concurrency, derive values, store them, evaluate alerts, and
// publish the snapshot for /metrics. It returns the snapshot and the alert
// events it produced.
func (r *runner) pass(ctx context.Context) (*snapshot, []AlertEvent) {
	m := r.m
	start := time.Now()
	now := m.cfg.Now()
	cctx, cancel := context.WithTimeout(ctx, m.coordTimeout())
	defer cancel()

	clusters, err := m.readClusters(cctx)
	if err != nil && ctx.Err() == nil {
		m.metrics.errors.WithLabelValues("coordinator").Inc()
		m.log.Warn("monitor: reading clusters", "err", err)
	}

	// Poll every node while the apps and operations are read.
	type job struct {
		key, addr, password string
	}
	var jobs []job
	keep := map[string]bool{}
	for _, t := range clusters {
		for _, n := range t.nodes {
			jobs = append(jobs, job{nodeKey(t.name, n.Addr), n.Addr, t.password})
			keep[n.Addr] = true
		}
	}
	r.pool.retain(keep)
	polls := make(map[string]*nodePoll, len(jobs))
	var pollMu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, m.cfg.Concurrency)
	wg.Go(func() {
		for _, j := range jobs {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Go(func() {
				defer func() { <-sem }()
				p := r.pool.poll(ctx, j.addr, j.password)
				pollMu.Lock()
				polls[j.key] = p
				pollMu.Unlock()
			})
		}
	})
	apps, aerr := m.readApps(cctx, true)
	ops, oerr := m.readOps(cctx)
	wg.Wait()
	for _, e := range []error{aerr, oerr} {
		if e != nil && ctx.Err() == nil {
			m.metrics.errors.WithLabelValues("coordinator").Inc()
			m.log.Warn("monitor: reading the coordinator", "err", e)
		}
	}
	if ctx.Err() != nil {
		return nil, nil
	}

	snap := &snapshot{at: now, latency: map[string][]latencyEvent{}, clusters: map[string]*meta.Cluster{}, appsRead: aerr == nil}
	snap.ops = ops // nil when the operations could not be listed
	var ok, failed int
	for _, t := range clusters {
		snap.clusters[t.name] = t.rec
		var nodes []*subject
		var hits, misses float64
		hitsOK := true
		for _, n := range t.nodes {
			p := polls[nodeKey(t.name, n.Addr)]
			if p == nil { // not polled: the pass was cut short
				continue
			}
			sub, h, mi, dok := r.d.node(now, t.name, n, p)
			if p.err == nil {
				ok++
				hits, misses = hits+h, misses+mi
				hitsOK = hitsOK && dok
				snap.latency[sub.key] = p.latency
			} else {
				failed++
			}
			nodes = append(nodes, sub)
		}
		replication(nodes, polls)
		snap.subjects = append(snap.subjects, nodes...)
		snap.subjects = append(snap.subjects, clusterSubject(t, nodes, polls, hits, misses, hitsOK))
	}
	// The apps that could be read, even when others could not; alerts of
	// the others are held (snapshot.appsRead).
	for _, a := range apps {
		sub, clients := r.d.app(now, a)
		snap.subjects = append(snap.subjects, sub)
		snap.subjects = append(snap.subjects, clients...)
	}
	r.d.forget(snap.subjects, aerr == nil)

	// History.
	ws := time.Now()
	if err := m.hist.write(ctx, now, pointsOf(snap)); err != nil && ctx.Err() == nil {
		m.metrics.errors.WithLabelValues("history").Inc()
		m.log.Error("monitor: storing history", "err", err)
	}
	m.metrics.historyWrite.Observe(time.Since(ws).Seconds())

	// Alerts.
	events := r.evaluate(ctx, cctx, snap)

	if err := m.hist.maintain(ctx, now, m.cfg.RawRetention, m.cfg.MinuteRetention, m.cfg.AlertRetention); err != nil && ctx.Err() == nil {
		m.metrics.errors.WithLabelValues("history").Inc()
		m.log.Error("monitor: history block write and retention", "err", err)
	}

	m.mu.Lock()
	m.pub.snap, m.pub.apps, m.pub.ops = snap, apps, snap.ops
	m.mu.Unlock()
	d := time.Since(start)
	m.metrics.passDuration.Observe(d.Seconds())
	m.metrics.passes.Inc()
	m.metrics.passNodes.WithLabelValues("ok").Set(float64(ok))
	m.metrics.passNodes.WithLabelValues("failed").Set(float64(failed))
	m.metrics.lastPass.Set(float64(time.Now().UnixNano()) / 1e9)
	if failed > 0 {
		m.log.Debug("monitor pass", "duration", d, "nodes_ok", ok, "nodes_failed", failed)
	}
	return snap, events
}

// evaluate applies the alert rules to a snapshot, records the events and
// hands them to the notifier, and saves the firing set when it changed.
func (r *runner) evaluate(ctx, cctx context.Context, snap *snapshot) []AlertEvent {
	m := r.m
	a := &m.alerts
	a.mu.Lock()
	loaded := a.loaded
	a.mu.Unlock()
	if !loaded {
		// Without the previous leader's state, alerts it already notified
		// would be notified again: skip alerting until it is read.
		if err := a.load(cctx, m.cfg.Store); err != nil {
			m.metrics.errors.WithLabelValues("alerts").Inc()
			m.log.Warn("monitor: alerts wait for the alert state", "err", err)
			return nil
		}
	}
	rules, err := loadRules(cctx, m.cfg.Store)
	if err != nil {
		m.metrics.errors.WithLabelValues("coordinator").Inc()
		m.log.Warn("monitor: reading alert rules", "err", err)
		a.mu.Lock()
		if a.rules != nil && rules == nil {
			rules = a.rules // the last good set
		}
		a.mu.Unlock()
		if rules == nil {
			rules = DefaultRules()
		}
	}
	a.mu.Lock()
	a.rules = rules
	a.mu.Unlock()
	events := a.evaluate(snap.at, snap, rules, m.cfg.RepeatInterval)
	if len(events) > 0 {
		if err := m.hist.insertEvents(ctx, events); err != nil {
			m.metrics.errors.WithLabelValues("history").Inc()
			m.log.Error("monitor: recording alert events", "err", err)
		}
		for _, e := range events {
			m.metrics.events.WithLabelValues(e.Rule, e.Kind).Inc()
			m.log.Info("alert", "kind", e.Kind, "rule", e.Rule, "severity", e.Severity, "summary", e.Summary)
		}
		r.n.enqueue(events)
	}
	if err := a.save(cctx, m.cfg.Store, m.cfg.ServerID, snap.at); err != nil {
		m.metrics.errors.WithLabelValues("alerts").Inc()
		m.log.Warn("monitor: saving alert state", "err", err)
	}
	return events
}
