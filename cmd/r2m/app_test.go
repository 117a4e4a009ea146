package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/r2m-go/r2m/meta"
)

func TestAppAndClientsCommands(t *testing.T) {
	e := startCLIEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st := meta.NewStore(e.coord)
	if err := st.Cluster("c1").Create(ctx, &meta.Cluster{Name: "c1", State: meta.ClusterActive}); err != nil {
		t.Fatal(err)
	}
	if err := st.App("orders").Create(ctx, &meta.App{Name: "orders", ActiveCluster: "c1", ConfigVersion: 1}); err != nil {
		t.Fatal(err)
	}
	out, err := e.run(t, "", "app", "list")
	if err != nil || !strings.Contains(out, "orders") || !strings.Contains(out, "c1") {
		t.Fatalf("app list:\n%s\n%v", out, err)
	}
	if _, err := e.run(t, "", "app", "config", "orders"); err == nil || !strings.Contains(err.Error(), "nothing to change") {
		t.Fatalf("app config without flags: %v", err)
	}
	out, err = e.run(t, "", "app", "config", "orders", "--read-timeout", "300ms", "--client-cache")
	if err != nil || !strings.Contains(out, "2") {
		t.Fatalf("app config:\n%s\n%v", out, err)
	}
	// Only the flags given change.
	if _, err := e.run(t, "", "app", "config", "orders", "--pool-size", "7"); err != nil {
		t.Fatal(err)
	}
	a, _, err := st.App("orders").Get(ctx)
	if err != nil || a.Client.PoolSize != 7 || time.Duration(a.Client.ReadTimeout) != 300*time.Millisecond || !a.Client.ClientCache || a.ConfigVersion != 3 {
		t.Fatalf("app record after two config changes: %+v, %v", a, err)
	}
	out, err = e.run(t, "", "app", "show", "orders")
	if err != nil || !strings.Contains(out, "config.read_timeout") || !strings.Contains(out, "300ms") {
		t.Fatalf("app show:\n%s\n%v", out, err)
	}
	if _, err := e.run(t, "", "app", "config", "orders", "--read-timeout", "fast"); err == nil || !strings.Contains(err.Error(), "read_timeout") {
		t.Fatalf("app config with a bad duration: %v", err)
	}

	now := time.Now().UTC()
	for i, id := range []string{"a1", "a2", "a3"} {
		c := &meta.Client{ID: id, App: "orders", Name: "worker", Host: "host-a", PID: 4242 + i, CreationSite: "job.go:42",
			CreatedAt: now, OpenConns: 1, Heartbeat: meta.Heartbeat{At: now, Interval: meta.Duration(time.Minute)}}
		if id == "a3" {
			c.OpenConns = 0
			c.CreatedAt = now.Add(-10 * time.Minute)
			c.Heartbeat.At = now.Add(-10 * time.Minute)
		}
		if err := st.Client("orders", id).CreateEphemeral(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	out, err = e.run(t, "", "clients", "orders")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"HOST", "host-a", "job.go:42", "3 clients of orders", "ZOMBIE-HEARTBEAT:", "ZOMBIE-CONNS:", "pid 4244 on host-a"} {
		if !strings.Contains(out, want) {
			t.Errorf("r2m clients output lacks %q:\n%s", want, out)
		}
	}
	if _, err := e.run(t, "", "clients", "nope"); err == nil || !strings.Contains(err.Error(), "no app") {
		t.Fatalf("clients of a missing app: %v", err)
	}
}
