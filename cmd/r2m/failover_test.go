package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/manager"
)

// TestKill9LeaderMidRebalance runs two r2m server processes on one
// coordinator, starts a rebalance through the leader, kills the leader with
// SIGKILL halfway, and checks that the other server takes over, resumes the
// operation and completes it with a clean check, and that no key is lost.
func TestKill9LeaderMidRebalance(t *testing.T) {
	etcd := testenv.SharedEtcd(t)
	rc := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 3, Password: "k9"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rdb := rc.Client(t)
	for i := range 20000 {
		if err := rdb.Set(ctx, "key:"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	url := etcd.URL("/kill9-" + strconv.FormatInt(time.Now().UnixNano(), 36))
	dirA, dirB := t.TempDir(), t.TempDir()
	httpA, httpB := freeAddr(t), freeAddr(t)
	a := startR2M(t, "server", "--coordinator", url, "--data-dir", dirA, "--http", httpA, "--log-level", "info")
	waitHealth(t, "http://"+httpA, func(h *api.Health) bool { return h.IsLeader })
	b := startR2M(t, "server", "--coordinator", url, "--data-dir", dirB, "--http", httpB, "--log-level", "info")
	waitHealth(t, "http://"+httpB, func(h *api.Health) bool { return !h.IsLeader && h.Leader != "" })

	tok, err := os.ReadFile(manager.AdminTokenPath(dirA))
	if err != nil {
		t.Fatal(err)
	}
	viaB, err := api.NewClient("http://"+httpB, strings.TrimSpace(string(tok)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer viaB.CloseIdleConnections()
	op, _, err := viaB.Adopt(ctx, api.AdoptParams{Name: "k9", Seed: rc.Nodes[0].Addr, Password: "k9"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if op, err = viaB.WaitOp(ctx, op.ID, 100*time.Millisecond, nil); err != nil || op.State != "succeeded" {
		t.Fatalf("adopt: %+v, %v", op, err)
	}
	// Make the cluster lopsided, then rebalance it, throttled so that the
	// kill lands in the middle.
	m0, m1 := rc.Masters()[0].Addr, rc.Masters()[1].Addr
	op, _, err = viaB.StartOp(ctx, "k9", "reshard", api.ReshardParams{From: m0, To: m1, Slots: 4000}, false)
	if err != nil {
		t.Fatal(err)
	}
	if op, err = viaB.WaitOp(ctx, op.ID, 100*time.Millisecond, nil); err != nil || op.State != "succeeded" {
		t.Fatalf("reshard: %+v, %v", op, err)
	}
	op, _, err = viaB.StartOp(ctx, "k9", "rebalance", map[string]any{"throttle": 2000}, false)
	if err != nil {
		t.Fatal(err)
	}
	for {
		o, err := viaB.Op(ctx, op.ID)
		if err != nil {
			t.Fatal(err)
		}
		if o.Progress.SlotsDone > 0 && o.Progress.SlotsDone < o.Progress.SlotsTotal/2 {
			t.Logf("killing the leader at %d/%d slots", o.Progress.SlotsDone, o.Progress.SlotsTotal)
			break
		}
		if o.Done() {
			t.Fatalf("the rebalance ended before the kill: %+v", o)
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.kill() // SIGKILL: no record removed, no session closed
	waitHealth(t, "http://"+httpB, func(h *api.Health) bool { return h.IsLeader })
	final, err := viaB.WaitOp(ctx, op.ID, 200*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	if final.State != "succeeded" || len(final.CheckFindings) != 0 || !final.CheckDone {
		t.Fatalf("rebalance after the leader was killed: %+v", final)
	}
	if !strings.Contains(b.output(), "operation running") {
		t.Fatalf("the second server's log does not show it running the operation:\n%s", b.output())
	}
	cli, _ := testenv.RedisCLIPath()
	if out, err := exec.Command(cli, "-a", "k9", "--no-auth-warning", "--cluster", "check", rc.Nodes[0].Addr).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster check: %v\n%s", err, out)
	}
	for i := range 20000 {
		if v, err := rdb.Get(ctx, "key:"+strconv.Itoa(i)).Int(); err != nil || v != i {
			t.Fatalf("key:%d = %d, %v after the takeover", i, v, err)
		}
	}
}

func waitHealth(t *testing.T, base string, ok func(*api.Health) bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			var h api.Health
			derr := json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if derr == nil && ok(&h) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/healthz did not reach the wanted state", base)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
