package cluster

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// DefaultThresholdPct is the imbalance, in percent of a master's expected
// slots, below which a rebalance moves nothing (redis-cli's default).
const DefaultThresholdPct = 2

// Plan is a printable list of slot moves: what a dry run shows and what
// MoveSlots executes.
type Plan struct {
	// Kind is "rebalance", "reshard" or "scale".
	Kind string
	// Nodes are the masters concerned with their slot counts before and
	// after.
	Nodes []PlanNode
	// Moves are the slot moves, From and To by node id.
	Moves []Move
	// Drain lists the ids of masters left without slots, which can then be
	// removed.
	Drain []string
	// Notes explain decisions (threshold, skipped masters).
	Notes []string
}

// PlanNode is one master in a plan.
type PlanNode struct {
	ID, Addr      string
	Weight        float64
	Before, After int
}

func (p *Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d slot moves\n", p.Kind, len(p.Moves))
	for _, n := range p.Nodes {
		fmt.Fprintf(&b, "  %s %s weight %g: %d -> %d slots\n", short(n.ID), n.Addr, n.Weight, n.Before, n.After)
	}
	type pair struct{ from, to string }
	groups := map[pair][]int{}
	var order []pair
	for _, m := range p.Moves {
		k := pair{m.From, m.To}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], m.Slot)
	}
	for _, k := range order {
		fmt.Fprintf(&b, "  move %d slots %s from %s to %s\n", len(groups[k]), FormatRanges(Ranges(groups[k])), p.addr(k.from), p.addr(k.to))
	}
	for _, d := range p.Drain {
		fmt.Fprintf(&b, "  drained: %s\n", p.addr(d))
	}
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	return b.String()
}

func (p *Plan) addr(id string) string {
	for _, n := range p.Nodes {
		if n.ID == id {
			return n.Addr
		}
	}
	return short(id)
}

func short(id string) string { return id[:min(8, len(id))] }

// RebalanceOptions configures PlanRebalance.
type RebalanceOptions struct {
	// Weights by node id or address; a master not listed weighs 1. Weight
	// 0 drains a master.
	Weights map[string]float64
	// ThresholdPct: when no master is further than this from its expected
	// slots (in percent of the expected count), nothing moves. Zero means
	// DefaultThresholdPct; a negative value means 0 (always balance exactly).
	ThresholdPct float64
	// ExcludeEmpty leaves masters without slots out of the rebalance. By
	// default they are counted and receive their share.
	ExcludeEmpty bool
}

// PlanRebalance plans slot moves so that each master holds
// 16384 × w / Σw slots (rounded so the shares add up to 16384). Masters
// further than the threshold from their share trigger the plan; the moves
// go from the most overloaded master to the most underloaded one.
func PlanRebalance(v *View, opts RebalanceOptions) (*Plan, error) {
	p := &Plan{Kind: "rebalance"}
	var nodes []*NodeState
	var weights []float64
	for _, m := range v.Masters() {
		w := 1.0
		if x, ok := opts.Weights[m.ID]; ok {
			w = x
		} else if x, ok := opts.Weights[m.Addr]; ok {
			w = x
		}
		if w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
			return nil, fmt.Errorf("%w: weight %g for %s", ErrInvalidPlan, w, m.Addr)
		}
		if opts.ExcludeEmpty && m.SlotCount() == 0 {
			p.Notes = append(p.Notes, fmt.Sprintf("%s has no slots and is left out", m.Addr))
			continue
		}
		nodes = append(nodes, m)
		weights = append(weights, w)
	}
	for k := range opts.Weights {
		if n := v.Node(k); n == nil || !n.IsMaster() {
			return nil, fmt.Errorf("%w: weight given for %s, which is not a master", ErrInvalidPlan, k)
		}
	}
	threshold := opts.ThresholdPct
	if threshold == 0 {
		threshold = DefaultThresholdPct
	}
	threshold = max(threshold, 0)
	return planShares(v, p, nodes, weights, threshold)
}

// planShares computes the moves that bring nodes to their weighted shares.
func planShares(v *View, p *Plan, nodes []*NodeState, weights []float64, threshold float64) (*Plan, error) {
	var total float64
	for _, w := range weights {
		total += w
	}
	if total <= 0 {
		return nil, fmt.Errorf("%w: the weights of the masters add up to zero", ErrInvalidPlan)
	}
	expected := shares(weights, total)
	over := false
	for i, n := range nodes {
		have := n.SlotCount()
		p.Nodes = append(p.Nodes, PlanNode{ID: n.ID, Addr: n.Addr, Weight: weights[i], Before: have, After: have})
		if expected[i] == 0 {
			over = over || have > 0
			continue
		}
		if math.Abs(float64(have-expected[i]))/float64(expected[i])*100 > threshold {
			over = true
		}
	}
	if !over {
		p.Notes = append(p.Notes, fmt.Sprintf("every master is within %g%% of its share; nothing to move", threshold))
		return p, nil
	}
	type bal struct {
		i     int
		delta int   // positive: slots to give away
		slots []int // slots it can give, in order
	}
	var givers, takers []*bal
	for i, n := range nodes {
		d := n.SlotCount() - expected[i]
		switch {
		case d > 0:
			givers = append(givers, &bal{i: i, delta: d, slots: v.SlotsOf(n.ID)})
		case d < 0:
			takers = append(takers, &bal{i: i, delta: -d})
		}
	}
	slices.SortStableFunc(givers, func(a, b *bal) int { return b.delta - a.delta })
	slices.SortStableFunc(takers, func(a, b *bal) int { return b.delta - a.delta })
	for _, t := range takers {
		for _, g := range givers {
			if t.delta == 0 {
				break
			}
			n := min(t.delta, g.delta)
			if n == 0 {
				continue
			}
			// Give away the highest slots, so the giver keeps a contiguous
			// low range and the plan prints as few ranges as possible.
			take := g.slots[len(g.slots)-n:]
			g.slots = g.slots[:len(g.slots)-n]
			for _, s := range take {
				p.Moves = append(p.Moves, Move{Slot: s, From: nodes[g.i].ID, To: nodes[t.i].ID})
			}
			g.delta -= n
			t.delta -= n
			p.Nodes[g.i].After -= n
			p.Nodes[t.i].After += n
		}
	}
	slices.SortStableFunc(p.Moves, func(a, b Move) int { return a.Slot - b.Slot })
	for i, n := range p.Nodes {
		if n.After == 0 && weights[i] == 0 {
			p.Drain = append(p.Drain, n.ID)
		}
	}
	return p, nil
}

// shares splits NumSlots by weight with the largest-remainder method, so
// the shares are integers that add up to exactly NumSlots.
func shares(weights []float64, total float64) []int {
	out := make([]int, len(weights))
	rem := make([]float64, len(weights))
	sum := 0
	for i, w := range weights {
		exact := NumSlots * w / total
		out[i] = int(math.Floor(exact))
		rem[i] = exact - float64(out[i])
		sum += out[i]
	}
	idx := make([]int, len(weights))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case rem[a] > rem[b]:
			return -1
		case rem[a] < rem[b]:
			return 1
		}
		return 0
	})
	for k := 0; sum < NumSlots; k++ {
		out[idx[k%len(idx)]]++
		sum++
	}
	return out
}

// PlanReshard plans moving n slots from one master to another (ids or
// addresses), taking the source's highest slots.
func PlanReshard(v *View, from, to string, n int) (*Plan, error) {
	src, dst := v.Node(from), v.Node(to)
	if src == nil || dst == nil {
		return nil, fmt.Errorf("%w: reshard from %q to %q", ErrUnknownNode, from, to)
	}
	if !src.IsMaster() || !dst.IsMaster() || src.ID == dst.ID {
		return nil, fmt.Errorf("%w: reshard needs two different masters, got %s and %s", ErrInvalidPlan, src.Addr, dst.Addr)
	}
	have := src.SlotCount()
	if n <= 0 || n > have {
		return nil, fmt.Errorf("%w: cannot move %d slots from %s, which has %d", ErrInvalidPlan, n, src.Addr, have)
	}
	slots := v.SlotsOf(src.ID)
	p := &Plan{Kind: "reshard", Nodes: []PlanNode{
		{ID: src.ID, Addr: src.Addr, Weight: 1, Before: have, After: have - n},
		{ID: dst.ID, Addr: dst.Addr, Weight: 1, Before: dst.SlotCount(), After: dst.SlotCount() + n},
	}}
	for _, s := range slots[len(slots)-n:] {
		p.Moves = append(p.Moves, Move{Slot: s, From: src.ID, To: dst.ID})
	}
	if have == n {
		p.Drain = []string{src.ID}
	}
	return p, nil
}

// PlanScale plans spreading the slots evenly over m masters. Scaling out
// needs the new masters added (empty) first; scaling in keeps the m masters
// with the most slots and drains the others (listed in Drain, to be removed
// after the move).
func PlanScale(v *View, m int) (*Plan, error) {
	masters := v.Masters()
	if m < 1 || m > len(masters) {
		return nil, fmt.Errorf("%w: cannot scale to %d masters with %d masters in the cluster (add empty masters first)", ErrInvalidPlan, m, len(masters))
	}
	order := slices.Clone(masters)
	slices.SortStableFunc(order, func(a, b *NodeState) int { return b.SlotCount() - a.SlotCount() })
	weights := make([]float64, len(order))
	for i := range order {
		if i < m {
			weights[i] = 1
		}
	}
	p, err := planShares(v, &Plan{Kind: "scale"}, order, weights, 0)
	if err != nil {
		return nil, err
	}
	p.Notes = append(p.Notes, fmt.Sprintf("scale to %d masters", m))
	return p, nil
}
