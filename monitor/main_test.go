package monitor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/r2m-go/r2m/coord"
	_ "github.com/r2m-go/r2m/coord/install"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/meta"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// openCoord opens a session on the shared etcd under a fresh root, closed
// when the test ends.
func openCoord(t *testing.T, root string) *coord.Coordinator {
	t.Helper()
	c, err := coord.Open(testCtx(t, 30*time.Second), testenv.SharedEtcd(t).URL(root))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close coordinator: %v", err)
		}
	})
	return c
}

// newStore returns a store on a fresh root and the root's URL path.
func newStore(t *testing.T) (*meta.Store, string) {
	t.Helper()
	var r [4]byte
	_, _ = rand.Read(r[:])
	root := "/monitortest/" + hex.EncodeToString(r[:])
	return meta.NewStore(openCoord(t, root)), root
}

// newMonitor builds a Monitor over st in a temp data dir, closed when the
// test ends.
func newMonitor(t *testing.T, cfg Config) *Monitor {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.ServerID == "" {
		cfg.ServerID = "test-server"
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close monitor: %v", err)
		}
	})
	return m
}

// describe writes the cluster, topology and credentials records of a
// testenv cluster, as the manager would.
func describe(t *testing.T, st *meta.Store, name string, rc *testenv.RedisCluster) []meta.Node {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	nodes := nodesOf(t, rc.Nodes)
	now := time.Now().UTC()
	rec := &meta.Cluster{Name: name, State: meta.ClusterActive, Adopted: true, Datacenter: "dc1",
		Masters: len(rc.Masters()), HasPassword: rc.Password() != "", CreatedAt: now, UpdatedAt: now}
	if err := st.Cluster(name).Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if rc.Password() != "" {
		if err := st.Credentials(name).Create(ctx, &meta.Credentials{Password: rc.Password()}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Topology(name).Create(ctx, &meta.Topology{Cluster: name, Epoch: 1, Nodes: nodes, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	return nodes
}

// nodesOf reads each server's id and role.
func nodesOf(t *testing.T, servers []*testenv.RedisServer) []meta.Node {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	idByAddr := map[string]string{}
	type roleInfo struct{ role, master string }
	roles := map[string]roleInfo{}
	for _, s := range servers {
		c := s.Client(t)
		id, err := c.ClusterMyID(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		idByAddr[s.Addr] = id
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			t.Fatal(err)
		}
		in := parseInfo(info)
		ri := roleInfo{role: in["role"]}
		if ri.role == "slave" {
			ri.master = net.JoinHostPort(in["master_host"], in["master_port"])
		}
		roles[s.Addr] = ri
	}
	var out []meta.Node
	for _, s := range servers {
		n := meta.Node{ID: idByAddr[s.Addr], Addr: s.Addr, Role: meta.RoleMaster, Health: meta.HealthOK}
		if r := roles[s.Addr]; r.role == "slave" {
			n.Role, n.MasterID = meta.RoleReplica, idByAddr[r.master]
		}
		out = append(out, n)
	}
	return out
}

// sharedCluster is the package's read-mostly cluster: 3 masters with a
// replica each, a maxmemory so memory ratios exist, and the latency
// monitor on. Tests that kill or pause nodes for long start their own.
func sharedCluster(t *testing.T) *testenv.RedisCluster {
	return testenv.SharedRedisCluster(t, testenv.ClusterOptions{Masters: 3, Replicas: 1, Password: "s3cret",
		Config: []string{"maxmemory 256mb", "latency-monitor-threshold 5"}})
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// receiver is a webhook endpoint that records what it receives and hands
// each payload to the test through a channel.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	bodies [][]byte
	got    chan []byte
	reply  func(w http.ResponseWriter)
}

func newReceiver(t *testing.T) *receiver {
	rv := &receiver{got: make(chan []byte, 256)}
	rv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rv.mu.Lock()
		rv.bodies = append(rv.bodies, b)
		reply := rv.reply
		rv.mu.Unlock()
		select {
		case rv.got <- b:
		default:
		}
		if reply != nil {
			reply(w)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rv.Close)
	return rv
}

// waitAlert waits for a webhook payload holding an alert of rule and kind
// and returns it with the time it arrived.
func (rv *receiver) waitAlert(t *testing.T, rule, kind string, within time.Duration) (WebhookAlert, time.Time) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		select {
		case b := <-rv.got:
			var p WebhookPayload
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatalf("webhook payload is not JSON: %v\n%s", err, b)
			}
			for _, a := range p.Alerts {
				if a.Rule == rule && a.Kind == kind {
					return a, time.Now()
				}
			}
		case <-deadline.C:
			t.Fatalf("no %s %s notification within %v; received:\n%s", kind, rule, within, rv.dump())
		}
	}
}

func (rv *receiver) dump() string {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	var b strings.Builder
	for i, body := range rv.bodies {
		b.WriteString(strconv.Itoa(i) + ": " + string(body) + "\n")
	}
	return b.String()
}

// alertsOf returns every alert of rule received so far, in order.
func (rv *receiver) alertsOf(t *testing.T, rule string) []WebhookAlert {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	var out []WebhookAlert
	for _, b := range rv.bodies {
		var p WebhookPayload
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("webhook payload is not JSON: %v", err)
		}
		for _, a := range p.Alerts {
			if a.Rule == rule {
				out = append(out, a)
			}
		}
	}
	return out
}

// load runs n SETs and n GETs (half of them misses) through a cluster
// client.
func load(t *testing.T, c *redis.ClusterClient, prefix string, n int) {
	t.Helper()
	ctx := testCtx(t, 60*time.Second)
	pipe := c.Pipeline()
	for i := range n {
		pipe.Set(ctx, prefix+strconv.Itoa(i), "v", 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	pipe = c.Pipeline()
	for i := range n {
		key := prefix + strconv.Itoa(i)
		if i%2 == 1 {
			key = prefix + "missing-" + strconv.Itoa(i)
		}
		pipe.Get(ctx, key)
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		t.Fatal(err)
	}
}

// valueOf finds a subject's value in a snapshot.
func valueOf(s *snapshot, key, metric string) (float64, bool) {
	for _, sub := range s.subjects {
		if sub.key == key {
			v, ok := sub.values[metric]
			return v, ok
		}
	}
	return 0, false
}

func subjectOf(s *snapshot, key string) *subject {
	for _, sub := range s.subjects {
		if sub.key == key {
			return sub
		}
	}
	return nil
}
