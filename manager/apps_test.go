package manager

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/meta"
)

func TestAppsConfigAndClients(t *testing.T) {
	ts := startLeader(t, testenv_SharedEtcdURL(t), func(c *Config) {
		c.ClientSampleInterval = 20 * time.Millisecond
		c.Leaks = LeakConfig{MaxClientsPerProcess: 4, RisingWindow: time.Hour, RisingSamples: 3, RisingMin: 2}
	})
	ctx := ctxT(t)
	admin := ts.adminClient(t)
	if err := ts.store.Cluster("orders-1").Create(ctx, &meta.Cluster{Name: "orders-1", State: meta.ClusterActive}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateApp(ctx, api.NewApp{Name: "orders", Cluster: "nope"}); !api.IsStatus(err, 400) {
		t.Fatalf("app on a missing cluster: %v, want 400", err)
	}
	app, err := admin.CreateApp(ctx, api.NewApp{Name: "orders", Cluster: "orders-1"})
	if err != nil || app.ActiveCluster != "orders-1" || app.ConfigVersion != 1 {
		t.Fatalf("create app = %+v, %v", app, err)
	}

	// Config changes raise the version; bad values are refused with the field.
	app, err = admin.SetAppConfig(ctx, "orders", api.ClientConfig{PoolSize: 20, ReadTimeout: "750ms", ClientCache: true})
	if err != nil || app.ConfigVersion != 2 || app.Config.ReadTimeout != "750ms" || !app.Config.ClientCache {
		t.Fatalf("set config = %+v, %v", app, err)
	}
	for _, bad := range []struct {
		cfg   api.ClientConfig
		field string
	}{
		{api.ClientConfig{ReadTimeout: "soon"}, "read_timeout"},
		{api.ClientConfig{DialTimeout: "2h"}, "dial_timeout"},
		{api.ClientConfig{PoolSize: -1}, "pool_size"},
		{api.ClientConfig{MaxRetries: -5}, "max_retries"},
	} {
		var apiErr *api.Error
		_, err := admin.SetAppConfig(ctx, "orders", bad.cfg)
		if !errorAs(err, &apiErr) || apiErr.Status != 400 || apiErr.Field != bad.field {
			t.Errorf("config %+v: %v, want 400 on field %s", bad.cfg, err, bad.field)
		}
	}
	if a, _, err := ts.store.App("orders").Get(ctx); err != nil || a.ConfigVersion != 2 {
		t.Fatalf("refused configs changed the record: %+v, %v", a, err)
	}

	// Live registrations: one process holding six clients (a leak), one
	// healthy client; the count only rises while they register.
	now := time.Now().UTC()
	register := func(id string, pid int, site string) {
		c := &meta.Client{ID: id, App: "orders", Name: "job", Host: "host-a", PID: pid, ProcessStart: now.Add(-time.Hour),
			CreationSite: site, CreatedAt: now, OpenConns: 2, Heartbeat: meta.Heartbeat{At: now, Interval: meta.Duration(time.Minute)}}
		if err := ts.store.Client("orders", id).CreateEphemeral(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	register("healthy", 100, "main.go:9")
	for i := range 6 {
		register(fmt.Sprintf("leak%d", i), 4242, "job.go:42")
		waitFor(t, "a sample of the new count", func() bool {
			h := ts.history.get("orders")
			return len(h) > 0 && h[len(h)-1].Count == i+2
		})
	}
	ac, err := admin.AppClients(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if ac.Count != 7 || len(ac.Clients) != 7 {
		t.Fatalf("clients = %d (%d listed), want 7", ac.Count, len(ac.Clients))
	}
	var leak, rising bool
	for _, f := range ac.Flags {
		if f.Code == "leak" && strings.Contains(f.Message, `pid 4242 on host-a holds 6 clients of "orders", created at job.go:42`) {
			leak = true
		}
		rising = rising || f.Code == "rising"
	}
	if !leak || !rising {
		t.Fatalf("flags %+v: want the leak of pid 4242 and the rising count", ac.Flags)
	}
	for _, c := range ac.Clients {
		if hasLeak := strings.HasPrefix(c.ID, "leak"); hasLeak != (len(c.Flags) > 0) {
			t.Errorf("client %s flags %v", c.ID, c.Flags)
		}
	}
	// Viewers can read but not change.
	if _, err := admin.CreateUser(ctx, api.NewUser{Name: "v", Role: "viewer", Password: "viewer password"}); err != nil {
		t.Fatal(err)
	}
	vt, err := admin.CreateToken(ctx, api.NewToken{User: "v"})
	if err != nil {
		t.Fatal(err)
	}
	viewer := ts.client(t, vt.Secret)
	if _, err := viewer.AppClients(ctx, "orders"); err != nil {
		t.Fatalf("viewer lists clients: %v", err)
	}
	if _, err := viewer.SetAppConfig(ctx, "orders", api.ClientConfig{}); !api.IsStatus(err, 403) {
		t.Fatalf("viewer sets config: %v, want 403", err)
	}
}
