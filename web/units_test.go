package web

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/r2m-go/r2m/api"
)

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		in         string
		start, end int
		ok         bool
	}{
		{"0-5460", 0, 5460, true},
		{"7", 7, 7, true},
		{" 16383 ", 16383, 16383, true},
		{"10-5", 0, 0, false},
		{"0-16384", 0, 0, false},
		{"-1", 0, 0, false},
		{"a-b", 0, 0, false},
		{"", 0, 0, false},
	} {
		s, e, ok := parseRange(tc.in)
		if s != tc.start || e != tc.end || ok != tc.ok {
			t.Errorf("parseRange(%q) = %d, %d, %v; want %d, %d, %v", tc.in, s, e, ok, tc.start, tc.end, tc.ok)
		}
	}
	if n := countSlots([]string{"0-99", "200", "bad"}); n != 101 {
		t.Errorf("countSlots = %d, want 101", n)
	}
}

func TestBuildSlotMap(t *testing.T) {
	m := buildSlotMap([]api.ClusterNode{
		{ID: "c", Addr: "10.0.0.3:7000", Role: "master", Slots: []string{"10000-16383"}, Health: "ok"},
		{ID: "r", Addr: "10.0.0.9:7000", Role: "replica", MasterID: "a", Health: "ok"},
		{ID: "a", Addr: "10.0.0.1:7000", Role: "master", Slots: []string{"0-4999", "nonsense"}, Health: "ok"},
		{ID: "e", Addr: "10.0.0.2:7000", Role: "master", Health: "ok"}, // empty master
	})
	var addrs []string
	for i, o := range m.Owners {
		addrs = append(addrs, o.Addr)
		if o.Color != i {
			t.Errorf("owner %s has colour %d, want %d (its place by address)", o.Addr, o.Color, i)
		}
	}
	if want := []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"}; !slices.Equal(addrs, want) {
		t.Fatalf("owners %v, want the masters by address %v", addrs, want)
	}
	if m.Owners[0].Count != 5000 || m.Owners[1].Count != 0 || m.Owners[2].Count != 6384 {
		t.Errorf("counts %d, %d, %d; want 5000, 0, 6384", m.Owners[0].Count, m.Owners[1].Count, m.Owners[2].Count)
	}
	if m.Unassigned != 16384-5000-6384 {
		t.Errorf("unassigned %d, want %d", m.Unassigned, 16384-5000-6384)
	}
}

func TestOpenSlots(t *testing.T) {
	open := openSlots([]api.Finding{
		{Kind: "open-slot", Node: "a:1", Slots: []string{"100", "200-201"}, Detail: "importing: 100 <- b"},
		{Kind: "open-slot", Node: "b:1", Slots: []string{"100"}, Detail: "migrating: 100 -> a"},
		{Kind: "uncovered", Slots: []string{"5-9"}},
		{Kind: "replicas", Node: "a:1", Detail: "1 replicas"},
	})
	if len(open) != 3 || open[0].Range != [2]int{100, 100} || open[1].Range != [2]int{200, 201} || open[2].Node != "b:1" {
		t.Fatalf("openSlots = %+v", open)
	}
	if n := countOpen(open); n != 3 {
		t.Fatalf("countOpen = %d, want 3 distinct slots (100, 200, 201)", n)
	}
}

func TestGroupClients(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return start.Add(time.Duration(i) * time.Minute) }
	var cs []api.ClientInfo
	add := func(id, host string, pid int, pstart time.Time, site string, created int, flags ...string) {
		cs = append(cs, api.ClientInfo{ID: id, Host: host, PID: pid, ProcessStart: pstart, CreationSite: site, CreatedAt: at(created), Flags: flags})
	}
	add("w1", "web", 10, start, "main.go:9", 1)
	for i := range 5 {
		add(fmt.Sprintf("j%d", 4-i), "batch", 42, start, "job.go:42", 10-i, "leak")
	}
	add("j-other", "batch", 42, start, "other.go:7", 3)
	// The same pid after a restart is another process.
	add("j-new", "batch", 42, start.Add(time.Hour), "job.go:42", 20)

	g := groupClients(cs)
	if len(g) != 2 || g[0].Host != "batch" || g[0].Count != 7 || !g[0].Flagged || g[1].Host != "web" || g[1].Flagged {
		t.Fatalf("hosts = %+v; want batch (7, flagged) before web (1)", g)
	}
	procs := g[0].Procs
	if len(procs) != 2 || procs[0].Count != 6 || !procs[0].Start.Equal(start) || procs[1].Count != 1 || procs[1].Flagged {
		t.Fatalf("processes of batch = %+v; want the old pid 42 (6) before the restarted one (1)", procs)
	}
	sites := procs[0].Sites
	if len(sites) != 2 || sites[0].Site != "job.go:42" || sites[0].Count != 5 || !sites[0].Flagged || sites[1].Site != "other.go:7" || sites[1].Flagged {
		t.Fatalf("sites = %+v", sites)
	}
	var ids []string
	for _, c := range sites[0].Clients {
		ids = append(ids, c.ID)
	}
	if want := []string{"j0", "j1", "j2", "j3", "j4"}; !slices.Equal(ids, want) { // registered newest first
		t.Fatalf("clients of job.go:42 = %v, want oldest first %v", ids, want)
	}
}

func TestClientsViewExplainsFlags(t *testing.T) {
	v := newClientsView(api.AppClients{
		App: "orders", Count: 2,
		Clients: []api.ClientInfo{{ID: "a", Flags: []string{"leak", "zombie-conns"}}, {ID: "b"}},
		Flags: []api.Flag{
			{Code: "leak", Message: "pid 1 on h holds 17 clients", Clients: []string{"a"}},
			{Code: "zombie-conns", Message: "client a holds no connections", Clients: []string{"a"}},
		},
		History: []api.CountSample{{Time: time.Unix(100, 0), Count: 1}, {Time: time.Unix(130, 0), Count: 2}},
	})
	if got := v.Explain["a"]; got != "pid 1 on h holds 17 clients\nclient a holds no connections" {
		t.Errorf("explanation of a = %q", got)
	}
	if _, ok := v.Explain["b"]; ok {
		t.Error("client b has an explanation but no flag")
	}
	if !slices.Equal(v.History, [][2]int64{{100, 1}, {130, 2}}) {
		t.Errorf("history %v", v.History)
	}
	if l := v.FlagLabel("leak"); l.Label != "LEAK" {
		t.Errorf("leak label %+v", l)
	}
	if l := v.FlagLabel("new-code"); l.Label != "new-code" {
		t.Errorf("an unknown flag code should show as itself: %+v", l)
	}
}

func TestDecodeSeries(t *testing.T) {
	pts, ok := decodeSeries([]byte(`[{"t":"2026-01-01T00:00:00Z","avg":1.5,"min":1,"max":2,"count":3}]`))
	if !ok || len(pts) != 1 || pts[0].Avg != 1.5 {
		t.Fatalf("array form: %+v, %v", pts, ok)
	}
	pts, ok = decodeSeries([]byte(`{"points":[{"t":"2026-01-01T00:00:00Z","avg":2}]}`))
	if !ok || len(pts) != 1 || pts[0].Avg != 2 {
		t.Fatalf("object form: %+v, %v", pts, ok)
	}
	if _, ok := decodeSeries([]byte(`"nope"`)); ok {
		t.Fatal("a string decoded as a series")
	}
}

func TestMetricValueNeverInvents(t *testing.T) {
	if s := (metricValue{}).String(); s != "no data yet" {
		t.Errorf("unknown value prints %q", s)
	}
	for _, tc := range []struct {
		v    metricValue
		want string
	}{
		{metricValue{Known: true, Value: 3 << 20, Unit: "bytes"}, "3.0 MiB"},
		{metricValue{Known: true, Value: 1234.4, Unit: "ops/s"}, "1234 ops/s"},
		{metricValue{Known: true, Value: 12.345, Unit: "ops/s"}, "12.3 ops/s"},
		{metricValue{Known: true, Value: 0.25, Unit: "seconds"}, "0.25 s"},
		{metricValue{Known: true, Value: 7, Unit: "count"}, "7"},
	} {
		if got := tc.v.String(); got != tc.want {
			t.Errorf("%+v prints %q, want %q", tc.v, got, tc.want)
		}
	}
	// Every series names a metric of its subject; areas with nothing to
	// ask say why.
	charts := append(clusterCharts("c1", []string{"10.0.0.1:7000"}, []string{"orders"}), nodeCharts("c1", "10.0.0.1:7000", true)...)
	for _, c := range charts {
		if len(c.Series) == 0 {
			t.Errorf("chart %q asks for nothing", c.Title)
		}
		for _, s := range c.Series {
			if !strings.Contains(s.Query, "metric=") || !(strings.Contains(s.Query, "cluster=c1") || strings.Contains(s.Query, "app=orders")) {
				t.Errorf("chart %q has query %q", c.Title, s.Query)
			}
		}
	}
	for _, c := range append(clusterCharts("c1", nil, nil), nodeCharts("c1", "10.0.0.1:7000", false)...) {
		if len(c.Series) == 0 && c.Empty == "" {
			t.Errorf("chart %q has no series and does not say why", c.Title)
		}
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/apps/orders?x=1":     "/apps/orders?x=1",
		"":                     "/clusters",
		"//evil.example/":      "/clusters",
		"/\\evil.example":      "/clusters",
		"https://evil.example": "/clusters",
		"/login?next=/x":       "/clusters",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFormatting(t *testing.T) {
	for in, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 64 << 20: "64.0 MiB", 5 << 30: "5.0 GiB"} {
		if got := humanBytes(in); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", in, got, want)
		}
	}
	if got := formatFloat(2.50); got != "2.5" {
		t.Errorf("formatFloat(2.5) = %q", got)
	}
	if got := clientID("0123456789abcdef0123456789abcdef"); got != "0123456789ab…" {
		t.Errorf("clientID = %q", got)
	}
	if got := clientID("web-1a"); got != "web-1a" {
		t.Errorf("short client IDs stay whole: %q", got)
	}
}
