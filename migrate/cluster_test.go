package migrate_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/migrate"
)

// TestClusterToCluster: a 3-master source cluster with every type, big
// values, a function and 100,000 volatile keys, plus writers, is copied into
// a 4-master cluster (another slot layout); after the drain every key and
// every writer log matches.
func TestClusterToCluster(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	src := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 3})
	dst := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 4})
	sc := src.Client(t)
	preload(t, ctx, sc, 100_000)
	for _, m := range src.Masters() { // FUNCTION LOAD goes to one node only
		must(t, m.Client(t).FunctionLoadReplace(ctx, "#!lua name=r2mlib\nredis.register_function('r2m_one', function(keys, args) return 1 end)").Err())
	}
	w := startWriters(t, sc, 4, 0)
	srcEP := migrate.Endpoint{Addrs: src.Addrs()[:1]}
	dstEP := migrate.Endpoint{Addrs: dst.Addrs()[:1]}
	l := startLink(t, migrate.Options{ID: "c2c", Source: srcEP, Target: dstEP, SpoolDir: t.TempDir(), BigValueBytes: 64 << 10})
	l.waitCaughtUp(t, ctx)
	w.halt()
	l.waitCaughtUp(t, ctx)
	st := l.Stats()
	if len(st.Shards) != 3 {
		t.Errorf("%d source shards, want 3", len(st.Shards))
	}
	t.Logf("stats: rdb keys %d, commands %d, units %d, retries %d, ops written %d", st.RDBKeys, st.Commands, st.Units, st.Retries, w.ops.Load())
	must(t, l.stop())
	checkWriters(t, ctx, dst.Client(t), w)
	checkFunctions(t, ctx, dst)
	verify(t, ctx, srcEP, dstEP)
}

// TestSourceFailoverMidStream: while writers run and the link streams, a
// source replica takes over its master (CLUSTER FAILOVER). The link resumes
// on the new master with PSYNC (no second full sync) and loses nothing.
func TestSourceFailoverMidStream(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	src := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 3, Replicas: 1})
	dst := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 3})
	sc := src.Client(t)
	w := startWriters(t, sc, 4, 0)
	srcEP := migrate.Endpoint{Addrs: src.Addrs()[:1]}
	dstEP := migrate.Endpoint{Addrs: dst.Addrs()[:1]}
	l := startLink(t, migrate.Options{ID: "fo", Source: srcEP, Target: dstEP, SpoolDir: t.TempDir()})
	l.waitCaughtUp(t, ctx)

	replica := src.ReplicasOf(0)[0]
	must(t, replica.Client(t).ClusterFailover(ctx).Err())
	waitFor(t, ctx, "the replica to become master", func() bool {
		role, err := replica.Client(t).Do(ctx, "ROLE").Slice()
		return err == nil && len(role) > 0 && role[0] == "master"
	})
	// Writes keep going to the new master; the link must follow it.
	before := w.ops.Load()
	waitFor(t, ctx, "writers to write through the new master", func() bool { return w.ops.Load() > before+3000 })
	waitFor(t, ctx, "the link to read from the new master", func() bool {
		for _, s := range l.Stats().Shards {
			if s.Addr == replica.Addr {
				return true
			}
		}
		return false
	})
	l.waitCaughtUp(t, ctx)
	w.halt()
	l.waitCaughtUp(t, ctx)
	st := l.Stats()
	for _, s := range st.Shards {
		if s.FullSyncs != 1 {
			t.Errorf("shard %s: %d full syncs, want 1 (the failover must resume with PSYNC)", s.Shard, s.FullSyncs)
		}
	}
	t.Logf("stats: commands %d, retries %d, shards %+v", st.Commands, st.Retries, st.Shards)
	must(t, l.stop())
	checkWriters(t, ctx, dst.Client(t), w)
	verify(t, ctx, srcEP, dstEP)
}

// TestTargetReshardMidStream: while writers run and the link streams, the
// target moves the slots the writers use to another master, key by key
// (MIGRATING/IMPORTING, so the link sees ASK and then MOVED). Nothing is
// lost or applied twice.
func TestTargetReshardMidStream(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	src := testenv.StartRedis(t, testenv.RedisOptions{})
	dst := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 3})
	sc := src.Client(t)
	w := startWriters(t, sc, 4, 0)
	srcEP := migrate.Endpoint{Addrs: []string{src.Addr}}
	dstEP := migrate.Endpoint{Addrs: dst.Addrs()[:1]}
	l := startLink(t, migrate.Options{ID: "rs", Source: srcEP, Target: dstEP, SpoolDir: t.TempDir()})
	l.waitCaughtUp(t, ctx)
	for i := range 2 {
		slot := keySlotOf(t, ctx, dst.Client(t), "{w"+strconv.Itoa(i)+"}")
		moveSlot(t, ctx, dst, slot)
	}
	l.waitCaughtUp(t, ctx)
	w.halt()
	l.waitCaughtUp(t, ctx)
	st := l.Stats()
	t.Logf("stats: commands %d, retries %d, moves %d, asks %d", st.Commands, st.Retries, st.Moves, st.Asks)
	if st.Moves+st.Asks == 0 {
		t.Error("the link saw no MOVED or ASK: the reshard did not happen under it")
	}
	must(t, l.stop())
	checkWriters(t, ctx, dst.Client(t), w)
	verify(t, ctx, srcEP, dstEP)
}

func keySlotOf(t *testing.T, ctx context.Context, c *redis.ClusterClient, key string) int {
	n, err := c.ClusterKeySlot(ctx, key).Result()
	must(t, err)
	return int(n)
}

// moveSlot moves slot to the next master, one key per MIGRATE, while
// writers keep writing to it.
func moveSlot(t *testing.T, ctx context.Context, cl *testenv.RedisCluster, slot int) {
	t.Helper()
	var from, to *testenv.RedisServer
	ms := cl.Masters()
	for i, m := range ms {
		c := m.Client(t)
		n, err := c.ClusterCountKeysInSlot(ctx, slot).Result()
		must(t, err)
		owner := false
		shards, err := c.ClusterShards(ctx).Result()
		must(t, err)
		myID, err := c.ClusterMyID(ctx).Result()
		must(t, err)
		for _, sh := range shards {
			for _, r := range sh.Slots {
				if slot >= int(r.Start) && slot <= int(r.End) {
					for _, nd := range sh.Nodes {
						if nd.ID == myID && nd.Role == "master" {
							owner = true
						}
					}
				}
			}
		}
		if owner {
			from, to = m, ms[(i+1)%len(ms)]
			t.Logf("moving slot %d (%d keys) from %s to %s", slot, n, from.Addr, to.Addr)
			break
		}
	}
	if from == nil {
		t.Fatalf("no master owns slot %d", slot)
	}
	fc, tc := from.Client(t), to.Client(t)
	fromID, err := fc.ClusterMyID(ctx).Result()
	must(t, err)
	toID, err := tc.ClusterMyID(ctx).Result()
	must(t, err)
	must(t, tc.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", fromID).Err())
	must(t, fc.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", toID).Err())
	host, port, _ := strings.Cut(to.Addr, ":")
	for {
		keys, err := fc.ClusterGetKeysInSlot(ctx, slot, 1).Result()
		must(t, err)
		if len(keys) == 0 {
			break
		}
		err = fc.Do(ctx, "MIGRATE", host, port, "", 0, 5000, "REPLACE", "KEYS", keys[0]).Err()
		if err != nil && !strings.Contains(err.Error(), "NOKEY") {
			t.Fatalf("MIGRATE %s: %v", keys[0], err)
		}
	}
	for _, m := range cl.Masters() {
		must(t, m.Client(t).Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", toID).Err())
	}
}

// waitFor polls cond every 20 ms until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}
