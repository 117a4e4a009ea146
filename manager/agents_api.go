package manager

import (
	"net/http"

	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/meta"
)

// listAgents handles GET /api/v1/agents: every host that registered an
// agent, whether its agent runs now, and its instances.
func (s *Server) listAgents(r *http.Request, _ *principal) (any, error) {
	ctx := r.Context()
	hosts, err := s.store.Agents().Names(ctx)
	if err != nil {
		return nil, err
	}
	out := []api.Agent{}
	for _, h := range hosts {
		a, _, err := s.store.Agent(h).Get(ctx)
		if err != nil {
			continue
		}
		ag := api.Agent{Host: h, Addr: a.Addr, Datacenter: a.Datacenter, MaxInstances: a.MaxInstances, MemoryBytes: a.MemoryBytes}
		if live, _, err := s.store.AgentLive(h).Get(ctx); err == nil {
			ag.Live, ag.Version = true, live.Version
		}
		if d, _, err := s.store.Desired(h).Get(ctx); err == nil {
			ag.Instances = len(d.Instances)
		}
		if act, _, err := s.store.Actual(h).Get(ctx); err == nil {
			for _, in := range act.Instances {
				if in.State == meta.InstanceRunning {
					ag.Running++
				}
			}
		}
		out = append(out, ag)
	}
	return out, nil
}
