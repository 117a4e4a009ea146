package coord

import (
	"errors"
	"strings"
)

// Errors that callers branch on with errors.Is. Every error a Coordinator
// returns for a node operation is an [*Error] that wraps one of these, or the
// backend's own error when none applies.
var (
	// ErrNotFound: the node does not exist.
	ErrNotFound = errors.New("coord: node does not exist")
	// ErrExists: Create found the node already there.
	ErrExists = errors.New("coord: node already exists")
	// ErrVersionConflict: the node's version is not the one the caller
	// expected; re-read and retry.
	ErrVersionConflict = errors.New("coord: version conflict")
	// ErrNotEmpty: Delete of a node that still has children.
	ErrNotEmpty = errors.New("coord: node has children")
	// ErrEphemeralParent: Create under an ephemeral node, which cannot have
	// children.
	ErrEphemeralParent = errors.New("coord: ephemeral nodes cannot have children")
	// ErrInvalidPath: the path is not absolute, has empty, "." or ".."
	// segments, a trailing slash, or control characters.
	ErrInvalidPath = errors.New("coord: invalid path")
	// ErrClosed: the Coordinator has been closed.
	ErrClosed = errors.New("coord: coordinator closed")
	// ErrSessionExpired: the operation needed the session (creating an
	// ephemeral) but the server had ended it. A new session is being set up;
	// retry after the next SessionConnected event.
	ErrSessionExpired = errors.New("coord: session expired")
	// ErrUnavailable: the servers could not be reached. The outcome of a
	// write that fails this way is unknown: it may have been applied.
	ErrUnavailable = errors.New("coord: coordinator unavailable")
	// ErrCloseUnconfirmed: Close could not confirm with the servers that the
	// session ended. Its ephemeral nodes vanish when the session times out on
	// the server.
	ErrCloseUnconfirmed = errors.New("coord: close not confirmed by the coordinator; ephemeral nodes vanish when the session times out")
	// ErrUnknownScheme: no driver is registered for the URL's scheme.
	ErrUnknownScheme = errors.New("coord: unknown coordinator URL scheme")
)

// Error describes a failed operation on one path.
type Error struct {
	Op   string // "get", "create", "set", "delete", "children", "watch", …
	Path string // the path as the caller gave it (below the root)
	Err  error  // one of the sentinel errors above, or a backend error
}

func (e *Error) Error() string {
	return "coord: " + e.Op + " " + e.Path + ": " + strings.TrimPrefix(e.Err.Error(), "coord: ")
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

func opError(op, path string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, Path: path, Err: err}
}
