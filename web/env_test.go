package web

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/r2m-go/r2m/agent"
	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/coord"
	_ "github.com/r2m-go/r2m/coord/install"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/manager"
	"github.com/r2m-go/r2m/meta"
	"github.com/r2m-go/r2m/monitor"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// syncBuffer collects a server's log for a failing test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// platform is a real r2m server, serving this package's console, on its own
// root of the package's shared etcd.
type platform struct {
	URL      string
	CoordURL string
	DataDir  string
	Server   *manager.Server
	Store    *meta.Store // a session of the test's own, for records it writes
	Admin    *api.Client
	Password string // the admin's console password
	Logger   *slog.Logger
}

// testPortBase picks deployment ports below the ephemeral range, away from
// other test packages running at the same time (as manager's tests do).
func testPortBase() int { return 12000 + rand.IntN(70)*100 }

func uniqueRoot() string {
	b := make([]byte, 4)
	_, _ = crand.Read(b)
	return "/webtest-" + hex.EncodeToString(b)
}

// startPlatform runs a manager server with the console until the test ends,
// and returns once it leads.
func startPlatform(t *testing.T, opts ...func(*manager.Config)) *platform {
	t.Helper()
	coordURL := testenv.SharedEtcd(t).URL(uniqueRoot())
	ctx, cancel := context.WithCancel(context.Background())
	c, err := coord.OpenConfig(ctx, coord.Config{URL: coordURL, SessionTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	dir := t.TempDir()
	cfg := manager.Config{
		Coordinator: c, Listener: l, DataDir: dir, PasswordCost: bcrypt.MinCost, Logger: log,
		Console:         New(Options{Logger: log}),
		ObserveInterval: 300 * time.Millisecond,
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := manager.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	// The test's own session, for the records it writes (client
	// registrations) as a client process would.
	own, err := coord.Open(ctx, coordURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
		if err := own.Close(); err != nil {
			t.Errorf("test coordinator session: %v", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server Run: %v", err)
		}
		if err := c.Close(); err != nil {
			t.Errorf("server coordinator session: %v", err)
		}
		http.DefaultClient.CloseIdleConnections()
	})
	p := &platform{URL: "http://" + l.Addr().String(), CoordURL: coordURL, DataDir: dir, Server: s, Store: meta.NewStore(own), Logger: log}
	waitUntil(t, "the server to lead", 20*time.Second, s.IsLeader)
	waitUntil(t, "the admin's files", 20*time.Second, func() bool {
		tok, err1 := os.ReadFile(manager.AdminTokenPath(dir))
		pw, err2 := os.ReadFile(dir + "/admin.password")
		if err1 != nil || err2 != nil {
			return false
		}
		p.Password = strings.TrimSpace(string(pw))
		p.Admin, err = api.NewClient(p.URL, strings.TrimSpace(string(tok)), nil)
		return err == nil
	})
	t.Cleanup(p.Admin.CloseIdleConnections)
	return p
}

// withMonitor gives the server a monitor that collects every second.
func withMonitor(t *testing.T) func(*manager.Config) {
	return func(c *manager.Config) {
		m, err := monitor.New(monitor.Config{Store: meta.NewStore(c.Coordinator), DataDir: t.TempDir(), Interval: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		// Registered before the server's cleanup, so it runs after the
		// server has stopped (cleanups run last first).
		t.Cleanup(func() {
			if err := m.Close(); err != nil {
				t.Errorf("monitor close: %v", err)
			}
		})
		c.Monitor = m
	}
}

// startAgent runs an agent for host until the test ends; its redis-server
// instances stop with it.
func startAgent(t *testing.T, coordURL, host string) {
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
	a, err := agent.New(agent.Options{Host: host, BindAddr: "127.0.0.1", DataDir: t.TempDir(), Coordinator: c, RedisServerPath: bin, StopOnExit: true})
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
}

// waitUntil polls cond every 50ms until it holds, or fails the test.
func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitOp polls an operation until it ends.
func waitOp(t *testing.T, c *api.Client, id string) *api.Operation {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	op, err := c.WaitOp(ctx, id, 50*time.Millisecond, nil)
	if err != nil {
		t.Fatalf("waiting for operation %s: %v (last %+v)", id, err, op)
	}
	return op
}
