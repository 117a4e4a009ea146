package migrate_test

import (
	"errors"
	"testing"
	"time"

	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/migrate"
)

// TestOtherDatabaseNeedsAMap: a source key in database 3 stops the link
// with ErrUnmappedDB (a cluster has only database 0); with a db map 3->0 the
// keys of both databases arrive, from the RDB and from the stream.
func TestOtherDatabaseNeedsAMap(t *testing.T) {
	ctx := ctxFor(t, time.Minute)
	src := testenv.StartRedis(t, testenv.RedisOptions{})
	dst := testenv.SharedRedisCluster(t, testenv.ClusterOptions{Masters: 3})
	tc := dst.Client(t)
	must(t, tc.ForEachMaster(ctx, func(ctx2 ctxT, m redisClient) error { return m.FlushAll(ctx2).Err() }))
	sc := src.Client(t)
	must(t, sc.Set(ctx, "in0", "a", 0).Err())
	// One connection (a pipeline) selects database 3 and back.
	p := sc.Pipeline()
	p.Do(ctx, "SELECT", 3)
	p.Set(ctx, "in3", "c", 0)
	p.Do(ctx, "SELECT", 0)
	_, err := p.Exec(ctx)
	must(t, err)

	srcEP := migrate.Endpoint{Addrs: []string{src.Addr}}
	dstEP := migrate.Endpoint{Addrs: dst.Addrs()[:1]}
	l, err := migrate.New(migrate.Options{ID: "db", Source: srcEP, Target: dstEP, SpoolDir: t.TempDir(), Logger: testLogger(t)})
	must(t, err)
	err = l.Run(ctx)
	if !errors.Is(err, migrate.ErrUnmappedDB) {
		t.Fatalf("Run with a key in database 3 = %v, want ErrUnmappedDB", err)
	}
	t.Logf("as expected: %v", err)

	rl := startLink(t, migrate.Options{ID: "db2", Source: srcEP, Target: dstEP, SpoolDir: t.TempDir(), DBMap: map[int]int{3: 0}})
	rl.waitCaughtUp(t, ctx)
	// A write to database 3 through the stream.
	p = sc.Pipeline()
	p.Do(ctx, "SELECT", 3)
	p.Set(ctx, "streamed3", "b", 0)
	p.Do(ctx, "SELECT", 0)
	_, err = p.Exec(ctx)
	must(t, err)
	rl.waitCaughtUp(t, ctx)
	must(t, rl.stop())
	for _, k := range []string{"in0", "in3", "streamed3"} {
		if n, _ := tc.Exists(ctx, k).Result(); n != 1 {
			t.Errorf("key %s (from database 3 or 0) is missing on the target", k)
		}
	}
}
