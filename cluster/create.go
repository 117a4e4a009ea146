package cluster

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultCreateTimeout bounds how long Create waits for the nodes to meet
// and agree.
const DefaultCreateTimeout = 60 * time.Second

// NodeSpec names a node for Create and AddNode.
type NodeSpec struct {
	// Addr is "ip:port" of the node's client port.
	Addr string
	// Host labels the machine the node runs on. Create puts replicas on a
	// different host than their master whenever the list allows it. Empty
	// means the IP of Addr.
	Host string
}

func (s NodeSpec) host() string {
	if s.Host != "" {
		return s.Host
	}
	h, _, _ := net.SplitHostPort(s.Addr)
	return h
}

// Layout is the plan Create executes: which nodes become masters with
// which slots, and which replicate whom. It prints as a dry run.
type Layout struct {
	Masters  []NodeSpec
	Slots    [][]SlotRange // Slots[i] belongs to Masters[i]
	Replicas [][]NodeSpec  // Replicas[i] replicate Masters[i]
	// SameHost lists replicas that had to share their master's host.
	SameHost []string
}

func (l *Layout) String() string {
	var b strings.Builder
	for i, m := range l.Masters {
		fmt.Fprintf(&b, "master %s (host %s) slots %s\n", m.Addr, m.host(), FormatRanges(l.Slots[i]))
		for _, r := range l.Replicas[i] {
			fmt.Fprintf(&b, "  replica %s (host %s)\n", r.Addr, r.host())
		}
	}
	for _, s := range l.SameHost {
		fmt.Fprintf(&b, "warning: %s\n", s)
	}
	return b.String()
}

// PlanCreate lays out nodes as len(nodes)/(1+replicas) masters, spread over
// hosts, each with replicas on other hosts where possible. Nodes left over
// after the even split become extra replicas of the masters with the fewest.
func PlanCreate(nodes []NodeSpec, replicas int) (*Layout, error) {
	if replicas < 0 {
		return nil, fmt.Errorf("%w: negative replica count %d", ErrInvalidPlan, replicas)
	}
	m := len(nodes) / (1 + replicas)
	if m < 1 {
		return nil, fmt.Errorf("%w: %d nodes cannot make a master with %d replicas", ErrInvalidPlan, len(nodes), replicas)
	}
	seen := map[string]bool{}
	for _, n := range nodes {
		if seen[n.Addr] {
			return nil, fmt.Errorf("%w: node %s listed twice", ErrInvalidPlan, n.Addr)
		}
		seen[n.Addr] = true
	}
	order := interleaveByHost(nodes)
	// Greedy assignment can corner the last master into a same-host
	// replica; trying each rotation of the candidates and keeping the best
	// avoids that for every practical node count.
	var best *Layout
	rest := order[m:]
	for k := range max(1, len(rest)) {
		rot := append(slices.Clone(rest[k:]), rest[:k]...)
		l := assignReplicas(order[:m], rot, replicas)
		if best == nil || len(l.SameHost) < len(best.SameHost) {
			best = l
		}
		if len(best.SameHost) == 0 {
			break
		}
	}
	return best, nil
}

// assignReplicas lays out masters with slots and assigns the candidates as
// replicas, each to a host its shard does not use yet where possible.
func assignReplicas(masters, candidates []NodeSpec, replicas int) *Layout {
	m := len(masters)
	l := &Layout{Masters: masters, Slots: make([][]SlotRange, m), Replicas: make([][]NodeSpec, m)}
	for i := range m {
		l.Slots[i] = []SlotRange{{i * NumSlots / m, (i+1)*NumSlots/m - 1}}
	}
	rest := slices.Clone(candidates)
	pick := func(i int) {
		master := l.Masters[i]
		used := map[string]bool{master.host(): true}
		for _, r := range l.Replicas[i] {
			used[r.host()] = true
		}
		best := -1
		for j, c := range rest { // a host this shard does not use yet
			if !used[c.host()] {
				best = j
				break
			}
		}
		if best < 0 {
			for j, c := range rest { // at least not the master's host
				if c.host() != master.host() {
					best = j
					break
				}
			}
		}
		if best < 0 {
			best = 0
			l.SameHost = append(l.SameHost, fmt.Sprintf("replica %s shares host %s with its master %s", rest[0].Addr, master.host(), master.Addr))
		}
		l.Replicas[i] = append(l.Replicas[i], rest[best])
		rest = slices.Delete(rest, best, best+1)
	}
	for range replicas {
		for i := range m {
			pick(i)
		}
	}
	for len(rest) > 0 {
		fewest := 0
		for i := range m {
			if len(l.Replicas[i]) < len(l.Replicas[fewest]) {
				fewest = i
			}
		}
		pick(fewest)
	}
	return l
}

// interleaveByHost orders nodes by taking one from each host in turn, so
// the first masters land on different hosts.
func interleaveByHost(nodes []NodeSpec) []NodeSpec {
	var hosts []string
	by := map[string][]NodeSpec{}
	for _, n := range nodes {
		h := n.host()
		if _, ok := by[h]; !ok {
			hosts = append(hosts, h)
		}
		by[h] = append(by[h], n)
	}
	var out []NodeSpec
	for len(out) < len(nodes) {
		for _, h := range hosts {
			if len(by[h]) > 0 {
				out = append(out, by[h][0])
				by[h] = by[h][1:]
			}
		}
	}
	return out
}

// CreateOptions configures Create.
type CreateOptions struct {
	// Replicas per master.
	Replicas int
	// Timeout bounds the wait for the nodes to meet and agree. Zero means
	// DefaultCreateTimeout.
	Timeout time.Duration
}

// Create forms a cluster from fresh nodes (cluster-enabled, empty, knowing
// only themselves) following [PlanCreate]: ADDSLOTSRANGE on the masters,
// distinct SET-CONFIG-EPOCH on every node (so they need not resolve epoch
// collisions one at a time), MEET, REPLICATE, then a bounded wait until
// every node agrees and every replica's link is up.
func (e *Engine) Create(ctx context.Context, nodes []NodeSpec, opts CreateOptions) (*Layout, error) {
	l, err := PlanCreate(nodes, opts.Replicas)
	if err != nil {
		return nil, err
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultCreateTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := e.eachNode(ctx, nodes, func(n NodeSpec) error { return e.checkFresh(ctx, n.Addr) }); err != nil {
		return l, err
	}
	for i, m := range l.Masters {
		for _, r := range l.Slots[i] {
			if err := e.ok(ctx, m.Addr, "", "CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(r.Start), strconv.Itoa(r.End)); err != nil {
				return l, err
			}
		}
	}
	for i, n := range nodes {
		if err := e.ok(ctx, n.Addr, "", "CLUSTER", "SET-CONFIG-EPOCH", strconv.Itoa(i+1)); err != nil {
			return l, err
		}
	}
	first := nodes[0].Addr
	for _, n := range nodes[1:] {
		if err := e.meet(ctx, n.Addr, first); err != nil {
			return l, err
		}
	}
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.Addr
	}
	if err := e.waitKnown(ctx, addrs, len(nodes)); err != nil {
		return l, err
	}
	for i, m := range l.Masters {
		id, err := e.str(ctx, m.Addr, "", "CLUSTER", "MYID")
		if err != nil {
			return l, err
		}
		for _, r := range l.Replicas[i] {
			if err := e.replicate(ctx, r.Addr, id); err != nil {
				return l, err
			}
		}
	}
	if _, err := e.WaitConverged(ctx, first, timeout); err != nil {
		return l, err
	}
	return l, e.waitReplicasLinked(ctx, first)
}

// eachNode runs f for every node concurrently and joins the errors.
func (e *Engine) eachNode(ctx context.Context, nodes []NodeSpec, f func(NodeSpec) error) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { errs[i] = f(n) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

// checkFresh fails unless addr is cluster-enabled, empty and alone.
func (e *Engine) checkFresh(ctx context.Context, addr string) error {
	text, err := e.str(ctx, addr, "CLUSTER INFO", "CLUSTER", "INFO")
	if err != nil {
		return err
	}
	info := parseInfo(text)
	if info["cluster_known_nodes"] != "1" || info["cluster_slots_assigned"] != "0" {
		return errNode(addr, "check fresh node", fmt.Errorf("%w: knows %s nodes, %s slots assigned", ErrNotEmpty, info["cluster_known_nodes"], info["cluster_slots_assigned"]))
	}
	n, err := e.integer(ctx, addr, "", "DBSIZE")
	if err != nil {
		return err
	}
	if n != 0 {
		return errNode(addr, "check fresh node", fmt.Errorf("%w: holds %d keys", ErrNotEmpty, n))
	}
	return nil
}

// meet makes addr MEET peer.
func (e *Engine) meet(ctx context.Context, addr, peer string) error {
	host, port, err := net.SplitHostPort(peer)
	if err != nil {
		return errNode(addr, "CLUSTER MEET", err)
	}
	if net.ParseIP(host) == nil {
		ips, err := net.DefaultResolver.LookupHost(ctx, host)
		if err != nil || len(ips) == 0 {
			return errNode(addr, "CLUSTER MEET resolve "+host, fmt.Errorf("%w: %v", ErrUnreachable, err))
		}
		host = ips[0]
	}
	return e.ok(ctx, addr, "CLUSTER MEET "+peer, "CLUSTER", "MEET", host, port)
}

// replicate makes addr a replica of masterID.
func (e *Engine) replicate(ctx context.Context, addr, masterID string) error {
	return e.ok(ctx, addr, "CLUSTER REPLICATE "+masterID, "CLUSTER", "REPLICATE", masterID)
}

// waitKnown waits until each of addrs knows want nodes with no handshake
// pending.
func (e *Engine) waitKnown(ctx context.Context, addrs []string, want int) error {
	return poll(ctx, func() (bool, string, error) {
		for _, a := range addrs {
			table, _, err := e.nodeTable(ctx, a)
			if err != nil {
				return false, err.Error(), nil
			}
			if len(table) != want {
				return false, fmt.Sprintf("%s knows %d of %d nodes", a, len(table), want), nil
			}
			for _, n := range table {
				if n.Has("handshake") || n.Addr == "" {
					return false, fmt.Sprintf("%s: %s still in handshake", a, n.ID), nil
				}
			}
		}
		return true, "", nil
	})
}

// waitReplicasLinked waits until every replica reports its link to its
// master up.
func (e *Engine) waitReplicasLinked(ctx context.Context, seed string) error {
	return poll(ctx, func() (bool, string, error) {
		v, err := e.Inspect(ctx, seed)
		if err != nil {
			return false, err.Error(), nil
		}
		for _, n := range v.Nodes {
			if n.Role != RoleReplica {
				continue
			}
			text, err := e.str(ctx, n.Addr, "INFO replication", "INFO", "replication")
			if err != nil {
				return false, err.Error(), nil
			}
			if parseInfo(text)["master_link_status"] != "up" {
				return false, n.Addr + ": replica link not up", nil
			}
		}
		return true, "", nil
	})
}
