package meta_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/r2m-go/r2m/meta"
)

func TestSyncPaths(t *testing.T) {
	for _, tc := range []struct {
		got  func() (string, error)
		want string
	}{
		{func() (string, error) { return meta.SyncLinkPath("mig-1") }, "/syncs/mig-1"},
		{func() (string, error) { return meta.SyncShardsDir("mig-1") }, "/syncs/mig-1/shards"},
		{func() (string, error) { return meta.SyncShardPath("mig-1", "0-5460") }, "/syncs/mig-1/shards/0-5460"},
		{func() (string, error) { return meta.SyncShardPath("mig-1", "standalone") }, "/syncs/mig-1/shards/standalone"},
	} {
		got, err := tc.got()
		if err != nil || got != tc.want {
			t.Errorf("got %q, %v; want %q", got, err, tc.want)
		}
	}
	for _, bad := range [][2]string{{"", "0-1"}, {"a/b", "0-1"}, {"ok", "../x"}, {"ok", ""}} {
		if _, err := meta.SyncShardPath(bad[0], bad[1]); !errors.Is(err, meta.ErrInvalidName) {
			t.Errorf("SyncShardPath(%q, %q) error = %v, want ErrInvalidName", bad[0], bad[1], err)
		}
	}
}

// TestSyncRecords: link and shard records round-trip through both
// coordinators, updates are compare-and-set, and shards list under their
// link.
func TestSyncRecords(t *testing.T) {
	backends(t, func(t *testing.T, st *meta.Store) {
		c := ctx(t)
		now := time.Now().UTC().Truncate(time.Millisecond)
		link := &meta.SyncLink{
			ID: "mig-1", Source: meta.SyncSource{Kind: "standalone", Addr: "10.0.0.5:6379", DBMap: map[string]int{"3": 0}},
			Target: "orders", Purpose: "migrate", Op: "migrate-x", State: meta.SyncFullSync,
			ExactlyOnce: true, Throttle: 5000, TTLGrace: meta.Duration(10 * time.Minute), CreatedAt: now, UpdatedAt: now,
		}
		if err := st.SyncLink("mig-1").Create(c, link); err != nil {
			t.Fatal(err)
		}
		got, ver, err := st.SyncLink("mig-1").Get(c)
		if err != nil {
			t.Fatal(err)
		}
		link.V = meta.SyncLinkSchema
		if !reflect.DeepEqual(got, link) {
			t.Fatalf("got %+v, want %+v", got, link)
		}
		for _, sh := range []string{"0-5460", "5461-10922"} {
			rec := &meta.SyncShard{Shard: sh, Addr: "10.0.0.5:6379", ReplID: "abc", Applied: 42, RDBDone: true, UpdatedAt: now}
			if err := st.SyncShard("mig-1", sh).Create(c, rec); err != nil {
				t.Fatal(err)
			}
		}
		names, err := st.SyncShards("mig-1").Names(c)
		if err != nil || len(names) != 2 {
			t.Fatalf("shards = %v, %v; want 2", names, err)
		}
		upd, _, err := st.SyncShard("mig-1", "0-5460").Update(c, func(s *meta.SyncShard) error { s.Applied = 100; return nil })
		if err != nil || upd.Applied != 100 {
			t.Fatalf("Update = %+v, %v", upd, err)
		}
		// A stale version is refused.
		got.State = meta.SyncStreaming
		if _, err := st.SyncLink("mig-1").Set(c, got, ver); err != nil {
			t.Fatal(err)
		}
		if _, err := st.SyncLink("mig-1").Set(c, got, ver); err == nil {
			t.Fatal("Set with a stale version succeeded")
		}
	})
}
