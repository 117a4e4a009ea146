package manager

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/r2m-go/r2m/cluster"
	"github.com/r2m-go/r2m/meta"
)

// adoptParams is POST /api/v1/clusters/adopt: register a Redis Cluster that
// R2M did not deploy, from one of its nodes.
type adoptParams struct {
	Name       string `json:"name"`
	Seed       string `json:"seed"`
	Password   string `json:"password"`
	Datacenter string `json:"datacenter"`
	// App is the app to bind to the cluster; empty means the cluster's
	// name; "-" means none.
	App string `json:"app"`
}

func planAdopt(ctx context.Context, req *opRequest) (*opPlan, error) {
	var p adoptParams
	if err := decodeParams(req.Params, &p); err != nil {
		return nil, err
	}
	if err := required("seed", p.Seed); err != nil {
		return nil, err
	}
	if p.Name != req.Cluster {
		return nil, badRequest("name", "name %q does not match the cluster %q", p.Name, req.Cluster)
	}
	if p.App == "" {
		p.App = p.Name
	}
	if p.App != "-" {
		if err := meta.ValidateName("app", p.App); err != nil {
			return nil, badRequest("app", "%v", err)
		}
	}
	eng := cluster.New(cluster.Config{Password: p.Password, Logger: req.s.log})
	defer eng.Close()
	findings, v, err := eng.Check(ctx, p.Seed)
	if err != nil {
		return nil, badRequest("seed", "cannot inspect a cluster at %s: %v", p.Seed, err)
	}
	masters, replicas := 0, 0
	for _, n := range v.Nodes {
		if n.IsMaster() {
			masters++
		} else {
			replicas++
		}
	}
	if masters == 0 {
		return nil, badRequest("seed", "%s is not part of a Redis Cluster with masters", p.Seed)
	}
	text := fmt.Sprintf("adopt the cluster at %s as %q: %d masters, %d replicas", p.Seed, p.Name, masters, replicas)
	if p.App != "-" {
		text += fmt.Sprintf("; bind app %q to it", p.App)
	}
	for _, f := range findings {
		if f.Severity >= cluster.SevWarning {
			text += "\n  finding: " + f.String()
		}
	}
	stored := p
	stored.Password = "" // kept in the cluster's credentials, not with the operation
	params, err := json.Marshal(stored)
	if err != nil {
		return nil, err
	}
	perMaster := 0
	if masters > 0 {
		perMaster = replicas / masters
	}
	return &opPlan{
		Steps: []string{"read topology", "bind app"}, Text: text, Params: params,
		Detail:   map[string]int{"masters": masters, "replicas": replicas},
		Cluster:  &meta.Cluster{Name: p.Name, Datacenter: p.Datacenter, State: meta.ClusterAdopting, Adopted: true, Masters: masters, ReplicasPerMaster: perMaster},
		Password: p.Password,
	}, nil
}

func runAdopt(ctx context.Context, x *opExec) error {
	var p adoptParams
	if err := x.params(&p); err != nil {
		return err
	}
	if p.App == "" {
		p.App = p.Name
	}
	if err := x.step(ctx, "read topology", func(ctx context.Context) error {
		password, err := x.s.password(ctx, p.Name)
		if err != nil {
			return err
		}
		v, err := x.s.engineWithPassword(p.Name, password).Inspect(ctx, p.Seed)
		if err != nil {
			return err
		}
		if err := x.s.writeTopology(ctx, p.Name, v); err != nil {
			return err
		}
		_, _, err = x.s.store.Cluster(p.Name).Update(ctx, func(c *meta.Cluster) error {
			c.State = meta.ClusterActive
			return nil
		})
		return err
	}); err != nil {
		return err
	}
	return x.step(ctx, "bind app", func(ctx context.Context) error {
		if p.App == "-" {
			return nil
		}
		return x.s.bindApp(ctx, p.App, p.Name)
	})
}
