package repl

import (
	"errors"
	"fmt"
)

// Errors that callers branch on with errors.Is.
var (
	// ErrClosed: the Conn was closed.
	ErrClosed = errors.New("repl: connection closed")
	// ErrProtocol: the source sent something the replica protocol does not
	// allow at that point.
	ErrProtocol = errors.New("repl: protocol error")
	// ErrTryLater: the source cannot serve a replica now (-LOADING,
	// -NOMASTERLINK); dial again later.
	ErrTryLater = errors.New("repl: source cannot serve a replica now")
	// ErrRDBPending: Next was called before the RDB was read to its end.
	ErrRDBPending = errors.New("repl: the RDB has not been read to its end")
	// ErrNoRDB: the RDB of a partial resynchronization was asked for; the
	// source sent none.
	ErrNoRDB = errors.New("repl: partial resynchronization has no RDB")
	// ErrBadAck: Ack was given an offset beyond what was received.
	ErrBadAck = errors.New("repl: acknowledged offset beyond the received stream")
)

// ReplyError is an error reply of the source to a handshake step.
type ReplyError struct {
	Step  string // "AUTH", "PSYNC", ...
	Reply string // the reply line without the leading '-'
}

func (e *ReplyError) Error() string {
	return fmt.Sprintf("repl: %s: source replied -%s", e.Step, e.Reply)
}
