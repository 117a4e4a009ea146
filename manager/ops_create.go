package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/r2m-go/r2m/cluster"
	"github.com/r2m-go/r2m/meta"
)

// createParams is POST /api/v1/clusters: deploy a new cluster on the
// running agents.
type createParams struct {
	Name     string `json:"name"`
	Masters  int    `json:"masters"`
	Replicas int    `json:"replicas"`
	// MaxMemory per instance, in bytes or with a unit: "256mb", "2gb".
	MaxMemory   string `json:"maxmemory"`
	Datacenter  string `json:"datacenter"`
	Persistence string `json:"persistence"` // none, rdb (default) or aof
	// NodeTimeout is cluster-node-timeout, such as "5s"; empty means 15s.
	// Shorter detects failures sooner and lets a new cluster agree sooner.
	NodeTimeout string `json:"node_timeout"`
	// App to bind; empty means the cluster's name, "-" none.
	App string `json:"app"`
}

// createDetail is the stored plan of a create: where each instance goes.
type createDetail struct {
	Instances []placedInstance `json:"instances"`
	Notes     []string         `json:"notes,omitempty"`
}

// parseBytes reads "256mb", "2gb", "1024" (bytes).
func parseBytes(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want bytes or a size such as 256mb or 2gb")
	}
	return n * mult, nil
}

func planCreate(ctx context.Context, req *opRequest) (*opPlan, error) {
	var p createParams
	if err := decodeParams(req.Params, &p); err != nil {
		return nil, err
	}
	if p.Name != req.Cluster {
		return nil, badRequest("name", "name %q does not match the cluster %q", p.Name, req.Cluster)
	}
	if p.Masters < 1 || p.Masters > 1000 {
		return nil, badRequest("masters", "masters %d: want 1-1000 (3 or more for automatic failover)", p.Masters)
	}
	if p.Replicas < 0 || p.Replicas > 5 {
		return nil, badRequest("replicas", "replicas %d: want 0-5 per master", p.Replicas)
	}
	var maxmem int64
	if p.MaxMemory != "" {
		var err error
		if maxmem, err = parseBytes(p.MaxMemory); err != nil {
			return nil, badRequest("maxmemory", "maxmemory %q: %v", p.MaxMemory, err)
		}
	}
	switch p.Persistence {
	case "":
		p.Persistence = "rdb"
	case "none", "rdb", "aof":
	default:
		return nil, badRequest("persistence", "persistence %q: want none, rdb or aof", p.Persistence)
	}
	if p.NodeTimeout != "" {
		if d, err := time.ParseDuration(p.NodeTimeout); err != nil || d < time.Second || d > 5*time.Minute {
			return nil, badRequest("node_timeout", "node_timeout %q: want a duration from 1s to 5m", p.NodeTimeout)
		}
	}
	if p.App == "" {
		p.App = p.Name
	}
	if p.App != "-" {
		if err := meta.ValidateName("app", p.App); err != nil {
			return nil, badRequest("app", "%v", err)
		}
	}
	s := req.s
	hosts, err := s.liveHosts(ctx)
	if err != nil {
		return nil, err
	}
	used, err := s.usedPorts(ctx)
	if err != nil {
		return nil, err
	}
	n := p.Masters * (1 + p.Replicas)
	placed, notes, err := place(hosts, used, n, s.cfg.PortBase, s.cfg.PortSpan, p.Datacenter)
	if err != nil {
		return nil, &httpError{status: http.StatusConflict, code: "conflict", msg: err.Error()}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "create cluster %q: %d masters × %d replicas = %d instances", p.Name, p.Masters, p.Replicas, n)
	if maxmem > 0 {
		fmt.Fprintf(&b, ", maxmemory %d bytes each", maxmem)
	}
	fmt.Fprintf(&b, ", persistence %s\n", p.Persistence)
	perHost := map[string][]string{}
	var order []string
	for _, pi := range placed {
		if _, ok := perHost[pi.Host]; !ok {
			order = append(order, pi.Host)
		}
		perHost[pi.Host] = append(perHost[pi.Host], strconv.Itoa(pi.Port))
	}
	for _, h := range order {
		fmt.Fprintf(&b, "  %s: ports %s\n", h, strings.Join(perHost[h], ","))
	}
	fmt.Fprintf(&b, "  masters and replicas are paired on different hosts wherever the hosts allow\n")
	if p.App != "-" {
		fmt.Fprintf(&b, "  bind app %q to it\n", p.App)
	}
	for _, nt := range notes {
		fmt.Fprintf(&b, "  note: %s\n", nt)
	}
	stored, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return &opPlan{
		Steps:  []string{"start instances", "form cluster", "publish"},
		Detail: createDetail{Instances: placed, Notes: notes}, Text: b.String(), Params: stored,
		Cluster: &meta.Cluster{
			Name: p.Name, Datacenter: p.Datacenter, State: meta.ClusterCreating,
			Masters: p.Masters, ReplicasPerMaster: p.Replicas, MaxMemoryBytes: maxmem,
		},
		Password: randomString(24),
	}, nil
}

func runCreate(ctx context.Context, x *opExec) error {
	var p createParams
	if err := x.params(&p); err != nil {
		return err
	}
	var d struct {
		Detail createDetail `json:"detail"`
	}
	if err := json.Unmarshal(x.op.Plan, &d); err != nil {
		return err
	}
	placed := d.Detail.Instances
	c, _, err := x.s.store.Cluster(p.Name).Get(ctx)
	if err != nil {
		return err
	}
	err = x.step(ctx, "start instances", func(ctx context.Context) error {
		var nodeTimeout time.Duration
		if p.NodeTimeout != "" {
			nodeTimeout, _ = time.ParseDuration(p.NodeTimeout)
		}
		byHost := map[string][]meta.Instance{}
		for _, pi := range placed {
			byHost[pi.Host] = append(byHost[pi.Host], meta.Instance{
				Port: pi.Port, Cluster: p.Name, MaxMemoryBytes: c.MaxMemoryBytes,
				Persistence: p.Persistence, PasswordFrom: p.Name, NodeTimeout: meta.Duration(nodeTimeout),
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
	})
	if err != nil {
		return err
	}
	err = x.step(ctx, "form cluster", func(ctx context.Context) error {
		eng, err := x.s.engine(ctx, p.Name)
		if err != nil {
			return err
		}
		nodes := make([]cluster.NodeSpec, len(placed))
		for i, pi := range placed {
			nodes[i] = cluster.NodeSpec{Addr: pi.Addr, Host: pi.Host}
		}
		// A run interrupted after the nodes met is finished already when
		// the first node serves every slot with all nodes known.
		if v, err := eng.Inspect(ctx, placed[0].Addr); err == nil && len(v.Nodes) == len(placed) && len(v.Masters()) == p.Masters {
			covered := 0
			for _, m := range v.Masters() {
				covered += m.SlotCount()
			}
			if covered == 16384 {
				return nil
			}
		}
		l, err := eng.Create(ctx, nodes, cluster.CreateOptions{Replicas: p.Replicas})
		if err != nil {
			return err
		}
		x.log.Info("cluster formed", "layout", l.String())
		return nil
	})
	if err != nil {
		return err
	}
	return x.step(ctx, "publish", func(ctx context.Context) error {
		eng, err := x.s.engine(ctx, p.Name)
		if err != nil {
			return err
		}
		v, err := eng.Inspect(ctx, placed[0].Addr)
		if err != nil {
			return err
		}
		if err := x.s.writeTopology(ctx, p.Name, v); err != nil {
			return err
		}
		if _, _, err := x.s.store.Cluster(p.Name).Update(ctx, func(c *meta.Cluster) error {
			c.State, c.UpdatedAt = meta.ClusterActive, time.Now().UTC()
			return nil
		}); err != nil {
			return err
		}
		if p.App == "-" {
			return nil
		}
		return x.s.bindApp(ctx, p.App, p.Name)
	})
}

// createCluster handles POST /api/v1/clusters.
func (s *Server) createCluster(r *http.Request, p *principal) (any, error) {
	params, opt, err := opBody(r)
	if err != nil {
		return nil, err
	}
	var name struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(params, &name)
	if err := required("name", name.Name); err != nil {
		return nil, err
	}
	return s.submit(r.Context(), "create", name.Name, params, opt, p)
}
