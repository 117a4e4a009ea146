package manager

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/meta"
)

func TestDetectClientProblems(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	start := now.Add(-time.Hour)
	healthy := func(id, host string, pid int) *meta.Client {
		return &meta.Client{ID: id, Name: "job", Host: host, PID: pid, ProcessStart: start, CreationSite: "main.go:10",
			CreatedAt: now.Add(-10 * time.Minute), OpenConns: 3,
			Heartbeat: meta.Heartbeat{At: now.Add(-30 * time.Second), Interval: meta.Duration(time.Minute)}}
	}
	many := func(n int, site string) []*meta.Client {
		var out []*meta.Client
		for i := range n {
			c := healthy("c"+string(rune('a'+i%26))+strings.Repeat("x", i/26), "host-a", 4242)
			c.CreationSite = site
			out = append(out, c)
		}
		return out
	}
	samples := func(counts ...int) []api.CountSample {
		var out []api.CountSample
		for i, c := range counts {
			out = append(out, api.CountSample{Time: now.Add(time.Duration(i-len(counts)) * time.Minute), Count: c})
		}
		return out
	}
	stale := healthy("stale", "host-b", 7)
	stale.Heartbeat.At = now.Add(-4 * time.Minute)
	noConns := healthy("noconns", "host-c", 8)
	noConns.OpenConns = 0
	young := healthy("young", "host-c", 9)
	young.OpenConns, young.CreatedAt = 0, now.Add(-5*time.Second)
	// A client that reported a change early: its last window was 2 s long,
	// but its next heartbeat is due a minute after the last.
	early := healthy("early", "host-d", 10)
	early.Heartbeat.Interval, early.Heartbeat.Every = meta.Duration(2*time.Second), meta.Duration(time.Minute)
	lateEvery := healthy("late", "host-d", 11)
	lateEvery.Heartbeat.At, lateEvery.Heartbeat.Every = now.Add(-4*time.Minute), meta.Duration(time.Minute)
	lateEvery.Heartbeat.Interval = meta.Duration(time.Hour)
	restarted := many(10, "job.go:42")
	for _, c := range restarted[:5] {
		c.ProcessStart = start.Add(time.Minute) // same pid, another process
	}

	cfg := LeakConfig{MaxClientsPerProcess: 16, RisingWindow: 10 * time.Minute, RisingSamples: 5, RisingMin: 3}
	for _, tc := range []struct {
		name      string
		clients   []*meta.Client
		history   []api.CountSample
		wantCodes []string
		wantMsg   string
	}{
		{"healthy", []*meta.Client{healthy("a", "h", 1), healthy("b", "h", 2)}, samples(2, 2, 3, 2, 2), nil, ""},
		{"leak", many(57, "job.go:42"), nil, []string{flagLeak}, `pid 4242 on host-a holds 57 clients of "orders", created at job.go:42`},
		{"at the limit is fine", many(16, "job.go:42"), nil, nil, ""},
		{"pid reuse is two processes", restarted, nil, nil, ""},
		{"heartbeat overdue", []*meta.Client{stale}, nil, []string{flagZombieHeartbeat}, "last heartbeat 4m0s ago, expected every 1m0s"},
		{"a short window after an early report is not overdue", []*meta.Client{early}, nil, nil, ""},
		{"overdue by the announced interval", []*meta.Client{lateEvery}, nil, []string{flagZombieHeartbeat}, "expected every 1m0s"},
		{"no connections", []*meta.Client{noConns}, nil, []string{flagZombieConns}, "holds no Redis connections"},
		{"new client without connections yet", []*meta.Client{young}, nil, nil, ""},
		{"only rising", nil, samples(10, 11, 11, 13, 14), []string{flagRising}, "only rose over the last 4m0s: 10 → 14"},
		{"rising too little", nil, samples(10, 10, 11, 11, 12), nil, ""},
		{"rise with a fall", nil, samples(10, 12, 11, 13, 15), nil, ""},
		{"too few samples", nil, samples(1, 5, 9), nil, ""},
		{"a fall before the window does not count", nil, samples(50, 10, 11, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20), []string{flagRising}, "11 → 20"},
	} {
		flags, per := detectClientProblems("orders", tc.clients, tc.history, now, cfg)
		var codes []string
		for _, f := range flags {
			codes = append(codes, f.Code)
		}
		if !slices.Equal(codes, tc.wantCodes) {
			t.Errorf("%s: flag codes %v, want %v (%+v)", tc.name, codes, tc.wantCodes, flags)
			continue
		}
		if tc.wantMsg != "" && !strings.Contains(flags[0].Message, tc.wantMsg) {
			t.Errorf("%s: message %q, want it to contain %q", tc.name, flags[0].Message, tc.wantMsg)
		}
		for _, f := range flags {
			for _, id := range f.Clients {
				if !slices.Contains(per[id], f.Code) {
					t.Errorf("%s: client %s is not marked %s", tc.name, id, f.Code)
				}
			}
		}
	}
}
