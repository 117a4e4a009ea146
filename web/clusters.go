package web

import (
	"cmp"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"

	"github.com/r2m-go/r2m/api"
)

// clusterRow is one line of the clusters list.
type clusterRow struct {
	api.Cluster
	Memory, Ops metricValue
}

func (c *console) clustersPage(w http.ResponseWriter, r *http.Request, me *visitor) {
	var list []api.Cluster
	if err := c.get(r, "/api/v1/clusters", &list); err != nil {
		c.fail(w, r, me, err)
		return
	}
	slices.SortFunc(list, func(a, b api.Cluster) int { return cmp.Compare(a.Name, b.Name) })
	m := c.metrics(r)
	rows := make([]clusterRow, 0, len(list))
	for _, cl := range list {
		q := func() url.Values { return url.Values{"cluster": {cl.Name}} }
		rows = append(rows, clusterRow{
			Cluster: cl,
			Memory:  m.latest(q(), "cluster_used_memory_bytes", "bytes"),
			Ops:     m.latest(q(), "cluster_ops_per_sec", "ops/s"),
		})
	}
	c.render(w, r, http.StatusOK, "clusters", fragmentBlock(r, "cluster-rows"), &pageData{Title: "Clusters", Nav: "clusters", Me: me, Data: rows})
}

// fragmentBlock returns the block a fragment request asks for, if it is
// the one this page offers, else "" (the whole page).
func fragmentBlock(r *http.Request, offered ...string) string {
	f := r.URL.Query().Get("fragment")
	if slices.Contains(offered, f) {
		return f
	}
	return ""
}

// nodeRow is one node of a cluster page.
type nodeRow struct {
	api.ClusterNode
	MasterAddr string
	SlotCount  int
	Memory     metricValue
	Clients    metricValue
	Lag        metricValue
}

// clusterView is the cluster detail page.
type clusterView struct {
	C        api.ClusterDetail
	Nodes    []nodeRow // each master followed by its replicas
	Masters  []nodeRow
	Replicas []nodeRow
	SlotMap  slotMap
	Ops      []api.Operation
	Charts   []chartArea
	Path     string // the cluster's API path, for the operation forms
}

func (c *console) clusterPage(w http.ResponseWriter, r *http.Request, me *visitor) {
	name := r.PathValue("name")
	var d api.ClusterDetail
	if err := c.get(r, "/api/v1/clusters/"+url.PathEscape(name), &d); err != nil {
		c.fail(w, r, me, err)
		return
	}
	var ops []api.Operation
	if err := c.get(r, "/api/v1/ops?"+url.Values{"cluster": {name}}.Encode(), &ops); err != nil {
		c.fail(w, r, me, err)
		return
	}
	if len(ops) > 8 {
		ops = ops[:8]
	}
	v := &clusterView{C: d, Ops: ops, SlotMap: buildSlotMap(d.Nodes), Path: "/api/v1/clusters/" + url.PathEscape(name)}
	v.Nodes, v.Masters, v.Replicas = c.nodeRows(r, name, d.Nodes)
	var masters []string
	for _, m := range v.Masters {
		masters = append(masters, m.Addr)
	}
	v.Charts = clusterCharts(name, masters, d.Apps)
	c.render(w, r, http.StatusOK, "cluster", fragmentBlock(r, "nodes"), &pageData{Title: "Cluster " + name, Nav: "clusters", Me: me, Data: v})
}

// nodeRows orders a cluster's nodes for display — each master (by address)
// followed by its replicas — and reads what monitoring knows of each.
func (c *console) nodeRows(r *http.Request, cluster string, nodes []api.ClusterNode) (all, masters, replicas []nodeRow) {
	m := c.metrics(r)
	addrOf := map[string]string{}
	for _, n := range nodes {
		addrOf[n.ID] = n.Addr
	}
	rows := make([]nodeRow, 0, len(nodes))
	for _, n := range nodes {
		q := func() url.Values { return url.Values{"cluster": {cluster}, "node": {n.Addr}} }
		row := nodeRow{ClusterNode: n, MasterAddr: addrOf[n.MasterID], SlotCount: countSlots(n.Slots)}
		row.Memory = m.latest(q(), "used_memory_bytes", "bytes")
		row.Clients = m.latest(q(), "connected_clients", "count")
		if n.Role != "master" {
			row.Lag = m.latest(q(), "replication_lag_seconds", "seconds")
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b nodeRow) int { return cmp.Compare(a.Addr, b.Addr) })
	for _, n := range rows {
		if n.Role == "master" {
			masters = append(masters, n)
		} else {
			replicas = append(replicas, n)
		}
	}
	placed := map[string]bool{}
	for _, mr := range masters {
		all = append(all, mr)
		for _, rp := range replicas {
			if rp.MasterID == mr.ID {
				all = append(all, rp)
				placed[rp.ID] = true
			}
		}
	}
	for _, rp := range replicas { // replicas of a master not in the topology
		if !placed[rp.ID] {
			all = append(all, rp)
		}
	}
	return all, masters, replicas
}

// checkView is the check panel of a cluster page.
type checkView struct {
	Result    api.CheckResult
	Open      []openSlot
	OpenCount int
}

// checkFragment runs the cluster's check through the API and renders the
// findings panel, which the cluster page loads after it has shown. It also
// carries the open slots for the slot map.
func (c *console) checkFragment(w http.ResponseWriter, r *http.Request, me *visitor) {
	name := r.PathValue("name")
	var res api.CheckResult
	if err := c.get(r, "/api/v1/clusters/"+url.PathEscape(name)+"/check", &res); err != nil {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK) // htmx swaps 2xx only; the panel says what failed
		fmt.Fprintf(w, `<div id="check-result" class="error-box" data-open="[]">The check could not run: %s</div>`, template.HTMLEscapeString(err.Error()))
		return
	}
	open := openSlots(res.Findings)
	c.render(w, r, http.StatusOK, "cluster", "check", &pageData{Me: me, Data: &checkView{Result: res, Open: open, OpenCount: countOpen(open)}})
}

// nodeView is one node's page.
type nodeView struct {
	Cluster string
	Node    nodeRow
	Charts  []chartArea
}

func (c *console) nodePage(w http.ResponseWriter, r *http.Request, me *visitor) {
	name, addr := r.PathValue("name"), r.PathValue("addr")
	var d api.ClusterDetail
	if err := c.get(r, "/api/v1/clusters/"+url.PathEscape(name), &d); err != nil {
		c.fail(w, r, me, err)
		return
	}
	all, _, _ := c.nodeRows(r, name, d.Nodes)
	for _, n := range all {
		if n.Addr == addr || n.ID == addr {
			c.render(w, r, http.StatusOK, "node", "", &pageData{Title: "Node " + n.Addr, Nav: "clusters", Me: me,
				Data: &nodeView{Cluster: name, Node: n, Charts: nodeCharts(name, n.Addr, n.Role != "master")}})
			return
		}
	}
	c.fail(w, r, me, &apiError{Status: http.StatusNotFound, ErrorDetail: api.ErrorDetail{Code: "not_found", Message: fmt.Sprintf("cluster %s has no node %s", name, addr)}})
}
