package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/internal/lifecycle"
	"github.com/r2m-go/r2m/meta"
)

// registry holds the coordinator sessions of this process, one per
// coordinator URL, each shared by every client opened with that URL.
//
// It is the client package's only mutable package-level state, and it has to
// be: the contract is one session per coordinator per process, whatever part
// of the program creates the clients (a stream job creates one per task, on
// many goroutines, without knowing about each other). A session per client
// would multiply sessions, heartbeats and watches by the number of clients;
// 1,000 clients would cost the coordinator 1,000 sessions and 2,000 watches
// instead of one and two. Sessions are reference-counted: the last client
// that lets go closes it.
var registry = struct {
	mu       sync.Mutex
	sessions map[string]*session // by URL, exactly as given
}{sessions: make(map[string]*session)}

// session is one shared coordinator session. Besides the coordinator it
// owns the watches its clients need (one per record, however many clients
// follow it) and fans session events out to the clients.
type session struct {
	url  string // as given: the registry key; may hold a password, never logged
	refs int    // guarded by registry.mu

	ready   chan struct{} // closed when open has finished
	openErr error         // set before ready closes

	co    *coord.Coordinator
	store *meta.Store
	log   *slog.Logger

	ctx    context.Context // ends when the session closes: stops the watches
	cancel context.CancelFunc
	wg     sync.WaitGroup // the session-event goroutine, watch pumps, orphan deletes

	mu      sync.Mutex
	state   coord.SessionState
	subs    map[*mailbox]struct{}
	watches map[string]*hubWatch
	orphans map[string]struct{} // registrations whose delete failed; retried on reconnection
}

// acquireSession returns the process's session for the URL, opening it if
// there is none. The caller must release it.
func acquireSession(ctx context.Context, o *Options) (*session, error) {
	for {
		registry.mu.Lock()
		s := registry.sessions[o.Coordinator]
		if s == nil {
			s = &session{url: o.Coordinator, refs: 1, ready: make(chan struct{})}
			registry.sessions[o.Coordinator] = s
			registry.mu.Unlock()
			err := s.open(ctx, o)
			if err != nil {
				registry.mu.Lock()
				if registry.sessions[s.url] == s {
					delete(registry.sessions, s.url)
				}
				s.refs--
				registry.mu.Unlock()
			}
			s.openErr = err
			close(s.ready)
			if err != nil {
				return nil, err
			}
			return s, nil
		}
		s.refs++
		registry.mu.Unlock()
		select {
		case <-s.ready:
			if s.openErr == nil {
				return s, nil
			}
			registry.mu.Lock()
			s.refs--
			registry.mu.Unlock()
			// The opener's context may have ended, not ours: try again.
			if ctx.Err() == nil && (errors.Is(s.openErr, context.Canceled) || errors.Is(s.openErr, context.DeadlineExceeded)) {
				continue
			}
			return nil, s.openErr
		case <-ctx.Done():
			cctx, cancel := context.WithTimeout(context.Background(), o.CloseTimeout)
			err := s.release(cctx)
			cancel()
			return nil, errors.Join(fmt.Errorf("client: waiting for the coordinator session: %w", ctx.Err()), err)
		}
	}
}

func (s *session) open(ctx context.Context, o *Options) error {
	co, err := coord.OpenConfig(ctx, coord.Config{
		URL:            o.Coordinator,
		SessionTimeout: o.SessionTimeout,
		// Half of Close's budget: the rest is for what the client does
		// before (delete its record, close its connections).
		CloseTimeout: o.CloseTimeout / 2,
		Logger:       o.Logger,
	})
	if err != nil {
		return fmt.Errorf("client: open coordinator session: %w", err)
	}
	s.co = co
	s.store = meta.NewStore(co)
	s.log = o.Logger.With("coordinator", co.String())
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.state = coord.SessionConnected
	s.subs = make(map[*mailbox]struct{})
	s.watches = make(map[string]*hubWatch)
	s.orphans = make(map[string]struct{})
	events := co.SessionEvents(s.ctx)
	s.wg.Go(func() { s.followSession(events) })
	return nil
}

// shared reports whether other clients hold the session too, so that
// releasing it now would not close it.
func (s *session) shared() bool {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	return s.refs > 1
}

// release drops a reference; the last one closes the session within ctx.
func (s *session) release(ctx context.Context) error {
	registry.mu.Lock()
	s.refs--
	last := s.refs == 0
	if last && registry.sessions[s.url] == s {
		delete(registry.sessions, s.url)
	}
	registry.mu.Unlock()
	if !last {
		return nil
	}
	select {
	case <-s.ready:
	case <-ctx.Done():
		return fmt.Errorf("client: coordinator session still opening: %w", ctx.Err())
	}
	if s.openErr != nil {
		return nil
	}
	return s.close(ctx)
}

// close ends the session: its watches and event fan-out first, then the
// coordinator session, which deletes any registration left and confirms it.
func (s *session) close(ctx context.Context) error {
	s.cancel()
	closed := make(chan error, 1)
	go func() { closed <- s.co.Close() }() // bounded by the coordinator's CloseTimeout
	var errs []error
	select {
	case err := <-closed:
		errs = append(errs, err)
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("client: coordinator session %s still closing: %w", s.co, ctx.Err()))
	}
	if err := lifecycle.Wait(ctx, &s.wg); err != nil {
		errs = append(errs, fmt.Errorf("client: coordinator session goroutines still running: %w", err))
	}
	return errors.Join(errs...)
}

// sessionState returns the latest state of the coordinator session.
func (s *session) sessionState() coord.SessionState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// followSession records the session's state and fans its events out to the
// clients. The first event repeats the state the session opened in and is
// not a change.
func (s *session) followSession(events <-chan coord.SessionEvent) {
	first := true
	for ev := range events {
		if first {
			first = false
			if ev.State == coord.SessionConnected {
				continue
			}
		}
		s.mu.Lock()
		s.state = ev.State
		var retry []string
		switch ev.State {
		case coord.SessionExpired:
			clear(s.orphans) // the server deleted them
		case coord.SessionReconnected:
			for p := range s.orphans {
				retry = append(retry, p)
			}
		}
		subs := make([]*mailbox, 0, len(s.subs))
		for mb := range s.subs {
			subs = append(subs, mb)
		}
		s.mu.Unlock()
		for _, mb := range subs {
			mb.pushSession(ev)
		}
		for _, p := range retry {
			s.wg.Go(func() { s.deleteOrphan(p) })
		}
	}
}

// addOrphan remembers a registration whose delete could not be confirmed.
// Its own session deletes it when the session reconnects; when the session
// expires the server has deleted it; when the session closes, the
// coordinator's Close deletes it.
func (s *session) addOrphan(path string) {
	s.mu.Lock()
	s.orphans[path] = struct{}{}
	s.mu.Unlock()
}

func (s *session) deleteOrphan(path string) {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	err := s.co.Delete(ctx, path, coord.AnyVersion)
	if err != nil && !errors.Is(err, coord.ErrNotFound) {
		s.log.Warn("client: deleting a registration left by an earlier Close failed; it vanishes with the session", "path", path, "err", err)
		return
	}
	s.mu.Lock()
	delete(s.orphans, path)
	s.mu.Unlock()
	s.log.Info("client: deleted a registration left by an earlier Close once the coordinator was back", "path", path)
}

// subscribe adds a client's mailbox to the session-event fan-out.
func (s *session) subscribe(mb *mailbox) {
	s.mu.Lock()
	s.subs[mb] = struct{}{}
	s.mu.Unlock()
}

func (s *session) unsubscribe(mb *mailbox) {
	s.mu.Lock()
	delete(s.subs, mb)
	s.mu.Unlock()
}

// recordKind is the kind of record a client follows.
type recordKind int

const (
	kindApp recordKind = iota + 1
	kindTopology
)

// hubEvent is one state of a followed record.
type hubEvent struct {
	path    string
	exists  bool
	version int64 // the node version
	invalid error // the node exists but is not a valid record
	app     *meta.App
	topo    *meta.Topology
}

// hubWatch is one coordinator watch shared by every client of the session
// that follows its record.
type hubWatch struct {
	path   string
	cancel context.CancelFunc
	subs   map[*mailbox]struct{}
	last   hubEvent
	has    bool
}

// follow delivers the states of a record to mb: the latest known state at
// once, then every change. It returns a function that stops the delivery.
func (s *session) follow(kind recordKind, name string, mb *mailbox) (path string, stop func(), err error) {
	switch kind {
	case kindApp:
		path, err = meta.AppPath(name)
	case kindTopology:
		path, err = meta.TopologyPath(name)
	}
	if err != nil {
		return "", nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.watches[path]
	if w == nil {
		if s.ctx.Err() != nil {
			return "", nil, fmt.Errorf("client: follow %s: %w", path, coord.ErrClosed)
		}
		ctx, cancel := context.WithCancel(s.ctx)
		w = &hubWatch{path: path, cancel: cancel, subs: make(map[*mailbox]struct{})}
		s.watches[path] = w
		switch kind {
		case kindApp:
			ch := s.store.App(name).Watch(ctx)
			s.wg.Go(func() {
				pump(s, w, ch, func(ev meta.Event[meta.App]) hubEvent {
					return hubEvent{exists: ev.Value != nil || ev.Invalid != nil, version: ev.Version, invalid: ev.Invalid, app: ev.Value}
				})
			})
		case kindTopology:
			ch := s.store.Topology(name).Watch(ctx)
			s.wg.Go(func() {
				pump(s, w, ch, func(ev meta.Event[meta.Topology]) hubEvent {
					return hubEvent{exists: ev.Value != nil || ev.Invalid != nil, version: ev.Version, invalid: ev.Invalid, topo: ev.Value}
				})
			})
		}
	}
	w.subs[mb] = struct{}{}
	if w.has {
		mb.putRecord(w.last)
	}
	var once sync.Once
	return path, func() { once.Do(func() { s.unfollow(w, mb) }) }, nil
}

func (s *session) unfollow(w *hubWatch, mb *mailbox) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(w.subs, mb)
	if len(w.subs) == 0 && s.watches[w.path] == w {
		delete(s.watches, w.path)
		w.cancel()
	}
}

// pump reads one record watch until it ends and hands each state to the
// watch's subscribers. It decodes once for all of them.
func pump[T any](s *session, w *hubWatch, ch <-chan meta.Event[T], conv func(meta.Event[T]) hubEvent) {
	for ev := range ch {
		if ev.Err != nil {
			continue // the last event: the watch was stopped; ch closes next
		}
		he := conv(ev)
		he.path = w.path
		s.mu.Lock()
		w.last, w.has = he, true
		subs := make([]*mailbox, 0, len(w.subs))
		for mb := range w.subs {
			subs = append(subs, mb)
		}
		s.mu.Unlock()
		for _, mb := range subs {
			mb.putRecord(he)
		}
	}
}

// mailbox is how the session reaches one client's control loop without ever
// blocking: records are level-triggered (only the latest state of each
// matters), session events are edges (every one, in order).
type mailbox struct {
	mu       sync.Mutex
	records  map[string]hubEvent
	sessions []coord.SessionEvent
	signal   chan struct{} // capacity 1: "something arrived"
}

func newMailbox() *mailbox {
	return &mailbox{records: make(map[string]hubEvent), signal: make(chan struct{}, 1)}
}

func (mb *mailbox) notify() {
	select {
	case mb.signal <- struct{}{}:
	default:
	}
}

func (mb *mailbox) putRecord(ev hubEvent) {
	mb.mu.Lock()
	mb.records[ev.path] = ev
	mb.mu.Unlock()
	mb.notify()
}

func (mb *mailbox) pushSession(ev coord.SessionEvent) {
	mb.mu.Lock()
	mb.sessions = append(mb.sessions, ev)
	mb.mu.Unlock()
	mb.notify()
}

// take empties the mailbox.
func (mb *mailbox) take() (map[string]hubEvent, []coord.SessionEvent) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	recs, sess := mb.records, mb.sessions
	if len(recs) > 0 {
		mb.records = make(map[string]hubEvent)
	}
	mb.sessions = nil
	return recs, sess
}
