// Package zk is the ZooKeeper backend of coord, built on
// github.com/go-zookeeper/zk. Importing it registers the "zk" URL scheme:
//
//	zk://[user:password@]host:2181[,host:2181…]/root[?session_timeout=10s]
//
// User and password, when given, are sent as a "digest" auth; nodes are
// created with the open ACL.
//
// The go-zookeeper client has no contexts, reports session changes through a
// callback that must not block, can drop events from its channel, and does
// not wait for its own goroutines on Close. This package puts contexts on
// every call, turns the callback into an ordered event stream, and bounds and
// waits for Close. It must not import anything of R2M but coord.
package zk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/internal/backoff"
	"github.com/r2m-go/r2m/internal/lifecycle"
)

func init() { coord.Register("zk", driver{}) }

type driver struct{}

var openACL = zk.WorldACL(zk.PermAll)

// backend is one ZooKeeper session.
type backend struct {
	conn *zk.Conn
	cfg  coord.DriverConfig
	log  *slog.Logger

	ready    chan struct{} // closed once conn is set; the event callback waits on it
	loopDone chan struct{} // closed when the library's connection loop has ended
	events   eventQueue    // session-state changes from the callback, in order
	opened   chan struct{} // closed on the first session

	mu      sync.Mutex
	closing bool
	wg      sync.WaitGroup // call goroutines and the event goroutine

	// Owned by the event goroutine.
	sessionID    int64
	everSession  bool
	disconnected bool
	expired      bool

	curSession atomicSession
}

// atomicSession holds the current session ID and timeout for readers on any
// goroutine.
type atomicSession struct {
	mu      sync.Mutex
	id      int64
	timeout time.Duration
}

func (a *atomicSession) set(id int64, timeout time.Duration) {
	a.mu.Lock()
	a.id, a.timeout = id, timeout
	a.mu.Unlock()
}

func (a *atomicSession) get() (int64, time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.id, a.timeout
}

// zkLogger sends the library's log lines to slog at debug level.
type zkLogger struct{ log *slog.Logger }

func (l zkLogger) Printf(format string, args ...any) {
	l.log.Debug("zookeeper: " + fmt.Sprintf(format, args...))
}

func (driver) Open(ctx context.Context, cfg coord.DriverConfig) (coord.Backend, error) {
	b := &backend{
		cfg: cfg, log: cfg.Logger,
		ready: make(chan struct{}), loopDone: make(chan struct{}), opened: make(chan struct{}),
	}
	b.events.signal = make(chan struct{}, 1)
	conn, ec, err := zk.Connect(cfg.Servers, cfg.SessionTimeout,
		zk.WithLogger(zkLogger{cfg.Logger}),
		zk.WithLogInfo(false),
		zk.WithEventCallback(b.onEvent),
	)
	if err != nil {
		return nil, fmt.Errorf("zk: connect %v: %w", cfg.Servers, err)
	}
	b.conn = conn
	close(b.ready)
	// The library also writes events to ec and drops them when it is full;
	// the callback is the reliable path. Draining ec tells us when the
	// library's loop has ended, because it closes ec last.
	go func() {
		for range ec {
		}
		close(b.loopDone)
	}()
	b.wg.Add(1)
	go b.processEvents()

	select {
	case <-b.opened:
	case <-ctx.Done():
		cerr := b.Close(context.Background())
		return nil, errors.Join(fmt.Errorf("%w: no session with %v: %w", coord.ErrUnavailable, cfg.Servers, ctx.Err()), cerr)
	}
	if cfg.User != "" {
		if _, err := call(ctx, b, func() (struct{}, error) {
			return struct{}{}, conn.AddAuth("digest", []byte(cfg.User+":"+cfg.Password))
		}); err != nil {
			cerr := b.Close(context.Background())
			return nil, errors.Join(fmt.Errorf("zk: digest auth as %q: %w", cfg.User, err), cerr)
		}
	}
	return b, nil
}

// eventQueue is an unbounded FIFO: the library's callback must never block.
type eventQueue struct {
	mu     sync.Mutex
	q      []sessionChange
	signal chan struct{}
}

type sessionChange struct {
	state zk.State
	id    int64
}

// onEvent runs on the library's connection goroutine.
func (b *backend) onEvent(ev zk.Event) {
	if ev.Type != zk.EventSession {
		return
	}
	<-b.ready
	ch := sessionChange{state: ev.State}
	if ev.State == zk.StateHasSession {
		// The library stores the new session ID and timeout just before it
		// reports the state, on this goroutine.
		ch.id = b.conn.SessionID()
	}
	b.events.mu.Lock()
	b.events.q = append(b.events.q, ch)
	b.events.mu.Unlock()
	select {
	case b.events.signal <- struct{}{}:
	default:
	}
}

// processEvents turns library states into coord session events. It ends
// after the library's loop has ended and the queue is empty.
func (b *backend) processEvents() {
	defer b.wg.Done()
	for {
		b.events.mu.Lock()
		q := b.events.q
		b.events.q = nil
		b.events.mu.Unlock()
		for _, ch := range q {
			b.handle(ch)
		}
		if len(q) > 0 {
			continue
		}
		select {
		case <-b.events.signal:
		case <-b.loopDone:
			b.events.mu.Lock()
			empty := len(b.events.q) == 0
			b.events.mu.Unlock()
			if empty {
				return
			}
		}
	}
}

func (b *backend) isClosing() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closing
}

func (b *backend) emit(state coord.SessionState, id int64) {
	if b.isClosing() {
		return
	}
	b.cfg.Session(coord.SessionEvent{State: state, SessionID: hexID(id), Time: time.Now()})
}

func (b *backend) handle(ch sessionChange) {
	switch ch.state {
	case zk.StateHasSession:
		// The negotiated timeout is not in the event; the library derives its
		// ping interval from it. Ask the connection for nothing more: record
		// the requested timeout, which the server clamps to its bounds.
		b.curSession.set(ch.id, b.cfg.SessionTimeout)
		switch {
		case !b.everSession:
			b.everSession = true
			b.sessionID = ch.id
			b.emit(coord.SessionConnected, ch.id)
			close(b.opened)
		case ch.id == b.sessionID:
			if b.disconnected {
				b.emit(coord.SessionReconnected, ch.id)
			}
		default:
			if !b.expired {
				b.emit(coord.SessionExpired, b.sessionID)
			}
			b.sessionID = ch.id
			b.emit(coord.SessionConnected, ch.id)
		}
		b.disconnected, b.expired = false, false
	case zk.StateDisconnected:
		if b.everSession && !b.disconnected && !b.expired {
			b.disconnected = true
			b.emit(coord.SessionDisconnected, b.sessionID)
		}
	case zk.StateExpired:
		if b.everSession && !b.expired {
			b.expired = true
			b.curSession.set(0, b.cfg.SessionTimeout)
			b.emit(coord.SessionExpired, b.sessionID)
		}
	}
}

func hexID(id int64) string {
	if id == 0 {
		return ""
	}
	return strconv.FormatUint(uint64(id), 16)
}

func (b *backend) SessionID() string {
	id, _ := b.curSession.get()
	return hexID(id)
}

func (b *backend) SessionTimeout() time.Duration {
	_, t := b.curSession.get()
	return t
}

// track registers a goroutine with the backend unless Close has begun.
func (b *backend) track() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return false
	}
	b.wg.Add(1)
	return true
}

// call runs a blocking library call so that ctx can abandon it. The call
// itself still finishes (the library answers or fails every request, at the
// latest when the connection closes) and Close waits for it.
func call[T any](ctx context.Context, b *backend, f func() (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	type result struct {
		v   T
		err error
	}
	res := make(chan result, 1)
	if !b.track() {
		return zero, coord.ErrClosed
	}
	go func() {
		defer b.wg.Done()
		v, err := f()
		res <- result{v, err}
	}()
	select {
	case r := <-res:
		return r.v, mapErr(r.err)
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// mapErr translates library errors into coord's sentinels.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, zk.ErrNoNode):
		return coord.ErrNotFound
	case errors.Is(err, zk.ErrNodeExists):
		return coord.ErrExists
	case errors.Is(err, zk.ErrBadVersion):
		return coord.ErrVersionConflict
	case errors.Is(err, zk.ErrNotEmpty):
		return coord.ErrNotEmpty
	case errors.Is(err, zk.ErrNoChildrenForEphemerals):
		return coord.ErrEphemeralParent
	case errors.Is(err, zk.ErrSessionExpired):
		return coord.ErrSessionExpired
	case errors.Is(err, zk.ErrClosing):
		return coord.ErrClosed
	case errors.Is(err, zk.ErrConnectionClosed), errors.Is(err, zk.ErrNoServer), errors.Is(err, zk.ErrSessionMoved):
		return fmt.Errorf("%w: %v", coord.ErrUnavailable, err)
	}
	return err
}

func toNode(data []byte, st *zk.Stat) *coord.Node {
	return &coord.Node{
		Data: data, Version: int64(st.Version), Revision: st.Mzxid,
		Ephemeral: st.EphemeralOwner != 0, Owner: hexID(st.EphemeralOwner),
	}
}

func (b *backend) Get(ctx context.Context, p string) (*coord.Node, error) {
	type got struct {
		data []byte
		st   *zk.Stat
	}
	r, err := call(ctx, b, func() (got, error) {
		d, st, err := b.conn.Get(p)
		return got{d, st}, err
	})
	if err != nil {
		return nil, err
	}
	return toNode(r.data, r.st), nil
}

// maxParentRetries bounds Create's loop when ancestors keep vanishing under
// it (another process deleting the tree while we build it).
const maxParentRetries = 10

func (b *backend) Create(ctx context.Context, p string, data []byte, ephemeral bool) error {
	var flags int32
	if ephemeral {
		flags = zk.FlagEphemeral
	}
	if data == nil {
		data = []byte{}
	}
	for range maxParentRetries {
		_, err := call(ctx, b, func() (string, error) { return b.conn.Create(p, data, flags, openACL) })
		if !errors.Is(err, coord.ErrNotFound) {
			return err
		}
		// The parent is missing: create it, then try again.
		parent := coord.Parent(p)
		if perr := b.Create(ctx, parent, nil, false); perr != nil && !errors.Is(perr, coord.ErrExists) {
			return perr
		}
	}
	return fmt.Errorf("zk: create %s: its parent kept disappearing", p)
}

func (b *backend) Set(ctx context.Context, p string, data []byte, version int64) (int64, error) {
	if version > 1<<31-1 {
		return 0, coord.ErrVersionConflict // ZooKeeper versions are 32-bit
	}
	st, err := call(ctx, b, func() (*zk.Stat, error) { return b.conn.Set(p, data, int32(version)) })
	if err != nil {
		return 0, err
	}
	return int64(st.Version), nil
}

func (b *backend) Delete(ctx context.Context, p string, version int64) error {
	if version > 1<<31-1 {
		return coord.ErrVersionConflict
	}
	_, err := call(ctx, b, func() (struct{}, error) { return struct{}{}, b.conn.Delete(p, int32(version)) })
	return err
}

func (b *backend) Children(ctx context.Context, p string) ([]string, error) {
	return call(ctx, b, func() ([]string, error) {
		names, _, err := b.conn.Children(p)
		return names, err
	})
}

// retryable reports whether a watch should re-read after err instead of
// ending: everything but the end of the backend.
func (b *backend) retryable(err error) bool {
	return !errors.Is(err, coord.ErrClosed) && !b.isClosing()
}

// WatchNode re-arms ZooKeeper's one-shot watches: read with a watch, report,
// wait for the watch to fire, read again. Reading after each notification is
// what makes it level-triggered. On a disconnection the library keeps the
// watch and re-registers it on reconnect; on session expiry it fires every
// watch with EventNotWatching and the loop re-reads on the new session.
func (b *backend) WatchNode(ctx context.Context, p string, emit func(*coord.Node)) error {
	var bo backoff.Backoff
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		type got struct {
			node *coord.Node
			ch   <-chan zk.Event
		}
		r, err := call(ctx, b, func() (got, error) {
			data, st, ch, err := b.conn.GetW(p)
			if errors.Is(err, zk.ErrNoNode) {
				var exists bool
				exists, _, ch, err = b.conn.ExistsW(p)
				if err == nil && exists {
					return got{}, errRetry // created in between: read it
				}
				return got{nil, ch}, err
			}
			if err != nil {
				return got{}, err
			}
			return got{toNode(data, st), ch}, nil
		})
		if errors.Is(err, errRetry) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil || !b.retryable(err) {
				return err
			}
			if werr := bo.Wait(ctx); werr != nil {
				return werr
			}
			continue
		}
		bo.Reset()
		emit(r.node)
		select {
		case <-r.ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

var errRetry = errors.New("zk: retry")

// WatchChildren works like WatchNode with ChildrenW.
func (b *backend) WatchChildren(ctx context.Context, p string, emit func(bool, []string)) error {
	var bo backoff.Backoff
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		type got struct {
			exists   bool
			children []string
			ch       <-chan zk.Event
		}
		r, err := call(ctx, b, func() (got, error) {
			children, _, ch, err := b.conn.ChildrenW(p)
			if errors.Is(err, zk.ErrNoNode) {
				var exists bool
				exists, _, ch, err = b.conn.ExistsW(p)
				if err == nil && exists {
					return got{}, errRetry
				}
				return got{false, nil, ch}, err
			}
			if err != nil {
				return got{}, err
			}
			return got{true, children, ch}, nil
		})
		if errors.Is(err, errRetry) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil || !b.retryable(err) {
				return err
			}
			if werr := bo.Wait(ctx); werr != nil {
				return werr
			}
			continue
		}
		bo.Reset()
		emit(r.exists, r.children)
		select {
		case <-r.ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close closes the session, then waits, within ctx, for the library's loop
// and every goroutine of this backend. The library sends the close request
// only if it has a connection; without one the session is left to expire on
// the server, and Close says so.
func (b *backend) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closing = true
	b.mu.Unlock()
	id, _ := b.curSession.get()
	connected := b.conn.State() == zk.StateHasSession

	// conn.Close can block for a few seconds (it waits for the close reply,
	// then for the send queue); run it aside and bound the wait below.
	closed := make(chan struct{})
	go func() {
		b.conn.Close()
		close(closed)
	}()
	var errs []error
	if !connected {
		errs = append(errs, fmt.Errorf("%w (session %s: no connection to ZooKeeper at close)", coord.ErrCloseUnconfirmed, hexID(id)))
	}
	for _, w := range []struct {
		what string
		ch   <-chan struct{}
	}{{"close request", closed}, {"connection loop", b.loopDone}} {
		if lifecycle.Done(w.ch) {
			continue
		}
		select {
		case <-w.ch:
		case <-ctx.Done():
			return errors.Join(append(errs, fmt.Errorf("zk: close: %s still running: %w", w.what, ctx.Err()))...)
		}
	}
	if err := lifecycle.Wait(ctx, &b.wg); err != nil {
		errs = append(errs, fmt.Errorf("zk: close: calls still running: %w", err))
	}
	return errors.Join(errs...)
}
