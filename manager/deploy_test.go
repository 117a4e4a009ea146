package manager

import (
	"context"
	"math/rand/v2"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/r2m-go/r2m/agent"
	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/client"
	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/meta"
)

// startAgent runs an agent for host on coordURL until the test ends; its
// instances stop with it.
func startAgent(t *testing.T, coordURL, host string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c, err := coord.Open(ctx, coordURL)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := testenv.RedisServerPath()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a, err := agent.New(agent.Options{Host: host, BindAddr: "127.0.0.1", DataDir: dir, Coordinator: c, RedisServerPath: bin, StopOnExit: true})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent %s: %v", host, err)
		}
		if err := c.Close(); err != nil {
			t.Errorf("agent %s coordinator: %v", host, err)
		}
	})
	return dir
}

// testPortBase picks deployment ports below the ephemeral range, away
// from other test packages running at the same time.
func testPortBase() int { return 12000 + rand.IntN(70)*100 }

func TestDeployOnThreeAgents(t *testing.T) {
	url := testenv_SharedEtcdURL(t)
	ts := startLeader(t, url, func(c *Config) {
		c.ObserveInterval = 300 * time.Millisecond
		c.PortBase, c.PortSpan = testPortBase(), 100
	})
	for _, h := range []string{"host-a", "host-b", "host-c"} {
		startAgent(t, url, h)
	}
	ctx := ctxT(t)
	admin := ts.adminClient(t)
	waitFor(t, "three live agents", func() bool {
		hs, err := ts.liveHosts(ctx)
		return err == nil && len(hs) == 3
	})
	params := map[string]any{"name": "shop", "masters": 3, "replicas": 1, "maxmemory": "64mb"}
	_, d, err := startCreate(ctx, admin, params, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("create plan:\n%s", d.PlanText)
	for _, h := range []string{"host-a", "host-b", "host-c"} {
		if !strings.Contains(d.PlanText, h) {
			t.Fatalf("plan does not use %s:\n%s", h, d.PlanText)
		}
	}
	op, _, err := startCreate(ctx, admin, params, false)
	if err != nil {
		t.Fatal(err)
	}
	mustSucceed(t, waitOp(t, admin, op.ID))

	detail, err := admin.Cluster(ctx, "shop")
	if err != nil || detail.Masters != 3 || detail.Replicas != 3 || detail.Health != "ok" {
		t.Fatalf("deployed cluster = %+v, %v", detail, err)
	}
	// Anti-affinity: no replica on its master's host.
	hostOf := map[string]string{}
	for _, n := range detail.Nodes {
		hostOf[n.ID] = n.Host
		if n.Host == "" {
			t.Fatalf("node %s has no host in the topology", n.Addr)
		}
	}
	for _, n := range detail.Nodes {
		if n.Role == "replica" && hostOf[n.MasterID] == n.Host {
			t.Fatalf("replica %s shares host %s with its master", n.Addr, n.Host)
		}
	}
	// Clients can use it with the generated password.
	cred, err := admin.Credentials(ctx, "shop")
	if err != nil || len(cred.Password) < 20 {
		t.Fatalf("credentials = %+v, %v", cred, err)
	}
	var addrs []string
	for _, n := range detail.Nodes {
		addrs = append(addrs, n.Addr)
	}
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Password: cred.Password})
	defer rdb.Close()
	if err := rdb.Set(ctx, "hello", "world", 0).Err(); err != nil {
		t.Fatalf("SET through the deployed cluster: %v", err)
	}
	cli, _ := testenv.RedisCLIPath()
	if out, err := exec.Command(cli, "-a", cred.Password, "--no-auth-warning", "--cluster", "check", addrs[0]).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster check: %v\n%s", err, out)
	}
	if a, err := admin.App(ctx, "shop"); err != nil || a.ActiveCluster != "shop" {
		t.Fatalf("app = %+v, %v", a, err)
	}
	// An R2M Go client finds the cluster by the app's name (password
	// included, from the coordinator), registers and writes; a client we
	// did not write reads the value back.
	rc, err := client.New(ctx, client.Options{Coordinator: url, App: "shop", Name: "deploy-test", Logger: ts.cfg.Logger})
	if err != nil {
		t.Fatalf("client.New for app shop: %v", err)
	}
	if err := rc.Do(ctx, rc.B().Set().Key("from-r2m-client").Value("written").Build()).Error(); err != nil {
		t.Fatalf("SET through the R2M client: %v", err)
	}
	if v, err := rdb.Get(ctx, "from-r2m-client").Result(); err != nil || v != "written" {
		t.Fatalf("go-redis GET of the R2M client's write = %q, %v", v, err)
	}
	if cl, err := admin.AppClients(ctx, "shop"); err != nil || len(cl.Clients) != 1 || cl.Clients[0].ID != rc.ID() {
		t.Fatalf("the API's clients of shop = %+v, %v; want the one client %s", cl, err, rc.ID())
	}
	if err := rc.Close(); err != nil {
		t.Fatalf("client Close: %v", err)
	}

	// An agent restarts a killed redis-server.
	st := meta.NewStore(ts.cfg.Coordinator)
	act, _, err := st.Actual("host-b").Get(ctx)
	if err != nil || len(act.Instances) == 0 {
		t.Fatalf("host-b actual = %+v, %v", act, err)
	}
	victim := act.Instances[0]
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "host-b's agent to restart the killed instance", func() bool {
		a, _, err := st.Actual("host-b").Get(ctx)
		if err != nil {
			return false
		}
		for _, in := range a.Instances {
			if in.Port == victim.Port {
				return in.PID != victim.PID && in.State == meta.InstanceRunning
			}
		}
		return false
	})
	conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(victim.Port), time.Second)
	if err != nil {
		t.Fatalf("restarted instance does not answer: %v", err)
	}
	conn.Close()

	// A second create on the same name is refused.
	if _, _, err := startCreate(ctx, admin, params, false); !api.IsStatus(err, 409) {
		t.Fatalf("creating shop twice: %v, want 409", err)
	}
}

func startCreate(ctx context.Context, c *api.Client, params map[string]any, dry bool) (*api.Operation, *api.DryRun, error) {
	return c.CreateCluster(ctx, params, dry)
}
