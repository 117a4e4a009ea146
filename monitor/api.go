package monitor

import (
	"errors"
	"net/url"
	"strconv"
	"time"
)

// This file holds helpers for thin HTTP handlers: they turn a request's
// query parameters into the query types, with errors that name the
// parameter. Everything else the API needs is a method of Monitor that
// takes Go values and returns Go values:
//
//	Series, Metrics, Rules, Rule, SetRule, DeleteRule, Channels, Channel,
//	SetChannel, DeleteChannel, TestChannel, Alerts, AlertHistory.

// ParseTime reads a time parameter: RFC 3339 ("2026-11-25T10:00:00Z"),
// unix seconds ("1795600800"), or a duration before now ("-1h" or "1h",
// both meaning an hour ago). Empty is the zero time.
func ParseTime(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return time.Time{}, errors.New("want RFC 3339, unix seconds, or a duration before now such as 6h")
	}
	if d > 0 {
		d = -d
	}
	return now.Add(d), nil
}

// SeriesQueryFromURL reads cluster, node, app, metric, from, to and step
// (a duration: "30s", "5m"). Errors are [*FieldError]s naming the
// parameter.
func SeriesQueryFromURL(v url.Values, now time.Time) (SeriesQuery, error) {
	q := SeriesQuery{Cluster: v.Get("cluster"), Node: v.Get("node"), App: v.Get("app"), Metric: v.Get("metric")}
	var errs []error
	var err error
	if q.From, err = ParseTime(v.Get("from"), now); err != nil {
		errs = append(errs, fieldErr("from", "%q: %v", v.Get("from"), err))
	}
	if q.To, err = ParseTime(v.Get("to"), now); err != nil {
		errs = append(errs, fieldErr("to", "%q: %v", v.Get("to"), err))
	}
	if s := v.Get("step"); s != "" {
		if q.Step, err = time.ParseDuration(s); err != nil {
			errs = append(errs, fieldErr("step", "%q: want a duration such as 1m", s))
		}
	}
	return q, errors.Join(errs...)
}

// AlertHistoryQueryFromURL reads from, to, cluster, app, rule, kind and
// limit. Errors are [*FieldError]s naming the parameter.
func AlertHistoryQueryFromURL(v url.Values, now time.Time) (AlertHistoryQuery, error) {
	q := AlertHistoryQuery{Cluster: v.Get("cluster"), App: v.Get("app"), Rule: v.Get("rule"), Kind: v.Get("kind")}
	var errs []error
	var err error
	if q.From, err = ParseTime(v.Get("from"), now); err != nil {
		errs = append(errs, fieldErr("from", "%q: %v", v.Get("from"), err))
	}
	if q.To, err = ParseTime(v.Get("to"), now); err != nil {
		errs = append(errs, fieldErr("to", "%q: %v", v.Get("to"), err))
	}
	if s := v.Get("limit"); s != "" {
		if q.Limit, err = strconv.Atoi(s); err != nil {
			errs = append(errs, fieldErr("limit", "%q: want a whole number", s))
		}
	}
	return q, errors.Join(errs...)
}
