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
	"github.com/r2m-go/r2m/manager"
	"github.com/r2m-go/r2m/meta"
)

var screenshotDir = flag.String("screenshots", "", "also write the console's screenshots to this directory; "+
	"go test ./web/ -run TestConsole -args -screenshots $PWD/docs/screenshots refreshes the README's")

// console is the state the steps of TestConsole share: one server with
// three agents, one browser, the admin's tab and the cluster it creates.
type consoleRun struct {
	p       *platform
	browser context.Context
	admin   *tab
	cluster string
	rebal   string // the rebalance operation's ID
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
	r := &consoleRun{p: p, browser: startChrome(t), cluster: "shop"}
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
		{"Screenshots", testScreenshots},
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
	time.Sleep(500 * time.Millisecond)
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

// testClients registers clients as client processes do (ephemeral records
// under /apps/{app}/clients) and watches the table follow them.
func testClients(t *testing.T, r *consoleRun) {
	a, ctx := r.admin, ctxFor(t, 2*time.Minute)
	st := r.p.Store
	app := r.cluster // the create bound an app of the cluster's name
	started := time.Now().UTC().Add(-time.Hour)
	register := func(id, name, host string, pid int, site string) {
		t.Helper()
		now := time.Now().UTC()
		c := &meta.Client{ID: id, App: app, Name: name, Host: host, PID: pid, ProcessStart: started, ClientVersion: "v0.1.0", GoVersion: "go1.26",
			CreatedAt: now, CreationSite: site, Cluster: r.cluster, TopologyEpoch: 3, ConfigVersion: 1, OpenConns: 6,
			Heartbeat: meta.Heartbeat{At: now, Interval: meta.Duration(time.Minute), Commands: 1200, Errors: 0, P50: meta.Duration(180 * time.Microsecond), P99: meta.Duration(2 * time.Millisecond)}}
		if err := st.Client(app, id).CreateEphemeral(ctx, c); err != nil {
			t.Fatalf("register client %s: %v", id, err)
		}
	}
	a.open("/apps/" + app)
	if n := a.text("#client-count"); n != "0 live" {
		t.Fatalf("client count %q before any client registered", n)
	}

	t0 := time.Now()
	for _, id := range []string{"web-1a", "web-1b", "web-1c"} {
		register(id, "storefront", "web-1", 3100, "cmd/storefront/main.go:57")
	}
	a.wait("three clients to appear", `document.querySelector("#client-count").dataset.count === "3" && document.querySelectorAll("tr.client").length === 3`, 10*time.Second)
	if d := time.Since(t0); d > 6*time.Second {
		t.Fatalf("the registrations took %v to appear; want a few seconds", d)
	}
	if s := a.text(`tr.site[data-site="cmd/storefront/main.go:57"]`); !strings.Contains(s, "3 clients") {
		t.Fatalf("site group row %q", s)
	}

	t0 = time.Now()
	for _, id := range []string{"web-1a", "web-1b"} {
		if err := st.Client(app, id).Delete(ctx, -1); err != nil {
			t.Fatal(err)
		}
	}
	a.wait("two clients to disappear", `document.querySelector("#client-count").dataset.count === "1" &&
		document.querySelector('tr[data-client="web-1a"]') === null && document.querySelector('tr[data-client="web-1c"]') !== null`, 10*time.Second)
	if d := time.Since(t0); d > 6*time.Second {
		t.Fatalf("the closed clients took %v to disappear; want a few seconds", d)
	}
	if a.count("#client-flags") != 0 {
		t.Fatalf("flags with one healthy client: %s", a.text("#client-flags"))
	}

	// The incident: one process creating a client per task and never
	// closing them.
	for i := range 20 {
		register(fmt.Sprintf("export-%02d", i), "export-task", "batch-7", 4242, "jobs/export.go:42")
	}
	a.wait("the leak flag", `[...document.querySelectorAll('#client-flags li[data-flag="leak"]')].some(li =>
		li.textContent.includes('pid 4242 on batch-7 holds 20 clients of "shop"') && li.textContent.includes("jobs/export.go:42"))`, 10*time.Second)
	if n := a.count("tr.client.flagged"); n != 20 {
		t.Fatalf("%d client rows are flagged, want the 20 of pid 4242", n)
	}
	if n := a.count(`tr.client.flagged .flag-badge[title*="jobs/export.go:42"]`); n != 20 {
		t.Fatalf("%d flagged rows explain their flag (badge title naming the site), want 20", n)
	}
	if s := a.text(`tr.proc[data-pid="4242"]`); !strings.Contains(s, "20 clients") {
		t.Fatalf("process group row %q", s)
	}
	// The largest process comes first.
	var first string
	a.eval(`document.querySelector("tr.proc").dataset.pid`, &first)
	if first != "4242" {
		t.Fatalf("first process group is pid %s, want the leaking 4242", first)
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
