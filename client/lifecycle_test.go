package client_test

// Regression tests for the seed incident: a client whose Close leaked its
// coordinator session and registration, and a registration that landed
// after Close. Each runs against real ZooKeeper and real etcd, checks the
// registry from a coordinator session of its own, and ends by checking that
// no goroutine the client uses is left and that the process's open file
// descriptors are back to where they were.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/r2m-go/r2m/client"
	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/meta"
)

// smallBuffers keeps tests with hundreds of clients light: rueidis gives each
// connection 1 MiB of buffers by default.
func smallBuffers(o *rueidis.ClientOption) {
	o.ReadBufferEachConn, o.WriteBufferEachConn = 1<<14, 1<<14
}

// warmUp starts the shared servers before a baseline is taken, so that
// their goroutines and descriptors are part of it.
func warmUp(t *testing.T, b backend) func(string) string {
	url := b.shared(t)
	sharedCluster(t)
	return url
}

// TestLifecycleConcurrentNewClose creates 200 clients at once and closes
// them, half of them immediately after New returns. Every registration must
// exist while its client is open and be gone when Close returns.
func TestLifecycleConcurrentNewClose(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := testContext(t)
		url := warmUp(t, b)
		base := takeBaseline(t)
		e := newEnv(t, url(uniqueRoot(t)), "", sharedCluster(t), meta.ClientConfig{})
		opts := e.options(nil)
		opts.RueidisOption = smallBuffers

		const n = 200
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			errs []error
			kept []*client.Client
		)
		fail := func(err error) {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				c, err := client.New(ctx, opts)
				if err != nil {
					fail(fmt.Errorf("New #%d: %w", i, err))
					return
				}
				if i%2 == 0 {
					if err := c.Close(); err != nil {
						fail(fmt.Errorf("Close #%d right after New: %w", i, err))
					}
					return
				}
				key := fmt.Sprintf("lifecycle:%s:%d", c.ID(), i)
				if err := c.Do(ctx, c.B().Set().Key(key).Value("x").Build()).Error(); err != nil {
					fail(fmt.Errorf("SET through client #%d: %w", i, err))
				}
				mu.Lock()
				kept = append(kept, c)
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("%d failures, first: %v", len(errs), errs[0])
		}
		if got := client.SessionCount(); got != 1 {
			t.Errorf("coordinator sessions in the process = %d, want 1 shared by every client", got)
		}
		// The half still open is registered, each client exactly once.
		var want []string
		for _, c := range kept {
			want = append(want, c.ID())
		}
		slices.Sort(want)
		if got := e.clientIDs(); !slices.Equal(got, want) {
			t.Fatalf("registrations with %d clients open: got %d ids, want %d (the open clients')", len(kept), len(got), len(want))
		}
		for _, c := range kept {
			wg.Go(func() {
				if err := c.Close(); err != nil {
					fail(fmt.Errorf("Close %s: %w", c.ID(), err))
				}
			})
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("%d failures, first: %v", len(errs), errs[0])
		}
		e.requireNoClients()
		if got := client.SessionCount(); got != 0 {
			t.Errorf("coordinator sessions after the last Close = %d, want 0", got)
		}
		closeObserver(t, e)
		base.check(t)
	})
}

// closeObserver ends the test's observer session before a baseline check,
// so that its goroutines do not count.
func closeObserver(t testing.TB, e *env) {
	t.Helper()
	if err := e.obs.Close(); err != nil {
		t.Fatalf("close observer: %v", err)
	}
}

// TestLifecycleCloseConcurrent calls Close on one client from many
// goroutines at once; all get the same result, and commands after it fail
// with ErrClosed, which rueidis code recognises as rueidis.ErrClosing.
func TestLifecycleCloseConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := testContext(t)
		url := warmUp(t, b)
		base := takeBaseline(t)
		e := newEnv(t, url(uniqueRoot(t)), "", sharedCluster(t), meta.ClientConfig{})
		c, err := client.New(ctx, e.options(nil))
		must(t, err)
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
		err = c.Do(ctx, c.B().Get().Key("k").Build()).Error()
		if !errors.Is(err, client.ErrClosed) || !errors.Is(err, rueidis.ErrClosing) {
			t.Errorf("command after Close: %v, want ErrClosed (and rueidis.ErrClosing)", err)
		}
		if n := c.Stats().OpenConns; n != 0 {
			t.Errorf("open Redis connections after Close = %d, want 0", n)
		}
		e.requireNoClients()
		closeObserver(t, e)
		base.check(t)
	})
}

// TestLifecycleCloseWithCancelledContext is the incident's interrupted
// thread: the goroutine that closes the client has had its work context
// cancelled, and its commands fail. Close depends on no caller context and
// must still do all its work.
func TestLifecycleCloseWithCancelledContext(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		url := warmUp(t, b)
		base := takeBaseline(t)
		e := newEnv(t, url(uniqueRoot(t)), "", sharedCluster(t), meta.ClientConfig{})
		work, cancelWork := context.WithCancel(testContext(t))
		onEv, evs := eventChan()
		c, err := client.New(work, e.options(onEv))
		must(t, err)
		cancelWork()
		// The client outlives New's context: a fresh context still works.
		if err := c.Do(testContext(t), c.B().Set().Key("lifecycle:cancelled").Value("v").Build()).Error(); err != nil {
			t.Fatalf("command after New's context ended: %v", err)
		}
		done := make(chan error, 1)
		go func() {
			<-work.Done()
			if err := c.Do(work, c.B().Get().Key("lifecycle:cancelled").Build()).Error(); !errors.Is(err, context.Canceled) {
				done <- fmt.Errorf("command on the cancelled context = %v, want context.Canceled", err)
				return
			}
			done <- c.Close()
		}()
		if err := <-done; err != nil {
			t.Fatalf("Close from the cancelled goroutine: %v", err)
		}
		ev := waitEvent(t, evs, "closed", func(ev client.Event) bool { return ev.Type == client.EventClosed })
		if ev.Err != nil {
			t.Fatalf("closed event carries %v, want nil", ev.Err)
		}
		e.requireNoClients()
		closeObserver(t, e)
		base.check(t)
	})
}

// TestLifecycleCloseInsideOnEvent calls Close from inside OnEvent, which
// runs on the client's own event goroutine: Close must not wait for the
// goroutine it runs on.
func TestLifecycleCloseInsideOnEvent(t *testing.T) {
	cases := []struct {
		name string
		// trigger makes the client deliver the event on which OnEvent
		// closes; outside is Close called by the test meanwhile, if any.
		onType  client.EventType
		outside bool
	}{
		{"first Close, on a topology event", client.EventTopologyChanged, false},
		{"while another goroutine's Close waits for OnEvent", client.EventTopologyChanged, true},
		{"again, on the closed event", client.EventClosed, true},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		url := warmUp(t, b)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx := testContext(t)
				base := takeBaseline(t)
				rc := sharedCluster(t)
				e := newEnv(t, url(uniqueRoot(t)), "", rc, meta.ClientConfig{})
				var cp atomic.Pointer[client.Client]
				inside := make(chan error, 1)
				entered := make(chan struct{})
				closedEv := make(chan client.Event, 1)
				opts := e.options(func(ev client.Event) {
					if ev.Type == client.EventClosed {
						closedEv <- ev
					}
					if ev.Type != tc.onType {
						return
					}
					c := cp.Load()
					close(entered)
					if tc.outside && tc.onType != client.EventClosed {
						// Wait until the outside Close has begun: commands
						// then fail with ErrClosed.
						deadline := time.Now().Add(testTimeout)
						for !errors.Is(c.Do(ctx, c.B().Get().Key("k").Build()).Error(), client.ErrClosed) {
							if time.Now().After(deadline) {
								inside <- errors.New("the outside Close never began")
								return
							}
							runtime.Gosched()
						}
					}
					start := time.Now()
					err := c.Close()
					if d := time.Since(start); d > client.DefaultCloseTimeout {
						err = errors.Join(err, fmt.Errorf("Close inside OnEvent took %v", d))
					}
					inside <- err
				})
				c, err := client.New(ctx, opts)
				must(t, err)
				cp.Store(c)
				outside := make(chan error, 1)
				switch {
				case tc.onType == client.EventTopologyChanged:
					e.bumpTopology(e.cluster, rc)
					if tc.outside {
						<-entered // OnEvent runs: now Close from outside
						go func() { outside <- c.Close() }()
					}
				case tc.onType == client.EventClosed:
					go func() { outside <- c.Close() }()
				}
				if err := recvBounded(t, inside, "Close inside OnEvent"); err != nil {
					t.Fatalf("Close inside OnEvent: %v", err)
				}
				if tc.outside {
					if err := recvBounded(t, outside, "the outside Close"); err != nil {
						t.Fatalf("the outside Close: %v", err)
					}
				}
				if err := c.Close(); err != nil {
					t.Fatalf("Close after Close inside OnEvent: %v", err)
				}
				select {
				case ev := <-closedEv:
					if ev.Err != nil {
						t.Fatalf("closed event carries %v", ev.Err)
					}
				case <-time.After(testTimeout):
					t.Fatal("no closed event")
				}
				e.requireNoClients()
				closeObserver(t, e)
				base.check(t)
			})
		}
	})
}

// recvBounded receives a result, failing the test if none comes in time.
func recvBounded(t testing.TB, ch <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(testTimeout):
		t.Fatalf("no result from %s within %v", what, testTimeout)
		return nil
	}
}

// TestLifecycleCloseWhileCoordinatorDown stops the coordinator server, then
// closes. Close must return within its bound with an error saying the
// record could not be deleted and will vanish with the session; once the
// server is back, the session times out and the record goes.
func TestLifecycleCloseWhileCoordinatorDown(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		warmUp(t, b)
		// The fault server and its proxies belong to the baseline; the test
		// stops the server before the final check.
		fc := b.fault(t)
		base := takeBaseline(t)
		root := uniqueRoot(t)
		e := newEnv(t, fc.url(root), fc.directURL(root), sharedCluster(t), meta.ClientConfig{})
		opts := e.options(nil)
		opts.SessionTimeout = 2 * time.Second
		c, err := client.New(testContext(t), opts)
		must(t, err)
		if ids := e.clientIDs(); len(ids) != 1 {
			t.Fatalf("registrations before the outage: %v", ids)
		}
		// The observer's session would suffer the outage too: the check
		// after it uses a fresh one.
		closeObserver(t, e)
		must(t, fc.stop())

		start := time.Now()
		err = c.Close()
		took := time.Since(start)
		t.Logf("Close with the coordinator stopped returned after %v: %v", took, err)
		if err == nil {
			t.Fatal("Close with the coordinator stopped returned nil; want an error saying the record was not deleted")
		}
		if !errors.Is(err, coord.ErrCloseUnconfirmed) || !strings.Contains(err.Error(), "vanish") {
			t.Fatalf("Close error %q: want one wrapping coord.ErrCloseUnconfirmed, saying the record vanishes with the session", err)
		}
		if bound := client.DefaultCloseTimeout + 250*time.Millisecond; took > bound {
			t.Fatalf("Close took %v, want within %v", took, bound)
		}
		if n := c.Stats().OpenConns; n != 0 {
			t.Fatalf("open Redis connections after Close = %d, want 0 (Redis was reachable)", n)
		}
		if got := client.SessionCount(); got != 0 {
			t.Fatalf("coordinator sessions after Close = %d, want 0", got)
		}

		must(t, fc.start())
		fresh, err := coord.OpenConfig(testContext(t), coord.Config{URL: fc.directURL(root), CloseTimeout: 5 * time.Second})
		must(t, err)
		waitFor(t, "the orphaned registration to expire with its session", 30*time.Second, func() bool {
			ids, err := meta.NewStore(fresh).Clients(e.app).Names(testContext(t))
			return err == nil && len(ids) == 0
		})
		must(t, fresh.Close())
		must(t, fc.stop())
		base.check(t)
	})
}

// TestLifecycleNewCancelled ends New's context at each stage of New, at
// random moments, while the coordinator is unreachable, and while a Redis
// node does not answer. New must return the context's error and leave
// nothing behind: no registration, no session, no connection, no goroutine.
func TestLifecycleNewCancelled(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		url := warmUp(t, b)
		rc := sharedCluster(t)
		base := takeBaseline(t)
		e := newEnv(t, url(uniqueRoot(t)), "", rc, meta.ClientConfig{})

		check := func(t *testing.T, c *client.Client, err error) {
			t.Helper()
			if err == nil {
				// The context ended too late to stop New: a usable client.
				must(t, c.Close())
			} else if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("New with its context ended: %v, want the context's error", err)
			}
			e.requireNoClients()
			if n := client.SessionCount(); n != 0 {
				t.Fatalf("coordinator sessions after a cancelled New = %d, want 0", n)
			}
		}
		for _, stage := range client.Stages {
			t.Run("at stage "+stage, func(t *testing.T) {
				ctx, cancel := context.WithCancel(testContext(t))
				opts := e.options(nil)
				client.SetTestHook(&opts, func(s string) {
					if s == stage {
						cancel()
					}
				})
				c, err := client.New(ctx, opts)
				if err == nil {
					c.Close()
					t.Fatalf("New succeeded although its context ended at stage %s", stage)
				}
				check(t, c, err)
			})
		}
		for _, after := range []time.Duration{0, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond} {
			t.Run(fmt.Sprintf("after %v", after), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(testContext(t), after)
				defer cancel()
				c, err := client.New(ctx, e.options(nil))
				check(t, c, err)
			})
		}
		t.Run("coordinator unreachable", func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			must(t, err)
			dead := l.Addr().String()
			l.Close()
			opts := e.options(nil)
			opts.Coordinator = b.name + "://" + dead + "/r2m"
			ctx, cancel := context.WithTimeout(testContext(t), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			c, err := client.New(ctx, opts)
			if err == nil {
				c.Close()
				t.Fatal("New against a dead coordinator succeeded")
			}
			if d := time.Since(start); d > 300*time.Millisecond+client.DefaultCloseTimeout {
				t.Fatalf("New returned %v after it started; its context ended after 300ms", d)
			}
			check(t, nil, err)
		})
		t.Run("while a Redis node does not answer", func(t *testing.T) {
			// A real node, frozen as by a long GC pause: connecting
			// succeeds, the handshake never gets a reply.
			frozen := testenv.StartRedis(t, testenv.RedisOptions{Cluster: true})
			must(t, frozen.Pause())
			defer frozen.Resume()
			ctx := testContext(t)
			must(t, e.st.Cluster("frozen").Create(ctx, &meta.Cluster{Name: "frozen", State: meta.ClusterActive}))
			must(t, e.st.Topology("frozen").Create(ctx, &meta.Topology{Cluster: "frozen", Epoch: 1,
				Nodes: []meta.Node{{ID: "f", Addr: frozen.Addr, Role: meta.RoleMaster, Health: meta.HealthOK}}}))
			must(t, e.st.App("frozen-app").Create(ctx, &meta.App{Name: "frozen-app", ActiveCluster: "frozen"}))
			opts := e.options(nil)
			opts.App = "frozen-app"
			nctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			c, err := client.New(nctx, opts)
			if err == nil {
				c.Close()
				t.Fatal("New against a frozen Redis node succeeded")
			}
			if d := time.Since(start); d > 300*time.Millisecond+client.DefaultCloseTimeout {
				t.Fatalf("New returned %v after it started; its context ended after 300ms", d)
			}
			check(t, nil, err)
			if ids, err := e.st.Clients("frozen-app").Names(ctx); err != nil || len(ids) != 0 {
				t.Fatalf("registrations of frozen-app: %v, %v", ids, err)
			}
		})
		closeObserver(t, e)
		base.check(t)
	})
}

// syncBuffer is a log sink that tests can read while clients write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLifecycleLeakedClient drops a client without Close. After garbage
// collection its cleanup must close it, delete its registration and log the
// file:line where it was created.
func TestLifecycleLeakedClient(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		url := warmUp(t, b)
		base := takeBaseline(t)
		e := newEnv(t, url(uniqueRoot(t)), "", sharedCluster(t), meta.ClientConfig{})
		logs := &syncBuffer{}
		opts := e.options(nil)
		opts.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(logs, &testWriter{t: t}), nil))
		id, site, line := newAndDrop(t, opts)
		if !strings.HasSuffix(site, "lifecycle_test.go:"+fmt.Sprint(line)) {
			t.Fatalf("creation site %q, want the New call in newAndDrop (lifecycle_test.go:%d)", site, line)
		}
		if ids := e.clientIDs(); len(ids) != 1 || ids[0] != id {
			t.Fatalf("registrations after New: %v, want [%s]", ids, id)
		}
		waitFor(t, "the dropped client to be collected, closed and deregistered", 30*time.Second, func() bool {
			runtime.GC()
			return len(e.clientIDs()) == 0
		})
		waitFor(t, "the leak report", 10*time.Second, func() bool {
			return strings.Contains(logs.String(), "leaked") && strings.Contains(logs.String(), site)
		})
		closeObserver(t, e)
		base.check(t)
	})
}

// newAndDrop creates a client and returns only its id, its creation site
// and the line of the New call, so that nothing keeps the client reachable.
//
//go:noinline
func newAndDrop(t *testing.T, opts client.Options) (id, site string, line int) {
	_, _, line, _ = runtime.Caller(0)
	c, err := client.New(testContext(t), opts) // line+1
	must(t, err)
	return c.ID(), client.CreationSite(c), line + 1
}

// TestLifecycleSessionExpiry cuts the network to the coordinator until the
// server expires the session (and with it the registration), then heals it.
// Commands keep working meanwhile; the client must register again by itself
// and report the loss and the recovery.
func TestLifecycleSessionExpiry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		warmUp(t, b)
		// The fault server and its proxies belong to the baseline; the test
		// stops the server before the final check.
		fc := b.fault(t)
		base := takeBaseline(t)
		root := uniqueRoot(t)
		e := newEnv(t, fc.url(root), fc.directURL(root), sharedCluster(t), meta.ClientConfig{})
		ctx := testContext(t)
		onEv, evs := eventChan()
		opts := e.options(onEv)
		opts.SessionTimeout = 2 * time.Second
		c, err := client.New(ctx, opts)
		must(t, err)
		first := waitEvent(t, evs, "registered", func(ev client.Event) bool { return ev.Type == client.EventRegistered })

		stop := make(chan struct{})
		writes := make(chan error, 1)
		go func() { writes <- writeUntil(ctx, c, "expiry", stop) }()

		fc.proxy.Block()
		waitEvent(t, evs, "session lost", func(ev client.Event) bool { return ev.Type == client.EventSessionLost })
		waitFor(t, "the server to expire the session and delete the registration", 30*time.Second, func() bool {
			ids, err := e.st.Clients(e.app).Names(ctx)
			return err == nil && len(ids) == 0
		})
		fc.proxy.Unblock()

		waitEvent(t, evs, "session expired", func(ev client.Event) bool { return ev.Type == client.EventSessionLost && ev.Expired })
		again := waitEvent(t, evs, "registered again", func(ev client.Event) bool { return ev.Type == client.EventRegistered })
		waitEvent(t, evs, "session recovered", func(ev client.Event) bool { return ev.Type == client.EventSessionRecovered && ev.Expired })
		if again.SessionID == first.SessionID {
			t.Fatalf("registered again on session %s, the expired one", again.SessionID)
		}
		n, err := e.obs.Get(ctx, client.RecordPath(c))
		if err != nil || n.Owner != again.SessionID {
			t.Fatalf("registration after recovery = %+v, %v; want it owned by the new session %s", n, err, again.SessionID)
		}
		close(stop)
		if err := <-writes; err != nil {
			t.Fatalf("a command failed during the session expiry: %v", err)
		}
		must(t, c.Close())
		e.requireNoClients()
		closeObserver(t, e)
		must(t, fc.stop())
		base.check(t)
	})
}

// writeUntil writes through the client until stop closes and returns the
// first failure.
func writeUntil(ctx context.Context, c *client.Client, prefix string, stop <-chan struct{}) error {
	for i := 0; ; i++ {
		select {
		case <-stop:
			if i == 0 {
				return errors.New("no command was sent")
			}
			return nil
		default:
		}
		key := fmt.Sprintf("%s:%d", prefix, i%1000)
		if err := c.Do(ctx, c.B().Set().Key(key).Value("v").Build()).Error(); err != nil {
			return fmt.Errorf("SET %s (command %d): %w", key, i, err)
		}
	}
}

// TestLifecycleSharedSession checks the reference-counted session: clients
// of one URL share one coordinator session (their records have the same
// owner), closing one leaves the others working, and the last one ends it.
func TestLifecycleSharedSession(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		url := warmUp(t, b)
		base := takeBaseline(t)
		ctx := testContext(t)
		e := newEnv(t, url(uniqueRoot(t)), "", sharedCluster(t), meta.ClientConfig{})
		var cs []*client.Client
		for range 3 {
			c, err := client.New(ctx, e.options(nil))
			must(t, err)
			cs = append(cs, c)
		}
		if n := client.SessionCount(); n != 1 {
			t.Fatalf("sessions for 3 clients of one URL = %d, want 1", n)
		}
		var owner string
		for _, c := range cs {
			n, err := e.obs.Get(ctx, client.RecordPath(c))
			must(t, err)
			if owner == "" {
				owner = n.Owner
			}
			if !n.Ephemeral || n.Owner != owner {
				t.Fatalf("registration %s: ephemeral=%v owner=%s; want every record ephemeral and owned by session %s", c.ID(), n.Ephemeral, n.Owner, owner)
			}
		}
		must(t, cs[0].Close())
		if ids := e.clientIDs(); len(ids) != 2 {
			t.Fatalf("registrations after closing one of three: %v", ids)
		}
		if err := cs[1].Do(ctx, cs[1].B().Set().Key("shared").Value("v").Build()).Error(); err != nil {
			t.Fatalf("the other clients must keep working: %v", err)
		}
		if n := client.SessionCount(); n != 1 {
			t.Fatalf("sessions with two clients left = %d, want 1", n)
		}
		must(t, cs[1].Close())
		must(t, cs[2].Close())
		if n := client.SessionCount(); n != 0 {
			t.Fatalf("sessions after the last Close = %d, want 0", n)
		}
		e.requireNoClients()
		closeObserver(t, e)
		base.check(t)
	})
}

// TestLifecycleRegistrationReplyLost covers a create of the registration
// record whose outcome is unknown: it was applied, but the reply never came
// (a timeout on a slow or cut connection). The retry finds the record there
// and must recognise it as its own, although that retry was slow too; and a
// New that gives up must still delete it, even while other clients keep the
// coordinator session (and so the record) alive.
func TestLifecycleRegistrationReplyLost(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		url := warmUp(t, b)
		base := takeBaseline(t)
		e := newEnv(t, url(uniqueRoot(t)), "", sharedCluster(t), meta.ClientConfig{})

		t.Run("retried", func(t *testing.T) {
			opts := e.options(nil)
			var attempts []error
			client.SlowCreate(&opts, func(result error) bool {
				attempts = append(attempts, result)
				return len(attempts) <= 2 // the applied create, and the retry that finds it
			})
			c, err := client.New(testContext(t), opts)
			if err != nil {
				t.Fatalf("New with a lost create reply and a slow retry: %v", err)
			}
			if len(attempts) != 2 || attempts[0] != nil || !errors.Is(attempts[1], coord.ErrExists) {
				t.Fatalf("create attempts %v; want a success (reply lost) then ErrExists", attempts)
			}
			if ids := e.clientIDs(); len(ids) != 1 || ids[0] != c.ID() {
				t.Fatalf("registrations %v, want [%s]", ids, c.ID())
			}
			must(t, c.Close())
			e.requireNoClients()
		})
		t.Run("New gives up", func(t *testing.T) {
			// Another client keeps the session, so the session's own end
			// would not delete an orphan: New's teardown has to.
			anchor, err := client.New(testContext(t), e.options(nil))
			must(t, err)
			ctx, cancel := context.WithCancel(testContext(t))
			opts := e.options(nil)
			client.SlowCreate(&opts, func(error) bool { cancel(); return true })
			c, err := client.New(ctx, opts)
			if err == nil {
				c.Close()
				t.Fatal("New succeeded although its context ended")
			}
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("New: %v, want context.Canceled", err)
			}
			if ids := e.clientIDs(); len(ids) != 1 || ids[0] != anchor.ID() {
				t.Fatalf("registrations after the failed New: %v; want only the other client's [%s]", ids, anchor.ID())
			}
			must(t, anchor.Close())
			e.requireNoClients()
		})
		closeObserver(t, e)
		base.check(t)
	})
}
