package testenv

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterOptions configures a Redis Cluster.
type ClusterOptions struct {
	// Masters is the number of masters; zero means 3.
	Masters int
	// Replicas is the number of replicas per master.
	Replicas int
	// Password sets requirepass and masterauth on every node.
	Password string
	// NodeTimeout is cluster-node-timeout; zero means 5s.
	NodeTimeout time.Duration
	// AppendOnly turns on the AOF on every node.
	AppendOnly bool
	// Config holds extra redis.conf lines for every node.
	Config []string
}

// RedisCluster is a formed Redis Cluster whose nodes testenv owns.
type RedisCluster struct {
	// Nodes lists every node, masters first (in slot order), then the
	// replicas: master i's replicas are Nodes[Masters+i*Replicas : …+Replicas].
	Nodes    []*RedisServer
	opts     ClusterOptions
	password string
}

const clusterFormTimeout = 60 * time.Second

// StartRedisCluster starts Masters×(1+Replicas) nodes, assigns the 16384
// slots evenly across the masters, attaches the replicas, and returns once
// every node reports cluster_state:ok, all nodes agree on the slot map and
// every replica's link to its master is up. The nodes stop when the test
// ends.
func StartRedisCluster(tb testing.TB, opts ClusterOptions) *RedisCluster {
	tb.Helper()
	c, err := startRedisCluster(tb.TempDir(), opts)
	if c != nil {
		tb.Cleanup(func() {
			if tb.Failed() {
				for _, n := range c.Nodes {
					tb.Logf("redis-server %s log (tail):\n%s", n.Addr, n.LogTail(40))
				}
			}
			if err := c.stop(); err != nil {
				tb.Error(err)
			}
		})
	}
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// errJoinedElsewhere reports a fresh node that another cluster reached
// before this one was formed. Tests of other packages run at the same time
// and make and drop nodes on loopback: a node of theirs that still retries
// a CLUSTER MEET handshake with an address that has since been freed sends
// MEET to whatever server takes that port next. The node then belongs to
// two clusters, so the formation starts again on fresh ports.
var errJoinedElsewhere = errors.New("a node was reached by another cluster while this one formed")

// formAttempts bounds how often a cluster is started again after
// errJoinedElsewhere.
const formAttempts = 3

func startRedisCluster(dir string, opts ClusterOptions) (*RedisCluster, error) {
	for attempt := 1; ; attempt++ {
		c, err := startRedisClusterOnce(dir, opts)
		if !errors.Is(err, errJoinedElsewhere) || attempt == formAttempts {
			return c, err
		}
		if serr := c.stop(); serr != nil {
			return c, errors.Join(err, serr)
		}
	}
}

func startRedisClusterOnce(dir string, opts ClusterOptions) (*RedisCluster, error) {
	if opts.Masters == 0 {
		opts.Masters = 3
	}
	if opts.Masters < 1 || opts.Replicas < 0 {
		return nil, fmt.Errorf("testenv: cluster needs at least one master and no negative replica count, got %d masters, %d replicas", opts.Masters, opts.Replicas)
	}
	c := &RedisCluster{opts: opts, password: opts.Password}
	n := opts.Masters * (1 + opts.Replicas)
	c.Nodes = make([]*RedisServer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c.Nodes[i], errs[i] = startRedis(dir, c.nodeOptions())
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			c.Nodes = slices.DeleteFunc(c.Nodes, func(s *RedisServer) bool { return s == nil })
			return c, fmt.Errorf("testenv: start cluster node %d: %w", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterFormTimeout)
	defer cancel()
	if err := c.form(ctx); err != nil {
		return c, fmt.Errorf("testenv: form cluster: %w", err)
	}
	return c, nil
}

func (c *RedisCluster) nodeOptions() RedisOptions {
	return RedisOptions{
		Password: c.opts.Password, Cluster: true, NodeTimeout: c.opts.NodeTimeout,
		AppendOnly: c.opts.AppendOnly, Config: c.opts.Config,
	}
}

// form assigns slots, joins the nodes, attaches replicas and waits.
func (c *RedisCluster) form(ctx context.Context) error {
	clients := make([]*redis.Client, len(c.Nodes))
	for i, n := range c.Nodes {
		clients[i] = n.newClient()
		defer clients[i].Close()
	}
	m := c.opts.Masters
	for i := range m {
		lo, hi := i*16384/m, (i+1)*16384/m-1
		if err := clients[i].ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
			return fmt.Errorf("%s: CLUSTER ADDSLOTSRANGE %d %d: %w", c.Nodes[i].Addr, lo, hi, err)
		}
	}
	// Distinct config epochs up front, as redis-cli does, so that nodes do not
	// have to resolve epoch collisions one bump at a time.
	for i, cl := range clients {
		if err := cl.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
			// Redis refuses it once the node's epoch moved or it knows
			// another node: only another cluster can have done that yet.
			if msg := err.Error(); strings.Contains(msg, "already non-zero") || strings.Contains(msg, "any other node") {
				err = fmt.Errorf("%w: %w", errJoinedElsewhere, err)
			}
			return fmt.Errorf("%s: CLUSTER SET-CONFIG-EPOCH: %w", c.Nodes[i].Addr, err)
		}
	}
	for i := 1; i < len(clients); i++ {
		if err := clients[i].ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(c.Nodes[0].Port)).Err(); err != nil {
			return fmt.Errorf("%s: CLUSTER MEET: %w", c.Nodes[i].Addr, err)
		}
	}
	if err := poll(ctx, 50*time.Millisecond, func() (bool, error) { return c.allKnowEachOther(ctx, clients) }); err != nil {
		return fmt.Errorf("nodes did not all meet: %w", err)
	}
	for mi := range m {
		masterID, err := clients[mi].ClusterMyID(ctx).Result()
		if err != nil {
			return fmt.Errorf("%s: CLUSTER MYID: %w", c.Nodes[mi].Addr, err)
		}
		for r := range c.opts.Replicas {
			ri := m + mi*c.opts.Replicas + r
			if err := clients[ri].ClusterReplicate(ctx, masterID).Err(); err != nil {
				return fmt.Errorf("%s: CLUSTER REPLICATE %s: %w", c.Nodes[ri].Addr, masterID, err)
			}
		}
	}
	return c.WaitHealthy(ctx)
}

// allKnowEachOther reports whether every node lists every other node with a
// completed handshake. A node that lists more nodes than the cluster has
// was reached by another cluster (errJoinedElsewhere).
func (c *RedisCluster) allKnowEachOther(ctx context.Context, clients []*redis.Client) (bool, error) {
	for i, cl := range clients {
		out, err := cl.ClusterNodes(ctx).Result()
		if err != nil {
			return false, nil
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		// Handshakes in flight are not counted: one may briefly sit beside
		// the entry its node ends up with.
		known := 0
		for _, l := range lines {
			if !strings.Contains(l, "handshake") {
				known++
			}
		}
		if known > len(clients) {
			return false, fmt.Errorf("%w: %s lists %d nodes, the cluster has %d", errJoinedElsewhere, c.Nodes[i].Addr, known, len(clients))
		}
		if len(lines) != len(clients) || strings.Contains(out, "handshake") {
			return false, nil
		}
	}
	return true, nil
}

// WaitHealthy waits until every running node reports cluster_state:ok, all
// of them describe the same slot owners, and every replica's link to its
// master is up. It bounds the wait by ctx.
func (c *RedisCluster) WaitHealthy(ctx context.Context) error {
	var last string
	err := poll(ctx, 50*time.Millisecond, func() (bool, error) {
		var ref string
		for _, n := range c.Nodes {
			if !n.Running() {
				continue
			}
			cl := n.newClient()
			ok, why, view := nodeHealthy(ctx, cl)
			cl.Close()
			if !ok {
				last = n.Addr + ": " + why
				return false, nil
			}
			if ref == "" {
				ref = view
			} else if view != ref {
				last = n.Addr + ": slot map differs from the other nodes"
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("cluster not healthy (%s): %w", last, err)
	}
	return nil
}

// nodeHealthy checks one node and returns a canonical description of the
// slot owners it sees (by master address) for comparison across nodes.
func nodeHealthy(ctx context.Context, cl *redis.Client) (ok bool, why, view string) {
	info, err := cl.ClusterInfo(ctx).Result()
	if err != nil {
		return false, err.Error(), ""
	}
	if !strings.Contains(info, "cluster_state:ok") {
		return false, "cluster_state is not ok", ""
	}
	repl, err := cl.Info(ctx, "replication").Result()
	if err != nil {
		return false, err.Error(), ""
	}
	if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
		return false, "replica link to master is not up", ""
	}
	nodes, err := cl.ClusterNodes(ctx).Result()
	if err != nil {
		return false, err.Error(), ""
	}
	// The view covers every node's role, its master and its slots, so
	// "all nodes agree" includes replicas: gossip spreads a REPLICATE a
	// little after the slots are settled.
	var owners []string
	addrOf := map[string]string{}
	var lines [][]string
	for _, l := range strings.Split(strings.TrimSpace(nodes), "\n") {
		f := strings.Fields(l)
		if len(f) < 8 {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		addrOf[f[0]] = addr
		lines = append(lines, f)
	}
	for _, f := range lines {
		if strings.Contains(f[2], "fail") {
			continue
		}
		addr := addrOf[f[0]]
		switch {
		case strings.Contains(f[2], "master"):
			owners = append(owners, addr+" master "+strings.Join(f[8:], " "))
		case strings.Contains(f[2], "slave"):
			owners = append(owners, addr+" replica-of "+addrOf[f[3]])
		}
	}
	slices.Sort(owners)
	return true, "", strings.Join(owners, "\n")
}

// Addrs returns the addresses of every node.
func (c *RedisCluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr
	}
	return out
}

// Masters returns the nodes that were created as masters, in slot order.
// After a failover the roles in the running cluster may differ.
func (c *RedisCluster) Masters() []*RedisServer { return c.Nodes[:c.opts.Masters] }

// ReplicasOf returns the nodes created as replicas of Masters()[i].
func (c *RedisCluster) ReplicasOf(i int) []*RedisServer {
	start := c.opts.Masters + i*c.opts.Replicas
	return c.Nodes[start : start+c.opts.Replicas]
}

// Password returns the cluster's password, or "".
func (c *RedisCluster) Password() string { return c.password }

// NodeOptions returns the options a new node must use to join this cluster
// (same password, node timeout and extra config), for tests that add nodes.
func (c *RedisCluster) NodeOptions() RedisOptions { return c.nodeOptions() }

// Client returns a go-redis cluster client over all nodes, closed when the
// test ends.
func (c *RedisCluster) Client(tb testing.TB) *redis.ClusterClient {
	cl := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: c.Addrs(), Password: c.password, Protocol: 2,
		DialTimeout: time.Second, ReadTimeout: 5 * time.Second,
	})
	tb.Cleanup(func() { cl.Close() })
	return cl
}

// stop stops every node in parallel and returns every failure.
func (c *RedisCluster) stop() error {
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		wg.Go(func() { errs[i] = n.Stop() })
	}
	wg.Wait()
	return errors.Join(errs...)
}
