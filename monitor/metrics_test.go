package monitor

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/r2m-go/r2m/meta"
)

func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics: %s: %s", resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	return fams
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// documentedMetrics returns every r2m_ metric named in docs/monitoring.md.
func documentedMetrics(t *testing.T) []string {
	b, err := os.ReadFile("../docs/monitoring.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, n := range regexp.MustCompile("(?m)^\\| `(r2m_[a-z0-9_]+)`").FindAllStringSubmatch(string(b), -1) {
		seen[n[1]] = true
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// TestMetricsExposition scrapes /metrics on the leading server (running
// the monitor against a real cluster with replicas, traffic, a latency
// event, an operation, registered clients and a firing alert) and on a
// follower, parses both with the Prometheus text parser, and checks that
// every metric the docs list is there with sane labels, and that every
// r2m_ metric exported is documented.
func TestMetricsExposition(t *testing.T) {
	rc := sharedCluster(t)
	st, _ := newStore(t)
	nodes := describe(t, st, "c1", rc)
	ctx := testCtx(t, 60*time.Second)
	now := time.Now().UTC()
	if err := st.App("orders").Create(ctx, &meta.App{Name: "orders", ActiveCluster: "c1", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := st.Client("orders", id).CreateEphemeral(ctx, &meta.Client{ID: id, App: "orders", CreatedAt: now, OpenConns: 1,
			Heartbeat: meta.Heartbeat{At: now, Interval: meta.Duration(time.Minute)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Op("op1").Create(ctx, &meta.Operation{ID: "op1", Type: "rebalance", Cluster: "c1", State: meta.OpSucceeded, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	// A latency event on the first master (latency-monitor-threshold is 5ms).
	if err := rc.Masters()[0].Client(t).Do(ctx, "DEBUG", "SLEEP", "0.02").Err(); err != nil {
		t.Fatal(err)
	}
	// Steady lookups, so hit ratios exist in every interval.
	cl := rc.Client(t)
	lctx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for lctx.Err() == nil {
			cl.Get(lctx, "metrics:hit")
			cl.Set(lctx, "metrics:hit", "1", 0)
			<-tick.C
		}
	})
	defer func() { stopLoad(); wg.Wait() }()

	m := newMonitor(t, Config{Store: st, Interval: 400 * time.Millisecond, NodeTimeout: 300 * time.Millisecond})
	rv := newReceiver(t)
	if _, err := m.SetChannel(ctx, Channel{Name: "hook", Type: ChannelWebhook, URL: rv.URL}); err != nil {
		t.Fatal(err)
	}
	// An always-true rule, so that alert metrics exist.
	if _, err := m.SetRule(ctx, Rule{Name: "canary", Metric: mUp, Op: "==", Threshold: 1, Severity: SeverityInfo}); err != nil {
		t.Fatal(err)
	}
	runMonitor(t, m)
	rv.waitAlert(t, "canary", KindFiring, 10*time.Second)
	waitFor(t, 10*time.Second, "passes with rates", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		s := m.pub.snap
		if s == nil {
			return false
		}
		_, ok1 := valueOf(s, "cluster/c1", mClusterHitRatio)
		_, ok2 := valueOf(s, nodeKey("c1", nodes[0].Addr), mClientsSpike) // needs three samples
		return ok1 && ok2
	})

	fams := scrape(t, m.MetricsHandler())
	documented := documentedMetrics(t)
	if len(documented) < 40 {
		t.Fatalf("docs/monitoring.md names %d r2m_ metrics; the table is missing", len(documented))
	}
	for _, name := range documented {
		if fams[name] == nil {
			t.Errorf("documented metric %s is not exported by the leader", name)
		}
	}
	for name := range fams {
		if strings.HasPrefix(name, "r2m_") && !slices.Contains(documented, name) {
			t.Errorf("exported metric %s is not documented in docs/monitoring.md", name)
		}
	}
	for _, std := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if fams[std] == nil {
			t.Errorf("server metric %s missing", std)
		}
	}

	// Labels: node series carry cluster, node and role, for every node.
	addrs := map[string]meta.Role{}
	for _, n := range nodes {
		addrs[n.Addr] = n.Role
	}
	up := fams["r2m_node_up"]
	if up.GetType() != dto.MetricType_GAUGE || len(up.GetMetric()) != len(nodes) {
		t.Fatalf("r2m_node_up: type %v, %d series, want gauges for %d nodes", up.GetType(), len(up.GetMetric()), len(nodes))
	}
	for _, s := range up.GetMetric() {
		l := labelsOf(s)
		if l["cluster"] != "c1" || addrs[l["node"]] == "" || l["role"] != string(addrs[l["node"]]) || s.GetGauge().GetValue() != 1 {
			t.Errorf("r2m_node_up series %v = %v", l, s.GetGauge().GetValue())
		}
	}
	if f := fams["r2m_node_commands_processed_total"]; f.GetType() != dto.MetricType_COUNTER {
		t.Errorf("r2m_node_commands_processed_total is %v, want a counter", f.GetType())
	}
	if f := fams["r2m_monitor_pass_duration_seconds"]; f.GetType() != dto.MetricType_HISTOGRAM || f.GetMetric()[0].GetHistogram().GetSampleCount() == 0 {
		t.Errorf("r2m_monitor_pass_duration_seconds: %v", f)
	}
	for _, s := range fams["r2m_node_replication_link_up"].GetMetric() {
		if l := labelsOf(s); l["role"] != "replica" {
			t.Errorf("replication_link_up on a %s", l["role"])
		}
	}
	if s := fams["r2m_node_latency_latest_seconds"].GetMetric(); len(s) == 0 || labelsOf(s[0])["event"] == "" {
		t.Errorf("latency series without an event label: %v", s)
	}
	if s := fams["r2m_app_registered_clients"].GetMetric(); len(s) != 1 || s[0].GetGauge().GetValue() != 3 || labelsOf(s[0])["cluster"] != "c1" {
		t.Errorf("r2m_app_registered_clients = %v, want 3 for orders on c1", s)
	}
	ops := fams["r2m_operations"].GetMetric()
	if len(ops) != 1 || labelsOf(ops[0])["type"] != "rebalance" || labelsOf(ops[0])["state"] != "succeeded" || ops[0].GetGauge().GetValue() != 1 {
		t.Errorf("r2m_operations = %v", ops)
	}
	var canary float64
	for _, s := range fams["r2m_alerts"].GetMetric() {
		if l := labelsOf(s); l["rule"] == "canary" && l["state"] == StateFiring {
			canary = s.GetGauge().GetValue()
		}
	}
	if canary != float64(len(nodes)) {
		t.Errorf("r2m_alerts{rule=canary,state=firing} = %v, want %d", canary, len(nodes))
	}
	if v := fams["r2m_monitor_collecting"].GetMetric()[0].GetGauge().GetValue(); v != 1 {
		t.Errorf("r2m_monitor_collecting on the leader = %v", v)
	}

	// A follower: no node metrics, but app counts and operations from the
	// coordinator, and its own server metrics.
	f := newMonitor(t, Config{Store: st})
	ffams := scrape(t, f.MetricsHandler())
	if ffams["r2m_node_up"] != nil {
		t.Error("a follower exports node metrics it did not collect")
	}
	if s := ffams["r2m_app_registered_clients"].GetMetric(); len(s) != 1 || s[0].GetGauge().GetValue() != 3 {
		t.Errorf("follower r2m_app_registered_clients = %v, want 3", s)
	}
	if ffams["r2m_operations"] == nil || ffams["go_goroutines"] == nil {
		t.Error("follower lacks r2m_operations or go_goroutines")
	}
	if v := ffams["r2m_monitor_collecting"].GetMetric()[0].GetGauge().GetValue(); v != 0 {
		t.Errorf("r2m_monitor_collecting on a follower = %v", v)
	}
}

// TestGrafanaDashboard checks that docs/grafana-dashboard.json is valid
// JSON and that every query uses only metrics docs/monitoring.md documents.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("the dashboard is not valid JSON: %v", err)
	}
	documented := documentedMetrics(t)
	name := regexp.MustCompile(`r2m_[a-z0-9_]+`)
	check := func(where, expr string) {
		for _, n := range name.FindAllString(expr, -1) {
			base := n
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if trimmed := strings.TrimSuffix(n, suffix); trimmed != n && slices.Contains(documented, trimmed) {
					base = trimmed
				}
			}
			if !slices.Contains(documented, base) {
				t.Errorf("%s uses %s, which docs/monitoring.md does not document", where, n)
			}
		}
	}
	queries := 0
	for _, p := range dash.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries++
			check("panel "+p.Title, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		check("variable", v.Definition)
	}
	if queries < 20 {
		t.Errorf("the dashboard has %d queries; want the panels docs/monitoring.md describes", queries)
	}
}
