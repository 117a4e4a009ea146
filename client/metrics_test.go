package client_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/r2m-go/r2m/client"
	"github.com/r2m-go/r2m/meta"
)

// TestMetrics checks what a Registerer receives: two clients share one
// registry without colliding, the counters match what each client sent, and
// Close removes the client's series.
func TestMetrics(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := testContext(t)
		e := newEnv(t, b.shared(t)(uniqueRoot(t)), "", sharedCluster(t), meta.ClientConfig{})
		reg := prometheus.NewPedanticRegistry()
		opts := e.options(nil)
		opts.Registerer = reg
		c1, err := client.New(ctx, opts)
		must(t, err)
		c2, err := client.New(ctx, opts)
		must(t, err)
		defer func() { must(t, c2.Close()) }()

		key := fmt.Sprintf("metrics:%s:%x", b.name, rand.Uint32())
		const sets, bad = 40, 3
		for i := range sets {
			must(t, c1.Do(ctx, c1.B().Set().Key(fmt.Sprintf("%s:%d", key, i)).Value("v").Build()).Error())
		}
		for range bad {
			if err := c1.Do(ctx, c1.B().Incr().Key(fmt.Sprintf("%s:0", key)).Build()).Error(); err == nil {
				t.Fatal("INCR of a non-number succeeded")
			}
		}
		res := c2.DoMulti(ctx, c2.B().Get().Key(key+":0").Build(), c2.B().Get().Key(key+":1").Build())
		for _, r := range res {
			must(t, r.Error())
		}

		byClient := gather(t, reg)
		want := map[string]map[string]float64{
			c1.ID(): {"r2m_client_commands_total": sets + bad, "r2m_client_command_errors_total": bad, "r2m_client_call_duration_seconds": sets + bad},
			c2.ID(): {"r2m_client_commands_total": 2, "r2m_client_command_errors_total": 0, "r2m_client_call_duration_seconds": 1},
		}
		for id, metrics := range want {
			got := byClient[id]
			for name, v := range metrics {
				if got[name] != v {
					t.Errorf("client %s: %s = %v; want %v (all: %v)", id, name, got[name], v, got)
				}
			}
			if got["r2m_client_open_connections"] <= 0 || got["r2m_client_topology_epoch"] <= 0 {
				t.Errorf("client %s: open connections or topology epoch not reported: %v", id, got)
			}
		}

		must(t, c1.Close())
		after := gather(t, reg)
		if _, ok := after[c1.ID()]; ok {
			t.Errorf("closed client %s still has series: %v", c1.ID(), after[c1.ID()])
		}
		if _, ok := after[c2.ID()]; !ok {
			t.Errorf("open client %s lost its series", c2.ID())
		}
	})
}

// gather returns each client's metric values by name; a histogram's value
// is its sample count.
func gather(t *testing.T, reg *prometheus.Registry) map[string]map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	must(t, err)
	out := map[string]map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			id := label(m, "client_id")
			if out[id] == nil {
				out[id] = map[string]float64{}
			}
			var v float64
			switch {
			case m.GetCounter() != nil:
				v = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				v = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				v = float64(m.GetHistogram().GetSampleCount())
			}
			out[id][mf.GetName()] = v
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
