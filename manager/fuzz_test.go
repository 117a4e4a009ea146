package manager

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/r2m-go/r2m/api"
)

// FuzzAPI sends arbitrary methods, paths and bodies, with a valid admin
// token, to every route. No request may cause a panic or a 5xx, and every
// error must be a JSON error that says what was wrong. The seeds run with
// the normal tests; go test -fuzz FuzzAPI explores further.
func FuzzAPI(f *testing.F) {
	for _, seed := range []struct{ method, path, body string }{
		{"POST", "/api/v1/users", `{"name":"fz","role":"viewer","password":"0123456789"}`},
		{"POST", "/api/v1/users", `{"name":"","role":"","password":""}`},
		{"POST", "/api/v1/users", `[1,2,3]`},
		{"POST", "/api/v1/users", `{"name":{"a":1}}`},
		{"PUT", "/api/v1/users/admin/role", `{"role":null}`},
		{"PUT", "/api/v1/users/%00/password", `{"password":"x"}`},
		{"POST", "/api/v1/tokens", `{"ttl":"-1h"}`},
		{"POST", "/api/v1/tokens", `{"user":"../../etc"}`},
		{"DELETE", "/api/v1/tokens/..", ``},
		{"POST", "/api/v1/apps", `{"name":"a","cluster":"c"}`},
		{"PUT", "/api/v1/apps/x/config", `{"pool_size":1e99}`},
		{"GET", "/api/v1/apps/%2e%2e/clients", ``},
		{"POST", "/api/v1/clusters/adopt", `{"name":"x","seed":"256.0.0.1:0"}`},
		{"POST", "/api/v1/clusters/adopt", `{"dry_run":"yes"}`},
		{"POST", "/api/v1/clusters/nope/reshard", `{"from":"a","to":"b","slots":-3,"throttle":-1}`},
		{"POST", "/api/v1/clusters/nope/rebalance", `{"weights":{"a":-1}}`},
		{"POST", "/api/v1/ops/none/pause", `{}`},
		{"PUT", "/api/v1/ops/none/throttle", `{"keys_per_sec":"fast"}`},
		{"GET", "/api/v1/clusters/" + strings.Repeat("a", 300), ``},
		{"PATCH", "/api/v1/users", `{}`},
		{"POST", "/api/v1/login", `{"user":"admin","password":"` + strings.Repeat("x", 100) + `"}`},
	} {
		f.Add(seed.method, seed.path, seed.body)
	}
	// One server for every input: starting one per input would dominate
	// the run.
	fuzzServer := startLeader(f, testenv_SharedEtcdURL(f))
	fuzzToken := mustRead(f, AdminTokenPath(fuzzServer.DataDir))
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(method, " \t\r\n") || method == "" {
			return // not an HTTP request line at all
		}
		req, err := http.NewRequest(method, "http://r2m"+path, bytes.NewBufferString(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+fuzzToken)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		fuzzServer.Handler().ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s %q: status %d: %s", method, path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && strings.HasPrefix(path, "/api/") && rec.Code != http.StatusMethodNotAllowed {
			var eb api.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Message == "" || eb.Error.Code == "" {
				t.Fatalf("%s %s %q: status %d with body %q, want a JSON error with code and message", method, path, body, rec.Code, rec.Body)
			}
		}
	})
}
