package cluster

import (
	"errors"
	"fmt"
)

// Errors that callers branch on with errors.Is.
var (
	// ErrUnreachable: a node did not answer. The [*NodeError] that wraps it
	// names the node and the step.
	ErrUnreachable = errors.New("cluster: node unreachable")
	// ErrMastersUnreachable: Fix found masters it could not reach and was
	// not forced.
	ErrMastersUnreachable = errors.New("cluster: masters unreachable; refusing to fix without force")
	// ErrNotEmpty: a node given to Create or AddNode holds keys or already
	// knows other nodes.
	ErrNotEmpty = errors.New("cluster: node is not empty")
	// ErrNotConverged: the nodes did not agree within the wait bound.
	ErrNotConverged = errors.New("cluster: nodes did not converge in time")
	// ErrBusyKeyConflict: a key exists on both sides of a move with
	// different values. Nothing was overwritten; the slot stays open so an
	// operator can decide.
	ErrBusyKeyConflict = errors.New("cluster: key exists on source and target with different values")
	// ErrBigKey: a key is so large that moving it could block a node past
	// cluster-node-timeout, and the options do not allow it.
	ErrBigKey = errors.New("cluster: key too big to move within the node timeout")
	// ErrUnfixable: Fix met a slot state it cannot resolve safely.
	ErrUnfixable = errors.New("cluster: slot state cannot be fixed automatically")
	// ErrUnknownNode: an id or address is not part of the cluster.
	ErrUnknownNode = errors.New("cluster: unknown node")
	// ErrInvalidPlan: planner input is inconsistent (weights, counts,
	// nodes that are not masters).
	ErrInvalidPlan = errors.New("cluster: invalid plan input")
	// ErrSlotState: a slot is not in the state a move expects (for example
	// owned by neither the source nor the target).
	ErrSlotState = errors.New("cluster: unexpected slot state")
	// ErrFailoverIncomplete: a manual failover did not finish in time.
	ErrFailoverIncomplete = errors.New("cluster: failover did not complete")
	// ErrClosed: the Engine has been closed.
	ErrClosed = errors.New("cluster: engine closed")
)

// NodeError is the error of one step on one node. Step is a short
// description of what was being done ("CLUSTER NODES", "MIGRATE slot 12").
type NodeError struct {
	Addr string
	Step string
	Err  error
}

func (e *NodeError) Error() string {
	return fmt.Sprintf("cluster: %s: %s: %v", e.Addr, e.Step, e.Err)
}

// Unwrap returns the underlying error.
func (e *NodeError) Unwrap() error { return e.Err }
