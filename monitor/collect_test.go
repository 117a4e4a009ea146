package monitor

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/r2m-go/r2m/meta"
)

// TestCollectCluster polls a real 3-master cluster with replicas under a
// load the test generates, and checks the derived values against what
// the load and INFO say.
func TestCollectCluster(t *testing.T) {
	rc := sharedCluster(t)
	st, _ := newStore(t)
	nodes := describe(t, st, "c1", rc)
	ctx := testCtx(t, 60*time.Second)

	// Two live client registrations of an app on the cluster.
	now := time.Now().UTC()
	if err := st.App("orders").Create(ctx, &meta.App{Name: "orders", ActiveCluster: "c1", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		id := "cl" + strconv.Itoa(i)
		rec := &meta.Client{ID: id, App: "orders", Name: "svc", Host: "h1", PID: 100 + i, CreatedAt: now, CreationSite: "main.go:10",
			OpenConns: 3, Heartbeat: meta.Heartbeat{At: now, Interval: meta.Duration(time.Minute)}}
		if err := st.Client("orders", id).CreateEphemeral(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}

	m := newMonitor(t, Config{Store: st, Interval: 2 * time.Second, NodeTimeout: 2 * time.Second})
	r := m.newRunner()
	defer r.close()

	// Every command the slow log sees on the first master.
	first := rc.Masters()[0].Client(t)
	if err := first.ConfigSet(ctx, "slowlog-log-slower-than", "0").Err(); err != nil {
		t.Fatal(err)
	}
	defer first.ConfigSet(ctx, "slowlog-log-slower-than", "10000")

	s1, _ := r.pass(ctx)
	if s1 == nil {
		t.Fatal("pass returned no snapshot")
	}
	const n = 3000
	load(t, rc.Client(t), "collect:", n)
	s2, _ := r.pass(ctx)

	var ops, keys float64
	for _, node := range nodes {
		key := nodeKey("c1", node.Addr)
		if v, _ := valueOf(s2, key, mUp); v != 1 {
			t.Fatalf("%s up = %v, want 1 (%s)", node.Addr, v, subjectOf(s2, key).detail)
		}
		used, ok := valueOf(s2, key, mUsedMemory)
		if !ok || used < 512<<10 {
			t.Errorf("%s used_memory_bytes = %v, %v; want a sane size", node.Addr, used, ok)
		}
		if v, _ := valueOf(s2, key, mMaxMemory); v != 256<<20 {
			t.Errorf("%s maxmemory_bytes = %v, want %d", node.Addr, v, 256<<20)
		}
		if ratio, _ := valueOf(s2, key, mMemoryRatio); math.Abs(ratio-used/(256<<20)) > 0.01 {
			t.Errorf("%s memory_used_ratio = %v, want used/max = %v", node.Addr, ratio, used/(256<<20))
		}
		if v, _ := valueOf(s2, key, mClients); v < 1 {
			t.Errorf("%s connected_clients = %v, want at least the monitor's own", node.Addr, v)
		}
		if v, _ := valueOf(s2, key, mNodeClusterOK); v != 1 {
			t.Errorf("%s node_cluster_state_ok = %v, want 1", node.Addr, v)
		}
		o, ok := valueOf(s2, key, mOpsPerSec)
		if !ok {
			t.Errorf("%s has no ops_per_sec", node.Addr)
		}
		if node.Role == meta.RoleMaster {
			ops += o
			k, _ := valueOf(s2, key, mKeys)
			keys += k
			if o <= 0 {
				t.Errorf("master %s ops_per_sec = %v under load, want > 0", node.Addr, o)
			}
		} else {
			if v, _ := valueOf(s2, key, mLinkUp); v != 1 {
				t.Errorf("replica %s replication_link_up = %v, want 1", node.Addr, v)
			}
			lag, ok := valueOf(s2, key, mLagBytes)
			if !ok || lag < 0 || lag > 1<<20 {
				t.Errorf("replica %s replication_lag_bytes = %v, %v; want a small non-negative number", node.Addr, lag, ok)
			}
			if s, ok := valueOf(s2, key, mLagSeconds); !ok || s > 5 {
				t.Errorf("replica %s replication_lag_seconds = %v, %v; want a few seconds at most", node.Addr, s, ok)
			}
		}
	}
	if keys < n {
		t.Errorf("keys on masters = %v, want at least %d", keys, n)
	}
	if ops <= 0 {
		t.Errorf("ops/s summed over masters = %v, want > 0", ops)
	}
	ck := "cluster/c1"
	if v, _ := valueOf(s2, ck, mClusterStateOK); v != 1 {
		t.Errorf("cluster_state_ok = %v, want 1", v)
	}
	if v, _ := valueOf(s2, ck, mClusterSlotsOK); v != 16384 {
		t.Errorf("cluster_slots_ok = %v, want 16384", v)
	}
	if v, _ := valueOf(s2, ck, mClusterUncovered); v != 0 {
		t.Errorf("cluster_slots_uncovered = %v, want 0", v)
	}
	if v, _ := valueOf(s2, ck, mClusterNodesUp); v != float64(len(nodes)) {
		t.Errorf("cluster_nodes_up = %v, want %d", v, len(nodes))
	}
	// Half the GETs missed; other tests' lookups in this package are few.
	if v, ok := valueOf(s2, ck, mClusterHitRatio); !ok || v < 0.4 || v > 0.6 {
		t.Errorf("cluster_hit_ratio = %v, %v; want about 0.5", v, ok)
	}
	if v, _ := valueOf(s2, ck, mClusterOps); math.Abs(v-ops) > 1e-6 && v < ops {
		t.Errorf("cluster_ops_per_sec = %v, want at least the masters' %v", v, ops)
	}
	// The slow log of the first master saw every command of the load that
	// hashed to it, and only new entries count.
	fk := nodeKey("c1", rc.Masters()[0].Addr)
	if v, ok := valueOf(s2, fk, mSlowlogPerSec); !ok || v <= 0 {
		t.Errorf("slowlog_per_sec on %s = %v, %v; want > 0", rc.Masters()[0].Addr, v, ok)
	}
	if v, _ := valueOf(s2, "app/orders", mRegistered); v != 2 {
		t.Errorf("registered_clients of orders = %v, want 2", v)
	}
	if v, _ := valueOf(s2, "app/orders", mZombies); v != 0 {
		t.Errorf("zombie_clients of orders = %v, want 0", v)
	}

	// The history holds what INFO says, within what moved between the two.
	info, err := first.Info(ctx, "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := parseInfo(info).num("used_memory")
	pts, err := m.Series(ctx, SeriesQuery{Cluster: "c1", Node: rc.Masters()[0].Addr, Metric: mUsedMemory, From: time.Now().Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) == 0 {
		t.Fatal("Series(used_memory_bytes) returned no points after two passes")
	}
	last := pts[len(pts)-1]
	if math.Abs(last.Avg-want)/want > 0.1 {
		t.Errorf("stored used_memory_bytes %v, INFO now says %v: more than 10%% apart", last.Avg, want)
	}
	pts, err = m.Series(ctx, SeriesQuery{App: "orders", Metric: mRegistered, From: time.Now().Add(-time.Minute)})
	if err != nil || len(pts) == 0 || pts[len(pts)-1].Max != 2 {
		t.Errorf("Series(registered_clients of orders) = %v, %v; want points with 2", pts, err)
	}
}

// TestPausedNode freezes a node (SIGSTOP): the pass finishes within the
// node timeout, reports that node down and the others up; after SIGCONT
// it is up again.
func TestPausedNode(t *testing.T) {
	rc := sharedCluster(t)
	st, _ := newStore(t)
	describe(t, st, "c1", rc)
	ctx := testCtx(t, 60*time.Second)
	const timeout = 500 * time.Millisecond
	m := newMonitor(t, Config{Store: st, Interval: time.Second, NodeTimeout: timeout})
	r := m.newRunner()
	defer r.close()
	if s, _ := r.pass(ctx); s == nil {
		t.Fatal("no snapshot")
	}

	victim := rc.ReplicasOf(1)[0]
	if err := victim.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = victim.Resume()
		}
	}()
	for i := range 2 { // once on the open connection, once dialing afresh
		start := time.Now()
		s, _ := r.pass(ctx)
		took := time.Since(start)
		t.Logf("pass %d with %s frozen took %v (node timeout %v)", i, victim.Addr, took.Round(time.Millisecond), timeout)
		if took > timeout+time.Second {
			t.Errorf("pass %d with a paused node took %v, want at most the node timeout %v plus a second", i, took, timeout)
		}
		for _, sub := range s.byScope(ScopeNode) {
			want := 1.0
			if sub.node == victim.Addr {
				want = 0
			}
			if sub.values[mUp] != want {
				t.Errorf("pass %d: %s up = %v, want %v (%s)", i, sub.node, sub.values[mUp], want, sub.detail)
			}
		}
		if sub := subjectOf(s, nodeKey("c1", victim.Addr)); sub == nil || sub.detail == "" {
			t.Errorf("pass %d: the paused node carries no reason", i)
		}
		if v, _ := valueOf(s, "cluster/c1", mClusterNodesUp); v != float64(len(rc.Nodes)-1) {
			t.Errorf("pass %d: cluster_nodes_up = %v, want %d", i, v, len(rc.Nodes)-1)
		}
	}
	if got := m.metrics.passNodes.WithLabelValues("failed"); got == nil {
		t.Fatal("no pass_nodes gauge")
	}
	if err := victim.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	s, _ := r.pass(ctx)
	if v, _ := valueOf(s, nodeKey("c1", victim.Addr), mUp); v != 1 {
		t.Errorf("after SIGCONT the node is up = %v, want 1 (%s)", v, subjectOf(s, nodeKey("c1", victim.Addr)).detail)
	}
}
