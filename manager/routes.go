package manager

import (
	"context"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/meta"
)

// apiFunc handles one API request for an authenticated caller and returns
// the response body (encoded as JSON with status 200, or the status of a
// [created] wrapper) or an error.
type apiFunc func(r *http.Request, p *principal) (any, error)

// created marks a response as 201 Created.
type created struct{ v any }

// accepted marks a response as 202 Accepted: an operation that runs on.
type accepted struct{ v any }

// route describes one endpoint.
type route struct {
	// role is the least role that may call it; "" means no authentication.
	role meta.UserRole
	// mutating endpoints are executed by the leader and audited.
	mutating bool
	// audited endpoints are recorded in the audit log though they change
	// nothing (reading a secret).
	audited bool
	// leaderRead endpoints read state only the leader has (monitoring
	// history); followers forward them without auditing.
	leaderRead bool
	// target names what the mutation acts on, for the audit log.
	target func(r *http.Request) string
	h      apiFunc
}

// routeRole records the least role of a route, for the role matrix test.
type routeRole struct {
	pattern string
	role    meta.UserRole
}

// forwardedHeader marks a request a follower forwarded to the leader.
const forwardedHeader = "X-R2M-Forwarded-By"

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.patterns = append(s.patterns, "GET /healthz")

	pathValue := func(name string) func(*http.Request) string {
		return func(r *http.Request) string { return r.PathValue(name) }
	}
	s.handle("POST /api/v1/login", route{h: s.login})
	s.handle("POST /api/v1/logout", route{h: s.logout})
	s.handle("GET /api/v1/whoami", route{role: meta.Viewer, h: s.whoami})

	s.handle("GET /api/v1/users", route{role: meta.Admin, h: s.listUsers})
	s.handle("POST /api/v1/users", route{role: meta.Admin, mutating: true, h: s.createUser})
	s.handle("GET /api/v1/users/{name}", route{role: meta.Admin, h: s.getUser})
	s.handle("DELETE /api/v1/users/{name}", route{role: meta.Admin, mutating: true, target: pathValue("name"), h: s.deleteUser})
	s.handle("PUT /api/v1/users/{name}/password", route{role: meta.Viewer, mutating: true, target: pathValue("name"), h: s.setPassword})
	s.handle("PUT /api/v1/users/{name}/role", route{role: meta.Admin, mutating: true, target: pathValue("name"), h: s.setRole})

	s.handle("GET /api/v1/tokens", route{role: meta.Viewer, h: s.listTokens})
	s.handle("POST /api/v1/tokens", route{role: meta.Viewer, mutating: true, h: s.createToken})
	s.handle("DELETE /api/v1/tokens/{id}", route{role: meta.Viewer, mutating: true, target: pathValue("id"), h: s.deleteToken})

	s.handle("GET /api/v1/audit", route{role: meta.Admin, h: s.listAudit})

	s.handle("GET /api/v1/apps", route{role: meta.Viewer, h: s.listApps})
	s.handle("POST /api/v1/apps", route{role: meta.Operator, mutating: true, h: s.createApp})
	s.handle("GET /api/v1/apps/{app}", route{role: meta.Viewer, h: s.getApp})
	s.handle("PUT /api/v1/apps/{app}/config", route{role: meta.Operator, mutating: true, target: pathValue("app"), h: s.setAppConfig})
	s.handle("GET /api/v1/apps/{app}/clients", route{role: meta.Viewer, h: s.appClients})
	// The command console audits each command itself, with its name.
	s.handle("POST /api/v1/apps/{app}/command", route{role: meta.Viewer, h: s.runCommand})

	s.handle("GET /api/v1/agents", route{role: meta.Viewer, h: s.listAgents})
	s.handle("GET /api/v1/clusters", route{role: meta.Viewer, h: s.listClusters})
	s.handle("POST /api/v1/clusters", route{role: meta.Operator, mutating: true, h: s.createCluster})
	s.handle("POST /api/v1/clusters/adopt", route{role: meta.Operator, mutating: true, h: s.adoptCluster})
	s.handle("GET /api/v1/clusters/{name}", route{role: meta.Viewer, h: s.getCluster})
	s.handle("GET /api/v1/clusters/{name}/check", route{role: meta.Viewer, h: s.checkClusterAPI})
	s.handle("GET /api/v1/clusters/{name}/credentials", route{role: meta.Admin, audited: true, target: pathValue("name"), h: s.clusterCredentials})
	for kind := range s.kinds {
		if kind == "adopt" || kind == "create" {
			continue
		}
		s.handle("POST /api/v1/clusters/{name}/"+kind, route{role: meta.Operator, mutating: true, target: pathValue("name"), h: s.startOp(kind)})
	}

	s.handle("GET /api/v1/ops", route{role: meta.Viewer, h: s.listOps})
	s.handle("GET /api/v1/ops/{id}", route{role: meta.Viewer, h: s.getOp})
	s.streamRoute("GET /api/v1/ops/{id}/events", meta.Viewer, s.opEvents)
	for _, action := range []string{"pause", "resume", "cancel"} {
		s.handle("POST /api/v1/ops/{id}/"+action, route{role: meta.Operator, mutating: true, target: pathValue("id"), h: s.controlOp(action)})
	}
	s.handle("PUT /api/v1/ops/{id}/throttle", route{role: meta.Operator, mutating: true, target: pathValue("id"), h: s.throttleOp})

	s.monitorRoutes()
	s.syncRoutes()

	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, notFound("no API endpoint %s %s", r.Method, r.URL.Path))
	})
	if s.cfg.Console != nil {
		s.mux.Handle("/", s.cfg.Console(s.mux))
	}
}

// handle registers an endpoint with the shared steps every request goes
// through: authentication, the role check, CSRF for console sessions,
// forwarding of mutations to the leader, the handler, and the audit record.
func (s *Server) handle(pattern string, rt route) {
	s.patterns = append(s.patterns, pattern)
	s.routeRoles = append(s.routeRoles, routeRole{pattern: pattern, role: rt.role})
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		var p *principal
		if rt.role != "" {
			var err error
			if p, err = s.authenticate(r); err != nil {
				s.writeError(w, r, err)
				return
			}
			if !p.allows(rt.role) {
				s.writeError(w, r, forbidden(string(rt.role)+" role required; "+p.User+" is "+string(p.Role)))
				return
			}
			// Every cookie-authenticated request that is not a plain read
			// carries the CSRF token, mutation of R2M's state or not (the
			// command console writes to Redis).
			if p.viaSession && r.Method != http.MethodGet && r.Method != http.MethodHead {
				if err := s.checkCSRF(r); err != nil {
					s.writeError(w, r, err)
					return
				}
			}
		}
		if (rt.mutating || rt.leaderRead) && !s.IsLeader() {
			s.forward(w, r)
			return
		}
		r = r.WithContext(context.WithValue(withPrincipal(r.Context(), p), writerKey{}, w))
		v, err := rt.h(r, p)
		status := http.StatusOK
		if err != nil {
			status = toHTTPError(err).status
			s.writeError(w, r, err)
		} else if c, ok := v.(created); ok {
			status = http.StatusCreated
			writeJSON(w, status, c.v)
		} else if a, ok := v.(accepted); ok {
			status = http.StatusAccepted
			writeJSON(w, status, a.v)
		} else if v == nil {
			w.WriteHeader(http.StatusNoContent)
			status = http.StatusNoContent
		} else {
			writeJSON(w, status, v)
		}
		if (rt.mutating || rt.audited) && p != nil {
			target := ""
			if rt.target != nil {
				target = rt.target(r)
			}
			s.audit(p.User, r.Method+" "+r.URL.Path, target, status, err)
		}
	})
}

// forward sends a mutation to the leader. A request that was already
// forwarded once is refused rather than forwarded again, so two servers that
// disagree about the leader cannot bounce it between them.
func (s *Server) forward(w http.ResponseWriter, r *http.Request) {
	_, leader := s.lead.get()
	if leader == nil || leader.Addr == "" {
		s.writeError(w, r, &httpError{status: http.StatusServiceUnavailable, code: "not_leader", msg: "no leader elected yet; retry shortly"})
		return
	}
	if r.Header.Get(forwardedHeader) != "" {
		s.writeError(w, r, &httpError{status: http.StatusServiceUnavailable, code: "not_leader", msg: "this server is not the leader; retry shortly"})
		return
	}
	target := &url.URL{Scheme: "http", Host: leader.Addr}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = leader.Addr
			pr.Out.Header.Set(forwardedHeader, s.id)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.writeError(w, r, unavailable("cannot reach the leader at "+leader.Addr, err))
		},
	}
	proxy.ServeHTTP(w, r)
}

// audit records a mutation. A failure to record is logged, not returned:
// the mutation has happened either way.
func (s *Server) audit(user, action, target string, status int, err error) {
	now := time.Now().UTC()
	e := &meta.AuditEntry{
		ID:   strings.ReplaceAll(now.Format("20060102T150405.000000000"), ".", "") + "-" + strings.NewReplacer("_", "x", "-", "y").Replace(randomString(3)),
		Time: now, User: user, Action: action, Target: target, Status: status, Result: "ok",
	}
	if err != nil {
		e.Result = toHTTPError(err).msg
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if werr := s.store.AuditEntry(e.ID).Create(ctx, e); werr != nil {
		s.log.Error("audit record not written", "user", user, "action", action, "err", werr)
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	isLeader, leader := s.lead.get()
	h := api.Health{Status: "ok", ID: s.id, IsLeader: isLeader, Coordinator: s.cfg.Coordinator.String(), Version: version()}
	if isLeader {
		h.Leader = s.id
	} else if leader != nil {
		h.Leader = leader.ID
	}
	writeJSON(w, http.StatusOK, h)
}

type writerKey struct{}

// responseWriterFrom gives handlers that must set headers (login's cookie)
// the response writer; everything else only returns a value.
func responseWriterFrom(r *http.Request) http.ResponseWriter {
	return r.Context().Value(writerKey{}).(http.ResponseWriter)
}
