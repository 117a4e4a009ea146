package cluster_test

import (
	"testing"
	"time"

	"github.com/r2m-go/r2m/cluster"
	"github.com/r2m-go/r2m/internal/testenv"
)

// Every zero-loss test runs a writeChecker through a go-redis
// ClusterClient during the operation and then requires every acknowledged
// key and increment to be there, and redis-cli --cluster check to pass.

func TestZeroLossReshard(t *testing.T) {
	const pw = "zl"
	c := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 3, Replicas: 1, Password: pw})
	e := newEngine(t, pw)
	ctx := ctxFor(t, 120*time.Second)
	fill(t, c.Client(t), "pre", 20000)
	w := startChecker(t, c.Addrs(), pw, "reshard", 4)
	w.waitAcked(t, 200)
	v, err := e.Inspect(ctx, c.Nodes[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := cluster.PlanReshard(v, c.Masters()[0].Addr, c.Masters()[1].Addr, 1500)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.MoveSlots(ctx, c.Nodes[0].Addr, plan.Moves, cluster.MoveOptions{Store: &cluster.MemoryStore{}})
	if err != nil {
		t.Fatalf("MoveSlots: %v", err)
	}
	t.Logf("reshard: %s", res.Progress)
	w.requireNoLoss(t)
	requireHealthy(t, e, c.Nodes[0].Addr, pw)
	requireFilled(t, c.Client(t), "pre", 20000)
}

func TestZeroLossRebalanceOntoNewMaster(t *testing.T) {
	c := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 3})
	e := newEngine(t, "")
	ctx := ctxFor(t, 120*time.Second)
	fill(t, c.Client(t), "pre", 20000)
	w := startChecker(t, c.Addrs(), "", "rebalance", 4)
	w.waitAcked(t, 200)

	fresh := testenv.StartRedis(t, c.NodeOptions())
	newID, err := e.AddNode(ctx, c.Nodes[0].Addr, cluster.NodeSpec{Addr: fresh.Addr}, cluster.AddNodeOptions{})
	if err != nil {
		t.Fatalf("AddNode: %v", err)
	}
	requireCheck(t, c.Nodes[0].Addr, "")
	v, err := e.Inspect(ctx, c.Nodes[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := cluster.PlanRebalance(v, cluster.RebalanceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan:\n%s", plan)
	if len(plan.Moves) != 4096 {
		t.Fatalf("rebalance onto an empty fourth master plans %d moves, want 4096", len(plan.Moves))
	}
	res, err := e.MoveSlots(ctx, c.Nodes[0].Addr, plan.Moves, cluster.MoveOptions{})
	if err != nil {
		t.Fatalf("MoveSlots: %v", err)
	}
	t.Logf("rebalance: %s", res.Progress)
	requireCheck(t, c.Nodes[0].Addr, "")

	// And a replica for the new master.
	replica := testenv.StartRedis(t, c.NodeOptions())
	if _, err := e.AddNode(ctx, c.Nodes[0].Addr, cluster.NodeSpec{Addr: replica.Addr}, cluster.AddNodeOptions{ReplicaOf: newID}); err != nil {
		t.Fatalf("AddNode as replica: %v", err)
	}
	w.requireNoLoss(t)
	v = requireHealthy(t, e, c.Nodes[0].Addr, "")
	if n := v.Node(newID); n == nil || n.SlotCount() != 4096 || len(v.ReplicasOf(newID)) != 1 {
		t.Fatalf("new master after rebalance:\n%s", v)
	}
	requireFilled(t, c.Client(t), "pre", 20000)
}

func TestZeroLossDrainAndRemove(t *testing.T) {
	const pw = "drain"
	c := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 3, Replicas: 1, Password: pw})
	e := newEngine(t, pw)
	ctx := ctxFor(t, 120*time.Second)
	fill(t, c.Client(t), "pre", 20000)
	w := startChecker(t, c.Addrs(), pw, "drain", 4)
	w.waitAcked(t, 200)
	victim := c.Masters()[2]
	rep, err := e.RemoveNode(ctx, c.Nodes[0].Addr, victim.Addr, cluster.RemoveOptions{})
	if err != nil {
		t.Fatalf("RemoveNode: %v", err)
	}
	t.Logf("drain plan:\n%s\nmoved: %s; reattached replicas %v", rep.Drain, rep.Moved.Progress, rep.Reattached)
	w.requireNoLoss(t)
	v := requireHealthy(t, e, c.Nodes[0].Addr, pw)
	if len(v.Nodes) != 5 || v.Node(victim.Addr) != nil {
		t.Fatalf("after removing %s:\n%s", victim.Addr, v)
	}
	// The victim's replica follows a remaining master: either RemoveNode
	// re-attached it, or Redis did first (replica migration: a replica
	// whose master lost its last slot follows the new owner by itself).
	orphan := c.ReplicasOf(2)[0]
	if n := v.Node(orphan.Addr); n == nil || n.Role != cluster.RoleReplica || v.Node(n.MasterID) == nil {
		t.Fatalf("replica %s of the removed master does not follow a remaining master (re-attached by RemoveNode: %v):\n%s", orphan.Addr, rep.Reattached, v)
	}
	if victim.Running() {
		t.Errorf("removed node %s still running", victim.Addr)
	}
	requireFilled(t, c.Client(t), "pre", 20000)
}

func TestZeroLossFailover(t *testing.T) {
	for _, tc := range []struct {
		mode cluster.FailoverMode
		// mustNotLose: a default failover waits for the replica to catch
		// up, so nothing may be lost. FORCE and TAKEOVER do not wait;
		// replication is asynchronous, so loss is counted and reported.
		mustNotLose bool
	}{
		{cluster.FailoverDefault, true},
		{cluster.FailoverForce, false},
		{cluster.FailoverTakeover, false},
	} {
		name := string(tc.mode)
		if name == "" {
			name = "DEFAULT"
		}
		t.Run(name, func(t *testing.T) {
			const pw = "fo"
			c := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 3, Replicas: 1, Password: pw})
			e := newEngine(t, pw)
			ctx := ctxFor(t, 120*time.Second)
			w := startChecker(t, c.Addrs(), pw, "failover", 4)
			w.waitAcked(t, 300)
			replica := c.ReplicasOf(0)[0]
			rep, err := e.Failover(ctx, c.Nodes[0].Addr, replica.Addr, tc.mode, 0)
			if err != nil {
				t.Fatalf("Failover %s: %v", name, err)
			}
			w.waitAcked(t, 600) // keep writing after the switch
			r := w.check(t)
			t.Logf("failover %s took %v (%s -> %s); %s", name, rep.Took, rep.OldMaster, rep.NewMaster, r)
			if r.keys < 100 {
				t.Fatalf("checker acknowledged only %d writes", r.keys)
			}
			if tc.mustNotLose && (r.lostKeys > 0 || r.lostIncrs > 0) {
				t.Fatalf("default failover lost acknowledged writes: %s", r)
			}
			v := requireHealthy(t, e, c.Nodes[0].Addr, pw)
			if n := v.Node(replica.Addr); n == nil || !n.IsMaster() {
				t.Fatalf("%s is not master after failover:\n%s", replica.Addr, v)
			}
			if n := v.Node(c.Masters()[0].Addr); n == nil || n.Role != cluster.RoleReplica {
				t.Fatalf("old master is not a replica after failover:\n%s", v)
			}
		})
	}
}
