package repl_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/rdb"
	"github.com/r2m-go/r2m/repl"
)

// writeSome runs a mix of writes whose propagation differs (rewrites,
// transactions, scripts, another database) and returns the source's offset
// afterwards.
func writeSome(t *testing.T, ctx context.Context, c *redis.Client, tag string) int64 {
	t.Helper()
	must(t, c.Set(ctx, tag+":k1", "v1", time.Hour).Err())
	must(t, c.Incr(ctx, tag+":counter").Err())
	must(t, c.RPush(ctx, tag+":list", "a", "b").Err())
	must(t, c.Eval(ctx, "redis.call('set', KEYS[1], 'e'); return redis.call('incr', KEYS[2])", []string{tag + ":e1", tag + ":e2"}).Err())
	_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, tag+":t1", "1", 0)
		p.Incr(ctx, tag+":t2")
		return nil
	})
	must(t, err)
	c3 := redis.NewClient(&redis.Options{Addr: c.Options().Addr, Password: c.Options().Password, DB: 3})
	defer c3.Close()
	must(t, c3.Set(ctx, tag+":db3", "x", 0).Err())
	must(t, c.XAdd(ctx, &redis.XAddArgs{Stream: tag + ":s", Values: []string{"f", "v"}}).Err())
	return masterOffset(t, ctx, c)
}

// TestFullSyncBothFramings syncs from a source with diskless replication on
// ("$EOF:" framing) and off ("$len" framing): the RDB parses to the source's
// data, the stream carries the writes made afterwards, the offset after them
// equals the source's master_repl_offset, and the source sees the applied
// offset in INFO replication.
func TestFullSyncBothFramings(t *testing.T) {
	for _, diskless := range []bool{true, false} {
		t.Run("diskless="+strconv.FormatBool(diskless), func(t *testing.T) {
			ctx := ctxFor(t, 60*time.Second)
			s := testenv.StartRedis(t, testenv.RedisOptions{Config: []string{
				"repl-diskless-sync " + map[bool]string{true: "yes", false: "no"}[diskless],
			}})
			c := s.Client(t)
			for i := range 500 {
				must(t, c.Set(ctx, "pre:"+strconv.Itoa(i), strings.Repeat("x", i), 0).Err())
			}
			must(t, c.HSet(ctx, "pre:hash", "a", "1", "b", "2").Err())

			conn, payload := fullSync(t, ctx, s, repl.Options{ListeningPort: 4242})
			if conn.Diskless() != diskless {
				t.Errorf("Diskless() = %v, want %v", conn.Diskless(), diskless)
			}
			if want := map[bool]int64{true: -1, false: int64(len(payload))}[diskless]; conn.RDBSize() != want {
				t.Errorf("RDBSize() = %d, want %d", conn.RDBSize(), want)
			}
			inf := info(t, ctx, c, "replication")
			if conn.ReplID() != inf["master_replid"] {
				t.Errorf("ReplID() = %q, source's master_replid %q", conn.ReplID(), inf["master_replid"])
			}

			// The RDB is the source's dataset, ending with a valid trailer.
			keys := map[string]rdb.Value{}
			err := rdb.Parse(bytes.NewReader(payload), rdb.Options{Validate: true}, func(r rdb.Record) error {
				if k, ok := r.(*rdb.Key); ok {
					v, err := k.Decode()
					keys[k.Key] = v
					return err
				}
				return nil
			})
			must(t, err)
			if len(keys) != 501 || keys["pre:7"] != rdb.String("xxxxxxx") {
				t.Fatalf("RDB holds %d keys, pre:7 = %#v; want 501 keys", len(keys), keys["pre:7"])
			}

			want := writeSome(t, ctx, c, "w")
			cmds := readUntil(t, ctx, conn, want)
			got := names(cmds)
			if got[0] != "select 0" || !slices.Contains(got, "select 3") || !slices.Contains(got, "multi") ||
				!slices.Contains(got, "incr w:counter") || !slices.Contains(got, "rpush w:list a b") {
				t.Errorf("stream %q lacks the writes", got)
			}
			var sum int64
			for _, cmd := range cmds {
				sum += int64(len(cmd.Raw))
			}
			if conn.InitialOffset()+sum != want {
				t.Errorf("initial offset %d + %d stream bytes != source offset %d", conn.InitialOffset(), sum, want)
			}

			// INFO replication shows the applied offset (ACKed every second).
			must(t, conn.Ack(want))
			eventually(t, ctx, "the source to see offset "+strconv.FormatInt(want, 10), func() bool {
				return replicaOffsets(t, ctx, c)["4242"] == want
			})
		})
	}
}

// TestAckCarriesAppliedOffset: the ACKs report what the caller applied, not
// what was received.
func TestAckCarriesAppliedOffset(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	s := testenv.StartRedis(t, testenv.RedisOptions{})
	c := s.Client(t)
	conn, _ := fullSync(t, ctx, s, repl.Options{ListeningPort: 5151, AckInterval: 100 * time.Millisecond})
	must(t, c.Set(ctx, "a", "1", 0).Err())
	mid := masterOffset(t, ctx, c)
	must(t, c.Set(ctx, "b", "2", 0).Err())
	end := masterOffset(t, ctx, c)
	readUntil(t, ctx, conn, end)

	if err := conn.Ack(end + 1); !errors.Is(err, repl.ErrBadAck) {
		t.Fatalf("Ack beyond the received stream: %v, want ErrBadAck", err)
	}
	must(t, conn.Ack(mid))
	eventually(t, ctx, "the source to see the applied offset", func() bool {
		return replicaOffsets(t, ctx, c)["5151"] == mid
	})
	// WAIT makes the source ask with GETACK; the answer is still mid, so the
	// write that ends at end is not counted as replicated.
	if n, err := c.Wait(ctx, 1, 300*time.Millisecond).Result(); err != nil || n != 0 {
		t.Fatalf("WAIT with offset %d applied of %d received = %d, %v; want 0", mid, end, n, err)
	}
	if got := replicaOffsets(t, ctx, c)["5151"]; got != mid {
		t.Fatalf("source shows offset %d, applied is %d (received %d)", got, mid, end)
	}
	must(t, conn.Ack(end))
	eventually(t, ctx, "the source to see the final offset", func() bool {
		return replicaOffsets(t, ctx, c)["5151"] == end
	})
}

// TestGETACKAnsweredAtOnce: with periodic ACKs an hour apart, WAIT still
// completes, because REPLCONF GETACK is answered at once, with the applied
// offset.
func TestGETACKAnsweredAtOnce(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	s := testenv.StartRedis(t, testenv.RedisOptions{})
	c := s.Client(t)
	conn, _ := fullSync(t, ctx, s, repl.Options{AckInterval: time.Hour})

	var apply atomic.Bool // whether the consumer acknowledges what it reads
	loopCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		for {
			cmd, err := conn.Next(loopCtx)
			if err != nil {
				done <- err
				return
			}
			if apply.Load() {
				if err := conn.Ack(cmd.Offset); err != nil {
					done <- err
					return
				}
			}
		}
	}()
	defer func() {
		stop()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("consumer ended with %v", err)
		}
	}()

	// Not applied: WAIT finds no replica holding the write.
	must(t, c.Set(ctx, "k0", "v", 0).Err())
	if n, err := c.Wait(ctx, 1, 300*time.Millisecond).Result(); err != nil || n != 0 {
		t.Fatalf("WAIT with nothing applied = %d, %v; want 0", n, err)
	}
	apply.Store(true)
	must(t, c.Set(ctx, "k1", "v", 0).Err())
	start := time.Now()
	n, err := c.Wait(ctx, 1, 5*time.Second).Result()
	if err != nil || n != 1 {
		t.Fatalf("WAIT = %d, %v; want 1", n, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("WAIT took %v: GETACK was not answered at once", d)
	}
}

// TestPartialResync: a link resumed with PSYNC replid offset+1 gets
// +CONTINUE and exactly the bytes it missed, as a link that stayed connected
// saw them.
func TestPartialResync(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	s := testenv.StartRedis(t, testenv.RedisOptions{})
	c := s.Client(t)
	witness, _ := fullSync(t, ctx, s, repl.Options{})
	first, _ := fullSync(t, ctx, s, repl.Options{})

	mid := writeSome(t, ctx, c, "a")
	readUntil(t, ctx, first, mid)
	must(t, first.Ack(mid))
	id := first.ReplID()
	must(t, first.Close())

	end := writeSome(t, ctx, c, "b")
	var want []byte
	for _, cmd := range readUntil(t, ctx, witness, end) {
		if cmd.Offset > mid {
			want = append(want, cmd.Raw...)
		}
	}

	resumed, err := repl.Dial(ctx, s.Addr, repl.Options{ReplID: id, Offset: mid})
	must(t, err)
	defer resumed.Close()
	if resumed.FullSync() || resumed.ReplID() != id || resumed.InitialOffset() != mid {
		t.Fatalf("resume: full %v, replid %q, offset %d; want +CONTINUE %q at %d",
			resumed.FullSync(), resumed.ReplID(), resumed.InitialOffset(), id, mid)
	}
	if _, err := resumed.RDB().Read(make([]byte, 1)); !errors.Is(err, repl.ErrNoRDB) {
		t.Errorf("RDB after +CONTINUE: %v, want ErrNoRDB", err)
	}
	var got []byte
	for _, cmd := range readUntil(t, ctx, resumed, end) {
		got = append(got, cmd.Raw...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("resumed stream:\n%q\nwant the %d missed bytes:\n%q", got, len(want), want)
	}
	if inf := info(t, ctx, c, "stats"); inf["sync_partial_ok"] != "1" || inf["sync_full"] != "2" {
		t.Errorf("source stats: sync_partial_ok %s sync_full %s; want 1 and 2", inf["sync_partial_ok"], inf["sync_full"])
	}
}

// TestResyncRefused: a bogus replication ID, or an offset beyond the
// backlog, gets a full resync with the source's real ID.
func TestResyncRefused(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	s := testenv.StartRedis(t, testenv.RedisOptions{})
	c := s.Client(t)
	first, _ := fullSync(t, ctx, s, repl.Options{})
	must(t, c.Set(ctx, "k", "v", 0).Err())
	real := first.ReplID()

	for name, opts := range map[string]repl.Options{
		"bogus replid":  {ReplID: strings.Repeat("ab", 20), Offset: 1},
		"offset beyond": {ReplID: real, Offset: masterOffset(t, ctx, c) + 1_000_000},
	} {
		conn, _ := fullSync(t, ctx, s, opts) // fails unless +FULLRESYNC
		if conn.ReplID() != real {
			t.Errorf("%s: full resync with replid %q, want %q", name, conn.ReplID(), real)
		}
	}
}

// TestContinueAdoptsNewReplID: after the source's replica is promoted, a link
// resumes on it with the old ID and offset, gets +CONTINUE <new id>, adopts
// the new ID and receives the writes made on the new master, with no full
// sync served by it.
func TestContinueAdoptsNewReplID(t *testing.T) {
	ctx := ctxFor(t, 60*time.Second)
	m := testenv.StartRedis(t, testenv.RedisOptions{})
	mc := m.Client(t)
	r := testenv.StartRedis(t, testenv.RedisOptions{Config: []string{"replicaof 127.0.0.1 " + strconv.Itoa(m.Port)}})
	rc := r.Client(t)

	conn, _ := fullSync(t, ctx, m, repl.Options{})
	off := writeSome(t, ctx, mc, "m")
	readUntil(t, ctx, conn, off)
	oldID := conn.ReplID()
	must(t, conn.Close())
	eventually(t, ctx, "the replica to catch up", func() bool {
		inf := info(t, ctx, rc, "replication")
		return inf["master_link_status"] == "up" && inf["master_repl_offset"] == strconv.FormatInt(off, 10)
	})

	must(t, rc.Do(ctx, "REPLICAOF", "NO", "ONE").Err())
	must(t, rc.Set(ctx, "after-failover", "1", 0).Err())
	newID := info(t, ctx, rc, "replication")["master_replid"]
	end := masterOffset(t, ctx, rc)

	resumed, err := repl.Dial(ctx, r.Addr, repl.Options{ReplID: oldID, Offset: off})
	must(t, err)
	defer resumed.Close()
	if resumed.FullSync() || resumed.ReplID() != newID || newID == oldID {
		t.Fatalf("resume on the promoted replica: full %v, replid %q; want +CONTINUE %q (old %q)", resumed.FullSync(), resumed.ReplID(), newID, oldID)
	}
	got := names(readUntil(t, ctx, resumed, end))
	if !slices.Contains(got, "set after-failover 1") {
		t.Errorf("stream after failover %q lacks the new write", got)
	}
	if inf := info(t, ctx, rc, "stats"); inf["sync_full"] != "0" {
		t.Errorf("the promoted replica served %s full syncs, want 0", inf["sync_full"])
	}
}

// TestKeepAliveBeforeFullResync: with repl-diskless-sync-delay the source
// sends bare newlines before +FULLRESYNC; the handshake skips them.
func TestKeepAliveBeforeFullResync(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	s := testenv.StartRedis(t, testenv.RedisOptions{Config: []string{"repl-diskless-sync yes", "repl-diskless-sync-delay 2"}})
	must(t, s.Client(t).Set(ctx, "k", "v", 0).Err())
	start := time.Now()
	_, payload := fullSync(t, ctx, s, repl.Options{})
	if time.Since(start) < time.Second {
		t.Errorf("sync took %v; the 2 s delay (and its keep-alives) did not happen", time.Since(start))
	}
	if !bytes.HasPrefix(payload, []byte("REDIS0010")) {
		t.Errorf("payload starts %q", payload[:min(len(payload), 9)])
	}
}

// TestAuth: with requirepass the handshake authenticates; without the
// password PSYNC is refused with NOAUTH.
func TestAuth(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	s := testenv.StartRedis(t, testenv.RedisOptions{Password: "s3cret"})
	fullSync(t, ctx, s, repl.Options{})
	_, err := repl.Dial(ctx, s.Addr, repl.Options{Password: "wrong"})
	var re *repl.ReplyError
	if !errors.As(err, &re) || re.Step != "AUTH" {
		t.Errorf("wrong password: %v, want an AUTH reply error", err)
	}
	_, err = repl.Dial(ctx, s.Addr, repl.Options{})
	if !errors.As(err, &re) || !strings.HasPrefix(re.Reply, "NOAUTH") {
		t.Errorf("no password: %v, want NOAUTH", err)
	}
	c := s.Client(t)
	must(t, c.Do(ctx, "ACL", "SETUSER", "syncer", "on", ">pw", "+@all", "~*").Err())
	fullSync(t, ctx, s, repl.Options{Username: "syncer", Password: "pw"})
}

// TestNextBeforeRDB and cancellation: Next refuses to run before the RDB
// has been read; a context that ends while Next waits leaves the Conn
// usable; Close ends a waiting Next.
func TestNextLifecycle(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	s := testenv.StartRedis(t, testenv.RedisOptions{})
	c := s.Client(t)
	conn, err := repl.Dial(ctx, s.Addr, repl.Options{})
	must(t, err)
	defer conn.Close()
	if _, err := conn.Next(ctx); !errors.Is(err, repl.ErrRDBPending) {
		t.Fatalf("Next before the RDB: %v, want ErrRDBPending", err)
	}
	buf := new(bytes.Buffer)
	_, err = buf.ReadFrom(conn.RDB())
	must(t, err)

	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = conn.Next(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with an expiring context: %v, want DeadlineExceeded", err)
	}
	must(t, c.Set(ctx, "after", "1", 0).Err())
	got := names(readUntil(t, ctx, conn, masterOffset(t, ctx, c)))
	if !slices.Contains(got, "set after 1") {
		t.Fatalf("after a cancelled Next the stream is %q", got)
	}

	errc := make(chan error, 1)
	go func() {
		_, err := conn.Next(ctx)
		errc <- err
	}()
	must(t, conn.Close())
	if err := <-errc; !errors.Is(err, repl.ErrClosed) {
		t.Fatalf("Next during Close: %v, want ErrClosed", err)
	}
	must(t, conn.Close()) // idempotent
}

// TestSourceDropsSilentReplica: without ACKs the source drops the link after
// repl-timeout, and Next reports it.
func TestSourceDropsSilentReplica(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	s := testenv.StartRedis(t, testenv.RedisOptions{Config: []string{"repl-timeout 2"}})
	conn, _ := fullSync(t, ctx, s, repl.Options{AckInterval: time.Hour})
	// A first command ends the start-up ACKs (every 100 ms until the stream
	// starts); from then on this replica is silent.
	must(t, s.Client(t).Set(ctx, "k", "v", 0).Err())
	for {
		_, err := conn.Next(ctx)
		if err == nil {
			continue
		}
		if ctx.Err() != nil || !strings.Contains(err.Error(), "closed the connection") {
			t.Fatalf("Next: %v, want the source to close the link", err)
		}
		break
	}
}
