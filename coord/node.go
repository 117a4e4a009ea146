package coord

import "time"

// AnyVersion, given to Set or Delete, skips the version check.
const AnyVersion int64 = -1

// Node is a node's state as read from the coordinator.
type Node struct {
	// Path is the node's path below the root.
	Path string
	// Data is the node's content.
	Data []byte
	// Version counts the Sets since the node was created (0 at creation).
	// It is what Set and Delete compare against.
	Version int64
	// Revision is the coordinator-wide revision of the node's last change
	// (ZooKeeper mzxid, etcd mod_revision). It only rises, also across a
	// delete and re-create, so it orders states of the same path.
	Revision int64
	// Ephemeral is true for a node tied to a session.
	Ephemeral bool
	// Owner is the session that owns an ephemeral node ("" otherwise); compare
	// it with [Coordinator.SessionID] to tell your own ephemeral from another
	// process's.
	Owner string
}

// NodeEvent is one report of a data watch.
type NodeEvent struct {
	// Node is the node's current state, or nil when it does not exist.
	Node *Node
	// Err is set only on the last event before the channel closes, and says
	// why the watch ended.
	Err error
}

// ChildrenEvent is one report of a children watch.
type ChildrenEvent struct {
	// Exists reports whether the watched node exists.
	Exists bool
	// Children are the names (not paths) of its children, sorted.
	Children []string
	// Err is set only on the last event before the channel closes.
	Err error
}

// SessionState is what happened to the session.
type SessionState int

// Session states, in the order a session goes through them.
const (
	// SessionConnected: a new session is established, the first one or the
	// one that replaces an expired session.
	SessionConnected SessionState = iota + 1
	// SessionDisconnected: the connection was lost. The session may still be
	// alive on the server; its ephemerals stay until it expires there.
	SessionDisconnected
	// SessionReconnected: the connection is back with the same session;
	// ephemerals and watches are intact.
	SessionReconnected
	// SessionExpired: the server ended the session and deleted its
	// ephemerals. A SessionConnected with a new session ID follows.
	SessionExpired
	// SessionClosed: Close ended the session. It is the last event.
	SessionClosed
)

func (s SessionState) String() string {
	switch s {
	case SessionConnected:
		return "connected"
	case SessionDisconnected:
		return "disconnected"
	case SessionReconnected:
		return "reconnected"
	case SessionExpired:
		return "expired"
	case SessionClosed:
		return "closed"
	}
	return "unknown"
}

// SessionEvent reports a change in the session.
type SessionEvent struct {
	State SessionState
	// SessionID is the session the event is about: for Expired the old
	// session, for Connected the new one.
	SessionID string
	Time      time.Time
}
