package cluster

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// DefaultRoundSlots is how many slots of one source and target pair a
// worker opens, fills and closes together. Every SETSLOT step of the round
// goes to a node as one pipeline: one round trip, and one nodes.conf
// rewrite per node instead of one per slot, because Redis saves the
// cluster configuration once per event-loop iteration however many SETSLOT
// commands that iteration ran.
const DefaultRoundSlots = 32

// round is a set of slots moving between the same two masters.
type round []plannedMove

// rounds cuts planned into rounds of at most n slots, each with a single
// source and target. Slots keep their order.
func rounds(planned []plannedMove, n int) []round {
	var out []round
	var cur round
	for _, pm := range planned {
		if len(cur) > 0 && (len(cur) == n || cur[0].src.ID != pm.src.ID || cur[0].dst.ID != pm.dst.ID) {
			out = append(out, cur)
			cur = nil
		}
		cur = append(cur, pm)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// moveRound moves the slots of r in redis-cli's order, each step batched
// over the round:
//
//  1. SETSLOT IMPORTING on the target, for every slot of the round;
//  2. SETSLOT MIGRATING on the source, pipelined with each slot's first
//     GETKEYSINSLOT;
//  3. the keys, slot after slot, one MIGRATE in flight per worker;
//  4. SETSLOT NODE on the target;
//  5. SETSLOT NODE on the source;
//  6. SETSLOT NODE on every other master, in parallel.
//
// Per slot the order is exactly the one of [mover.moveSlot]; a round only
// keeps its slots open a little longer. Steps that the view shows as done
// are skipped, so a round is safe to run again on a half-done move.
func (m *mover) moveRound(ctx context.Context, r round) error {
	src, dst := r[0].src, r[0].dst
	var open round
	for _, pm := range r {
		if owns(dst, pm.slot) {
			continue // the target took it already: only finish
		}
		if !owns(src, pm.slot) {
			s := strconv.Itoa(pm.slot)
			return errNode(src.Addr, "move slot "+s, fmt.Errorf("%w: slot %s is owned by neither source %s nor target %s", ErrSlotState, s, src.Addr, dst.Addr))
		}
		open = append(open, pm)
	}
	if len(open) > 0 {
		first, err := m.openRound(ctx, open)
		if err != nil {
			return err
		}
		t0 := time.Now()
		for i, pm := range open {
			if err := m.moveKeysFrom(ctx, pm, first[i]); err != nil {
				return err
			}
		}
		m.timing(&m.tm.Keys, t0)
		// The target first: if the source learned first, it would
		// redirect clients to a target that does not yet consider itself
		// the owner.
		t0 = time.Now()
		if err := m.setSlotNode(ctx, dst, "target", open); err != nil {
			return err
		}
		m.timing(&m.tm.Close, t0)
		for _, pm := range open {
			if err := m.save(ctx, pm, PhaseAssigned, 0, 0); err != nil {
				return err
			}
		}
	}
	if err := m.finishRound(ctx, r); err != nil {
		return err
	}
	for _, pm := range r {
		if err := m.save(ctx, pm, PhaseDone, 0, 0); err != nil {
			return err
		}
	}
	m.mu.Lock()
	m.res.SlotsDone += len(r)
	m.mu.Unlock()
	m.report()
	return nil
}

// openRound sets IMPORTING on the target and then MIGRATING on the source
// for every slot of open, and returns each slot's first batch of keys.
func (m *mover) openRound(ctx context.Context, open round) ([][]string, error) {
	t0 := time.Now()
	defer m.timing(&m.tm.Open, t0)
	src, dst := open[0].src, open[0].dst
	// IMPORTING first: once the source is MIGRATING it sends ASK for new
	// keys, and the target must already accept them.
	var cmds [][]string
	var steps []string
	for _, pm := range open {
		if dst.Importing[pm.slot] != src.ID {
			s := strconv.Itoa(pm.slot)
			cmds = append(cmds, []string{"CLUSTER", "SETSLOT", s, "IMPORTING", src.ID})
			steps = append(steps, "SETSLOT "+s+" IMPORTING")
		}
	}
	if err := m.pipelineOK(ctx, dst.Addr, cmds, steps); err != nil {
		return nil, err
	}
	cmds, steps = cmds[:0], steps[:0]
	getAt := make([]int, len(open))
	limit := strconv.FormatInt(m.limit.Load(), 10)
	for i, pm := range open {
		s := strconv.Itoa(pm.slot)
		if src.Migrating[pm.slot] != dst.ID {
			cmds = append(cmds, []string{"CLUSTER", "SETSLOT", s, "MIGRATING", dst.ID})
			steps = append(steps, "SETSLOT "+s+" MIGRATING")
		}
		getAt[i] = len(cmds)
		cmds = append(cmds, []string{"CLUSTER", "GETKEYSINSLOT", s, limit})
		steps = append(steps, "GETKEYSINSLOT "+s)
	}
	res, err := m.e.pipeline(ctx, src.Addr, "SETSLOT MIGRATING (round)", cmds)
	if err != nil {
		return nil, err
	}
	for i, r := range res {
		if err := r.Error(); err != nil {
			return nil, errNode(src.Addr, steps[i], err)
		}
	}
	first := make([][]string, len(open))
	for i := range open {
		keys, err := res[getAt[i]].AsStrSlice()
		if err != nil {
			return nil, errNode(src.Addr, steps[getAt[i]], err)
		}
		first[i] = keys
	}
	for _, pm := range open {
		if err := m.save(ctx, pm, PhaseMigrating, 0, 0); err != nil {
			return nil, err
		}
	}
	return first, nil
}

// setSlotNode runs SETSLOT NODE <target> for every slot of r on node n, in
// one pipeline; role names n in errors.
func (m *mover) setSlotNode(ctx context.Context, n *NodeState, role string, r round) error {
	cmds := make([][]string, len(r))
	steps := make([]string, len(r))
	for i, pm := range r {
		s := strconv.Itoa(pm.slot)
		cmds[i] = []string{"CLUSTER", "SETSLOT", s, "NODE", pm.dst.ID}
		steps[i] = "SETSLOT " + s + " NODE (" + role + ")"
	}
	return m.pipelineOK(ctx, n.Addr, cmds, steps)
}

// pipelineOK sends cmds to addr in one round trip and returns the first
// error reply, named by its step.
func (m *mover) pipelineOK(ctx context.Context, addr string, cmds [][]string, steps []string) error {
	if len(cmds) == 0 {
		return nil
	}
	res, err := m.e.pipeline(ctx, addr, steps[0]+" (round of "+strconv.Itoa(len(cmds))+")", cmds)
	if err != nil {
		return err
	}
	for i, r := range res {
		if err := r.Error(); err != nil {
			return errNode(addr, steps[i], err)
		}
	}
	return nil
}

// finishRound tells the source, then every other master, that the target
// owns each slot of r. The source's answers are judged per slot as in
// [mover.finishSlot]: "still hold keys" moves the rest and repeats, "only
// with masters" (the source was failed over) is tolerated.
func (m *mover) finishRound(ctx context.Context, r round) error {
	t0 := time.Now()
	defer m.timing(&m.tm.Close, t0)
	src := r[0].src
	cmds := make([][]string, len(r))
	for i, pm := range r {
		cmds[i] = []string{"CLUSTER", "SETSLOT", strconv.Itoa(pm.slot), "NODE", pm.dst.ID}
	}
	res, err := m.e.pipeline(ctx, src.Addr, "SETSLOT NODE (source, round)", cmds)
	if err != nil {
		return err
	}
	for i, pm := range r {
		err := res[i].Error()
		if err == nil || isRedisErr(err, "only with masters") {
			continue
		}
		s := strconv.Itoa(pm.slot)
		if !isRedisErr(err, "still hold keys") {
			return errNode(src.Addr, "SETSLOT "+s+" NODE (source)", err)
		}
		// A resumed slot whose keys were not all moved before the target
		// took it: move the rest (the target accepts them as the owner).
		if err := m.moveKeys(ctx, pm); err != nil {
			return err
		}
		err = m.e.ok(ctx, src.Addr, "SETSLOT "+s+" NODE (source)", "CLUSTER", "SETSLOT", s, "NODE", pm.dst.ID)
		if err != nil && !isRedisErr(err, "only with masters") {
			return err
		}
	}
	var wg sync.WaitGroup
	for _, o := range m.view.Masters() {
		if o.ID == src.ID || o.ID == r[0].dst.ID || !o.Reachable {
			continue
		}
		wg.Go(func() {
			if err := m.setSlotNode(ctx, o, "other master", r); err != nil {
				// Gossip carries the target's higher epoch to this master
				// anyway; a failure here only delays that.
				m.e.log.Warn("SETSLOT NODE on another master failed; gossip will propagate", "slots", Ranges(slotsOf(r)), "node", o.Addr, "err", err)
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

func slotsOf(r round) []int {
	out := make([]int, len(r))
	for i, pm := range r {
		out[i] = pm.slot
	}
	return out
}
