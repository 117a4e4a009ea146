package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/r2m-go/r2m/rdb"
	"github.com/redis/rueidis"
)

// Link is one migration link from a source to a target cluster. Create it
// with New, run it with Run (once), and read its progress with Stats from
// any goroutine.
type Link struct {
	opts Options
	log  *slog.Logger

	limiter limiter
	started atomic.Bool

	// Set up by Run before any goroutine reads them.
	target     *target
	commands   *commandTable
	appliers   []*applier
	slotWorker [numSlots]int
	tags       []string // exactly-once: a hash tag per slot

	mu     sync.Mutex
	shards []*shard
	srcMu  sync.Mutex
	srcs   []string // every source master address seen

	stats counters
}

type counters struct {
	commands, units, retries, moves, asks      atomic.Int64
	dataErrors, resyncs, resyncFailed, skipped atomic.Int64
	unroutable, pieces                         atomic.Int64
}

// New checks opts and returns a Link. It does no I/O.
func New(opts Options) (*Link, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	l := &Link{opts: opts, log: opts.Logger.With("link", opts.ID)}
	l.limiter.set(opts.RateLimit)
	return l, nil
}

// SetRateLimit changes the cap on commands per second sent to the target;
// zero removes it.
func (l *Link) SetRateLimit(perSec int) { l.limiter.set(max(perSec, 0)) }

// Run connects to the source and the target and runs the link until ctx
// ends (it then returns nil, having saved each shard's state) or a shard
// fails for good (a *ShardError, for example wrapping ErrUnmappedDB). A
// Link runs once.
func (l *Link) Run(ctx context.Context) (err error) {
	if !l.started.CompareAndSwap(false, true) {
		return errors.New("migrate: Link.Run called twice")
	}
	src := newNodes(l.opts.Source, "r2m-migrate-src")
	defer src.close()
	masters, isCluster, err := clusterMasters(ctx, src, l.opts.Source.Addrs)
	if err != nil {
		return err
	}
	l.target, err = newTarget(ctx, l.opts.Target, l.log)
	if err != nil {
		return err
	}
	defer l.target.close()
	if l.commands, err = loadCommands(ctx, l.target); err != nil {
		return err
	}
	if l.opts.Mode == ExactlyOnce {
		l.tags = slotTags()
	}
	workers := map[string]int{}
	for s := range numSlots {
		a := l.target.ownerOf(s)
		w, ok := workers[a]
		if !ok {
			w = len(workers)
			workers[a] = w
		}
		l.slotWorker[s] = w
	}
	l.appliers = make([]*applier, len(workers))
	for i := range l.appliers {
		l.appliers[i] = &applier{l: l, in: make(chan *unit, 4*l.opts.Window)}
	}

	var shards []*shard
	if !isCluster {
		sh := &shard{l: l, id: "standalone", src: src}
		sh.setAddr(l.opts.Source.Addrs[0])
		shards = append(shards, sh)
	} else {
		for _, m := range masters {
			sh := &shard{l: l, id: m.Slots[0].String(), slots: m.Slots, src: src}
			sh.setAddr(m.Addr)
			shards = append(shards, sh)
			l.noteSource(m.Addr)
		}
	}
	for _, sh := range shards {
		sh.setPhase(PhaseConnecting)
	}
	l.mu.Lock()
	l.shards = shards
	l.mu.Unlock()
	l.log.Info("link starting", "source_shards", len(shards), "target_masters", len(l.appliers), "mode", l.opts.Mode, "target_rdb_version", l.target.version)

	actx, stopAppliers := context.WithCancel(context.WithoutCancel(ctx))
	var awg sync.WaitGroup
	for _, a := range l.appliers {
		awg.Go(func() { a.run(actx) })
	}
	sctx, cancel := context.WithCancelCause(ctx)
	var swg sync.WaitGroup
	errs := make([]error, len(shards))
	for i, sh := range shards {
		swg.Go(func() {
			if err := sh.run(sctx); err != nil {
				errs[i] = err
				cancel(err)
			}
		})
	}
	var pwg sync.WaitGroup
	if l.opts.Progress != nil {
		pwg.Go(func() {
			tk := time.NewTicker(l.opts.ProgressEvery)
			defer tk.Stop()
			for {
				select {
				case <-sctx.Done():
					return
				case <-tk.C:
					l.opts.Progress(l.Stats())
				}
			}
		})
	}
	swg.Wait()
	cancel(nil)
	pwg.Wait()
	stopAppliers()
	awg.Wait()
	if l.opts.Progress != nil {
		l.opts.Progress(l.Stats())
	}
	return errors.Join(errs...)
}

func (l *Link) noteSource(addr string) {
	l.srcMu.Lock()
	defer l.srcMu.Unlock()
	for _, a := range l.srcs {
		if a == addr {
			return
		}
	}
	l.srcs = append(l.srcs, addr)
}

func (l *Link) sourceAddrs() []string {
	l.srcMu.Lock()
	defer l.srcMu.Unlock()
	return append([]string(nil), l.srcs...)
}

// ShardStats is the progress of one source shard.
type ShardStats struct {
	Shard  string `json:"shard"`
	Addr   string `json:"addr"`
	Phase  string `json:"phase"`
	ReplID string `json:"repl_id,omitempty"`
	// RDBKeys and RDBBytes count what the RDB phase has planned so far.
	RDBKeys  int64 `json:"rdb_keys"`
	RDBBytes int64 `json:"rdb_bytes"`
	// SourceOffset is the source's master_repl_offset when last polled;
	// ReceivedOffset what was spooled; AppliedOffset what the target holds.
	SourceOffset   int64 `json:"source_offset"`
	ReceivedOffset int64 `json:"received_offset"`
	AppliedOffset  int64 `json:"applied_offset"`
	// LagBytes is SourceOffset (or ReceivedOffset if newer) minus
	// AppliedOffset; LagMs how long the oldest received but unapplied byte
	// has waited.
	LagBytes   int64 `json:"lag_bytes"`
	LagMs      int64 `json:"lag_ms"`
	SpoolBytes int64 `json:"spool_bytes"`
	FullSyncs  int64 `json:"full_syncs"`
	Resumes    int64 `json:"resumes"`
}

// Stats is a link's progress.
type Stats struct {
	Shards []ShardStats `json:"shards"`
	// CaughtUp is true when every shard streams with no lag.
	CaughtUp bool  `json:"caught_up"`
	RDBKeys  int64 `json:"rdb_keys"`
	LagBytes int64 `json:"lag_bytes"` // the largest of the shards'
	LagMs    int64 `json:"lag_ms"`
	// Commands counts commands sent to the target, Units the units planned.
	Commands int64 `json:"commands"`
	Units    int64 `json:"units"`
	// Retries counts units sent again; Moves and Asks the redirections
	// among them.
	Retries int64 `json:"retries"`
	Moves   int64 `json:"moves"`
	Asks    int64 `json:"asks"`
	// DataErrors counts units the target refused with a data error;
	// Resyncs the keys copied again from the source because of them or of
	// cross-slot commands; ResyncFailed the keys that could not be.
	DataErrors   int64 `json:"data_errors"`
	Resyncs      int64 `json:"resyncs"`
	ResyncFailed int64 `json:"resync_failed"`
	// Skipped counts exactly-once units already applied before a restart.
	Skipped int64 `json:"skipped"`
	// Unroutable counts commands skipped because the target does not know
	// them.
	Unroutable int64 `json:"unroutable"`
	// Pieces counts big values written in pieces.
	Pieces     int64 `json:"pieces"`
	SpoolBytes int64 `json:"spool_bytes"`
	// ReplayBound is how many commands per target master may be applied a
	// second time after a crash in at-least-once mode (0 in exactly-once).
	ReplayBound int `json:"replay_bound"`
}

// Stats returns the link's progress. It is safe from any goroutine.
func (l *Link) Stats() Stats {
	l.mu.Lock()
	shards := l.shards
	l.mu.Unlock()
	st := Stats{
		Commands: l.stats.commands.Load(), Units: l.stats.units.Load(), Retries: l.stats.retries.Load(),
		Moves: l.stats.moves.Load(), Asks: l.stats.asks.Load(), DataErrors: l.stats.dataErrors.Load(),
		Resyncs: l.stats.resyncs.Load(), ResyncFailed: l.stats.resyncFailed.Load(), Skipped: l.stats.skipped.Load(),
		Unroutable: l.stats.unroutable.Load(), Pieces: l.stats.pieces.Load(),
		CaughtUp: len(shards) > 0,
	}
	if l.opts.Mode != ExactlyOnce {
		st.ReplayBound = 4*l.opts.Window + l.opts.Window
	}
	for _, sh := range shards {
		ss := ShardStats{Shard: sh.id, Addr: sh.getAddr(), Phase: *sh.phase.Load(), ReplID: sh.getReplID(),
			RDBKeys: sh.rdbKeys.Load(), RDBBytes: sh.rdbBytes.Load(), SourceOffset: sh.srcOffset.Load(),
			ReceivedOffset: sh.received.Load(), FullSyncs: sh.fullSyncs.Load(), Resumes: sh.resumes.Load()}
		if tr := sh.tracker(); tr != nil {
			ss.AppliedOffset = tr.appliedOffset()
		}
		if sp := sh.spoolDisk.Load(); sp != nil {
			ss.SpoolBytes = sp.diskBytes()
		}
		head := max(ss.SourceOffset, ss.ReceivedOffset)
		ss.LagBytes = max(head-ss.AppliedOffset, 0)
		ss.LagMs = sh.lagMs(ss.AppliedOffset)
		if ss.Phase != PhaseStream || ss.LagBytes > 0 || ss.SourceOffset == 0 {
			st.CaughtUp = false
		}
		st.RDBKeys += ss.RDBKeys
		st.LagBytes = max(st.LagBytes, ss.LagBytes)
		st.LagMs = max(st.LagMs, ss.LagMs)
		st.SpoolBytes += ss.SpoolBytes
		st.Shards = append(st.Shards, ss)
	}
	return st
}

// WaitCaughtUp waits until everything every source master had written
// when it was called (its master_repl_offset, read now) is applied to the
// target, checking every 20 ms, or until ctx ends. Call it after Run has
// started.
func (l *Link) WaitCaughtUp(ctx context.Context) error {
	tk := time.NewTicker(20 * time.Millisecond)
	defer tk.Stop()
	want := map[*shard]int64{}
	for {
		l.mu.Lock()
		shards := l.shards
		l.mu.Unlock()
		done := len(shards) > 0
		for _, sh := range shards {
			if p := sh.phase.Load(); p == nil || *p != PhaseStream {
				done = false
				continue
			}
			w, ok := want[sh]
			if !ok {
				n, err := sh.sourceOffset(ctx)
				if err != nil {
					done = false
					continue
				}
				w, want[sh] = n, n
			}
			if tr := sh.tracker(); tr == nil || tr.appliedOffset() < w {
				done = false
			}
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("migrate: waiting for the link to catch up: %w", ctx.Err())
		case <-tk.C:
		}
	}
}

// ckKey is the exactly-once checkpoint key of a slot for a source shard.
func (l *Link) ckKey(sh *shard, slot int) string {
	return ckPrefix + "{" + l.tags[slot] + "}:" + l.opts.ID + ":" + sh.id
}

// loadCheckpoints reads the shard's checkpoint of every slot.
func (l *Link) loadCheckpoints(ctx context.Context, sh *shard) ([]int64, error) {
	ck := make([]int64, numSlots)
	err := l.eachSlotBatch(ctx, func(addr string, slots []int) error {
		c, err := l.target.client(addr)
		if err != nil {
			return err
		}
		res := c.DoMulti(ctx, func() (out []rueidisCompleted) {
			for _, s := range slots {
				out = append(out, c.B().Arbitrary("GET", l.ckKey(sh, s)).Build())
			}
			return out
		}()...)
		for i, r := range res {
			v, err := r.ToString()
			if isNil(err) {
				continue
			}
			if err != nil {
				return err
			}
			if ck[slots[i]], err = strconv.ParseInt(v, 10, 64); err != nil {
				return fmt.Errorf("migrate: checkpoint of slot %d: %w", slots[i], err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("migrate: reading checkpoints: %w", err)
	}
	return ck, nil
}

// clearCheckpoints deletes the shard's checkpoints (a full sync restarts
// its offsets).
func (l *Link) clearCheckpoints(ctx context.Context, sh *shard) error {
	err := l.eachSlotBatch(ctx, func(addr string, slots []int) error {
		c, err := l.target.client(addr)
		if err != nil {
			return err
		}
		var cmds []rueidisCompleted
		for _, s := range slots {
			cmds = append(cmds, c.B().Arbitrary("DEL", l.ckKey(sh, s)).Build())
		}
		for _, r := range c.DoMulti(ctx, cmds...) {
			if err := r.Error(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate: clearing checkpoints: %w", err)
	}
	return nil
}

// eachSlotBatch calls fn with batches of slots per owning master,
// refreshing the slot map and retrying when the target moves slots.
func (l *Link) eachSlotBatch(ctx context.Context, fn func(addr string, slots []int) error) error {
	for attempt := 0; ; attempt++ {
		by := map[string][]int{}
		for s := range numSlots {
			a := l.target.ownerOf(s)
			by[a] = append(by[a], s)
		}
		var err error
		for a, slots := range by {
			for i := 0; i < len(slots) && err == nil; i += 1024 {
				err = fn(a, slots[i:min(i+1024, len(slots))])
			}
		}
		if err == nil || attempt == 5 || ctx.Err() != nil {
			return err
		}
		if rerr := l.target.refresh(ctx, true); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
}

// restoreUnit turns an RDB key into a unit: one RESTORE, or, for big
// values, DEL and pieces.
func (l *Link) restoreUnit(sh *shard, k *rdb.Key, now time.Time) (*unit, error) {
	u := &unit{sh: sh, slot: keySlot(k.Key), keys: []string{k.Key}, rdb: true, offset: sh.tracker().dispatched}
	exp := k.ExpireAt
	if exp != rdb.NoExpiry && l.opts.TTLGrace > 0 {
		if floor := now.Add(l.opts.TTLGrace).UnixMilli(); exp < floor {
			sh.graced[k.Key] = exp
			exp = floor
		}
	}
	ttl := "0"
	if exp != rdb.NoExpiry {
		ttl = itoa(max(exp, 1))
	}
	if l.opts.BigValueBytes > 0 && len(k.Value) > l.opts.BigValueBytes {
		if cmds, ok := l.pieces(k, exp); ok {
			l.stats.pieces.Add(1)
			u.cmds, u.restart = cmds, true
			return u, nil
		}
	}
	payload, err := k.DumpFor(l.target.version)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	u.cmds = [][]string{{"RESTORE", k.Key, ttl, string(payload), "REPLACE", "ABSTTL"}}
	return u, nil
}

// pieces writes a big list, set, sorted set or hash as DEL plus batches of
// elements, then its expiry. Other values (strings, streams, modules, hashes
// with field TTLs) return ok=false and are restored whole.
func (l *Link) pieces(k *rdb.Key, exp int64) ([][]string, bool) {
	v, err := k.Decode()
	if err != nil {
		return nil, false
	}
	n := l.opts.PieceElements
	cmds := [][]string{{"DEL", k.Key}}
	add := func(cmd string, elems []string, per int) {
		for i := 0; i < len(elems); i += n * per {
			c := append([]string{cmd, k.Key}, elems[i:min(i+n*per, len(elems))]...)
			cmds = append(cmds, c)
		}
	}
	switch v := v.(type) {
	case rdb.List:
		add("RPUSH", v, 1)
	case rdb.Set:
		add("SADD", v, 1)
	case rdb.ZSet:
		var e []string
		for _, m := range v {
			e = append(e, strconv.FormatFloat(m.Score, 'g', -1, 64), m.Member)
		}
		add("ZADD", e, 2)
	case rdb.Hash:
		var e []string
		for _, f := range v {
			if f.ExpireAt != 0 {
				return nil, false
			}
			e = append(e, f.Field, f.Value)
		}
		add("HSET", e, 2)
	default:
		return nil, false
	}
	if exp != rdb.NoExpiry {
		cmds = append(cmds, []string{"PEXPIREAT", k.Key, itoa(max(exp, 1))})
	}
	return cmds, true
}

type rueidisCompleted = rueidis.Completed
