package agent_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/r2m-go/r2m/agent"
	"github.com/r2m-go/r2m/meta"
)

// TestPasswordAndLiveConfig: the password from the cluster's credentials is
// applied (AUTH required), never appears in the agent's logs or reports,
// and a new password, maxmemory and persistence reach the running instance
// without a restart, and its config file for the next restart.
func TestPasswordAndLiveConfig(t *testing.T) {
	backends(t, func(t *testing.T, url func(string) string) {
		ctx := testCtx(t)
		dir := newDataDir(t)
		f := newFixture(t, url(uniqueRoot()), 0)
		// Quotes, a backslash, a control character and non-ASCII: the config
		// file must carry any byte.
		pw1 := "pw-one \"q\" \\ \x01 ünï"
		pw2 := "pw-two-" + strconv.Itoa(os.Getpid())
		cred := f.st.Credentials("c1")
		if err := cred.Create(ctx, &meta.Credentials{Password: pw1}); err != nil {
			t.Fatal(err)
		}
		port := freePorts(t, 1)[0]
		in := instance(port)
		in.PasswordFrom = "c1"
		in.MaxMemoryBytes = 64 << 20
		in.Persistence = "aof"
		f.setDesired(t, "host-a", 1, in)
		f.start(t, f.options("host-a", dir))
		act := f.waitActual(t, "host-a", "running", allRunning(1, port))
		pid := status(act, port).PID

		if err := pingPort(ctx, port, ""); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
			t.Fatalf("PING without a password: %v; want NOAUTH", err)
		}
		if err := pingPort(ctx, port, pw1); err != nil {
			t.Fatalf("PING with the password: %v", err)
		}
		checkConfig(t, port, pw1, map[string]string{"maxmemory": "67108864", "appendonly": "yes", "save": ""})
		idir := filepath.Join(dir, "redis-"+strconv.Itoa(port))
		if st, err := os.Stat(idir); err != nil || st.Mode().Perm() != 0o700 {
			t.Fatalf("instance dir %v, %v; want mode 0700", st.Mode(), err)
		}
		if st, err := os.Stat(filepath.Join(idir, "redis.conf")); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("redis.conf %v, %v; want mode 0600", st.Mode(), err)
		}

		// Rotate the password and change the settings: applied live.
		if _, err := cred.Set(ctx, &meta.Credentials{Password: pw2}, 0); err != nil {
			t.Fatal(err)
		}
		in.MaxMemoryBytes = 128 << 20
		in.Persistence = "rdb"
		f.setDesired(t, "host-a", 2, in)
		f.waitActual(t, "host-a", "generation 2", allRunning(2, port))
		waitFor(t, "the new password to work", func() (bool, string) {
			err := pingPort(ctx, port, pw2)
			return err == nil, errString(err)
		})
		checkConfig(t, port, pw2, map[string]string{"maxmemory": "134217728", "appendonly": "no", "save": "3600 1 300 100 60 10000"})
		if got := onlyPID(t, port); got != pid {
			t.Fatalf("pid %d after a config change; want %d (no restart)", got, pid)
		}

		// A crash restarts it from the rewritten file: the new settings hold.
		killPID(t, pid)
		f.waitActual(t, "host-a", "restarted", func(a *meta.ActualState) bool {
			s := status(a, port)
			return s != nil && s.State == agent.StateRunning && s.PID != pid && s.Restarts == 1
		})
		checkConfig(t, port, pw2, map[string]string{"maxmemory": "134217728", "appendonly": "no"})

		// The password is nowhere in the logs, the reports or Redis's log.
		raw, err := f.c.Get(ctx, f.st.Actual("host-a").Path())
		if err != nil {
			t.Fatal(err)
		}
		redisLog, _ := os.ReadFile(filepath.Join(idir, "redis.log"))
		for name, text := range map[string]string{
			"agent log": f.logs.String(), "actual state": string(raw.Data), "redis.log": string(redisLog),
			"desired.json": readFile(t, filepath.Join(dir, "desired.json")),
		} {
			for _, pw := range []string{pw1, pw2} {
				if strings.Contains(text, pw) {
					t.Errorf("%s contains a password", name)
				}
			}
		}
		if !strings.Contains(f.logs.String(), "config applied to the running instance") {
			t.Error("agent log does not mention applying the config change (is the log captured?)")
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkConfig compares CONFIG GET results.
func checkConfig(t *testing.T, port int, password string, want map[string]string) {
	t.Helper()
	c := redisClient(port, password)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for k, v := range want {
		got, err := c.ConfigGet(ctx, k).Result()
		if err != nil {
			t.Fatalf("CONFIG GET %s: %v", k, err)
		}
		if got[k] != v {
			t.Fatalf("CONFIG GET %s = %q; want %q", k, got[k], v)
		}
	}
}
