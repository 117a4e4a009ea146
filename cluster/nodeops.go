package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultNodeOpTimeout bounds how long AddNode, RemoveNode and Failover
// wait for the cluster to agree after they act.
const DefaultNodeOpTimeout = 60 * time.Second

// AddNodeOptions configures AddNode.
type AddNodeOptions struct {
	// ReplicaOf, when set (id or address of a master), makes the new node
	// a replica of that master; otherwise it joins as an empty master.
	ReplicaOf string
	// Timeout bounds the wait for the cluster to agree; zero means
	// DefaultNodeOpTimeout.
	Timeout time.Duration
}

// AddNode joins a fresh node to the cluster of seed, as an empty master or
// as a replica, and waits until every node knows it (and, for a replica,
// its link to the master is up). It returns the new node's id.
func (e *Engine) AddNode(ctx context.Context, seed string, node NodeSpec, opts AddNodeOptions) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, orDefault(opts.Timeout, DefaultNodeOpTimeout))
	defer cancel()
	v, err := e.Inspect(ctx, seed)
	if err != nil {
		return "", err
	}
	var master *NodeState
	if opts.ReplicaOf != "" {
		if master = v.Node(opts.ReplicaOf); master == nil || !master.IsMaster() {
			return "", fmt.Errorf("%w: %q is not a master of the cluster", ErrUnknownNode, opts.ReplicaOf)
		}
	}
	if err := e.checkFresh(ctx, node.Addr); err != nil {
		return "", err
	}
	id, err := e.str(ctx, node.Addr, "", "CLUSTER", "MYID")
	if err != nil {
		return "", err
	}
	if err := e.meet(ctx, node.Addr, seed); err != nil {
		return "", err
	}
	all := []string{node.Addr}
	for _, n := range v.Nodes {
		if n.Reachable {
			all = append(all, n.Addr)
		}
	}
	if err := e.waitKnown(ctx, all, len(v.Nodes)+1); err != nil {
		return id, errNode(node.Addr, "wait for the cluster to know the new node", err)
	}
	if master != nil {
		if err := e.replicate(ctx, node.Addr, master.ID); err != nil {
			return id, err
		}
	}
	if _, err := e.WaitConverged(ctx, seed, orDefault(opts.Timeout, DefaultNodeOpTimeout)); err != nil {
		return id, err
	}
	if master != nil {
		return id, e.waitReplicasLinked(ctx, seed)
	}
	return id, nil
}

// RemoveOptions configures RemoveNode.
type RemoveOptions struct {
	// Move configures draining the node's slots.
	Move MoveOptions
	// KeepRunning leaves the removed node running (reset, alone) instead of
	// shutting it down.
	KeepRunning bool
	// Timeout bounds the waits; zero means DefaultNodeOpTimeout.
	Timeout time.Duration
}

// RemoveReport says what RemoveNode did.
type RemoveReport struct {
	// Drain is the plan that emptied the node (nil for a replica or an
	// empty master).
	Drain *Plan
	// Moved is the result of the drain.
	Moved *MoveResult
	// Reattached lists replicas of the removed master that now replicate
	// another master.
	Reattached []string
}

// PlanDrain plans moving every slot of a master to the other masters,
// each slot to whichever currently has the fewest.
func PlanDrain(v *View, node string) (*Plan, error) {
	n := v.Node(node)
	if n == nil || !n.IsMaster() {
		return nil, fmt.Errorf("%w: %q is not a master of the cluster", ErrUnknownNode, node)
	}
	var others []*NodeState
	for _, m := range v.Masters() {
		if m.ID != n.ID {
			others = append(others, m)
		}
	}
	if len(others) == 0 && n.SlotCount() > 0 {
		return nil, fmt.Errorf("%w: %s is the only master", ErrInvalidPlan, n.Addr)
	}
	p := &Plan{Kind: "drain", Drain: []string{n.ID}}
	p.Nodes = append(p.Nodes, PlanNode{ID: n.ID, Addr: n.Addr, Before: n.SlotCount()})
	for _, o := range others {
		p.Nodes = append(p.Nodes, PlanNode{ID: o.ID, Addr: o.Addr, Weight: 1, Before: o.SlotCount(), After: o.SlotCount()})
	}
	for _, s := range v.SlotsOf(n.ID) {
		best := 1
		for i := 2; i < len(p.Nodes); i++ {
			if p.Nodes[i].After < p.Nodes[best].After {
				best = i
			}
		}
		p.Nodes[best].After++
		p.Moves = append(p.Moves, Move{Slot: s, From: n.ID, To: p.Nodes[best].ID})
	}
	return p, nil
}

// RemoveNode removes a node (id or address) from the cluster of seed: a
// master's slots are drained to the other masters and its replicas
// re-attached to the master with the fewest replicas; then every other
// node runs CLUSTER FORGET (all at once, well inside the 60 s ban window
// during which a forgotten node cannot be re-learned through gossip); then
// the node is shut down, or reset when KeepRunning.
func (e *Engine) RemoveNode(ctx context.Context, seed, node string, opts RemoveOptions) (*RemoveReport, error) {
	rep := &RemoveReport{}
	timeout := orDefault(opts.Timeout, DefaultNodeOpTimeout)
	v, err := e.Inspect(ctx, seed)
	if err != nil {
		return rep, err
	}
	n := v.Node(node)
	if n == nil {
		return rep, fmt.Errorf("%w: %q", ErrUnknownNode, node)
	}
	var rest *NodeState // a node that stays, to inspect from afterwards
	for _, o := range v.Nodes {
		if o.ID != n.ID && o.Reachable {
			rest = o
			break
		}
	}
	if rest == nil {
		return rep, fmt.Errorf("%w: %s is the only reachable node", ErrInvalidPlan, n.Addr)
	}
	if n.IsMaster() && n.SlotCount() > 0 {
		if rep.Drain, err = PlanDrain(v, n.ID); err != nil {
			return rep, err
		}
		mopts := opts.Move
		if rep.Moved, err = e.MoveSlots(ctx, rest.Addr, rep.Drain.Moves, mopts); err != nil {
			return rep, err
		}
		if v, err = e.Inspect(ctx, rest.Addr); err != nil {
			return rep, err
		}
	}
	if n.IsMaster() {
		for _, r := range v.ReplicasOf(n.ID) {
			target := fewestReplicas(v, n.ID)
			if target == nil {
				return rep, fmt.Errorf("%w: no other master to re-attach replica %s to", ErrInvalidPlan, r.Addr)
			}
			if err := e.replicate(ctx, r.Addr, target.ID); err != nil {
				return rep, err
			}
			rep.Reattached = append(rep.Reattached, r.Addr)
		}
	}
	if err := e.forgetEverywhere(ctx, v, n); err != nil {
		return rep, err
	}
	if opts.KeepRunning {
		if err := e.ok(ctx, n.Addr, "", "CLUSTER", "RESET", "SOFT"); err != nil {
			return rep, err
		}
	} else {
		// SHUTDOWN answers by closing the connection; a transport error
		// here is the expected outcome.
		err := e.ok(ctx, n.Addr, "", "SHUTDOWN", "NOSAVE")
		if err != nil && !errors.Is(err, ErrUnreachable) {
			return rep, err
		}
		e.drop(n.Addr)
	}
	if _, err := e.WaitConverged(ctx, rest.Addr, timeout); err != nil {
		return rep, err
	}
	return rep, nil
}

// fewestReplicas returns the master other than exclude with the fewest
// replicas.
func fewestReplicas(v *View, exclude string) *NodeState {
	var best *NodeState
	for _, m := range v.Masters() {
		if m.ID == exclude || m.SlotCount() == 0 {
			continue
		}
		if best == nil || len(v.ReplicasOf(m.ID)) < len(v.ReplicasOf(best.ID)) {
			best = m
		}
	}
	return best
}

// forgetEverywhere runs CLUSTER FORGET n on every other reachable node at
// once.
func (e *Engine) forgetEverywhere(ctx context.Context, v *View, n *NodeState) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, o := range v.Nodes {
		if o.ID == n.ID || !o.Reachable {
			continue
		}
		wg.Go(func() {
			err := e.ok(ctx, o.Addr, "CLUSTER FORGET "+n.ID, "CLUSTER", "FORGET", n.ID)
			if err != nil && !isRedisErr(err, "Unknown node") {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// manualFailoverRetry is when an unfinished manual failover is requested
// again: Redis gives one up after 5 s (CLUSTER_MF_TIMEOUT).
const manualFailoverRetry = 6 * time.Second

// FailoverMode selects the flavour of CLUSTER FAILOVER.
type FailoverMode string

// Failover modes.
const (
	// FailoverDefault coordinates with the master: it stops writes, the
	// replica catches up, then takes over. No acknowledged write is lost.
	FailoverDefault FailoverMode = ""
	// FailoverForce does not wait for the master (which may be down), but
	// still needs a majority of masters to vote.
	FailoverForce FailoverMode = "FORCE"
	// FailoverTakeover needs neither the master nor a vote; writes the
	// replica had not received are lost.
	FailoverTakeover FailoverMode = "TAKEOVER"
)

// FailoverReport says what a failover did.
type FailoverReport struct {
	OldMaster, NewMaster string // addresses
	Took                 time.Duration
}

// Failover promotes the replica (id or address) with CLUSTER FAILOVER in
// the given mode and waits, bounded by timeout (zero means
// DefaultNodeOpTimeout), until the replica claims its master's slots, every
// reachable node agrees, and the old master (when reachable) has become a
// replica of it.
func (e *Engine) Failover(ctx context.Context, seed, replica string, mode FailoverMode, timeout time.Duration) (*FailoverReport, error) {
	start := time.Now()
	timeout = orDefault(timeout, DefaultNodeOpTimeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := e.Inspect(ctx, seed)
	if err != nil {
		return nil, err
	}
	r := v.Node(replica)
	if r == nil || r.Role != RoleReplica {
		return nil, fmt.Errorf("%w: %q is not a replica of the cluster", ErrUnknownNode, replica)
	}
	old := v.Node(r.MasterID)
	if old == nil {
		return nil, fmt.Errorf("%w: master %s of replica %s", ErrUnknownNode, r.MasterID, r.Addr)
	}
	rep := &FailoverReport{OldMaster: old.Addr, NewMaster: r.Addr}
	// Masters refuse their vote to a replica they still believe to be a
	// master ("Failover auth denied: it is a master node"), which is the
	// case for a while after a replica is attached, until gossip has
	// carried its role everywhere. Wait for that first.
	if err := poll(ctx, func() (bool, string, error) {
		v, err := e.Inspect(ctx, seed)
		if err != nil {
			return false, err.Error(), nil
		}
		for _, n := range v.Nodes {
			for _, t := range n.Table {
				if t.ID == r.ID && (t.Role != RoleReplica || t.MasterID != old.ID) {
					return false, n.Addr + " does not yet see " + r.Addr + " as a replica of " + old.Addr, nil
				}
			}
		}
		return true, "", nil
	}); err != nil {
		return rep, errNode(r.Addr, "wait for every node to know the replica", fmt.Errorf("%w: %w", ErrNotConverged, err))
	}
	args := []string{"CLUSTER", "FAILOVER"}
	if mode != FailoverDefault {
		args = append(args, string(mode))
	}
	if err := e.ok(ctx, r.Addr, "", args...); err != nil {
		return rep, err
	}
	sent := time.Now()
	wantSlots := FormatRanges(old.Slots)
	err = poll(ctx, func() (bool, string, error) {
		v, err := e.Inspect(ctx, r.Addr)
		if err != nil {
			return false, err.Error(), nil
		}
		me := v.Node(r.ID)
		if me == nil || !me.Reachable || !me.IsMaster() || FormatRanges(me.Slots) != wantSlots {
			// Redis abandons a manual failover after 5 s (for example
			// when the election found no majority); ask again.
			if me != nil && me.Role == RoleReplica && time.Since(sent) > manualFailoverRetry {
				sent = time.Now()
				e.log.Warn("manual failover not done; asking again", "replica", r.Addr, "mode", string(mode))
				if err := e.ok(ctx, r.Addr, "", args...); err != nil {
					return false, "", err
				}
			}
			return false, r.Addr + " has not taken over yet", nil
		}
		if o := v.Node(old.ID); o != nil && o.Reachable && (o.IsMaster() || o.MasterID != r.ID) {
			return false, old.Addr + " has not become a replica of " + r.Addr, nil
		}
		for _, f := range Analyze(v) {
			// The old master may be down (FORCE, TAKEOVER); anything else
			// serious means the cluster has not settled.
			if f.Severity == SevError && f.Kind != FindUnreachable && f.Kind != FindFailing {
				return false, f.String(), nil
			}
		}
		return true, "", nil
	})
	rep.Took = time.Since(start)
	if err != nil {
		return rep, errNode(r.Addr, "wait for failover", fmt.Errorf("%w: %w", ErrFailoverIncomplete, err))
	}
	return rep, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
