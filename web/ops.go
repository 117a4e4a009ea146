package web

import (
	"net/http"
	"net/url"

	"github.com/r2m-go/r2m/api"
)

// opsView is the operations list.
type opsView struct {
	Ops     []api.Operation
	Cluster string // the filter, if any
}

func (c *console) opsPage(w http.ResponseWriter, r *http.Request, me *visitor) {
	cluster := r.URL.Query().Get("cluster")
	path := "/api/v1/ops"
	if cluster != "" {
		path += "?" + url.Values{"cluster": {cluster}}.Encode()
	}
	var ops []api.Operation
	if err := c.get(r, path, &ops); err != nil {
		c.fail(w, r, me, err)
		return
	}
	c.render(w, r, http.StatusOK, "ops", fragmentBlock(r, "op-rows"), &pageData{Title: "Operations", Nav: "ops", Me: me, Data: &opsView{Ops: ops, Cluster: cluster}})
}

// opView is one operation's page.
type opView struct {
	Op   api.Operation
	Path string // the operation's API path
	// Link is the sync link of a migrate operation (its migration page),
	// empty for other kinds. The operation's first step records the link:
	// until then LinkRecorded is false and the link has no page.
	Link         string
	LinkRecorded bool
	LinkState    string // empty if the link could not be read
}

// Migrate reports whether the operation is a migration, whose progress
// counts source shards caught up rather than slots.
func (v *opView) Migrate() bool { return v.Op.Type == "migrate" }

// Active reports whether the operation can still change.
func (v *opView) Active() bool { return !v.Op.Done() }

func (c *console) opPage(w http.ResponseWriter, r *http.Request, me *visitor) {
	id := r.PathValue("id")
	path := "/api/v1/ops/" + url.PathEscape(id)
	var op api.Operation
	if err := c.get(r, path, &op); err != nil {
		c.fail(w, r, me, err)
		return
	}
	v := &opView{Op: op, Path: path, Link: migrateLink(&op)}
	if v.Link != "" {
		var l api.SyncLink
		err := c.get(r, "/api/v1/syncs/"+url.PathEscape(v.Link), &l)
		v.LinkRecorded, v.LinkState = statusOf(err) != http.StatusNotFound, l.State
		if err != nil && v.LinkRecorded {
			c.log.Warn("reading a migrate operation's link", "op", op.ID, "link", v.Link, "err", err)
		}
	}
	// The live part is re-rendered whenever the operation's event stream
	// reports a change (app.js, followOp).
	c.render(w, r, http.StatusOK, "op", fragmentBlock(r, "live"), &pageData{Title: "Operation " + op.Type + " " + op.Cluster, Nav: "ops", Me: me,
		Data: v})
}
