package coord

import (
	"context"
	"errors"
	"slices"
	"sync"
)

// latest is a one-slot mailbox that keeps only the newest value. A watch's
// backend goroutine puts states in; its forwarding goroutine takes the
// newest out. This is what makes watches level-triggered: a slow consumer
// misses intermediate states but always gets the latest.
type latest[T any] struct {
	mu     sync.Mutex
	v      T
	full   bool
	done   bool  // the producer has finished
	err    error // why it finished
	signal chan struct{}
}

func newLatest[T any]() *latest[T] { return &latest[T]{signal: make(chan struct{}, 1)} }

func (l *latest[T]) notify() {
	select {
	case l.signal <- struct{}{}:
	default:
	}
}

func (l *latest[T]) put(v T) {
	l.mu.Lock()
	l.v, l.full = v, true
	l.mu.Unlock()
	l.notify()
}

func (l *latest[T]) finish(err error) {
	l.mu.Lock()
	l.done, l.err = true, err
	l.mu.Unlock()
	l.notify()
}

// take returns the newest value if there is one, and whether the producer
// has finished.
func (l *latest[T]) take() (v T, ok bool, done bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok = l.v, l.full
	var zero T
	l.v, l.full = zero, false
	return v, ok, l.done, l.err
}

// forward moves values from box to out until the producer finishes or ctx
// ends, then ends out with a final event built by fail. An undelivered value
// is replaced by a newer one instead of queueing behind it.
func forward[T any](ctx context.Context, box *latest[T], out chan T, fail func(error) T) {
	var (
		pending T
		has     bool
	)
	for {
		var send chan T
		if has {
			send = out // a nil channel blocks, so send only when there is something
		}
		select {
		case send <- pending:
			has = false
		case <-box.signal:
			v, ok, done, err := box.take()
			if ok {
				pending, has = v, true
			}
			if done {
				if has {
					// Deliver the final state unless the consumer is gone.
					select {
					case out <- pending:
					case <-ctx.Done():
					}
				}
				endWith(out, fail(err))
				return
			}
		case <-ctx.Done():
			endWith(out, fail(ctx.Err()))
			return
		}
	}
}

// watchContext derives a context that ends with ctx or with the Coordinator,
// and the error to report when it ends.
func (c *Coordinator) watchContext(ctx context.Context) (context.Context, func(error) error, context.CancelFunc) {
	wctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.ctx, cancel)
	reason := func(err error) error {
		switch {
		case c.ctx.Err() != nil:
			return ErrClosed
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil:
			return errors.New("coord: watch ended")
		}
		return err
	}
	return wctx, reason, func() { stop(); cancel() }
}

// Watch reports the state of the node at p: first its current state, then
// each change (Node is nil while the node does not exist). See the package
// documentation for the guarantees. The channel ends with an event whose Err
// is set — ctx's error, or ErrClosed — and is then closed. The caller must
// read the channel or cancel ctx.
func (c *Coordinator) Watch(ctx context.Context, p string) <-chan NodeEvent {
	out := make(chan NodeEvent, 1)
	full, err := c.begin("watch", p)
	if err != nil {
		endWith(out, NodeEvent{Err: err})
		return out
	}
	wctx, reason, cancel := c.watchContext(ctx)
	box := newLatest[NodeEvent]()
	var (
		last    *Node
		started bool
	)
	emit := func(n *Node) {
		// Drop repeats (a re-read after reconnecting finds what was already
		// reported) and anything older than what was reported.
		if started && sameNodeState(last, n) {
			return
		}
		if started && last != nil && n != nil && n.Revision < last.Revision {
			c.log.Warn("coordinator watch saw a revision go backwards; ignored", "path", p, "had", last.Revision, "got", n.Revision)
			return
		}
		if n != nil {
			n.Path = p
		}
		last, started = n, true
		box.put(NodeEvent{Node: n})
	}
	if !c.track(2) {
		cancel()
		endWith(out, NodeEvent{Err: opError("watch", p, ErrClosed)})
		return out
	}
	go func() {
		defer c.wg.Done()
		box.finish(c.backend.WatchNode(wctx, full, emit))
	}()
	go func() {
		defer c.wg.Done()
		defer cancel()
		forward(wctx, box, out, func(err error) NodeEvent {
			return NodeEvent{Err: opError("watch", p, reason(err))}
		})
	}()
	return out
}

func sameNodeState(a, b *Node) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Revision == b.Revision
}

// WatchChildren reports the children of the node at p: first the current
// list, then each change. It works like [Coordinator.Watch].
func (c *Coordinator) WatchChildren(ctx context.Context, p string) <-chan ChildrenEvent {
	out := make(chan ChildrenEvent, 1)
	full, err := c.begin("watch children", p)
	if err != nil {
		endWith(out, ChildrenEvent{Err: err})
		return out
	}
	wctx, reason, cancel := c.watchContext(ctx)
	box := newLatest[ChildrenEvent]()
	var (
		last    ChildrenEvent
		started bool
	)
	emit := func(exists bool, children []string) {
		children = slices.Clone(children)
		slices.Sort(children)
		if started && last.Exists == exists && slices.Equal(last.Children, children) {
			return
		}
		last, started = ChildrenEvent{Exists: exists, Children: children}, true
		box.put(last)
	}
	if !c.track(2) {
		cancel()
		endWith(out, ChildrenEvent{Err: opError("watch children", p, ErrClosed)})
		return out
	}
	go func() {
		defer c.wg.Done()
		box.finish(c.backend.WatchChildren(wctx, full, emit))
	}()
	go func() {
		defer c.wg.Done()
		defer cancel()
		forward(wctx, box, out, func(err error) ChildrenEvent {
			return ChildrenEvent{Err: opError("watch children", p, reason(err))}
		})
	}()
	return out
}
