package manager

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/r2m-go/r2m/cluster"
	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/meta"
)

// engines keeps one cluster.Engine per cluster and password, so node
// connections are reused across requests and operations.
type engines struct {
	mu sync.Mutex
	m  map[string]*engineEntry
}

type engineEntry struct {
	password string
	eng      *cluster.Engine
}

// engine returns the engine for a cluster, with the cluster's current
// password.
func (s *Server) engine(ctx context.Context, name string) (*cluster.Engine, error) {
	password, err := s.password(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.engineWithPassword(name, password), nil
}

func (s *Server) engineWithPassword(name, password string) *cluster.Engine {
	s.engines.mu.Lock()
	defer s.engines.mu.Unlock()
	if s.engines.m == nil {
		s.engines.m = make(map[string]*engineEntry)
	}
	if e := s.engines.m[name]; e != nil && e.password == password {
		return e.eng
	}
	if old := s.engines.m[name]; old != nil {
		go old.eng.Close() // in-flight users finish with errors they retry
	}
	e := &engineEntry{password: password, eng: cluster.New(cluster.Config{Password: password, Logger: s.log.With("cluster", name)})}
	s.engines.m[name] = e
	return e.eng
}

// closeEngines closes every engine; Run calls it on the way out.
func (s *Server) closeEngines() {
	s.engines.mu.Lock()
	m := s.engines.m
	s.engines.m = nil
	s.engines.mu.Unlock()
	for _, e := range m {
		e.eng.Close()
	}
}

// password reads a cluster's Redis password ("" when it has none).
func (s *Server) password(ctx context.Context, name string) (string, error) {
	c, _, err := s.store.Cluster(name).Get(ctx)
	if err != nil {
		return "", err
	}
	if !c.HasPassword {
		return "", nil
	}
	cred, _, err := s.store.Credentials(name).Get(ctx)
	if err != nil {
		return "", fmt.Errorf("cluster %s: read credentials: %w", name, err)
	}
	return cred.Password, nil
}

// seeds returns the addresses to reach a cluster by: its masters first.
func (s *Server) seeds(ctx context.Context, name string) ([]string, error) {
	t, _, err := s.store.Topology(name).Get(ctx)
	if errors.Is(err, coord.ErrNotFound) {
		return nil, fmt.Errorf("cluster %s has no topology yet", name)
	}
	if err != nil {
		return nil, err
	}
	var masters, others []string
	for _, n := range t.Nodes {
		if n.Role == meta.RoleMaster && n.Health != meta.HealthFail {
			masters = append(masters, n.Addr)
		} else {
			others = append(others, n.Addr)
		}
	}
	return append(masters, others...), nil
}

// inspect reads a cluster's view from the first seed that answers.
func (s *Server) inspect(ctx context.Context, name string) (*cluster.Engine, *cluster.View, error) {
	eng, err := s.engine(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	seeds, err := s.seeds(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	var errs []error
	for _, seed := range seeds {
		v, err := eng.Inspect(ctx, seed)
		if err == nil {
			return eng, v, nil
		}
		errs = append(errs, err)
	}
	return nil, nil, fmt.Errorf("cluster %s: no node answered: %w", name, errors.Join(errs...))
}

// checkCluster runs the check and returns the findings that matter (warning
// and worse); none means the cluster is clean.
func (s *Server) checkCluster(ctx context.Context, name string) ([]string, error) {
	_, v, err := s.inspect(ctx, name)
	if err != nil {
		return nil, err
	}
	c, _, err := s.store.Cluster(name).Get(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range cluster.Analyze(v) {
		if significant(c, f) {
			out = append(out, f.String())
		}
	}
	return out, nil
}

// significant reports whether a finding makes a cluster unclean: anything
// of warning severity or worse, except masters without replicas in a
// cluster that was built without them.
func significant(c *meta.Cluster, f cluster.Finding) bool {
	if f.Kind == cluster.FindReplicas && c.ReplicasPerMaster == 0 {
		return false
	}
	return f.Severity >= cluster.SevWarning
}

// settleTime bounds how long the check after an operation waits for the
// nodes to agree. Gossip carries a new slot owner or role to every node
// within a few heartbeats; disagreement that outlasts this is a finding.
const settleTime = 30 * time.Second

// settledCheck is checkCluster repeated until the cluster is clean or
// settleTime passes, and returns the last findings.
func (s *Server) settledCheck(ctx context.Context, name string) ([]string, error) {
	deadline := time.Now().Add(settleTime)
	for {
		f, err := s.checkCluster(ctx, name)
		if (err == nil && len(f) == 0) || time.Now().After(deadline) {
			return f, err
		}
		select {
		case <-ctx.Done():
			return f, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// topologyFromView turns an engine view into the topology record's nodes,
// sorted by address so that equal topologies compare equal.
func topologyFromView(v *cluster.View, hostOf func(addr string) string, dc string) []meta.Node {
	var out []meta.Node
	for _, n := range v.Nodes {
		if n.Addr == "" {
			continue
		}
		mn := meta.Node{ID: n.ID, Addr: n.Addr, Host: hostOf(n.Addr), DC: dc, Health: meta.HealthOK}
		if n.IsMaster() {
			mn.Role = meta.RoleMaster
		} else {
			mn.Role, mn.MasterID = meta.RoleReplica, n.MasterID
		}
		for _, r := range n.Slots {
			mn.Slots = append(mn.Slots, meta.SlotRange{Start: r.Start, End: r.End})
		}
		switch {
		case !n.Reachable:
			mn.Health = meta.HealthUnknown
		case n.Has("fail"):
			mn.Health = meta.HealthFail
		case n.Has("fail?"):
			mn.Health = meta.HealthPFail
		}
		out = append(out, mn)
	}
	slices.SortFunc(out, func(a, b meta.Node) int {
		if a.Addr < b.Addr {
			return -1
		}
		if a.Addr > b.Addr {
			return 1
		}
		return 0
	})
	return out
}

// observe reads a cluster from Redis and writes its topology record when
// anything changed, raising the epoch. Clients follow the record.
func (s *Server) observe(ctx context.Context, name string) error {
	_, v, err := s.inspect(ctx, name)
	if err != nil {
		return err
	}
	return s.writeTopology(ctx, name, v)
}

func (s *Server) writeTopology(ctx context.Context, name string, v *cluster.View) error {
	c, _, err := s.store.Cluster(name).Get(ctx)
	if err != nil {
		return err
	}
	hosts := s.hostMap(ctx)
	nodes := topologyFromView(v, func(addr string) string { return hosts[addr] }, c.Datacenter)
	_, _, err = s.store.Topology(name).Upsert(ctx, func(t *meta.Topology) error {
		if slices.EqualFunc(t.Nodes, nodes, nodeEqual) {
			return errUnchanged
		}
		t.Cluster, t.Nodes, t.UpdatedAt = name, nodes, time.Now().UTC()
		t.Epoch++
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return nil
	}
	return err
}

var errUnchanged = errors.New("unchanged")

func nodeEqual(a, b meta.Node) bool {
	return a.ID == b.ID && a.Addr == b.Addr && a.Host == b.Host && a.Role == b.Role &&
		a.MasterID == b.MasterID && a.DC == b.DC && a.Health == b.Health && slices.Equal(a.Slots, b.Slots)
}

// hostMap maps instance addresses to the agent hosts that run them.
func (s *Server) hostMap(ctx context.Context) map[string]string {
	out := make(map[string]string)
	hosts, err := s.store.Agents().Names(ctx)
	if err != nil {
		return out
	}
	for _, h := range hosts {
		a, _, err := s.store.Agent(h).Get(ctx)
		if err != nil {
			continue
		}
		d, _, err := s.store.Desired(h).Get(ctx)
		if err != nil {
			continue
		}
		for _, in := range d.Instances {
			out[fmt.Sprintf("%s:%d", a.Addr, in.Port)] = h
		}
	}
	return out
}

// runObserver keeps every cluster's topology record current until ctx
// ends: on an interval, and at once when an operation asks (observeSoon).
func (s *Server) runObserver(ctx context.Context) {
	t := time.NewTicker(s.cfg.ObserveInterval)
	defer t.Stop()
	for {
		names, err := s.store.Clusters().Names(ctx)
		if err == nil {
			for _, name := range names {
				c, _, err := s.store.Cluster(name).Get(ctx)
				if err != nil || c.State == meta.ClusterCreating || c.State == meta.ClusterDeleting {
					continue
				}
				octx, cancel := context.WithTimeout(ctx, s.cfg.ObserveInterval+10*time.Second)
				if err := s.observe(octx, name); err != nil && ctx.Err() == nil {
					s.log.Warn("topology observer", "cluster", name, "err", err)
				}
				cancel()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.observeCh:
		}
	}
}

// observeSoon asks the observer for a pass now (after an operation step).
func (s *Server) observeSoon() {
	select {
	case s.observeCh <- struct{}{}:
	default:
	}
}

// timeAfter is time.After in milliseconds, for short polling waits on
// state that offers no notification (agent reports).
func timeAfter(ms int) <-chan time.Time { return time.After(time.Duration(ms) * time.Millisecond) }

// reachableMaster returns the address of a master that answered in v,
// other than the node except (an ID, or ""), or "" if there is none.
func reachableMaster(v *cluster.View, except string) string {
	for _, n := range v.Masters() {
		if n.Reachable && n.ID != except {
			return n.Addr
		}
	}
	return ""
}
