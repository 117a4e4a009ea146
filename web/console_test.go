package web

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/client"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/manager"
)

var screenshotDir = flag.String("screenshots", "", "also write the console's screenshots to this directory; "+
	"go test ./web/ -run TestConsole -args -screenshots $PWD/docs/screenshots refreshes the README's")

// console is the state the steps of TestConsole share: one server with
// three agents, one browser, the admin's tab and the cluster it creates.
type consoleRun struct {
	t       *testing.T // the whole run's, for cleanups that outlive a step
	p       *platform
	browser context.Context
	admin   *tab
	cluster string
	rebal   string           // the rebalance operation's ID
	migLink string           // the migration step's sync link
	tasks   []*client.Client // the leak step's clients, open until the last step
}

// TestConsole drives the console in headless Chromium through an
// operator's day, against a real server, three real agents and the Redis
// Cluster it deploys. The steps share that state and run in order; a step
// that fails stops the rest.
func TestConsole(t *testing.T) {
	p := startPlatform(t, withMonitor(t), func(c *manager.Config) {
		c.PortBase, c.PortSpan = testPortBase(), 100
		c.ClientSampleInterval = time.Second
	})
	for _, h := range []string{"host-a", "host-b", "host-c"} {
		startAgent(t, p.CoordURL, h)
	}
	ctx := ctxFor(t, 30*time.Second)
	waitUntil(t, "three live agents", 20*time.Second, func() bool {
		for _, h := range []string{"host-a", "host-b", "host-c"} {
			if _, _, err := p.Store.AgentLive(h).Get(ctx); err != nil {
				return false
			}
		}
		return true
	})
	r := &consoleRun{t: t, p: p, browser: startChrome(t), cluster: "shop"}
	r.admin = newTab(t, r.browser, p.URL)
	for _, step := range []struct {
		name string
		run  func(*testing.T, *consoleRun)
	}{
		{"Login", testLogin},
		{"CreateClusterFromForm", testCreateCluster},
		{"PlanWithoutRunStartsNothing", testPlanCancel},
		{"OpenSlotOnMapAndFix", testOpenSlotAndFix},
		{"ClientTableLiveAndLeakFlag", testClients},
		{"ClientConfigForm", testClientConfig},
		{"RebalanceLiveProgress", testRebalance},
		{"CommandConsole", testCommandConsole},
		{"ViewerSeesNoControlsAndIsRefused", testViewer},
		{"MigrationLiveProgress", testMigration},
		{"Screenshots", testScreenshots},
		{"LeakedClientsClosed", testLeakedClientsClosed},
	} {
		if !t.Run(step.name, func(t *testing.T) {
			// Each step reports through its own t.
			r.admin.t = t
			step.run(t, r)
		}) {
			t.Fatalf("step %s failed; the later steps depend on it", step.name)
		}
	}
}

func testLogin(t *testing.T, r *consoleRun) {
	a := r.admin
	a.do(chromedp.Navigate(r.p.URL + "/clusters"))
	a.wait("the login page", `document.querySelector("#login-form") !== null && document.body.dataset.ready === "true"`, 20*time.Second)
	if loc := a.location(); !strings.HasSuffix(loc, "/login?next=%2Fclusters") {
		t.Fatalf("a visitor without a session went to %s, want the login page with next=/clusters", loc)
	}
	// A wrong password is refused with the API's message.
	a.do(chromedp.SendKeys(chromedp.CSS("#login-user"), "admin"), chromedp.SendKeys(chromedp.CSS("#login-password"), "not the password"),
		chromedp.Click(chromedp.CSS("#login-form button")))
	a.wait("the login error", `(document.querySelector("#login-form .form-error:not([hidden])") || {}).textContent === "wrong user name or password"`, 10*time.Second)
	a.set("#login-password", "")
	a.do(chromedp.SendKeys(chromedp.CSS("#login-password"), r.p.Password), chromedp.Click(chromedp.CSS("#login-form button")))
	a.wait("the clusters page as admin", `location.pathname === "/clusters" && document.body.dataset.ready === "true" &&
		(document.querySelector("#me-role") || {}).textContent === "admin"`, 20*time.Second)
	a.noErrors()
}

func testCreateCluster(t *testing.T, r *consoleRun) {
	a, ctx := r.admin, ctxFor(t, time.Minute)
	a.open("/clusters")
	a.set(`#create-cluster input[name="name"]`, r.cluster)
	a.set(`#create-cluster input[name="masters"]`, "3")
	a.set(`#create-cluster input[name="replicas"]`, "1")
	a.set(`#create-cluster input[name="maxmemory"]`, "64mb")
	a.click(`#create-cluster button[type="submit"]`)
	a.wait("the create plan", `document.querySelector("#plan-dialog").open && document.querySelector("#plan-text").textContent.length > 0`, 20*time.Second)
	plan := a.text("#plan-text")
	for _, h := range []string{"host-a", "host-b", "host-c"} {
		if !strings.Contains(plan, h) {
			t.Fatalf("the create plan does not place anything on %s:\n%s", h, plan)
		}
	}
	snapshot(t, a, "create-plan")
	// The plan changed nothing.
	if _, err := r.p.Admin.Cluster(ctx, r.cluster); !api.IsStatus(err, 404) {
		t.Fatalf("after the dry run, cluster %s: %v; want 404 (nothing created yet)", r.cluster, err)
	}
	a.click("#plan-run")
	a.wait("the operation page", `location.pathname.startsWith("/ops/") && document.body.dataset.ready === "true"`, 20*time.Second)
	a.eval(`window.__stay = true`, nil) // a reload would lose it
	a.wait("the create operation to succeed, shown live", `(document.querySelector("#op-live") || {dataset: {}}).dataset.state === "succeeded"`, 3*time.Minute)
	a.wait("the check after the create", `(document.querySelector("#op-check") || {dataset: {}}).dataset.clean === "true"`, 10*time.Second)
	var stayed bool
	a.eval(`window.__stay === true`, &stayed)
	if !stayed {
		t.Fatal("the operation page reloaded to show the result; it must update live")
	}
	a.open("/clusters")
	a.wait("the new cluster to be healthy in the list", fmt.Sprintf(
		`(document.querySelector('tr[data-cluster=%q] [data-health]') || {dataset: {}}).dataset.health === "ok"`, r.cluster), 30*time.Second)
	a.open("/clusters/" + r.cluster)
	if n := a.count("#nodes tr[data-node]"); n != 6 {
		t.Fatalf("the cluster page lists %d nodes, want 6 (3 masters, 3 replicas)", n)
	}
	if n := a.count("#slotmap-legend li a"); n != 3 {
		t.Fatalf("the slot map legend has %d masters, want 3", n)
	}
	a.wait("a clean check", `(document.querySelector("#check-result") || {dataset: {}}).dataset.clean === "true"`, 20*time.Second)
	// The monitor measures the new cluster: its nodes' memory and clients,
	// and the charts, come from the history.
	a.waitReloading("measured memory and charts", "/clusters/"+r.cluster, `[...document.querySelectorAll("#nodes tr[data-node] td.mem")].every(td => /\d( |\.\d )[KMG]?i?B$/.test(td.textContent.trim())) &&
		document.querySelectorAll("#nodes tr[data-node] td.mem").length === 6 &&
		document.querySelector('figure[data-title="Memory"] .chart canvas') !== null &&
		document.querySelector('figure[data-title="Connected clients"] .chart canvas') !== null`, 30*time.Second)
	a.noErrors()
}

// testPlanCancel shows a plan and closes it: nothing may start.
func testPlanCancel(t *testing.T, r *consoleRun) {
	a, ctx := r.admin, ctxFor(t, time.Minute)
	before, err := r.p.Admin.Ops(ctx, r.cluster)
	if err != nil {
		t.Fatal(err)
	}
	a.open("/clusters/" + r.cluster)
	a.click(`button[data-open="dlg-reshard"]`)
	a.set(`#dlg-reshard input[name="slots"]`, "10")
	a.eval(`(() => { const s = document.querySelectorAll('#dlg-reshard select'); s[1].selectedIndex = 1; })()`, nil)
	a.click(`#dlg-reshard button[type="submit"]`)
	a.wait("the reshard plan", `document.querySelector("#plan-dialog").open && document.querySelector("#plan-text").textContent.includes("move 10 slots")`, 20*time.Second)
	a.click(`#plan-dialog button[data-close]`)
	a.wait("the plan to close", `!document.querySelector("#plan-dialog").open`, 5*time.Second)

	// Every other mutating button opens its plan first, too.
	for _, tc := range []struct{ dialog, fill string }{
		{"dlg-scale", `document.querySelector('#dlg-scale input[name="masters"]').value = "4"`},
		{"dlg-rebalance", `document.querySelector('#dlg-rebalance input[name="threshold_pct"]').value = "1"`},
		{"dlg-failover", `document.querySelector('#dlg-failover select[name="master"]').selectedIndex = 1`},
		{"dlg-remove-node", `document.querySelector('#dlg-remove-node select[name="node"]').selectedIndex = 0`},
		{"dlg-fix", ``},
	} {
		a.open("/clusters/" + r.cluster)
		a.click(fmt.Sprintf(`button[data-open=%q]`, tc.dialog))
		if tc.fill != "" {
			a.eval(tc.fill, nil)
		}
		a.click(fmt.Sprintf(`#%s button[type="submit"]`, tc.dialog))
		a.wait("the plan of "+tc.dialog, `document.querySelector("#plan-dialog").open && document.querySelector("#plan-text").textContent.trim().length > 0`, 20*time.Second)
		t.Logf("%s plan:\n%s", tc.dialog, a.text("#plan-text"))
		a.click(`#plan-dialog button[data-close]`)
		a.wait("the plan to close", `!document.querySelector("#plan-dialog").open`, 5*time.Second)
	}
	// A node that is not there is refused with the server's reason, in the
	// dialog.
	a.open("/clusters/" + r.cluster)
	a.click(`button[data-open="dlg-add-node"]`)
	a.set(`#dlg-add-node input[name="addr"]`, "127.0.0.1:1")
	a.click(`#dlg-add-node button[type="submit"]`)
	a.wait("the add-node error", `!document.querySelector("#dlg-add-node .form-error").hidden &&
		document.querySelector("#dlg-add-node .form-error").textContent.includes("127.0.0.1:1")`, 20*time.Second)
	t.Logf("add-node of a missing node: %s", a.text("#dlg-add-node .form-error"))
	a.click(`#dlg-add-node button[data-close]`)

	// Nothing ran. The dry runs are answered synchronously, so any
	// operation they had started would be listed by now.
	after, err := r.p.Admin.Ops(ctx, r.cluster)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("closing the plan started an operation: %d operations before, %d after", len(before), len(after))
	}
}

// mastersOf returns a cluster's masters by address.
func mastersOf(t *testing.T, r *consoleRun) []api.ClusterNode {
	t.Helper()
	d, err := r.p.Admin.Cluster(ctxFor(t, 20*time.Second), r.cluster)
	if err != nil {
		t.Fatal(err)
	}
	var ms []api.ClusterNode
	for _, n := range d.Nodes {
		if n.Role == "master" {
			ms = append(ms, n)
		}
	}
	slices.SortFunc(ms, func(a, b api.ClusterNode) int { return cmp.Compare(a.Addr, b.Addr) })
	return ms
}

func owns(n api.ClusterNode, slot int) bool {
	for _, r := range n.Slots {
		if s, e, ok := parseRange(r); ok && slot >= s && slot <= e {
			return true
		}
	}
	return false
}

func (r *consoleRun) password(t *testing.T) string {
	t.Helper()
	cred, err := r.p.Admin.Credentials(ctxFor(t, 20*time.Second), r.cluster)
	if err != nil {
		t.Fatal(err)
	}
	return cred.Password
}

// testOpenSlotAndFix leaves a slot half-open the way a crashed move does,
// sees it on the slot map and in the check, and closes it with Fix.
func testOpenSlotAndFix(t *testing.T, r *consoleRun) {
	a, ctx := r.admin, ctxFor(t, 2*time.Minute)
	const slot = 100
	ms := mastersOf(t, r)
	var owner, other api.ClusterNode
	for _, m := range ms {
		if owns(m, slot) {
			owner = m
		} else if other.ID == "" {
			other = m
		}
	}
	if owner.ID == "" || other.ID == "" {
		t.Fatalf("no owner of slot %d and another master among %+v", slot, ms)
	}
	rdb := redis.NewClient(&redis.Options{Addr: other.Addr, Password: r.password(t)})
	defer rdb.Close()
	if err := rdb.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", owner.ID).Err(); err != nil {
		t.Fatalf("open slot %d on %s: %v", slot, other.Addr, err)
	}
	a.open("/clusters/" + r.cluster)
	a.wait("the check to report the open slot", `(document.querySelector("#check-result") || {dataset: {}}).dataset.openCount === "1"`, 20*time.Second)
	if v := a.text("#check-verdict"); !strings.Contains(v, "1 open slot") {
		t.Fatalf("check verdict %q, want it to name the open slot", v)
	}
	// The map paints the open slot red and the others in their owner's colour.
	pixel := func(s int) []int {
		var rgb []int
		a.eval(fmt.Sprintf(`(() => { const cv = document.querySelector("#slotmap"); const d = cv.getContext("2d").getImageData((%d %% 512) * 4 + 2, Math.floor(%d / 512) * 8 + 4, 1, 1).data; return [d[0], d[1], d[2]]; })()`, s, s), &rgb)
		return rgb
	}
	if got := pixel(slot); !slices.Equal(got, []int{0xe0, 0x24, 0x24}) {
		t.Fatalf("slot %d on the map is rgb%v, want the open-slot red", slot, got)
	}
	if got := pixel(slot + 2000); slices.Equal(got, []int{0xe0, 0x24, 0x24}) || slices.Equal(got, []int{0xd9, 0xdd, 0xe3}) {
		t.Fatalf("slot %d on the map is rgb%v, want its owner's colour", slot+2000, got)
	}
	if !strings.Contains(a.text("#open-count"), "1 slot") {
		t.Fatalf("legend says %q about open slots", a.text("#open-count"))
	}
	// Fix: plan first, then run.
	a.click(`button[data-open="dlg-fix"]`)
	a.click(`#dlg-fix button[type="submit"]`)
	a.wait("the fix plan", `document.querySelector("#plan-dialog").open && document.querySelector("#plan-text").textContent.includes("fix will address")`, 20*time.Second)
	a.click("#plan-run")
	a.wait("the fix operation page", `location.pathname.startsWith("/ops/") && document.body.dataset.ready === "true"`, 20*time.Second)
	a.wait("the fix to succeed with a clean check", `(document.querySelector("#op-live") || {dataset: {}}).dataset.state === "succeeded" &&
		(document.querySelector("#op-check") || {dataset: {}}).dataset.clean === "true"`, 2*time.Minute)
	a.open("/clusters/" + r.cluster)
	a.wait("a clean check without open slots", `(document.querySelector("#check-result") || {dataset: {}}).dataset.clean === "true" &&
		document.querySelector("#check-result").dataset.openCount === "0"`, 20*time.Second)
	a.noErrors()
}

// testClients opens and closes real R2M Go clients in this test process
// and watches the table follow them; then it reproduces the incident, one
// process holding 20 clients of the app, and looks for the leak flag.
func testClients(t *testing.T, r *consoleRun) {
	a, ctx := r.admin, ctxFor(t, 2*time.Minute)
	st := r.p.Store
	app := r.cluster // the create bound an app of the cluster's name
	open := func(name string) *client.Client {
		t.Helper()
		c, err := client.New(ctx, client.Options{Coordinator: r.p.CoordURL, App: app, Name: name, Logger: r.p.Logger})
		if err != nil {
			t.Fatalf("client.New for app %s: %v", app, err)
		}
		// Closes what a failing step left open; Close again is a no-op.
		r.t.Cleanup(func() { _ = c.Close() })
		return c
	}
	closeAll := func(cs ...*client.Client) {
		t.Helper()
		for _, c := range cs {
			if err := c.Close(); err != nil {
				t.Fatalf("Close of client %s: %v", c.ID(), err)
			}
		}
	}
	a.open("/apps/" + app)
	if n := a.text("#client-count"); n != "0 live" {
		t.Fatalf("client count %q before any client opened", n)
	}

	t0 := time.Now()
	var web []*client.Client
	for range 3 {
		web = append(web, open("storefront"))
	}
	a.wait("three clients to appear", `document.querySelector("#client-count").dataset.count === "3" && document.querySelectorAll("tr.client").length === 3`, 10*time.Second)
	if d := time.Since(t0); d > 6*time.Second {
		t.Fatalf("the clients took %v to appear; want a few seconds", d)
	}
	rec, _, err := st.Client(app, web[0].ID()).Get(ctx)
	if err != nil {
		t.Fatalf("registration of client %s: %v", web[0].ID(), err)
	}
	if s := a.text(fmt.Sprintf(`tr.site[data-site=%q]`, rec.CreationSite)); !strings.Contains(s, "3 clients") {
		t.Fatalf("site group row for %s: %q", rec.CreationSite, s)
	}

	t0 = time.Now()
	closeAll(web[0], web[1])
	a.wait("two clients to disappear", fmt.Sprintf(`document.querySelector("#client-count").dataset.count === "1" &&
		document.querySelector('tr[data-client=%q]') === null && document.querySelector('tr[data-client=%q]') !== null`, web[0].ID(), web[2].ID()), 10*time.Second)
	if d := time.Since(t0); d > 6*time.Second {
		t.Fatalf("the closed clients took %v to disappear; want a few seconds", d)
	}
	if a.count("#client-flags") != 0 {
		t.Fatalf("flags with one healthy client: %s", a.text("#client-flags"))
	}
	closeAll(web[2])
	a.wait("the last client to disappear", `document.querySelector("#client-count").dataset.count === "0"`, 10*time.Second)

	// The incident: one process creating a client per task and never
	// closing them. All 20 come from the one line below.
	var tasks []*client.Client
	for range 20 {
		tasks = append(tasks, open("export-task"))
	}
	rec, _, err = st.Client(app, tasks[0].ID()).Get(ctx)
	if err != nil {
		t.Fatalf("registration of client %s: %v", tasks[0].ID(), err)
	}
	flag := fmt.Sprintf("pid %d on %s holds 20 clients of %q", os.Getpid(), rec.Host, app)
	a.wait("the leak flag", fmt.Sprintf(`[...document.querySelectorAll('#client-flags li[data-flag="leak"]')].some(li =>
		li.textContent.includes(%q) && li.textContent.includes(%q))`, flag, rec.CreationSite), 10*time.Second)
	if n := a.count("tr.client.flagged"); n != 20 {
		t.Fatalf("%d client rows are flagged, want the 20 of pid %d", n, os.Getpid())
	}
	if n := a.count(fmt.Sprintf(`tr.client.flagged .flag-badge[title*=%q]`, rec.CreationSite)); n != 20 {
		t.Fatalf("%d flagged rows explain their flag (badge title naming the site), want 20", n)
	}
	if s := a.text(fmt.Sprintf(`tr.proc[data-pid="%d"]`, os.Getpid())); !strings.Contains(s, "20 clients") {
		t.Fatalf("process group row %q", s)
	}
	// They stay open for the screenshots; the last step closes them.
	r.tasks = tasks
	a.noErrors()
}

// testLeakedClientsClosed closes the 20 clients of the leak step: the table
// empties, the flag goes, and no registration is left.
func testLeakedClientsClosed(t *testing.T, r *consoleRun) {
	a, ctx := r.admin, ctxFor(t, time.Minute)
	app := r.cluster
	a.open("/apps/" + app)
	// The clients lived through a config change (an early heartbeat, a
	// short window): healthy clients are never called zombies.
	if n := a.count(`#client-flags li[data-flag^="zombie"]`); n != 0 {
		t.Fatalf("%d zombie flags on live, healthy clients: %s", n, a.text("#client-flags"))
	}
	alerts, err := r.p.Admin.Alerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, al := range alerts {
		if al.Rule == "zombie_client" {
			t.Fatalf("the monitor calls a live, healthy client a zombie: %+v", al)
		}
	}
	for _, c := range r.tasks {
		if err := c.Close(); err != nil {
			t.Fatalf("Close of client %s: %v", c.ID(), err)
		}
	}
	a.wait("the closed clients to disappear with their flag", `document.querySelector("#client-count").dataset.count === "0" &&
		document.querySelectorAll('#client-flags li[data-flag="leak"]').length === 0`, 15*time.Second)
	if ids, err := r.p.Store.Clients(app).Names(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("after every Close the app's clients are %v, %v; want none", ids, err)
	}
	a.noErrors()
}

// chartsSettled holds once every chart area has asked the series API and
// drawn a chart or said that there is no data.
const chartsSettled = `document.querySelectorAll(".chart[data-series]").length > 0 &&
	[...document.querySelectorAll(".chart[data-series]")].every(e => e.querySelector("canvas") || e.textContent.includes("no data yet"))`

// progressRe reads "12 of 3000 (0%)".
var progressRe = regexp.MustCompile(`^(\d+) of (\d+)`)

// testRebalance makes the cluster lopsided through the API, then
// rebalances it from the console and follows the progress live, pausing
// and resuming it on the way.
func testRebalance(t *testing.T, r *consoleRun) {
	a, ctx := r.admin, ctxFor(t, 4*time.Minute)
	var addrs []string
	d, err := r.p.Admin.Cluster(ctx, r.cluster)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range d.Nodes {
		addrs = append(addrs, n.Addr)
	}
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Password: r.password(t)})
	defer rdb.Close()
	for i := range 6000 {
		if err := rdb.Set(ctx, "item:"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	ms := mastersOf(t, r)
	op, _, err := r.p.Admin.StartOp(ctx, r.cluster, "reshard", api.ReshardParams{From: ms[0].Addr, To: ms[1].Addr, Slots: 3000}, false)
	if err != nil {
		t.Fatal(err)
	}
	if o := waitOp(t, r.p.Admin, op.ID); o.State != "succeeded" {
		t.Fatalf("the reshard that makes the cluster lopsided: %+v", o)
	}

	a.open("/clusters/" + r.cluster)
	a.click(`button[data-open="dlg-rebalance"]`)
	a.set(`#dlg-rebalance input[name="throttle"]`, "200")
	a.click(`#dlg-rebalance button[type="submit"]`)
	a.wait("the rebalance plan", `document.querySelector("#plan-dialog").open && /move \d+ slots?/.test(document.querySelector("#plan-text").textContent)`, 20*time.Second)
	a.click("#plan-run")
	a.wait("the rebalance operation page", `location.pathname.startsWith("/ops/") && document.body.dataset.ready === "true"`, 20*time.Second)
	var path string
	a.eval(`location.pathname`, &path)
	r.rebal = strings.TrimPrefix(path, "/ops/")
	// Record every state the page shows, and mark the page so that a
	// reload would show.
	a.eval(`(() => {
		window.__stay = true;
		window.__seen = [];
		const note = () => {
			const l = document.querySelector("#op-live"), s = document.querySelector("#op-slots");
			if (l) { window.__seen.push(l.dataset.state + "|" + (s ? s.textContent.trim() : "")); }
		};
		note();
		new MutationObserver(note).observe(document.body, {subtree: true, childList: true});
	})()`, nil)
	a.wait("keys to start moving", `document.querySelector("#op-live").dataset.state === "running" && /^[1-9]\d* of/.test(document.querySelector("#op-slots").textContent.trim())`, time.Minute)
	a.click(`#op-controls button[data-path$="/pause"]`)
	a.wait("the pause to show", `document.querySelector("#op-live").dataset.state === "paused" && document.querySelector('#op-controls button[data-path$="/resume"]') !== null`, 20*time.Second)
	snapshot(t, a, "operation-paused")
	a.click(`#op-controls button[data-path$="/resume"]`)
	a.wait("the resume to show", `document.querySelector("#op-live").dataset.state !== "paused"`, 20*time.Second)
	// Lift the throttle from the page; the rest goes at full speed.
	if a.count(`#op-controls input[name="keys_per_sec"]`) == 1 {
		a.set(`#op-controls input[name="keys_per_sec"]`, "0")
		a.click(`#op-controls form button[type="submit"]`)
	}
	a.wait("the rebalance to reach done", `document.querySelector("#op-live").dataset.state === "succeeded"`, 3*time.Minute)
	a.wait("the check after the rebalance", `document.querySelector("#op-check").dataset.clean === "true"`, 10*time.Second)
	if s := a.text("#op-check"); !strings.Contains(s, "Clean") {
		t.Fatalf("check panel says %q", s)
	}
	var stayed bool
	var seen []string
	a.eval(`window.__stay === true`, &stayed)
	a.eval(`window.__seen`, &seen)
	if !stayed {
		t.Fatal("the operation page reloaded; progress must arrive live")
	}
	var partial, paused bool
	for _, s := range seen {
		state, slots, _ := strings.Cut(s, "|")
		if m := progressRe.FindStringSubmatch(slots); m != nil && state == "running" {
			done, _ := strconv.Atoi(m[1])
			total, _ := strconv.Atoi(m[2])
			partial = partial || (done > 0 && done < total)
		}
		paused = paused || state == "paused"
	}
	if !partial || !paused {
		t.Fatalf("the page showed %d states; want a running one part-way and a paused one: %q", len(seen), seen)
	}
	final, err := r.p.Admin.Op(ctx, r.rebal)
	if err != nil || final.State != "succeeded" || final.Progress.SlotsDone != final.Progress.SlotsTotal || final.Progress.SlotsTotal == 0 {
		t.Fatalf("the rebalance as the API reports it: %+v, %v", final, err)
	}
	for i := range 6000 {
		if v, err := rdb.Get(ctx, "item:"+strconv.Itoa(i)).Int(); err != nil || v != i {
			t.Fatalf("key item:%d after the rebalance = %d, %v", i, v, err)
		}
	}
	a.noErrors()
}

// cli sends one command through the console page and returns the printed
// result and its kind (ok, refused, error, confirm).
func cli(t *testing.T, tb *tab, command string) (string, string) {
	t.Helper()
	var before int
	tb.eval(`document.querySelectorAll(".cli-entry").length`, &before)
	tb.set("#cli-input", command)
	tb.click(`#cli-form button[type="submit"]`)
	tb.wait("the reply to "+command, fmt.Sprintf(`document.querySelectorAll(".cli-entry").length === %d &&
		!document.querySelector(".cli-entry:last-child .cli-res").classList.contains("pending")`, before+1), 20*time.Second)
	var out struct{ Text, Kind string }
	tb.eval(`(() => { const p = document.querySelector(".cli-entry:last-child .cli-res");
		return {text: p.textContent, kind: [...p.classList].filter(c => c !== "cli-res")[0] || ""}; })()`, &out)
	return out.Text, out.Kind
}

func testCommandConsole(t *testing.T, r *consoleRun) {
	a := r.admin
	a.open("/apps/" + r.cluster + "/console")
	if out, kind := cli(t, a, `SET web:greeting "hello console"`); out != "OK" || kind != "ok" {
		t.Fatalf("SET printed %q (%s), want OK", out, kind)
	}
	if out, kind := cli(t, a, `GET web:greeting`); out != `"hello console"` || kind != "ok" {
		t.Fatalf("GET printed %q (%s), want the value quoted as redis-cli prints it", out, kind)
	}
	if out, _ := cli(t, a, `GET web:missing`); out != "(nil)" {
		t.Fatalf("GET of a missing key printed %q, want (nil)", out)
	}
	// A dangerous command asks first, and runs once confirmed.
	out, kind := cli(t, a, "SLOWLOG RESET")
	if kind != "confirm" || !strings.Contains(out, "confirm") {
		t.Fatalf("SLOWLOG RESET printed %q (%s), want a request to confirm", out, kind)
	}
	a.wait("the confirmation bar", `!document.querySelector("#cli-confirm").hidden`, 5*time.Second)
	var before int
	a.eval(`document.querySelectorAll(".cli-entry").length`, &before)
	a.click("#cli-confirm-run")
	a.wait("the confirmed command's reply", fmt.Sprintf(`document.querySelectorAll(".cli-entry").length === %d &&
		document.querySelector(".cli-entry:last-child .cli-res").textContent === "OK"`, before+1), 20*time.Second)
	a.noErrors()
}

func testViewer(t *testing.T, r *consoleRun) {
	ctx := ctxFor(t, time.Minute)
	// The admin creates the viewer on the users page.
	a := r.admin
	a.open("/users")
	a.set(`#new-user input[name="name"]`, "vera")
	a.set(`#new-user select[name="role"]`, "viewer")
	a.set(`#new-user input[name="password"]`, "a viewer's password")
	a.click(`#new-user button[type="submit"]`)
	a.wait("vera in the users table", `document.body.dataset.ready === "true" &&
		(document.querySelector('tr[data-user="vera"] select.role-select') || {}).value === "viewer"`, 20*time.Second)
	if u, err := r.p.Admin.Users(ctx); err != nil || !slices.ContainsFunc(u, func(u api.User) bool { return u.Name == "vera" && u.Role == "viewer" }) {
		t.Fatalf("users after the form: %+v, %v", u, err)
	}
	v := newTab(t, r.browser, r.p.URL)
	v.login("vera", "a viewer's password")
	if role := v.text("#me-role"); role != "viewer" {
		t.Fatalf("vera's role shows as %q", role)
	}

	pages := []string{"/clusters", "/clusters/" + r.cluster, "/clusters/" + r.cluster + "/nodes/" + mastersOf(t, r)[0].Addr,
		"/apps", "/apps/" + r.cluster, "/apps/" + r.cluster + "/console", "/ops", "/ops/" + r.rebal}
	for _, p := range pages {
		v.open(p)
		if n := v.count("[data-mutating]"); n != 0 {
			t.Errorf("the viewer sees %d mutating controls on %s", n, p)
		}
		if n := v.count("#plan-dialog, #cluster-actions, form.op-form, form.api-form, #op-controls"); n != 0 {
			t.Errorf("the viewer sees %d operation forms or toolbars on %s", n, p)
		}
	}
	// The same pages give an admin the controls the viewer misses: the
	// marker is real.
	for _, p := range []string{"/clusters", "/clusters/" + r.cluster, "/apps", "/apps/" + r.cluster} {
		r.admin.open(p)
		if n := r.admin.count("[data-mutating]"); n == 0 {
			t.Errorf("the admin sees no mutating controls on %s", p)
		}
	}
	// Users are for admins: the API's refusal is the page.
	v.open("/users")
	if msg := v.text("#error-message"); !strings.Contains(msg, "admin role required") {
		t.Fatalf("the viewer's users page says %q, want the API's refusal", msg)
	}

	// Read-only commands work; FLUSHALL is refused and audited.
	v.open("/apps/" + r.cluster + "/console")
	if out, _ := cli(t, v, "GET web:greeting"); out != `"hello console"` {
		t.Fatalf("the viewer's GET printed %q", out)
	}
	out, kind := cli(t, v, "FLUSHALL")
	if kind != "refused" || !strings.HasPrefix(out, "(refused)") || !strings.Contains(out, "only admins") {
		t.Fatalf("the viewer's FLUSHALL printed %q (%s), want the refusal", out, kind)
	}
	if out, kind := cli(t, v, "SET web:greeting overwritten"); kind != "refused" || !strings.Contains(out, "read-only") {
		t.Fatalf("the viewer's SET printed %q (%s), want a refusal", out, kind)
	}
	entries, err := r.p.Admin.Audit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(entries, func(e api.AuditEntry) bool {
		return e.User == "vera" && e.Action == "COMMAND FLUSHALL" && e.Status == 403 && e.Target == r.cluster
	}) {
		t.Fatalf("the viewer's refused FLUSHALL is not in the audit log (%d entries)", len(entries))
	}
	if v, err := r.p.Admin.Command(ctx, r.cluster, "GET web:greeting", false); err != nil || v.Output != "\"hello console\"\n" {
		t.Fatalf("after the viewer's attempts the key reads %+v, %v", v, err)
	}

	// Forged requests from the viewer's session: the role decides, with
	// or without the CSRF token.
	v.open("/clusters/" + r.cluster)
	for _, f := range []struct {
		method, path, body string
		csrf               bool
	}{
		{"POST", "/api/v1/clusters/" + r.cluster + "/rebalance", `{}`, true},
		{"POST", "/api/v1/clusters/" + r.cluster + "/rebalance", `{"dry_run": true}`, false},
		{"PUT", "/api/v1/apps/" + r.cluster + "/config", `{"pool_size": 1}`, true},
		{"POST", "/api/v1/clusters", `{"name": "evil", "masters": 1, "replicas": 0}`, true},
		{"POST", "/api/v1/users", `{"name": "mallory", "role": "admin", "password": "0123456789ab"}`, true},
	} {
		res := v.fetch(f.method, f.path, f.body, f.csrf)
		if res.Status != 403 || !strings.Contains(res.Message, "role required") {
			t.Errorf("viewer's forged %s %s (csrf %v): %+v, want 403 for the role", f.method, f.path, f.csrf, res)
		}
	}
	// The admin's own session without the token is refused too: CSRF is
	// checked, not only the role.
	r.admin.open("/clusters/" + r.cluster)
	if res := r.admin.fetch("POST", "/api/v1/clusters/"+r.cluster+"/fix", `{"dry_run": true}`, false); res.Status != 403 || !strings.Contains(res.Message, "X-CSRF-Token") {
		t.Errorf("admin's request without the CSRF token: %+v, want 403 naming X-CSRF-Token", res)
	}
	if res := r.admin.fetch("POST", "/api/v1/clusters/"+r.cluster+"/fix", `{"dry_run": true}`, true); res.Status != 200 {
		t.Errorf("admin's dry run with the token: %+v, want 200", res)
	}
	if d, err := r.p.Admin.Cluster(ctx, r.cluster); err != nil || d.Op != "" {
		t.Fatalf("a forged request started something: %+v, %v", d, err)
	}
	if _, err := r.p.Admin.Cluster(ctx, "evil"); !api.IsStatus(err, 404) {
		t.Fatalf("the viewer's forged create: %v", err)
	}
	v.noErrors()

	// Logging out ends the session: the pages send vera to the login.
	v.click("#logout")
	v.wait("the login page after logout", `location.pathname === "/login" && document.body.dataset.ready === "true"`, 20*time.Second)
	v.do(chromedp.Navigate(r.p.URL + "/apps"))
	v.wait("the login page", `location.pathname === "/login"`, 20*time.Second)
}

// testMigration migrates a standalone Redis into the cluster with a migrate
// operation (started through the API, as `r2m migrate` does) and follows it
// in the console: from the operation's page to the link's, which must show,
// without a reload, the one source shard streaming with every key the
// snapshot copied and no lag, and again no lag after later writes have
// reached the cluster. The operation is then cancelled from its page, a
// viewer reads both migration pages without a control, and a second,
// finished link is deleted from its page.
func testMigration(t *testing.T, r *consoleRun) {
	a, ctx := r.admin, ctxFor(t, time.Minute)
	src := testenv.StartRedis(t, testenv.RedisOptions{})
	sc := src.Client(t)
	const keys = 300
	for i := range keys {
		if err := sc.Set(ctx, "mig:"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	r.migLink = "console-mig"
	op, _, err := r.p.Admin.StartOp(ctx, r.cluster, "migrate", api.MigrateParams{From: "redis://" + src.Addr, Link: r.migLink, Until: "cancel"}, false)
	if err != nil {
		t.Fatal(err)
	}
	a.open("/ops/" + op.ID)
	a.wait("the operation page to link its migration", `(document.querySelector("#op-migration") || {}).textContent === "console-mig"`, 10*time.Second)
	a.click("#op-migration")
	a.wait("the migration page", `location.pathname === "/migrations/console-mig" && document.body.dataset.ready === "true"`, 10*time.Second)
	a.eval(`window.__stay = true`, nil) // a reload would lose it
	streaming := fmt.Sprintf(`(() => { const rows = [...document.querySelectorAll("#mig-shards tr.shard")];
		return rows.length === 1 && rows.every(r => r.dataset.phase === "stream" && r.dataset.rdbKeys === "%d" && r.dataset.lagBytes === "0"); })()`, keys)
	a.wait("the shard to stream with every key copied and no lag", streaming, 15*time.Second)
	if s := a.text("#mig-state"); s != "streaming" {
		t.Fatalf("the link's state shows %q, want streaming", s)
	}

	// Writes made while it streams reach the cluster; then the page
	// shows a record taken after they did, still without lag.
	for i := range 50 {
		if err := sc.Set(ctx, "mig:late:"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	d, err := r.p.Admin.Cluster(ctx, r.cluster)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, n := range d.Nodes {
		addrs = append(addrs, n.Addr)
	}
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Password: r.password(t)})
	defer rdb.Close()
	waitUntil(t, "the late writes to reach the cluster", 10*time.Second, func() bool {
		v, err := rdb.Get(ctx, "mig:late:49").Result()
		return err == nil && v == "49"
	})
	arrived := time.Now().UnixMilli()
	a.wait("a shard record after the late writes, without lag", fmt.Sprintf(`(() => { const r = document.querySelector("#mig-shards tr.shard");
		return r !== null && Number(r.dataset.updated) > %d && r.dataset.phase === "stream" && r.dataset.lagBytes === "0"; })()`, arrived), 10*time.Second)
	var stayed bool
	a.eval(`window.__stay === true`, &stayed)
	if !stayed {
		t.Fatal("the migration page reloaded; the shards must update live")
	}
	for i := range keys {
		if v, err := rdb.Get(ctx, "mig:"+strconv.Itoa(i)).Int(); err != nil || v != i {
			t.Fatalf("key mig:%d on the cluster = %d, %v", i, v, err)
		}
	}
	snapshot(t, a, "migration-streaming")

	a.open("/migrations")
	row := `#migrations tr[data-link="console-mig"]`
	if n := a.count(row); n != 1 {
		t.Fatalf("the migrations list has %d rows for the link", n)
	}
	if s := a.text(row); !strings.Contains(s, src.Addr) || !strings.Contains(s, r.cluster) || !strings.Contains(s, "streaming") ||
		!strings.Contains(s, "at-least-once") || !strings.Contains(s, op.ID) {
		t.Fatalf("the migrations list row says %q", s)
	}

	// The operation is the control: cancel it from its page.
	a.open("/migrations/" + r.migLink)
	a.click("#mig-op")
	a.wait("the operation page", fmt.Sprintf(`location.pathname === "/ops/%s" && document.body.dataset.ready === "true"`, op.ID), 10*time.Second)
	a.wait("the operation to count its one shard caught up", `document.querySelector("#op-slots").textContent.trim() === "1 of 1 (100%)" &&
		document.querySelector("#op-keys").textContent.startsWith("300")`, 10*time.Second)
	snapshot(t, a, "operation-migrate")
	a.click(`#op-controls button[data-path$="/cancel"]`)
	a.click(`#op-controls button[data-path$="/cancel"]`)
	a.wait("the cancel to end the operation", `document.querySelector("#op-live").dataset.state === "cancelled"`, 20*time.Second)
	a.open("/migrations/" + r.migLink)
	a.wait("the link to stop refreshing", `document.querySelector("#mig-live").dataset.live === "false"`, 10*time.Second)
	t.Logf("after the cancel the link is %s: %s", a.text("#mig-state"), a.text("#mig-error"))
	a.noErrors()

	// A viewer reads the migration pages and gets no control.
	v := newTab(t, r.browser, r.p.URL)
	v.login("vera", "a viewer's password")
	for _, p := range []string{"/migrations", "/migrations/" + r.migLink, "/ops/" + op.ID} {
		v.open(p)
		if n := v.count("[data-mutating], #op-controls, form"); n != 0 {
			t.Errorf("the viewer sees %d controls on %s", n, p)
		}
	}
	v.open("/migrations/" + r.migLink)
	if n := v.count(`#mig-shards tr.shard[data-rdb-keys="300"]`); n != 1 {
		t.Errorf("the viewer sees %d shards with the copied keys on the link's page, want 1", n)
	}
	v.noErrors()

	// A finished link is deleted from its page (the first link stays for
	// the screenshots, so a second one is made): two clicks, then the list
	// without it.
	op2, _, err := r.p.Admin.StartOp(ctx, r.cluster, "migrate", api.MigrateParams{From: "redis://" + src.Addr, Link: "console-mig-2"}, false)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the second migration to finish", 30*time.Second, func() bool {
		o, err := r.p.Admin.Op(ctx, op2.ID)
		return err == nil && o.Done()
	})
	a.open("/migrations/console-mig-2")
	a.click("#mig-delete")
	a.click("#mig-delete")
	a.wait("the list after the delete", `location.pathname === "/migrations" && document.body.dataset.ready === "true"`, 10*time.Second)
	if n := a.count(`#migrations tr[data-link="console-mig-2"]`); n != 0 {
		t.Errorf("the deleted link still has %d rows in the list", n)
	}
	if n := a.count(`#migrations tr[data-link="console-mig"]`); n != 1 {
		t.Errorf("the first link has %d rows after the other was deleted, want 1", n)
	}
	if _, err := r.p.Admin.Sync(ctx, "console-mig-2"); !api.IsStatus(err, 404) {
		t.Errorf("the deleted link through the API: %v, want 404", err)
	}
	a.noErrors()
}

// testClientConfig edits an app's client config from its page.
func testClientConfig(t *testing.T, r *consoleRun) {
	a, ctx := r.admin, ctxFor(t, time.Minute)
	before, err := r.p.Admin.App(ctx, r.cluster)
	if err != nil {
		t.Fatal(err)
	}
	a.open("/apps/" + r.cluster)
	a.set(`.config-form input[name="pool_size"]`, "20")
	a.set(`.config-form input[name="read_timeout"]`, "750ms")
	a.set(`.config-form input[name="read_from_replica"]`, "true")
	a.click(`.config-form button[type="submit"]`)
	a.wait("the saved config", fmt.Sprintf(`document.body.dataset.ready === "true" &&
		document.querySelector(".page-head .facts").textContent.includes("config version %d")`, before.ConfigVersion+1), 20*time.Second)
	app, err := r.p.Admin.App(ctx, r.cluster)
	if err != nil || app.Config.PoolSize != 20 || app.Config.ReadTimeout != "750ms" || !app.Config.ReadFromReplica || app.ConfigVersion != before.ConfigVersion+1 {
		t.Fatalf("config after the form: %+v, %v", app, err)
	}
	// A bad value is refused with the API's message, next to the form.
	a.set(`.config-form input[name="read_timeout"]`, "soon")
	a.click(`.config-form button[type="submit"]`)
	a.wait("the refusal", `(document.querySelector(".config-form .form-error:not([hidden])") || {textContent: ""}).textContent.includes("read_timeout")`, 20*time.Second)
	if app, err := r.p.Admin.App(ctx, r.cluster); err != nil || app.ConfigVersion != before.ConfigVersion+1 {
		t.Fatalf("a refused config changed the app: %+v, %v", app, err)
	}
	a.noErrors()
}

// snapshot keeps a picture of a moment that the screenshot step cannot
// recreate (a plan on show, an operation paused half-way), when the run
// writes screenshots at all.
func snapshot(t *testing.T, tb *tab, name string) {
	t.Helper()
	if *screenshotDir == "" {
		return
	}
	if err := os.MkdirAll(*screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*screenshotDir, name+"-1280x800.png"), tb.screenshot(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// testScreenshots photographs the main pages at both sizes the console must
// hold, and checks that nothing overflows sideways.
func testScreenshots(t *testing.T, r *consoleRun) {
	a := r.admin
	dir := t.TempDir()
	if *screenshotDir != "" {
		dir = *screenshotDir
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	anon := newTab(t, r.browser, r.p.URL)
	type shot struct {
		name  string
		tab   *tab
		path  string
		ready string // a condition that says the page has settled
		then  func() // what to do on the page before the picture
	}
	shots := []shot{
		{name: "login", tab: anon, path: "/login"},
		{name: "clusters", tab: a, path: "/clusters"},
		{name: "cluster", tab: a, path: "/clusters/" + r.cluster, ready: `document.querySelector("#check-result") !== null && ` + chartsSettled},
		{name: "app-clients", tab: a, path: "/apps/" + r.cluster, ready: `document.querySelector("#client-flags") !== null`},
		{name: "node", tab: a, path: "/clusters/" + r.cluster + "/nodes/" + mastersOf(t, r)[0].Addr, ready: chartsSettled},
		{name: "operation", tab: a, path: "/ops/" + r.rebal},
		{name: "operations", tab: a, path: "/ops"},
		{name: "console", tab: a, path: "/apps/" + r.cluster + "/console", then: func() {
			cli(t, a, `SET web:greeting "hello console"`)
			cli(t, a, "GET web:greeting")
			cli(t, a, "DEL web:recent")
			cli(t, a, "RPUSH web:recent checkout cart search")
			cli(t, a, "LRANGE web:recent 0 -1")
			cli(t, a, "LRANGE web:greeting 0 -1")
			cli(t, a, "FLUSHALL")
		}},
		{name: "users", tab: a, path: "/users"},
		{name: "migrations", tab: a, path: "/migrations"},
		{name: "migration", tab: a, path: "/migrations/" + r.migLink},
		{name: "alerts", tab: a, path: "/alerts"},
	}
	for _, size := range [][2]int64{{1280, 800}, {1920, 1080}} {
		w, h := size[0], size[1]
		for _, s := range shots {
			s.tab.do(chromedp.EmulateViewport(w, h))
			s.tab.open(s.path)
			if s.ready != "" {
				s.tab.wait("the "+s.name+" page to settle", s.ready, 20*time.Second)
			}
			if s.then != nil {
				s.then()
			}
			time.Sleep(300 * time.Millisecond) // charts draw on the next frame
			var overflow struct{ Scroll, Inner int }
			s.tab.eval(`({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})`, &overflow)
			if overflow.Scroll > overflow.Inner {
				t.Errorf("%s at %dx%d is %dpx wide: it overflows sideways", s.name, w, h, overflow.Scroll)
			}
			file := filepath.Join(dir, fmt.Sprintf("%s-%dx%d.png", s.name, w, h))
			if err := os.WriteFile(file, s.tab.screenshot(), 0o644); err != nil {
				t.Fatal(err)
			}
			s.tab.noErrors()
		}
	}
	t.Logf("screenshots in %s", dir)
}
