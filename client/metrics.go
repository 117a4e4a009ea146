package client

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metricBounds are the upper bounds, in seconds, of the exported latency
// histogram. The client records latencies in much finer buckets (four per
// power of two); these are the ones worth a time series each.
var metricBounds = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
}

// collector exports one client's counters. It reads them when scraped, so
// the data path pays nothing for it. Every series carries the app and the
// client id as constant labels: several clients of one process can share a
// registry, and a closed client's series vanish with it.
type collector struct {
	k *core

	commands, errors, hits, invalidations, rebuilds *prometheus.Desc
	conns, epoch, cfgVer, duration                  *prometheus.Desc
}

func newCollector(k *core) *collector {
	labels := prometheus.Labels{"app": k.opts.App, "client_id": k.id, "client_name": k.opts.Name}
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("r2m_client_"+name, help, nil, labels)
	}
	return &collector{
		k:             k,
		commands:      desc("commands_total", "Commands sent through Do, DoMulti, DoCache, DoMultiCache, DoStream and DoMultiStream, cache hits included."),
		errors:        desc("command_errors_total", "Commands that failed with a network error or a Redis error other than a nil reply."),
		hits:          desc("cache_hits_total", "Results served from the client-side cache without a round trip."),
		invalidations: desc("cache_invalidations_total", "Invalidation messages received for the client-side cache."),
		rebuilds:      desc("rebuilds_total", "Times the client replaced its connections (another cluster, a changed client config)."),
		conns:         desc("open_connections", "Redis connections open now."),
		epoch:         desc("topology_epoch", "Epoch of the topology record the client uses."),
		cfgVer:        desc("config_version", "Version of the app's client config the client applied."),
		duration:      desc("call_duration_seconds", "Duration of each data-path call (a DoMulti is one call). The sum is estimated from the client's internal buckets, within an eighth of each value."),
	}
}

// Describe implements prometheus.Collector.
func (m *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.commands, m.errors, m.hits, m.invalidations, m.rebuilds, m.conns, m.epoch, m.cfgVer, m.duration} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *collector) Collect(ch chan<- prometheus.Metric) {
	k := m.k
	a := k.appliedNow()
	var (
		calls   uint64
		sum     float64
		buckets = make(map[float64]uint64, len(metricBounds))
	)
	for i := range k.stats.hist {
		n := k.stats.hist[i].Load()
		if n == 0 {
			continue
		}
		calls += n
		upper := bucketUpper(i)
		lower := time.Duration(0)
		if i > 0 {
			lower = bucketUpper(i-1) + 1
		}
		sum += float64(n) * ((lower + upper) / 2).Seconds()
		for _, b := range metricBounds {
			if upper.Seconds() <= b {
				buckets[b] += n
			}
		}
	}
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter(m.commands, int64(calls)+k.stats.extra.Load())
	counter(m.errors, k.stats.errors.Load())
	counter(m.hits, k.stats.cacheHits.Load())
	counter(m.invalidations, k.stats.invalidations.Load())
	counter(m.rebuilds, k.stats.rebuilds.Load())
	gauge(m.conns, k.stats.openConns.Load())
	gauge(m.epoch, a.epoch)
	gauge(m.cfgVer, a.cfgVer)
	ch <- prometheus.MustNewConstHistogram(m.duration, calls, sum, buckets)
}

// registerMetrics adds the client's collector to opts.Registerer, if any.
func (k *core) registerMetrics() error {
	if k.opts.Registerer == nil {
		return nil
	}
	m := newCollector(k)
	if err := k.opts.Registerer.Register(m); err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	k.metrics = m
	return nil
}

// unregisterMetrics removes the collector; Close calls it first, so a
// closed client leaves no series behind.
func (k *core) unregisterMetrics() {
	if k.metrics != nil {
		k.opts.Registerer.Unregister(k.metrics)
	}
}
