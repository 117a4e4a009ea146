package cluster

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// FixOptions configures Fix.
type FixOptions struct {
	// Force fixes even when masters are unreachable or flagged failing.
	// Their slots are left alone, and the report lists them.
	Force bool
	// Move configures the key moves a fix needs (batching, busy keys).
	// Its Store and Progress are ignored.
	Move MoveOptions
}

// FixAction is one thing Fix did.
type FixAction struct {
	// Slot is the slot concerned, or -1 for actions on many slots.
	Slot int
	// Case names the situation, after redis-cli's clusterManagerFixOpenSlot
	// ("case 1: migrating+importing", …) or "coverage".
	Case   string
	Detail string
}

func (a FixAction) String() string {
	if a.Slot < 0 {
		return a.Case + ": " + a.Detail
	}
	return fmt.Sprintf("slot %d: %s: %s", a.Slot, a.Case, a.Detail)
}

// FixReport says what Fix did.
type FixReport struct {
	Actions []FixAction
	// Forced is set when Fix ran despite unreachable masters.
	Forced bool
	// Skipped lists the unreachable or failing masters a forced fix left
	// alone.
	Skipped []string
}

func (r *FixReport) String() string {
	var b strings.Builder
	if r.Forced {
		fmt.Fprintf(&b, "forced fix; masters not inspected: %s\n", strings.Join(r.Skipped, ", "))
	}
	for _, a := range r.Actions {
		b.WriteString(a.String())
		b.WriteByte('\n')
	}
	if len(r.Actions) == 0 {
		b.WriteString("nothing to fix\n")
	}
	return b.String()
}

func (r *FixReport) add(slot int, kase, format string, args ...any) {
	r.Actions = append(r.Actions, FixAction{Slot: slot, Case: kase, Detail: fmt.Sprintf(format, args...)})
}

// Fix closes open slots and assigns uncovered ones, the way
// `redis-cli --cluster fix` does, with two differences: busy keys are
// compared rather than overwritten, and it refuses to act while masters are
// unreachable unless forced. The report lists every action.
func (e *Engine) Fix(ctx context.Context, seed string, opts FixOptions) (*FixReport, error) {
	rep := &FixReport{}
	v, err := e.Inspect(ctx, seed)
	if err != nil {
		return rep, err
	}
	bad := unhealthyMasters(v)
	if len(bad) > 0 {
		if !opts.Force {
			return rep, fmt.Errorf("%w: %s", ErrMastersUnreachable, strings.Join(bad, ", "))
		}
		rep.Forced, rep.Skipped = true, bad
		e.log.Warn("forced fix with masters unreachable", "masters", bad)
	}
	f := &fixer{e: e, opts: opts, rep: rep, skip: bad}
	for _, slot := range v.OpenSlots() {
		v, err := e.Inspect(ctx, seed) // every fix changes the picture
		if err != nil {
			return rep, err
		}
		if err := f.fixOpenSlot(ctx, v, slot); err != nil {
			return rep, err
		}
	}
	if v, err = e.Inspect(ctx, seed); err != nil {
		return rep, err
	}
	if err := f.fixCoverage(ctx, v); err != nil {
		return rep, err
	}
	return rep, nil
}

// unhealthyMasters lists masters that are unreachable or flagged failing.
func unhealthyMasters(v *View) []string {
	var out []string
	for _, f := range Analyze(v) {
		if f.Kind != FindUnreachable && f.Kind != FindFailing {
			continue
		}
		if n := v.Node(f.NodeID); n != nil && n.IsMaster() && !slices.Contains(out, n.Addr) {
			out = append(out, n.Addr)
		}
	}
	slices.Sort(out)
	return out
}

type fixer struct {
	e    *Engine
	opts FixOptions
	rep  *FixReport
	skip []string
}

// masters returns the reachable masters a fix may touch.
func (f *fixer) masters(v *View) []*NodeState {
	var out []*NodeState
	for _, m := range v.Masters() {
		if m.Reachable && !slices.Contains(f.skip, m.Addr) {
			out = append(out, m)
		}
	}
	return out
}

// countKeys returns COUNTKEYSINSLOT of slot on each node.
func (f *fixer) countKeys(ctx context.Context, nodes []*NodeState, slot int) (map[string]int64, error) {
	out := map[string]int64{}
	for _, n := range nodes {
		c, err := f.e.integer(ctx, n.Addr, "", "CLUSTER", "COUNTKEYSINSLOT", strconv.Itoa(slot))
		if err != nil {
			return nil, err
		}
		out[n.ID] = c
	}
	return out, nil
}

// mostKeys picks the node with the most keys in the slot; ties go to the
// earliest in prefer order, then to the first node.
func mostKeys(nodes []*NodeState, counts map[string]int64, prefer ...*NodeState) *NodeState {
	var best *NodeState
	for _, n := range append(slices.Clone(prefer), nodes...) {
		if n == nil {
			continue
		}
		if best == nil || counts[n.ID] > counts[best.ID] {
			best = n
		}
	}
	return best
}

func removeNode(list []*NodeState, n *NodeState) []*NodeState {
	return slices.DeleteFunc(list, func(x *NodeState) bool { return x.ID == n.ID })
}

func addrs(list []*NodeState) string {
	s := make([]string, len(list))
	for i, n := range list {
		s[i] = n.Addr
	}
	return strings.Join(s, ",")
}

// fixOpenSlot follows redis-cli's clusterManagerFixOpenSlot: find the
// owner (or elect the node with most keys), demote extra owners to
// importing, then handle the four cases.
func (f *fixer) fixOpenSlot(ctx context.Context, v *View, slot int) error {
	s := strconv.Itoa(slot)
	masters := f.masters(v)
	counts, err := f.countKeys(ctx, masters, slot)
	if err != nil {
		return err
	}
	// Owners are the masters whose configuration claims the slot. Unlike
	// redis-cli, holding keys alone does not make a node an owner while one
	// master claims the slot: an interrupted move (keys on both ends) is then
	// finished forward as case 1 instead of being reassigned by key count.
	var owners, migrating, importing []*NodeState
	for _, n := range masters {
		if owns(n, slot) {
			owners = append(owners, n)
		}
	}
	if len(owners) == 0 {
		for _, n := range masters {
			if counts[n.ID] > 0 {
				owners = append(owners, n)
			}
		}
	}
	var owner *NodeState
	if len(owners) == 1 {
		owner = owners[0]
	}
	for _, n := range masters {
		switch {
		case n.Migrating[slot] != "":
			migrating = append(migrating, n)
		case n.Importing[slot] != "":
			importing = append(importing, n)
		case n != owner && counts[n.ID] > 0:
			importing = append(importing, n) // keys in a node that is not the owner
		}
	}
	if len(migrating) == 0 && len(importing) == 0 {
		return nil // closed meanwhile
	}
	if owner == nil {
		var prefer *NodeState
		if len(migrating) == 1 {
			prefer = migrating[0]
		}
		owner = mostKeys(owners, counts, prefer)
		if owner == nil {
			owner = mostKeys(masters, counts, prefer)
		}
		if owner == nil {
			return fmt.Errorf("%w: slot %d: no reachable master to own it", ErrUnfixable, slot)
		}
		if err := f.e.ok(ctx, owner.Addr, "fix: SETSLOT "+s+" STABLE", "CLUSTER", "SETSLOT", s, "STABLE"); err != nil {
			return err
		}
		if err := f.claim(ctx, owner, []int{slot}); err != nil {
			return err
		}
		f.rep.add(slot, "owner", "no single owner; %s (most keys) now owns it", owner.Addr)
		migrating, importing = removeNode(migrating, owner), removeNode(importing, owner)
	}
	if len(owners) > 1 {
		for _, n := range owners {
			if n.ID == owner.ID {
				continue
			}
			if err := f.e.ok(ctx, n.Addr, "fix: DELSLOTS "+s, "CLUSTER", "DELSLOTS", s); err != nil && !isRedisErr(err, "already unassigned") {
				return err
			}
			if err := f.e.ok(ctx, n.Addr, "fix: SETSLOT "+s+" NODE owner", "CLUSTER", "SETSLOT", s, "NODE", owner.ID); err != nil {
				return err
			}
			if err := f.e.ok(ctx, n.Addr, "fix: SETSLOT "+s+" IMPORTING owner", "CLUSTER", "SETSLOT", s, "IMPORTING", owner.ID); err != nil {
				return err
			}
			importing = append(removeNode(importing, n), n)
			migrating = removeNode(migrating, n)
			f.rep.add(slot, "multiple owners", "%s gave the slot up to %s and imports its keys", n.Addr, owner.Addr)
		}
	}
	m := f.e.newMover(f.opts.Move, v)
	switch {
	case len(migrating) == 1 && len(importing) == 1:
		src, dst := migrating[0], importing[0]
		f.rep.add(slot, "case 1: migrating+importing", "moving the slot from %s to %s", src.Addr, dst.Addr)
		return m.moveSlot(ctx, plannedMove{slot: slot, src: src, dst: dst})
	case len(migrating) == 0 && len(importing) > 0:
		f.rep.add(slot, "case 2: importing only", "moving keys from %s to owner %s", addrs(importing), owner.Addr)
		for _, n := range importing {
			if n.ID == owner.ID {
				continue
			}
			if err := m.moveKeys(ctx, plannedMove{slot: slot, src: n, dst: owner}); err != nil {
				return err
			}
			if err := f.e.ok(ctx, n.Addr, "fix: SETSLOT "+s+" STABLE", "CLUSTER", "SETSLOT", s, "STABLE"); err != nil {
				return err
			}
		}
		for _, n := range masters {
			if n.ID == owner.ID {
				continue
			}
			if err := f.e.ok(ctx, n.Addr, "fix: SETSLOT "+s+" NODE owner", "CLUSTER", "SETSLOT", s, "NODE", owner.ID); err != nil {
				return err
			}
		}
		return nil
	case len(migrating) == 1 && len(importing) > 1:
		src := migrating[0]
		target := src.Migrating[slot]
		var dst *NodeState
		for _, n := range importing {
			if counts[n.ID] > 0 {
				return fmt.Errorf("%w: slot %d migrating on %s, importing with keys on %s", ErrUnfixable, slot, src.Addr, n.Addr)
			}
			if n.ID == target {
				dst = n
			}
		}
		if dst != nil {
			f.rep.add(slot, "case 3: one migrating, many importing", "moving the slot from %s to %s, closing it on %s", src.Addr, dst.Addr, addrs(removeNode(slices.Clone(importing), dst)))
			if err := m.moveSlot(ctx, plannedMove{slot: slot, src: src, dst: dst}); err != nil {
				return err
			}
			for _, n := range importing {
				if n.ID != dst.ID {
					if err := f.e.ok(ctx, n.Addr, "fix: SETSLOT "+s+" STABLE", "CLUSTER", "SETSLOT", s, "STABLE"); err != nil {
						return err
					}
				}
			}
			return nil
		}
		f.rep.add(slot, "case 3: one migrating, many importing", "no importer is the migration target; closing the slot on %s and %s", src.Addr, addrs(importing))
		for _, n := range append([]*NodeState{src}, importing...) {
			if err := f.e.ok(ctx, n.Addr, "fix: SETSLOT "+s+" STABLE", "CLUSTER", "SETSLOT", s, "STABLE"); err != nil {
				return err
			}
		}
		return nil
	case len(migrating) == 1 && len(importing) == 0:
		n := migrating[0]
		if owner == nil || owner.ID != n.ID {
			keys, err := f.e.strs(ctx, n.Addr, "", "CLUSTER", "GETKEYSINSLOT", s, "10")
			if err != nil {
				return err
			}
			if len(keys) > 0 {
				return fmt.Errorf("%w: slot %d migrating on %s, which is not its owner and still holds keys", ErrUnfixable, slot, n.Addr)
			}
		}
		f.rep.add(slot, "case 4: migrating only", "closing the slot on %s", n.Addr)
		return f.e.ok(ctx, n.Addr, "fix: SETSLOT "+s+" STABLE", "CLUSTER", "SETSLOT", s, "STABLE")
	}
	return fmt.Errorf("%w: slot %d migrating on [%s], importing on [%s], owner %s", ErrUnfixable, slot, addrs(migrating), addrs(importing), owner.Addr)
}

// claim makes n the owner of slots and bumps its epoch so that its claim
// wins over any stale one.
func (f *fixer) claim(ctx context.Context, n *NodeState, slots []int) error {
	for _, r := range Ranges(slots) {
		a, b := strconv.Itoa(r.Start), strconv.Itoa(r.End)
		_ = f.e.ok(ctx, n.Addr, "fix: DELSLOTSRANGE", "CLUSTER", "DELSLOTSRANGE", a, b) // only clears a stale local claim
		if err := f.e.ok(ctx, n.Addr, "fix: ADDSLOTSRANGE "+a+"-"+b, "CLUSTER", "ADDSLOTSRANGE", a, b); err != nil {
			return err
		}
	}
	return f.e.ok(ctx, n.Addr, "fix: BUMPEPOCH", "CLUSTER", "BUMPEPOCH")
}

// fixCoverage assigns every slot no master claims: to the node holding its
// keys (the one with most keys, the others' keys moved to it), or, for
// empty slots, to the masters with the fewest slots.
func (f *fixer) fixCoverage(ctx context.Context, v *View) error {
	var uncovered []int
	for s := range NumSlots {
		if v.Owner(s) == nil {
			uncovered = append(uncovered, s)
		}
	}
	if len(uncovered) == 0 {
		return nil
	}
	masters := f.masters(v)
	if len(masters) == 0 {
		return fmt.Errorf("%w: %d uncovered slots and no reachable master", ErrUnfixable, len(uncovered))
	}
	counts := map[string][]int64{} // node id -> keys per uncovered slot
	for _, n := range masters {
		cmds := make([][]string, len(uncovered))
		for i, s := range uncovered {
			cmds[i] = []string{"CLUSTER", "COUNTKEYSINSLOT", strconv.Itoa(s)}
		}
		res, err := f.e.pipeline(ctx, n.Addr, "fix: COUNTKEYSINSLOT", cmds)
		if err != nil {
			return err
		}
		counts[n.ID] = make([]int64, len(uncovered))
		for i, r := range res {
			counts[n.ID][i], _ = r.AsInt64()
		}
	}
	load := map[string]int{}
	for _, n := range masters {
		load[n.ID] = n.SlotCount()
	}
	empty := map[string][]int{}
	m := f.e.newMover(f.opts.Move, v)
	for i, slot := range uncovered {
		var holders []*NodeState
		c := map[string]int64{}
		for _, n := range masters {
			if counts[n.ID][i] > 0 {
				holders = append(holders, n)
				c[n.ID] = counts[n.ID][i]
			}
		}
		if len(holders) == 0 {
			least := masters[0]
			for _, n := range masters {
				if load[n.ID] < load[least.ID] {
					least = n
				}
			}
			empty[least.ID] = append(empty[least.ID], slot)
			load[least.ID]++
			continue
		}
		owner := mostKeys(holders, c)
		if err := f.claim(ctx, owner, []int{slot}); err != nil {
			return err
		}
		f.rep.add(slot, "coverage", "assigned to %s, which holds its keys", owner.Addr)
		s := strconv.Itoa(slot)
		for _, n := range holders {
			if n.ID == owner.ID {
				continue
			}
			if err := f.e.ok(ctx, n.Addr, "fix: SETSLOT "+s+" NODE owner", "CLUSTER", "SETSLOT", s, "NODE", owner.ID); err != nil {
				return err
			}
			// Importing state on the holder, as redis-cli does, so that it
			// answers for the keys it still has while they move.
			if err := f.e.ok(ctx, n.Addr, "fix: SETSLOT "+s+" IMPORTING owner", "CLUSTER", "SETSLOT", s, "IMPORTING", owner.ID); err != nil {
				return err
			}
			if err := m.moveKeys(ctx, plannedMove{slot: slot, src: n, dst: owner}); err != nil {
				return err
			}
			if err := f.e.ok(ctx, n.Addr, "fix: SETSLOT "+s+" STABLE", "CLUSTER", "SETSLOT", s, "STABLE"); err != nil {
				return err
			}
			f.rep.add(slot, "coverage", "moved its keys from %s to %s", n.Addr, owner.Addr)
		}
	}
	for _, id := range sortedKeys(empty) {
		n := v.Node(id)
		if err := f.claim(ctx, n, empty[id]); err != nil {
			return err
		}
		f.rep.add(-1, "coverage", "assigned empty slots %s to %s", FormatRanges(Ranges(empty[id])), n.Addr)
	}
	return nil
}
