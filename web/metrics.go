package web

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"time"
)

// This file is the seam between the console and the monitoring history
// (package monitor, served by the API under /api/v1/monitor). Everything
// the console shows about measured load — the memory and ops/s columns, a
// node's memory, clients and replication lag, and every chart area — comes
// through here, and nothing else in the package makes up a value.
//
// The console asks, as the visitor,
//
//	GET /api/v1/monitor/series?cluster=C&node=ADDR&app=A&metric=M&from=-1h
//	→ 200 [{"t": "<RFC 3339>", "avg": 1.5, "min": 1, "max": 2, "count": 3}, …]
//
// oldest point first (the JSON of monitor.Point). A server without a
// monitor has no such route and answers 404; a subject not measured yet
// answers an empty list. Both show as "no data yet". The metric names are
// the monitor's catalogue (GET /api/v1/monitor/metrics).
const seriesPath = "/api/v1/monitor/series"

// point is one step of a monitoring series.
type point struct {
	T   time.Time `json:"t"`
	Avg float64   `json:"avg"`
}

// decodeSeries reads a series answer: an array of points, or an object
// holding one under "points".
func decodeSeries(b []byte) ([]point, bool) {
	var pts []point
	if err := json.Unmarshal(b, &pts); err == nil {
		return pts, true
	}
	var obj struct {
		Points []point `json:"points"`
	}
	if err := json.Unmarshal(b, &obj); err == nil {
		return obj.Points, true
	}
	return nil, false
}

// metricReader reads the newest values of metrics for one page render. The
// first answer that says the series API does not exist (404) stops it from
// asking again during that render.
type metricReader struct {
	c       *console
	r       *http.Request
	missing bool
}

func (c *console) metrics(r *http.Request) *metricReader { return &metricReader{c: c, r: r} }

// metricValue is a measured value, or the lack of one.
type metricValue struct {
	Known bool
	Value float64
	Unit  string // "bytes", "ops/s", "count", "seconds"
}

// String prints the value for a table cell, or "no data yet".
func (m metricValue) String() string {
	if !m.Known {
		return "no data yet"
	}
	switch m.Unit {
	case "bytes":
		return humanBytes(int64(m.Value))
	case "ops/s":
		return formatFloat(m.Value) + " ops/s"
	case "seconds":
		return formatFloat(m.Value) + " s"
	}
	return formatFloat(m.Value)
}

// latest returns the newest value of metric for the subject in q (cluster,
// node or app), looking back five minutes.
func (m *metricReader) latest(q url.Values, metric, unit string) metricValue {
	if m.missing {
		return metricValue{}
	}
	q.Set("metric", metric)
	q.Set("from", "-5m")
	var raw json.RawMessage
	if err := m.c.get(m.r, seriesPath+"?"+q.Encode(), &raw); err != nil {
		if statusOf(err) == http.StatusNotFound || statusOf(err) == http.StatusMethodNotAllowed {
			m.missing = true
		}
		return metricValue{}
	}
	pts, ok := decodeSeries(raw)
	if !ok || len(pts) == 0 {
		return metricValue{}
	}
	v := pts[len(pts)-1].Avg
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return metricValue{}
	}
	return metricValue{Known: true, Value: v, Unit: unit}
}

// chartArea is one chart on a monitoring panel. The browser fills it from
// the series API (app.js, readSeries), one line per series, or says "no
// data yet".
type chartArea struct {
	Title  string
	Unit   string // bytes, ops/s, ratio, seconds, count
	Series []seriesRef
	// Empty is what the area says when there is nothing to ask for.
	Empty string
}

// seriesRef is one line of a chart: a series query without "from".
type seriesRef struct {
	Label string `json:"label"`
	Query string `json:"q"`
}

func series(label string, kv ...string) seriesRef {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return seriesRef{Label: label, Query: v.Encode()}
}

// clusterCharts are the chart areas of a cluster's monitoring panel: the
// cluster's own series, the registered clients of the apps that use it,
// and the latency of each master.
func clusterCharts(cluster string, masters []string, apps []string) []chartArea {
	c := func(label, metric string) seriesRef { return series(label, "cluster", cluster, "metric", metric) }
	regs := chartArea{Title: "Registered clients", Unit: "count", Empty: "no data yet: no app uses this cluster"}
	for _, a := range apps {
		regs.Series = append(regs.Series, series(a, "app", a, "metric", "registered_clients"))
	}
	lat := chartArea{Title: "Latency (max, per master)", Unit: "seconds", Empty: "no data yet: no masters"}
	for _, m := range masters {
		lat.Series = append(lat.Series, series(m, "cluster", cluster, "node", m, "metric", "latency_max_seconds"))
	}
	return []chartArea{
		{Title: "Ops/s", Unit: "ops/s", Series: []seriesRef{c("ops/s", "cluster_ops_per_sec")}},
		{Title: "Memory", Unit: "bytes", Series: []seriesRef{c("used", "cluster_used_memory_bytes"), c("max", "cluster_maxmemory_bytes")}},
		{Title: "Hit ratio", Unit: "ratio", Series: []seriesRef{c("hit ratio", "cluster_hit_ratio")}},
		{Title: "Connected clients", Unit: "count", Series: []seriesRef{c("connections", "cluster_connected_clients")}},
		regs,
		lat,
	}
}

// nodeCharts are the chart areas of one node.
func nodeCharts(cluster, addr string, replica bool) []chartArea {
	n := func(label, metric string) seriesRef {
		return series(label, "cluster", cluster, "node", addr, "metric", metric)
	}
	lag := chartArea{Title: "Replication lag", Unit: "seconds", Empty: "a master has no replication lag"}
	if replica {
		lag.Series = []seriesRef{n("lag", "replication_lag_seconds")}
	}
	return []chartArea{
		{Title: "Ops/s", Unit: "ops/s", Series: []seriesRef{n("ops/s", "ops_per_sec")}},
		{Title: "Memory", Unit: "bytes", Series: []seriesRef{n("used", "used_memory_bytes"), n("max", "maxmemory_bytes")}},
		{Title: "Hit ratio", Unit: "ratio", Series: []seriesRef{n("hit ratio", "hit_ratio")}},
		{Title: "Connected clients", Unit: "count", Series: []seriesRef{n("connections", "connected_clients")}},
		lag,
		{Title: "Latency (max)", Unit: "seconds", Series: []seriesRef{n("latency", "latency_max_seconds")}},
	}
}
