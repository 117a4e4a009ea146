package coordtest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/r2m-go/r2m/coord"
)

// testExpiry forces a real session expiry: the network to the server is cut
// while the server runs, until the server itself deletes the session's
// ephemeral (seen by an observer with its own direct session). Then the
// network heals; the session must report Expired and then Connected with a
// new ID, and the owner re-creates its ephemeral.
func testExpiry(t *testing.T, h Harness) {
	ctx := testContext(t)
	srv := h.Fault(t)
	root := uniqueRoot(t)
	observer := open(t, srv.DirectURL(root), 0)
	c := open(t, srv.URL(root), faultSession)
	sessions := c.SessionEvents(ctx)
	first, _ := nextSession(t, sessions, coord.SessionConnected)
	if first.SessionID == "" || first.SessionID != c.SessionID() {
		t.Fatalf("Connected event session %q, SessionID() %q", first.SessionID, c.SessionID())
	}
	if err := c.CreateEphemeral(ctx, "/reg", []byte("one")); err != nil {
		t.Fatal(err)
	}
	obs := observer.Watch(ctx, "/reg")
	nextNode(t, obs, "the ephemeral", func(n *coord.Node) bool { return n != nil && n.Owner == first.SessionID })

	srv.Partition()
	nextSession(t, sessions, coord.SessionDisconnected)
	// The server expires the session after its timeout and deletes the node.
	nextNode(t, obs, "the ephemeral's removal by the server", func(n *coord.Node) bool { return n == nil })
	srv.Heal()

	exp, seen := nextSession(t, sessions, coord.SessionExpired)
	if exp.SessionID != first.SessionID {
		t.Fatalf("Expired event for session %q, want the old session %q", exp.SessionID, first.SessionID)
	}
	again, more := nextSession(t, sessions, coord.SessionConnected)
	seen = append(seen, more...)
	if again.SessionID == "" || again.SessionID == first.SessionID {
		t.Fatalf("Connected after expiry with session %q; want a new session (old %q)", again.SessionID, first.SessionID)
	}
	if slices.Contains(seen, coord.SessionReconnected) {
		t.Fatalf("session events %v: an expired session must not be reported as reconnected", seen)
	}
	// The new session can re-create the ephemeral.
	if err := c.CreateEphemeral(ctx, "/reg", []byte("two")); err != nil {
		t.Fatalf("re-create ephemeral after expiry: %v", err)
	}
	n := nextNode(t, obs, "the re-created ephemeral", func(n *coord.Node) bool { return n != nil })
	if n.Owner != again.SessionID || string(n.Data) != "two" {
		t.Fatalf("re-created node = %+v; want owner %s and data two", n, again.SessionID)
	}
}

// testRestart stops the server and starts it again on the same port. The
// session either survives (Reconnected) or is reported Expired and replaced;
// either way the watch keeps working and data written before is intact.
func testRestart(t *testing.T, h Harness) {
	ctx := testContext(t)
	srv := h.Fault(t)
	root := uniqueRoot(t)
	c := open(t, srv.URL(root), faultSession)
	sessions := c.SessionEvents(ctx)
	first, _ := nextSession(t, sessions, coord.SessionConnected)
	if err := c.Create(ctx, "/persist", []byte("before")); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateEphemeral(ctx, "/reg", nil); err != nil {
		t.Fatal(err)
	}
	watch := c.Watch(ctx, "/persist")
	nextNode(t, watch, "the initial state", func(n *coord.Node) bool { return n != nil })

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	nextSession(t, sessions, coord.SessionDisconnected)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for whichever outcome the backend reports.
	var outcome coord.SessionEvent
	timer := time.NewTimer(testTimeout / 2)
	defer timer.Stop()
	for outcome.State == 0 {
		select {
		case ev := <-sessions:
			switch ev.State {
			case coord.SessionReconnected:
				if ev.SessionID != first.SessionID {
					t.Fatalf("Reconnected with session %s, want %s", ev.SessionID, first.SessionID)
				}
				outcome = ev
			case coord.SessionExpired:
				next, _ := nextSession(t, sessions, coord.SessionConnected)
				outcome = next
			}
		case <-timer.C:
			t.Fatal("no Reconnected or Expired event after the server came back")
		}
	}
	t.Logf("after restart: %v (session %s)", outcome.State, outcome.SessionID)
	if outcome.State == coord.SessionConnected {
		// The old session is gone; so is its ephemeral. Re-create it.
		if err := c.CreateEphemeral(ctx, "/reg", nil); err != nil {
			t.Fatalf("re-create ephemeral after expiry: %v", err)
		}
	} else if n, err := c.Get(ctx, "/reg"); err != nil || n.Owner != first.SessionID {
		t.Fatalf("ephemeral after the session resumed = %+v, %v; want it still owned by %s", n, err, first.SessionID)
	}
	if _, err := c.Set(ctx, "/persist", []byte("after"), 0); err != nil {
		t.Fatalf("Set after restart (data written before must be intact at version 0): %v", err)
	}
	nextNode(t, watch, "the update made after the restart", func(n *coord.Node) bool { return n != nil && string(n.Data) == "after" })
}

// testCloseServerDown closes while the server is stopped: Close must return
// within its bound, with an error that says the session could not be ended;
// once the server is back the session expires by itself and its ephemeral
// goes.
func testCloseServerDown(t *testing.T, h Harness) {
	ctx := testContext(t)
	srv := h.Fault(t)
	root := uniqueRoot(t)
	c, err := coord.OpenConfig(ctx, coord.Config{URL: srv.URL(root), SessionTimeout: faultSession, CloseTimeout: closeBound})
	if err != nil {
		t.Fatal(err)
	}
	sessions := c.SessionEvents(ctx)
	if err := c.CreateEphemeral(ctx, "/reg", nil); err != nil {
		t.Fatal(err)
	}
	w := c.Watch(ctx, "/reg")
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	nextSession(t, sessions, coord.SessionDisconnected)
	start := time.Now()
	err = c.Close()
	took := time.Since(start)
	if err == nil {
		t.Fatal("Close with the server down returned nil; want an error saying the session was not closed")
	}
	if !errors.Is(err, coord.ErrCloseUnconfirmed) {
		t.Fatalf("Close error %v; want one wrapping ErrCloseUnconfirmed", err)
	}
	if took > closeBound+time.Second {
		t.Fatalf("Close took %v with the server down; its bound is %v", took, closeBound)
	}
	t.Logf("Close with the server down returned after %v: %v", took, err)
	if err := lastErr(t, w); !errors.Is(err, coord.ErrClosed) {
		t.Fatalf("watch ended with %v, want ErrClosed", err)
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	observer := open(t, srv.DirectURL(root), 0)
	nextNode(t, observer.Watch(ctx, "/reg"), "the orphaned ephemeral to expire", func(n *coord.Node) bool { return n == nil })
}
