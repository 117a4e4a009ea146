// Package coord is R2M's view of its coordinator: the ZooKeeper ensemble or
// etcd cluster that holds every record the control plane, the host agents and
// the clients share.
//
// It follows the shape of database/sql: [Open] picks a registered [Driver]
// by the URL's scheme and returns a [*Coordinator] that adds what every
// backend needs and none should repeat: path checks, typed errors, watches
// that coalesce, session-event fan-out, and a Close that cannot be skipped.
// The backends live in coord/zk and coord/etcd and register themselves when
// imported; import coord/install to get both.
//
//	c, err := coord.Open(ctx, "zk://127.0.0.1:2181/r2m")
//	if err != nil { … }
//	defer c.Close()
//	err = c.Create(ctx, "/apps/orders", record)
//	n, err := c.Get(ctx, "/apps/orders")
//	_, err = c.Set(ctx, "/apps/orders", updated, n.Version) // compare-and-set
//	if errors.Is(err, coord.ErrVersionConflict) { … re-read and retry … }
//
// # Data model
//
// Nodes form a tree addressed by slash-separated paths below the URL's root
// ("/apps/orders" under root "/r2m" is znode /r2m/apps/orders, or etcd key
// "/r2m/apps/orders"). Each node has data and a version: 0 when created,
// one more after each Set. A Set or Delete given a version other than
// [AnyVersion] succeeds only if the node still has that version, so a writer
// working from a stale read is fenced out with [ErrVersionConflict].
// Create makes missing ancestors as empty persistent nodes. Ephemeral nodes
// belong to the session that created them, vanish when it ends, and cannot
// have children (ZooKeeper's rule, enforced on etcd too).
//
// # Sessions
//
// A Coordinator holds one session: a ZooKeeper session, or an etcd lease that
// it keeps alive. Its life is reported as [SessionEvent]s: Connected (a new
// session), Disconnected (connection lost, session perhaps still alive),
// Reconnected (same session back: ephemerals and watches intact) and Expired
// (the server ended the session and deleted its ephemerals; a new session
// follows with Connected, and owners must create their ephemerals again).
// Expiry is reported only when the server says so: a process cut off from the
// coordinator stays Disconnected until it can reach it again, and code that
// holds leadership must treat a disconnection longer than
// [Coordinator.SessionTimeout] as loss.
//
// # Watches
//
// Watches are level-triggered. A watch first reports the current state, then
// reports changes; a slow consumer is given the latest state rather than
// every intermediate one, so several rapid changes may arrive as one event.
// What is guaranteed: the last event a watcher receives before it stops
// reading reflects the latest state at that time, states arrive in the order
// the coordinator applied them (a node's revision never goes backwards), and
// a state is not reported twice in a row. After a reconnection or a session
// expiry the watch re-reads and resumes by itself. Each watch channel ends
// with one event whose Err says why (the caller's context ended, or the
// Coordinator was closed), then is closed.
//
// # Closing
//
// Close is idempotent, safe from many goroutines and from inside a watch or
// session-event loop, takes no context, and returns within
// Config.CloseTimeout even when the servers are unreachable. It deletes the
// ephemeral nodes this session created and confirms each delete, ends the
// session, and waits for every goroutine it started. Every failure is
// returned, joined; when the servers could not be reached the error wraps
// [ErrCloseUnconfirmed]: the ephemerals then vanish when the session times
// out on the server.
//
// coord must never import meta, client, cluster, manager, agent or monitor:
// it is the bottom layer they all stand on.
package coord
