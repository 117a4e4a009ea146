package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/r2m-go/r2m/api"
)

// apiError is an API answer with an error status, as the console got it
// in-process: the status and the API's error body.
type apiError struct {
	Status int
	api.ErrorDetail
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (HTTP %d, %s)", e.Message, e.Status, e.Code)
}

// statusOf returns the HTTP status of an API error, or 0.
func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// get reads an API path in-process as the visitor of r: a GET with the
// visitor's Cookie header and nothing else of theirs, served by the API
// handler into a recorder. It decodes a JSON answer into out (which may be
// nil), and returns an *apiError for an error status, so the API's own
// authentication, role checks and messages decide what the page shows.
func (c *console) get(r *http.Request, path string, out any) error {
	if !strings.HasPrefix(path, "/api/v1/") {
		// The API handler also routes "/" to the console; a path outside
		// the API would come straight back here.
		return fmt.Errorf("web: in-process call to %q: not an API path", path)
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, path, nil)
	if err != nil {
		return fmt.Errorf("web: in-process call to %q: %w", path, err)
	}
	if ck := r.Header.Get("Cookie"); ck != "" {
		req.Header.Set("Cookie", ck)
	}
	req.Header.Set("Accept", "application/json")
	req.RemoteAddr = r.RemoteAddr
	req.Host = r.Host
	rec := httptest.NewRecorder()
	c.api.ServeHTTP(rec, req)
	body := rec.Body.Bytes()
	if rec.Code >= 400 {
		var eb api.ErrorBody
		if json.Unmarshal(body, &eb) != nil || eb.Error.Code == "" {
			eb.Error = api.ErrorDetail{Code: "http", Message: strings.TrimSpace(string(body))}
		}
		return &apiError{Status: rec.Code, ErrorDetail: eb.Error}
	}
	if out == nil || rec.Code == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("web: GET %s: decode the API's answer: %w", path, err)
	}
	return nil
}
