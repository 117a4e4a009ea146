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
}

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
	// The live part is re-rendered whenever the operation's event stream
	// reports a change (app.js, followOp).
	c.render(w, r, http.StatusOK, "op", fragmentBlock(r, "live"), &pageData{Title: "Operation " + op.Type + " " + op.Cluster, Nav: "ops", Me: me,
		Data: &opView{Op: op, Path: path}})
}
