package manager

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/meta"
	"github.com/r2m-go/r2m/monitor"
)

// httpError is an error with the HTTP status and API error code it maps to.
type httpError struct {
	status int
	code   string
	field  string
	msg    string
	err    error // the cause, for logs; never shown to callers of 5xx
}

func (e *httpError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *httpError) Unwrap() error { return e.err }

func badRequest(field, format string, args ...any) error {
	return &httpError{status: http.StatusBadRequest, code: "bad_request", field: field, msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &httpError{status: http.StatusNotFound, code: "not_found", msg: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return &httpError{status: http.StatusConflict, code: "conflict", msg: fmt.Sprintf(format, args...)}
}

func unauthorized(msg string) error {
	return &httpError{status: http.StatusUnauthorized, code: "unauthorized", msg: msg}
}

func forbidden(msg string) error {
	return &httpError{status: http.StatusForbidden, code: "forbidden", msg: msg}
}

func unavailable(msg string, err error) error {
	return &httpError{status: http.StatusServiceUnavailable, code: "unavailable", msg: msg, err: err}
}

// toHTTPError classifies any error for the response. Errors from the
// coordinator and meta map to their natural statuses; anything else is an
// internal error whose details go to the log, not to the caller.
func toHTTPError(err error) *httpError {
	var (
		he *httpError
		fe *monitor.FieldError
	)
	switch {
	case errors.As(err, &he):
		return he
	case errors.As(err, &fe):
		return &httpError{status: http.StatusBadRequest, code: "bad_request", field: fe.Field, msg: err.Error()}
	case errors.Is(err, monitor.ErrNotFound):
		return &httpError{status: http.StatusNotFound, code: "not_found", msg: err.Error()}
	case errors.Is(err, monitor.ErrInUse):
		return &httpError{status: http.StatusConflict, code: "conflict", msg: err.Error()}
	case errors.Is(err, monitor.ErrClosed):
		return &httpError{status: http.StatusServiceUnavailable, code: "unavailable", msg: "monitoring is shut down", err: err}
	case errors.Is(err, meta.ErrInvalidName), errors.Is(err, coord.ErrInvalidPath):
		return &httpError{status: http.StatusBadRequest, code: "bad_request", msg: err.Error()}
	case errors.Is(err, coord.ErrNotFound):
		return &httpError{status: http.StatusNotFound, code: "not_found", msg: "not found", err: err}
	case errors.Is(err, coord.ErrExists):
		return &httpError{status: http.StatusConflict, code: "conflict", msg: "already exists", err: err}
	case errors.Is(err, coord.ErrVersionConflict), errors.Is(err, meta.ErrTooManyConflicts):
		return &httpError{status: http.StatusConflict, code: "conflict", msg: "changed concurrently; retry", err: err}
	case errors.Is(err, coord.ErrUnavailable), errors.Is(err, coord.ErrClosed):
		return &httpError{status: http.StatusServiceUnavailable, code: "unavailable", msg: "coordinator unavailable", err: err}
	}
	return &httpError{status: http.StatusInternalServerError, code: "internal", msg: "internal error", err: err}
}
