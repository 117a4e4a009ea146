package web

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"

	"github.com/r2m-go/r2m/api"
)

// appsView is the apps list with what the "new app" form offers.
type appsView struct {
	Apps     []api.App
	Clusters []string
}

func (c *console) appsPage(w http.ResponseWriter, r *http.Request, me *visitor) {
	var apps []api.App
	if err := c.get(r, "/api/v1/apps", &apps); err != nil {
		c.fail(w, r, me, err)
		return
	}
	slices.SortFunc(apps, func(a, b api.App) int { return cmp.Compare(a.Name, b.Name) })
	v := &appsView{Apps: apps}
	if me.CanOperate() {
		var cls []api.Cluster
		if err := c.get(r, "/api/v1/clusters", &cls); err != nil {
			c.fail(w, r, me, err)
			return
		}
		for _, cl := range cls {
			v.Clusters = append(v.Clusters, cl.Name)
		}
		slices.Sort(v.Clusters)
	}
	c.render(w, r, http.StatusOK, "apps", "", &pageData{Title: "Apps", Nav: "apps", Me: me, Data: v})
}

// appView is one app's page.
type appView struct {
	App     api.App
	Clients *clientsView
	Path    string // the app's API path
	// Fragment is set when only the client panel is rendered (a refresh);
	// it then also carries the chart, swapped in out of band.
	Fragment bool
}

func (c *console) appPage(w http.ResponseWriter, r *http.Request, me *visitor) {
	name := r.PathValue("app")
	path := "/api/v1/apps/" + url.PathEscape(name)
	var ac api.AppClients
	if err := c.get(r, path+"/clients", &ac); err != nil {
		c.fail(w, r, me, err)
		return
	}
	if block := fragmentBlock(r, "clients"); block != "" {
		// The client panel refreshes itself every few seconds.
		c.render(w, r, http.StatusOK, "app", block, &pageData{Me: me, Data: &appView{Clients: newClientsView(ac), Path: path, Fragment: true}})
		return
	}
	var a api.App
	if err := c.get(r, path, &a); err != nil {
		c.fail(w, r, me, err)
		return
	}
	c.render(w, r, http.StatusOK, "app", "", &pageData{Title: "App " + name, Nav: "apps", Me: me,
		Data: &appView{App: a, Clients: newClientsView(ac), Path: path}})
}

// consoleView is the command console of an app.
type consoleView struct {
	App  api.App
	Path string // POST target: the app's command endpoint
}

func (c *console) consolePage(w http.ResponseWriter, r *http.Request, me *visitor) {
	name := r.PathValue("app")
	var a api.App
	if err := c.get(r, "/api/v1/apps/"+url.PathEscape(name), &a); err != nil {
		c.fail(w, r, me, err)
		return
	}
	c.render(w, r, http.StatusOK, "console", "", &pageData{Title: "Console · " + name, Nav: "apps", Me: me,
		Data: &consoleView{App: a, Path: "/api/v1/apps/" + url.PathEscape(name) + "/command"}})
}
