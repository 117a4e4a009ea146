package migrate_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/migrate"
)

// TestRefreshedTTLDuringSlowRDB is RedisShake's #981: a key with a 5 s TTL
// that the source refreshes every 3 s while the RDB phase is throttled past
// 10 s must exist on the target at the end, with the source's expiry. A key
// with a short TTL that nobody refreshes must be gone, as on the source.
func TestRefreshedTTLDuringSlowRDB(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	src := testenv.StartRedis(t, testenv.RedisOptions{})
	dst := testenv.SharedRedisCluster(t, testenv.ClusterOptions{Masters: 3})
	tc := dst.Client(t)
	must(t, tc.ForEachMaster(ctx, func(ctx2 ctxT, m redisClient) error { return m.FlushAll(ctx2).Err() }))
	sc := src.Client(t)
	const filler = 1050
	p := sc.Pipeline()
	for i := range filler {
		p.Set(ctx, "fill:"+strconv.Itoa(i), i, 0)
	}
	_, err := p.Exec(ctx)
	must(t, err)
	must(t, sc.Set(ctx, "refreshed", "v", 5*time.Second).Err())
	must(t, sc.Set(ctx, "short", "v", 3*time.Second).Err())

	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(3 * time.Second)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if err := sc.Expire(ctx, "refreshed", 5*time.Second).Err(); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	defer func() { close(stop); <-done }()

	srcEP := migrate.Endpoint{Addrs: []string{src.Addr}}
	dstEP := migrate.Endpoint{Addrs: dst.Addrs()[:1]}
	start := time.Now()
	// 100 commands/s in pipelines of 16: the RDB's 1,052 keys take 10.5 s.
	l := startLink(t, migrate.Options{ID: "ttl", Source: srcEP, Target: dstEP, SpoolDir: t.TempDir(), RateLimit: 100, Window: 16})
	waitFor(t, ctx, "the RDB phase to end", func() bool {
		st := l.Stats()
		if len(st.Shards) == 0 {
			return false
		}
		for _, s := range st.Shards {
			if s.Phase != migrate.PhaseStream {
				return false
			}
		}
		return true
	})
	rdbTook := time.Since(start)
	if rdbTook < 10*time.Second {
		t.Errorf("the RDB phase took %v, want over 10 s for this test to mean anything", rdbTook)
	}
	l.SetRateLimit(0)
	l.waitCaughtUp(t, ctx)
	// Let one more refresh pass through the stream.
	first, err := sc.PExpireTime(ctx, "refreshed").Result()
	must(t, err)
	waitFor(t, ctx, "a refresh after the RDB phase", func() bool {
		exp, err := sc.PExpireTime(ctx, "refreshed").Result()
		return err == nil && exp > first
	})
	l.waitCaughtUp(t, ctx)

	n, err := tc.Exists(ctx, "refreshed").Result()
	must(t, err)
	if n != 1 {
		t.Fatalf("the refreshed key is missing on the target after an RDB phase of %v (the #981 loss)", rdbTook)
	}
	sExp, err := sc.PExpireTime(ctx, "refreshed").Result()
	must(t, err)
	tExp, err := tc.PExpireTime(ctx, "refreshed").Result()
	must(t, err)
	if d := sExp - tExp; d > time.Second || d < -time.Second {
		t.Errorf("refreshed key expires at %v on the source, %v on the target", sExp, tExp)
	}
	if n, _ := tc.Exists(ctx, "short").Result(); n != 0 {
		t.Errorf("the unrefreshed short-lived key still exists on the target")
	}
	t.Logf("RDB phase %v; refreshed key present, expiry within 1 s of the source", rdbTook.Round(time.Millisecond))
	must(t, l.stop())
}
