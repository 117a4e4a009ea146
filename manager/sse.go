package manager

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/meta"
)

// streamRoute registers a server-sent-events endpoint: authenticated and
// role-checked like every route, but writing its own response.
func (s *Server) streamRoute(pattern string, role meta.UserRole, h func(w http.ResponseWriter, r *http.Request)) {
	s.patterns = append(s.patterns, pattern)
	s.routeRoles = append(s.routeRoles, routeRole{pattern: pattern, role: role})
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if !p.allows(role) {
			s.writeError(w, r, forbidden(string(role)+" role required"))
			return
		}
		h(w, r)
	})
}

// sseKeepAlive is how often an idle stream sends a comment, so proxies and
// browsers keep it open.
const sseKeepAlive = 15 * time.Second

// opEvents streams an operation as server-sent events: one "op" event with
// the operation (as GET /api/v1/ops/{id} returns it) whenever its record
// changes, and a final "done" event when it has ended. The console's
// operation page follows it instead of polling.
func (s *Server) opEvents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ctx := r.Context()
	if _, _, err := s.store.Op(id).Get(ctx); errors.Is(err, coord.ErrNotFound) || errors.Is(err, meta.ErrInvalidName) {
		s.writeError(w, r, notFound("no operation %q", id))
		return
	} else if err != nil {
		s.writeError(w, r, err)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		s.writeError(w, r, errors.New("streaming unsupported by the connection"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	keep := time.NewTicker(sseKeepAlive)
	defer keep.Stop()
	events := s.store.Op(id).Watch(ctx)
	for {
		select {
		case ev, open := <-events:
			if !open || ev.Err != nil {
				return
			}
			if ev.Value == nil {
				continue
			}
			b, err := json.Marshal(toAPIOp(ev.Value))
			if err != nil {
				return
			}
			fmt.Fprintf(w, "event: op\ndata: %s\n\n", b)
			if ev.Value.State.Done() { // the final write carries the check result too
				fmt.Fprintf(w, "event: done\ndata: %s\n\n", b)
				fl.Flush()
				return
			}
			fl.Flush()
		case <-keep.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			fl.Flush()
		case <-ctx.Done():
			return
		}
	}
}
