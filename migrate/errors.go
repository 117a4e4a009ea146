package migrate

import (
	"errors"
	"fmt"
)

// Errors that callers branch on with errors.Is.
var (
	// ErrClosed: the Link was closed.
	ErrClosed = errors.New("migrate: link closed")
	// ErrUnmappedDB: the source holds or writes a database other than 0 and
	// Options.DBMap does not say where it goes. A Redis Cluster has only
	// database 0, so the link stops rather than merge databases silently.
	ErrUnmappedDB = errors.New("migrate: source database is not mapped")
	// ErrFlushBlocked: the source stream carries FLUSHALL or FLUSHDB and
	// Options.AllowFlush is off.
	ErrFlushBlocked = errors.New("migrate: source flushed its data")
	// ErrSpoolCorrupt: the spool on disk does not read back as commands.
	ErrSpoolCorrupt = errors.New("migrate: spool corrupt")
	// ErrTopology: the source or the target has no usable topology (slots
	// not covered, no reachable node, ...).
	ErrTopology = errors.New("migrate: topology")
	// ErrBadOptions wraps every problem Options.Validate reports.
	ErrBadOptions = errors.New("migrate: invalid options")
	// ErrDifferent: Verify found keys that differ.
	ErrDifferent = errors.New("migrate: source and target differ")
)

// ShardError is a failure of one source shard's link.
type ShardError struct {
	Shard string // the shard's ID, e.g. "0-5460" or "standalone"
	Addr  string // the source node
	Err   error
}

// Error implements error.
func (e *ShardError) Error() string {
	return fmt.Sprintf("migrate: source shard %s (%s): %v", e.Shard, e.Addr, e.Err)
}

// Unwrap returns the cause.
func (e *ShardError) Unwrap() error { return e.Err }
