package monitor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/r2m-go/r2m/meta"
)

// SeriesQuery selects one stored metric of one subject over a time range.
// Node metrics need Cluster and Node, cluster metrics Cluster, app metrics
// App (see [Metrics] for each metric's scope).
type SeriesQuery struct {
	Cluster string `json:"cluster,omitempty"`
	Node    string `json:"node,omitempty"` // host:port as in the topology
	App     string `json:"app,omitempty"`
	Metric  string `json:"metric"`
	// From and To bound the range [From, To). Zero To means now; zero From
	// means an hour before To.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Step is the width of each returned point. Zero means the finest the
	// history has for the range (the collection interval within the raw
	// retention, a minute beyond it), widened so that at most MaxPoints
	// come back. A step finer than the history is widened to it.
	Step time.Duration `json:"step"`
}

// Point is one step of a series: the minimum, maximum and average of the
// samples within [Time, Time+step), and how many there were.
type Point struct {
	Time  time.Time `json:"t"`
	Avg   float64   `json:"avg"`
	Min   float64   `json:"min"`
	Max   float64   `json:"max"`
	Count int64     `json:"count"`
}

// MaxPoints bounds the points one Series call returns.
const MaxPoints = 2000

// maxRange bounds a query's range: beyond the longest retention there is
// nothing anyway.
const maxRange = 366 * 24 * time.Hour

// Series returns a series from the history, oldest point first; steps
// without samples are absent. A subject never recorded yields no points,
// not an error. Invalid input fails with [*FieldError]s naming the field.
// The history lives on the server that runs the monitor (the leader).
func (m *Monitor) Series(ctx context.Context, q SeriesQuery) ([]Point, error) {
	if err := m.checkOpen(); err != nil {
		return nil, err
	}
	now := m.cfg.Now()
	if q.To.IsZero() {
		q.To = now
	}
	if q.From.IsZero() {
		q.From = q.To.Add(-time.Hour)
	}
	if err := validateSeries(q); err != nil {
		return nil, err
	}
	mi := catalogByName[q.Metric]
	key := seriesKey{metric: q.Metric}
	switch mi.Scope {
	case ScopeNode:
		key.cluster, key.node = q.Cluster, q.Node
	case ScopeCluster:
		key.cluster = q.Cluster
	case ScopeApp:
		key.app = q.App
	}
	minutes := q.Step >= time.Minute || q.From.Before(now.Add(-m.cfg.RawRetention))
	base := int64(max(1, (m.cfg.Interval+time.Second-1)/time.Second))
	if minutes {
		base = 60
	}
	// Points are stored at whole seconds: a To within a second includes
	// that second.
	from, to := q.From.Unix(), q.To.Unix()
	if q.To.Nanosecond() > 0 {
		to++
	}
	if to <= from {
		to = from + 1
	}
	step := max(base, int64(q.Step/time.Second))
	if n := (to - from + step - 1) / step; n > MaxPoints {
		step = (to - from + MaxPoints - 1) / MaxPoints
		step = (step + base - 1) / base * base
	}
	id, err := m.hist.lookup(ctx, key)
	if err != nil || id == 0 {
		return []Point{}, err
	}
	buckets, err := m.hist.query(ctx, id, from, to, step, minutes, now.Add(-m.cfg.MinuteRetention).Unix())
	if err != nil {
		return nil, err
	}
	out := make([]Point, 0, len(buckets))
	for _, b := range buckets {
		out = append(out, Point{Time: time.Unix(b.ts, 0).UTC(), Avg: b.sum / float64(b.count), Min: b.min, Max: b.max, Count: b.count})
	}
	return out, nil
}

func validateSeries(q SeriesQuery) error {
	var errs []error
	mi := catalogByName[q.Metric]
	var stored []string
	for _, c := range catalog {
		if c.Stored {
			stored = append(stored, c.Name)
		}
	}
	switch {
	case q.Metric == "":
		errs = append(errs, fieldErr("metric", "is required; one of %s", strings.Join(stored, ", ")))
	case mi == nil:
		errs = append(errs, fieldErr("metric", "unknown metric %q; one of %s", q.Metric, strings.Join(stored, ", ")))
	case !mi.Stored:
		errs = append(errs, fieldErr("metric", "%q is not kept in the history; one of %s", q.Metric, strings.Join(stored, ", ")))
	}
	name := func(field, kind, v string) {
		if v != "" && meta.ValidateName(kind, v) != nil {
			errs = append(errs, fieldErr(field, "%q is not a valid %s name", v, kind))
		}
	}
	name("cluster", "cluster", q.Cluster)
	name("app", "app", q.App)
	if mi != nil {
		need := func(field, v string) {
			if v == "" {
				errs = append(errs, fieldErr(field, "is required for %s metric %q", mi.Scope, q.Metric))
			}
		}
		switch mi.Scope {
		case ScopeNode:
			need("cluster", q.Cluster)
			need("node", q.Node)
		case ScopeCluster:
			need("cluster", q.Cluster)
			if q.Node != "" {
				errs = append(errs, fieldErr("node", "%q is a cluster metric; leave node empty (or use the node metric %q)", q.Metric, strings.TrimPrefix(q.Metric, "cluster_")))
			}
		case ScopeApp:
			need("app", q.App)
		}
	}
	if !q.From.Before(q.To) {
		errs = append(errs, fieldErr("from", "%s must be before to (%s)", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339)))
	} else if q.To.Sub(q.From) > maxRange {
		errs = append(errs, fieldErr("from", "range %v is longer than %v", q.To.Sub(q.From), maxRange))
	}
	if q.Step < 0 || q.Step > 24*time.Hour {
		errs = append(errs, fieldErr("step", "%v: want 0 (automatic) to 24h", q.Step))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return nil
}

// String describes the query, for logs.
func (q SeriesQuery) String() string {
	return fmt.Sprintf("%s{cluster=%q node=%q app=%q}", q.Metric, q.Cluster, q.Node, q.App)
}
