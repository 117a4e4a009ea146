package agent

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/meta"
)

// Defaults for the timing fields of [Options].
const (
	// DefaultRestartBackoffMin is the first delay before restarting a crashed
	// instance: short, so a one-off crash costs well under a second.
	DefaultRestartBackoffMin = 500 * time.Millisecond
	// DefaultRestartBackoffMax caps the delay, so an instance that crashes in
	// a loop (a bad disk, a port taken by something else) is retried twice a
	// minute instead of spinning, and comes back within 30 s once the cause
	// is fixed.
	DefaultRestartBackoffMax = 30 * time.Second
	// DefaultProbeInterval is how often each instance is checked (pid alive,
	// PING answered). Adopted processes are not the agent's children, so
	// polling is the only way to notice that they died.
	DefaultProbeInterval = time.Second
	// DefaultReportInterval is how often the actual state is written even
	// when nothing changed; its updated_at then doubles as a heartbeat.
	DefaultReportInterval = 15 * time.Second
	// DefaultResyncInterval is how often the agent re-applies the desired
	// state without a change to it, which picks up a rotated password.
	DefaultResyncInterval = time.Minute
	// DefaultStopTimeout bounds the graceful part of stopping an instance
	// (SIGTERM, during which Redis may write its RDB) before SIGKILL.
	DefaultStopTimeout = 10 * time.Second
	// DefaultCoordTimeout bounds each coordinator call, so an outage delays
	// the agent's bookkeeping by at most this much and never its supervision.
	DefaultCoordTimeout = 5 * time.Second
)

// Options configures an [Agent]. Zero values of the timing fields mean the
// defaults above.
type Options struct {
	// Host is this host's name in the coordinator: the agent serves
	// /agents/{Host}/desired and writes /agents/{Host}, …/live and
	// …/actual. Required; 1–128 letters, digits, '.', '_' or '-'. Several
	// agents on one machine (for testing) use different names.
	Host string
	// BindAddr is the IP address every instance binds to, and the address
	// the agent registers for its host. Required.
	BindAddr string
	// DataDir holds one directory per instance (redis-{port}), the agent's
	// lock file and its copy of the last desired state. Required. Two agents
	// must never share one: the second one's Run fails with ErrLocked.
	DataDir string
	// RedisServerPath is the redis-server binary. Empty means redis-server
	// found on PATH.
	RedisServerPath string
	// Coordinator is the session the agent uses. Required. The agent does
	// not own it and never closes it; close it after Run has returned.
	Coordinator *coord.Coordinator
	// Logger receives the agent's structured logs. Nil discards them. The
	// agent never logs a password.
	Logger *slog.Logger

	// Datacenter, MemoryBytes and MaxInstances are written to the host
	// record for placement. MemoryBytes zero means the machine's total
	// memory (/proc/meminfo); MaxInstances zero means no limit.
	Datacenter   string
	MemoryBytes  int64
	MaxInstances int

	// StopOnExit makes Run stop every instance under DataDir before it
	// returns. By default the instances keep running when Run returns, so a
	// restarted agent adopts them; `r2m up` sets it so that Ctrl-C stops
	// everything it started.
	StopOnExit bool

	// RestartBackoffMin and RestartBackoffMax bound the delay before
	// restarting a crashed instance; it doubles with every crash and starts
	// over once the instance has stayed up for RestartBackoffMax. Zero means
	// DefaultRestartBackoffMin and DefaultRestartBackoffMax.
	RestartBackoffMin time.Duration
	RestartBackoffMax time.Duration
	// ProbeInterval is how often each instance's process and PING are
	// checked. Zero means DefaultProbeInterval.
	ProbeInterval time.Duration
	// ReportInterval is how often the actual state is written without a
	// change. Zero means DefaultReportInterval.
	ReportInterval time.Duration
	// ResyncInterval is how often the desired state is re-applied without a
	// change. Zero means DefaultResyncInterval.
	ResyncInterval time.Duration
	// StopTimeout bounds a graceful stop before SIGKILL. Zero means
	// DefaultStopTimeout.
	StopTimeout time.Duration
	// CoordTimeout bounds each coordinator call, and how long Run waits for
	// the desired state before it falls back on its local copy. Zero means
	// DefaultCoordTimeout.
	CoordTimeout time.Duration

	// dieWithParent makes instances die with the process that started them
	// (PR_SET_PDEATHSIG). Tests set it (export_test.go) so that a crashed
	// test binary leaves no redis-server behind; production never does,
	// since instances must outlive the agent.
	dieWithParent bool
}

// withDefaults validates a copy of o and fills in its defaults. Every
// problem is reported, joined.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	if err := meta.ValidateName("host", o.Host); err != nil {
		errs = append(errs, err)
	}
	if o.BindAddr == "" {
		errs = append(errs, errors.New("missing BindAddr"))
	} else if net.ParseIP(o.BindAddr) == nil {
		errs = append(errs, fmt.Errorf("BindAddr %q is not an IP address", o.BindAddr))
	}
	if o.DataDir == "" {
		errs = append(errs, errors.New("missing DataDir"))
	} else if abs, err := filepath.Abs(o.DataDir); err != nil {
		errs = append(errs, fmt.Errorf("DataDir %q: %w", o.DataDir, err))
	} else {
		o.DataDir = abs
	}
	if o.Coordinator == nil {
		errs = append(errs, errors.New("missing Coordinator"))
	}
	bin := o.RedisServerPath
	if bin == "" {
		bin = "redis-server"
	}
	if p, err := exec.LookPath(bin); err != nil {
		errs = append(errs, fmt.Errorf("redis-server binary: %w (on Debian: apt-get install -y redis-server)", err))
	} else if p, err = filepath.Abs(p); err != nil {
		errs = append(errs, fmt.Errorf("redis-server binary: %w", err))
	} else {
		o.RedisServerPath = p
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"RestartBackoffMin", &o.RestartBackoffMin, DefaultRestartBackoffMin},
		{"RestartBackoffMax", &o.RestartBackoffMax, DefaultRestartBackoffMax},
		{"ProbeInterval", &o.ProbeInterval, DefaultProbeInterval},
		{"ReportInterval", &o.ReportInterval, DefaultReportInterval},
		{"ResyncInterval", &o.ResyncInterval, DefaultResyncInterval},
		{"StopTimeout", &o.StopTimeout, DefaultStopTimeout},
		{"CoordTimeout", &o.CoordTimeout, DefaultCoordTimeout},
	} {
		switch {
		case *d.v < 0:
			errs = append(errs, fmt.Errorf("%s is negative (%v)", d.name, *d.v))
		case *d.v == 0:
			*d.v = d.def
		}
	}
	if o.RestartBackoffMax < o.RestartBackoffMin {
		errs = append(errs, fmt.Errorf("RestartBackoffMax %v is below RestartBackoffMin %v", o.RestartBackoffMax, o.RestartBackoffMin))
	}
	if o.MemoryBytes < 0 || o.MaxInstances < 0 {
		errs = append(errs, errors.New("MemoryBytes and MaxInstances must not be negative"))
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := errors.Join(errs...); err != nil {
		return o, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	return o, nil
}
