package client

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// EventType says what an [Event] reports.
type EventType int

// Event types.
const (
	// EventRegistered: the registration record was created, once during New
	// and again after a coordinator session expired and was replaced.
	EventRegistered EventType = iota + 1
	// EventTopologyChanged: the client now uses a newer topology of its
	// cluster (Epoch), or another cluster altogether (Cluster). Rebuilt says
	// whether it replaced its connections to get there.
	EventTopologyChanged
	// EventConfigChanged: the client now runs the app's client config with
	// version ConfigVersion. Rebuilt says whether it replaced its connections.
	EventConfigChanged
	// EventSessionLost: the coordinator session was disconnected (Expired
	// false) or expired (Expired true). Commands keep working on the last
	// topology the client had.
	EventSessionLost
	// EventSessionRecovered: the coordinator session is back: the same
	// session reconnected, or a new one replaced an expired one and the
	// client registered again.
	EventSessionRecovered
	// EventClosed: Close has finished its work; Err is what it returns. It is
	// the last event.
	EventClosed
)

func (t EventType) String() string {
	switch t {
	case EventRegistered:
		return "registered"
	case EventTopologyChanged:
		return "topology changed"
	case EventConfigChanged:
		return "config changed"
	case EventSessionLost:
		return "session lost"
	case EventSessionRecovered:
		return "session recovered"
	case EventClosed:
		return "closed"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is something that happened to a client. Fields that do not apply to
// the Type are zero.
type Event struct {
	Type EventType
	// Time is when it happened.
	Time time.Time
	// Cluster is the cluster the client uses after the event.
	Cluster string
	// Epoch is the topology epoch the client uses after the event.
	Epoch int64
	// Nodes are the node addresses of that topology (EventTopologyChanged).
	Nodes []string
	// ConfigVersion is the app config version the client runs after the
	// event.
	ConfigVersion int64
	// Rebuilt is true when the client replaced its inner rueidis client (and
	// so its connections) to apply the change.
	Rebuilt bool
	// Expired distinguishes a session that expired from one that was only
	// disconnected (EventSessionLost), and a recovery by a new session from a
	// reconnection (EventSessionRecovered).
	Expired bool
	// SessionID is the coordinator session (EventRegistered, EventSession*).
	SessionID string
	// Err is Close's result (EventClosed).
	Err error
}

// dispatcher runs OnEvent on a goroutine the client owns. The queue is
// unbounded because events are rare and must never block the code that emits
// them (the control loop, or Close).
type dispatcher struct {
	fn  func(Event)
	log *slog.Logger

	mu      sync.Mutex
	queue   []Event
	ended   bool          // EventClosed was queued; nothing more is accepted
	signal  chan struct{} // capacity 1: "the queue is not empty"
	started bool
	done    chan struct{} // closed when the goroutine has returned
	gid     atomic.Uint64 // the goroutine's id, for Close to recognise it
}

func newDispatcher(fn func(Event), log *slog.Logger) *dispatcher {
	if fn == nil {
		return nil
	}
	return &dispatcher{fn: fn, log: log, signal: make(chan struct{}, 1), done: make(chan struct{})}
}

// emit queues an event. It never blocks.
func (d *dispatcher) emit(ev Event) {
	if d == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	d.mu.Lock()
	if d.ended {
		d.mu.Unlock()
		return
	}
	d.queue = append(d.queue, ev)
	if ev.Type == EventClosed {
		d.ended = true
	}
	d.mu.Unlock()
	select {
	case d.signal <- struct{}{}:
	default:
	}
}

// start starts the goroutine; events queued before are delivered first.
func (d *dispatcher) start() {
	if d == nil {
		return
	}
	d.mu.Lock()
	d.started = true
	d.mu.Unlock()
	go d.run()
}

// running reports whether the goroutine was started (New got that far).
func (d *dispatcher) running() bool {
	if d == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.started
}

// onDispatcher reports whether the caller runs on the dispatcher goroutine,
// that is, inside OnEvent.
func (d *dispatcher) onDispatcher() bool {
	return d != nil && d.gid.Load() == goid()
}

func (d *dispatcher) run() {
	d.gid.Store(goid())
	defer close(d.done)
	for {
		d.mu.Lock()
		q := d.queue
		d.queue = nil
		d.mu.Unlock()
		for _, ev := range q {
			d.call(ev)
			if ev.Type == EventClosed {
				return
			}
		}
		if len(q) == 0 {
			<-d.signal
		}
	}
}

// call runs OnEvent, containing a panic so that one bad callback cannot take
// the client's event delivery (or the process) down with it.
func (d *dispatcher) call(ev Event) {
	defer func() {
		if r := recover(); r != nil {
			d.log.Error("client: OnEvent panicked; the event is dropped", "event", ev.Type.String(), "panic", r, "stack", string(debug.Stack()))
		}
	}()
	d.fn(ev)
}
