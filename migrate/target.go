package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// nodes keeps one pipelined connection per Redis node of a deployment.
type nodes struct {
	ep   Endpoint
	name string // client name shown in CLIENT LIST

	mu      sync.Mutex
	clients map[string]rueidis.Client
	closed  bool
}

func newNodes(ep Endpoint, name string) *nodes {
	return &nodes{ep: ep, name: name, clients: map[string]rueidis.Client{}}
}

func (n *nodes) client(addr string) (rueidis.Client, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	if c := n.clients[addr]; c != nil {
		return c, nil
	}
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:       []string{addr},
		Username:          n.ep.Username,
		Password:          n.ep.Password,
		ForceSingleClient: true,
		DisableCache:      true,
		DisableRetry:      true,
		AlwaysRESP2:       true,
		Dialer:            net.Dialer{Timeout: 5 * time.Second},
		ConnWriteTimeout:  30 * time.Second,
		ClientName:        n.name,
	})
	if err != nil {
		return nil, fmt.Errorf("migrate: connect %s: %w", addr, err)
	}
	n.clients[addr] = c
	return c, nil
}

// drop forgets addr's client after a transport error so the next use dials
// again.
func (n *nodes) drop(addr string) {
	n.mu.Lock()
	c := n.clients[addr]
	delete(n.clients, addr)
	n.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

func (n *nodes) close() {
	n.mu.Lock()
	cs := n.clients
	n.clients, n.closed = nil, true
	n.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}

// do runs one command on addr.
func (n *nodes) do(ctx context.Context, addr string, args ...string) rueidis.RedisResult {
	c, err := n.client(addr)
	if err != nil {
		return rueidis.NewErrorResult(err)
	}
	return c.Do(ctx, c.B().Arbitrary(args...).Build())
}

// clusterMaster is one master of a cluster and its slots.
type clusterMaster struct {
	ID    string
	Addr  string
	Slots []SlotRange
}

// clusterMasters reads CLUSTER SLOTS from the first seed that answers and
// returns the masters in slot order. It returns ok=false for a server that
// is not in cluster mode.
func clusterMasters(ctx context.Context, n *nodes, seeds []string) (masters []clusterMaster, ok bool, err error) {
	var errs []error
	for _, addr := range seeds {
		res, err := n.do(ctx, addr, "CLUSTER", "SLOTS").ToArray()
		if err != nil {
			if re, isRe := rueidis.IsRedisErr(err); isRe && strings.Contains(re.Error(), "cluster support disabled") {
				return nil, false, nil
			}
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			n.drop(addr)
			continue
		}
		byID := map[string]*clusterMaster{}
		var order []string
		for _, e := range res {
			f, err := e.ToArray()
			if err != nil || len(f) < 3 {
				continue
			}
			start, _ := f[0].AsInt64()
			end, _ := f[1].AsInt64()
			nd, err := f[2].ToArray()
			if err != nil || len(nd) < 3 {
				continue
			}
			host, _ := nd[0].ToString()
			port, _ := nd[1].AsInt64()
			id, _ := nd[2].ToString()
			if host == "" {
				host, _, _ = net.SplitHostPort(addr)
			}
			m := byID[id]
			if m == nil {
				m = &clusterMaster{ID: id, Addr: net.JoinHostPort(host, strconv.FormatInt(port, 10))}
				byID[id] = m
				order = append(order, id)
			}
			m.Slots = append(m.Slots, SlotRange{Start: int(start), End: int(end)})
		}
		for _, id := range order {
			masters = append(masters, *byID[id])
		}
		sortMasters(masters)
		return masters, true, nil
	}
	return nil, false, fmt.Errorf("%w: no node answered CLUSTER SLOTS: %w", ErrTopology, errors.Join(errs...))
}

func sortMasters(ms []clusterMaster) {
	for _, m := range ms {
		sortRanges(m.Slots)
	}
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].Slots[0].Start < ms[j-1].Slots[0].Start; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

func sortRanges(rs []SlotRange) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].Start < rs[j-1].Start; j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

// target is the target cluster: its slot map and a connection per node.
type target struct {
	*nodes
	log   *slog.Logger
	seeds []string

	mu      sync.RWMutex
	owner   [numSlots]string // master address per slot
	masters []string
	version int // RDB version the target reads

	refreshMu sync.Mutex
	refreshed time.Time
}

func newTarget(ctx context.Context, ep Endpoint, log *slog.Logger) (*target, error) {
	t := &target{nodes: newNodes(ep, "r2m-migrate"), log: log, seeds: ep.Addrs}
	if err := t.refresh(ctx, true); err != nil {
		t.close()
		return nil, err
	}
	info, err := t.do(ctx, t.masters[0], "INFO", "server").ToString()
	if err != nil {
		t.close()
		return nil, fmt.Errorf("migrate: target INFO: %w", err)
	}
	t.version = rdbVersionOf(infoField(info, "redis_version"))
	return t, nil
}

// refresh re-reads the slot map; unless force, at most every 100 ms.
func (t *target) refresh(ctx context.Context, force bool) error {
	t.refreshMu.Lock()
	defer t.refreshMu.Unlock()
	if !force && time.Since(t.refreshed) < 100*time.Millisecond {
		return nil
	}
	t.mu.RLock()
	seeds := append(append([]string{}, t.masters...), t.seeds...)
	t.mu.RUnlock()
	ms, ok, err := clusterMasters(ctx, t.nodes, seeds)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: the target is not a Redis Cluster (cluster support disabled)", ErrTopology)
	}
	var owner [numSlots]string
	var addrs []string
	for _, m := range ms {
		addrs = append(addrs, m.Addr)
		for _, r := range m.Slots {
			for s := r.Start; s <= r.End && s < numSlots; s++ {
				owner[s] = m.Addr
			}
		}
	}
	for s, a := range owner {
		if a == "" {
			return fmt.Errorf("%w: target slot %d has no master", ErrTopology, s)
		}
	}
	t.mu.Lock()
	t.owner, t.masters = owner, addrs
	t.mu.Unlock()
	t.refreshed = time.Now()
	return nil
}

func (t *target) ownerOf(slot int) string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.owner[slot]
}

func (t *target) masterAddrs() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return append([]string(nil), t.masters...)
}

// broadcast runs args on every master, retrying transport errors.
func (t *target) broadcast(ctx context.Context, args ...string) error {
	var errs []error
	for _, addr := range t.masterAddrs() {
		if err := t.do(ctx, addr, args...).Error(); err != nil {
			errs = append(errs, fmt.Errorf("%s on %s: %w", args[0], addr, err))
		}
	}
	return errors.Join(errs...)
}

// infoField returns one field of an INFO reply.
func infoField(info, name string) string {
	for _, l := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), ":"); ok && k == name {
			return v
		}
	}
	return ""
}

// rdbVersionOf maps a Redis version to the RDB version it reads.
func rdbVersionOf(v string) int {
	parts := strings.SplitN(v, ".", 3)
	major, _ := strconv.Atoi(parts[0])
	minor := 0
	if len(parts) > 1 {
		minor, _ = strconv.Atoi(parts[1])
	}
	switch {
	case major > 7 || major == 7 && minor >= 4:
		return 12
	case major == 7 && minor >= 2:
		return 11
	case major == 7:
		return 10
	case major >= 5:
		return 9
	case major == 4:
		return 8
	default:
		return 7
	}
}
