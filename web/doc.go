// Package web is R2M's operator console: server-rendered pages over the
// control plane's HTTP API, served by `r2m server` at "/".
//
// # How it is wired
//
// [New] returns the function that manager.Config.Console expects. The
// server calls it with its own handler, and serves what it returns for every
// path that is not the API:
//
//	cfg.Console = web.New(web.Options{Logger: log})
//
// # How a page reads, and how it changes things
//
// A page never reads the coordinator or Redis itself. Its handler builds an
// in-process GET request to an /api/v1 path, copies the visitor's Cookie
// header onto it, serves it with the API handler into a recorder and decodes
// the JSON into the types of package api. So every rule of the API — the
// session, the role of each route, what a viewer may see — applies to the
// console unchanged, and a page shows exactly what the API would answer that
// visitor.
//
// The console's own handlers answer GET only. Every change — log in, create
// a cluster, start an operation, pause it, save a client config, run a
// command — is a request from the browser to the real /api/v1 endpoint,
// carrying the session cookie and the X-CSRF-Token header that the page got
// from GET /api/v1/whoami. Controls that change things are rendered only for
// the roles that may use them, and are marked data-mutating; the API refuses
// them anyway.
//
// # Operations: plan first
//
// Every operation form (create, scale, rebalance, reshard, add and remove
// node, failover, fix) first sends its parameters with "dry_run": true and
// shows the plan the server returns. Only the Run button of that plan sends
// the same parameters for real; the browser then follows the operation's
// server-sent events on /api/v1/ops/{id}/events.
//
// # Assets
//
// Templates and static files are embedded with go:embed. The front-end
// libraries are vendored as plain files under static/vendor (htmx for
// fragment refreshes, uPlot for charts), with their licenses and
// static/vendor/VERSIONS.md; there is no Node.js build step. [Options.Dir]
// serves templates and static files from a checkout instead, re-read on
// every request, for working on the console without rebuilding.
//
// # Monitoring
//
// The chart areas and the memory, ops/s, client and lag columns read the
// monitoring history (GET /api/v1/monitor/series) through one seam,
// metrics.go. A server without a monitor, or a subject with no history yet,
// shows "no data yet"; the console never shows a number that was not
// measured.
package web
