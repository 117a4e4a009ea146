package web

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/r2m-go/r2m/internal/testenv"
)

// startChrome starts one headless Chromium (Debian's package) for a test
// and returns the context of its first tab; tabs for other users come from
// newTab. The browser and every process of it stop when the test ends.
func startChrome(t *testing.T) context.Context {
	t.Helper()
	path, err := testenv.ChromiumPath()
	if err != nil {
		t.Fatalf("%v\nthe console is tested in a real browser; install it with: apt-get install -y chromium", err)
	}
	dir, err := os.MkdirTemp("", "r2m-web-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(dir),
		// Quieter and steadier, not needed for correctness.
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.WindowSize(1280, 800),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithLogf(func(string, ...any) {}), chromedp.WithErrorf(func(string, ...any) {}))
	t.Cleanup(func() {
		bcancel()
		acancel() // waits for the browser process
		// Chromium's helpers may still write in the profile for a moment.
		for range 50 {
			if os.RemoveAll(dir) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium %s: %v", path, err)
	}
	return bctx
}

// errorTrap runs before any page script and records script errors,
// unhandled promise rejections and Content-Security-Policy violations, so
// the tests fail on a console that works only by accident.
const errorTrap = `window.__r2mErrors = [];
window.addEventListener("error", (e) => window.__r2mErrors.push("error: " + (e.message || ("failed to load " + (e.target && (e.target.src || e.target.href)))) + " " + (e.filename || "") + ":" + (e.lineno || "")), true);
window.addEventListener("unhandledrejection", (e) => window.__r2mErrors.push("unhandled rejection: " + e.reason));
document.addEventListener("securitypolicyviolation", (e) => window.__r2mErrors.push("CSP violation: " + e.violatedDirective + " " + e.blockedURI + " " + e.sourceFile + ":" + e.lineNumber));`

// tab is one browser tab with its own cookie jar (a browser context), so
// an admin and a viewer can be logged in at the same time.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string
}

func newTab(t *testing.T, browser context.Context, base string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tb := &tab{t: t, ctx: ctx, base: base}
	// The first action on a chromedp context creates its tab and binds the
	// tab's life to the context it is given, so it must be the tab's own
	// context, not one of do's bounded children.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a browser tab: %v", err)
	}
	tb.do(chromedp.EmulateViewport(1280, 800), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: errorTrap})
		return err
	}))
	return tb
}

// do runs browser actions, each bounded, and fails the test on an error.
func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("browser: %v (at %s)", err, tb.location())
	}
}

// location is the tab's current URL, for messages.
func (tb *tab) location() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "unknown location: " + err.Error()
	}
	return loc
}

// open loads a console page and waits until its script has run.
func (tb *tab) open(path string) {
	tb.t.Helper()
	tb.do(chromedp.Navigate(tb.base + path))
	tb.wait("the page script of "+path, `document.body && document.body.dataset.ready === "true"`, 20*time.Second)
	tb.noErrors()
}

// eval evaluates a JavaScript expression (awaiting a promise) and decodes
// its value into out.
func (tb *tab) eval(expr string, out any) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v (at %s)", expr, err, tb.location())
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			tb.t.Fatalf("evaluate %s: decode %s: %v", expr, raw, err)
		}
	}
}

func (tb *tab) text(sel string) string {
	tb.t.Helper()
	var s string
	tb.eval(fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent.trim()`, sel), &s)
	return s
}

func (tb *tab) count(sel string) int {
	tb.t.Helper()
	var n int
	tb.eval(fmt.Sprintf(`document.querySelectorAll(%q).length`, sel), &n)
	return n
}

// wait polls a JavaScript condition until it is truthy; on timeout it fails
// the test with what it waited for and the page's visible text.
func (tb *tab) wait(what, cond string, d time.Duration) {
	tb.t.Helper()
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left < 100*time.Millisecond {
			left = 100 * time.Millisecond
		}
		ctx, cancel := context.WithTimeout(tb.ctx, left+5*time.Second)
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(left), chromedp.WithPollingInterval(100*time.Millisecond)))
		cancel()
		if err == nil {
			return
		}
		// A navigation while polling (a login's redirect, a form that
		// reloads the page) ends the poll's document; poll the new one.
		if navigatedAway(err) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		tb.t.Fatalf("waiting up to %v for %s (%s): %v\nat %s; page text:\n%s", d, what, cond, err, tb.location(), tb.pageText())
	}
}

// waitReloading opens path again every two seconds until cond holds: for
// what a page shows only as it loads (a chart's history).
func (tb *tab) waitReloading(what, path, cond string, d time.Duration) {
	tb.t.Helper()
	deadline := time.Now().Add(d)
	for {
		tb.open(path)
		var ok bool
		tb.eval("!!("+cond+")", &ok)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.t.Fatalf("after %v %s still does not show %s (%s); page text:\n%s", d, path, what, cond, tb.pageText())
		}
		time.Sleep(2 * time.Second)
	}
}

func navigatedAway(err error) bool {
	s := err.Error()
	return strings.Contains(s, "navigated or closed") || strings.Contains(s, "context was destroyed") || strings.Contains(s, "Cannot find context")
}

func (tb *tab) pageText() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 4000) : ""`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

// click clicks an element through the DOM, as a user's click would reach
// the page's handlers, and fails if there is none.
func (tb *tab) click(sel string) {
	tb.t.Helper()
	var ok bool
	tb.eval(fmt.Sprintf(`(() => { const el = document.querySelector(%q); if (!el) return false; el.click(); return true; })()`, sel), &ok)
	if !ok {
		tb.t.Fatalf("no %s to click at %s; page text:\n%s", sel, tb.location(), tb.pageText())
	}
}

// set sets a form field's value.
func (tb *tab) set(sel, value string) {
	tb.t.Helper()
	var ok bool
	tb.eval(fmt.Sprintf(`(() => { const el = document.querySelector(%q); if (!el) return false;
		if (el.type === "checkbox") { el.checked = %q === "true"; } else { el.value = %q; }
		el.dispatchEvent(new Event("input", {bubbles: true})); el.dispatchEvent(new Event("change", {bubbles: true})); return true; })()`, sel, value, value), &ok)
	if !ok {
		tb.t.Fatalf("no field %s at %s", sel, tb.location())
	}
}

// noErrors fails the test if the page has thrown, rejected a promise or
// violated its Content-Security-Policy.
func (tb *tab) noErrors() {
	tb.t.Helper()
	var errs []string
	tb.eval(`window.__r2mErrors || []`, &errs)
	if len(errs) > 0 {
		tb.t.Fatalf("page %s reported errors:\n%s", tb.location(), strings.Join(errs, "\n"))
	}
}

// login logs in through the login page and waits for the clusters page.
func (tb *tab) login(user, password string) {
	tb.t.Helper()
	tb.open("/login")
	tb.set("#login-user", user)
	tb.set("#login-password", password)
	tb.click("#login-form button")
	tb.wait("the clusters page for "+user, fmt.Sprintf(`location.pathname === "/clusters" && document.body.dataset.ready === "true" &&
		(document.querySelector("#me-user") || {}).textContent === %q`, user), 20*time.Second)
}

// screenshot captures what the tab's viewport shows, as PNG.
func (tb *tab) screenshot() []byte {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Fatalf("screenshot at %s: %v", tb.location(), err)
	}
	return png
}

// fetchResult is what forged requests from a page get back.
type fetchResult struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// fetch sends a request from the page, with the page's cookies, as a
// script on the page could; csrf says whether to send the page's token.
func (tb *tab) fetch(method, path, body string, csrf bool) fetchResult {
	tb.t.Helper()
	var r fetchResult
	tb.eval(fmt.Sprintf(`(async () => {
		const h = {"Content-Type": "application/json"};
		if (%t) { h["X-CSRF-Token"] = (document.querySelector('meta[name="r2m-csrf"]') || {}).content || ""; }
		const resp = await fetch(%q, {method: %q, credentials: "same-origin", headers: h, body: %q});
		let e = {};
		try { const j = await resp.json(); e = j.error || {}; } catch (_) {}
		return {status: resp.status, code: e.code || "", message: e.message || ""};
	})()`, csrf, path, method, body), &r)
	return r
}
