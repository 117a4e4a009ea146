package manager

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/migrate"
)

// TestMigrateOp: a password-protected standalone Redis is migrated into an
// adopted cluster by a migrate operation. The password is stored apart and
// never shows in the operation; the operation succeeds once the target has
// caught up and the data is equal. A second operation (until=cancel) is
// paused, the source written meanwhile, resumed with a throttle (the link
// resumes with PSYNC: no second full sync), and cancelled once caught up.
func TestMigrateOp(t *testing.T) {
	target := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 3, Password: "tgt-pw"})
	src := testenv.StartRedis(t, testenv.RedisOptions{Password: "src-pw"})
	ts := startLeader(t, testenv_SharedEtcdURL(t), func(c *Config) { c.ObserveInterval = 200 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	admin := ts.adminClient(t)
	op, _, err := admin.Adopt(ctx, api.AdoptParams{Name: "dst", Seed: target.Nodes[0].Addr, Password: "tgt-pw"}, false)
	if err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, waitOp(t, admin, op.ID))

	sc := src.Client(t)
	for i := range 2000 {
		if err := sc.Set(ctx, "k:"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// A password in the URL is refused.
	if _, _, err := admin.StartOp(ctx, "dst", "migrate", api.MigrateParams{From: "redis://:src-pw@" + src.Addr, Link: "m1"}, true); !api.IsStatus(err, 400) {
		t.Fatalf("migrate with a password in from: %v, want 400", err)
	}
	if err := admin.SetSyncCredentials(ctx, "m1", "src-pw"); err != nil {
		t.Fatal(err)
	}
	_, dry, err := admin.StartOp(ctx, "dst", "migrate", api.MigrateParams{From: "redis://" + src.Addr, Link: "m1"}, true)
	if err != nil || !strings.Contains(dry.PlanText, "repl-backlog-size") {
		t.Fatalf("migrate dry run = %+v, %v; want the backlog warning", dry, err)
	}
	op, _, err = admin.StartOp(ctx, "dst", "migrate", api.MigrateParams{From: "redis://" + src.Addr, Link: "m1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	done := waitOp(t, admin, op.ID)
	mustSucceed(t, done)
	if strings.Contains(string(done.Params), "src-pw") {
		t.Fatalf("the operation shows the source password: %s", done.Params)
	}
	if done.Progress.KeysMoved != 2000 {
		t.Errorf("progress keys moved = %d, want 2000", done.Progress.KeysMoved)
	}
	link, err := admin.Sync(ctx, "m1")
	if err != nil || link.State != "stopped" || len(link.Shards) != 1 || !link.Shards[0].RDBDone {
		t.Fatalf("link m1 = %+v, %v", link, err)
	}
	srcEP := migrate.Endpoint{Addrs: []string{src.Addr}, Password: "src-pw"}
	dstEP := migrate.Endpoint{Addrs: target.Addrs(), Password: "tgt-pw"}
	if rep, err := migrate.Verify(ctx, migrate.VerifyOptions{Source: srcEP, Target: dstEP}); err != nil {
		t.Fatalf("verify: %v %+v", err, rep)
	}

	// until=cancel, with pause and resume.
	if err := admin.SetSyncCredentials(ctx, "m2", "src-pw"); err != nil {
		t.Fatal(err)
	}
	op, _, err = admin.StartOp(ctx, "dst", "migrate", api.MigrateParams{From: "redis://" + src.Addr, Link: "m2", Until: "cancel"}, false)
	if err != nil {
		t.Fatal(err)
	}
	streaming := func() bool {
		l, err := admin.Sync(ctx, "m2")
		return err == nil && len(l.Shards) == 1 && l.Shards[0].RDBDone && l.Shards[0].Phase == "stream"
	}
	waitFor(t, "link m2 to stream", streaming)
	if _, err := admin.PauseOp(ctx, op.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "link m2 to pause", func() bool { l, err := admin.Sync(ctx, "m2"); return err == nil && l.State == "paused" })
	for i := range 500 {
		if err := sc.Set(ctx, "p:"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.ThrottleOp(ctx, op.ID, 5000); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ResumeOp(ctx, op.ID); err != nil {
		t.Fatal(err)
	}
	tc := target.Client(t)
	waitFor(t, "the writes made while paused to arrive", func() bool {
		v, err := tc.Get(ctx, "p:499").Result()
		return err == nil && v == "499"
	})
	waitFor(t, "link m2 to record its PSYNC resume", func() bool {
		l, err := admin.Sync(ctx, "m2")
		return err == nil && l.State == "streaming" && l.Shards[0].Resumes >= 1
	})
	if l, err := admin.Sync(ctx, "m2"); err != nil || l.Shards[0].FullSyncs != 1 {
		t.Fatalf("link m2 after resume = %+v, %v; want 1 full sync", l, err)
	}
	if _, err := admin.CancelOp(ctx, op.ID); err != nil {
		t.Fatal(err)
	}
	if got := waitOp(t, admin, op.ID); got.State != "cancelled" {
		t.Fatalf("cancelled migrate op ended %s (%s)", got.State, got.Error)
	}
	if rep, err := migrate.Verify(ctx, migrate.VerifyOptions{Source: srcEP, Target: dstEP}); err != nil {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}

// TestSlotMovesGuardLinkSource: while a migration link reads a cluster,
// operations that move its slots are refused (dry runs too) with the
// link's name, and a failover is not; once the link is stopped they are
// allowed, and the stopped link can no longer resume. A link from a
// cluster whose slots are moving is refused.
func TestSlotMovesGuardLinkSource(t *testing.T) {
	source := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 3, Replicas: 1})
	target := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 3})
	ts := startLeader(t, testenv_SharedEtcdURL(t), func(c *Config) { c.ObserveInterval = 200 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	admin := ts.adminClient(t)
	for name, rc := range map[string]*testenv.RedisCluster{"src": source, "dst": target} {
		op, _, err := admin.Adopt(ctx, api.AdoptParams{Name: name, Seed: rc.Nodes[0].Addr}, false)
		if err != nil {
			t.Fatal(err)
		}
		mustSucceed(t, waitOp(t, admin, op.ID))
	}
	m0, m1 := source.Masters()[0].Addr, source.Masters()[1].Addr

	// A reshard of the source runs (throttled, so it is still running):
	// a link from it is refused.
	sc := source.Client(t)
	for i := range 2000 {
		if err := sc.Set(ctx, "k:"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	op, _, err := admin.StartOp(ctx, "src", "reshard", map[string]any{"from": m0, "to": m1, "slots": 1000, "throttle": 50}, false)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = admin.StartOp(ctx, "dst", "migrate", api.MigrateParams{FromCluster: "src", Link: "g1", Until: "cancel"}, true)
	if !api.IsStatus(err, 409) || !strings.Contains(err.Error(), op.ID) {
		t.Fatalf("migrate from a cluster being resharded: %v, want 409 naming %s", err, op.ID)
	}
	if _, err := admin.CancelOp(ctx, op.ID); err != nil {
		t.Fatal(err)
	}
	waitOp(t, admin, op.ID)

	// The link streams: moves of the source are refused, a failover is not.
	mig, _, err := admin.StartOp(ctx, "dst", "migrate", api.MigrateParams{FromCluster: "src", Link: "g1", Until: "cancel"}, false)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "link g1 to stream", func() bool {
		l, err := admin.Sync(ctx, "g1")
		return err == nil && l.State == "streaming"
	})
	for _, tc := range []struct {
		kind   string
		params any
	}{
		{"reshard", api.ReshardParams{From: m1, To: m0, Slots: 10}},
		{"rebalance", api.RebalanceParams{}},
		{"fix", map[string]any{}},
	} {
		for _, dry := range []bool{true, false} {
			_, _, err := admin.StartOp(ctx, "src", tc.kind, tc.params, dry)
			if !api.IsStatus(err, 409) || !strings.Contains(err.Error(), "migration link g1") {
				t.Errorf("%s (dry run %v) of a link's source: %v, want 409 naming link g1", tc.kind, dry, err)
			}
		}
	}
	if _, _, err := admin.StartOp(ctx, "src", "failover", api.FailoverParams{Master: m0}, true); err != nil {
		t.Errorf("failover dry run of a link's source: %v, want a plan", err)
	}
	if _, err := admin.CancelOp(ctx, mig.ID); err != nil {
		t.Fatal(err)
	}
	waitOp(t, admin, mig.ID)
	if l, err := admin.Sync(ctx, "g1"); err != nil || l.State != "stopped" {
		t.Fatalf("link g1 after cancel = %+v, %v; want stopped", l, err)
	}
	op, _, err = admin.StartOp(ctx, "src", "reshard", api.ReshardParams{From: m1, To: m0, Slots: 10}, false)
	if err != nil {
		t.Fatalf("reshard once the link stopped: %v", err)
	}
	mustSucceed(t, waitOp(t, admin, op.ID))

	// The stopped link cannot resume over those moves, nor be pointed at
	// another source; a new link name can start.
	for _, tc := range []struct {
		params api.MigrateParams
		want   string
	}{
		{api.MigrateParams{FromCluster: "src", Link: "g1"}, "cannot resume: operation " + op.ID},
		{api.MigrateParams{From: "redis://" + m0, Link: "g1"}, "already exists and reads cluster src"},
	} {
		if _, _, err := admin.StartOp(ctx, "dst", "migrate", tc.params, true); !api.IsStatus(err, 409) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("migrate %+v: %v, want 409 saying %q", tc.params, err, tc.want)
		}
	}
	if _, _, err := admin.StartOp(ctx, "dst", "migrate", api.MigrateParams{FromCluster: "src", Link: "g2"}, true); err != nil {
		t.Errorf("a new link from the resharded source: %v", err)
	}
}

// TestDeleteSync: a link that still runs cannot be deleted; a finished
// exactly-once link is deleted with its checkpoint keys on the target,
// its spool and its records, and the data stays; a password stored ahead
// of a migration can be deleted on its own.
func TestDeleteSync(t *testing.T) {
	target := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 3})
	src := testenv.StartRedis(t, testenv.RedisOptions{})
	ts := startLeader(t, testenv_SharedEtcdURL(t), func(c *Config) { c.ObserveInterval = 200 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	admin := ts.adminClient(t)
	op, _, err := admin.Adopt(ctx, api.AdoptParams{Name: "dst", Seed: target.Nodes[0].Addr}, false)
	if err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, waitOp(t, admin, op.ID))
	sc := src.Client(t)
	for i := range 1000 {
		if err := sc.Set(ctx, "k:"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	tc := target.Client(t)
	checkpoints := func() int {
		var n atomic.Int64
		err := tc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			keys, err := c.Keys(ctx, "__r2m_ck:*").Result()
			n.Add(int64(len(keys)))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return int(n.Load())
	}

	// Checkpoints are written with streamed commands, not the RDB.
	op, _, err = admin.StartOp(ctx, "dst", "migrate", api.MigrateParams{From: "redis://" + src.Addr, Link: "x1", Mode: "exactly-once", Until: "cancel"}, false)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "link x1 to stream", func() bool { l, err := admin.Sync(ctx, "x1"); return err == nil && l.State == "streaming" })
	for i := range 200 {
		if err := sc.Set(ctx, "s:"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "streamed writes to arrive", func() bool { v, err := tc.Get(ctx, "s:199").Result(); return err == nil && v == "199" })
	if _, err := admin.CancelOp(ctx, op.ID); err != nil {
		t.Fatal(err)
	}
	waitOp(t, admin, op.ID)
	before := checkpoints()
	if before == 0 {
		t.Fatal("an exactly-once link left no checkpoint keys; the test cannot show they go")
	}

	// A running link is refused, and deleted once cancelled.
	run, _, err := admin.StartOp(ctx, "dst", "migrate", api.MigrateParams{From: "redis://" + src.Addr, Link: "x2", Until: "cancel"}, false)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "link x2 to stream", func() bool { l, err := admin.Sync(ctx, "x2"); return err == nil && l.State == "streaming" })
	if _, err := admin.DeleteSync(ctx, "x2"); !api.IsStatus(err, 409) || !strings.Contains(err.Error(), run.ID) {
		t.Errorf("delete of a streaming link: %v, want 409 naming %s", err, run.ID)
	}
	if _, err := admin.CancelOp(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	waitOp(t, admin, run.ID)
	if _, err := admin.DeleteSync(ctx, "x2"); err != nil {
		t.Errorf("delete of a cancelled link: %v", err)
	}

	spool := filepath.Join(ts.DataDir, "spool", "x1")
	if _, err := os.Stat(spool); err != nil {
		t.Fatalf("link x1 has no spool at %s to remove: %v", spool, err)
	}
	got, err := admin.DeleteSync(ctx, "x1")
	if err != nil || got.CheckpointKeysRemoved != before {
		t.Fatalf("delete x1 = %+v, %v; want %d checkpoint keys removed", got, err, before)
	}
	if n := checkpoints(); n != 0 {
		t.Errorf("%d checkpoint keys left on the target", n)
	}
	if _, err := os.Stat(spool); !os.IsNotExist(err) {
		t.Errorf("spool of x1 after delete: %v, want gone", err)
	}
	for _, l := range []string{"x1", "x2"} {
		if _, err := admin.Sync(ctx, l); !api.IsStatus(err, 404) {
			t.Errorf("link %s after delete: %v, want 404", l, err)
		}
	}
	if n, err := tc.DBSize(ctx).Result(); err != nil || n != 1200 {
		t.Errorf("target keys after delete = %d, %v; want the 1,200 migrated", n, err)
	}

	// A stored password alone, and a link that never was.
	if err := admin.SetSyncCredentials(ctx, "x3", "pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.DeleteSync(ctx, "x3"); err != nil {
		t.Errorf("delete of a password-only link: %v", err)
	}
	if _, err := admin.DeleteSync(ctx, "x3"); !api.IsStatus(err, 404) {
		t.Errorf("second delete of x3: %v, want 404", err)
	}
	// The name can be used again: a fresh copy, not a resume.
	if _, _, err := admin.StartOp(ctx, "dst", "migrate", api.MigrateParams{From: "redis://" + src.Addr, Link: "x1"}, true); err != nil {
		t.Errorf("migrate dry run with a deleted link's name: %v", err)
	}
}
