package coord

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/r2m-go/r2m/internal/lifecycle"
)

// Defaults for [Config].
const (
	// DefaultSessionTimeout is long enough to ride out a coordinator leader
	// election or a GC pause, short enough that a dead process's ephemerals
	// (client registrations, the manager's leadership) go within seconds.
	DefaultSessionTimeout = 10 * time.Second
	// DefaultCloseTimeout bounds Close when the servers are unreachable.
	DefaultCloseTimeout = 5 * time.Second
)

// Config configures [OpenConfig].
type Config struct {
	// URL names the backend, the servers and the root path:
	//   zk://host:2181[,host:2181…]/root
	//   etcd://[user:password@]host:2379[,host:2379…]/root
	// The query parameter session_timeout=10s sets SessionTimeout when the
	// field is zero; other parameters are passed to the driver.
	URL string
	// SessionTimeout is the ZooKeeper session timeout or etcd lease TTL.
	// Zero means the URL's session_timeout, or DefaultSessionTimeout.
	SessionTimeout time.Duration
	// CloseTimeout bounds Close. Zero means DefaultCloseTimeout.
	CloseTimeout time.Duration
	// Logger receives diagnostics. Nil discards them.
	Logger *slog.Logger
}

// Coordinator is an open session with a coordinator. It is safe for
// concurrent use. See the package documentation for its guarantees.
type Coordinator struct {
	backend      Backend
	root         string // full path of the root, "/" or "/r2m"
	url          string // redacted
	log          *slog.Logger
	closeTimeout time.Duration

	// ctx lives as long as the Coordinator; Close cancels it, which stops
	// every watch and session subscription.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine started by watches and subscriptions

	sessions sessionHub

	mu         sync.Mutex
	closing    bool
	closeDone  chan struct{} // closed when the first Close has finished
	closeErr   error
	ephemerals map[string]struct{} // full paths this session created and has not deleted
}

// Open opens a session with the coordinator at url. It is OpenConfig with
// default settings.
func Open(ctx context.Context, url string) (*Coordinator, error) {
	return OpenConfig(ctx, Config{URL: url})
}

// OpenConfig opens a session and returns once it is established and the
// root node exists. If ctx ends first, everything started is torn down and
// the error says why.
func OpenConfig(ctx context.Context, cfg Config) (_ *Coordinator, err error) {
	u, err := parseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	drv, err := lookupDriver(u.scheme)
	if err != nil {
		return nil, err
	}
	st, err := u.takeDuration("session_timeout")
	if err != nil {
		return nil, err
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = st
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	if cfg.CloseTimeout <= 0 {
		cfg.CloseTimeout = DefaultCloseTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &Coordinator{
		root:         u.root,
		url:          Redact(cfg.URL),
		log:          log.With("coordinator", Redact(cfg.URL)),
		closeTimeout: cfg.CloseTimeout,
		closeDone:    make(chan struct{}),
		ephemerals:   make(map[string]struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.sessions.init()
	b, err := drv.Open(ctx, DriverConfig{
		Servers: u.servers, User: u.user, Password: u.password, Params: u.params,
		SessionTimeout: cfg.SessionTimeout, Logger: c.log, Session: c.onSession,
	})
	if err != nil {
		c.cancel()
		return nil, fmt.Errorf("coord: open %s: %w", c.url, err)
	}
	c.backend = b
	defer func() {
		if err != nil {
			if cerr := c.Close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
	}()
	if c.root != "/" {
		if err := b.Create(ctx, c.root, nil, false); err != nil && !errors.Is(err, ErrExists) {
			return nil, fmt.Errorf("coord: open %s: create root %s: %w", c.url, c.root, err)
		}
	}
	return c, nil
}

// String returns the coordinator URL with any password redacted.
func (c *Coordinator) String() string { return c.url }

// SessionID identifies the current session: the ZooKeeper session ID or
// the etcd lease ID, in hex. Ephemeral nodes carry it as their Owner.
func (c *Coordinator) SessionID() string { return c.backend.SessionID() }

// SessionTimeout returns the session timeout the server granted.
func (c *Coordinator) SessionTimeout() time.Duration { return c.backend.SessionTimeout() }

// full maps a caller's path to the backend's full path.
func (c *Coordinator) full(p string) string {
	switch {
	case c.root == "/":
		return p
	case p == "/":
		return c.root
	}
	return c.root + p
}

// begin validates p and checks the Coordinator is open.
func (c *Coordinator) begin(op, p string) (string, error) {
	if err := ValidatePath(p); err != nil {
		return "", opError(op, p, err)
	}
	if c.isClosing() {
		return "", opError(op, p, ErrClosed)
	}
	return c.full(p), nil
}

// track registers n goroutines unless Close has begun, so that Close's wait
// cannot miss a goroutine started while it runs.
func (c *Coordinator) track(n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	c.wg.Add(n)
	return true
}

func (c *Coordinator) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// finish wraps a backend error, reporting ErrClosed for anything that
// failed because Close ran meanwhile.
func (c *Coordinator) finish(op, p string, err error) error {
	if err == nil {
		return nil
	}
	if c.isClosing() && !isDomainError(err) {
		err = fmt.Errorf("%w (%v)", ErrClosed, err)
	}
	return opError(op, p, err)
}

// isDomainError reports errors that describe the data, which stay true
// whether or not the Coordinator closed meanwhile.
func isDomainError(err error) bool {
	for _, e := range []error{ErrNotFound, ErrExists, ErrVersionConflict, ErrNotEmpty, ErrEphemeralParent, ErrClosed} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Get reads a node. It returns an error wrapping ErrNotFound if it does
// not exist.
func (c *Coordinator) Get(ctx context.Context, p string) (*Node, error) {
	full, err := c.begin("get", p)
	if err != nil {
		return nil, err
	}
	n, err := c.backend.Get(ctx, full)
	if err != nil {
		return nil, c.finish("get", p, err)
	}
	n.Path = p
	return n, nil
}

// Create creates a persistent node with version 0, creating missing
// ancestors as empty persistent nodes. It fails with ErrExists if the node
// exists and ErrEphemeralParent if its parent is ephemeral.
func (c *Coordinator) Create(ctx context.Context, p string, data []byte) error {
	full, err := c.begin("create", p)
	if err != nil {
		return err
	}
	return c.finish("create", p, c.backend.Create(ctx, full, data, false))
}

// CreateEphemeral creates a node owned by this session: the server deletes
// it when the session ends, and Close deletes it and confirms. Missing
// ancestors are created as persistent nodes.
func (c *Coordinator) CreateEphemeral(ctx context.Context, p string, data []byte) error {
	full, err := c.begin("create ephemeral", p)
	if err != nil {
		return err
	}
	if err := c.backend.Create(ctx, full, data, true); err != nil {
		return c.finish("create ephemeral", p, err)
	}
	c.mu.Lock()
	c.ephemerals[full] = struct{}{}
	c.mu.Unlock()
	return nil
}

// Set replaces a node's data if its version is still version (or
// unconditionally with AnyVersion) and returns the new version. It fails with
// ErrVersionConflict or ErrNotFound. An ephemeral node stays ephemeral.
func (c *Coordinator) Set(ctx context.Context, p string, data []byte, version int64) (int64, error) {
	full, err := c.begin("set", p)
	if err != nil {
		return 0, err
	}
	if version < AnyVersion {
		return 0, opError("set", p, fmt.Errorf("coord: version %d: want AnyVersion (-1) or a node version (≥ 0)", version))
	}
	v, err := c.backend.Set(ctx, full, data, version)
	return v, c.finish("set", p, err)
}

// Delete deletes a node without children if its version is still version
// (or unconditionally with AnyVersion). It fails with ErrNotFound,
// ErrVersionConflict or ErrNotEmpty.
func (c *Coordinator) Delete(ctx context.Context, p string, version int64) error {
	full, err := c.begin("delete", p)
	if err != nil {
		return err
	}
	if p == "/" {
		return opError("delete", p, fmt.Errorf("%w: the root cannot be deleted", ErrInvalidPath))
	}
	err = c.backend.Delete(ctx, full, version)
	if err == nil || errors.Is(err, ErrNotFound) {
		c.mu.Lock()
		delete(c.ephemerals, full)
		c.mu.Unlock()
	}
	return c.finish("delete", p, err)
}

// Children returns the names of a node's children, sorted. It fails with
// ErrNotFound if the node does not exist.
func (c *Coordinator) Children(ctx context.Context, p string) ([]string, error) {
	full, err := c.begin("children", p)
	if err != nil {
		return nil, err
	}
	names, err := c.backend.Children(ctx, full)
	if err != nil {
		return nil, c.finish("children", p, err)
	}
	slices.Sort(names)
	return names, nil
}

// onSession is the backend's session callback.
func (c *Coordinator) onSession(ev SessionEvent) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if ev.State == SessionExpired {
		// The server deleted them; Close must not try to.
		c.mu.Lock()
		clear(c.ephemerals)
		c.mu.Unlock()
	}
	c.log.Info("coordinator session", "state", ev.State.String(), "session", ev.SessionID)
	c.sessions.publish(ev)
}

// Close ends the session; see the package documentation. It is idempotent:
// later calls wait for the first to finish and return its result.
func (c *Coordinator) Close() error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		select {
		case <-c.closeDone:
			return c.closeErr
		case <-time.After(c.closeTimeout):
			return fmt.Errorf("coord: close %s: another Close is still running after %v", c.url, c.closeTimeout)
		}
	}
	c.closing = true
	eph := make([]string, 0, len(c.ephemerals))
	for p := range c.ephemerals {
		eph = append(eph, p)
	}
	clear(c.ephemerals)
	c.mu.Unlock()

	// A fresh context: Close must not depend on any caller's context. The
	// last quarter of the budget (at most a second) is kept for waiting on
	// goroutines, so talking to unreachable servers cannot use it all up.
	ctx, cancel := context.WithTimeout(context.Background(), c.closeTimeout)
	defer cancel()
	grace := min(c.closeTimeout/4, time.Second)
	serverCtx, serverCancel := context.WithTimeout(ctx, c.closeTimeout-grace)
	defer serverCancel()
	c.cancel()

	var errs []error
	if c.backend != nil {
		errs = append(errs, c.deleteEphemerals(serverCtx, eph))
		errs = append(errs, c.backend.Close(serverCtx))
	}
	if err := lifecycle.Wait(ctx, &c.wg); err != nil {
		errs = append(errs, fmt.Errorf("coord: watch goroutines still running %v after close", c.closeTimeout))
	}
	err := errors.Join(errs...)
	if err != nil {
		err = fmt.Errorf("coord: close %s: %w", c.url, err)
		c.log.Warn("coordinator closed with errors", "err", err)
	}
	c.closeErr = err
	close(c.closeDone)
	return err
}

// deleteEphemerals deletes, and so confirms the removal of, the ephemerals
// this session created. Without a connection it does not try: the deletes
// could only wait out the deadline.
func (c *Coordinator) deleteEphemerals(ctx context.Context, paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	if st := c.sessions.state(); st != SessionConnected && st != SessionReconnected {
		return fmt.Errorf("%w (%d ephemeral nodes left; the session is %v)", ErrCloseUnconfirmed, len(paths), st)
	}
	var errs []error
	for _, p := range paths {
		err := c.backend.Delete(ctx, p, AnyVersion)
		if err != nil && !errors.Is(err, ErrNotFound) {
			errs = append(errs, fmt.Errorf("delete ephemeral %s: %w", p, err))
		}
	}
	if len(errs) > 0 {
		errs = append(errs, ErrCloseUnconfirmed)
	}
	return errors.Join(errs...)
}
