// Package migrate runs online migration links: it copies the data of a
// source Redis (a standalone server or every master of a Redis Cluster) into
// a target Redis Cluster while the source keeps serving, and then keeps the
// target up to date by applying the source's replication stream.
//
// A [Link] connects to each source master as a replica (package repl),
// spools the RDB and the command stream to local disk as fast as the source
// sends them (so a slow target never trips the source's
// client-output-buffer-limit), and replays the spool into the target:
//
//   - RDB keys become RESTORE … ABSTTL REPLACE with payloads built by package
//     rdb for the target's RDB version; values above Options.BigValueBytes
//     are written in pieces (DEL, then batches of RPUSH/SADD/ZADD/HSET, then
//     PEXPIREAT) so one huge RESTORE never stalls a target node; function
//     libraries are loaded on every target master.
//   - Stream commands are routed by hash slot. Multi-key commands whose keys
//     span slots are split (DEL, UNLINK, MSET, …) or, when they cannot be
//     split (RENAME across slots, SUNIONSTORE, …), applied as a keyed resync:
//     the keys' current values are copied from the source. MULTI/EXEC units
//     whose commands share a slot stay transactions on the target.
//   - One applier per target master (fixed at start by slot ownership, so the
//     order of each slot's commands never changes even when the target
//     reshards) sends ordered, windowed pipelines. MOVED, ASK, TRYAGAIN,
//     CLUSTERDOWN and LOADING are retried; any other error reply is counted
//     and repaired by a keyed resync. Nothing in the link panics on a reply.
//
// Delivery is at-least-once by default: after a crash the link resumes with
// PSYNC from the last applied offset it saved, so commands applied after that
// save are applied again. [ExactlyOnce] stores a per-slot checkpoint key
// (__r2m_ck:{tag}:link:shard) atomically with every unit, and skips units at
// or below a slot's checkpoint when resuming.
//
// The link reports lag in bytes and milliseconds per source shard
// ([Link.Stats], Options.Progress), can be throttled at run time
// ([Link.SetRateLimit]) and stops when its context ends. [Verify] compares a
// source and a target key by key.
//
// migrate depends on repl, rdb and rueidis only. It must never import the
// control plane (manager, meta, coord, api, cmd/...): the manager drives it
// through Options and a [StateStore], and the same link runs in a worker
// process or a test.
package migrate
