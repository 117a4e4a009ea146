package web

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/manager"
	"github.com/r2m-go/r2m/meta"
)

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{
	Timeout:       20 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

type answer struct {
	status int
	header http.Header
	body   string
}

func send(t *testing.T, method, url string, header map[string]string, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// login logs in through the API and returns the session cookie and the
// CSRF token.
func login(t *testing.T, base, user, password string) (string, string) {
	t.Helper()
	b, _ := json.Marshal(api.Login{User: user, Password: password})
	resp, err := noRedirect.Post(base+"/api/v1/login", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var who api.Whoami
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&who) != nil {
		t.Fatalf("login %s: HTTP %d", user, resp.StatusCode)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "r2m_session" {
			return c.Name + "=" + c.Value, who.CSRFToken
		}
	}
	t.Fatal("login set no session cookie")
	return "", ""
}

// TestPagesFollowTheAPI checks the console's HTTP behaviour without a
// browser: who gets which page, that the API's answer is what a page
// shows, and the headers every answer carries.
func TestPagesFollowTheAPI(t *testing.T) {
	p := startPlatform(t)
	ctx := ctxFor(t, time.Minute)
	base := p.URL

	// No session: pages send the visitor to the login page, fragments
	// tell htmx to go there.
	if a := send(t, "GET", base+"/", nil, ""); a.status != 303 || a.header.Get("Location") != "/clusters" {
		t.Errorf("GET / = %d %s", a.status, a.header.Get("Location"))
	}
	if a := send(t, "GET", base+"/clusters/shop?x=1", nil, ""); a.status != 303 || a.header.Get("Location") != "/login?next=%2Fclusters%2Fshop%3Fx%3D1" {
		t.Errorf("GET /clusters/shop without a session = %d %s", a.status, a.header.Get("Location"))
	}
	// (back to the page the fragment belongs to, not to the fragment)
	if a := send(t, "GET", base+"/apps/x?fragment=clients", map[string]string{"HX-Request": "true", "HX-Current-URL": base + "/apps/x"}, ""); a.status != 401 || a.header.Get("HX-Redirect") != "/login?next=%2Fapps%2Fx" {
		t.Errorf("fragment without a session = %d, HX-Redirect %q", a.status, a.header.Get("HX-Redirect"))
	}
	if a := send(t, "GET", base+"/ops?cluster=c&fragment=op-rows", nil, ""); a.status != 401 || a.header.Get("HX-Redirect") != "/login?next=%2Fops%3Fcluster%3Dc" {
		t.Errorf("fragment without a session or HX-Current-URL = %d, HX-Redirect %q", a.status, a.header.Get("HX-Redirect"))
	}
	// The console reads the API with the visitor's cookie and nothing
	// else: a bearer token does not open the pages.
	tok, err := os.ReadFile(manager.AdminTokenPath(p.DataDir))
	if err != nil {
		t.Fatal(err)
	}
	if a := send(t, "GET", base+"/clusters", map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(tok))}, ""); a.status != 303 {
		t.Errorf("a page with a bearer token and no cookie = %d, want the login redirect", a.status)
	}
	// The login page never sends anyone off the server.
	if a := send(t, "GET", base+"/login?next=//evil.example/", nil, ""); a.status != 200 || !strings.Contains(a.body, `data-next="/clusters"`) || strings.Contains(a.body, "evil") {
		t.Errorf("login with an outside next: %d", a.status)
	}

	cookie, csrf := login(t, base, "admin", p.Password)
	as := map[string]string{"Cookie": cookie}
	a := send(t, "GET", base+"/clusters", as, "")
	if a.status != 200 || !strings.Contains(a.body, `<meta name="r2m-csrf" content="`+csrf+`">`) {
		t.Fatalf("GET /clusters as admin = %d; want the page with the session's CSRF token", a.status)
	}
	for h, want := range map[string]string{
		"Content-Security-Policy": "script-src 'self'", "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
	} {
		if !strings.Contains(a.header.Get(h), want) {
			t.Errorf("header %s = %q, want %q in it", h, a.header.Get(h), want)
		}
	}
	if strings.Contains(a.body, "<script>") || strings.Contains(a.body, " style=") || strings.Contains(a.body, " onclick=") {
		t.Error("a page has an inline script or style; the CSP forbids them")
	}
	if a := send(t, "GET", base+"/login?next=/apps", as, ""); a.status != 303 || a.header.Get("Location") != "/apps" {
		t.Errorf("login page with a session = %d %s, want straight on", a.status, a.header.Get("Location"))
	}

	// The console changes nothing itself.
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		if a := send(t, m, base+"/clusters", map[string]string{"Cookie": cookie, "X-CSRF-Token": csrf}, "{}"); a.status != 405 || a.header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /clusters = %d (Allow %q), want 405", m, a.status, a.header.Get("Allow"))
		}
	}
	// The API's errors are the pages' errors.
	if a := send(t, "GET", base+"/clusters/nope", as, ""); a.status != 404 || !strings.Contains(a.body, `no cluster &#34;nope&#34;`) {
		t.Errorf("unknown cluster page = %d", a.status)
	}
	if a := send(t, "GET", base+"/no/such/page", as, ""); a.status != 404 {
		t.Errorf("unknown page = %d", a.status)
	}
	if _, err := p.Admin.CreateUser(ctx, api.NewUser{Name: "olga", Role: "operator", Password: "operator password"}); err != nil {
		t.Fatal(err)
	}
	opCookie, _ := login(t, base, "olga", "operator password")
	a = send(t, "GET", base+"/users", map[string]string{"Cookie": opCookie}, "")
	if a.status != 403 || !strings.Contains(a.body, "admin role required") {
		t.Errorf("an operator's users page = %d; want the API's 403", a.status)
	}
	if strings.Contains(a.body, `href="/users"`) {
		t.Error("the navigation offers Users to an operator")
	}
	if a := send(t, "GET", base+"/clusters", map[string]string{"Cookie": opCookie}, ""); !strings.Contains(a.body, "data-mutating") {
		t.Error("an operator gets no create form")
	}

	// Static files: the versioned URL the pages use may be cached for
	// good; the vendored libraries and their licenses are there.
	var version string
	if i := strings.Index(a.body, "/static/app.js?v="); i >= 0 {
		version = a.body[i+len("/static/app.js?v=") : i+len("/static/app.js?v=")+12]
	}
	if s := send(t, "GET", base+"/static/app.js?v="+version, nil, ""); s.status != 200 || !strings.Contains(s.header.Get("Cache-Control"), "immutable") ||
		!strings.Contains(s.header.Get("Content-Type"), "javascript") {
		t.Errorf("app.js = %d %q %q", s.status, s.header.Get("Cache-Control"), s.header.Get("Content-Type"))
	}
	if s := send(t, "GET", base+"/static/app.js", nil, ""); s.header.Get("Cache-Control") != "no-cache" {
		t.Errorf("an unversioned asset is cached: %q", s.header.Get("Cache-Control"))
	}
	for _, f := range []string{"vendor/htmx/htmx.min.js", "vendor/htmx/LICENSE", "vendor/uplot/uPlot.iife.min.js", "vendor/uplot/uPlot.min.css", "vendor/uplot/LICENSE", "app.css", "favicon.svg"} {
		if s := send(t, "GET", base+"/static/"+f, nil, ""); s.status != 200 || len(s.body) == 0 {
			t.Errorf("/static/%s = %d", f, s.status)
		}
	}
}

// TestDirServesFromDisk checks the development switch: templates and
// static files come from the directory, and a wrong directory is refused.
func TestDirServesFromDisk(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(".")); err != nil {
		t.Fatal(err)
	}
	apiH := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":{"code":"unauthorized","message":"no"}}`, http.StatusUnauthorized)
	})
	h := New(Options{Dir: dir})(apiH)
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec
	}
	if rec := get("/login"); rec.Code != 200 || !strings.Contains(rec.Body.String(), "Log in to R2M") {
		t.Fatalf("/login from disk = %d", rec.Code)
	}
	b, err := os.ReadFile(dir + "/templates/login.html")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/templates/login.html", bytes.Replace(b, []byte("Log in to R2M"), []byte("Edited on disk"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if rec := get("/login"); !strings.Contains(rec.Body.String(), "Edited on disk") {
		t.Fatal("a template edited on disk is not served without a restart")
	}
	if rec := get("/static/app.css"); rec.Code != 200 || rec.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("/static/app.css from disk = %d %q", rec.Code, rec.Header().Get("Cache-Control"))
	}
	if _, err := newConsole(Options{Dir: t.TempDir()}, apiH); err == nil || !strings.Contains(err.Error(), "Options.Dir") {
		t.Fatalf("a directory without templates: %v", err)
	}
	rec := httptest.NewRecorder()
	New(Options{Dir: t.TempDir()})(apiH).ServeHTTP(rec, httptest.NewRequest("GET", "/clusters", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "Options.Dir") {
		t.Fatalf("a console that cannot load its templates answers %d %q", rec.Code, rec.Body.String())
	}
}

// TestMigrationPages checks the migration pages against link records
// written the way a migrate operation writes them: every number on the
// pages is the record's, the link's error is escaped, a viewer reads them
// without any control, and the shards panel offers itself as a fragment
// only while the link runs.
func TestMigrationPages(t *testing.T) {
	p := startPlatform(t)
	ctx := ctxFor(t, time.Minute)
	base := p.URL
	now := time.Now().UTC().Truncate(time.Second)
	link := &meta.SyncLink{ID: "mig-page", Source: meta.SyncSource{Kind: "cluster", Cluster: "legacy"}, Target: "shop", Purpose: "migrate",
		Op: "op-123", State: meta.SyncStreaming, ExactlyOnce: true, Error: `<b>target said "no"</b>`, CreatedAt: now, UpdatedAt: now}
	if err := p.Store.SyncLink(link.ID).Create(ctx, link); err != nil {
		t.Fatal(err)
	}
	for _, sh := range []*meta.SyncShard{
		{Shard: "0-8191", Addr: "10.0.0.1:6379", Phase: "stream", RDBKeys: 1234, LagBytes: 2048, LagMs: 17, FullSyncs: 1, Resumes: 3, UpdatedAt: now},
		{Shard: "8192-16383", Addr: "10.0.0.2:6379", Phase: "rdb", RDBKeys: 567, FullSyncs: 2, UpdatedAt: now},
	} {
		if err := p.Store.SyncShard(link.ID, sh.Shard).Create(ctx, sh); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Admin.CreateUser(ctx, api.NewUser{Name: "vic", Role: "viewer", Password: "viewer password"}); err != nil {
		t.Fatal(err)
	}
	cookie, _ := login(t, base, "vic", "viewer password")
	as := map[string]string{"Cookie": cookie}

	a := send(t, "GET", base+"/migrations", as, "")
	if a.status != 200 {
		t.Fatalf("GET /migrations as a viewer = %d", a.status)
	}
	for _, want := range []string{
		`<a href="/migrations" class="active">Migrations</a>`, `<tr data-link="mig-page" data-state="streaming">`,
		`<a href="/clusters/legacy">legacy</a>`, `<a href="/clusters/shop">shop</a>`, "exactly-once", "1/2 streaming",
		">1801<", "2.0 KiB · 17 ms", `<a href="/ops/op-123" class="mono">op-123</a>`, `&lt;b&gt;target said &#34;no&#34;&lt;/b&gt;`,
	} {
		if !strings.Contains(a.body, want) {
			t.Errorf("the migrations list lacks %s", want)
		}
	}
	if strings.Contains(a.body, "<b>target") {
		t.Error("the migrations list shows the link's error unescaped")
	}

	a = send(t, "GET", base+"/migrations/mig-page", as, "")
	if a.status != 200 {
		t.Fatalf("GET /migrations/mig-page as a viewer = %d", a.status)
	}
	for _, want := range []string{
		`data-state="streaming" data-live="true" hx-get="/migrations/mig-page?fragment=live" hx-trigger="every 2s"`,
		`data-shard="0-8191" data-phase="stream" data-rdb-keys="1234" data-lag-bytes="2048" data-lag-ms="17" data-full-syncs="1" data-resumes="3"`,
		`data-shard="8192-16383" data-phase="rdb" data-rdb-keys="567" data-lag-bytes="0" data-lag-ms="0" data-full-syncs="2" data-resumes="0"`,
		`<td class="mono">10.0.0.1:6379</td>`, `id="mig-op"`, `&lt;b&gt;target said &#34;no&#34;&lt;/b&gt;`,
	} {
		if !strings.Contains(a.body, want) {
			t.Errorf("the migration page lacks %s", want)
		}
	}
	if strings.Contains(a.body, "data-mutating") || strings.Contains(a.body, "<button type=\"button\" class") {
		t.Error("the migration page offers a viewer a control")
	}
	// The live panel alone, as htmx asks for it.
	f := send(t, "GET", base+"/migrations/mig-page?fragment=live", map[string]string{"Cookie": cookie, "HX-Request": "true"}, "")
	if f.status != 200 || !strings.HasPrefix(strings.TrimSpace(f.body), `<section class="card" id="mig-live"`) || strings.Contains(f.body, "<html") {
		t.Errorf("the live fragment = %d %.80q", f.status, f.body)
	}
	// A stopped link no longer refreshes.
	if _, _, err := p.Store.SyncLink(link.ID).Update(ctx, func(l *meta.SyncLink) error { l.State, l.Error = meta.SyncStopped, ""; return nil }); err != nil {
		t.Fatal(err)
	}
	if f := send(t, "GET", base+"/migrations/mig-page?fragment=live", map[string]string{"Cookie": cookie, "HX-Request": "true"}, ""); !strings.Contains(f.body, `data-live="false"`) || strings.Contains(f.body, "hx-trigger") {
		t.Errorf("a stopped link's panel still refreshes itself: %.300q", f.body)
	}
	// The API's answers are the pages' answers.
	if a := send(t, "GET", base+"/migrations/nope", as, ""); a.status != 404 || !strings.Contains(a.body, `no link &#34;nope&#34;`) {
		t.Errorf("unknown link page = %d", a.status)
	}
	if a := send(t, "GET", base+"/migrations", nil, ""); a.status != 303 || a.header.Get("Location") != "/login?next=%2Fmigrations" {
		t.Errorf("GET /migrations without a session = %d %s", a.status, a.header.Get("Location"))
	}
}
