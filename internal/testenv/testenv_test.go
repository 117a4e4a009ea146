package testenv

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { Main(m) }

// processGone reports whether pid no longer names a live process.
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return true
	}
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err != nil || isZombieStat(st)
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestRedisKillPauseRestart(t *testing.T) {
	s := StartRedis(t, RedisOptions{Password: "s3cret", AppendOnly: true})
	c := s.Client(t)
	ctx := ctxTimeout(t, 30*time.Second)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET with password: %v", err)
	}
	anon := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer anon.Close()
	if err := anon.Get(ctx, "k").Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("GET without password: got %v, want NOAUTH", err)
	}

	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err := c.Ping(short).Err()
	cancel()
	if err == nil {
		t.Fatal("PING to a paused server succeeded, want a timeout")
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after resume: %v", err)
	}

	pid := s.PID()
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if s.Running() || !processGone(pid) {
		t.Fatalf("server pid %d still running after Kill", pid)
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET k after kill and restart with AOF = %q, %v; want \"v\"", got, err)
	}
}

func TestRedisClusterFormsAndPassesRedisCLICheck(t *testing.T) {
	c := StartRedisCluster(t, ClusterOptions{Masters: 3, Replicas: 1, Password: "pw"})
	if len(c.Nodes) != 6 || len(c.Masters()) != 3 || len(c.ReplicasOf(2)) != 1 {
		t.Fatalf("got %d nodes, %d masters, %d replicas of master 2; want 6, 3, 1", len(c.Nodes), len(c.Masters()), len(c.ReplicasOf(2)))
	}
	ctx := ctxTimeout(t, 30*time.Second)
	cc := c.Client(t)
	for i := range 100 {
		if err := cc.Set(ctx, "key:"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatalf("SET through cluster client: %v", err)
		}
	}
	cli, err := RedisCLIPath()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, cli, "-a", "pw", "--no-auth-warning", "--cluster", "check", c.Nodes[0].Addr).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster check: %v\n%s", err, out)
	}
	for i := range 3 {
		repl, err := c.ReplicasOf(i)[0].Client(t).Info(ctx, "replication").Result()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(repl, "role:slave") || !strings.Contains(repl, "master_port:"+strconv.Itoa(c.Masters()[i].Port)) {
			t.Fatalf("replica %d is not replicating master %s:\n%s", i, c.Masters()[i].Addr, repl)
		}
	}
}

func TestZooKeeperReadyAndRestartOnSamePort(t *testing.T) {
	z := StartZooKeeper(t)
	out, err := FourLetterWord(z.Addr, "srvr")
	if err != nil || !strings.Contains(out, "Mode: standalone") {
		t.Fatalf("srvr = %q, %v; want a Mode: standalone line", out, err)
	}
	if err := z.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", z.Addr, time.Second); err == nil {
		t.Fatalf("%s still accepts connections after Stop", z.Addr)
	}
	if err := z.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := FourLetterWord(z.Addr, "srvr"); err != nil || !strings.Contains(out, "Mode:") {
		t.Fatalf("srvr after restart = %q, %v", out, err)
	}
}

func TestEtcdRestartKeepsData(t *testing.T) {
	s := StartEtcd(t)
	ctx := ctxTimeout(t, 30*time.Second)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.Endpoint()}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctx, "/k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, "/k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("Get after restart = %v, %v; want one key with value v", resp, err)
	}
}

// TestCleanupStopsEveryProcess starts servers inside a subtest and checks
// that their processes are gone as soon as the subtest's cleanups have run.
func TestCleanupStopsEveryProcess(t *testing.T) {
	var pids []int
	t.Run("servers", func(t *testing.T) {
		pids = append(pids, StartRedis(t, RedisOptions{}).PID(), StartZooKeeper(t).PID())
		for _, n := range StartRedisCluster(t, ClusterOptions{Masters: 1}).Nodes {
			pids = append(pids, n.PID())
		}
		if got := len(survivors()); got < len(pids) {
			t.Fatalf("survivors() sees %d marked processes while %d are running", got, len(pids))
		}
	})
	for _, pid := range pids {
		if !processGone(pid) {
			t.Errorf("process %d still running after its test's cleanup", pid)
		}
	}
	if left := survivors(); len(left) > 0 {
		t.Errorf("marked processes left after cleanup: %v", left)
	}
}

func TestMissingBinaryNamesInstallCommand(t *testing.T) {
	_, err := lookBinary("r2m-no-such-binary")
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y redis-server redis-tools zookeeper chromium") {
		t.Fatalf("lookBinary error = %v; want it to name the install command", err)
	}
}

func TestProxyBlockCutsAndUnblockRestores(t *testing.T) {
	s := StartRedis(t, RedisOptions{})
	p := StartProxy(t, s.Addr)
	c := redis.NewClient(&redis.Options{Addr: p.Addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	ctx := ctxTimeout(t, 10*time.Second)
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING through proxy: %v", err)
	}
	p.Block()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING through a blocked proxy succeeded")
	}
	p.Unblock()
	if err := c.Ping(ctx).Err(); err != nil && !errors.Is(err, net.ErrClosed) {
		// The pooled connection was cut; the next dial goes through.
		if err := c.Ping(ctx).Err(); err != nil {
			t.Fatalf("PING after unblock: %v", err)
		}
	}
}

// TestFormRefusesANodeAnotherClusterReached: a node that a foreign cluster
// node MEETs before formation (what a stale handshake of another test does
// to a reused port) makes form fail with errJoinedElsewhere, which
// StartRedisCluster answers by starting again on fresh ports.
func TestFormRefusesANodeAnotherClusterReached(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	start := func() *RedisServer {
		s, err := startRedis(dir, RedisOptions{Cluster: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Stop() })
		return s
	}
	foreign := start()
	c := &RedisCluster{opts: ClusterOptions{Masters: 2}, Nodes: []*RedisServer{start(), start()}}
	fc := foreign.Client(t)
	if err := fc.ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(c.Nodes[1].Port)).Err(); err != nil {
		t.Fatal(err)
	}
	victim := c.Nodes[1].Client(t)
	if err := poll(ctx, 50*time.Millisecond, func() (bool, error) {
		out, err := victim.ClusterNodes(ctx).Result()
		return err == nil && strings.Count(strings.TrimSpace(out), "\n") == 1 && !strings.Contains(out, "handshake"), nil
	}); err != nil {
		t.Fatalf("the foreign node's MEET did not land: %v", err)
	}
	if err := c.form(ctx); !errors.Is(err, errJoinedElsewhere) {
		t.Fatalf("form with a node another cluster reached = %v, want errJoinedElsewhere", err)
	}
}
