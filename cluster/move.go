package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for [MoveOptions].
const (
	// DefaultBatchKeys caps the keys of one MIGRATE. redis-cli moves 10 per
	// call. On Redis 7.0 a MIGRATE costs its source a fixed 0.15-0.2 ms
	// (waiting for the target to wake up) plus about 7.5 us per key (it
	// reads each reply byte by byte), so 10-key calls spend most of their
	// time on the fixed part. 256 moves a typical slot of a million-key
	// cluster in one call (about 2 ms of blocking for 32-byte values);
	// MaxBatchTime halves it where keys are slower, and a smaller value
	// trades speed for a lower latency of other clients (see
	// docs/cluster-engine.md).
	DefaultBatchKeys = 256
	// DefaultBatchBytes is the payload one MIGRATE aims for, so that batches
	// of large keys stay small.
	DefaultBatchBytes = 2 << 20
	// DefaultMaxBatchTime: a MIGRATE slower than this halves the batch.
	// Both ends of a MIGRATE block for its duration, so this bounds the
	// latency a move adds to foreground commands.
	DefaultMaxBatchTime = 10 * time.Millisecond
	// DefaultParallel is how many rounds of slots move at once.
	DefaultParallel = 2
	// DefaultMigratesPerNode: one MIGRATE in flight per source node.
	DefaultMigratesPerNode = 1
)

// BusyKeyPolicy says what to do when a key exists on both the source and
// the target (BUSYKEY) with different values. Identical values are always
// resolved by keeping one copy.
type BusyKeyPolicy int

// Busy key policies.
const (
	// BusyKeyFail stops the move of that slot with ErrBusyKeyConflict and
	// leaves both copies in place.
	BusyKeyFail BusyKeyPolicy = iota
	// BusyKeyKeepSource overwrites the target's copy with the source's.
	BusyKeyKeepSource
	// BusyKeyKeepTarget deletes the source's copy.
	BusyKeyKeepTarget
)

// MigrationMode selects between server-side and engine-driven migration.
type MigrationMode int

// Migration modes.
const (
	// MigrationAuto uses server-side atomic migration when both ends offer
	// the same mechanism, the classic path otherwise.
	MigrationAuto MigrationMode = iota
	// MigrationForceClassic always uses the classic path.
	MigrationForceClassic
)

// Move is one slot to move. From and To are node ids or addresses.
type Move struct {
	Slot     int
	From, To string
}

// MoveOptions configures MoveSlots. The zero value moves as fast as the
// defaults allow, without persisting state.
type MoveOptions struct {
	// Store receives each slot's state at every phase change; nil keeps no
	// state (the move cannot be resumed by another process).
	Store StateStore
	// Progress, when set, is called after every batch and every slot, from
	// one goroutine at a time. It must not block for long.
	Progress func(Progress)
	// MaxKeysPerSecond caps the move rate; zero means no cap.
	MaxKeysPerSecond int
	// BatchPause is slept between two MIGRATE calls of one worker.
	BatchPause time.Duration
	// BatchKeys caps keys per MIGRATE; zero means DefaultBatchKeys.
	BatchKeys int
	// BatchBytes is the payload a MIGRATE aims for; zero means
	// DefaultBatchBytes.
	BatchBytes int64
	// MaxBatchTime: a slower MIGRATE halves the batch; zero means
	// DefaultMaxBatchTime.
	MaxBatchTime time.Duration
	// Parallel is how many rounds of slots move at once; zero means
	// DefaultParallel. Rounds with the same source share its
	// MigratesPerNode.
	Parallel int
	// MigratesPerNode is how many MIGRATE commands may be in flight on one
	// source node at once; zero means DefaultMigratesPerNode.
	MigratesPerNode int
	// RoundSlots is how many slots of one source and target are opened
	// and closed together, with one pipelined SETSLOT per step and node;
	// zero means DefaultRoundSlots, 1 moves slot by slot as redis-cli does.
	RoundSlots int
	// BigKeyBytes is the MEMORY USAGE from which a key is big (reported and
	// moved alone); zero means DefaultBigKeyBytes.
	BigKeyBytes int64
	// SkipScan skips sizing the keys before the move. Big keys are then not
	// reported in advance and batches adapt by time only.
	SkipScan bool
	// AllowSlowKeys moves keys whose estimated move time exceeds half of
	// cluster-node-timeout instead of refusing with ErrBigKey.
	AllowSlowKeys bool
	// BusyKey resolves keys present on both ends with different values.
	BusyKey BusyKeyPolicy
	// Migration selects server-side or classic migration.
	Migration MigrationMode
}

// Progress reports how a move is going.
type Progress struct {
	SlotsDone, SlotsTotal int
	// Keys and Bytes moved so far; Bytes is estimated from MEMORY USAGE.
	Keys, Bytes int64
	// KeysTotal and BytesTotal come from the pre-move scan (zero when the
	// scan was skipped).
	KeysTotal, BytesTotal int64
	Elapsed               time.Duration
	// KeysPerSecond is the mean rate since the start.
	KeysPerSecond float64
	// ETA is the expected remaining time, zero when unknown.
	ETA time.Duration
}

func (p Progress) String() string {
	return fmt.Sprintf("slots %d/%d keys %d/%d bytes %d rate %.0f keys/s eta %v",
		p.SlotsDone, p.SlotsTotal, p.Keys, p.KeysTotal, p.Bytes, p.KeysPerSecond, p.ETA.Round(time.Second))
}

// MoveResult summarises a finished (or stopped) move.
type MoveResult struct {
	Progress
	// BigKeys are the big keys found by the scan, before anything moved.
	BigKeys []BigKey
	// BusyKeysResolved counts keys found on both ends with equal values.
	BusyKeysResolved int
	// Migration is the mechanism used ("classic" or a server-side one).
	Migration AtomicMigration
	// Timings says where the time went.
	Timings MoveTimings
}

// MoveTimings says where a move spent its time. Phases that several
// workers run at once are summed over the workers, so the sum can exceed
// Progress.Elapsed.
type MoveTimings struct {
	// Scan is sizing the keys before the move (wall clock).
	Scan time.Duration
	// Open is SETSLOT IMPORTING and MIGRATING with the first GETKEYSINSLOT.
	Open time.Duration
	// Keys is GETKEYSINSLOT and MIGRATE, BUSYKEY resolution included.
	Keys time.Duration
	// Close is SETSLOT NODE on the target, the source and other masters.
	Close time.Duration
	// Save is StateStore.SaveSlot.
	Save time.Duration
}

func (t MoveTimings) String() string {
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("scan %v open %v keys %v close %v save %v", r(t.Scan), r(t.Open), r(t.Keys), r(t.Close), r(t.Save))
}

// plannedMove is a Move resolved against a view.
type plannedMove struct {
	slot     int
	src, dst *NodeState
}

// mover runs one MoveSlots call.
type mover struct {
	e     *Engine
	opts  MoveOptions
	view  *View
	start time.Time
	scans map[int]slotScan

	limit atomic.Int64 // adaptive keys per MIGRATE
	// tm accumulates MoveTimings in nanoseconds.
	tm struct{ Open, Keys, Close, Save atomic.Int64 }

	mu       sync.Mutex // guards the fields below and serialises Progress calls
	res      MoveResult
	timeouts map[string]time.Duration // cluster-node-timeout by address
	states   map[int]SlotState        // last saved per slot
	// migrating holds, per source address, a token taken for each MIGRATE
	// (see acquireSource).
	migrating map[string]chan struct{}
}

// MoveSlots moves each slot from its source to its target master. It
// inspects the cluster from seed, sizes the keys of the moving slots (big
// keys are reported in the result before anything changes, and a key that
// could block a node past half of cluster-node-timeout stops the move with
// ErrBigKey unless AllowSlowKeys), then moves up to Parallel slots at a
// time in redis-cli's order. A slot whose target already owns it is only
// finished (SETSLOT NODE on the rest), so MoveSlots is safe to run again on
// a half-done move; [Engine.Resume] does that from a store.
//
// Cancelling ctx stops between commands; slots in flight stay open and
// their state says so.
func (e *Engine) MoveSlots(ctx context.Context, seed string, moves []Move, opts MoveOptions) (*MoveResult, error) {
	m := e.newMover(opts, nil)
	v, err := e.Inspect(ctx, seed)
	if err != nil {
		return &m.res, err
	}
	m.view = v
	planned, err := resolveMoves(v, moves)
	if err != nil {
		return &m.res, err
	}
	m.res.SlotsTotal = len(planned)
	if err := m.loadStates(ctx, planned); err != nil {
		return &m.res, err
	}
	if m.opts.Migration == MigrationAuto {
		done, err := m.tryAtomic(ctx, planned)
		if done || err != nil {
			return &m.res, err
		}
	}
	if !m.opts.SkipScan {
		t0 := time.Now()
		err := m.scan(ctx, planned)
		m.res.Timings.Scan = time.Since(t0)
		if err != nil {
			return &m.res, err
		}
	}
	err = m.runWorkers(ctx, rounds(planned, m.opts.RoundSlots))
	m.report()
	m.mu.Lock()
	m.res.Timings.Open = time.Duration(m.tm.Open.Load())
	m.res.Timings.Keys = time.Duration(m.tm.Keys.Load())
	m.res.Timings.Close = time.Duration(m.tm.Close.Load())
	m.res.Timings.Save = time.Duration(m.tm.Save.Load())
	m.mu.Unlock()
	m.e.log.Info("slot move finished", "slots", m.res.SlotsDone, "keys", m.res.Keys, "elapsed", m.res.Elapsed, "timings", m.res.Timings.String(), "err", err)
	return &m.res, err
}

// Resume finishes every slot move recorded in store that is not done, by
// running MoveSlots on them with opts (whose Store is set to store).
func (e *Engine) Resume(ctx context.Context, seed string, store StateStore, opts MoveOptions) (*MoveResult, error) {
	states, err := store.LoadSlots(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: resume: load slot states: %w", err)
	}
	var moves []Move
	for _, st := range states {
		if st.Phase != PhaseDone {
			moves = append(moves, Move{Slot: st.Slot, From: st.From, To: st.To})
		}
	}
	opts.Store = store
	if len(moves) == 0 {
		return &MoveResult{Migration: MigrationClassic}, nil
	}
	return e.MoveSlots(ctx, seed, moves, opts)
}

// newMover prepares a mover over view.
func (e *Engine) newMover(opts MoveOptions, view *View) *mover {
	m := &mover{e: e, opts: withMoveDefaults(opts), start: time.Now(), scans: map[int]slotScan{},
		timeouts: map[string]time.Duration{}, states: map[int]SlotState{}, view: view,
		migrating: map[string]chan struct{}{}}
	m.limit.Store(int64(m.opts.BatchKeys))
	m.res.Migration = MigrationClassic
	return m
}

func withMoveDefaults(o MoveOptions) MoveOptions {
	if o.BatchKeys <= 0 {
		o.BatchKeys = DefaultBatchKeys
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = DefaultBatchBytes
	}
	if o.MaxBatchTime <= 0 {
		o.MaxBatchTime = DefaultMaxBatchTime
	}
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	if o.MigratesPerNode <= 0 {
		o.MigratesPerNode = DefaultMigratesPerNode
	}
	if o.RoundSlots <= 0 {
		o.RoundSlots = DefaultRoundSlots
	}
	if o.BigKeyBytes <= 0 {
		o.BigKeyBytes = DefaultBigKeyBytes
	}
	return o
}

// resolveMoves maps ids or addresses to masters of the view and rejects
// duplicate slots and moves to or from replicas.
func resolveMoves(v *View, moves []Move) ([]plannedMove, error) {
	seen := map[int]bool{}
	out := make([]plannedMove, 0, len(moves))
	for _, mv := range moves {
		if mv.Slot < 0 || mv.Slot >= NumSlots {
			return nil, fmt.Errorf("%w: slot %d out of range", ErrInvalidPlan, mv.Slot)
		}
		if seen[mv.Slot] {
			return nil, fmt.Errorf("%w: slot %d listed twice", ErrInvalidPlan, mv.Slot)
		}
		seen[mv.Slot] = true
		src, dst := v.Node(mv.From), v.Node(mv.To)
		if src == nil || dst == nil {
			return nil, fmt.Errorf("%w: move of slot %d from %q to %q", ErrUnknownNode, mv.Slot, mv.From, mv.To)
		}
		if !src.IsMaster() || !dst.IsMaster() || src.ID == dst.ID {
			return nil, fmt.Errorf("%w: slot %d: source %s and target %s must be two different masters", ErrInvalidPlan, mv.Slot, src.Addr, dst.Addr)
		}
		out = append(out, plannedMove{slot: mv.Slot, src: src, dst: dst})
	}
	return out, nil
}

// loadStates keeps earlier states of the same moves (a resume) and records
// the others as planned.
func (m *mover) loadStates(ctx context.Context, planned []plannedMove) error {
	if m.opts.Store == nil {
		return nil
	}
	prev, err := m.opts.Store.LoadSlots(ctx)
	if err != nil {
		return fmt.Errorf("cluster: load slot states: %w", err)
	}
	old := map[int]SlotState{}
	for _, st := range prev {
		old[st.Slot] = st
	}
	for _, pm := range planned {
		if st, ok := old[pm.slot]; ok && st.From == pm.src.ID && st.To == pm.dst.ID && st.Phase != PhaseDone {
			m.states[pm.slot] = st
			continue
		}
		if err := m.save(ctx, pm, PhasePlanned, 0, 0); err != nil {
			return err
		}
	}
	return nil
}

// save records the phase of a slot in the store.
func (m *mover) save(ctx context.Context, pm plannedMove, ph Phase, keys, bytes int64) error {
	if m.opts.Store == nil {
		return nil
	}
	m.mu.Lock()
	st := m.states[pm.slot]
	st.Slot, st.From, st.To, st.Phase, st.Updated = pm.slot, pm.src.ID, pm.dst.ID, ph, time.Now()
	st.Keys += keys
	st.Bytes += bytes
	m.states[pm.slot] = st
	m.mu.Unlock()
	defer m.timing(&m.tm.Save, time.Now())
	// Persisting must not be skipped because the move was cancelled: the
	// state of an interrupted slot is exactly what a resume needs.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.e.cfg.CommandTimeout)
	defer cancel()
	if err := m.opts.Store.SaveSlot(sctx, st); err != nil {
		return fmt.Errorf("cluster: save state of slot %d (%s): %w", pm.slot, ph, err)
	}
	return nil
}

// scanWorkers is how many scan calls may be in flight at once (more with a
// larger Parallel). A call costs its node about 0.2 ms (scanBudget keys)
// but a round trip costs more on a busy machine, so several in flight keep
// the node busy; four queued calls still make another client wait under a
// millisecond.
const scanWorkers = 4

// scan sizes the keys of every moving slot and refuses keys that could
// block a node past half its cluster-node-timeout.
func (m *mover) scan(ctx context.Context, planned []plannedMove) error {
	var firstErr error
	work := make(chan round)
	var wg sync.WaitGroup
	for range max(m.opts.Parallel, scanWorkers) {
		wg.Go(func() {
			for r := range work {
				scs, err := m.e.sizeSlots(ctx, r[0].src.Addr, slotsOf(r), m.opts.BigKeyBytes)
				m.mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				for i, sc := range scs {
					m.scans[r[i].slot] = sc
					m.res.KeysTotal += sc.keys
					m.res.BytesTotal += sc.bytes
					m.res.BigKeys = append(m.res.BigKeys, sc.big...)
				}
				m.mu.Unlock()
			}
		})
	}
	// Rounds group slots by source, which is what one scan round needs.
	for _, r := range rounds(planned, scanSlotsPerRound) {
		select {
		case work <- r:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	slices.SortFunc(m.res.BigKeys, func(a, b BigKey) int { return int(b.Bytes - a.Bytes) })
	var tooBig []string
	for _, bk := range m.res.BigKeys {
		m.e.log.Warn("big key in a moving slot", "key", bk.Key, "slot", bk.Slot, "node", bk.Node, "bytes", bk.Bytes, "estimate", bk.Estimate)
		nt, err := m.nodeTimeout(ctx, bk.Node)
		if err != nil {
			return err
		}
		if bk.Estimate > nt/2 && !m.opts.AllowSlowKeys {
			tooBig = append(tooBig, bk.String())
		}
	}
	if len(tooBig) > 0 {
		return fmt.Errorf("%w (cluster-node-timeout allows half of it): %s", ErrBigKey, strings.Join(tooBig, "; "))
	}
	return nil
}

// nodeTimeout returns cluster-node-timeout of addr, read once. A node that
// hides CONFIG counts as Redis's default of 15s.
func (m *mover) nodeTimeout(ctx context.Context, addr string) (time.Duration, error) {
	m.mu.Lock()
	d, ok := m.timeouts[addr]
	m.mu.Unlock()
	if ok {
		return d, nil
	}
	d = 15 * time.Second
	kv, err := m.e.strs(ctx, addr, "CONFIG GET cluster-node-timeout", "CONFIG", "GET", "cluster-node-timeout")
	if err != nil && errors.Is(err, ErrUnreachable) {
		return 0, err
	}
	if err == nil && len(kv) == 2 {
		if ms, perr := strconv.Atoi(kv[1]); perr == nil && ms > 0 {
			d = time.Duration(ms) * time.Millisecond
		}
	}
	m.mu.Lock()
	m.timeouts[addr] = d
	m.mu.Unlock()
	return d, nil
}

// timing adds the time since t0 to the accumulator acc.
func (m *mover) timing(acc *atomic.Int64, t0 time.Time) { acc.Add(int64(time.Since(t0))) }

// runWorkers moves the rounds, Parallel at a time; the first error stops
// the others after their current command.
func (m *mover) runWorkers(ctx context.Context, rs []round) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan round)
	errs := make([]error, m.opts.Parallel)
	var wg sync.WaitGroup
	for i := range m.opts.Parallel {
		wg.Go(func() {
			for r := range work {
				if err := m.moveRound(ctx, r); err != nil {
					errs[i] = err
					cancel()
					return
				}
			}
		})
	}
feed:
	for _, r := range rs {
		select {
		case work <- r:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	var real []error
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			real = append(real, err)
		}
	}
	if len(real) > 0 {
		return errors.Join(real...)
	}
	return ctx.Err()
}

// owns reports whether the node claims slot in its own view.
func owns(n *NodeState, slot int) bool {
	for _, r := range n.Slots {
		if slot >= r.Start && slot <= r.End {
			return true
		}
	}
	return false
}

// moveSlot moves one slot in redis-cli's order, skipping the steps the
// view shows as done.
func (m *mover) moveSlot(ctx context.Context, pm plannedMove) error {
	src, dst, s := pm.src, pm.dst, strconv.Itoa(pm.slot)
	if !owns(dst, pm.slot) {
		if !owns(src, pm.slot) {
			return errNode(src.Addr, "move slot "+s, fmt.Errorf("%w: slot %s is owned by neither source %s nor target %s", ErrSlotState, s, src.Addr, dst.Addr))
		}
		// IMPORTING first: once the source is MIGRATING it sends ASK for
		// new keys, and the target must already accept them.
		if dst.Importing[pm.slot] != src.ID {
			if err := m.e.ok(ctx, dst.Addr, "SETSLOT "+s+" IMPORTING", "CLUSTER", "SETSLOT", s, "IMPORTING", src.ID); err != nil {
				return err
			}
		}
		if src.Migrating[pm.slot] != dst.ID {
			if err := m.e.ok(ctx, src.Addr, "SETSLOT "+s+" MIGRATING", "CLUSTER", "SETSLOT", s, "MIGRATING", dst.ID); err != nil {
				return err
			}
		}
		if err := m.save(ctx, pm, PhaseMigrating, 0, 0); err != nil {
			return err
		}
		if err := m.moveKeys(ctx, pm); err != nil {
			return err
		}
		// The target first: if the source learned first, it would redirect
		// clients to a target that does not yet consider itself the owner.
		if err := m.e.ok(ctx, dst.Addr, "SETSLOT "+s+" NODE (target)", "CLUSTER", "SETSLOT", s, "NODE", dst.ID); err != nil {
			return err
		}
		if err := m.save(ctx, pm, PhaseAssigned, 0, 0); err != nil {
			return err
		}
	}
	if err := m.finishSlot(ctx, pm); err != nil {
		return err
	}
	if err := m.save(ctx, pm, PhaseDone, 0, 0); err != nil {
		return err
	}
	m.mu.Lock()
	m.res.SlotsDone++
	m.mu.Unlock()
	m.report()
	return nil
}

// finishSlot tells the source, then every other master, that the target
// owns the slot.
func (m *mover) finishSlot(ctx context.Context, pm plannedMove) error {
	src, dst, s := pm.src, pm.dst, strconv.Itoa(pm.slot)
	err := m.e.ok(ctx, src.Addr, "SETSLOT "+s+" NODE (source)", "CLUSTER", "SETSLOT", s, "NODE", dst.ID)
	if err != nil && isRedisErr(err, "still hold keys") {
		// A resumed slot whose keys were not all moved before the target
		// took it: move the rest (the target accepts them as the owner).
		if err := m.moveKeys(ctx, pm); err != nil {
			return err
		}
		err = m.e.ok(ctx, src.Addr, "SETSLOT "+s+" NODE (source)", "CLUSTER", "SETSLOT", s, "NODE", dst.ID)
	}
	// A source that was failed over meanwhile is a replica now; it follows
	// its new master, as redis-cli tolerates.
	if err != nil && !isRedisErr(err, "only with masters") {
		return err
	}
	others := m.view.Masters()
	var wg sync.WaitGroup
	for _, o := range others {
		if o.ID == src.ID || o.ID == dst.ID || !o.Reachable {
			continue
		}
		wg.Go(func() {
			if err := m.e.ok(ctx, o.Addr, "SETSLOT "+s+" NODE (other master)", "CLUSTER", "SETSLOT", s, "NODE", dst.ID); err != nil {
				// Gossip carries the target's higher epoch to this master
				// anyway; a failure here only delays that.
				m.e.log.Warn("SETSLOT NODE on another master failed; gossip will propagate", "slot", pm.slot, "node", o.Addr, "err", err)
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

// report computes rates and calls the progress callback.
func (m *mover) report() {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := &m.res.Progress
	p.Elapsed = time.Since(m.start)
	if sec := p.Elapsed.Seconds(); sec > 0 {
		p.KeysPerSecond = float64(p.Keys) / sec
	}
	p.ETA = 0
	switch {
	case p.KeysTotal > 0 && p.KeysPerSecond > 0:
		p.ETA = time.Duration(float64(max(0, p.KeysTotal-p.Keys)) / p.KeysPerSecond * float64(time.Second))
	case p.SlotsDone > 0:
		p.ETA = time.Duration(float64(p.Elapsed) * float64(p.SlotsTotal-p.SlotsDone) / float64(p.SlotsDone))
	}
	if m.opts.Progress != nil {
		m.opts.Progress(*p)
	}
}
