package monitor

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/r2m-go/r2m/meta"
)

// Defaults for [Config]. Each says why it is what it is.
const (
	// DefaultInterval is how often every node is polled: often enough that
	// a node-down alert with a 30s for-duration fires within 40s, rarely
	// enough that a pass over a hundred nodes costs well under a core.
	DefaultInterval = 10 * time.Second
	// DefaultNodeTimeout bounds the poll of one node. A node slower than
	// this is reported down for that pass; it never delays the others.
	DefaultNodeTimeout = 3 * time.Second
	// DefaultConcurrency is how many nodes are polled at once.
	DefaultConcurrency = 16
	// DefaultRawRetention keeps full-resolution points for a day: enough to
	// look at last night's incident at the collection interval.
	DefaultRawRetention = 24 * time.Hour
	// DefaultMinuteRetention keeps one-minute points (min, max, average)
	// for two weeks: enough to compare with the same day last week.
	DefaultMinuteRetention = 14 * 24 * time.Hour
	// DefaultAlertRetention keeps alert history for 90 days.
	DefaultAlertRetention = 90 * 24 * time.Hour
	// DefaultRepeatInterval repeats a firing alert's notification every four
	// hours: a reminder, not a flood.
	DefaultRepeatInterval = 4 * time.Hour
	// DefaultNotifyTimeout bounds one delivery attempt to a channel.
	DefaultNotifyTimeout = 10 * time.Second
	// DefaultRisingWindow is how long an app's registered-client count
	// must only rise before registered_clients_rise reports the rise. A
	// healthy app's count falls now and then as processes restart; a leak
	// never lets it fall.
	DefaultRisingWindow = 15 * time.Minute
	// DefaultSpikeWindow is the baseline window for connected_clients_spike.
	DefaultSpikeWindow = 5 * time.Minute
	// DefaultZombieGrace flags a registration whose heartbeat is this many
	// heartbeat intervals old.
	DefaultZombieGrace = 3.0
	// DefaultHeartbeat is assumed when a registration names no interval;
	// it is the client library's default.
	DefaultHeartbeat = 60 * time.Second
)

// Config configures a [Monitor]. Zero fields take the defaults above.
type Config struct {
	// Store is the coordinator the monitor reads clusters, topologies,
	// credentials, apps, client registrations and operations from, and
	// keeps rules, channels and firing alerts in. Required. The Monitor
	// does not own it.
	Store *meta.Store
	// DataDir holds the history database, monitor.db. Required; created
	// if missing.
	DataDir string
	// ServerID names this server in alert state and notifications. Zero
	// means the host name.
	ServerID string
	// Interval is the collection interval. Zero means DefaultInterval.
	Interval time.Duration
	// NodeTimeout bounds the poll of one node, connecting included. Zero
	// means DefaultNodeTimeout, or Interval/2 when that is shorter.
	NodeTimeout time.Duration
	// Concurrency is how many nodes are polled at once. Zero means
	// DefaultConcurrency.
	Concurrency int
	// RawRetention is how long points at the collection interval are kept.
	// Zero means DefaultRawRetention.
	RawRetention time.Duration
	// MinuteRetention is how long one-minute points are kept. Zero means
	// DefaultMinuteRetention. It must not be shorter than RawRetention.
	MinuteRetention time.Duration
	// AlertRetention is how long alert history is kept. Zero means
	// DefaultAlertRetention.
	AlertRetention time.Duration
	// RepeatInterval is how often a firing alert is notified again when
	// its rule names no repeat. Zero means DefaultRepeatInterval.
	RepeatInterval time.Duration
	// NotifyTimeout bounds one delivery attempt. Zero means
	// DefaultNotifyTimeout.
	NotifyTimeout time.Duration
	// RisingWindow, SpikeWindow, ZombieGrace and DefaultHeartbeat tune the
	// client and connection conditions; zero means the defaults above.
	RisingWindow     time.Duration
	SpikeWindow      time.Duration
	ZombieGrace      float64
	DefaultHeartbeat time.Duration
	// HTTPClient sends notifications. Nil means a client over
	// http.DefaultTransport. Each attempt is bounded by NotifyTimeout
	// whatever the client's own timeout.
	HTTPClient *http.Client
	// ConsoleURL, if set, is linked from notifications
	// ("https://r2m.example.com").
	ConsoleURL string
	// Logger receives the monitor's log. Nil discards it.
	Logger *slog.Logger
	// Now is the clock for sample times and alert timing. Nil means
	// time.Now; tests pass a fake clock. Rates (ops/s) always use the real
	// elapsed time between polls.
	Now func() time.Time
}

// withDefaults returns a copy of c with defaults filled in, and every
// problem with it, joined.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("monitor: Config.Store is required"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("monitor: Config.DataDir is required"))
	}
	if c.ServerID == "" {
		c.ServerID, _ = os.Hostname()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Interval, DefaultInterval)
	if c.NodeTimeout == 0 {
		c.NodeTimeout = min(DefaultNodeTimeout, c.Interval/2)
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	def(&c.RawRetention, DefaultRawRetention)
	def(&c.MinuteRetention, DefaultMinuteRetention)
	def(&c.AlertRetention, DefaultAlertRetention)
	def(&c.RepeatInterval, DefaultRepeatInterval)
	def(&c.NotifyTimeout, DefaultNotifyTimeout)
	def(&c.RisingWindow, DefaultRisingWindow)
	def(&c.SpikeWindow, DefaultSpikeWindow)
	def(&c.DefaultHeartbeat, DefaultHeartbeat)
	if c.ZombieGrace == 0 {
		c.ZombieGrace = DefaultZombieGrace
	}
	if c.Interval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("monitor: Config.Interval %v: want at least 100ms", c.Interval))
	}
	if c.NodeTimeout <= 0 || c.NodeTimeout > c.Interval {
		errs = append(errs, fmt.Errorf("monitor: Config.NodeTimeout %v: want more than 0 and at most the interval (%v)", c.NodeTimeout, c.Interval))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("monitor: Config.Concurrency %d: want at least 1", c.Concurrency))
	}
	if c.RawRetention < max(2*time.Minute, 2*c.Interval) {
		errs = append(errs, fmt.Errorf("monitor: Config.RawRetention %v: want at least 2m and two intervals", c.RawRetention))
	}
	if c.MinuteRetention < c.RawRetention {
		errs = append(errs, fmt.Errorf("monitor: Config.MinuteRetention %v: want at least RawRetention (%v)", c.MinuteRetention, c.RawRetention))
	}
	for name, d := range map[string]time.Duration{
		"AlertRetention": c.AlertRetention, "RepeatInterval": c.RepeatInterval, "NotifyTimeout": c.NotifyTimeout,
		"RisingWindow": c.RisingWindow, "SpikeWindow": c.SpikeWindow, "DefaultHeartbeat": c.DefaultHeartbeat,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("monitor: Config.%s %v: want a positive duration or zero for the default", name, d))
		}
	}
	if c.ZombieGrace < 1 {
		errs = append(errs, fmt.Errorf("monitor: Config.ZombieGrace %v: want at least 1 (heartbeat intervals)", c.ZombieGrace))
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Transport: http.DefaultTransport}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, errors.Join(errs...)
}
