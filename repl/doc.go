// Package repl speaks the Redis replica protocol: it connects to a source
// as a replica, receives the RDB of a full resynchronization and then the
// command stream with byte-exact replication offsets, and acknowledges what
// the caller has applied. It is the reading end of R2M's sync links.
//
// # A link
//
//	c, err := repl.Dial(ctx, "10.0.0.1:6379", repl.Options{Password: pw})
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//	if c.FullSync() {
//		if _, err := io.Copy(spool, c.RDB()); err != nil { // first ACK at its io.EOF
//			return err
//		}
//	}
//	for {
//		cmd, err := c.Next(ctx)
//		if err != nil {
//			return err // resume later with ReplID() and Applied()
//		}
//		apply(cmd.Args)
//		c.Ack(cmd.Offset)
//	}
//
// Dial performs the handshake a Redis replica does (PING, AUTH,
// REPLCONF listening-port, REPLCONF capa eof capa psync2, PSYNC). With
// Options.ReplID and Options.Offset it asks to resume (PSYNC replid
// offset+1); the source answers +CONTINUE, possibly with a new replication ID
// after a failover, which the Conn adopts ([Conn.ReplID]), or +FULLRESYNC.
//
// The RDB arrives with either framing, "$<len>" or diskless "$EOF:<mark>",
// after any keep-alive newlines; [Conn.RDB] hides the difference. A diskless
// source sends no stream until the replica's first REPLCONF ACK, which goes
// out as soon as the RDB has been read to its end, and again every 100 ms
// until the first command arrives (a Redis 7.0 source may not yet count the
// replica online when the first one lands). After that the Conn sends
// REPLCONF ACK every [Options.AckInterval] (1 s) and at once for
// REPLCONF GETACK. Each ACK carries the applied offset, the highest offset
// given to [Conn.Ack], not what was received: the source's INFO replication
// and WAIT then show what the target really holds.
//
// Offsets follow Redis: the stream starts at the +FULLRESYNC offset (or
// Options.Offset on resume), and each [Command] carries the offset just
// after its last byte, which equals the source's master_repl_offset once the
// stream is drained.
//
// # Lifetime
//
// A Conn owns one goroutine, the ACK ticker, started with the first ACK and
// stopped by [Conn.Close], which also ends any Read or Next in progress.
// Errors are wrapped with %w: ErrClosed, ErrProtocol, ErrTryLater,
// ErrRDBPending, ErrNoRDB, ErrBadAck and [*ReplyError] are the ones to
// branch on.
package repl
