package monitor

import (
	"errors"
	"fmt"
)

// Errors callers branch on with errors.Is.
var (
	// ErrClosed: the Monitor has been closed.
	ErrClosed = errors.New("monitor: closed")
	// ErrRunning: Run was called while another Run of the same Monitor
	// is still going.
	ErrRunning = errors.New("monitor: already running")
	// ErrInvalid is wrapped by every [*FieldError]: the caller's input was
	// wrong (an API handler answers 400).
	ErrInvalid = errors.New("monitor: invalid input")
	// ErrNotFound: the named rule or channel does not exist (404).
	ErrNotFound = errors.New("monitor: not found")
	// ErrInUse: a channel that rules still name cannot be deleted (409).
	ErrInUse = errors.New("monitor: in use")
	// ErrDelivery: a notification channel refused or did not answer a
	// message (TestChannel's failure; 502 for an API).
	ErrDelivery = errors.New("monitor: notification not delivered")
)

// FieldError says which field of a request was wrong and why. Validation
// returns every problem, joined; errors.As finds the first.
type FieldError struct {
	// Field is the JSON name of the field, with a path for nested ones:
	// "threshold", "clusters.orders-1.for", "channels[0]".
	Field   string
	Message string
}

func (e *FieldError) Error() string { return "monitor: " + e.Field + ": " + e.Message }

// Unwrap makes every FieldError an ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// notFound wraps ErrNotFound with what was missing.
func notFound(kind, name string) error { return fmt.Errorf("%w: %s %q", ErrNotFound, kind, name) }
