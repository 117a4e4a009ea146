package client

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"

	"github.com/r2m-go/r2m/meta"
)

// Defaults for [Options]. Each can be changed per client; the app record's
// client config (meta.ClientConfig) overrides HeartbeatInterval.
const (
	// DefaultCloseTimeout bounds Close. Three seconds lets Close delete its
	// registration on a healthy coordinator many times over, and is short
	// enough that a job which closes a client per task is not held up when
	// the coordinator is unreachable.
	DefaultCloseTimeout = 3 * time.Second
	// DefaultHeartbeatInterval is how often the registration record's stats
	// are refreshed. Once a minute is what the console shows ("per-minute
	// stats") and keeps 10,000 clients at under 200 writes a second.
	DefaultHeartbeatInterval = 60 * time.Second
	// DefaultReloadJitter spreads connection rebuilds: when a change reaches
	// every client at once (a datacenter switch, a config change), each waits
	// a random time up to this long, so that the new cluster does not receive
	// every client's connections in the same instant.
	DefaultReloadJitter = time.Second
	// DefaultDrainTimeout is how long a replaced inner client may finish the
	// commands still running on it (including blocking commands, Receive and
	// Dedicated sessions) before it is closed under them.
	DefaultDrainTimeout = 10 * time.Second
)

// minCloseTimeout is the shortest CloseTimeout that leaves every step of
// Close (stop, delete, disconnect, end the session) a useful slice.
const minCloseTimeout = 100 * time.Millisecond

// Options configures [New]. Only Coordinator and App are required. New works
// on a copy; later changes to the caller's Options have no effect.
type Options struct {
	// Coordinator is the coordinator URL, as for coord.Open:
	// zk://host:2181[,host:2181…]/root or etcd://host:2379[,…]/root. All
	// clients of a process that give the same URL (the same string) share one
	// coordinator session. Required.
	Coordinator string
	// App is the app name; its record (/apps/{App}) names the active cluster
	// and carries the client configuration. Required.
	App string
	// Name describes this client in the console, next to its host, process
	// and creation site. Empty means the program's file name.
	Name string
	// OnEvent, if set, receives the client's events, one at a time and in
	// order, on a goroutine the client owns. It may call any method of the
	// client, Close included. A slow OnEvent delays later events, never the
	// data path. Nil means no events are delivered.
	OnEvent func(Event)
	// Logger receives diagnostics, including the report of a client that was
	// dropped without Close. Nil means slog.Default().
	Logger *slog.Logger
	// CloseTimeout bounds Close, and the teardown New does when it fails.
	// Zero means DefaultCloseTimeout; otherwise at least 100ms.
	CloseTimeout time.Duration
	// SessionTimeout is the coordinator session timeout (ZooKeeper) or lease
	// TTL (etcd): how long after a crash the registration record stays. It
	// applies to the session the process opens for this Coordinator URL, so
	// only the first client's value counts. Zero means the URL's
	// session_timeout parameter, or coord.DefaultSessionTimeout.
	SessionTimeout time.Duration
	// HeartbeatInterval is how often the registration record's stats are
	// refreshed, unless the app record's client config sets heartbeat_interval,
	// which then wins so that operators can change it live. Zero means
	// DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// ReloadJitter is the longest random wait before the client rebuilds its
	// connections after a change that needs new ones (another cluster, all
	// known nodes replaced, a changed client config). Zero means
	// DefaultReloadJitter; a negative value means no wait.
	ReloadJitter time.Duration
	// DrainTimeout is how long a replaced inner client may finish the
	// commands still running on it before it is closed. Zero means
	// DefaultDrainTimeout.
	DrainTimeout time.Duration
	// RueidisOption, if set, adjusts the rueidis options each time the client
	// builds an inner rueidis client, after the app record's client config
	// has been applied: TLS, buffer sizes, and so on. The client sets
	// InitAddress, Password, ClientName, DialCtxFn and OnInvalidations itself
	// and overwrites what this function puts there.
	RueidisOption func(*rueidis.ClientOption)
	// Registerer, if set, receives a collector of the client's metrics
	// (r2m_client_commands_total, r2m_client_call_duration_seconds, …, each
	// labelled with app, client_id and client_name). Close unregisters it.
	// The counters are read when scraped: the data path pays nothing extra.
	Registerer prometheus.Registerer

	// testHook is called at each stage of New; tests use it to cancel New at
	// a chosen point.
	testHook func(stage string)
	// testSlowCreate, if set, is asked after each attempt to create the
	// registration record, with its result, whether the attempt was slow:
	// it then waits out its deadline, and a success becomes a timeout (the
	// reply was lost).
	testSlowCreate func(result error) bool
}

// Validate reports every problem with the options, joined.
func (o Options) Validate() error {
	var errs []error
	if o.Coordinator == "" {
		errs = append(errs, errors.New("client: Options.Coordinator is empty; want a URL such as zk://127.0.0.1:2181/r2m or etcd://127.0.0.1:2379/r2m"))
	}
	if err := meta.ValidateName("app", o.App); err != nil {
		errs = append(errs, fmt.Errorf("client: Options.App: %w", err))
	}
	if len(o.Name) > 256 {
		errs = append(errs, fmt.Errorf("client: Options.Name is %d bytes long; at most 256", len(o.Name)))
	}
	if o.CloseTimeout < 0 || (o.CloseTimeout > 0 && o.CloseTimeout < minCloseTimeout) {
		errs = append(errs, fmt.Errorf("client: Options.CloseTimeout %v: want 0 (the default, %v) or at least %v", o.CloseTimeout, DefaultCloseTimeout, minCloseTimeout))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"SessionTimeout", o.SessionTimeout}, {"HeartbeatInterval", o.HeartbeatInterval}, {"DrainTimeout", o.DrainTimeout}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("client: Options.%s %v is negative", d.name, d.v))
		}
	}
	return errors.Join(errs...)
}

// withDefaults returns a copy with every zero value replaced by its default.
func (o Options) withDefaults() Options {
	if o.Name == "" {
		o.Name = filepath.Base(os.Args[0])
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CloseTimeout == 0 {
		o.CloseTimeout = DefaultCloseTimeout
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	switch {
	case o.ReloadJitter == 0:
		o.ReloadJitter = DefaultReloadJitter
	case o.ReloadJitter < 0:
		o.ReloadJitter = 0
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	return o
}
