package web

import (
	"strings"
	"testing"
	"time"

	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/internal/testenv"
)

// TestWithoutMonitoringSaysNoData runs a server without a monitor: every
// place that would show a measurement says "no data yet" instead, in the
// HTML the server renders and in the charts the browser fills.
func TestWithoutMonitoringSaysNoData(t *testing.T) {
	rc := testenv.SharedRedisCluster(t, testenv.ClusterOptions{Masters: 3, Replicas: 1, Password: "web-pw"})
	p := startPlatform(t)
	ctx := ctxFor(t, time.Minute)
	op, _, err := p.Admin.Adopt(ctx, api.AdoptParams{Name: "legacy", Seed: rc.Nodes[0].Addr, Password: "web-pw"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if o := waitOp(t, p.Admin, op.ID); o.State != "succeeded" {
		t.Fatalf("adopt: %+v", o)
	}
	a := newTab(t, startChrome(t), p.URL)
	a.login("admin", p.Password)

	a.open("/clusters")
	for _, sel := range []string{`tr[data-cluster="legacy"] td.mem`, `tr[data-cluster="legacy"] td.ops`} {
		if s := a.text(sel); s != "no data yet" {
			t.Errorf("%s says %q, want no data yet", sel, s)
		}
	}
	for _, path := range []string{"/clusters/legacy", "/clusters/legacy/nodes/" + rc.Nodes[0].Addr, "/clusters/legacy/nodes/" + rc.Nodes[len(rc.Nodes)-1].Addr} {
		a.open(path)
		a.wait("every chart area of "+path+" to answer", chartsSettled, 20*time.Second)
		var texts []string
		a.eval(`[...document.querySelectorAll(".chart")].map(e => e.textContent.trim())`, &texts)
		if len(texts) != 6 {
			t.Fatalf("%s has %d chart areas, want 6", path, len(texts))
		}
		for _, s := range texts {
			if !strings.Contains(s, "no data yet") && !strings.Contains(s, "no replication lag") {
				t.Errorf("a chart area of %s says %q", path, s)
			}
		}
		if n := a.count(".chart canvas"); n != 0 {
			t.Errorf("%s draws %d charts without a monitor", path, n)
		}
		var cells []string
		a.eval(`[...document.querySelectorAll("td.mem, td.clients, td.lag .nodata, table.kv td .nodata")].map(e => e.textContent.trim())`, &cells)
		if len(cells) == 0 {
			t.Fatalf("%s shows no measurement cells", path)
		}
		for _, s := range cells {
			if s != "no data yet" {
				t.Errorf("a measurement on %s says %q without a monitor", path, s)
			}
		}
	}
	a.noErrors()
}
