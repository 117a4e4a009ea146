package monitor

import (
	"context"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/r2m-go/r2m/internal/buildinfo"
)

// metricsSet is the monitor's own instrumentation plus the collector that
// exports the latest snapshot. Everything is registered in a private
// registry, never the global one.
type metricsSet struct {
	reg *prometheus.Registry

	passDuration  prometheus.Histogram
	passes        prometheus.Counter
	passNodes     *prometheus.GaugeVec
	lastPass      prometheus.Gauge
	collecting    prometheus.Gauge
	errors        *prometheus.CounterVec
	events        *prometheus.CounterVec
	notifications *prometheus.CounterVec
	dropped       prometheus.Counter
	historyWrite  prometheus.Histogram
}

func newMetrics(m *Monitor) *metricsSet {
	ms := &metricsSet{
		reg: prometheus.NewRegistry(),
		passDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "r2m_monitor_pass_duration_seconds", Help: "How long a collection pass took: polling every node, storing history, evaluating alerts.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		passes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "r2m_monitor_passes_total", Help: "Collection passes run by this server.",
		}),
		passNodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "r2m_monitor_pass_nodes", Help: "Nodes polled in the last pass, by result (ok, failed).",
		}, []string{"result"}),
		lastPass: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "r2m_monitor_last_pass_timestamp_seconds", Help: "When the last collection pass ended (unix time).",
		}),
		collecting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "r2m_monitor_collecting", Help: "1 while this server runs collection and alerting (it leads), 0 otherwise.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "r2m_monitor_errors_total", Help: "Failures of a pass stage: coordinator reads, history writes, alert state.",
		}, []string{"stage"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "r2m_alert_events_total", Help: "Alert events by rule and kind (firing, repeat, resolved).",
		}, []string{"rule", "kind"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "r2m_alert_notifications_total", Help: "Notification messages by channel, channel type and result (ok, failed).",
		}, []string{"channel", "type", "result"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "r2m_alert_notifications_dropped_total", Help: "Alert events not notified because the delivery queue was full.",
		}),
		historyWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "r2m_monitor_history_write_duration_seconds", Help: "How long storing one pass's points took.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}),
	}
	for _, r := range []string{"ok", "failed"} {
		ms.passNodes.WithLabelValues(r)
	}
	for _, stage := range []string{"coordinator", "history", "alerts"} {
		ms.errors.WithLabelValues(stage)
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "r2m_build_info", Help: "The R2M version this server runs; always 1.",
		ConstLabels: prometheus.Labels{"version": buildinfo.Version, "goversion": runtime.Version()},
	})
	build.Set(1)
	dbSize := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "r2m_monitor_history_size_bytes", Help: "Size of the history database, write-ahead log included.",
	}, func() float64 {
		var total int64
		for _, suffix := range []string{"", "-wal"} {
			if fi, err := os.Stat(filepath.Join(m.cfg.DataDir, historyFile+suffix)); err == nil {
				total += fi.Size()
			}
		}
		return float64(total)
	})
	ms.reg.MustRegister(ms.passDuration, ms.passes, ms.passNodes, ms.lastPass, ms.collecting, ms.errors, ms.events,
		ms.notifications, ms.dropped, ms.historyWrite, build, dbSize,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&snapshotCollector{m: m})
	return ms
}

// Registry returns the monitor's private Prometheus registry, for the
// server to register its own metrics (HTTP requests, say) so that they
// appear on the same /metrics.
func (m *Monitor) Registry() *prometheus.Registry { return m.metrics.reg }

// coordRefreshTimeout bounds a follower's coordinator reads for /metrics.
const coordRefreshTimeout = 5 * time.Second

// MetricsHandler serves the Prometheus text format: node, cluster, app,
// operation and alert metrics as this server knows them, and the server's
// own (Go runtime, process, monitor passes, notifications). It is valid on
// every server: the leading one exports what it collected; a follower
// exports app client counts and operations, which it reads from the
// coordinator at most once per interval, and its server metrics.
func (m *Monitor) MetricsHandler() http.Handler {
	h := promhttp.HandlerFor(m.metrics.reg, promhttp.HandlerOpts{
		ErrorLog:          promLogger{m},
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: false,
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !m.isRunning() {
			m.refreshCoordStats(r.Context())
		}
		h.ServeHTTP(w, r)
	})
}

type promLogger struct{ m *Monitor }

func (l promLogger) Println(v ...any) { l.m.log.Warn("metrics", "err", v) }

// published is what /metrics exports; guarded by Monitor.mu.
type published struct {
	snap   *snapshot // the leader's last pass; nil when not collecting
	apps   []*appTarget
	ops    map[opKey]int
	coord  time.Time // when apps and ops were read (by a follower)
	alerts bool      // alerts gauge valid (this server evaluates alerts)
}

// refreshCoordStats reads app client counts and operations for a
// follower's /metrics, at most once per interval.
func (m *Monitor) refreshCoordStats(ctx context.Context) {
	m.mu.Lock()
	fresh := time.Since(m.pub.coord) < m.cfg.Interval
	m.mu.Unlock()
	if fresh {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, coordRefreshTimeout)
	defer cancel()
	apps, aerr := m.readApps(ctx, false)
	ops, oerr := m.readOps(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running { // became leader meanwhile: the pass publishes
		return
	}
	if aerr == nil {
		m.pub.apps = apps
	}
	if oerr == nil {
		m.pub.ops = ops
	}
	m.pub.coord = time.Now()
}

// snapshotCollector exports the published snapshot. It is an unchecked
// collector: the set of series changes with every topology.
type snapshotCollector struct{ m *Monitor }

func (c *snapshotCollector) Describe(chan<- *prometheus.Desc) {}

var (
	nodeLabels    = []string{"cluster", "node", "role"}
	clusterLabels = []string{"cluster"}
	appLabels     = []string{"app", "cluster"}

	latencyDesc = prometheus.NewDesc(latencyLatestPromMet,
		"The latest latency spike of each LATENCY LATEST event on the node.", append(slices.Clone(nodeLabels), "event"), nil)
	clusterInfoDesc = prometheus.NewDesc("r2m_cluster_info",
		"A cluster's record: datacenter, state and whether R2M adopted it; always 1.", []string{"cluster", "datacenter", "state", "adopted"}, nil)
	opsDesc = prometheus.NewDesc("r2m_operations",
		"Operations under /ops by type and state.", []string{"type", "state"}, nil)
	alertsDesc = prometheus.NewDesc("r2m_alerts",
		"Alerts pending or firing, by rule, severity and state.", []string{"rule", "severity", "state"}, nil)
	descs = func() map[string]*prometheus.Desc {
		out := map[string]*prometheus.Desc{}
		for _, mi := range catalog {
			if mi.Prometheus == "" {
				continue
			}
			var labels []string
			switch mi.Scope {
			case ScopeNode:
				labels = nodeLabels
			case ScopeCluster:
				labels = clusterLabels
			case ScopeApp:
				labels = appLabels
			default:
				continue
			}
			out[mi.Name] = prometheus.NewDesc(mi.Prometheus, mi.Help, labels, nil)
		}
		return out
	}()
)

func (c *snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	m.mu.Lock()
	pub := m.pub
	m.mu.Unlock()
	emit := func(metric string, v float64, labels ...string) {
		d := descs[metric]
		if d == nil {
			return
		}
		typ := prometheus.GaugeValue
		if catalogByName[metric].counter {
			typ = prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(d, typ, v, labels...)
	}
	if s := pub.snap; s != nil {
		for _, sub := range s.subjects {
			var labels []string
			switch sub.scope {
			case ScopeNode:
				labels = []string{sub.cluster, sub.node, sub.labels["role"]}
				for _, e := range s.latency[sub.key] {
					ch <- prometheus.MustNewConstMetric(latencyDesc, prometheus.GaugeValue, e.Latest.Seconds(), append(slices.Clone(labels), e.Event)...)
				}
			case ScopeCluster:
				labels = []string{sub.cluster}
				if rec := s.clusters[sub.cluster]; rec != nil {
					ch <- prometheus.MustNewConstMetric(clusterInfoDesc, prometheus.GaugeValue, 1,
						sub.cluster, rec.Datacenter, string(rec.State), strconv.FormatBool(rec.Adopted))
				}
			case ScopeApp:
				labels = []string{sub.app, sub.cluster}
			default:
				continue
			}
			for _, metric := range slices.Sorted(maps.Keys(sub.values)) {
				emit(metric, sub.values[metric], labels...)
			}
		}
	} else {
		for _, a := range pub.apps {
			emit(mRegistered, float64(a.count), a.name, a.cluster)
		}
	}
	for k, n := range pub.ops {
		ch <- prometheus.MustNewConstMetric(opsDesc, prometheus.GaugeValue, float64(n), k.typ, k.state)
	}
	if pub.alerts {
		type ak struct{ rule, sev, state string }
		counts := map[ak]int{}
		for _, a := range m.alerts.list() {
			counts[ak{a.Rule, string(a.Severity), a.State}]++
		}
		for k, n := range counts {
			ch <- prometheus.MustNewConstMetric(alertsDesc, prometheus.GaugeValue, float64(n), k.rule, k.sev, k.state)
		}
	}
}
