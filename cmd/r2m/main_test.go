package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/manager"
	"github.com/r2m-go/r2m/meta"
	"github.com/r2m-go/r2m/monitor"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// cliEnv is a running server and the flags that point the CLI at it.
type cliEnv struct {
	server  *manager.Server
	coord   *coord.Coordinator
	url     string
	token   string
	dataDir string
}

// startCLIEnv runs a manager server on a fresh root of the shared etcd
// until the test ends.
func startCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ctx, cancel := context.WithCancel(context.Background())
	c, err := coord.Open(ctx, testenv.SharedEtcd(t).URL("/clitest-"+hex.EncodeToString(b)))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mon, err := monitor.New(monitor.Config{Store: meta.NewStore(c), DataDir: dir, Interval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s, err := manager.New(manager.Config{Coordinator: c, Listener: l, DataDir: dir, PasswordCost: bcrypt.MinCost, Monitor: mon})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
		if err := mon.Close(); err != nil {
			t.Errorf("monitor: %v", err)
		}
		if err := c.Close(); err != nil {
			t.Errorf("coordinator: %v", err)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for !s.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("server did not become leader")
		}
		time.Sleep(20 * time.Millisecond)
	}
	tok, err := os.ReadFile(manager.AdminTokenPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	return &cliEnv{server: s, coord: c, url: "http://" + l.Addr().String(), token: strings.TrimSpace(string(tok)), dataDir: dir}
}

// run runs the r2m command line with the API flags added, and returns its
// standard output.
func (e *cliEnv) run(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(append(args, "--server", e.url, "--token", e.token))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}
