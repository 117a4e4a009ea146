package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/r2m-go/r2m/api"
)

//go:embed templates static
var embedded embed.FS

// Options configures the console. The zero value is ready to use.
type Options struct {
	// Logger receives the console's own log: pages that failed to render
	// and API answers it could not read. Nil discards it.
	Logger *slog.Logger
	// Dir, if set, is the web/ directory of a checkout: templates and
	// static files are read from it on every request instead of from the
	// copies embedded in the binary, so a page can be changed and reloaded
	// without rebuilding. Empty (the default) serves the embedded copies.
	Dir string
}

// New returns the console as manager.Config.Console wants it: a function
// that is given the server's API handler and returns the handler to serve
// at "/". Pages read the API through that handler in-process, with the
// visitor's cookie.
//
// If the templates cannot be loaded (a broken Options.Dir), the console
// logs why and answers every page with 500; the API is not affected.
func New(opts Options) func(api http.Handler) http.Handler {
	return func(apiHandler http.Handler) http.Handler {
		c, err := newConsole(opts, apiHandler)
		if err != nil {
			if opts.Logger != nil {
				opts.Logger.Error("web console unavailable", "err", err)
			}
			return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "the web console is unavailable: "+err.Error(), http.StatusInternalServerError)
			})
		}
		return c
	}
}

// console is the handler New returns.
type console struct {
	api    http.Handler
	log    *slog.Logger
	mux    *http.ServeMux
	files  fs.FS // holds templates/ and static/
	static http.Handler
	dev    bool // Options.Dir: re-read templates on every request

	// version is a hash of the static files, appended to their URLs so a
	// browser never runs an old app.js against new pages.
	version string

	mu    sync.Mutex
	pages map[string]*template.Template // parsed pages, when !dev
}

func newConsole(opts Options, apiHandler http.Handler) (*console, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &console{api: apiHandler, log: log.With("component", "console"), files: embedded, pages: map[string]*template.Template{}}
	if opts.Dir != "" {
		if _, err := os.Stat(filepath.Join(opts.Dir, "templates", "layout.html")); err != nil {
			return nil, fmt.Errorf("web: Options.Dir %q: want the web/ directory of a checkout: %w", opts.Dir, err)
		}
		c.files, c.dev = os.DirFS(opts.Dir), true
	}
	static, err := fs.Sub(c.files, "static")
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	c.static = http.StripPrefix("/static/", http.FileServerFS(static))
	c.version, err = hashFiles(static)
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	if !c.dev {
		// Parse every page now, so a broken template fails at start.
		for _, p := range pageNames {
			if _, err := c.template(p); err != nil {
				return nil, err
			}
		}
	}
	c.routes()
	return c, nil
}

// pageNames are the templates under templates/ besides the layout.
var pageNames = []string{"login", "error", "clusters", "cluster", "node", "apps", "app", "console", "ops", "op", "migrations", "migration", "users", "alerts"}

func (c *console) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/clusters", http.StatusSeeOther)
	})
	m.HandleFunc("GET /static/", c.serveStatic)
	m.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/static/favicon.svg", http.StatusMovedPermanently)
	})
	m.HandleFunc("GET /login", c.loginPage)
	m.HandleFunc("GET /clusters", c.page(c.clustersPage))
	m.HandleFunc("GET /clusters/{name}", c.page(c.clusterPage))
	m.HandleFunc("GET /clusters/{name}/check", c.page(c.checkFragment))
	m.HandleFunc("GET /clusters/{name}/nodes/{addr}", c.page(c.nodePage))
	m.HandleFunc("GET /apps", c.page(c.appsPage))
	m.HandleFunc("GET /apps/{app}", c.page(c.appPage))
	m.HandleFunc("GET /apps/{app}/console", c.page(c.consolePage))
	m.HandleFunc("GET /ops", c.page(c.opsPage))
	m.HandleFunc("GET /ops/{id}", c.page(c.opPage))
	m.HandleFunc("GET /migrations", c.page(c.migrationsPage))
	m.HandleFunc("GET /migrations/{link}", c.page(c.migrationPage))
	m.HandleFunc("GET /users", c.page(c.usersPage))
	m.HandleFunc("GET /alerts", c.page(c.alertsPage))
	// Everything else: the console changes nothing itself (changes go
	// from the browser to /api/v1), so any other method is refused, and
	// any other path is not found.
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			c.fail(w, r, nil, &apiError{Status: http.StatusMethodNotAllowed, ErrorDetail: api.ErrorDetail{
				Code: "method_not_allowed", Message: "the console only serves pages; changes go to /api/v1"}})
			return
		}
		c.fail(w, r, nil, &apiError{Status: http.StatusNotFound, ErrorDetail: api.ErrorDetail{Code: "not_found", Message: "no page " + r.URL.Path}})
	})
	c.mux = m
}

// ServeHTTP sets the headers every console answer carries and routes.
func (c *console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Scripts only from this server: the pages have no inline script and
	// no inline style, so an injected one does not run.
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	c.mux.ServeHTTP(w, r)
}

func (c *console) serveStatic(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("v") == c.version && !c.dev {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	c.static.ServeHTTP(w, r)
}

// hashFiles hashes every file under fsys, in walk order.
func hashFiles(fsys fs.FS) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12], err
}

// template returns the parsed page: the layout plus the page's file.
func (c *console) template(name string) (*template.Template, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.pages[name]; t != nil && !c.dev {
		return t, nil
	}
	t, err := template.New(name).Funcs(funcs).ParseFS(c.files, "templates/layout.html", "templates/"+name+".html")
	if err != nil {
		return nil, fmt.Errorf("web: template %s: %w", name, err)
	}
	c.pages[name] = t
	return t, nil
}

// visitor is who is looking at a page, as GET /api/v1/whoami answers.
type visitor struct {
	api.Whoami
}

// CanOperate reports whether the visitor may change clusters, apps and
// operations (operator or admin).
func (v *visitor) CanOperate() bool { return v != nil && (v.Role == "operator" || v.Role == "admin") }

// IsAdmin reports whether the visitor is an admin.
func (v *visitor) IsAdmin() bool { return v != nil && v.Role == "admin" }

// pageData is what every template gets.
type pageData struct {
	Title   string
	Nav     string // the active section: clusters, apps, ops, migrations, users
	Me      *visitor
	Version string // static asset version
	// Data is the page's own content.
	Data any
	// Err is set on the error page.
	Err *apiError
}

// page wraps a page handler: it asks the API who the visitor is, sends
// visitors without a session to the login page, and hands the rest on.
func (c *console) page(h func(w http.ResponseWriter, r *http.Request, me *visitor)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var who api.Whoami
		if err := c.get(r, "/api/v1/whoami", &who); err != nil {
			if statusOf(err) == http.StatusUnauthorized {
				to := "/login?next=" + url.QueryEscape(returnTo(r))
				if isFragment(r) {
					// htmx follows HX-Redirect; a fragment poll whose
					// session ended takes the whole page to the login.
					w.Header().Set("HX-Redirect", to)
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				http.Redirect(w, r, to, http.StatusSeeOther)
				return
			}
			c.fail(w, r, nil, err)
			return
		}
		h(w, r, &visitor{who})
	}
}

// returnTo is where the login page should send the visitor back to: the
// page itself, not the piece of it that a refresh asked for. htmx names the
// page in HX-Current-URL.
func returnTo(r *http.Request) string {
	if !isFragment(r) {
		return r.URL.RequestURI()
	}
	if u, err := url.Parse(r.Header.Get("HX-Current-URL")); err == nil && u.Path != "" {
		return u.RequestURI()
	}
	q := r.URL.Query()
	q.Del("fragment")
	u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
	return u.RequestURI()
}

// isFragment reports whether the request asks for a piece of a page
// (an htmx refresh) rather than a whole page.
func isFragment(r *http.Request) bool {
	return r.Header.Get("HX-Request") == "true" || r.URL.Query().Get("fragment") != ""
}

// render writes a whole page, or with block set only that template.
func (c *console) render(w http.ResponseWriter, r *http.Request, status int, name, block string, pd *pageData) {
	t, err := c.template(name)
	if err != nil {
		c.log.Error("template", "page", name, "err", err)
		http.Error(w, "console template error; see the server log", http.StatusInternalServerError)
		return
	}
	pd.Version = c.version
	if block == "" {
		block = "layout"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, block, pd); err != nil {
		c.log.Error("render", "page", name, "block", block, "path", r.URL.Path, "err", err)
		http.Error(w, "console render error; see the server log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail shows an error page with the API's status and message, or a bare
// message for a fragment.
func (c *console) fail(w http.ResponseWriter, r *http.Request, me *visitor, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		c.log.Error("page failed", "path", r.URL.Path, "err", err)
		ae = &apiError{Status: http.StatusInternalServerError, ErrorDetail: api.ErrorDetail{Code: "internal", Message: "the console could not read the API: " + err.Error()}}
	}
	if isFragment(r) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(ae.Status)
		fmt.Fprintf(w, `<div class="error-box">%s</div>`, template.HTMLEscapeString(ae.Message))
		return
	}
	c.render(w, r, ae.Status, "error", "", &pageData{Title: http.StatusText(ae.Status), Me: me, Err: ae})
}

// safeNext returns next if it is a path on this server, else "/clusters":
// the login page must not redirect anywhere else.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.HasPrefix(next, "/login") {
		return "/clusters"
	}
	return next
}

// loginPage shows the login form; a visitor who already has a session goes
// straight on.
func (c *console) loginPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if r.Header.Get("Cookie") != "" {
		var who api.Whoami
		if err := c.get(r, "/api/v1/whoami", &who); err == nil {
			http.Redirect(w, r, next, http.StatusSeeOther)
			return
		}
	}
	c.render(w, r, http.StatusOK, "login", "", &pageData{Title: "Log in", Data: next})
}
