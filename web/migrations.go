package web

import (
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/r2m-go/r2m/api"
)

// The migration pages show the sync links of migrate operations as GET
// /api/v1/syncs answers them: one line per link, and one row per source
// shard on a link's page. They only read; pausing, resuming and cancelling
// a migration are the controls of its operation's page.

// migrationsPage lists the links.
func (c *console) migrationsPage(w http.ResponseWriter, r *http.Request, me *visitor) {
	var links []api.SyncLink
	if err := c.get(r, "/api/v1/syncs", &links); err != nil {
		c.fail(w, r, me, err)
		return
	}
	rows := make([]linkRow, 0, len(links))
	for _, l := range links {
		rows = append(rows, newLinkRow(l))
	}
	c.render(w, r, http.StatusOK, "migrations", fragmentBlock(r, "migration-rows"), &pageData{Title: "Migrations", Nav: "migrations", Me: me, Data: rows})
}

// linkRow is one line of the migrations list: the link and what its
// shards add up to.
type linkRow struct {
	api.SyncLink
	Streaming int   // shards in the stream phase
	RDBKeys   int64 // keys the shards' RDB phases have copied, summed
	// LagBytes and LagMs are the largest of the shards'.
	LagBytes, LagMs int64
}

func newLinkRow(l api.SyncLink) linkRow {
	row := linkRow{SyncLink: l}
	for _, sh := range l.Shards {
		if sh.Phase == "stream" {
			row.Streaming++
		}
		row.RDBKeys += sh.RDBKeys
		row.LagBytes = max(row.LagBytes, sh.LagBytes)
		row.LagMs = max(row.LagMs, sh.LagMs)
	}
	return row
}

// migrationView is one link's page.
type migrationView struct {
	L api.SyncLink
	// OpState is the state of the operation that runs the link, empty if
	// it could not be read.
	OpState string
}

// Live reports whether the link can still change, so that its page keeps
// refreshing: while its operation has not ended. Without the operation,
// the link's own state says: a stopped link, or one an error blocked,
// stays as it is until an operation takes it up again.
func (v *migrationView) Live() bool {
	if v.OpState != "" {
		o := api.Operation{State: v.OpState}
		return !o.Done()
	}
	return v.L.State != "stopped" && v.L.State != "blocked"
}

func (c *console) migrationPage(w http.ResponseWriter, r *http.Request, me *visitor) {
	link := r.PathValue("link")
	var l api.SyncLink
	if err := c.get(r, "/api/v1/syncs/"+url.PathEscape(link), &l); err != nil {
		c.fail(w, r, me, err)
		return
	}
	v := &migrationView{L: l}
	if l.Op != "" {
		var op api.Operation
		if err := c.get(r, "/api/v1/ops/"+url.PathEscape(l.Op), &op); err == nil {
			v.OpState = op.State
		} else if statusOf(err) != http.StatusNotFound {
			c.log.Warn("reading a link's operation", "link", l.ID, "op", l.Op, "err", err)
		}
	}
	// The shards panel re-renders itself every two seconds while the
	// link runs (htmx, as the other live tables do).
	c.render(w, r, http.StatusOK, "migration", fragmentBlock(r, "live"), &pageData{Title: "Migration " + l.ID, Nav: "migrations", Me: me, Data: v})
}

// migrateLink returns the link a migrate operation runs, from its stored
// parameters (the plan names the link when the request did not), or "".
func migrateLink(op *api.Operation) string {
	if op.Type != "migrate" || len(op.Params) == 0 {
		return ""
	}
	var p api.MigrateParams
	if json.Unmarshal(op.Params, &p) != nil {
		return ""
	}
	return p.Link
}
