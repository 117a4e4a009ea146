package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/meta"
)

// runMonitor runs m.Run until the test ends and checks that it returns
// nil promptly when cancelled.
func runMonitor(t *testing.T, m *Monitor) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stop := func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v, want nil after cancel", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Run did not return within 20s of cancel")
		}
	}
	t.Cleanup(stop)
	return cancel
}

func setRule(t *testing.T, m *Monitor, name string, change func(*Rule)) {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	r, err := m.Rule(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	change(&r)
	if _, err := m.SetRule(ctx, r); err != nil {
		t.Fatal(err)
	}
}

// TestAlertNodeDown kills a replica of a real cluster: the webhook
// receives "node down" within interval + for-duration + 5s, exactly once
// until the repeat interval has passed, then once more as a repeat, and
// "resolved" after the node is started again. The alert history records
// all three with their deliveries.
func TestAlertNodeDown(t *testing.T) {
	rc := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 1, Replicas: 1})
	st, _ := newStore(t)
	describe(t, st, "down", rc)
	const (
		interval = 300 * time.Millisecond
		forDur   = 900 * time.Millisecond
		repeat   = 2500 * time.Millisecond
	)
	m := newMonitor(t, Config{Store: st, Interval: interval, NodeTimeout: 250 * time.Millisecond})
	rv := newReceiver(t)
	ctx := testCtx(t, 60*time.Second)
	if _, err := m.SetChannel(ctx, Channel{Name: "hook", Type: ChannelWebhook, URL: rv.URL + "/r2m?token=abc"}); err != nil {
		t.Fatal(err)
	}
	setRule(t, m, "node_down", func(r *Rule) {
		r.For, r.Repeat = meta.Duration(forDur), meta.Duration(repeat)
		r.Channels = []string{"hook"}
	})
	runMonitor(t, m)

	// Let a pass see every node up: nothing may fire.
	waitFor(t, 10*time.Second, "a pass with every node up", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		s := m.pub.snap
		if s == nil {
			return false
		}
		v, _ := valueOf(s, "cluster/down", mClusterNodesUp)
		return v == 2
	})
	victim := rc.ReplicasOf(0)[0]
	killed := time.Now()
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	fired, at := rv.waitAlert(t, "node_down", KindFiring, interval+forDur+5*time.Second)
	if fired.Node != victim.Addr || fired.Cluster != "down" || fired.Severity != SeverityCritical || fired.Value != 0 {
		t.Errorf("firing alert = %+v, want node %s of cluster down, critical, value 0", fired, victim.Addr)
	}
	if !strings.Contains(fired.Summary, victim.Addr) {
		t.Errorf("summary %q does not name the node", fired.Summary)
	}
	t.Logf("node down notified %v after the kill", at.Sub(killed).Round(time.Millisecond))

	rep, repAt := rv.waitAlert(t, "node_down", KindRepeat, repeat+5*time.Second)
	if rep.Key != fired.Key {
		t.Errorf("repeat for %s, want %s", rep.Key, fired.Key)
	}
	if gap := repAt.Sub(at); gap < repeat-interval {
		t.Errorf("repeat came %v after firing, want about the repeat interval %v", gap, repeat)
	}
	// Dedup: one firing and one repeat, though every pass saw the node down.
	if got := rv.alertsOf(t, "node_down"); len(got) != 2 {
		t.Errorf("node_down notifications so far: %d, want 2 (firing, repeat)\n%s", len(got), rv.dump())
	}

	if err := victim.Restart(); err != nil {
		t.Fatal(err)
	}
	res, _ := rv.waitAlert(t, "node_down", KindResolved, interval+10*time.Second)
	if res.Key != fired.Key || !strings.HasPrefix(res.Summary, "resolved") {
		t.Errorf("resolved = %+v, want the same alert, summary starting with resolved", res)
	}

	// The history has the three events, newest first, each delivered.
	var events []AlertEvent
	waitFor(t, 10*time.Second, "deliveries recorded", func() bool {
		var err error
		events, err = m.AlertHistory(ctx, AlertHistoryQuery{Rule: "node_down"})
		if err != nil {
			t.Fatal(err)
		}
		return len(events) == 3 && len(events[0].Deliveries) == 1
	})
	for i, kind := range []string{KindResolved, KindRepeat, KindFiring} {
		e := events[i]
		if e.Kind != kind || e.Key != fired.Key || len(e.Deliveries) != 1 || !e.Deliveries[0].OK || e.Deliveries[0].Channel != "hook" {
			t.Errorf("history[%d] = %s %s %+v, want %s delivered to hook", i, e.Kind, e.Key, e.Deliveries, kind)
		}
	}
	// The firing set in the coordinator is empty again.
	rec, _, err := st.AlertState().Get(ctx)
	if err != nil || len(rec.Alerts) != 0 {
		t.Errorf("alert state after resolution: %+v, %v; want no firing alerts", rec, err)
	}
}

// TestAlertMemoryHigh fills a real node past 85% of its maxmemory: the
// rule fires to a WeCom-format receiver, and resolves after a FLUSHALL.
func TestAlertMemoryHigh(t *testing.T) {
	rc := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 1, Config: []string{"maxmemory-policy noeviction"}})
	st, _ := newStore(t)
	describe(t, st, "mem", rc)
	ctx := testCtx(t, 60*time.Second)
	node := rc.Nodes[0].Client(t)
	info, err := node.Info(ctx, "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	used, _ := parseInfo(info).num("used_memory")
	maxmem := int64(used) + 8<<20
	if err := node.ConfigSet(ctx, "maxmemory", strconv.FormatInt(maxmem, 10)).Err(); err != nil {
		t.Fatal(err)
	}

	m := newMonitor(t, Config{Store: st, Interval: 300 * time.Millisecond, NodeTimeout: 250 * time.Millisecond})
	rv := newReceiver(t)
	rv.reply = func(w http.ResponseWriter) { _, _ = w.Write([]byte(`{"errcode":0,"errmsg":"ok"}`)) }
	if _, err := m.SetChannel(ctx, Channel{Name: "wecom", Type: ChannelWeCom, URL: rv.URL + "/cgi-bin/webhook/send?key=k1"}); err != nil {
		t.Fatal(err)
	}
	setRule(t, m, "memory_high", func(r *Rule) { r.For = 0 })
	runMonitor(t, m)

	// Fill with real data until past the threshold (noeviction refuses
	// writes at 100%; stop well before).
	value := strings.Repeat("x", 64<<10)
	for i := 0; ; i++ {
		info, err := node.Info(ctx, "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		u, _ := parseInfo(info).num("used_memory")
		if u/float64(maxmem) > 0.90 {
			break
		}
		if err := node.Set(ctx, "fill:{a}"+strconv.Itoa(i), value, 0).Err(); err != nil {
			t.Fatalf("filling: %v", err)
		}
	}
	got := waitBody(t, rv, "memory_high", 10*time.Second)
	var msg struct {
		MsgType  string `json:"msgtype"`
		Markdown struct {
			Content string `json:"content"`
		} `json:"markdown"`
	}
	if err := json.Unmarshal(got, &msg); err != nil || msg.MsgType != "markdown" {
		t.Fatalf("WeCom payload %s: %v", got, err)
	}
	if !strings.Contains(msg.Markdown.Content, "FIRING") || !strings.Contains(msg.Markdown.Content, rc.Nodes[0].Addr) {
		t.Errorf("WeCom markdown does not say FIRING for node %s:\n%s", rc.Nodes[0].Addr, msg.Markdown.Content)
	}

	if err := node.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	got = waitBody(t, rv, "RESOLVED", 10*time.Second)
	if !strings.Contains(string(got), "memory_high") {
		t.Errorf("resolved message does not name the rule: %s", got)
	}
	alerts, err := m.Alerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alerts {
		if a.Rule == "memory_high" {
			t.Errorf("memory_high still active after resolution: %+v", a)
		}
	}
}

// waitBody waits for a payload that contains substr.
func waitBody(t *testing.T, rv *receiver, substr string, within time.Duration) []byte {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		select {
		case b := <-rv.got:
			if strings.Contains(string(b), substr) {
				return b
			}
		case <-deadline.C:
			t.Fatalf("no payload containing %q within %v; received:\n%s", substr, within, rv.dump())
		}
	}
}

// waitFor polls a condition the system offers no notification for.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", within, what)
		}
		<-tick.C
	}
}

// TestRisingAndZombie registers clients the way a leaking job does, under
// a fake clock: the rising rule fires naming the app and the creation
// site, and a registration whose heartbeat stopped fires the zombie rule.
func TestRisingAndZombie(t *testing.T) {
	st, root := newStore(t)
	clk := newFakeClock()
	m := newMonitor(t, Config{Store: st, Interval: 10 * time.Second, RisingWindow: time.Minute, Now: clk.Now})
	ctx := testCtx(t, 60*time.Second)
	now := clk.Now()
	if err := st.App("jobs").Create(ctx, &meta.App{Name: "jobs", ActiveCluster: "c9", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	// The leaking process: its own coordinator session, like a real one.
	proc := meta.NewStore(openCoord(t, root))
	register := func(id, site string, created, beat time.Time, conns int) {
		t.Helper()
		rec := &meta.Client{ID: id, App: "jobs", Name: "task", Host: "worker-1", PID: 4242, CreatedAt: created,
			CreationSite: site, OpenConns: conns, Cluster: "c9",
			Heartbeat: meta.Heartbeat{At: beat, Interval: meta.Duration(10 * time.Second)}}
		if err := proc.Client("jobs", id).CreateEphemeral(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	register("healthy", "main.go:20", now, now, 4)
	r := m.newRunner()
	defer r.close()

	var rising []AlertEvent
	for i := range 10 { // 3 leaked clients every 10s, never closed
		for j := range 3 {
			register(fmt.Sprintf("leak-%d-%d", i, j), "job.go:42", clk.Now(), clk.Now(), 2)
		}
		// Every client that was not closed keeps heartbeating, as its
		// process would: a leak, not a zombie.
		ids, err := proc.Clients("jobs").Names(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if _, _, err := proc.Client("jobs", id).Update(ctx, func(c *meta.Client) error {
				c.Heartbeat.At = clk.Now()
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		_, events := r.pass(ctx)
		for _, e := range events {
			switch e.Rule {
			case "registered_clients_rising":
				rising = append(rising, e)
			case "zombie_client":
				t.Errorf("pass %d: zombie alert for a live client: %s", i, e.Summary)
			}
		}
		clk.Advance(10 * time.Second)
	}
	if len(rising) != 1 || rising[0].Kind != KindFiring {
		t.Fatalf("rising events: %+v, want one firing", rising)
	}
	e := rising[0]
	if e.App != "jobs" || e.Labels["site"] != "job.go:42" || !strings.Contains(e.Summary, "job.go:42") || !strings.Contains(e.Summary, "app jobs") {
		t.Errorf("rising alert = app %q labels %v summary %q; want app jobs and site job.go:42 named", e.App, e.Labels, e.Summary)
	}
	if e.Value < 10 {
		t.Errorf("rise = %v, want at least the rule's 10", e.Value)
	}

	// One process's heartbeat stops while its record lives: a zombie.
	stale := clk.Now().Add(-5 * time.Minute)
	register("stuck", "handler.go:7", stale, stale, 1)
	_, events := r.pass(ctx)
	var zombie *AlertEvent
	for i := range events {
		if events[i].Rule == "zombie_client" {
			zombie = &events[i]
		}
	}
	if zombie == nil || zombie.Client != "stuck" || !strings.Contains(zombie.Summary, "heartbeat") || zombie.Labels["site"] != "handler.go:7" {
		t.Fatalf("zombie events = %+v, want one for client stuck naming its heartbeat and site", events)
	}
	// The rise goes on, and the alert is not notified again before the
	// repeat interval.
	for _, e := range events {
		if e.Rule == "registered_clients_rising" {
			t.Errorf("rising notified again within the repeat interval: %+v", e)
		}
	}
	// Closing the leaked clients makes the count fall: resolved.
	for i := range 10 {
		for j := range 3 {
			ref := proc.Client("jobs", fmt.Sprintf("leak-%d-%d", i, j))
			_, v, err := ref.Get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := ref.Delete(ctx, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	clk.Advance(10 * time.Second)
	_, events = r.pass(ctx)
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

// TestRunLifecycle: Run refuses a second concurrent Run, ends on cancel
// and on Close, and refuses to start after Close.
func TestRunLifecycle(t *testing.T) {
	st, _ := newStore(t)
	m, err := New(Config{Store: st, DataDir: t.TempDir(), Interval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	waitFor(t, 5*time.Second, "Run to start", m.isRunning)
	if err := m.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
	// Close ends the running Run.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after Close = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end Run")
	}
	if err := m.Run(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close = %v, want ErrClosed", err)
	}
	if _, err := m.Rules(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Rules after Close = %v, want ErrClosed", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

// TestLeaderChangeKeepsAlerts: a firing alert recorded by one leader is
// neither notified again by the next one nor left without its resolved
// notification.
func TestLeaderChangeKeepsAlerts(t *testing.T) {
	st, root := newStore(t)
	clk := newFakeClock()
	ctx := testCtx(t, 30*time.Second)
	now := clk.Now()
	if err := st.App("svc").Create(ctx, &meta.App{Name: "svc", ActiveCluster: "c1", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	proc := meta.NewStore(openCoord(t, root))
	stale := now.Add(-time.Hour)
	if err := proc.Client("svc", "z1").CreateEphemeral(ctx, &meta.Client{ID: "z1", App: "svc", CreatedAt: stale, OpenConns: 1,
		CreationSite: "svc.go:9", Heartbeat: meta.Heartbeat{At: stale, Interval: meta.Duration(10 * time.Second)}}); err != nil {
		t.Fatal(err)
	}
	zombieEvents := func(events []AlertEvent) []string {
		var out []string
		for _, e := range events {
			if e.Rule == "zombie_client" {
				out = append(out, e.Kind)
			}
		}
		return out
	}

	first := newMonitor(t, Config{Store: st, Interval: 10 * time.Second, Now: clk.Now})
	r1 := first.newRunner()
	_, events := r1.pass(ctx)
	r1.close()
	if got := zombieEvents(events); len(got) != 1 || got[0] != KindFiring {
		t.Fatalf("first leader: zombie events %v, want one firing", got)
	}
	rec, _, err := st.AlertState().Get(ctx)
	if err != nil || len(rec.Alerts) != 1 || rec.Alerts[0].Rule != "zombie_client" || rec.Server != "test-server" {
		t.Fatalf("alert state after firing: %+v, %v", rec, err)
	}

	// The next leader: same firing alert, no new notification.
	second := newMonitor(t, Config{Store: st, Interval: 10 * time.Second, Now: clk.Now, ServerID: "server-2"})
	r2 := second.newRunner()
	defer r2.close()
	clk.Advance(10 * time.Second)
	if _, events := r2.pass(ctx); len(zombieEvents(events)) != 0 {
		t.Fatalf("second leader notified again: %v", zombieEvents(events))
	}
	alerts, err := second.Alerts(ctx)
	if err != nil || len(alerts) != 1 || alerts[0].State != StateFiring || alerts[0].Notifications != 1 {
		t.Fatalf("second leader's alerts: %+v, %v; want the inherited firing alert", alerts, err)
	}
	// On a server that does not collect, Alerts reads the coordinator.
	if got, err := first.Alerts(ctx); err != nil || len(got) != 1 || got[0].Key != alerts[0].Key {
		t.Errorf("Alerts on a follower = %+v, %v", got, err)
	}
	// The process heartbeats again: resolved, by the new leader.
	if _, _, err := proc.Client("svc", "z1").Update(ctx, func(c *meta.Client) error {
		c.Heartbeat.At = clk.Now()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Second)
	if _, events := r2.pass(ctx); !slices.Equal(zombieEvents(events), []string{KindResolved}) {
		t.Fatalf("after the heartbeat resumed: %v, want resolved", zombieEvents(events))
	}
}
