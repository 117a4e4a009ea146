package manager

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/internal/backoff"
	"github.com/r2m-go/r2m/meta"
)

// campaign runs leader election until ctx ends: try to create the
// ephemeral leader record; lead while it is ours; otherwise follow the
// current leader until its record goes, then try again.
func (s *Server) campaign(ctx context.Context) error {
	c := s.cfg.Coordinator
	sessions := c.SessionEvents(ctx)
	var bo backoff.Backoff
	for ctx.Err() == nil {
		rec := &meta.Leader{ID: s.id, Addr: s.addr, StartedAt: time.Now().UTC()}
		err := s.store.Leader().CreateEphemeral(ctx, rec)
		if errors.Is(err, coord.ErrExists) {
			// Ours already? A create whose answer was lost, or leadership
			// kept across a reconnect.
			if n, gerr := c.Get(ctx, meta.LeaderPath); gerr == nil && n.Owner == c.SessionID() {
				err = nil
			}
		}
		switch {
		case err == nil:
			bo.Reset()
			s.lead.set(true, rec)
			s.log.Info("became leader")
			s.leadUntilLost(ctx, sessions)
			s.lead.set(false, nil)
			s.log.Info("no longer leader")
		case errors.Is(err, coord.ErrExists):
			bo.Reset()
			s.follow(ctx, sessions)
		case errors.Is(err, coord.ErrClosed):
			return err
		default:
			if ctx.Err() != nil {
				break
			}
			s.log.Warn("leader election: cannot reach the coordinator", "err", err)
			_ = bo.Wait(ctx)
		}
	}
	return nil
}

// follow watches the leader record until it disappears or ctx ends,
// keeping the known leader up to date for forwarding.
func (s *Server) follow(ctx context.Context, sessions <-chan coord.SessionEvent) {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch := s.store.Leader().Watch(fctx)
	for {
		select {
		case ev := <-watch:
			if ev.Err != nil {
				return
			}
			if ev.Value == nil && ev.Invalid == nil {
				s.lead.set(false, nil)
				return // no leader: campaign
			}
			s.lead.set(false, ev.Value)
		case _, ok := <-sessions:
			// Session changes need no action while following; the watch
			// keeps working across them.
			if !ok {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// leadUntilLost runs the leader's duties until leadership is lost or ctx
// ends, then stops them and, when stepping down voluntarily, removes the
// leader record so a follower takes over at once.
//
// Leadership is lost when the session expires or is replaced, when the
// leader record disappears or changes owner, or when the connection has been
// down for a whole session timeout: past that point the coordinator may
// already have expired the session and elected someone else, so acting as
// leader would risk two leaders.
func (s *Server) leadUntilLost(ctx context.Context, sessions <-chan coord.SessionEvent) {
	c := s.cfg.Coordinator
	mySession := c.SessionID()
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.runLeader(lctx)
	}()
	watch := c.Watch(lctx, meta.LeaderPath)
	var disconnected <-chan time.Time
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	voluntary := false
loop:
	for {
		select {
		case ev, ok := <-sessions:
			if !ok {
				break loop
			}
			switch ev.State {
			case coord.SessionConnected:
				// The subscription starts with the current state; only a new
				// session (after an expiry) means the record is gone.
				if ev.SessionID != mySession {
					s.log.Warn("leader: session replaced", "session", ev.SessionID)
					break loop
				}
			case coord.SessionExpired, coord.SessionClosed:
				s.log.Warn("leader: session lost", "state", ev.State.String())
				break loop
			case coord.SessionDisconnected:
				timer = time.NewTimer(c.SessionTimeout())
				disconnected = timer.C
			case coord.SessionReconnected:
				if timer != nil {
					timer.Stop()
				}
				disconnected = nil
			}
		case <-disconnected:
			s.log.Warn("leader: disconnected for a whole session timeout; stepping down", "timeout", c.SessionTimeout())
			break loop
		case ev := <-watch:
			if ev.Err != nil {
				voluntary = ctx.Err() != nil
				break loop
			}
			if ev.Node == nil || ev.Node.Owner != mySession {
				s.log.Warn("leader: the leader record is gone or no longer ours")
				break loop
			}
		case <-done:
			s.log.Error("leader duties ended unexpectedly; stepping down")
			voluntary = true
			break loop
		case <-ctx.Done():
			voluntary = true
			break loop
		}
	}
	cancel()
	<-done
	if voluntary {
		// Hand over at once instead of after a session timeout. The delete
		// is conditional on the record still being ours.
		dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer dcancel()
		if n, err := c.Get(dctx, meta.LeaderPath); err == nil && n.Owner == mySession {
			if err := c.Delete(dctx, meta.LeaderPath, n.Version); err != nil && !errors.Is(err, coord.ErrNotFound) {
				s.log.Warn("leader: could not remove the leader record; it goes with the session", "err", err)
			}
		}
	}
}

// runLeader runs what only the leader does, until ctx ends: the operation
// runner and the topology observer.
func (s *Server) runLeader(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { s.runOps(ctx) })
	wg.Go(func() { s.runObserver(ctx) })
	if m := s.cfg.Monitor; m != nil {
		wg.Go(func() {
			if err := m.Run(ctx); err != nil {
				s.log.Error("monitor stopped", "err", err)
			}
		})
	}
	wg.Wait()
}
