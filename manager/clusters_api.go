package manager

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/cluster"
	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/meta"
)

// clusterSummary builds the list entry of a cluster from its records.
func (s *Server) clusterSummary(ctx context.Context, c *meta.Cluster) (api.Cluster, *meta.Topology) {
	out := api.Cluster{Name: c.Name, Datacenter: c.Datacenter, State: string(c.State), Adopted: c.Adopted, Created: c.CreatedAt, Health: "unknown"}
	if l, _, err := s.store.ClusterLock(c.Name).Get(ctx); err == nil {
		out.Op = l.Op
	}
	t, _, err := s.store.Topology(c.Name).Get(ctx)
	if err != nil {
		return out, nil
	}
	out.Epoch = t.Epoch
	covered := 0
	degraded := false
	for _, n := range t.Nodes {
		if n.Role == meta.RoleMaster {
			out.Masters++
			if n.Health == meta.HealthOK || n.Health == meta.HealthPFail {
				for _, r := range n.Slots {
					covered += r.End - r.Start + 1
				}
			}
		} else {
			out.Replicas++
		}
		if n.Health != meta.HealthOK {
			degraded = true
		}
	}
	switch {
	case covered < 16384:
		out.Health = "fail"
	case degraded:
		out.Health = "degraded"
	default:
		out.Health = "ok"
	}
	return out, t
}

func (s *Server) listClusters(r *http.Request, _ *principal) (any, error) {
	names, err := s.store.Clusters().Names(r.Context())
	if err != nil {
		return nil, err
	}
	out := []api.Cluster{}
	for _, n := range names {
		c, _, err := s.store.Cluster(n).Get(r.Context())
		if err != nil {
			continue
		}
		sum, _ := s.clusterSummary(r.Context(), c)
		out = append(out, sum)
	}
	return out, nil
}

func (s *Server) getClusterRecord(ctx context.Context, name string) (*meta.Cluster, error) {
	c, _, err := s.store.Cluster(name).Get(ctx)
	if errors.Is(err, coord.ErrNotFound) {
		return nil, notFound("no cluster %q", name)
	}
	return c, err
}

func (s *Server) getCluster(r *http.Request, _ *principal) (any, error) {
	ctx := r.Context()
	c, err := s.getClusterRecord(ctx, r.PathValue("name"))
	if err != nil {
		return nil, err
	}
	sum, t := s.clusterSummary(ctx, c)
	out := api.ClusterDetail{Cluster: sum, MaxMemoryBytes: c.MaxMemoryBytes, Nodes: []api.ClusterNode{}}
	if t != nil {
		for _, n := range t.Nodes {
			cn := api.ClusterNode{ID: n.ID, Addr: n.Addr, Host: n.Host, Role: string(n.Role), MasterID: n.MasterID, Health: string(n.Health)}
			for _, sr := range n.Slots {
				cn.Slots = append(cn.Slots, cluster.SlotRange{Start: sr.Start, End: sr.End}.String())
			}
			out.Nodes = append(out.Nodes, cn)
		}
	}
	if apps, err := s.store.Apps().Names(ctx); err == nil {
		for _, a := range apps {
			if rec, _, err := s.store.App(a).Get(ctx); err == nil && rec.ActiveCluster == c.Name {
				out.Apps = append(out.Apps, a)
			}
		}
	}
	return out, nil
}

func (s *Server) checkClusterAPI(r *http.Request, _ *principal) (any, error) {
	name := r.PathValue("name")
	c, err := s.getClusterRecord(r.Context(), name)
	if err != nil {
		return nil, err
	}
	_, v, err := s.inspect(r.Context(), name)
	if err != nil {
		return nil, unavailable(fmt.Sprintf("cannot inspect cluster %s", name), err)
	}
	findings := cluster.Analyze(v)
	out := api.CheckResult{Cluster: name, Clean: true, Findings: []api.Finding{}}
	for _, f := range findings {
		if significant(c, f) {
			out.Clean = false
		}
		af := api.Finding{Kind: string(f.Kind), Severity: f.Severity.String(), Node: f.Node, Detail: f.Detail}
		for _, sr := range f.Slots {
			af.Slots = append(af.Slots, sr.String())
		}
		out.Findings = append(out.Findings, af)
	}
	return out, nil
}

func (s *Server) clusterCredentials(r *http.Request, _ *principal) (any, error) {
	name := r.PathValue("name")
	if _, err := s.getClusterRecord(r.Context(), name); err != nil {
		return nil, err
	}
	pw, err := s.password(r.Context(), name)
	if err != nil {
		return nil, err
	}
	return api.Credentials{Cluster: name, Password: pw}, nil
}
