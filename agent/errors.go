package agent

import "errors"

// Errors that callers branch on with errors.Is.
var (
	// ErrInvalidOptions: New was given unusable Options; the error lists
	// every problem.
	ErrInvalidOptions = errors.New("agent: invalid options")
	// ErrLocked: another agent (in this process or another) holds the data
	// directory's lock. Two agents must never supervise the same directory.
	ErrLocked = errors.New("agent: data directory is in use by another agent")
	// ErrAlreadyRun: Run was called a second time on the same Agent. Make a
	// new Agent instead; it adopts the running instances.
	ErrAlreadyRun = errors.New("agent: Run was already called on this Agent")
)
