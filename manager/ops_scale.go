package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/r2m-go/r2m/cluster"
	"github.com/r2m-go/r2m/meta"
)

// scaleParams is POST /api/v1/clusters/{name}/scale: change the number of
// masters of a deployed cluster, each with the cluster's replicas.
type scaleParams struct {
	Masters int `json:"masters"`
}

type scaleDetail struct {
	From, To  int
	Instances []placedInstance `json:"instances,omitempty"` // new instances (scale out)
	Plan      *cluster.Plan    `json:"plan,omitempty"`      // the drain (scale in)
}

func planScale(ctx context.Context, req *opRequest) (*opPlan, error) {
	var p scaleParams
	if err := decodeParams(req.Params, &p); err != nil {
		return nil, err
	}
	s := req.s
	c, _, err := s.store.Cluster(req.Cluster).Get(ctx)
	if err != nil {
		return nil, err
	}
	if c.Adopted {
		return nil, badRequest("", "cluster %s was adopted, not deployed by R2M: add nodes with add-node and spread slots with rebalance", req.Cluster)
	}
	if p.Masters < 1 || p.Masters > 1000 {
		return nil, badRequest("masters", "masters %d: want 1-1000", p.Masters)
	}
	_, v, err := s.inspect(ctx, req.Cluster)
	if err != nil {
		return nil, unavailable("cannot inspect the cluster", err)
	}
	n := len(v.Masters())
	d := scaleDetail{From: n, To: p.Masters}
	var b strings.Builder
	switch {
	case p.Masters == n:
		return nil, badRequest("masters", "the cluster already has %d masters", n)
	case p.Masters > n:
		hosts, err := s.liveHosts(ctx)
		if err != nil {
			return nil, err
		}
		used, err := s.usedPorts(ctx)
		if err != nil {
			return nil, err
		}
		add := (p.Masters - n) * (1 + c.ReplicasPerMaster)
		placed, notes, err := place(hosts, used, add, s.cfg.PortBase, s.cfg.PortSpan, c.Datacenter)
		if err != nil {
			return nil, conflict("%v", err)
		}
		d.Instances = placed
		fmt.Fprintf(&b, "scale %s out from %d to %d masters: start %d instances, join %d masters with %d replicas each, then spread the slots evenly\n",
			req.Cluster, n, p.Masters, add, p.Masters-n, c.ReplicasPerMaster)
		for _, pi := range placed {
			fmt.Fprintf(&b, "  %s on %s\n", pi.Addr, pi.Host)
		}
		for _, nt := range notes {
			fmt.Fprintf(&b, "  note: %s\n", nt)
		}
		return &opPlan{Steps: []string{"start instances", "join nodes", "move slots"}, Detail: d, Text: b.String()}, nil
	default:
		plan, err := cluster.PlanScale(v, p.Masters)
		if err != nil {
			return nil, badRequest("masters", "%v", err)
		}
		d.Plan = plan
		fmt.Fprintf(&b, "scale %s in from %d to %d masters: move their slots away, then remove the drained masters and their replicas\n%s", req.Cluster, n, p.Masters, plan.String())
		return &opPlan{Steps: []string{"move slots", "remove nodes"}, Detail: d, Text: b.String()}, nil
	}
}

func runScale(ctx context.Context, x *opExec) error {
	var p scaleParams
	if err := x.params(&p); err != nil {
		return err
	}
	var sd struct {
		Detail scaleDetail `json:"detail"`
	}
	if err := json.Unmarshal(x.op.Plan, &sd); err != nil {
		return err
	}
	d := sd.Detail
	c, _, err := x.s.store.Cluster(x.op.Cluster).Get(ctx)
	if err != nil {
		return err
	}
	if d.To > d.From {
		if err := x.step(ctx, "start instances", func(ctx context.Context) error {
			return x.startInstances(ctx, c, d.Instances)
		}); err != nil {
			return err
		}
		if err := x.step(ctx, "join nodes", func(ctx context.Context) error {
			return x.joinNodes(ctx, c, d.Instances)
		}); err != nil {
			return err
		}
	}
	if err := x.step(ctx, "move slots", func(ctx context.Context) error {
		return x.scaleSlots(ctx, d.To)
	}); err != nil {
		return err
	}
	if d.To < d.From {
		if err := x.step(ctx, "remove nodes", func(ctx context.Context) error {
			return x.removeEmptyMasters(ctx)
		}); err != nil {
			return err
		}
	}
	_, _, err = x.s.store.Cluster(x.op.Cluster).Update(ctx, func(cl *meta.Cluster) error {
		cl.Masters, cl.UpdatedAt = d.To, time.Now().UTC()
		return nil
	})
	return err
}

// startInstances asks the agents for the placed instances and waits until
// they run.
func (x *opExec) startInstances(ctx context.Context, c *meta.Cluster, placed []placedInstance) error {
	var nodeTimeout meta.Duration
	if t, _, err := x.s.store.Topology(c.Name).Get(ctx); err == nil && len(t.Nodes) > 0 {
		nodeTimeout = x.s.instanceNodeTimeout(ctx, t.Nodes[0].Addr)
	}
	byHost := map[string][]meta.Instance{}
	for _, pi := range placed {
		byHost[pi.Host] = append(byHost[pi.Host], meta.Instance{
			Port: pi.Port, Cluster: c.Name, MaxMemoryBytes: c.MaxMemoryBytes, Persistence: "rdb",
			PasswordFrom: c.Name, NodeTimeout: nodeTimeout,
		})
	}
	for h, ins := range byHost {
		if _, err := x.s.desireInstances(ctx, h, ins); err != nil {
			return fmt.Errorf("host %s: %w", h, err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return x.s.waitRunning(wctx, placed)
}

// instanceNodeTimeout finds the node timeout the cluster's existing
// instances were given, so new ones match.
func (s *Server) instanceNodeTimeout(ctx context.Context, addr string) meta.Duration {
	hosts, err := s.store.Agents().Names(ctx)
	if err != nil {
		return 0
	}
	for _, h := range hosts {
		a, _, err := s.store.Agent(h).Get(ctx)
		if err != nil {
			continue
		}
		d, _, err := s.store.Desired(h).Get(ctx)
		if err != nil {
			continue
		}
		for _, in := range d.Instances {
			if fmt.Sprintf("%s:%d", a.Addr, in.Port) == addr {
				return in.NodeTimeout
			}
		}
	}
	return 0
}

// joinNodes adds the new instances: every (1+replicas)-th as a master, the
// ones after it as its replicas, on other hosts where placement allowed.
func (x *opExec) joinNodes(ctx context.Context, c *meta.Cluster, placed []placedInstance) error {
	group := 1 + c.ReplicasPerMaster
	// Order each group so that its replicas sit on other hosts than its
	// master: place() alternates hosts, so a group's members already differ.
	for i := 0; i+group <= len(placed); i += group {
		eng, v, err := x.s.inspect(ctx, c.Name)
		if err != nil {
			return err
		}
		seed := reachableMaster(v, "")
		master := placed[i]
		mid := ""
		if n := v.Node(master.Addr); n != nil {
			mid = n.ID
		} else if mid, err = eng.AddNode(ctx, seed, cluster.NodeSpec{Addr: master.Addr, Host: master.Host}, cluster.AddNodeOptions{}); err != nil {
			return fmt.Errorf("add master %s: %w", master.Addr, err)
		}
		for _, r := range placed[i+1 : i+group] {
			if v.Node(r.Addr) != nil {
				continue // joined before a leader change
			}
			if _, err := eng.AddNode(ctx, seed, cluster.NodeSpec{Addr: r.Addr, Host: r.Host}, cluster.AddNodeOptions{ReplicaOf: mid}); err != nil {
				return fmt.Errorf("add replica %s of %s: %w", r.Addr, master.Addr, err)
			}
		}
	}
	x.s.observeSoon()
	return nil
}

// scaleSlots finishes any half-moved slot from an earlier run, then plans
// the spread over m masters on the cluster as it is now and moves. Planning
// from the current view is what makes the step safe to repeat.
func (x *opExec) scaleSlots(ctx context.Context, m int) error {
	eng, seed, err := x.engineAndSeed(ctx)
	if err != nil {
		return err
	}
	limit, _ := x.throttle()
	if _, err := eng.Resume(ctx, seed, slotStore{store: x.s.store, op: x.id}, cluster.MoveOptions{MaxKeysPerSecond: limit}); err != nil {
		return fmt.Errorf("finish earlier moves: %w", err)
	}
	v, err := eng.Inspect(ctx, seed)
	if err != nil {
		return err
	}
	plan, err := cluster.PlanScale(v, m)
	if err != nil {
		return err
	}
	x.log.Info("scale plan", "plan", plan.String())
	_, err = x.moveSlots(ctx, eng, seed, plan.Moves)
	return err
}

// removeEmptyMasters removes every master without slots, and its
// replicas, from the cluster and from the agents.
func (x *opExec) removeEmptyMasters(ctx context.Context) error {
	eng, v, err := x.s.inspect(ctx, x.op.Cluster)
	if err != nil {
		return err
	}
	var victims []*cluster.NodeState
	for _, m := range v.Masters() {
		if m.SlotCount() == 0 {
			victims = append(victims, v.ReplicasOf(m.ID)...)
			victims = append(victims, m)
		}
	}
	for _, n := range victims {
		if err := x.s.removeManagedNode(ctx, eng, v, x.op.Cluster, n); err != nil {
			return err
		}
	}
	// Redis migrates the replicas of a master that lost its last slot to
	// other masters (cluster-allow-replica-migration), so some of the
	// drained masters' replicas now sit under remaining masters. Remove the
	// surplus: any replica beyond the cluster's replicas per master,
	// preferring those that share their master's host.
	c, _, err := x.s.store.Cluster(x.op.Cluster).Get(ctx)
	if err != nil {
		return err
	}
	if eng, v, err = x.s.inspect(ctx, x.op.Cluster); err != nil {
		return err
	}
	hosts := x.s.hostMap(ctx)
	for _, m := range v.Masters() {
		reps := v.ReplicasOf(m.ID)
		if len(reps) <= c.ReplicasPerMaster {
			continue
		}
		slices.SortStableFunc(reps, func(a, b *cluster.NodeState) int {
			same := func(n *cluster.NodeState) int {
				if hosts[n.Addr] == hosts[m.Addr] {
					return 0
				}
				return 1
			}
			return same(a) - same(b)
		})
		for _, r := range reps[:len(reps)-c.ReplicasPerMaster] {
			if err := x.s.removeManagedNode(ctx, eng, v, x.op.Cluster, r); err != nil {
				return err
			}
		}
	}
	x.s.observeSoon()
	return nil
}

// removeManagedNode takes a node out of the cluster and, when an agent runs
// it, out of the agent's desired state. The node is left running (reset and
// alone) by the engine and then stopped by its agent, so the agent never
// restarts a node the cluster has forgotten.
func (s *Server) removeManagedNode(ctx context.Context, eng *cluster.Engine, v *cluster.View, name string, n *cluster.NodeState) error {
	if _, err := eng.RemoveNode(ctx, reachableMaster(v, n.ID), n.ID, cluster.RemoveOptions{KeepRunning: true}); err != nil {
		return fmt.Errorf("remove %s: %w", n.Addr, err)
	}
	host := s.hostMap(ctx)[n.Addr]
	if host == "" {
		return nil
	}
	_, portStr, _ := strings.Cut(n.Addr, ":")
	var port int
	fmt.Sscan(portStr, &port)
	return s.undesireInstances(ctx, host, []int{port})
}
