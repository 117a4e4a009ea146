package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/r2m-go/r2m/cluster"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// fill writes n keys "prefix:i" = "val:i" through the cluster client.
func fill(t *testing.T, cl *redis.ClusterClient, prefix string, n int) {
	t.Helper()
	ctx := ctxFor(t, 60*time.Second)
	const chunk = 1000
	for i := 0; i < n; i += chunk {
		pipe := cl.Pipeline()
		for j := i; j < min(i+chunk, n); j++ {
			pipe.Set(ctx, fmt.Sprintf("%s:%d", prefix, j), fmt.Sprintf("val:%d", j), 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatalf("fill: %v", err)
		}
	}
}

// requireFilled checks that fill's keys are all there.
func requireFilled(t *testing.T, cl *redis.ClusterClient, prefix string, n int) {
	t.Helper()
	ctx := ctxFor(t, 60*time.Second)
	const chunk = 1000
	for i := 0; i < n; i += chunk {
		pipe := cl.Pipeline()
		cmds := map[int]*redis.StringCmd{}
		for j := i; j < min(i+chunk, n); j++ {
			cmds[j] = pipe.Get(ctx, fmt.Sprintf("%s:%d", prefix, j))
		}
		_, _ = pipe.Exec(ctx)
		for j, c := range cmds {
			if got, err := c.Result(); err != nil || got != fmt.Sprintf("val:%d", j) {
				t.Fatalf("key %s:%d = %q, %v; want val:%d", prefix, j, got, err, j)
			}
		}
	}
}

// slotsOf lists up to n slots the master at addr owns.
func slotsOf(t *testing.T, v *cluster.View, addr string, n int) []int {
	t.Helper()
	node := v.Node(addr)
	if node == nil {
		t.Fatalf("node %s not in view:\n%s", addr, v)
	}
	s := v.SlotsOf(node.ID)
	if len(s) < n {
		t.Fatalf("node %s owns %d slots, want at least %d", addr, len(s), n)
	}
	return s[:n]
}

func movesOf(slots []int, from, to string) []cluster.Move {
	out := make([]cluster.Move, len(slots))
	for i, s := range slots {
		out[i] = cluster.Move{Slot: s, From: from, To: to}
	}
	return out
}

func TestMoveSlotsMovesKeysAndReportsProgress(t *testing.T) {
	c := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 3, Password: "pw"})
	e := newEngine(t, "pw")
	cl := c.Client(t)
	fill(t, cl, "mv", 5000)
	ctx := ctxFor(t, 120*time.Second)
	v, err := e.Inspect(ctx, c.Nodes[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	src, dst := c.Masters()[0].Addr, c.Masters()[1].Addr
	slots := slotsOf(t, v, src, 300)
	store := &cluster.MemoryStore{}
	var last cluster.Progress
	calls := 0
	res, err := e.MoveSlots(ctx, src, movesOf(slots, src, dst), cluster.MoveOptions{
		Store: store, Progress: func(p cluster.Progress) { last = p; calls++ },
	})
	if err != nil {
		t.Fatalf("MoveSlots: %v", err)
	}
	t.Logf("result: %s, migration %s", res.Progress, res.Migration)
	if res.SlotsDone != len(slots) || res.Keys == 0 || res.Keys != res.KeysTotal {
		t.Fatalf("result %+v: want %d slots done and every scanned key moved", res.Progress, len(slots))
	}
	if calls == 0 || last.SlotsDone != len(slots) {
		t.Fatalf("progress callback called %d times, last %+v", calls, last)
	}
	if res.Migration != cluster.MigrationClassic {
		t.Fatalf("migration = %s on Redis 7.0, want classic", res.Migration)
	}
	states, _ := store.LoadSlots(ctx)
	for _, st := range states {
		if st.Phase != cluster.PhaseDone {
			t.Fatalf("slot %d phase %s, want done", st.Slot, st.Phase)
		}
	}
	requireHealthy(t, e, src, "pw")
	v, err = e.Inspect(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		if o := v.Owner(s); o == nil || o.Addr != dst {
			t.Fatalf("slot %d owner %v, want %s", s, o, dst)
		}
	}
	requireFilled(t, cl, "mv", 5000)
}

func TestMoveSlotsCancelStopsBetweenCommands(t *testing.T) {
	c := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 2})
	e := newEngine(t, "")
	ctx := ctxFor(t, 60*time.Second)
	v, err := e.Inspect(ctx, c.Nodes[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	src, dst := c.Masters()[0].Addr, c.Masters()[1].Addr
	mctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = e.MoveSlots(mctx, src, movesOf(slotsOf(t, v, src, 10), src, dst), cluster.MoveOptions{})
	if err == nil {
		t.Fatal("MoveSlots with a cancelled context succeeded")
	}
	requireHealthy(t, e, src, "")
}
