package meta_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/r2m-go/r2m/coord"
	_ "github.com/r2m-go/r2m/coord/install"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/meta"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// backends runs f against a fresh root on the shared ZooKeeper and on the
// shared etcd.
func backends(t *testing.T, f func(t *testing.T, st *meta.Store)) {
	for _, b := range []struct {
		name string
		url  func(t *testing.T, root string) string
	}{
		{"zk", func(t *testing.T, root string) string { return testenv.SharedZooKeeper(t).URL(root) }},
		{"etcd", func(t *testing.T, root string) string { return testenv.SharedEtcd(t).URL(root) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			var r [4]byte
			_, _ = rand.Read(r[:])
			c, err := coord.Open(ctx(t), b.url(t, "/metatest/"+hex.EncodeToString(r[:])))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := c.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			f(t, meta.NewStore(c))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"orders", true}, {"Orders-EU_2.prod", true}, {"a", true}, {"0abc", true},
		{strings.Repeat("x", 128), true}, {strings.Repeat("x", 129), false},
		{"", false}, {"-lead", false}, {".hidden", false}, {"a/b", false},
		{"a b", false}, {"..", false}, {"ümlaut", false}, {"a\nb", false},
	} {
		err := meta.ValidateName("app", tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, meta.ErrInvalidName) {
			t.Errorf("ValidateName(%q) error %v does not wrap ErrInvalidName", tc.name, err)
		}
	}
}

func TestPaths(t *testing.T) {
	must := func(p string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for got, want := range map[string]string{
		must(meta.AppPath("orders")):          "/apps/orders",
		must(meta.ClientsDir("orders")):       "/apps/orders/clients",
		must(meta.ClientPath("orders", "c1")): "/apps/orders/clients/c1",
		must(meta.ClusterPath("c")):           "/clusters/c",
		must(meta.TopologyPath("c")):          "/clusters/c/topology",
		must(meta.CredentialsPath("c")):       "/clusters/c/credentials",
		must(meta.AgentPath("host-a")):        "/agents/host-a",
		must(meta.AgentLivePath("host-a")):    "/agents/host-a/live",
		must(meta.DesiredPath("host-a")):      "/agents/host-a/desired",
		must(meta.ActualPath("host-a")):       "/agents/host-a/actual",
		must(meta.OpPath("op1")):              "/ops/op1",
		must(meta.UserPath("admin")):          "/users/admin",
		must(meta.TokenPath("admin", "t1")):   "/users/admin/tokens/t1",
		meta.LeaderPath:                       "/manager/leader",
	} {
		if got != want {
			t.Errorf("path %q, want %q", got, want)
		}
		if err := coord.ValidatePath(got); err != nil {
			t.Errorf("path %q is not a valid coord path: %v", got, err)
		}
	}
	if _, err := meta.ClientPath("orders", "../x"); !errors.Is(err, meta.ErrInvalidName) {
		t.Errorf("ClientPath with a bad id: %v", err)
	}
}

// now returns a time that survives a JSON round trip unchanged.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func TestRecordsRoundTrip(t *testing.T) {
	backends(t, func(t *testing.T, st *meta.Store) {
		c := ctx(t)
		ts := now()
		check := func(name string, write func() error, read func() (any, error), want any) {
			t.Helper()
			if err := write(); err != nil {
				t.Fatalf("%s: create: %v", name, err)
			}
			got, err := read()
			if err != nil {
				t.Fatalf("%s: get: %v", name, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: read back\n%+v\nwant\n%+v", name, got, want)
			}
		}
		app := &meta.App{Name: "orders", ActiveCluster: "orders-1", StandbyClusters: []string{"orders-2"},
			Client:        meta.ClientConfig{PoolSize: 8, ReadTimeout: meta.Duration(1500 * time.Millisecond), ClientCache: true, ClientCacheBytes: 1 << 20},
			ConfigVersion: 3, CreatedAt: ts, UpdatedAt: ts}
		check("app", func() error { return st.App("orders").Create(c, app) },
			func() (any, error) { v, _, err := st.App("orders").Get(c); return v, err }, app)
		cl := &meta.Client{ID: "c1", App: "orders", Name: "job", Host: "h", PID: 42, ProcessStart: ts, CreatedAt: ts,
			CreationSite: "job.go:42", TopologyEpoch: 7, OpenConns: 3,
			Heartbeat: meta.Heartbeat{At: ts, Commands: 10, P99: meta.Duration(time.Millisecond)}}
		check("client", func() error { return st.Client("orders", "c1").CreateEphemeral(c, cl) },
			func() (any, error) { v, _, err := st.Client("orders", "c1").Get(c); return v, err }, cl)
		topo := &meta.Topology{Cluster: "orders-1", Epoch: 5, UpdatedAt: ts, Nodes: []meta.Node{
			{ID: "n1", Addr: "10.0.0.1:7000", Role: meta.RoleMaster, Slots: []meta.SlotRange{{Start: 0, End: 8191}}, Health: meta.HealthOK},
			{ID: "n2", Addr: "10.0.0.2:7000", Role: meta.RoleReplica, MasterID: "n1", Health: meta.HealthPFail},
		}}
		check("topology", func() error { return st.Topology("orders-1").Create(c, topo) },
			func() (any, error) { v, _, err := st.Topology("orders-1").Get(c); return v, err }, topo)
		op := &meta.Operation{ID: "op1", Type: "reshard", Cluster: "orders-1", State: meta.OpRunning,
			Plan: []byte(`{"slots":10}`), Steps: []meta.Step{{Name: "move", State: meta.OpRunning, StartedAt: ts}},
			Progress: meta.Progress{SlotsDone: 1, SlotsTotal: 10, ETA: meta.Duration(time.Minute)}, CreatedAt: ts, UpdatedAt: ts}
		check("operation", func() error { return st.Op("op1").Create(c, op) },
			func() (any, error) { v, _, err := st.Op("op1").Get(c); return v, err }, op)
		desired := &meta.DesiredState{Generation: 2, Instances: []meta.Instance{{Port: 7000, Cluster: "orders-1", Persistence: "aof"}}}
		check("desired", func() error { return st.Desired("host-a").Create(c, desired) },
			func() (any, error) { v, _, err := st.Desired("host-a").Get(c); return v, err }, desired)

		// The stored JSON carries the schema version and snake_case fields.
		n, err := st.Coordinator().Get(c, st.App("orders").Path())
		if err != nil {
			t.Fatal(err)
		}
		var raw map[string]any
		if err := json.Unmarshal(n.Data, &raw); err != nil {
			t.Fatal(err)
		}
		if raw["v"] != float64(meta.AppSchema) || raw["active_cluster"] != "orders-1" {
			t.Fatalf("stored app JSON %s: want \"v\":%d and \"active_cluster\"", n.Data, meta.AppSchema)
		}
		if rc, ok := raw["client"].(map[string]any); !ok || rc["read_timeout"] != "1.5s" {
			t.Fatalf("stored client config %v: want read_timeout \"1.5s\"", raw["client"])
		}
	})
}

func TestSchemaVersionChecks(t *testing.T) {
	backends(t, func(t *testing.T, st *meta.Store) {
		c := ctx(t)
		co := st.Coordinator()
		cases := []struct {
			name, data string
			want       error
		}{
			{"newer", `{"v":99,"name":"x"}`, meta.ErrNewerSchema},
			{"missing v", `{"name":"x"}`, meta.ErrBadRecord},
			{"not json", `{{{`, meta.ErrBadRecord},
			{"wrong type", `{"v":1,"name":5}`, meta.ErrBadRecord},
		}
		for _, tc := range cases {
			if err := co.Create(c, "/apps/"+strings.ReplaceAll(tc.name, " ", "-"), []byte(tc.data)); err != nil {
				t.Fatal(err)
			}
			_, _, err := st.App(strings.ReplaceAll(tc.name, " ", "-")).Get(c)
			if !errors.Is(err, tc.want) {
				t.Errorf("%s: Get = %v, want %v", tc.name, err, tc.want)
			}
		}
	})
}

func TestUpdateIsCompareAndSet(t *testing.T) {
	backends(t, func(t *testing.T, st *meta.Store) {
		c := ctx(t)
		ref := st.App("counter")
		if err := ref.Create(c, &meta.App{Name: "counter"}); err != nil {
			t.Fatal(err)
		}
		const writers, each = 6, 15
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for range writers {
			wg.Go(func() {
				for range each {
					if _, _, err := ref.Update(c, func(a *meta.App) error { a.ConfigVersion++; return nil }); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		a, ver, err := ref.Get(c)
		if err != nil || a.ConfigVersion != writers*each {
			t.Fatalf("after %d concurrent Updates ConfigVersion = %d, %v", writers*each, a.ConfigVersion, err)
		}
		// A Set from a stale read is fenced out.
		if _, err := ref.Set(c, a, ver-1); !errors.Is(err, coord.ErrVersionConflict) {
			t.Fatalf("Set with a stale version: %v, want ErrVersionConflict", err)
		}
		// fn's error stops the update and is returned untouched.
		stop := errors.New("no change")
		if _, _, err := ref.Update(c, func(*meta.App) error { return stop }); err != stop {
			t.Fatalf("Update returning an error: %v, want it unchanged", err)
		}
		// Upsert creates.
		got, _, err := st.Topology("fresh").Upsert(c, func(tp *meta.Topology) error { tp.Epoch++; tp.Cluster = "fresh"; return nil })
		if err != nil || got.Epoch != 1 {
			t.Fatalf("Upsert of a missing record = %+v, %v", got, err)
		}
		if _, _, err := st.App("missing").Update(c, func(*meta.App) error { return nil }); !errors.Is(err, coord.ErrNotFound) {
			t.Fatalf("Update of a missing record: %v, want ErrNotFound", err)
		}
	})
}

func TestWatchTyped(t *testing.T) {
	backends(t, func(t *testing.T, st *meta.Store) {
		c := ctx(t)
		wctx, cancel := context.WithCancel(c)
		defer cancel()
		ref := st.Cluster("watched")
		ch := ref.Watch(wctx)
		next := func(what string, ok func(meta.Event[meta.Cluster]) bool) meta.Event[meta.Cluster] {
			t.Helper()
			for {
				select {
				case ev := <-ch:
					if ev.Err != nil {
						t.Fatalf("watch ended waiting for %s: %v", what, ev.Err)
					}
					if ok(ev) {
						return ev
					}
				case <-wctx.Done():
					t.Fatalf("no event with %s", what)
				}
			}
		}
		next("absence", func(ev meta.Event[meta.Cluster]) bool { return ev.Value == nil && ev.Invalid == nil })
		if err := ref.Create(c, &meta.Cluster{Name: "watched", State: meta.ClusterCreating}); err != nil {
			t.Fatal(err)
		}
		next("creating", func(ev meta.Event[meta.Cluster]) bool {
			return ev.Value != nil && ev.Value.State == meta.ClusterCreating
		})
		if _, err := st.Coordinator().Set(c, ref.Path(), []byte("garbage"), coord.AnyVersion); err != nil {
			t.Fatal(err)
		}
		next("an invalid record", func(ev meta.Event[meta.Cluster]) bool { return errors.Is(ev.Invalid, meta.ErrBadRecord) })
		if _, err := ref.Set(c, &meta.Cluster{Name: "watched", State: meta.ClusterActive}, coord.AnyVersion); err != nil {
			t.Fatal(err)
		}
		ev := next("active", func(ev meta.Event[meta.Cluster]) bool { return ev.Value != nil && ev.Value.State == meta.ClusterActive })
		if ev.Version != 2 {
			t.Fatalf("event version %d, want 2", ev.Version)
		}
		cancel()
		var last meta.Event[meta.Cluster]
		for e := range ch {
			last = e
		}
		if !errors.Is(last.Err, context.Canceled) {
			t.Fatalf("final event after cancel: %+v, want context.Canceled", last)
		}
	})
}

func TestDirsAndInvalidNames(t *testing.T) {
	backends(t, func(t *testing.T, st *meta.Store) {
		c := ctx(t)
		if names, err := st.Clients("nobody").Names(c); err != nil || len(names) != 0 {
			t.Fatalf("Names of a missing dir = %v, %v; want empty", names, err)
		}
		for _, id := range []string{"b", "a"} {
			if err := st.Client("orders", id).CreateEphemeral(c, &meta.Client{ID: id}); err != nil {
				t.Fatal(err)
			}
		}
		if names, err := st.Clients("orders").Names(c); err != nil || !slices.Equal(names, []string{"a", "b"}) {
			t.Fatalf("client names = %v, %v", names, err)
		}
		bad := st.App("../etc")
		if _, _, err := bad.Get(c); !errors.Is(err, meta.ErrInvalidName) {
			t.Fatalf("Get with a bad name: %v", err)
		}
		if err := bad.Create(c, &meta.App{}); !errors.Is(err, meta.ErrInvalidName) {
			t.Fatalf("Create with a bad name: %v", err)
		}
		if ev := <-bad.Watch(c); !errors.Is(ev.Err, meta.ErrInvalidName) {
			t.Fatalf("Watch with a bad name: %+v", ev)
		}
		if _, err := st.Clients("a b").Names(c); !errors.Is(err, meta.ErrInvalidName) {
			t.Fatalf("Names with a bad name: %v", err)
		}
	})
}

// TestPlaceholderParents: writing a child before its parent record leaves
// an empty parent node; it must read as missing and be filled by the
// parent's first write.
func TestPlaceholderParents(t *testing.T) {
	backends(t, func(t *testing.T, st *meta.Store) {
		c := ctx(t)
		if err := st.Desired("host-x").Create(c, &meta.DesiredState{Generation: 1}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.Agent("host-x").Get(c); !errors.Is(err, coord.ErrNotFound) {
			t.Fatalf("Get of a placeholder: %v, want ErrNotFound", err)
		}
		if err := st.Agent("host-x").Create(c, &meta.Agent{Host: "host-x", Addr: "10.0.0.1"}); err != nil {
			t.Fatalf("Create over a placeholder: %v", err)
		}
		if a, _, err := st.Agent("host-x").Get(c); err != nil || a.Addr != "10.0.0.1" {
			t.Fatalf("after Create: %+v, %v", a, err)
		}
		if err := st.Agent("host-x").Create(c, &meta.Agent{Host: "host-x"}); !errors.Is(err, coord.ErrExists) {
			t.Fatalf("second Create: %v, want ErrExists", err)
		}
		// Upsert over a placeholder works too.
		if err := st.Credentials("c9").Create(c, &meta.Credentials{Password: "p"}); err != nil {
			t.Fatal(err)
		}
		got, _, err := st.Cluster("c9").Upsert(c, func(cl *meta.Cluster) error { cl.Name = "c9"; return nil })
		if err != nil || got.Name != "c9" {
			t.Fatalf("Upsert over a placeholder: %+v, %v", got, err)
		}
	})
}
