package coordtest

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/r2m-go/r2m/coord"
)

func testCloseConcurrent(t *testing.T, h Harness) {
	ctx := testContext(t)
	url := h.Shared(t).URL(uniqueRoot(t))
	observer := open(t, url, 0)
	c, err := coord.OpenConfig(ctx, coord.Config{URL: url, CloseTimeout: closeBound})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateEphemeral(ctx, "/e", nil); err != nil {
		t.Fatal(err)
	}
	watch := c.Watch(ctx, "/e")
	sessions := c.SessionEvents(ctx)
	const closers = 16
	errs := make([]error, closers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range closers {
		wg.Go(func() {
			<-start
			errs[i] = c.Close()
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Close #%d: %v", i, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close after Close: %v", err)
	}
	if _, err := observer.Get(ctx, "/e"); !errors.Is(err, coord.ErrNotFound) {
		t.Fatalf("ephemeral after Close: %v, want ErrNotFound", err)
	}
	if err := lastErr(t, watch); !errors.Is(err, coord.ErrClosed) {
		t.Fatalf("watch after Close ended with %v, want ErrClosed", err)
	}
	var last coord.SessionEvent
	for ev := range sessions {
		last = ev
	}
	if last.State != coord.SessionClosed {
		t.Fatalf("last session event = %v, want closed", last.State)
	}
	// Watches and subscriptions started after Close end at once.
	if err := lastErr(t, c.Watch(ctx, "/e")); !errors.Is(err, coord.ErrClosed) {
		t.Fatalf("Watch after Close ended with %v, want ErrClosed", err)
	}
	if ev := <-c.SessionEvents(ctx); ev.State != coord.SessionClosed {
		t.Fatalf("SessionEvents after Close first event = %v, want closed", ev.State)
	}
}

// testCloseFromWatch calls Close from the loop that consumes a watch: the
// Coordinator must not wait on the very goroutine that is blocked in Close.
func testCloseFromWatch(t *testing.T, h Harness) {
	ctx := testContext(t)
	url := h.Shared(t).URL(uniqueRoot(t))
	observer := open(t, url, 0)
	c, err := coord.OpenConfig(ctx, coord.Config{URL: url, CloseTimeout: closeBound})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateEphemeral(ctx, "/mine", nil); err != nil {
		t.Fatal(err)
	}
	ch := c.Watch(ctx, "/trigger")
	<-ch // absent
	if err := observer.Create(ctx, "/trigger", nil); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	for ev := range ch {
		if ev.Node != nil {
			start := time.Now()
			err := c.Close()
			if d := time.Since(start); d > closeBound {
				t.Errorf("Close from the watch loop took %v, bound is %v", d, closeBound)
			}
			closed <- err
		}
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close from watch loop: %v", err)
		}
	default:
		t.Fatal("the watch ended without reporting the trigger")
	}
	if _, err := observer.Get(ctx, "/mine"); !errors.Is(err, coord.ErrNotFound) {
		t.Fatalf("ephemeral after Close from the watch loop: %v, want ErrNotFound", err)
	}
}

func testCloseFromSession(t *testing.T, h Harness) {
	ctx := testContext(t)
	c, err := coord.OpenConfig(ctx, coord.Config{URL: h.Shared(t).URL(uniqueRoot(t)), CloseTimeout: closeBound})
	if err != nil {
		t.Fatal(err)
	}
	var states []coord.SessionState
	for ev := range c.SessionEvents(ctx) {
		states = append(states, ev.State)
		if ev.State == coord.SessionConnected {
			if err := c.Close(); err != nil {
				t.Fatalf("Close from the session loop: %v", err)
			}
		}
	}
	if len(states) != 2 || states[0] != coord.SessionConnected || states[1] != coord.SessionClosed {
		t.Fatalf("session events = %v, want [connected closed]", states)
	}
}

// testOpenCancelled opens against an address where nothing listens: Open
// must give up when its context ends and leave nothing running (the
// package's goleak check sees to the latter).
func testOpenCancelled(t *testing.T, h Harness) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	// Reuse the harness's URL scheme with the dead address.
	good := h.Shared(t).URL("/x")
	scheme := good[:len(good)-len(trimScheme(good))]
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	c, err := coord.Open(ctx, scheme+addr+"/r2m")
	if err == nil {
		c.Close()
		t.Fatalf("Open of a dead address succeeded")
	}
	if d := time.Since(start); d > 500*time.Millisecond+closeBound {
		t.Fatalf("Open took %v after its context ended", d)
	}
	if !errors.Is(err, coord.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open error %v; want ErrUnavailable or the context's error", err)
	}
	// Malformed URLs fail before any network traffic; the short context only
	// keeps a regression from hanging the suite.
	for _, bad := range []string{"nope://h:1/r", "zk://hostwithoutport/r", "zk:///r", "zk://h:1/r/../x", "zk://h:1/r?session_timeout=abc", "no-scheme"} {
		bctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := coord.Open(bctx, bad)
		cancel()
		if err == nil {
			c.Close()
			t.Errorf("Open(%q) succeeded, want a URL error", bad)
		}
	}
}

func trimScheme(url string) string {
	for i := 0; i+3 <= len(url); i++ {
		if url[i:i+3] == "://" {
			return url[i+3:]
		}
	}
	return url
}
