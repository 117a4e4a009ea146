package monitor

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/meta"
)

// clusterTarget is a cluster to poll, as the coordinator describes it.
type clusterTarget struct {
	name     string
	rec      *meta.Cluster
	password string
	nodes    []meta.Node
}

// appTarget is an app and its live client registrations.
type appTarget struct {
	name    string
	cluster string
	count   int
	clients []*meta.Client // nil when only the count was read
}

type opKey struct{ typ, state string }

// targetCache keeps the last good reads, so monitoring goes on while the
// coordinator is unreachable, and remembers finished operations, which
// never change, so they are read once.
type targetCache struct {
	mu       sync.Mutex
	clusters map[string]*clusterTarget
	doneOps  map[string]opKey
}

// readClusters reads every cluster that should be polled: all but those
// being created or deleted. A cluster that cannot be read keeps its last
// good description.
func (m *Monitor) readClusters(ctx context.Context) ([]*clusterTarget, error) {
	st := m.cfg.Store
	m.cache.mu.Lock()
	defer m.cache.mu.Unlock()
	if m.cache.clusters == nil {
		m.cache.clusters = make(map[string]*clusterTarget)
	}
	names, err := st.Clusters().Names(ctx)
	if err != nil {
		out := make([]*clusterTarget, 0, len(m.cache.clusters))
		for _, t := range m.cache.clusters {
			out = append(out, t)
		}
		sortTargets(out)
		return out, fmt.Errorf("list clusters (polling the last known %d): %w", len(out), err)
	}
	var errs []error
	seen := make(map[string]bool, len(names))
	out := make([]*clusterTarget, 0, len(names))
	for _, name := range names {
		seen[name] = true
		t, err := m.readCluster(ctx, name)
		switch {
		case err == nil && t == nil: // not to be polled
			delete(m.cache.clusters, name)
			continue
		case err != nil:
			errs = append(errs, err)
			if t = m.cache.clusters[name]; t == nil {
				continue
			}
		default:
			m.cache.clusters[name] = t
		}
		out = append(out, t)
	}
	for name := range m.cache.clusters {
		if !seen[name] {
			delete(m.cache.clusters, name)
		}
	}
	return out, errors.Join(errs...)
}

// readCluster returns nil, nil for a cluster that is not to be polled.
func (m *Monitor) readCluster(ctx context.Context, name string) (*clusterTarget, error) {
	st := m.cfg.Store
	c, _, err := st.Cluster(name).Get(ctx)
	if errors.Is(err, coord.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	if c.State == meta.ClusterCreating || c.State == meta.ClusterDeleting {
		return nil, nil
	}
	topo, _, err := st.Topology(name).Get(ctx)
	if errors.Is(err, coord.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cluster %s: topology: %w", name, err)
	}
	t := &clusterTarget{name: name, rec: c, nodes: topo.Nodes}
	if c.HasPassword {
		cred, _, err := st.Credentials(name).Get(ctx)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: credentials: %w", name, err)
		}
		t.password = cred.Password
	}
	return t, nil
}

func sortTargets(ts []*clusterTarget) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && ts[j].name < ts[j-1].name; j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
}

// readApps reads every app and its registrations: the records themselves
// when withClients is set (the leader's pass, for zombie and rising
// detection), only their number otherwise (a follower's /metrics).
func (m *Monitor) readApps(ctx context.Context, withClients bool) ([]*appTarget, error) {
	st := m.cfg.Store
	names, err := st.Apps().Names(ctx)
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	var errs []error
	out := make([]*appTarget, 0, len(names))
	for _, name := range names {
		a, _, err := st.App(name).Get(ctx)
		if errors.Is(err, coord.ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("app %s: %w", name, err))
			continue
		}
		ids, err := st.Clients(name).Names(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("app %s: clients: %w", name, err))
			continue
		}
		t := &appTarget{name: name, cluster: a.ActiveCluster, count: len(ids)}
		if withClients {
			t.clients = m.readClients(ctx, name, ids)
		}
		out = append(out, t)
	}
	return out, errors.Join(errs...)
}

// clientReadConcurrency bounds parallel reads of registration records.
const clientReadConcurrency = 8

// readClients reads registration records; those that vanish meanwhile (a
// client that closed) or cannot be read are left out.
func (m *Monitor) readClients(ctx context.Context, app string, ids []string) []*meta.Client {
	recs := make([]*meta.Client, len(ids))
	sem := make(chan struct{}, clientReadConcurrency)
	var wg sync.WaitGroup
	for i, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if c, _, err := m.cfg.Store.Client(app, id).Get(ctx); err == nil {
				recs[i] = c
			}
		})
	}
	wg.Wait()
	out := recs[:0]
	for _, c := range recs {
		if c != nil {
			out = append(out, c)
		}
	}
	return out
}

// readOps counts operations by type and state. Finished operations never
// change, so each is read once.
func (m *Monitor) readOps(ctx context.Context) (map[opKey]int, error) {
	st := m.cfg.Store
	ids, err := st.Ops().Names(ctx)
	if err != nil {
		return nil, fmt.Errorf("list operations: %w", err)
	}
	m.cache.mu.Lock()
	if m.cache.doneOps == nil {
		m.cache.doneOps = make(map[string]opKey)
	}
	m.cache.mu.Unlock()
	counts := make(map[opKey]int)
	live := make(map[string]bool, len(ids))
	var errs []error
	for _, id := range ids {
		live[id] = true
		m.cache.mu.Lock()
		k, done := m.cache.doneOps[id]
		m.cache.mu.Unlock()
		if !done {
			op, _, err := st.Op(id).Get(ctx)
			if errors.Is(err, coord.ErrNotFound) {
				continue
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("operation %s: %w", id, err))
				continue
			}
			k = opKey{op.Type, string(op.State)}
			if op.State.Done() {
				m.cache.mu.Lock()
				m.cache.doneOps[id] = k
				m.cache.mu.Unlock()
			}
		}
		counts[k]++
	}
	m.cache.mu.Lock()
	for id := range m.cache.doneOps {
		if !live[id] {
			delete(m.cache.doneOps, id)
		}
	}
	m.cache.mu.Unlock()
	return counts, errors.Join(errs...)
}
