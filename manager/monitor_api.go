package manager

import (
	"errors"
	"net/http"
	"time"

	"github.com/r2m-go/r2m/meta"
	"github.com/r2m-go/r2m/monitor"
)

// The monitoring routes are thin: the monitor validates (its errors name
// the field) and does the work.

func (s *Server) monitorRoutes() {
	if s.cfg.Monitor == nil {
		return
	}
	m := s.cfg.Monitor
	name := func(r *http.Request) string { return r.PathValue("name") }
	// /metrics: Prometheus exposition. Behind a viewer token unless the
	// operator opened it (Config.PublicMetrics): it names clusters and apps.
	if s.cfg.PublicMetrics {
		s.mux.Handle("GET /metrics", m.MetricsHandler())
		s.patterns = append(s.patterns, "GET /metrics")
	} else {
		s.streamRoute("GET /metrics", meta.Viewer, m.MetricsHandler().ServeHTTP)
	}
	s.handle("GET /api/v1/monitor/metrics", route{role: meta.Viewer, h: func(*http.Request, *principal) (any, error) {
		return monitor.Metrics(), nil
	}})
	// History lives in the leader's database: followers forward these reads.
	s.handle("GET /api/v1/monitor/series", route{role: meta.Viewer, leaderRead: true, h: func(r *http.Request, _ *principal) (any, error) {
		q, err := monitor.SeriesQueryFromURL(r.URL.Query(), time.Now())
		if err != nil {
			return nil, err
		}
		return m.Series(r.Context(), q)
	}})
	s.handle("GET /api/v1/monitor/alerts/history", route{role: meta.Viewer, leaderRead: true, h: func(r *http.Request, _ *principal) (any, error) {
		q, err := monitor.AlertHistoryQueryFromURL(r.URL.Query(), time.Now())
		if err != nil {
			return nil, err
		}
		return m.AlertHistory(r.Context(), q)
	}})
	s.handle("GET /api/v1/monitor/alerts", route{role: meta.Viewer, h: func(r *http.Request, _ *principal) (any, error) {
		return m.Alerts(r.Context())
	}})
	s.handle("GET /api/v1/monitor/rules", route{role: meta.Viewer, h: func(r *http.Request, _ *principal) (any, error) {
		return m.Rules(r.Context())
	}})
	s.handle("GET /api/v1/monitor/rules/{name}", route{role: meta.Viewer, h: func(r *http.Request, _ *principal) (any, error) {
		return m.Rule(r.Context(), r.PathValue("name"))
	}})
	s.handle("PUT /api/v1/monitor/rules/{name}", route{role: meta.Operator, mutating: true, target: name, h: func(r *http.Request, p *principal) (any, error) {
		var rule monitor.Rule
		if err := decode(r, &rule); err != nil {
			return nil, err
		}
		if rule.Name != "" && rule.Name != r.PathValue("name") {
			return nil, badRequest("name", "name %q in the body does not match %q in the path", rule.Name, r.PathValue("name"))
		}
		rule.Name, rule.UpdatedBy = r.PathValue("name"), p.User
		return m.SetRule(r.Context(), rule)
	}})
	s.handle("DELETE /api/v1/monitor/rules/{name}", route{role: meta.Operator, mutating: true, target: name, h: func(r *http.Request, _ *principal) (any, error) {
		return nil, m.DeleteRule(r.Context(), r.PathValue("name"))
	}})
	s.handle("GET /api/v1/monitor/channels", route{role: meta.Operator, h: func(r *http.Request, _ *principal) (any, error) {
		return m.Channels(r.Context())
	}})
	s.handle("GET /api/v1/monitor/channels/{name}", route{role: meta.Operator, h: func(r *http.Request, _ *principal) (any, error) {
		return m.Channel(r.Context(), r.PathValue("name"))
	}})
	s.handle("PUT /api/v1/monitor/channels/{name}", route{role: meta.Admin, mutating: true, target: name, h: func(r *http.Request, p *principal) (any, error) {
		var c monitor.Channel
		if err := decode(r, &c); err != nil {
			return nil, err
		}
		if c.Name != "" && c.Name != r.PathValue("name") {
			return nil, badRequest("name", "name %q in the body does not match %q in the path", c.Name, r.PathValue("name"))
		}
		c.Name, c.UpdatedBy = r.PathValue("name"), p.User
		return m.SetChannel(r.Context(), c)
	}})
	s.handle("DELETE /api/v1/monitor/channels/{name}", route{role: meta.Admin, mutating: true, target: name, h: func(r *http.Request, _ *principal) (any, error) {
		return nil, m.DeleteChannel(r.Context(), r.PathValue("name"))
	}})
	// A test send that the webhook refuses is a result to show, not a
	// failure of this server: the answer is the delivery, with ok false and
	// the reason.
	s.handle("POST /api/v1/monitor/channels/{name}/test", route{role: meta.Operator, audited: true, target: name, h: func(r *http.Request, _ *principal) (any, error) {
		d, err := m.TestChannel(r.Context(), r.PathValue("name"))
		if errors.Is(err, monitor.ErrDelivery) {
			return d, nil
		}
		return d, err
	}})
}
