package repl

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Defaults for the zero values of Options.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultReadTimeout = 60 * time.Second // Redis's repl-timeout
	DefaultAckInterval = time.Second      // Redis replicas ACK from replicationCron, once a second
	DefaultMaxBulkLen  = 512 << 20        // Redis's proto-max-bulk-len
)

// Options configures Dial. The zero value asks for a full synchronization
// without authentication.
type Options struct {
	// Username and Password are sent with AUTH before the handshake. An empty
	// Password sends no AUTH; an empty Username authenticates as "default".
	Username, Password string
	// ReplID and Offset resume a link: PSYNC ReplID Offset+1, where Offset is
	// the last applied offset. The source answers +CONTINUE (and streams what
	// was missed) or +FULLRESYNC. An empty ReplID asks for a full sync
	// (PSYNC ? -1).
	ReplID string
	Offset int64
	// ListeningPort is announced with REPLCONF listening-port; the source
	// shows it in INFO replication. Zero announces 0.
	ListeningPort int
	// Timeout bounds dialing, each handshake reply and each write. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// ReadTimeout declares the link dead when nothing arrives for this long
	// while the RDB or the stream is read. The source sends a keep-alive at
	// least every 10 s (repl-ping-replica-period). Zero means
	// DefaultReadTimeout.
	ReadTimeout time.Duration
	// AckInterval is the period of REPLCONF ACK. It must stay below the
	// source's repl-timeout. Zero means DefaultAckInterval.
	AckInterval time.Duration
	// MaxBulkLen bounds one argument of a streamed command. Zero means
	// DefaultMaxBulkLen.
	MaxBulkLen int64
	// Logger receives link events. Nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.AckInterval <= 0 {
		o.AckInterval = DefaultAckInterval
	}
	if o.MaxBulkLen <= 0 {
		o.MaxBulkLen = DefaultMaxBulkLen
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ReplID == "?" {
		o.ReplID = ""
	}
	return o
}

// Validate returns every problem with the options, joined.
func (o Options) Validate() error {
	var errs []error
	if o.ReplID != "" && o.ReplID != "?" {
		if strings.ContainsAny(o.ReplID, " \r\n") {
			errs = append(errs, fmt.Errorf("repl: ReplID %q contains blanks", o.ReplID))
		}
		if o.Offset < 0 {
			errs = append(errs, fmt.Errorf("repl: Offset %d is negative", o.Offset))
		}
	}
	if o.ListeningPort < 0 || o.ListeningPort > 65535 {
		errs = append(errs, fmt.Errorf("repl: ListeningPort %d is not a port", o.ListeningPort))
	}
	return errors.Join(errs...)
}
