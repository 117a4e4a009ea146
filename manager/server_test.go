package manager

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/coord"
	_ "github.com/r2m-go/r2m/coord/install"
	"github.com/r2m-go/r2m/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// logBuffer collects a server's log so tests can search it for secrets.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// testServer is a running Server for one test.
type testServer struct {
	*Server
	URL     string
	DataDir string
	Log     *logBuffer
	stop    func()
}

// uniqueRoot gives each test its own coordinator tree.
func uniqueRoot() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "/managertest-" + hex.EncodeToString(b)
}

// startServer runs a Server on coordURL until the test ends (or stop is
// called) and returns once it answers /healthz.
func startServer(t testing.TB, coordURL string, opts ...func(*Config)) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c, err := coord.OpenConfig(ctx, coord.Config{URL: coordURL, SessionTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	dir := t.TempDir()
	cfg := Config{
		Coordinator: c, Listener: l, DataDir: dir, PasswordCost: bcrypt.MinCost,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			if err := c.Close(); err != nil {
				t.Errorf("coordinator close: %v", err)
			}
		})
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server %s log:\n%s", s.ID(), logs.String())
		}
		stop()
		http.DefaultClient.CloseIdleConnections()
	})
	ts := &testServer{Server: s, URL: "http://" + l.Addr().String(), DataDir: dir, Log: logs, stop: stop}
	waitFor(t, "server to answer /healthz", func() bool {
		resp, err := http.Get(ts.URL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return ts
}

// startLeader is startServer for a server that must lead (the only one on
// its root); it returns once it does.
func startLeader(t testing.TB, coordURL string, opts ...func(*Config)) *testServer {
	t.Helper()
	ts := startServer(t, coordURL, opts...)
	waitFor(t, "server to lead", ts.IsLeader)
	return ts
}

// waitFor polls cond until it holds or 20s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// adminClient reads the bootstrap token the server wrote.
func (ts *testServer) adminClient(t *testing.T) *api.Client {
	t.Helper()
	tok, err := os.ReadFile(AdminTokenPath(ts.DataDir))
	if err != nil {
		t.Fatalf("read admin token: %v", err)
	}
	return ts.client(t, strings.TrimSpace(string(tok)))
}

func (ts *testServer) client(t *testing.T, token string) *api.Client {
	t.Helper()
	c, err := api.NewClient(ts.URL, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testenv_SharedEtcdURL returns a fresh root on the package's etcd.
func testenv_SharedEtcdURL(t testing.TB) string {
	return testenv.SharedEtcd(t).URL(uniqueRoot())
}

func mustReadBytes(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func errorAs(err error, target **api.Error) bool {
	return errors.As(err, target)
}
