package manager

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/internal/testenv"
)

// redisCLICheck runs the outside judge and fails the test unless it is
// clean.
func redisCLICheck(t *testing.T, c *testenv.RedisCluster) {
	t.Helper()
	cli, err := testenv.RedisCLIPath()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(cli, "-a", c.Password(), "--no-auth-warning", "--cluster", "check", c.Nodes[0].Addr).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster check: %v\n%s", err, out)
	}
}

func waitOp(t *testing.T, c *api.Client, id string) *api.Operation {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	op, err := c.WaitOp(ctx, id, 50*time.Millisecond, nil)
	if err != nil {
		t.Fatalf("waiting for operation %s: %v (last state %+v)", id, err, op)
	}
	return op
}

func mustSucceed(t *testing.T, op *api.Operation) {
	t.Helper()
	if op.State != "succeeded" || !op.CheckDone || len(op.CheckFindings) != 0 {
		t.Fatalf("operation %s (%s): state %s, error %q, check done %v, findings %v", op.ID, op.Type, op.State, op.Error, op.CheckDone, op.CheckFindings)
	}
}

func TestAdoptReshardControlFailover(t *testing.T) {
	rc := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 3, Replicas: 1, Password: "adopt-pw"})
	ts := startLeader(t, testenv_SharedEtcdURL(t), func(c *Config) { c.ObserveInterval = 200 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	admin := ts.adminClient(t)

	// Adopt: a dry run first, then for real.
	params := api.AdoptParams{Name: "legacy", Seed: rc.Nodes[0].Addr, Password: "adopt-pw"}
	_, dry, err := admin.Adopt(ctx, params, true)
	if err != nil || !strings.Contains(dry.PlanText, "3 masters, 3 replicas") {
		t.Fatalf("adopt dry run = %+v, %v", dry, err)
	}
	if _, _, err := admin.Adopt(ctx, api.AdoptParams{Name: "bad", Seed: rc.Nodes[0].Addr, Password: "wrong"}, true); !api.IsStatus(err, 400) {
		t.Fatalf("adopt with a wrong password: %v, want 400", err)
	}
	op, _, err := admin.Adopt(ctx, params, false)
	if err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, waitOp(t, admin, op.ID))
	if strings.Contains(string(op.Params), "adopt-pw") {
		t.Fatalf("the operation's stored params show the password: %s", op.Params)
	}
	detail, err := admin.Cluster(ctx, "legacy")
	if err != nil || detail.State != "active" || detail.Masters != 3 || detail.Replicas != 3 || detail.Health != "ok" {
		t.Fatalf("adopted cluster = %+v, %v", detail, err)
	}
	if a, err := admin.App(ctx, "legacy"); err != nil || a.ActiveCluster != "legacy" {
		t.Fatalf("app bound by adopt = %+v, %v", a, err)
	}
	cred, err := admin.Credentials(ctx, "legacy")
	if err != nil || cred.Password != "adopt-pw" {
		t.Fatalf("credentials = %+v, %v", cred, err)
	}

	// Data to move.
	rdb := rc.Client(t)
	for i := range 3000 {
		if err := rdb.Set(ctx, "k"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	m0, m1 := rc.Masters()[0].Addr, rc.Masters()[1].Addr

	// Reshard, throttled so it runs long enough to pause and to be busy.
	_, dryR, err := admin.StartOp(ctx, "legacy", "reshard", api.ReshardParams{From: m0, To: m1, Slots: 2000}, true)
	if err != nil || !strings.Contains(dryR.PlanText, "move 2000 slots") {
		t.Fatalf("reshard dry run = %+v, %v", dryR, err)
	}
	op, _, err = admin.StartOp(ctx, "legacy", "reshard", map[string]any{"from": m0, "to": m1, "slots": 2000, "throttle": 200}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := admin.StartOp(ctx, "legacy", "rebalance", api.RebalanceParams{}, false); !api.IsStatus(err, 409) {
		t.Fatalf("a second operation on a busy cluster: %v, want 409", err)
	}
	waitFor(t, "keys to start moving", func() bool {
		o, err := admin.Op(ctx, op.ID)
		return err == nil && o.Progress.KeysMoved > 0
	})
	if o, err := admin.PauseOp(ctx, op.ID); err != nil || o.State != "paused" {
		t.Fatalf("pause = %+v, %v", o, err)
	}
	if _, err := admin.ResumeOp(ctx, op.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ThrottleOp(ctx, op.ID, 0); err != nil {
		t.Fatal(err)
	}
	done := waitOp(t, admin, op.ID)
	mustSucceed(t, done)
	if done.Progress.SlotsDone != 2000 {
		t.Fatalf("reshard progress %+v, want 2000 slots done", done.Progress)
	}
	redisCLICheck(t, rc)
	for i := range 3000 {
		if v, err := rdb.Get(ctx, "k"+strconv.Itoa(i)).Int(); err != nil || v != i {
			t.Fatalf("key k%d after the reshard = %d, %v", i, v, err)
		}
	}

	// A cancelled move leaves the cluster consistent.
	op, _, err = admin.StartOp(ctx, "legacy", "reshard", map[string]any{"from": m1, "to": m0, "slots": 2000, "throttle": 100}, false)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "keys to start moving", func() bool {
		o, err := admin.Op(ctx, op.ID)
		return err == nil && o.Progress.KeysMoved > 0
	})
	if _, err := admin.CancelOp(ctx, op.ID); err != nil {
		t.Fatal(err)
	}
	if o := waitOp(t, admin, op.ID); o.State != "cancelled" || len(o.CheckFindings) != 0 {
		t.Fatalf("cancelled reshard: %+v", o)
	}
	redisCLICheck(t, rc)

	// Failover of master 0 to its replica.
	op, _, err = admin.StartOp(ctx, "legacy", "failover", api.FailoverParams{Master: m0}, false)
	if err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, waitOp(t, admin, op.ID))
	waitFor(t, "the topology to show the new master", func() bool {
		d, err := admin.Cluster(ctx, "legacy")
		if err != nil {
			return false
		}
		for _, n := range d.Nodes {
			if n.Addr == rc.ReplicasOf(0)[0].Addr {
				return n.Role == "master"
			}
		}
		return false
	})
	redisCLICheck(t, rc)
	for i := range 3000 {
		if v, err := rdb.Get(ctx, "k"+strconv.Itoa(i)).Int(); err != nil || v != i {
			t.Fatalf("key k%d after the failover = %d, %v", i, v, err)
		}
	}

	// Add a fresh node as an empty master, give it slots, then remove it:
	// its slots are drained first and no key is lost.
	fresh, freshReplica := testenv.StartRedis(t, rc.NodeOptions()), testenv.StartRedis(t, rc.NodeOptions())
	for _, p := range []api.AddNodeParams{{Addr: fresh.Addr}, {Addr: freshReplica.Addr, ReplicaOf: fresh.Addr}} {
		op, _, err = admin.StartOp(ctx, "legacy", "add-node", p, false)
		if err != nil {
			t.Fatal(err)
		}
		mustSucceed(t, waitOp(t, admin, op.ID))
	}
	op, _, err = admin.StartOp(ctx, "legacy", "rebalance", api.RebalanceParams{}, false)
	if err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, waitOp(t, admin, op.ID))
	_, dryRm, err := admin.StartOp(ctx, "legacy", "remove-node", api.RemoveNodeParams{Node: fresh.Addr}, true)
	if err != nil || !strings.Contains(dryRm.PlanText, "drain "+fresh.Addr) {
		t.Fatalf("remove-node dry run = %+v, %v", dryRm, err)
	}
	// The master first (its replica is re-attached to another master), then
	// that replica.
	for _, n := range []string{fresh.Addr, freshReplica.Addr} {
		op, _, err = admin.StartOp(ctx, "legacy", "remove-node", api.RemoveNodeParams{Node: n}, false)
		if err != nil {
			t.Fatal(err)
		}
		mustSucceed(t, waitOp(t, admin, op.ID))
	}
	redisCLICheck(t, rc)
	for i := range 3000 {
		if v, err := rdb.Get(ctx, "k"+strconv.Itoa(i)).Int(); err != nil || v != i {
			t.Fatalf("key k%d after add, rebalance and remove = %d, %v", i, v, err)
		}
	}

	// Reading the password is audited.
	entries, err := admin.Audit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var saw bool
	for _, e := range entries {
		if e.Action == "GET /api/v1/clusters/legacy/credentials" && e.User == "admin" {
			saw = true
		}
	}
	if !saw {
		t.Fatal("reading the credentials left no audit entry")
	}
}
