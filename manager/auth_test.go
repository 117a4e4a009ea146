package manager

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"strings"
	"testing"

	"github.com/r2m-go/r2m/api"
)

func TestBootstrapWritesAdminTokenOnce(t *testing.T) {
	ts := startLeader(t, testenv_SharedEtcdURL(t))
	st, err := os.Stat(AdminTokenPath(ts.DataDir))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token mode %v, want 0600", st.Mode().Perm())
	}
	ctx := ctxT(t)
	w, err := ts.adminClient(t).Whoami(ctx)
	if err != nil || w.User != "admin" || w.Role != "admin" {
		t.Fatalf("whoami with the bootstrap token = %+v, %v", w, err)
	}
	pw, err := os.ReadFile(ts.DataDir + "/admin.password")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ts.Log.String(), strings.TrimSpace(string(pw))) {
		t.Fatal("the admin password appears in the server log")
	}
	tok, _ := os.ReadFile(AdminTokenPath(ts.DataDir))
	if strings.Contains(ts.Log.String(), strings.TrimSpace(string(tok))) {
		t.Fatal("the admin token appears in the server log")
	}
	if !strings.Contains(ts.Log.String(), AdminTokenPath(ts.DataDir)) {
		t.Fatal("the server log does not say where the admin token is")
	}
}

// TestRoleMatrix calls every user and token endpoint as nobody, viewer,
// operator and admin and checks 401/403/allowed for each.
func TestRoleMatrix(t *testing.T) {
	ts := startLeader(t, testenv_SharedEtcdURL(t))
	ctx := ctxT(t)
	admin := ts.adminClient(t)
	tokens := map[string]string{"": ""}
	for _, role := range []string{"viewer", "operator"} {
		if _, err := admin.CreateUser(ctx, api.NewUser{Name: role + "1", Role: role, Password: "correct horse battery"}); err != nil {
			t.Fatal(err)
		}
		tok, err := admin.CreateToken(ctx, api.NewToken{User: role + "1"})
		if err != nil {
			t.Fatal(err)
		}
		tokens[role] = tok.Secret
	}
	adminTok, _ := os.ReadFile(AdminTokenPath(ts.DataDir))
	tokens["admin"] = strings.TrimSpace(string(adminTok))

	type call struct {
		method, path, body string
		least              string // least role allowed: viewer, operator, admin
	}
	calls := []call{
		{"GET", "/api/v1/whoami", "", "viewer"},
		{"GET", "/api/v1/tokens", "", "viewer"},
		{"POST", "/api/v1/tokens", `{}`, "viewer"},
		{"GET", "/api/v1/users", "", "admin"},
		{"GET", "/api/v1/users/viewer1", "", "admin"},
		{"POST", "/api/v1/users", `{"name":"new-%s","role":"viewer","password":"0123456789ab"}`, "admin"},
		{"PUT", "/api/v1/users/viewer1/role", `{"role":"viewer"}`, "admin"},
		{"GET", "/api/v1/audit", "", "admin"},
	}
	rank := map[string]int{"": 0, "viewer": 1, "operator": 2, "admin": 3}
	for _, c := range calls {
		for _, who := range []string{"", "viewer", "operator", "admin"} {
			body := c.body
			if strings.Contains(body, "%s") {
				body = strings.ReplaceAll(body, "%s", who+"x")
			}
			req, _ := http.NewRequestWithContext(ctx, c.method, ts.URL+c.path, strings.NewReader(body))
			if who != "" {
				req.Header.Set("Authorization", "Bearer "+tokens[who])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := "allowed"
			switch {
			case who == "":
				want = "401"
			case rank[who] < rank[c.least]:
				want = "403"
			}
			got := "allowed"
			if resp.StatusCode == 401 || resp.StatusCode == 403 {
				got = resp.Status[:3]
			} else if resp.StatusCode >= 400 {
				t.Errorf("%s %s as %q: %s %s", c.method, c.path, who, resp.Status, b)
				continue
			}
			if got != want {
				t.Errorf("%s %s as %q: got %s (%s), want %s", c.method, c.path, who, resp.Status, b, want)
			}
			if got != "allowed" {
				var eb api.ErrorBody
				if json.Unmarshal(b, &eb) != nil || eb.Error.Message == "" {
					t.Errorf("%s %s as %q: error body %s is not a JSON error with a message", c.method, c.path, who, b)
				}
			}
		}
	}
	// Viewers may change their own password but not another user's.
	viewer := ts.client(t, tokens["viewer"])
	if err := viewer.SetPassword(ctx, "viewer1", "a new password!"); err != nil {
		t.Fatalf("viewer sets own password: %v", err)
	}
	if err := viewer.SetPassword(ctx, "operator1", "a new password!"); !api.IsStatus(err, 403) {
		t.Fatalf("viewer sets another's password: %v, want 403", err)
	}
	// A deleted token stops working at once.
	toks, err := viewer.Tokens(ctx, "")
	if err != nil || len(toks) != 2 {
		t.Fatalf("viewer's tokens = %v, %v; want the two created", toks, err)
	}
	_, inUse, _, _ := parseToken(tokens["viewer"])
	for _, tk := range toks {
		if tk.ID != inUse {
			if err := viewer.DeleteToken(ctx, "", tk.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := viewer.DeleteToken(ctx, "operator1", inUse); !api.IsStatus(err, 403) {
		t.Fatalf("viewer deletes another user's token: %v, want 403", err)
	}
	if err := viewer.DeleteToken(ctx, "", inUse); err != nil {
		t.Fatalf("viewer deletes the token it uses: %v", err)
	}
	if _, err := viewer.Whoami(ctx); !api.IsStatus(err, 401) {
		t.Fatalf("whoami with a deleted token: %v, want 401", err)
	}
	for _, bad := range []string{"nonsense", "r2m.x.y.z", "r2m." + strings.Repeat("A", 10) + ".id.secret"} {
		if _, err := ts.client(t, bad).Whoami(ctx); !api.IsStatus(err, 401) {
			t.Errorf("whoami with token %q: %v, want 401", bad, err)
		}
	}
}

func TestConsoleSessionNeedsCSRF(t *testing.T) {
	ts := startLeader(t, testenv_SharedEtcdURL(t))
	ctx := ctxT(t)
	admin := ts.adminClient(t)
	if _, err := admin.CreateUser(ctx, api.NewUser{Name: "alice", Role: "admin", Password: "alice's password"}); err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	t.Cleanup(hc.CloseIdleConnections)
	// post returns the response with its body already read into a buffer,
	// so no connection is left busy.
	post := func(path, body string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		return resp
	}
	get := func(path string) int {
		resp, err := hc.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if resp := post("/api/v1/login", `{"user":"alice","password":"wrong password"}`, nil); resp.StatusCode != 401 {
		t.Fatalf("login with a wrong password: %s", resp.Status)
	}
	if resp := post("/api/v1/login", `{"user":"nobody","password":"wrong password"}`, nil); resp.StatusCode != 401 {
		t.Fatalf("login as an unknown user: %s", resp.Status)
	}
	resp := post("/api/v1/login", `{"user":"alice","password":"alice's password"}`, nil)
	var who api.Whoami
	if err := json.NewDecoder(resp.Body).Decode(&who); err != nil || resp.StatusCode != 200 || who.CSRFToken == "" {
		t.Fatalf("login: %s %+v %v", resp.Status, who, err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie && (!c.HttpOnly || c.SameSite != http.SameSiteStrictMode) {
			t.Fatalf("session cookie %+v: want HttpOnly and SameSite=Strict", c)
		}
	}
	// Reads with the cookie work without the CSRF header.
	if st := get("/api/v1/whoami"); st != 200 {
		t.Fatalf("whoami with the session cookie: %d", st)
	}
	// A mutation without the header is refused; with it, it works.
	body := `{"name":"bob","role":"viewer","password":"bob's password"}`
	if r := post("/api/v1/users", body, nil); r.StatusCode != 403 {
		t.Fatalf("POST /users with the cookie but no CSRF header: %s, want 403", r.Status)
	}
	if r := post("/api/v1/users", body, map[string]string{csrfHeader: "forged"}); r.StatusCode != 403 {
		t.Fatalf("POST /users with a wrong CSRF header: %s, want 403", r.Status)
	}
	if r := post("/api/v1/users", body, map[string]string{csrfHeader: who.CSRFToken}); r.StatusCode != 201 {
		b, _ := io.ReadAll(r.Body)
		t.Fatalf("POST /users with the CSRF header: %s %s, want 201", r.Status, b)
	}
	if r := post("/api/v1/logout", `{}`, nil); r.StatusCode != 204 {
		t.Fatalf("logout: %s", r.Status)
	}
	if st := get("/api/v1/whoami"); st != 401 {
		t.Fatalf("whoami after logout: %d, want 401", st)
	}
}

func TestBadInputGetsClearErrors(t *testing.T) {
	ts := startLeader(t, testenv_SharedEtcdURL(t))
	ctx := ctxT(t)
	tok, _ := os.ReadFile(AdminTokenPath(ts.DataDir))
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		wantMsg, wantField       string
	}{
		{"unknown field", "POST", "/api/v1/users", `{"name":"x","role":"viewer","password":"0123456789","colour":"red"}`, 400, "unknown field", "colour"},
		{"wrong type", "POST", "/api/v1/users", `{"name":5}`, 400, "want string", "name"},
		{"not json", "POST", "/api/v1/users", `{name:`, 400, "invalid JSON", ""},
		{"empty body", "POST", "/api/v1/users", ``, 400, "empty", ""},
		{"two objects", "POST", "/api/v1/users", `{} {}`, 400, "unexpected data", ""},
		{"missing name", "POST", "/api/v1/users", `{"role":"viewer","password":"0123456789"}`, 400, "name is required", "name"},
		{"bad name", "POST", "/api/v1/users", `{"name":"../x","role":"viewer","password":"0123456789"}`, 400, "invalid name", "name"},
		{"bad role", "POST", "/api/v1/users", `{"name":"x","role":"god","password":"0123456789"}`, 400, "want viewer, operator or admin", "role"},
		{"short password", "POST", "/api/v1/users", `{"name":"x","role":"viewer","password":"short"}`, 400, "at least", "password"},
		{"bad ttl", "POST", "/api/v1/tokens", `{"ttl":"forever"}`, 400, "ttl", "ttl"},
		{"no such user", "GET", "/api/v1/users/ghost", ``, 404, "no user", ""},
		{"no such endpoint", "GET", "/api/v1/nothing", ``, 404, "no API endpoint", ""},
		{"delete self", "DELETE", "/api/v1/users/admin", ``, 400, "yourself", "name"},
	} {
		req, _ := http.NewRequestWithContext(ctx, tc.method, ts.URL+tc.path, bytes.NewBufferString(tc.body))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var eb api.ErrorBody
		err = json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		if resp.StatusCode != tc.status || err != nil || !strings.Contains(eb.Error.Message, tc.wantMsg) || eb.Error.Field != tc.wantField {
			t.Errorf("%s: %s %+v (decode %v); want %d, message containing %q, field %q", tc.name, resp.Status, eb.Error, err, tc.status, tc.wantMsg, tc.wantField)
		}
	}
}

func TestAuditRecordsMutationsWithoutSecrets(t *testing.T) {
	ts := startLeader(t, testenv_SharedEtcdURL(t))
	ctx := ctxT(t)
	admin := ts.adminClient(t)
	const pw = "a very secret password"
	if _, err := admin.CreateUser(ctx, api.NewUser{Name: "carol", Role: "operator", Password: pw}); err != nil {
		t.Fatal(err)
	}
	tok, err := admin.CreateToken(ctx, api.NewToken{User: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateUser(ctx, api.NewUser{Name: "carol", Role: "operator", Password: pw}); !api.IsStatus(err, 409) {
		t.Fatalf("creating carol twice: %v, want 409", err)
	}
	entries, err := admin.Audit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(entries)
	if strings.Contains(string(b), pw) || strings.Contains(string(b), tok.Secret) {
		t.Fatal("the audit log contains a password or token secret")
	}
	var sawCreate, sawConflict bool
	for _, e := range entries {
		if e.User == "admin" && e.Action == "POST /api/v1/users" && e.Status == 201 {
			sawCreate = true
		}
		if e.Action == "POST /api/v1/users" && e.Status == 409 && e.Result != "ok" {
			sawConflict = true
		}
	}
	if !sawCreate || !sawConflict {
		t.Fatalf("audit entries %s: want the user creation and the refused duplicate", b)
	}
	if strings.Contains(ts.Log.String(), pw) || strings.Contains(ts.Log.String(), tok.Secret) {
		t.Fatal("the server log contains a password or token secret")
	}
}

// TestEveryRouteEnforcesItsRole walks every API route the server registers:
// without credentials it must answer 401, and for every role below the
// route's least role it must answer 403, whatever the body.
func TestEveryRouteEnforcesItsRole(t *testing.T) {
	ts := startLeader(t, testenv_SharedEtcdURL(t))
	ctx := ctxT(t)
	admin := ts.adminClient(t)
	tokens := map[string]string{}
	for _, role := range []string{"viewer", "operator"} {
		if _, err := admin.CreateUser(ctx, api.NewUser{Name: "m-" + role, Role: role, Password: "a long password"}); err != nil {
			t.Fatal(err)
		}
		tok, err := admin.CreateToken(ctx, api.NewToken{User: "m-" + role})
		if err != nil {
			t.Fatal(err)
		}
		tokens[role] = tok.Secret
	}
	rank := map[string]int{"viewer": 1, "operator": 2, "admin": 3}
	checked := 0
	for _, rr := range ts.routeRoles {
		if rr.role == "" {
			continue // login and logout
		}
		method, pattern, _ := strings.Cut(rr.pattern, " ")
		// A user route names the caller itself, so that what is checked is
		// the role, not the rule that only admins touch other users.
		call := func(token string) int {
			self := "x"
			for role, tok := range tokens {
				if tok == token {
					self = "m-" + role
				}
			}
			path := strings.NewReplacer("{app}", "x", "{id}", "x").Replace(pattern)
			if strings.HasPrefix(path, "/api/v1/users/") {
				path = strings.ReplaceAll(path, "{name}", self)
			}
			path = strings.ReplaceAll(path, "{name}", "x")
			req, _ := http.NewRequestWithContext(ctx, method, ts.URL+path, strings.NewReader(`{}`))
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode
		}
		if got := call(""); got != 401 {
			t.Errorf("%s without credentials: %d, want 401", rr.pattern, got)
		}
		for role, tok := range tokens {
			got := call(tok)
			if rank[role] < rank[string(rr.role)] && got != 403 {
				t.Errorf("%s as %s (needs %s): %d, want 403", rr.pattern, role, rr.role, got)
			}
			if rank[role] >= rank[string(rr.role)] && (got == 401 || got == 403) {
				t.Errorf("%s as %s (needs %s): %d, want it allowed", rr.pattern, role, rr.role, got)
			}
		}
		checked++
	}
	if checked < 25 {
		t.Fatalf("checked only %d routes", checked)
	}
	t.Logf("%d routes checked for 401 and 403", checked)
}
