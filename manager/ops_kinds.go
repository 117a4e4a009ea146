package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/r2m-go/r2m/cluster"
)

// opKinds lists the operations the server runs.
func (s *Server) opKinds() map[string]*opKind {
	return map[string]*opKind{
		"fix":         {plan: planFix, run: runFix, movesSlots: true},
		"reshard":     {plan: planReshard, run: runMovePlan, movesSlots: true},
		"rebalance":   {plan: planRebalance, run: runMovePlan, movesSlots: true},
		"failover":    {plan: planFailover, run: runFailover},
		"add-node":    {plan: planAddNode, run: runAddNode},
		"remove-node": {plan: planRemoveNode, run: runRemoveNode, movesSlots: true},
		"adopt":       {plan: planAdopt, run: runAdopt, creates: true},
		"create":      {plan: planCreate, run: runCreate, creates: true},
		"scale":       {plan: planScale, run: runScale, movesSlots: true},
		"migrate":     {plan: planMigrate, run: runMigrate},
	}
}

// decodeParams reads an operation's parameters strictly, with errors that
// name the field, like request bodies.
func decodeParams(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	return nil
}

// movePlanDetail is the stored detail of reshard and rebalance: the engine's
// plan, whose moves the run executes.
type movePlanDetail struct {
	Plan *cluster.Plan `json:"plan"`
}

// ---- fix ----

type fixParams struct {
	Force bool `json:"force"`
}

func planFix(ctx context.Context, req *opRequest) (*opPlan, error) {
	var p fixParams
	if err := decodeParams(req.Params, &p); err != nil {
		return nil, err
	}
	findings, err := req.s.checkCluster(ctx, req.Cluster)
	if err != nil {
		return nil, unavailable("cannot inspect the cluster", err)
	}
	text := "check is clean: fix will verify and change nothing"
	if len(findings) > 0 {
		text = "fix will address:\n  " + strings.Join(findings, "\n  ")
	}
	if p.Force {
		text += "\n(forced: runs even with unreachable masters, leaving their slots alone)"
	}
	return &opPlan{Steps: []string{"fix"}, Detail: findings, Text: text}, nil
}

func runFix(ctx context.Context, x *opExec) error {
	var p fixParams
	if err := x.params(&p); err != nil {
		return err
	}
	return x.step(ctx, "fix", func(ctx context.Context) error {
		eng, seed, err := x.engineAndSeed(ctx)
		if err != nil {
			return err
		}
		rep, err := eng.Fix(ctx, seed, cluster.FixOptions{Force: p.Force})
		if rep != nil {
			x.log.Info("fix report", "report", rep.String())
		}
		x.s.observeSoon()
		return err
	})
}

// engineAndSeed returns the cluster's engine and a node that answers.
func (x *opExec) engineAndSeed(ctx context.Context) (*cluster.Engine, string, error) {
	eng, v, err := x.s.inspect(ctx, x.op.Cluster)
	if err != nil {
		return nil, "", err
	}
	if seed := reachableMaster(v, ""); seed != "" {
		return eng, seed, nil
	}
	return nil, "", fmt.Errorf("cluster %s: no reachable master", x.op.Cluster)
}

// ---- reshard and rebalance ----

type reshardParams struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Slots int    `json:"slots"`
}

func planReshard(ctx context.Context, req *opRequest) (*opPlan, error) {
	var p reshardParams
	if err := decodeParams(req.Params, &p); err != nil {
		return nil, err
	}
	if err := required("from", p.From); err != nil {
		return nil, err
	}
	if err := required("to", p.To); err != nil {
		return nil, err
	}
	if p.Slots <= 0 || p.Slots > 16384 {
		return nil, badRequest("slots", "slots %d: want 1-16384", p.Slots)
	}
	_, v, err := req.s.inspect(ctx, req.Cluster)
	if err != nil {
		return nil, unavailable("cannot inspect the cluster", err)
	}
	plan, err := cluster.PlanReshard(v, p.From, p.To, p.Slots)
	if err != nil {
		return nil, badRequest("", "%v", err)
	}
	return &opPlan{Steps: []string{"move slots"}, Detail: movePlanDetail{Plan: plan}, Text: plan.String()}, nil
}

type rebalanceParams struct {
	Weights      map[string]float64 `json:"weights"`
	ThresholdPct float64            `json:"threshold_pct"`
	ExcludeEmpty bool               `json:"exclude_empty"`
}

func planRebalance(ctx context.Context, req *opRequest) (*opPlan, error) {
	var p rebalanceParams
	if err := decodeParams(req.Params, &p); err != nil {
		return nil, err
	}
	for node, w := range p.Weights {
		if w < 0 {
			return nil, badRequest("weights", "weight of %s is %g: want 0 (drain) or more", node, w)
		}
	}
	_, v, err := req.s.inspect(ctx, req.Cluster)
	if err != nil {
		return nil, unavailable("cannot inspect the cluster", err)
	}
	plan, err := cluster.PlanRebalance(v, cluster.RebalanceOptions{Weights: p.Weights, ThresholdPct: p.ThresholdPct, ExcludeEmpty: p.ExcludeEmpty})
	if err != nil {
		return nil, badRequest("", "%v", err)
	}
	return &opPlan{Steps: []string{"move slots"}, Detail: movePlanDetail{Plan: plan}, Text: plan.String()}, nil
}

// runMovePlan executes the stored plan of a reshard or rebalance.
func runMovePlan(ctx context.Context, x *opExec) error {
	var d struct {
		Detail movePlanDetail `json:"detail"`
	}
	if err := json.Unmarshal(x.op.Plan, &d); err != nil || d.Detail.Plan == nil {
		return fmt.Errorf("operation %s: stored plan unreadable: %v", x.id, err)
	}
	return x.step(ctx, "move slots", func(ctx context.Context) error {
		eng, seed, err := x.engineAndSeed(ctx)
		if err != nil {
			return err
		}
		res, err := x.moveSlots(ctx, eng, seed, d.Detail.Plan.Moves)
		if res != nil && len(res.BigKeys) > 0 {
			x.log.Warn("big keys moved", "count", len(res.BigKeys))
		}
		return err
	})
}

// ---- failover ----

type failoverParams struct {
	// Replica to promote (id or address); or Master, whose best replica
	// is chosen.
	Replica string `json:"replica"`
	Master  string `json:"master"`
	// Mode is "" (coordinated, no data loss), "force" or "takeover".
	Mode    string `json:"mode"`
	Timeout string `json:"timeout"`
}

func (p *failoverParams) mode() (cluster.FailoverMode, error) {
	switch strings.ToLower(p.Mode) {
	case "", "default":
		return cluster.FailoverDefault, nil
	case "force":
		return cluster.FailoverForce, nil
	case "takeover":
		return cluster.FailoverTakeover, nil
	}
	return "", badRequest("mode", "mode %q: want default, force or takeover", p.Mode)
}

func planFailover(ctx context.Context, req *opRequest) (*opPlan, error) {
	var p failoverParams
	if err := decodeParams(req.Params, &p); err != nil {
		return nil, err
	}
	mode, err := p.mode()
	if err != nil {
		return nil, err
	}
	if p.Timeout != "" {
		if d, err := time.ParseDuration(p.Timeout); err != nil || d <= 0 {
			return nil, badRequest("timeout", "timeout %q: want a positive duration such as 60s", p.Timeout)
		}
	}
	_, v, err := req.s.inspect(ctx, req.Cluster)
	if err != nil {
		return nil, unavailable("cannot inspect the cluster", err)
	}
	rep, err := pickReplica(v, p.Replica, p.Master)
	if err != nil {
		return nil, err
	}
	m := v.Node(rep.MasterID)
	mname := rep.MasterID
	if m != nil {
		mname = m.Addr
	}
	modeName := "coordinated (no acknowledged write lost)"
	if mode != cluster.FailoverDefault {
		modeName = string(mode)
	}
	text := fmt.Sprintf("promote replica %s to master in place of %s, %s", rep.Addr, mname, modeName)
	return &opPlan{Steps: []string{"failover"}, Detail: map[string]string{"replica": rep.ID, "master": rep.MasterID}, Text: text}, nil
}

// pickReplica finds the replica to promote: the named one, or the first
// reachable replica of the named master.
func pickReplica(v *cluster.View, replica, master string) (*cluster.NodeState, error) {
	switch {
	case replica != "":
		n := v.Node(replica)
		if n == nil || n.IsMaster() {
			return nil, badRequest("replica", "%q is not a replica of this cluster", replica)
		}
		return n, nil
	case master != "":
		m := v.Node(master)
		if m == nil || !m.IsMaster() {
			return nil, badRequest("master", "%q is not a master of this cluster", master)
		}
		for _, r := range v.ReplicasOf(m.ID) {
			if r.Reachable && !r.Failing() {
				return r, nil
			}
		}
		return nil, badRequest("master", "master %s has no reachable replica to promote", m.Addr)
	}
	return nil, badRequest("replica", "name the replica to promote (replica) or its master (master)")
}

func runFailover(ctx context.Context, x *opExec) error {
	var p failoverParams
	if err := x.params(&p); err != nil {
		return err
	}
	var d struct {
		Detail map[string]string `json:"detail"`
	}
	if err := json.Unmarshal(x.op.Plan, &d); err != nil {
		return err
	}
	mode, err := p.mode()
	if err != nil {
		return err
	}
	var timeout time.Duration
	if p.Timeout != "" {
		timeout, _ = time.ParseDuration(p.Timeout)
	}
	return x.step(ctx, "failover", func(ctx context.Context) error {
		eng, v, err := x.s.inspect(ctx, x.op.Cluster)
		if err != nil {
			return err
		}
		rep := v.Node(d.Detail["replica"])
		if rep == nil {
			return fmt.Errorf("replica %s is no longer in the cluster", d.Detail["replica"])
		}
		if rep.IsMaster() {
			return nil // done before a leader change
		}
		r, err := eng.Failover(ctx, rep.Addr, rep.ID, mode, timeout)
		if err == nil {
			x.log.Info("failover done", "old_master", r.OldMaster, "new_master", r.NewMaster, "took", r.Took)
		}
		x.s.observeSoon()
		return err
	})
}

// ---- add and remove nodes ----

type addNodeParams struct {
	Addr      string `json:"addr"`
	Host      string `json:"host"`
	ReplicaOf string `json:"replica_of"`
}

func planAddNode(ctx context.Context, req *opRequest) (*opPlan, error) {
	var p addNodeParams
	if err := decodeParams(req.Params, &p); err != nil {
		return nil, err
	}
	if err := required("addr", p.Addr); err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(p.Addr); err != nil {
		return nil, badRequest("addr", "%q is not host:port: %v", p.Addr, err)
	}
	eng, v, err := req.s.inspect(ctx, req.Cluster)
	if err != nil {
		return nil, unavailable("cannot inspect the cluster", err)
	}
	if v.Node(p.Addr) != nil {
		return nil, conflict("%s is already in the cluster", p.Addr)
	}
	// Refuse now what the add would refuse later: an operator who sees a
	// plan expects it to be runnable.
	if err := eng.CheckNewNode(ctx, p.Addr); err != nil {
		return nil, badRequest("addr", "%s cannot join: %v", p.Addr, err)
	}
	text := fmt.Sprintf("add %s as an empty master (rebalance afterwards to give it slots)", p.Addr)
	if p.ReplicaOf != "" {
		m := v.Node(p.ReplicaOf)
		if m == nil || !m.IsMaster() {
			return nil, badRequest("replica_of", "%q is not a master of this cluster", p.ReplicaOf)
		}
		text = fmt.Sprintf("add %s as a replica of %s", p.Addr, m.Addr)
	}
	return &opPlan{Steps: []string{"add node"}, Detail: p, Text: text}, nil
}

func runAddNode(ctx context.Context, x *opExec) error {
	var p addNodeParams
	if err := x.params(&p); err != nil {
		return err
	}
	return x.step(ctx, "add node", func(ctx context.Context) error {
		eng, v, err := x.s.inspect(ctx, x.op.Cluster)
		if err != nil {
			return err
		}
		if v.Node(p.Addr) != nil {
			return nil // added before a leader change
		}
		_, err = eng.AddNode(ctx, reachableMaster(v, ""), cluster.NodeSpec{Addr: p.Addr, Host: p.Host}, cluster.AddNodeOptions{ReplicaOf: p.ReplicaOf})
		x.s.observeSoon()
		return err
	})
}

type removeNodeParams struct {
	Node        string `json:"node"`
	KeepRunning bool   `json:"keep_running"`
}

func planRemoveNode(ctx context.Context, req *opRequest) (*opPlan, error) {
	var p removeNodeParams
	if err := decodeParams(req.Params, &p); err != nil {
		return nil, err
	}
	if err := required("node", p.Node); err != nil {
		return nil, err
	}
	_, v, err := req.s.inspect(ctx, req.Cluster)
	if err != nil {
		return nil, unavailable("cannot inspect the cluster", err)
	}
	n := v.Node(p.Node)
	if n == nil {
		return nil, badRequest("node", "%q is not in this cluster", p.Node)
	}
	text := fmt.Sprintf("remove %s (%s): forget it on every node", n.Addr, n.Role)
	var detail any = map[string]string{"node": n.ID}
	if n.IsMaster() && n.SlotCount() > 0 {
		drain, err := cluster.PlanDrain(v, n.ID)
		if err != nil {
			return nil, badRequest("node", "%v", err)
		}
		text = fmt.Sprintf("drain %s, then remove it:\n%s", n.Addr, drain.String())
	}
	if !p.KeepRunning {
		text += "\nthen shut it down"
	}
	return &opPlan{Steps: []string{"remove node"}, Detail: detail, Text: text}, nil
}

func runRemoveNode(ctx context.Context, x *opExec) error {
	var p removeNodeParams
	if err := x.params(&p); err != nil {
		return err
	}
	var d struct {
		Detail map[string]string `json:"detail"`
	}
	if err := json.Unmarshal(x.op.Plan, &d); err != nil {
		return err
	}
	return x.step(ctx, "remove node", func(ctx context.Context) error {
		eng, v, err := x.s.inspect(ctx, x.op.Cluster)
		if err != nil {
			return err
		}
		id := d.Detail["node"]
		if v.Node(id) == nil {
			return nil // removed before a leader change
		}
		seed := reachableMaster(v, id)
		limit, _ := x.throttle()
		c, _, err := x.s.store.Cluster(x.op.Cluster).Get(ctx)
		if err != nil {
			return err
		}
		host := x.s.hostMap(ctx)[v.Node(id).Addr]
		if !c.Adopted && host != "" {
			// An agent runs it: drain first, then remove it from the cluster
			// and from the agent, which stops it for good.
			if n := v.Node(id); n.IsMaster() && n.SlotCount() > 0 {
				drain, err := cluster.PlanDrain(v, id)
				if err != nil {
					return err
				}
				if _, err := x.moveSlots(ctx, eng, seed, drain.Moves); err != nil {
					return err
				}
				if eng, v, err = x.s.inspect(ctx, x.op.Cluster); err != nil {
					return err
				}
			}
			err = x.s.removeManagedNode(ctx, eng, v, x.op.Cluster, v.Node(id))
			x.s.observeSoon()
			return err
		}
		_, err = eng.RemoveNode(ctx, seed, id, cluster.RemoveOptions{
			KeepRunning: p.KeepRunning,
			Move:        cluster.MoveOptions{Store: slotStore{store: x.s.store, op: x.id}, MaxKeysPerSecond: limit},
		})
		x.s.observeSoon()
		return err
	})
}
