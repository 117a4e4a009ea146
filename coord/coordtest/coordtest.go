// Package coordtest is the conformance suite for coord backends. Each
// backend's tests call [Run] with a [Harness] over real servers; the same
// tests then prove the same behaviour for ZooKeeper and for etcd.
//
// It imports coord and the standard library only, so it can judge any
// backend; the servers come from the caller.
package coordtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/r2m-go/r2m/coord"
)

// Server is a running coordinator server shared by the tests that need no
// faults.
type Server interface {
	// URL returns a coordinator URL for root.
	URL(root string) string
}

// FaultServer is a coordinator server private to one test, reachable
// through a proxy that can cut the network, and restartable on its port.
type FaultServer interface {
	// URL returns a URL that goes through the proxy.
	URL(root string) string
	// DirectURL returns a URL that bypasses the proxy, for observers.
	DirectURL(root string) string
	// Stop stops the server; Start starts it again on the same port with
	// the same data.
	Stop() error
	Start() error
	// Partition cuts every connection through the proxy and refuses new
	// ones, with the server still running; Heal lets them through again.
	Partition()
	Heal()
}

// Harness connects the suite to a backend's servers.
type Harness struct {
	// Shared returns the package's shared server.
	Shared func(t *testing.T) Server
	// Fault starts a private server for a fault test.
	Fault func(t *testing.T) FaultServer
}

// Timeouts used by the suite. The fault tests use short sessions so that a
// real expiry takes seconds; ZooKeeper's minimum is two ticks and etcd's
// minimum lease TTL is about 2s with the embedded server's defaults.
const (
	faultSession = 2 * time.Second
	closeBound   = 3 * time.Second
	testTimeout  = 60 * time.Second
)

// Run runs every conformance test against the harness.
func Run(t *testing.T, h Harness) {
	t.Run("CRUD", func(t *testing.T) { testCRUD(t, h) })
	t.Run("Errors", func(t *testing.T) { testErrors(t, h) })
	t.Run("CASConcurrentWriters", func(t *testing.T) { testCASConcurrent(t, h) })
	t.Run("RootsAreIsolated", func(t *testing.T) { testRoots(t, h) })
	t.Run("EphemeralGoneOnClose", func(t *testing.T) { testEphemeralClose(t, h) })
	t.Run("EphemeralKeepsSessionOnSet", func(t *testing.T) { testEphemeralSet(t, h) })
	t.Run("Watch1000Updates", func(t *testing.T) { testWatchRapid(t, h) })
	t.Run("WatchCreateDelete", func(t *testing.T) { testWatchCreateDelete(t, h) })
	t.Run("WatchChildren", func(t *testing.T) { testWatchChildren(t, h) })
	t.Run("WatchEndsWithContext", func(t *testing.T) { testWatchCancel(t, h) })
	t.Run("CloseIdempotentAndConcurrent", func(t *testing.T) { testCloseConcurrent(t, h) })
	t.Run("CloseFromWatchLoop", func(t *testing.T) { testCloseFromWatch(t, h) })
	t.Run("CloseFromSessionLoop", func(t *testing.T) { testCloseFromSession(t, h) })
	t.Run("OpenHonoursContext", func(t *testing.T) { testOpenCancelled(t, h) })
	t.Run("Fault", func(t *testing.T) { RunFaults(t, h) })
}

// RunFaults runs only the fault tests: real session expiry, server restart,
// and Close with the server down. They are the ones to repeat with -count.
func RunFaults(t *testing.T, h Harness) {
	t.Run("SessionExpiry", func(t *testing.T) { testExpiry(t, h) })
	t.Run("ServerRestart", func(t *testing.T) { testRestart(t, h) })
	t.Run("CloseWhileServerDown", func(t *testing.T) { testCloseServerDown(t, h) })
}

// uniqueRoot returns a root no other test uses.
func uniqueRoot(t *testing.T) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	return "/coordtest/" + name + "-" + hex.EncodeToString(b[:])
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// open opens a coordinator and closes it when the test ends, failing the
// test if that Close reports an error.
func open(t *testing.T, url string, session time.Duration) *coord.Coordinator {
	t.Helper()
	c, err := coord.OpenConfig(testContext(t), coord.Config{URL: url, SessionTimeout: session, CloseTimeout: closeBound, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close at test end: %v", err)
		}
	})
	return c
}

// nextNode reads watch events until one satisfies ok.
func nextNode(t *testing.T, ch <-chan coord.NodeEvent, what string, ok func(*coord.Node) bool) *coord.Node {
	t.Helper()
	timer := time.NewTimer(testTimeout / 2)
	defer timer.Stop()
	for {
		select {
		case ev, open := <-ch:
			if !open {
				t.Fatalf("watch closed while waiting for %s", what)
			}
			if ev.Err != nil {
				t.Fatalf("watch ended while waiting for %s: %v", what, ev.Err)
			}
			if ok(ev.Node) {
				return ev.Node
			}
		case <-timer.C:
			t.Fatalf("no watch event with %s within %v", what, testTimeout/2)
		}
	}
}

// nextSession reads session events until one has the wanted state, and
// returns it with the states seen on the way.
func nextSession(t *testing.T, ch <-chan coord.SessionEvent, want coord.SessionState) (coord.SessionEvent, []coord.SessionState) {
	t.Helper()
	var seen []coord.SessionState
	timer := time.NewTimer(testTimeout / 2)
	defer timer.Stop()
	for {
		select {
		case ev, open := <-ch:
			if !open {
				t.Fatalf("session events closed while waiting for %v (saw %v)", want, seen)
			}
			seen = append(seen, ev.State)
			if ev.State == want {
				return ev, seen
			}
		case <-timer.C:
			t.Fatalf("no %v session event within %v (saw %v)", want, testTimeout/2, seen)
		}
	}
}

// testLogger sends a coordinator's log to the test's log, where it is shown
// when the test fails (or runs with -v).
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func mustIs(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want one that wraps %v", what, err, want)
	}
}
