package manager

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/meta"
)

// liveHost is an agent host that can take instances.
type liveHost struct {
	Host      string
	Addr      string
	Instances int // instances already desired there
	Max       int // 0 = no limit
	DC        string
}

// liveHosts lists the hosts whose agent is running (its live record
// exists), with their current load.
func (s *Server) liveHosts(ctx context.Context) ([]liveHost, error) {
	names, err := s.store.Agents().Names(ctx)
	if err != nil {
		return nil, err
	}
	var out []liveHost
	for _, h := range names {
		if _, _, err := s.store.AgentLive(h).Get(ctx); err != nil {
			continue // not running
		}
		a, _, err := s.store.Agent(h).Get(ctx)
		if err != nil {
			continue
		}
		lh := liveHost{Host: h, Addr: a.Addr, Max: a.MaxInstances, DC: a.Datacenter}
		if d, _, err := s.store.Desired(h).Get(ctx); err == nil {
			lh.Instances = len(d.Instances)
		} else if !errors.Is(err, coord.ErrNotFound) {
			return nil, err
		}
		out = append(out, lh)
	}
	return out, nil
}

// usedPorts returns, per address, the ports desired on any host with that
// address: several agents on one machine share its ports.
func (s *Server) usedPorts(ctx context.Context) (map[string]map[int]bool, error) {
	names, err := s.store.Agents().Names(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]map[int]bool)
	for _, h := range names {
		a, _, err := s.store.Agent(h).Get(ctx)
		if err != nil {
			continue
		}
		d, _, err := s.store.Desired(h).Get(ctx)
		if err != nil {
			continue
		}
		if out[a.Addr] == nil {
			out[a.Addr] = make(map[int]bool)
		}
		for _, in := range d.Instances {
			out[a.Addr][in.Port] = true
		}
	}
	return out, nil
}

// placedInstance is one instance a plan puts on a host.
type placedInstance struct {
	Host string `json:"host"`
	Addr string `json:"addr"` // host address:port
	Port int    `json:"port"`
}

// place spreads n instances over the hosts, least loaded first, so that
// consecutive instances land on different hosts whenever there are enough
// (the cluster engine then keeps a master and its replicas apart). Ports
// come from [base, base+span), skipping those already used on the same
// address and their cluster-bus ports.
func place(hosts []liveHost, used map[string]map[int]bool, n, base, span int, dc string) ([]placedInstance, []string, error) {
	var notes []string
	var cand []liveHost
	for _, h := range hosts {
		if dc == "" || h.DC == "" || h.DC == dc {
			cand = append(cand, h)
		}
	}
	if len(cand) == 0 {
		return nil, nil, fmt.Errorf("no running agent%s to place instances on; start r2m agent on the hosts first", map[bool]string{true: " in datacenter " + dc, false: ""}[dc != ""])
	}
	load := make(map[string]int)
	for _, h := range cand {
		load[h.Host] = h.Instances
	}
	taken := make(map[string]map[int]bool)
	for addr, ports := range used {
		taken[addr] = make(map[int]bool)
		for p := range ports {
			taken[addr][p] = true
		}
	}
	var out []placedInstance
	last := ""
	for i := range n {
		order := slices.Clone(cand)
		slices.SortFunc(order, func(a, b liveHost) int {
			return cmp.Or(cmp.Compare(load[a.Host], load[b.Host]), cmp.Compare(a.Host, b.Host))
		})
		var pick *liveHost
		for j := range order {
			h := &order[j]
			if h.Max > 0 && load[h.Host] >= h.Max {
				continue
			}
			if h.Host == last && len(order) > 1 {
				continue // keep neighbours apart where possible
			}
			pick = h
			break
		}
		if pick == nil {
			for j := range order { // only the last host has room left
				if h := &order[j]; h.Max == 0 || load[h.Host] < h.Max {
					pick = h
					break
				}
			}
		}
		if pick == nil {
			return nil, nil, fmt.Errorf("not enough capacity: %d of %d instances placed before every agent reached its max_instances", i, n)
		}
		if taken[pick.Addr] == nil {
			taken[pick.Addr] = make(map[int]bool)
		}
		port := 0
		for p := base; p < base+span; p++ {
			if !taken[pick.Addr][p] && !taken[pick.Addr][p+10000] && !taken[pick.Addr][p-10000] {
				port = p
				break
			}
		}
		if port == 0 {
			return nil, nil, fmt.Errorf("no free port in %d-%d on %s", base, base+span-1, pick.Addr)
		}
		taken[pick.Addr][port] = true
		load[pick.Host]++
		last = pick.Host
		out = append(out, placedInstance{Host: pick.Host, Addr: fmt.Sprintf("%s:%d", pick.Addr, port), Port: port})
	}
	if len(cand) == 1 && n > 1 {
		notes = append(notes, "only one agent is running: masters and their replicas share a host, so a host failure loses data")
	}
	return out, notes, nil
}

// desireInstances adds instances to a host's desired state (those not
// there yet) and returns the new generation.
func (s *Server) desireInstances(ctx context.Context, host string, add []meta.Instance) (int64, error) {
	d, _, err := s.store.Desired(host).Upsert(ctx, func(d *meta.DesiredState) error {
		changed := false
		for _, in := range add {
			if !slices.ContainsFunc(d.Instances, func(x meta.Instance) bool { return x.Port == in.Port }) {
				d.Instances = append(d.Instances, in)
				changed = true
			}
		}
		if !changed && d.Generation > 0 {
			return errUnchanged
		}
		d.Generation++
		return nil
	})
	if errors.Is(err, errUnchanged) {
		d, _, err = s.store.Desired(host).Get(ctx)
	}
	if err != nil {
		return 0, err
	}
	return d.Generation, nil
}

// undesireInstances removes instances (by port) from a host's desired
// state; the agent stops them and deletes their directories.
func (s *Server) undesireInstances(ctx context.Context, host string, ports []int) error {
	_, _, err := s.store.Desired(host).Update(ctx, func(d *meta.DesiredState) error {
		n := len(d.Instances)
		d.Instances = slices.DeleteFunc(d.Instances, func(x meta.Instance) bool { return slices.Contains(ports, x.Port) })
		if len(d.Instances) == n {
			return errUnchanged
		}
		d.Generation++
		return nil
	})
	if errors.Is(err, errUnchanged) || errors.Is(err, coord.ErrNotFound) {
		return nil
	}
	return err
}

// waitRunning waits until every placed instance is reported running by its
// agent.
func (s *Server) waitRunning(ctx context.Context, placed []placedInstance) error {
	pending := slices.Clone(placed)
	for {
		pending = slices.DeleteFunc(pending, func(p placedInstance) bool {
			a, _, err := s.store.Actual(p.Host).Get(ctx)
			if err != nil {
				return false
			}
			return slices.ContainsFunc(a.Instances, func(st meta.InstanceStatus) bool {
				return st.Port == p.Port && st.State == meta.InstanceRunning
			})
		})
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			var desc []string
			for _, p := range pending {
				desc = append(desc, p.Host+"/"+p.Addr+s.instanceError(context.Background(), p))
			}
			return fmt.Errorf("instances not running: %v: %w", desc, ctx.Err())
		case <-timeAfter(250):
		}
	}
}

// instanceError describes why an agent reports an instance not running.
func (s *Server) instanceError(ctx context.Context, p placedInstance) string {
	a, _, err := s.store.Actual(p.Host).Get(ctx)
	if err != nil {
		return ""
	}
	for _, st := range a.Instances {
		if st.Port == p.Port {
			return " (" + st.State + " " + st.Error + ")"
		}
	}
	return " (not reported yet)"
}
