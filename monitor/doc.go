// Package monitor collects metrics from every Redis node R2M knows, keeps
// their history in SQLite in the server's data dir, exports them to
// Prometheus, and evaluates alert rules that notify webhooks (a generic
// JSON webhook, DingTalk, WeCom and Slack). docs/monitoring.md is the
// operator's guide; this comment is the programmer's.
//
// # Life cycle
//
// One [Monitor] per r2m server:
//
//	m, err := monitor.New(monitor.Config{Store: store, DataDir: dir, Logger: log})
//	if err != nil { … }
//	defer m.Close()                       // ends Run, closes the database
//	mux.Handle("GET /metrics", m.MetricsHandler())
//	…
//	// in the leader's duties, with the leadership context:
//	err = m.Run(leaderCtx)                // returns nil when leaderCtx ends
//
// New does no network I/O: it checks the Config and opens the history
// database. [Monitor.Run] is meant for the leading server only: it polls
// every node every Config.Interval, stores the values, evaluates the rules
// and sends notifications, until its context ends; then it stops every
// goroutine it started, lets queued notifications go out within
// Config.NotifyTimeout, closes its node connections, and returns nil. It
// can be called again after it returned (the server leads again). Close
// ends a running Run and waits for it (at most 15 s) before closing the
// database; it is idempotent.
//
// # Bounded cost
//
// A pass polls at most Config.Concurrency nodes at once, each bounded by
// Config.NodeTimeout from the start of dialing. A node that does not
// answer in time is reported down (metric "up" is 0) and never delays
// another node. Coordinator reads of a pass are bounded by the larger of
// the interval and 5 s; when the coordinator is unreachable, the last
// known clusters are polled. Passes never overlap.
//
// # API
//
// Everything an HTTP API needs is a method that takes and returns Go
// values: [Monitor.Series], [Metrics], [Monitor.Rules], [Monitor.Rule],
// [Monitor.SetRule], [Monitor.DeleteRule], [Monitor.Channels],
// [Monitor.Channel], [Monitor.SetChannel], [Monitor.DeleteChannel],
// [Monitor.TestChannel], [Monitor.Alerts] and [Monitor.AlertHistory];
// [SeriesQueryFromURL] and [AlertHistoryQueryFromURL] parse query
// parameters. Errors classify with errors.Is: [ErrInvalid] (every
// [*FieldError], which names the JSON field), [ErrNotFound], [ErrInUse],
// [ErrDelivery], [ErrClosed]; anything else comes from the coordinator
// (coord errors) or the database.
//
// Rules and channels live in the coordinator (/alerts/rules,
// /alerts/channels), so every server can read and change them; the
// collecting server picks changes up at its next pass. The firing alerts
// live in /alerts/state, so a new leader neither repeats notifications nor
// loses resolved ones. Series and alert history live in the collecting
// server's database.
package monitor
