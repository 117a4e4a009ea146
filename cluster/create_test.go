package cluster_test

import (
	"errors"
	"testing"
	"time"

	"github.com/r2m-go/r2m/cluster"
	"github.com/r2m-go/r2m/internal/testenv"
)

// freshNodes starts n cluster-enabled nodes labelled with hosts[i].
func freshNodes(t *testing.T, opts testenv.RedisOptions, hosts ...string) ([]*testenv.RedisServer, []cluster.NodeSpec) {
	t.Helper()
	var servers []*testenv.RedisServer
	var specs []cluster.NodeSpec
	for _, h := range hosts {
		o := opts
		o.Cluster, o.Host = true, h
		s := testenv.StartRedis(t, o)
		servers = append(servers, s)
		specs = append(specs, cluster.NodeSpec{Addr: s.Addr, Host: s.Host()})
	}
	return servers, specs
}

func TestCreatePlacesReplicasOnOtherHosts(t *testing.T) {
	const pw = "create-pw"
	_, specs := freshNodes(t, testenv.RedisOptions{Password: pw}, "a", "a", "b", "b", "c", "c")
	e := newEngine(t, pw)
	ctx := ctxFor(t, 90*time.Second)
	layout, err := e.Create(ctx, specs, cluster.CreateOptions{Replicas: 1})
	if err != nil {
		t.Fatalf("Create: %v\n%v", err, layout)
	}
	t.Logf("layout:\n%s", layout)
	requireCheck(t, specs[0].Addr, pw)
	hostOf := map[string]string{}
	for _, s := range specs {
		hostOf[s.Addr] = s.Host
	}
	findings, v, err := e.Check(ctx, specs[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	if !cluster.Healthy(findings) {
		t.Fatalf("findings after Create:\n%s", describe(findings))
	}
	if got := len(v.Masters()); got != 3 {
		t.Fatalf("%d masters, want 3:\n%s", got, v)
	}
	for _, m := range v.Masters() {
		reps := v.ReplicasOf(m.ID)
		if len(reps) != 1 {
			t.Fatalf("master %s has %d replicas, want 1", m.Addr, len(reps))
		}
		if hostOf[reps[0].Addr] == hostOf[m.Addr] {
			t.Errorf("replica %s shares host %s with master %s", reps[0].Addr, hostOf[m.Addr], m.Addr)
		}
	}
	// The nodes are no longer fresh: a second Create must refuse.
	if _, err := e.Create(ctx, specs, cluster.CreateOptions{Replicas: 1}); !errors.Is(err, cluster.ErrNotEmpty) {
		t.Fatalf("Create on formed nodes: err = %v, want ErrNotEmpty", err)
	}
	requireCheck(t, specs[0].Addr, pw)
}

func TestCheckReportsHealthySharedCluster(t *testing.T) {
	c := testenv.SharedRedisCluster(t, testenv.ClusterOptions{Masters: 3, Replicas: 1, Password: "shared"})
	e := newEngine(t, "shared")
	ctx := ctxFor(t, 30*time.Second)
	// testenv returns once the masters agree; replicas' roles reach every
	// node by gossip a moment later.
	if _, err := e.WaitConverged(ctx, c.Nodes[0].Addr, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	findings, v, err := e.Check(ctx, c.Nodes[4].Addr) // a replica as seed
	if err != nil {
		t.Fatal(err)
	}
	if !cluster.Healthy(findings) || len(v.Nodes) != 6 || len(v.Masters()) != 3 {
		t.Fatalf("findings:\n%s\nview:\n%s", describe(findings), v)
	}
	replicaInfo := 0
	for _, f := range findings {
		if f.Kind == cluster.FindReplicas && f.Detail == "1 replicas" {
			replicaInfo++
		}
	}
	if replicaInfo != 3 {
		t.Errorf("want a replica-count finding per master:\n%s", describe(findings))
	}
	wrong := newEngine(t, "wrong")
	if _, _, err := wrong.Check(ctx, c.Nodes[0].Addr); err == nil {
		t.Error("Check with a wrong password succeeded")
	} else {
		var ne *cluster.NodeError
		if !errors.As(err, &ne) || ne.Addr == "" || ne.Step == "" {
			t.Errorf("error %v does not name the node and step", err)
		}
	}
	requireCheck(t, c.Nodes[0].Addr, "shared")
}
