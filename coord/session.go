package coord

import (
	"context"
	"sync"
	"time"
)

// sessionHub fans session events out to subscribers. Session events are
// edges, not levels (an Expired must never be lost behind a Connected), so
// each subscriber gets its own unbounded, ordered queue. They are rare.
type sessionHub struct {
	mu   sync.Mutex
	last SessionEvent // the latest event: a new subscriber starts from it
	subs map[*sessionSub]struct{}
}

type sessionSub struct {
	mu     sync.Mutex
	queue  []SessionEvent
	signal chan struct{} // capacity 1: "queue is not empty"
}

func (h *sessionHub) init() { h.subs = make(map[*sessionSub]struct{}) }

func (h *sessionHub) publish(ev SessionEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last = ev
	for s := range h.subs {
		s.push(ev)
	}
}

// state returns the latest session state (0 before the first event).
func (h *sessionHub) state() SessionState {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last.State
}

func (s *sessionSub) push(ev SessionEvent) {
	s.mu.Lock()
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

func (s *sessionSub) pop() (SessionEvent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return SessionEvent{}, false
	}
	ev := s.queue[0]
	s.queue = s.queue[1:]
	return ev, true
}

// SessionEvents returns a channel of session events. The first event is
// the session's current state (normally SessionConnected); then every change
// follows, in order, none dropped. The channel is closed when ctx ends or the
// Coordinator closes; in the latter case its last event is SessionClosed.
// The caller must read the channel or cancel ctx.
func (c *Coordinator) SessionEvents(ctx context.Context) <-chan SessionEvent {
	out := make(chan SessionEvent, 1)
	h := &c.sessions
	if !c.track(1) {
		endWith(out, SessionEvent{State: SessionClosed, SessionID: c.SessionID(), Time: time.Now()})
		return out
	}
	h.mu.Lock()
	sub := &sessionSub{signal: make(chan struct{}, 1)}
	if h.last.State != 0 {
		sub.push(h.last)
	}
	h.subs[sub] = struct{}{}
	h.mu.Unlock()

	go func() {
		defer c.wg.Done()
		defer func() {
			h.mu.Lock()
			delete(h.subs, sub)
			h.mu.Unlock()
		}()
		for {
			ev, ok := sub.pop()
			if !ok {
				select {
				case <-sub.signal:
					continue
				case <-ctx.Done():
					close(out)
					return
				case <-c.ctx.Done():
					endWith(out, SessionEvent{State: SessionClosed, SessionID: c.SessionID(), Time: time.Now()})
					return
				}
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				close(out)
				return
			case <-c.ctx.Done():
				endWith(out, SessionEvent{State: SessionClosed, SessionID: c.SessionID(), Time: time.Now()})
				return
			}
		}
	}()
	return out
}

// endWith puts a final event into a channel of capacity 1 that only the
// calling goroutine sends on, replacing an unread event if need be, and
// closes it. It never blocks, so a consumer that has stopped reading (or
// that is itself calling Close) cannot hold up the shutdown.
func endWith[T any](out chan T, last T) {
	select {
	case <-out:
	default:
	}
	out <- last
	close(out)
}
