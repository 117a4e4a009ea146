package migrate

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Mode is the delivery guarantee of a link across worker crashes.
type Mode string

// Delivery modes.
const (
	// AtLeastOnce (the default) resumes from the last saved applied offset:
	// commands applied after that save are applied again after a crash.
	AtLeastOnce Mode = "at-least-once"
	// ExactlyOnce writes a per-slot checkpoint key in the same MULTI/EXEC as
	// every applied unit and skips units at or below it after a crash. It
	// costs a MULTI/EXEC and a SET per unit, and adds up to 16384
	// __r2m_ck:* keys per source shard to the target.
	ExactlyOnce Mode = "exactly-once"
)

// Defaults for the zero values of Options.
const (
	DefaultWindow        = 512
	DefaultBigValueBytes = 8 << 20
	DefaultPieceElements = 512
	DefaultTTLGrace      = 10 * time.Minute
	DefaultSaveInterval  = time.Second
	DefaultSegmentBytes  = 64 << 20
	DefaultProgressEvery = time.Second
	DefaultRetryBackoff  = 50 * time.Millisecond
)

// Endpoint is a Redis deployment to read from or write to.
type Endpoint struct {
	// Addrs are seed addresses (host:port). For a cluster any reachable
	// node will do; the link reads the topology from it.
	Addrs []string
	// Username and Password authenticate; empty Password means no AUTH.
	Username, Password string
}

// Options configures a Link.
type Options struct {
	// ID names the link. It appears in checkpoint keys and state records,
	// so it must stay the same across restarts of one link. Required.
	ID string
	// Source is a standalone Redis or any node of a Redis Cluster. Each
	// source master gets its own replication connection. Required.
	Source Endpoint
	// Target is any node of the target Redis Cluster. Required.
	Target Endpoint
	// SpoolDir holds the spooled RDBs and streams. Required.
	SpoolDir string
	// State keeps each source shard's replication ID and applied offset so
	// that a restarted link resumes with PSYNC. Nil keeps them in memory:
	// a restart then begins with a full synchronization.
	State StateStore
	// Mode is AtLeastOnce (the zero value) or ExactlyOnce.
	Mode Mode
	// DBMap maps source databases to target databases. Nil maps 0 to 0 and
	// fails any other database with ErrUnmappedDB. A Redis Cluster target
	// only has database 0.
	DBMap map[int]int
	// AllowFlush applies FLUSHALL and FLUSHDB from the source stream (as a
	// FLUSHALL of every target master). Off, they stop the link with
	// ErrFlushBlocked.
	AllowFlush bool
	// Window is the most commands one applier sends in one pipeline. Zero
	// means DefaultWindow.
	Window int
	// BigValueBytes is the RDB value size above which a key is written in
	// pieces instead of one RESTORE. Zero means DefaultBigValueBytes; -1
	// always uses RESTORE.
	BigValueBytes int
	// PieceElements is the number of elements per piece. Zero means
	// DefaultPieceElements.
	PieceElements int
	// TTLGrace extends the expiry of RDB keys that would expire within this
	// long of being restored, so a key the source refreshes while the RDB
	// phase runs is not lost; the real expiry follows from the stream (the
	// source's DEL or a newer PEXPIREAT), and keys the stream never touched
	// get their original expiry back once the link has caught up. Zero means
	// DefaultTTLGrace; -1 turns the grace off.
	TTLGrace time.Duration
	// RateLimit caps the commands sent to the target per second; zero means
	// no cap. Change it at run time with Link.SetRateLimit.
	RateLimit int
	// SaveInterval is how often applied offsets are saved to State. Zero
	// means DefaultSaveInterval.
	SaveInterval time.Duration
	// SegmentBytes is the size of one stream spool file. Zero means
	// DefaultSegmentBytes.
	SegmentBytes int64
	// Progress, if set, is called with the link's stats every
	// ProgressEvery and once when Run returns. It must not block.
	Progress func(Stats)
	// ProgressEvery is the period of Progress. Zero means
	// DefaultProgressEvery.
	ProgressEvery time.Duration
	// Logger receives link events. Nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Mode == "" {
		o.Mode = AtLeastOnce
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.BigValueBytes == 0 {
		o.BigValueBytes = DefaultBigValueBytes
	}
	if o.PieceElements <= 0 {
		o.PieceElements = DefaultPieceElements
	}
	if o.TTLGrace == 0 {
		o.TTLGrace = DefaultTTLGrace
	}
	if o.SaveInterval <= 0 {
		o.SaveInterval = DefaultSaveInterval
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = DefaultProgressEvery
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.State == nil {
		o.State = NewMemoryState()
	}
	return o
}

// Validate returns every problem with the options, joined; each wraps
// ErrBadOptions.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrBadOptions}, args...)...))
	}
	if o.ID == "" {
		bad("ID is empty")
	}
	for _, c := range o.ID {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			bad("ID %q: use letters, digits, '-', '_' or '.'", o.ID)
			break
		}
	}
	if len(o.Source.Addrs) == 0 {
		bad("Source.Addrs is empty")
	}
	if len(o.Target.Addrs) == 0 {
		bad("Target.Addrs is empty")
	}
	if o.SpoolDir == "" {
		bad("SpoolDir is empty")
	}
	switch o.Mode {
	case "", AtLeastOnce, ExactlyOnce:
	default:
		bad("Mode %q: want %q or %q", o.Mode, AtLeastOnce, ExactlyOnce)
	}
	for from, to := range o.DBMap {
		if from < 0 || to != 0 {
			bad("DBMap %d->%d: a Redis Cluster target has only database 0", from, to)
		}
	}
	if o.RateLimit < 0 {
		bad("RateLimit %d is negative", o.RateLimit)
	}
	if o.BigValueBytes < -1 {
		bad("BigValueBytes %d: want -1, 0 or a size", o.BigValueBytes)
	}
	return errors.Join(errs...)
}
