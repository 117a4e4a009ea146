package migrate_test

import (
	"testing"
	"time"

	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/migrate"
)

// TestStandaloneToCluster: a standalone source with every type, big
// values, a function and 100,000 volatile keys, plus writers, is copied into
// a 3-master cluster; after the writers stop and the link drains, every key
// is equal (content and TTL within 1 s) and the writers' logs hold on the
// target. Cross-slot commands from the standalone source are split or
// resynced.
func TestStandaloneToCluster(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	src := testenv.StartRedis(t, testenv.RedisOptions{})
	dst := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 3})
	sc := src.Client(t)
	preload(t, ctx, sc, 100_000)

	w := startWriters(t, sc, 4, 0)
	defer func() {
		select {
		case <-w.stop:
		default:
			w.halt()
		}
	}()
	srcEP := migrate.Endpoint{Addrs: []string{src.Addr}}
	dstEP := migrate.Endpoint{Addrs: dst.Addrs()}
	l := startLink(t, migrate.Options{ID: "t1", Source: srcEP, Target: dstEP, SpoolDir: t.TempDir(), BigValueBytes: 64 << 10})
	l.waitCaughtUp(t, ctx)

	// Cross-slot commands only a standalone source can send.
	must(t, sc.MSet(ctx, "ms:a", "1", "ms:b", "2", "ms:c", "3").Err())
	must(t, sc.Del(ctx, "ms:a", "ms:c").Err())
	must(t, sc.Set(ctx, "rn:from", "moved", 0).Err())
	must(t, sc.Rename(ctx, "rn:from", "rn:to").Err())
	must(t, sc.SAdd(ctx, "su:1", "a", "b").Err())
	must(t, sc.SAdd(ctx, "su:2", "c").Err())
	must(t, sc.SUnionStore(ctx, "su:dst", "su:1", "su:2").Err())
	tx := sc.TxPipeline()
	tx.Incr(ctx, "tx:a")
	tx.Incr(ctx, "tx:b")
	_, err := tx.Exec(ctx)
	must(t, err)

	l.waitCaughtUp(t, ctx)
	w.halt()
	l.waitCaughtUp(t, ctx)
	st := l.Stats()
	t.Logf("stats: rdb keys %d, commands %d, units %d, retries %d, resyncs %d, pieces %d, ops written %d",
		st.RDBKeys, st.Commands, st.Units, st.Retries, st.Resyncs, st.Pieces, w.ops.Load())
	if st.Pieces < 4 {
		t.Errorf("%d big values written in pieces, want 4", st.Pieces)
	}
	if st.Resyncs < 2 {
		t.Errorf("%d keyed resyncs, want at least 2 (RENAME and SUNIONSTORE across slots)", st.Resyncs)
	}
	must(t, l.stop())

	tc := dst.Client(t)
	checkWriters(t, ctx, tc, w)
	checkFunctions(t, ctx, dst)
	verify(t, ctx, srcEP, dstEP)
}
