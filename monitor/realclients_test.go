package monitor

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/r2m-go/r2m/client"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/meta"
)

// TestRisingWithRealClients reproduces the incident with the real client: a
// test process opens 30 R2M clients of an app, three per collection pass,
// and never closes them. The rising rule fires naming the app and the line
// that created them; closing them resolves it.
func TestRisingWithRealClients(t *testing.T) {
	rc := sharedCluster(t)
	st, root := newStore(t)
	describe(t, st, "c7", rc)
	ctx := testCtx(t, 2*time.Minute)
	now := time.Now().UTC()
	if err := st.App("tasks").Create(ctx, &meta.App{Name: "tasks", ActiveCluster: "c7", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	m := newMonitor(t, Config{Store: st, Interval: 10 * time.Second, RisingWindow: time.Minute, Now: clk.Now})
	r := m.newRunner()
	defer r.close()

	url := testenv.SharedEtcd(t).URL(root)
	var leaked []*client.Client
	t.Cleanup(func() {
		for _, c := range leaked {
			_ = c.Close() // a no-op for those the test closed
		}
	})
	var rising []AlertEvent
	for pass := range 10 {
		for range 3 {
			c, err := client.New(ctx, client.Options{Coordinator: url, App: "tasks", Name: "per-task", Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatalf("pass %d: client.New: %v", pass, err)
			}
			if err := c.Do(ctx, c.B().Set().Key("task").Value("ran").Build()).Error(); err != nil {
				t.Fatal(err)
			}
			leaked = append(leaked, c)
		}
		_, events := r.pass(ctx)
		for _, e := range events {
			switch e.Rule {
			case "registered_clients_rising":
				rising = append(rising, e)
			case "zombie_client":
				t.Errorf("pass %d: zombie alert for a live client: %s", pass, e.Summary)
			}
		}
		clk.Advance(10 * time.Second)
	}
	rec, _, err := st.Client("tasks", leaked[0].ID()).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rec.CreationSite, "realclients_test.go:") {
		t.Fatalf("creation site %q does not name this file", rec.CreationSite)
	}
	if len(rising) != 1 || rising[0].Kind != KindFiring {
		t.Fatalf("rising events: %+v, want one firing", rising)
	}
	e := rising[0]
	if e.App != "tasks" || e.Labels["site"] != rec.CreationSite || !strings.Contains(e.Summary, rec.CreationSite) || !strings.Contains(e.Summary, "app tasks") {
		t.Errorf("rising alert = app %q labels %v summary %q; want app tasks and site %s named", e.App, e.Labels, e.Summary, rec.CreationSite)
	}
	t.Logf("fired: %s", e.Summary)

	for _, c := range leaked {
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if ids, err := st.Clients("tasks").Names(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("after Close the app's clients are %v, %v", ids, err)
	}
	clk.Advance(10 * time.Second)
	_, events := r.pass(ctx)
	var resolved bool
	for _, e := range events {
		if e.Rule == "registered_clients_rising" && e.Kind == KindResolved {
			resolved = true
		}
	}
	if !resolved {
		t.Errorf("after the clients closed: events %+v, want registered_clients_rising resolved", events)
	}
}
