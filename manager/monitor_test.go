package manager

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/meta"
	"github.com/r2m-go/r2m/monitor"
)

// TestMonitoringThroughTheServer wires a monitor into the server and uses
// it through the API: /metrics behind a token, history of an adopted
// cluster, rules with field-naming errors, a channel and its test send.
func TestMonitoringThroughTheServer(t *testing.T) {
	rc := testenv.SharedRedisCluster(t, testenv.ClusterOptions{Masters: 3, Password: "cmd-pw"})
	ts := startLeader(t, testenv_SharedEtcdURL(t), func(c *Config) {
		m, err := monitor.New(monitor.Config{Store: meta.NewStore(c.Coordinator), DataDir: t.TempDir(), Interval: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		c.Monitor = m
	})
	ctx := ctxT(t)
	admin := ts.adminClient(t)
	op, _, err := admin.Adopt(ctx, api.AdoptParams{Name: "mon", Seed: rc.Nodes[0].Addr, Password: "cmd-pw"}, false)
	if err != nil {
		t.Fatal(err)
	}
	waitOp(t, admin, op.ID)
	tok := mustRead(t, AdminTokenPath(ts.DataDir))
	get := func(path, token string) (int, []byte) {
		req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if st, _ := get("/metrics", ""); st != 401 {
		t.Fatalf("/metrics without a token: %d, want 401", st)
	}
	waitFor(t, "node metrics in /metrics", func() bool {
		st, b := get("/metrics", tok)
		return st == 200 && strings.Contains(string(b), `r2m_node_memory_used_bytes{`) && strings.Contains(string(b), `cluster="mon"`)
	})
	waitFor(t, "history of the adopted cluster", func() bool {
		st, b := get("/api/v1/monitor/series?"+url.Values{"metric": {"used_memory_bytes"}, "cluster": {"mon"}, "node": {rc.Nodes[0].Addr}, "from": {"10m"}}.Encode(), tok)
		var pts []monitor.Point
		return st == 200 && json.Unmarshal(b, &pts) == nil && len(pts) > 0 && pts[len(pts)-1].Avg > 0
	})
	if st, b := get("/api/v1/monitor/series?metric=nope", tok); st != 400 || !strings.Contains(string(b), `"field"`) {
		t.Fatalf("series with an unknown metric: %d %s, want 400 naming the field", st, b)
	}
	st, b := get("/api/v1/monitor/rules", tok)
	var rules []monitor.Rule
	if st != 200 || json.Unmarshal(b, &rules) != nil || len(rules) < 8 {
		t.Fatalf("rules: %d %s", st, b)
	}

	put := func(path, body string) (int, []byte) {
		req, _ := http.NewRequestWithContext(ctx, "PUT", ts.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if st, b := put("/api/v1/monitor/rules/hot", `{"metric":"ops_per_sec","op":"~","threshold":1,"severity":"warning"}`); st != 400 || !strings.Contains(string(b), `"field": "op"`) {
		t.Fatalf("rule with a bad op: %d %s, want 400 on field op", st, b)
	}
	if st, b := put("/api/v1/monitor/rules/hot", `{"metric":"ops_per_sec","op":">","threshold":100000,"for":"1m","severity":"warning"}`); st != 200 {
		t.Fatalf("put rule: %d %s", st, b)
	}
	var hits atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.Copy(io.Discard, r.Body)
	}))
	defer hook.Close()
	if st, b := put("/api/v1/monitor/channels/ops", `{"type":"webhook","url":"`+hook.URL+`/hook?token=secret123"}`); st != 200 {
		t.Fatalf("put channel: %d %s", st, b)
	}
	st, b = get("/api/v1/monitor/channels/ops", tok)
	if st != 200 || strings.Contains(string(b), "secret123") {
		t.Fatalf("channel read: %d %s; the token must be redacted", st, b)
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/api/v1/monitor/channels/ops/test", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var d monitor.Delivery
	json.NewDecoder(resp.Body).Decode(&d)
	resp.Body.Close()
	if resp.StatusCode != 200 || !d.OK || hits.Load() != 1 {
		t.Fatalf("test send: %d %+v, webhook hits %d", resp.StatusCode, d, hits.Load())
	}
}
