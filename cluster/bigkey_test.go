package cluster_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/r2m-go/r2m/cluster"
	"github.com/r2m-go/r2m/internal/testenv"
)

// livenessProbe PINGs every node in a loop and records the slowest answer
// per node, to show how long a move blocked each of them.
type livenessProbe struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	worst  map[string]time.Duration
}

func probeLiveness(t *testing.T, nodes []*testenv.RedisServer) *livenessProbe {
	ctx, cancel := context.WithCancel(context.Background())
	p := &livenessProbe{cancel: cancel, worst: map[string]time.Duration{}}
	for _, n := range nodes {
		cl := n.Client(t)
		p.wg.Go(func() {
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				t0 := time.Now()
				_ = cl.Ping(ctx).Err()
				d := time.Since(t0)
				p.mu.Lock()
				p.worst[n.Addr] = max(p.worst[n.Addr], d)
				p.mu.Unlock()
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	t.Cleanup(p.stop)
	return p
}

func (p *livenessProbe) stop() { p.cancel(); p.wg.Wait() }

func TestBigKeysMoveWithoutFailover(t *testing.T) {
	c := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 2, Replicas: 1})
	e := newEngine(t, "")
	ctx := ctxFor(t, 240*time.Second)
	src, dst := c.Masters()[0], c.Masters()[1]
	direct := src.Client(t)
	strKey, hashKey := keyInSlot("bigstr", 20), keyInSlot("bighash", 21)

	// A 200 MB string of random bytes (so RDB compression cannot shrink
	// the payload MIGRATE sends), built from 1 MB appends.
	chunk := make([]byte, 1<<20)
	for range 200 {
		if _, err := rand.Read(chunk); err != nil {
			t.Fatal(err)
		}
		if err := direct.Append(ctx, strKey, string(chunk)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// A hash of 1,000,000 fields, 1,000 per HSET, pipelined.
	const fields = 1_000_000
	for base := 0; base < fields; base += 100_000 {
		pipe := direct.Pipeline()
		for b := base; b < base+100_000; b += 1000 {
			args := make([]any, 0, 2000)
			for i := b; i < b+1000; i++ {
				args = append(args, fmt.Sprintf("field:%d", i), i)
			}
			pipe.HSet(ctx, hashKey, args...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want := fillSlots(t, c.Client(t), []int{20, 21, 22}, 200)
	if _, err := e.WaitConverged(ctx, src.Addr, 60*time.Second); err != nil {
		t.Fatal(err)
	}

	probe := probeLiveness(t, c.Nodes)
	t0 := time.Now()
	res, err := e.MoveSlots(ctx, src.Addr, movesOf([]int{20, 21, 22}, src.Addr, dst.Addr), cluster.MoveOptions{})
	took := time.Since(t0)
	probe.stop()
	if err != nil {
		t.Fatalf("MoveSlots: %v", err)
	}
	t.Logf("moved 3 slots in %v: %s", took, res.Progress)
	for _, bk := range res.BigKeys {
		t.Logf("big key found before the move: %s", bk)
	}
	if len(res.BigKeys) != 2 {
		t.Fatalf("scan reported %d big keys, want 2 (the string and the hash)", len(res.BigKeys))
	}
	for _, n := range c.Nodes {
		t.Logf("liveness: slowest PING on %s during the move: %v", n.Addr, probe.worst[n.Addr].Round(time.Millisecond))
	}

	// No failover: every node keeps its role, nobody is flagged failing.
	v := requireHealthy(t, e, src.Addr, "")
	for i, m := range c.Masters() {
		if n := v.Node(m.Addr); n == nil || !n.IsMaster() {
			t.Errorf("master %s lost its role: failover triggered\n%s", m.Addr, v)
		}
		for _, r := range c.ReplicasOf(i) {
			if n := v.Node(r.Addr); n == nil || n.Role != cluster.RoleReplica {
				t.Errorf("replica %s changed role: failover triggered\n%s", r.Addr, v)
			}
		}
	}
	for _, n := range v.Nodes {
		if info := n.Info; info != nil {
			t.Logf("%s cluster_current_epoch %s", n.Addr, info["cluster_current_epoch"])
		}
	}
	cl := c.Client(t)
	if n, err := cl.StrLen(ctx, strKey).Result(); err != nil || n != 200<<20 {
		t.Errorf("STRLEN %s = %d, %v after the move", strKey, n, err)
	}
	if n, err := cl.HLen(ctx, hashKey).Result(); err != nil || n != fields {
		t.Errorf("HLEN %s = %d, %v after the move", hashKey, n, err)
	}
	for _, k := range []string{strKey, hashKey} {
		if got, err := dst.Client(t).Exists(ctx, k).Result(); err != nil || got != 1 {
			t.Errorf("big key %s is not on the target: EXISTS = %d, %v", k, got, err)
		}
	}
	requireValues(t, cl, want)
}
