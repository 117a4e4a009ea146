package web

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/r2m-go/r2m/api"
)

// hookCall is one request the test's webhook received.
type hookCall struct {
	contentType string
	body        []byte
}

// TestAlertsPage drives the alerts page in headless Chromium against a real
// server with monitoring: an admin creates a webhook channel from the form
// and test-sends to a real HTTP server, sees a refused channel's error,
// edits a rule and a per-cluster override and reads them back through the
// API; a viewer sees everything the API shows them and no control that
// changes anything.
func TestAlertsPage(t *testing.T) {
	p := startPlatform(t, withMonitor(t))
	ctx := ctxFor(t, 2*time.Minute)

	calls := make(chan hookCall, 8)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case calls <- hookCall{contentType: r.Header.Get("Content-Type"), body: b}:
		default:
		}
	}))
	t.Cleanup(hook.Close)
	// A port that refuses connections: listened on, then closed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String() + "/hook"
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	browser := startChrome(t)
	a := newTab(t, browser, p.URL)
	a.login("admin", p.Password)
	a.open("/alerts")
	if got := a.text(`header nav a.active`); got != "Alerts" {
		t.Errorf("the active nav entry is %q, want Alerts", got)
	}
	// No cluster runs, so nothing fires and nothing has fired: the page
	// says so rather than showing rows.
	firing, err := p.Admin.Alerts(ctx)
	if err != nil || len(firing) != 0 {
		t.Fatalf("alerts firing on a platform without clusters: %+v, %v", firing, err)
	}
	if got := a.text("#alerts-firing tbody"); got != "No alert is firing." {
		t.Errorf("firing table says %q, want the empty state", got)
	}
	hist, err := p.Admin.AlertHistory(ctx, "")
	if err != nil || len(hist) != 0 {
		t.Fatalf("alert history on a new platform: %+v, %v", hist, err)
	}
	if got := a.text("#alerts-history tbody"); !strings.HasPrefix(got, "No alert has fired") {
		t.Errorf("history table says %q, want the empty state", got)
	}
	if n := a.count("#alert-rules tbody tr[data-rule]"); n == 0 {
		t.Fatal("the rules table is empty; the built-in rules are missing")
	}

	// A generic webhook from the form, with a token in its query.
	a.set(`#new-channel input[name="name"]`, "ops-hook")
	a.set(`#new-channel select[name="type"]`, "webhook")
	a.set(`#new-channel input[name="url"]`, hook.URL+"/r2m?token=hook-secret-42")
	a.click(`#new-channel button[type="submit"]`)
	a.wait("the new channel's row", `document.body.dataset.ready === "true" && document.querySelector('tr[data-channel="ops-hook"]') !== null`, 20*time.Second)
	a.noErrors()
	chs, err := p.Admin.AlertChannels(ctx)
	if err != nil || len(chs) != 1 || chs[0].Name != "ops-hook" || chs[0].Type != "webhook" {
		t.Fatalf("channels after the form: %+v, %v", chs, err)
	}
	if url := a.text(`tr[data-channel="ops-hook"] td.mono`); url != chs[0].URL || strings.Contains(url, "hook-secret-42") {
		t.Errorf("the page shows the URL %q, want the API's redacted %q", url, chs[0].URL)
	}
	var html string
	a.eval(`document.documentElement.outerHTML`, &html)
	if strings.Contains(html, "hook-secret-42") {
		t.Error("the page's HTML carries the webhook's token")
	}

	a.click(`tr[data-channel="ops-hook"] button.test-send`)
	a.wait("the test send's result", `(document.querySelector('tr[data-channel="ops-hook"] .test-result:not([hidden])') || {}).textContent > ""`, 30*time.Second)
	if res := a.text(`tr[data-channel="ops-hook"] .test-result`); !strings.HasPrefix(res, "Delivered") {
		t.Fatalf("the test send shows %q, want Delivered", res)
	}
	select {
	case c := <-calls:
		var payload map[string]any
		if !strings.HasPrefix(c.contentType, "application/json") || json.Unmarshal(c.body, &payload) != nil || len(payload) == 0 {
			t.Errorf("the webhook got %q with Content-Type %q, want a JSON object", c.body, c.contentType)
		}
	default:
		t.Fatal("the page says delivered, but the webhook received nothing")
	}

	// A channel whose URL refuses connections: the test send shows why.
	a.set(`#new-channel input[name="name"]`, "dead-hook")
	a.set(`#new-channel input[name="url"]`, refused)
	a.click(`#new-channel button[type="submit"]`)
	a.wait("the refused channel's row", `document.body.dataset.ready === "true" && document.querySelector('tr[data-channel="dead-hook"]') !== null`, 20*time.Second)
	a.click(`tr[data-channel="dead-hook"] button.test-send`)
	a.wait("the refused send's result", `(document.querySelector('tr[data-channel="dead-hook"] .test-result:not([hidden])') || {}).textContent > ""`, 30*time.Second)
	if res := a.text(`tr[data-channel="dead-hook"] .test-result`); !strings.HasPrefix(res, "Not delivered") || !strings.Contains(res, "refused") {
		t.Errorf("the refused send shows %q, want Not delivered with the refusal", res)
	}
	if n := a.count(`tr[data-channel="dead-hook"] .test-result.error-box`); n != 1 {
		t.Errorf("the refused send's result is not shown as an error")
	}

	// Edit a built-in rule's threshold, then give it a per-cluster override
	// and remove it again.
	const rule = "memory_high"
	a.eval(fmt.Sprintf(`document.querySelector('tr[data-rule-edit=%q] details').open = true`, rule), nil)
	form := fmt.Sprintf(`tr[data-rule-edit=%q] form.rule-form`, rule)
	a.set(form+` input[name="threshold"]`, "0.6")
	a.set(form+` input[name="for"]`, "2m")
	a.click(form + ` button[type="submit"]`)
	a.wait("the new threshold in the rules table", fmt.Sprintf(`document.body.dataset.ready === "true" &&
		(document.querySelector('tr[data-rule=%q] .threshold') || {}).textContent === "0.6"`, rule), 20*time.Second)
	a.noErrors()
	got := ruleNamed(t, p.Admin, rule)
	if got.Threshold != 0.6 || got.For != "2m0s" || !got.Customized || got.Disabled {
		t.Errorf("rule after the form: %+v, want threshold 0.6 for 2m0s, customized and enabled", got)
	}
	a.eval(fmt.Sprintf(`document.querySelector('tr[data-rule-edit=%q] details').open = true`, rule), nil)
	over := fmt.Sprintf(`tr[data-rule-edit=%q] form.override-form`, rule)
	a.set(over+` input[name="cluster"]`, "shop")
	a.set(over+` input[name="threshold"]`, "0.9")
	a.set(over+` select[name="state"]`, "disabled")
	a.click(over + ` button[type="submit"]`)
	a.wait("the override in the rules table", fmt.Sprintf(`document.body.dataset.ready === "true" &&
		document.querySelector('tr[data-rule=%q] .override[data-cluster="shop"]') !== null`, rule), 20*time.Second)
	if txt := a.text(fmt.Sprintf(`tr[data-rule=%q] .override[data-cluster="shop"]`, rule)); !strings.Contains(txt, "threshold 0.9") || !strings.Contains(txt, "disabled") {
		t.Errorf("the override shows %q", txt)
	}
	got = ruleNamed(t, p.Admin, rule)
	if o, ok := got.Clusters["shop"]; !ok || o.Threshold == nil || *o.Threshold != 0.9 || o.Disabled == nil || !*o.Disabled || got.Threshold != 0.6 {
		t.Errorf("rule after the override form: %+v", got)
	}
	a.click(fmt.Sprintf(`tr[data-rule=%q] .override[data-cluster="shop"] button.override-delete`, rule))
	a.wait("the override gone", fmt.Sprintf(`document.body.dataset.ready === "true" && document.querySelector('tr[data-rule=%q]') !== null &&
		document.querySelector('tr[data-rule=%q] .override') === null`, rule, rule), 20*time.Second)
	if got = ruleNamed(t, p.Admin, rule); len(got.Clusters) != 0 || got.Threshold != 0.6 {
		t.Errorf("rule after removing the override: %+v", got)
	}
	// The page fits the window: nothing overflows sideways.
	var overflow struct{ Scroll, Inner int }
	a.eval(`({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})`, &overflow)
	if overflow.Scroll > overflow.Inner {
		t.Errorf("the alerts page is %dpx wide in a %dpx window", overflow.Scroll, overflow.Inner)
	}
	a.noErrors()

	// A viewer reads firing alerts, history and rules, is told channels
	// are not theirs to see, and has no control that changes anything.
	if _, err := p.Admin.CreateUser(ctx, api.NewUser{Name: "vic", Role: "viewer", Password: "a viewer's password"}); err != nil {
		t.Fatal(err)
	}
	v := newTab(t, browser, p.URL)
	v.login("vic", "a viewer's password")
	v.open("/alerts")
	if n := v.count("[data-mutating], form, button.test-send, details"); n != 0 {
		t.Errorf("the viewer sees %d controls that change alerts", n)
	}
	if n := v.count("#alert-rules tbody tr[data-rule]"); n != a.count("#alert-rules tbody tr[data-rule]") {
		t.Errorf("the viewer sees %d rules, the admin more", n)
	}
	if txt := v.text(fmt.Sprintf(`tr[data-rule=%q] .threshold`, rule)); txt != "0.6" {
		t.Errorf("the viewer sees threshold %q, want 0.6", txt)
	}
	if n := v.count("#channels-refused"); n != 1 {
		t.Errorf("the viewer is not told why channels are hidden; page text:\n%s", v.pageText())
	}
	// The server refuses the viewer whatever the page shows.
	if r := v.fetch("PUT", "/api/v1/monitor/rules/"+rule, `{"metric":"memory_ratio","op":">","threshold":0.1,"severity":"warning"}`, true); r.Status != http.StatusForbidden {
		t.Errorf("a viewer's rule PUT got %+v, want 403", r)
	}
	if r := v.fetch("POST", "/api/v1/monitor/channels/ops-hook/test", `{}`, true); r.Status != http.StatusForbidden {
		t.Errorf("a viewer's test send got %+v, want 403", r)
	}
	v.noErrors()
}

// ruleNamed reads one alert rule through the API.
func ruleNamed(t *testing.T, c *api.Client, name string) api.AlertRule {
	t.Helper()
	rules, err := c.AlertRules(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(rules, func(r api.AlertRule) bool { return r.Name == name })
	if i < 0 {
		t.Fatalf("no rule %s among %d", name, len(rules))
	}
	return rules[i]
}

// TestAlertsPageHTTP checks what the alerts page serves without a browser:
// the empty state of a server without monitoring, text from the API
// escaped, and an operator's controls (test sends and rules, no channel
// changes, which are the admin's).
func TestAlertsPageHTTP(t *testing.T) {
	t.Run("WithoutMonitoring", func(t *testing.T) {
		p := startPlatform(t)
		cookie, _ := login(t, p.URL, "admin", p.Password)
		a := send(t, "GET", p.URL+"/alerts", map[string]string{"Cookie": cookie}, "")
		if a.status != http.StatusOK || !strings.Contains(a.body, `id="alerts-off"`) || strings.Contains(a.body, `id="alert-rules"`) {
			t.Errorf("/alerts without a monitor: HTTP %d\n%s", a.status, a.body)
		}
	})
	t.Run("EscapingAndRoles", func(t *testing.T) {
		p := startPlatform(t, withMonitor(t))
		ctx := ctxFor(t, time.Minute)
		const desc = `<img src=x onerror="alert(1)"> & more`
		if _, err := p.Admin.SetAlertRule(ctx, api.AlertRule{Name: "custom_memory", Metric: "memory_used_ratio", Op: ">", Threshold: 0.5,
			Severity: "info", Description: desc}); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Admin.SetAlertChannel(ctx, api.AlertChannel{Name: "team", Type: "slack", URL: "https://hooks.example.com/services/T0/B0/abcdefSECRET"}); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Admin.CreateUser(ctx, api.NewUser{Name: "olga", Role: "operator", Password: "an operator's password"}); err != nil {
			t.Fatal(err)
		}
		cookie, _ := login(t, p.URL, "olga", "an operator's password")
		a := send(t, "GET", p.URL+"/alerts", map[string]string{"Cookie": cookie}, "")
		if a.status != http.StatusOK {
			t.Fatalf("/alerts as an operator: HTTP %d\n%s", a.status, a.body)
		}
		if strings.Contains(a.body, "<img src=x") || !strings.Contains(a.body, "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; more") {
			t.Errorf("the rule's description is not escaped:\n%s", a.body)
		}
		if strings.Contains(a.body, "abcdefSECRET") {
			t.Error("the page carries the channel URL's token")
		}
		for _, want := range []string{`data-channel="team"`, `class="small test-send"`, `data-rule-edit="custom_memory"`, `data-path="/api/v1/monitor/rules/custom_memory"`} {
			if !strings.Contains(a.body, want) {
				t.Errorf("the operator's page lacks %s", want)
			}
		}
		for _, not := range []string{`id="new-channel"`, `data-channel-edit=`, `data-path="/api/v1/monitor/channels/team" data-then`} {
			if strings.Contains(a.body, not) {
				t.Errorf("the operator's page has the admin's %s", not)
			}
		}
	})
}
