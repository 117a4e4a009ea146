// Package cluster administers Redis Clusters built from stock redis-server
// nodes: it inspects and checks them, creates them from fresh nodes, fixes
// open and uncovered slots, moves slots between masters without losing
// acknowledged writes, plans rebalances, reshards and scale changes, adds
// and removes nodes, and runs manual failovers.
//
// # The engine
//
// Everything goes through an [Engine], which keeps one single-node rueidis
// connection per node address and closes them in [Engine.Close]:
//
//	e := cluster.New(cluster.Config{Password: pw, Logger: log})
//	defer e.Close()
//	findings, view, err := e.Check(ctx, "10.0.0.1:6379")
//
// Every method takes a context first; cancelling it stops the operation
// between two Redis commands, never in the middle of one. Errors name the
// node and the step through [*NodeError]; callers branch on the sentinels in
// errors.go with [errors.Is].
//
// # Slot moves
//
// [Engine.MoveSlots] follows the order redis-cli uses, for the same reasons:
// IMPORTING on the target before MIGRATING on the source (so that no client
// is redirected with ASK to a node that would answer MOVED), batches of
// GETKEYSINSLOT and MIGRATE … KEYS until the slot is empty on the source,
// then SETSLOT NODE on the target first (so that the target cannot lose
// ownership to a stale source), then on the source, then on every other
// master. Each step is idempotent and its state is written to a caller
// supplied [StateStore], so that [Engine.Resume] in another process can
// finish a slot that was interrupted half way.
//
// The package has no coordinator dependency: the control plane decides what
// to run and persists the state the engine hands to its store.
package cluster
