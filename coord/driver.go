package coord

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"
)

// A Driver opens sessions for one URL scheme. Backends register a Driver
// from an init function; see [Register].
type Driver interface {
	Open(ctx context.Context, cfg DriverConfig) (Backend, error)
}

// DriverConfig is what a Driver needs to open a session.
type DriverConfig struct {
	// Servers are the host:port addresses from the URL.
	Servers []string
	// User and Password come from the URL's user info, if any.
	User, Password string
	// Params are the URL's query parameters the Coordinator did not consume.
	Params url.Values
	// SessionTimeout is the requested session timeout (ZooKeeper) or lease
	// TTL (etcd); the server may adjust it.
	SessionTimeout time.Duration
	// Logger receives the backend's diagnostics.
	Logger *slog.Logger
	// Session receives session events. The backend calls it from one
	// goroutine at a time, in order, and never while holding a lock that an
	// operation needs; it must not block for long.
	Session func(SessionEvent)
}

// Backend is one open session with a coordinator. Paths are full paths
// (root included), already validated. Methods return the sentinel errors of
// this package (wrapped or not) so the Coordinator can classify them.
// Every method must be safe for concurrent use.
type Backend interface {
	Get(ctx context.Context, path string) (*Node, error)
	// Create creates path, and missing ancestors as empty persistent nodes.
	Create(ctx context.Context, path string, data []byte, ephemeral bool) error
	Set(ctx context.Context, path string, data []byte, version int64) (int64, error)
	Delete(ctx context.Context, path string, version int64) error
	Children(ctx context.Context, path string) ([]string, error)

	// WatchNode calls emit with the node's state (nil when absent): first
	// the current state, then every change it observes, in order. It
	// recovers from disconnections and session expiry by itself, and
	// returns when ctx ends or on an error it cannot recover from. emit does
	// not block.
	WatchNode(ctx context.Context, path string, emit func(*Node)) error
	// WatchChildren is WatchNode for the set of children.
	WatchChildren(ctx context.Context, path string, emit func(exists bool, children []string)) error

	// SessionID identifies the current session ("" while there is none).
	SessionID() string
	// SessionTimeout is the timeout the server granted.
	SessionTimeout() time.Duration
	// Close ends the session and releases everything the backend holds,
	// within ctx's deadline. It returns an error wrapping ErrCloseUnconfirmed
	// when the server could not be told. It is called once.
	Close(ctx context.Context) error
}

// drivers is the scheme registry. Like database/sql's, it is written only by
// init functions of backend packages and read afterwards.
var drivers struct {
	mu sync.RWMutex
	m  map[string]Driver
}

// Register makes a driver available for a URL scheme. It panics if the
// scheme is registered twice or the driver is nil, as database/sql.Register
// does: both are programming errors found at start-up.
func Register(scheme string, d Driver) {
	drivers.mu.Lock()
	defer drivers.mu.Unlock()
	if d == nil {
		panic("coord: Register driver is nil")
	}
	if _, dup := drivers.m[scheme]; dup {
		panic("coord: Register called twice for scheme " + scheme)
	}
	if drivers.m == nil {
		drivers.m = make(map[string]Driver)
	}
	drivers.m[scheme] = d
}

// Schemes lists the registered URL schemes, sorted.
func Schemes() []string {
	drivers.mu.RLock()
	defer drivers.mu.RUnlock()
	var out []string
	for s := range drivers.m {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func lookupDriver(scheme string) (Driver, error) {
	drivers.mu.RLock()
	defer drivers.mu.RUnlock()
	d, ok := drivers.m[scheme]
	if !ok {
		return nil, fmt.Errorf("%w %q (registered: %v; import github.com/r2m-go/r2m/coord/install for zk and etcd)", ErrUnknownScheme, scheme, schemesLocked())
	}
	return d, nil
}

func schemesLocked() []string {
	var out []string
	for s := range drivers.m {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}
