package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/r2m-go/r2m/rdb"
	"github.com/r2m-go/r2m/repl"
)

// Shard phases, as reported in ShardStats.Phase.
const (
	PhaseConnecting = "connecting"
	PhaseRDB        = "rdb"
	PhaseStream     = "stream"
)

// shard is the link of one source master: a replication connection, its
// spool, and the replayer that plans the spooled data into units.
type shard struct {
	l     *Link
	id    string
	slots []SlotRange // nil for a standalone source
	src   *nodes      // source connections (offset polling, keyed resync)

	addr   atomic.Pointer[string]
	phase  atomic.Pointer[string]
	conn   atomic.Pointer[repl.Conn]
	trMu   sync.Mutex
	tr     *tracker
	ck     []int64 // exactly-once: checkpoint offset per slot, read at start
	rdbOK  atomic.Bool
	replID atomic.Pointer[string]
	db     atomic.Int64 // source database selected at the replay position

	rdbKeys, rdbBytes   atomic.Int64
	received, srcOffset atomic.Int64
	fullSyncs, resumes  atomic.Int64
	spoolDisk           atomic.Pointer[spool]
	lagMu               sync.Mutex
	samples             []sample // receive times, for lag in ms
	graced              map[string]int64
	curState            ShardState
}

type sample struct {
	offset int64
	at     time.Time
}

func (sh *shard) setAddr(a string)   { sh.addr.Store(&a) }
func (sh *shard) getAddr() string    { return *sh.addr.Load() }
func (sh *shard) setPhase(p string)  { sh.phase.Store(&p) }
func (sh *shard) setReplID(r string) { sh.replID.Store(&r) }
func (sh *shard) getReplID() string {
	if p := sh.replID.Load(); p != nil {
		return *p
	}
	return ""
}

func (sh *shard) tracker() *tracker {
	sh.trMu.Lock()
	defer sh.trMu.Unlock()
	return sh.tr
}

func (sh *shard) setTracker(t *tracker) {
	sh.trMu.Lock()
	sh.tr = t
	sh.trMu.Unlock()
}

// locate returns the current master of the shard.
func (sh *shard) locate(ctx context.Context) (string, error) {
	if sh.slots == nil {
		return sh.getAddr(), nil
	}
	seeds := append([]string{sh.getAddr()}, sh.l.opts.Source.Addrs...)
	seeds = append(seeds, sh.l.sourceAddrs()...)
	ms, _, err := clusterMasters(ctx, sh.src, seeds)
	if err != nil {
		return "", err
	}
	for _, m := range ms {
		for _, r := range m.Slots {
			if sh.slots[0].Start >= r.Start && sh.slots[0].Start <= r.End {
				sh.setAddr(m.Addr)
				return m.Addr, nil
			}
		}
	}
	return "", fmt.Errorf("%w: no source master serves slot %d", ErrTopology, sh.slots[0].Start)
}

// save writes the shard's state: the replication ID and the applied
// offset.
func (sh *shard) save(ctx context.Context) error {
	tr := sh.tracker()
	if tr == nil {
		return nil
	}
	st := sh.curState
	st.Shard, st.Addr = sh.id, sh.getAddr()
	st.ReplID, st.Offset, st.RDBDone = sh.getReplID(), tr.appliedOffset(), sh.rdbOK.Load()
	st.FullSyncs, st.Resumes = int(sh.fullSyncs.Load()), int(sh.resumes.Load())
	st.DB = int(sh.db.Load())
	st.Updated = time.Now()
	if err := sh.l.opts.State.Save(ctx, st); err != nil {
		return fmt.Errorf("migrate: saving shard %s: %w", sh.id, err)
	}
	return nil
}

// session is one replay of spooled data: an RDB (after a full sync) and the
// stream that follows, or a stream alone (after a resume).
type session struct {
	rdb, stream *spool
	done        chan struct{} // closed when the replayer returns
	err         error         // set before done closes
}

// run keeps the shard's link up until ctx ends or a fatal error.
func (sh *shard) run(ctx context.Context) (err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	log := sh.l.log.With("shard", sh.id)
	st, ok, err := sh.l.opts.State.Load(ctx, sh.id)
	if err != nil {
		return err
	}
	sh.curState = st
	if ok {
		sh.fullSyncs.Store(int64(st.FullSyncs))
		sh.resumes.Store(int64(st.Resumes))
	}
	var replID string
	var offset int64
	if ok && st.RDBDone && st.ReplID != "" {
		replID, offset = st.ReplID, st.Offset
		sh.rdbOK.Store(true)
		sh.db.Store(int64(st.DB))
		if st.Addr != "" && sh.slots != nil {
			sh.setAddr(st.Addr)
		}
		if sh.l.opts.Mode == ExactlyOnce {
			if sh.ck, err = sh.l.loadCheckpoints(ctx, sh); err != nil {
				return err
			}
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { sh.background(ctx) })

	var sess *session
	defer func() {
		if sess != nil {
			sess.stream.finish(errors.New("stopping"))
			<-sess.done
			_ = sess.stream.remove() // spool files are only a buffer
		}
		if c := sh.conn.Swap(nil); c != nil {
			_ = c.Close()
		}
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer scancel()
		if serr := sh.save(sctx); serr != nil && err == nil {
			err = serr
		}
	}()
	backoff := time.Duration(0)
	for {
		if backoff > 0 {
			tm := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				tm.Stop()
				return sh.stopErr(ctx)
			case <-tm.C:
			}
		}
		backoff = min(max(2*backoff, 100*time.Millisecond), 2*time.Second)
		sh.setPhase(PhaseConnecting)
		addr, err := sh.locate(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return sh.stopErr(ctx)
			}
			log.Warn("locating the source master", "err", err)
			continue
		}
		conn, err := repl.Dial(ctx, addr, repl.Options{
			Username: sh.l.opts.Source.Username, Password: sh.l.opts.Source.Password,
			ReplID: replID, Offset: offset, Logger: log,
		})
		if err != nil {
			if ctx.Err() != nil {
				return sh.stopErr(ctx)
			}
			log.Warn("connecting to the source", "addr", addr, "err", err)
			continue
		}
		sh.conn.Store(conn)
		sh.setReplID(conn.ReplID())
		if conn.FullSync() {
			sh.rdbOK.Store(false)
			if sess != nil { // a resume was refused: replay what is spooled, then start over
				log.Warn("the source refused to resume; full synchronization", "addr", addr)
				sess.stream.finish(nil)
				<-sess.done
				_ = sess.stream.remove()
				if sess.err != nil {
					return sess.err
				}
				if err := sh.tracker().waitIdle(ctx); err != nil {
					return sh.stopErr(ctx)
				}
				sess = nil
			}
			sess, err = sh.fullSync(ctx, cancel, conn)
			if err != nil {
				_ = conn.Close()
				if ctx.Err() != nil {
					return sh.stopErr(ctx)
				}
				log.Warn("full synchronization interrupted", "addr", addr, "err", err)
				replID, offset = "", 0
				continue
			}
		} else {
			sh.resumes.Add(1)
			log.Info("resumed with a partial resynchronization", "addr", addr, "replid", conn.ReplID(), "offset", conn.InitialOffset(),
				"mode", sh.l.opts.Mode, "replay_bound_commands", sh.l.Stats().ReplayBound)
			if sess == nil {
				sess, err = sh.startSession(ctx, cancel, nil, conn.InitialOffset())
				if err != nil {
					_ = conn.Close()
					return err
				}
			}
		}
		backoff = 0
		if sh.rdbOK.Load() {
			sh.setPhase(PhaseStream)
		} else {
			sh.setPhase(PhaseRDB)
		}
		err = sh.stream(ctx, conn, sess)
		replID, offset = conn.ReplID(), conn.Received()
		sh.conn.Store(nil)
		_ = conn.Close()
		if ctx.Err() != nil {
			return sh.stopErr(ctx)
		}
		log.Warn("source link broken; resuming", "addr", addr, "replid", replID, "offset", offset, "err", err)
	}
}

func (sh *shard) stopErr(ctx context.Context) error {
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) && !errors.Is(c, context.DeadlineExceeded) {
		return c
	}
	return nil
}

// fullSync spools the RDB while a replayer applies it, and returns the
// session whose stream spool then receives the commands.
func (sh *shard) fullSync(ctx context.Context, fail context.CancelCauseFunc, conn *repl.Conn) (*session, error) {
	sh.fullSyncs.Add(1)
	sh.rdbOK.Store(false)
	sh.rdbKeys.Store(0)
	sh.rdbBytes.Store(0)
	sh.setPhase(PhaseRDB)
	sh.l.log.Info("full synchronization", "shard", sh.id, "replid", conn.ReplID(), "offset", conn.InitialOffset(), "rdb_bytes", conn.RDBSize())
	if err := sh.save(ctx); err != nil { // a crash from here on starts over
		return nil, err
	}
	if sh.l.opts.Mode == ExactlyOnce {
		if err := sh.l.clearCheckpoints(ctx, sh); err != nil {
			return nil, err
		}
		sh.ck = nil
	}
	rs, err := newSpool(sh.dir(), "rdb", 0)
	if err != nil {
		return nil, err
	}
	sess, err := sh.startSession(ctx, fail, rs, conn.InitialOffset())
	if err != nil {
		_ = rs.remove()
		return nil, err
	}
	_, err = io.Copy(rs, conn.RDB())
	rs.finish(err)
	if err != nil {
		sess.stream.finish(err)
		<-sess.done
		_ = sess.stream.remove()
		_ = rs.remove()
		return nil, fmt.Errorf("migrate: receiving the RDB: %w", err)
	}
	return sess, nil
}

func (sh *shard) dir() string { return filepath.Join(sh.l.opts.SpoolDir, "shard-"+sh.id) }

func (sh *shard) startSession(ctx context.Context, fail context.CancelCauseFunc, rs *spool, base int64) (*session, error) {
	ss, err := newSpool(sh.dir(), "stream", sh.l.opts.SegmentBytes)
	if err != nil {
		return nil, err
	}
	ss.buffered()
	sh.spoolDisk.Store(ss)
	sh.setTracker(newTracker(base))
	sh.received.Store(base)
	sess := &session{rdb: rs, stream: ss, done: make(chan struct{})}
	go func() {
		defer close(sess.done)
		sess.err = sh.replay(ctx, sess, base)
		if sess.err != nil && ctx.Err() == nil {
			fail(&ShardError{Shard: sh.id, Addr: sh.getAddr(), Err: sess.err})
		}
	}()
	return sess, nil
}

// stream copies the command stream into the spool until the link breaks
// or ctx ends.
func (sh *shard) stream(ctx context.Context, conn *repl.Conn, sess *session) error {
	for {
		cmd, err := conn.Next(ctx)
		if err != nil {
			return err
		}
		if _, err := sess.stream.Write(cmd.Raw); err != nil {
			return err
		}
		sh.received.Store(cmd.Offset)
		sh.noteReceived(cmd.Offset)
	}
}

func (sh *shard) noteReceived(off int64) {
	now := time.Now()
	sh.lagMu.Lock()
	defer sh.lagMu.Unlock()
	if n := len(sh.samples); n > 0 && now.Sub(sh.samples[n-1].at) < 2*time.Millisecond {
		sh.samples[n-1].offset = off
		return
	}
	sh.samples = append(sh.samples, sample{off, now})
}

// lagMs returns how long the oldest unapplied received byte has waited.
func (sh *shard) lagMs(applied int64) int64 {
	sh.lagMu.Lock()
	defer sh.lagMu.Unlock()
	i := 0
	for i < len(sh.samples) && sh.samples[i].offset <= applied {
		i++
	}
	if i > 0 {
		sh.samples = append(sh.samples[:0], sh.samples[i:]...)
	}
	if len(sh.samples) == 0 {
		return 0
	}
	return time.Since(sh.samples[0].at).Milliseconds()
}

// background acknowledges the applied offset to the source, polls the
// source's offset, and saves the state, until ctx ends.
func (sh *shard) background(ctx context.Context) {
	ack := time.NewTicker(100 * time.Millisecond)
	defer ack.Stop()
	save := time.NewTicker(sh.l.opts.SaveInterval)
	defer save.Stop()
	poll := time.NewTicker(250 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ack.C:
			if c, tr := sh.conn.Load(), sh.tracker(); c != nil && tr != nil {
				_ = c.Ack(min(tr.appliedOffset(), c.Received())) // beyond Received cannot happen; a broken conn is replaced
			}
		case <-poll.C:
			if n, err := sh.sourceOffset(ctx); err == nil {
				sh.srcOffset.Store(n)
			}
		case <-save.C:
			if err := sh.save(ctx); err != nil && ctx.Err() == nil {
				sh.l.log.Warn("saving link state", "shard", sh.id, "err", err)
			}
		}
	}
}

// sourceOffset reads the source master's master_repl_offset.
func (sh *shard) sourceOffset(ctx context.Context) (int64, error) {
	addr := sh.getAddr()
	info, err := sh.src.do(ctx, addr, "INFO", "replication").ToString()
	if err != nil {
		sh.src.drop(addr)
		return 0, err
	}
	if infoField(info, "role") != "master" {
		return 0, fmt.Errorf("%w: %s is no longer a master", ErrTopology, addr)
	}
	n, err := strconv.ParseInt(infoField(info, "master_repl_offset"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("migrate: master_repl_offset of %s: %w", addr, err)
	}
	return n, nil
}

// sourceValue reads key's current value from the source master and returns
// the target commands that recreate it (RESTORE … REPLACE ABSTTL, or DEL).
func (sh *shard) sourceValue(ctx context.Context, db int, key string) ([][]string, error) {
	addr := sh.getAddr()
	c, err := sh.src.client(addr)
	if err != nil {
		return nil, err
	}
	res := c.DoMulti(ctx,
		c.B().Arbitrary("SELECT", itoa(int64(db))).Build(),
		c.B().Arbitrary("DUMP", key).Build(),
		c.B().Arbitrary("PEXPIRETIME", key).Build(),
		c.B().Arbitrary("SELECT", "0").Build(),
	)
	for _, r := range res {
		if err := r.Error(); err != nil && !isNil(err) {
			sh.src.drop(addr)
			return nil, err
		}
	}
	payload, err := res[1].ToString()
	if isNil(err) {
		return [][]string{{"DEL", key}}, nil
	}
	if err != nil {
		return nil, err
	}
	exp, err := res[2].AsInt64()
	if err != nil {
		return nil, err
	}
	ttl := "0"
	if exp > 0 {
		ttl = itoa(exp)
	}
	return [][]string{{"RESTORE", key, ttl, payload, "REPLACE", "ABSTTL"}}, nil
}

func isNil(err error) bool {
	return err != nil && strings.Contains(err.Error(), "nil message")
}

// replay plans the session's spooled RDB and stream into units and hands
// them to the appliers.
func (sh *shard) replay(ctx context.Context, sess *session, base int64) error {
	tr := sh.tracker()
	if sess.rdb != nil {
		if err := sh.replayRDB(ctx, sess.rdb, tr, base); err != nil {
			return err
		}
	} else {
		sh.setPhase(PhaseStream)
	}
	r := sess.stream.reader(ctx)
	defer r.Close()
	rr := newRESPReader(r, repl.DefaultMaxBulkLen)
	p := &streamPlanner{sh: sh, tr: tr, db: int(sh.db.Load())}
	off := base
	for {
		if len(sh.graced) > 0 && rr.br.Buffered() == 0 && sess.stream.written() == off-base {
			if err := sh.restoreGraced(ctx, tr, off); err != nil {
				return err
			}
		}
		cmd, err := rr.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			if ctx.Err() != nil {
				return nil
			}
			if sess.stream.stopped() {
				return nil // the writer stopped the session
			}
			return err
		}
		off += cmd.size
		if err := p.feed(ctx, cmd, off); err != nil {
			return err
		}
	}
}

// dispatch hands u to its applier; exactly-once units at or below their
// slot's checkpoint are skipped.
func (sh *shard) dispatch(ctx context.Context, tr *tracker, u *unit) error {
	if u.ck && sh.ck != nil && sh.ck[u.slot] >= u.offset {
		sh.l.stats.skipped.Add(1)
		return nil
	}
	sh.l.stats.units.Add(1)
	tr.add(u)
	select {
	case sh.l.appliers[sh.l.slotWorker[u.slot]].in <- u:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// restoreGraced gives the keys whose expiry the RDB phase extended, and
// that the stream has not touched since, their original expiry.
func (sh *shard) restoreGraced(ctx context.Context, tr *tracker, off int64) error {
	n := 0
	for key, exp := range sh.graced {
		u := &unit{sh: sh, slot: keySlot(key), cmds: [][]string{{"PEXPIREAT", key, itoa(exp)}}, keys: []string{key}, offset: off}
		if err := sh.dispatch(ctx, tr, u); err != nil {
			return err
		}
		n++
	}
	sh.l.log.Info("restored the original expiry of keys the RDB phase extended", "shard", sh.id, "keys", n)
	sh.graced = nil
	return nil
}

// replayRDB applies the spooled RDB and waits until all of it is applied.
func (sh *shard) replayRDB(ctx context.Context, rs *spool, tr *tracker, base int64) error {
	r := rs.reader(ctx)
	defer func() {
		r.Close()
		_ = rs.remove()
	}()
	p, err := rdb.NewParser(r, rdb.Options{})
	if err != nil {
		return fmt.Errorf("migrate: RDB: %w", err)
	}
	db := 0
	now := time.Now()
	sh.graced = map[string]int64{}
	for {
		rec, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("migrate: RDB: %w", err)
		}
		switch rec := rec.(type) {
		case *rdb.SelectDB:
			db = rec.DB
		case *rdb.Function:
			if err := sh.l.target.broadcast(ctx, "FUNCTION", "LOAD", "REPLACE", rec.Code); err != nil {
				return fmt.Errorf("migrate: loading a function library: %w", err)
			}
		case *rdb.Key:
			if err := sh.l.dbAllowed(db); err != nil {
				return err
			}
			if strings.HasPrefix(rec.Key, ckPrefix) {
				continue
			}
			u, err := sh.l.restoreUnit(sh, rec, now)
			if err != nil {
				return err
			}
			sh.rdbKeys.Add(1)
			sh.rdbBytes.Add(int64(len(rec.Value)))
			if err := sh.dispatch(ctx, tr, u); err != nil {
				return err
			}
		}
	}
	if err := tr.waitIdle(ctx); err != nil {
		return err
	}
	sh.rdbOK.Store(true)
	sh.setPhase(PhaseStream)
	if err := sh.save(ctx); err != nil {
		return err
	}
	sh.l.log.Info("RDB applied", "shard", sh.id, "keys", sh.rdbKeys.Load(), "graced", len(sh.graced))
	return nil
}
