package manager

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/meta"
)

// TestScaleOutAndInWhileWriting deploys 3×1 on three agents, scales to 4
// masters and back to 3 while 8 writers run, and checks that every
// acknowledged write is there and redis-cli finds the cluster clean.
func TestScaleOutAndInWhileWriting(t *testing.T) {
	url := testenv_SharedEtcdURL(t)
	ts := startLeader(t, url, func(c *Config) {
		c.ObserveInterval = 300 * time.Millisecond
		c.PortBase, c.PortSpan = testPortBase(), 100
	})
	var agentDirs []string
	for _, h := range []string{"host-a", "host-b", "host-c"} {
		agentDirs = append(agentDirs, startAgent(t, url, h))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	admin := ts.adminClient(t)
	waitFor(t, "three live agents", func() bool {
		hs, err := ts.liveHosts(ctx)
		return err == nil && len(hs) == 3
	})
	// Redis's default node timeout: on a loaded 2-core machine a shorter
	// one lets a starved master be failed over, which loses writes for a
	// reason that has nothing to do with scaling.
	op, _, err := admin.CreateCluster(ctx, api.CreateParams{Name: "grow", Masters: 3, Replicas: 1}, false)
	if err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, waitOp(t, admin, op.ID))
	cred, err := admin.Credentials(ctx, "grow")
	if err != nil {
		t.Fatal(err)
	}
	detail, err := admin.Cluster(ctx, "grow")
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{detail.Nodes[0].Addr}, Password: cred.Password})
	defer rdb.Close()

	// Writers: unique keys with known values, and counters.
	wctx, stop := context.WithCancel(ctx)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		acked = map[string]int{}
		incrs [8]atomic.Int64
	)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; wctx.Err() == nil; i++ {
				// Paced, about 1,000 writes/s per writer: enough to catch a
				// lost write at any moment of a move without starving the
				// two cores that Redis and the mover share.
				time.Sleep(time.Millisecond)
				k := fmt.Sprintf("w%d:%d", w, i)
				if rdb.Set(wctx, k, i, 0).Err() == nil {
					mu.Lock()
					acked[k] = i
					mu.Unlock()
				}
				if rdb.Incr(wctx, fmt.Sprintf("counter:%d", w)).Err() == nil {
					incrs[w].Add(1)
				}
			}
		})
	}

	_, dry, err := admin.StartOp(ctx, "grow", "scale", map[string]any{"masters": 4}, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("scale-out plan:\n%s", dry.PlanText)
	op, _, err = admin.StartOp(ctx, "grow", "scale", map[string]any{"masters": 4}, false)
	if err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, waitOp(t, admin, op.ID))
	waitShape(t, admin, "grow", 4, 4)
	op, _, err = admin.StartOp(ctx, "grow", "scale", map[string]any{"masters": 3}, false)
	if err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, waitOp(t, admin, op.ID))
	stop()
	wg.Wait()
	waitShape(t, admin, "grow", 3, 3)

	// Every acknowledged write is there.
	lost := 0
	for k, v := range acked {
		if got, err := rdb.Get(ctx, k).Int(); err != nil || got != v {
			lost++
		}
	}
	for w := range 8 {
		got, err := rdb.Get(ctx, fmt.Sprintf("counter:%d", w)).Int64()
		if err != nil || got < incrs[w].Load() {
			t.Errorf("counter %d = %d, %v; acknowledged %d increments", w, got, err, incrs[w].Load())
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged keys lost; automatic failovers in the instance logs: %v", lost, len(acked), failoverLines(agentDirs))
	}
	t.Logf("%d acknowledged keys all present", len(acked))
	d, _ := admin.Cluster(ctx, "grow")
	cli, _ := testenv.RedisCLIPath()
	if out, err := exec.Command(cli, "-a", cred.Password, "--no-auth-warning", "--cluster", "check", d.Nodes[0].Addr).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster check: %v\n%s", err, out)
	}
	// The removed nodes' instances are gone from the agents' desired state.
	st := meta.NewStore(ts.cfg.Coordinator)
	total := 0
	for _, h := range []string{"host-a", "host-b", "host-c"} {
		if ds, _, err := st.Desired(h).Get(ctx); err == nil {
			total += len(ds.Instances)
		}
	}
	if total != 6 {
		t.Fatalf("agents still desire %d instances, want 6", total)
	}
}

// waitShape waits for the topology record to show the masters and
// replicas, and says what it shows instead when it does not.
func waitShape(t *testing.T, c *api.Client, name string, masters, replicas int) {
	t.Helper()
	var last *api.ClusterDetail
	defer func() {
		if t.Failed() && last != nil {
			for _, n := range last.Nodes {
				t.Logf("node %s %s %s master=%s slots=%v", n.Addr, n.Role, n.Health, n.MasterID, n.Slots)
			}
		}
	}()
	waitFor(t, fmt.Sprintf("%d masters and %d replicas in the topology", masters, replicas), func() bool {
		d, err := c.Cluster(context.Background(), name)
		if err != nil {
			return false
		}
		last = d
		return d.Masters == masters && d.Replicas == replicas
	})
}

// failoverLines finds the instance log lines of automatic failovers, which
// tell a loss caused by Redis's asynchronous replication apart from one
// caused by an operation.
func failoverLines(dirs []string) []string {
	var out []string
	for _, d := range dirs {
		logs, _ := filepath.Glob(filepath.Join(d, "*", "*.log"))
		for _, l := range logs {
			b, err := os.ReadFile(l)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, "failover election") || strings.Contains(line, "Failover election won") || strings.Contains(line, "marked as failing") {
					out = append(out, filepath.Base(filepath.Dir(l))+": "+line)
				}
			}
		}
	}
	return out
}
