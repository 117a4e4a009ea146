package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// Defaults for [Config].
const (
	// DefaultDialTimeout bounds connecting to one node, including AUTH. A
	// node that takes longer is treated as unreachable for that step.
	DefaultDialTimeout = 2 * time.Second
	// DefaultCommandTimeout bounds one administrative command. MIGRATE
	// batches get their own bound derived from cluster-node-timeout.
	DefaultCommandTimeout = 5 * time.Second
)

// Config configures an [Engine].
type Config struct {
	// Username is the ACL user; empty means the default user.
	Username string
	// Password is the requirepass of every node; empty means none. It is
	// also passed to MIGRATE (AUTH/AUTH2) so keys can be moved between
	// password-protected nodes.
	Password string
	// DialTimeout bounds connecting to a node. Zero means DefaultDialTimeout.
	DialTimeout time.Duration
	// CommandTimeout bounds each administrative command. Zero means
	// DefaultCommandTimeout.
	CommandTimeout time.Duration
	// Logger receives progress and diagnostics. Nil discards them.
	Logger *slog.Logger
}

// Engine administers Redis Clusters. It keeps one connection per node
// address it has talked to. It is safe for concurrent use; Close releases
// the connections.
type Engine struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	closed bool
	conns  map[string]rueidis.Client // by "host:port"
}

// New returns an Engine. It does not connect to anything until used.
func New(cfg Config) *Engine {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = DefaultCommandTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Engine{cfg: cfg, log: log, conns: make(map[string]rueidis.Client)}
}

// Close closes every node connection. It is idempotent; operations started
// after Close fail with ErrClosed.
func (e *Engine) Close() error {
	e.mu.Lock()
	conns := e.conns
	e.conns, e.closed = nil, true
	e.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	return nil
}

// client returns the connection to addr, dialing it on first use.
func (e *Engine) client(addr string) (rueidis.Client, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	if c, ok := e.conns[addr]; ok {
		e.mu.Unlock()
		return c, nil
	}
	e.mu.Unlock()
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:       []string{addr},
		Username:          e.cfg.Username,
		Password:          e.cfg.Password,
		ForceSingleClient: true,
		DisableCache:      true,
		DisableRetry:      true,
		AlwaysRESP2:       true,
		Dialer:            net.Dialer{Timeout: e.cfg.DialTimeout},
		// MIGRATE of a big key can legitimately keep a reply waiting for
		// seconds; per-command contexts bound every call instead.
		ConnWriteTimeout: 60 * time.Second,
		ClientName:       "r2m-cluster-engine",
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		c.Close()
		return nil, ErrClosed
	}
	if old, ok := e.conns[addr]; ok {
		c.Close()
		return old, nil
	}
	e.conns[addr] = c
	return c, nil
}

// drop forgets and closes the connection to addr, after a node was shut
// down or removed.
func (e *Engine) drop(addr string) {
	e.mu.Lock()
	c := e.conns[addr]
	delete(e.conns, addr)
	e.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// cmd runs one command on addr, bounded by the command timeout, and wraps
// any failure in a NodeError naming addr and step (the command itself when
// step is empty). A Redis error reply is returned as an error too.
func (e *Engine) cmd(ctx context.Context, addr, step string, args ...string) (rueidis.RedisMessage, error) {
	return e.cmdTimeout(ctx, e.cfg.CommandTimeout, addr, step, args...)
}

// cmdTimeout is cmd with an explicit bound.
func (e *Engine) cmdTimeout(ctx context.Context, timeout time.Duration, addr, step string, args ...string) (rueidis.RedisMessage, error) {
	if step == "" {
		step = stepName(args)
	}
	c, err := e.client(addr)
	if err != nil {
		return rueidis.RedisMessage{}, errNode(addr, step, err)
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg, err := c.Do(cctx, c.B().Arbitrary(args...).Build()).ToMessage()
	if err != nil {
		return msg, errNode(addr, step, err)
	}
	return msg, nil
}

// str runs a command that answers a string.
func (e *Engine) str(ctx context.Context, addr, step string, args ...string) (string, error) {
	m, err := e.cmd(ctx, addr, step, args...)
	if err != nil {
		return "", err
	}
	s, err := m.ToString()
	if err != nil {
		return "", errNode(addr, step, err)
	}
	return s, nil
}

// ok runs a command whose answer does not matter beyond success.
func (e *Engine) ok(ctx context.Context, addr, step string, args ...string) error {
	_, err := e.cmd(ctx, addr, step, args...)
	return err
}

// integer runs a command that answers an integer.
func (e *Engine) integer(ctx context.Context, addr, step string, args ...string) (int64, error) {
	m, err := e.cmd(ctx, addr, step, args...)
	if err != nil {
		return 0, err
	}
	n, err := m.AsInt64()
	if err != nil {
		return 0, errNode(addr, step, err)
	}
	return n, nil
}

// strs runs a command that answers an array of strings.
func (e *Engine) strs(ctx context.Context, addr, step string, args ...string) ([]string, error) {
	m, err := e.cmd(ctx, addr, step, args...)
	if err != nil {
		return nil, err
	}
	v, err := m.AsStrSlice()
	if err != nil {
		return nil, errNode(addr, step, err)
	}
	return v, nil
}

// pipeline sends cmds to addr in one round trip and returns each reply. The
// error is non-nil only when the node could not be reached at all; per
// command errors are in the replies.
func (e *Engine) pipeline(ctx context.Context, addr, step string, cmds [][]string) ([]rueidis.RedisResult, error) {
	return e.pipelineTimeout(ctx, addr, step, e.cfg.CommandTimeout, cmds)
}

// pipelineTimeout is pipeline with an explicit bound.
func (e *Engine) pipelineTimeout(ctx context.Context, addr, step string, timeout time.Duration, cmds [][]string) ([]rueidis.RedisResult, error) {
	c, err := e.client(addr)
	if err != nil {
		return nil, errNode(addr, step, err)
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	built := make(rueidis.Commands, len(cmds))
	for i, a := range cmds {
		built[i] = c.B().Arbitrary(a...).Build()
	}
	res := c.DoMulti(cctx, built...)
	for _, r := range res {
		if err := r.NonRedisError(); err != nil {
			return nil, errNode(addr, step, err)
		}
	}
	return res, nil
}

// isRedisErr reports whether err carries a Redis error reply containing
// substr (case-sensitive, as Redis spells its messages).
func isRedisErr(err error, substr string) bool {
	var re *rueidis.RedisError
	if !errors.As(err, &re) {
		return false
	}
	return strings.Contains(re.Error(), substr)
}

// stepName describes a command for error messages without leaking
// passwords (MIGRATE … AUTH pw).
func stepName(args []string) string {
	n := min(len(args), 3)
	if len(args) > 0 && strings.EqualFold(args[0], "MIGRATE") {
		n = 1
	}
	return strings.Join(args[:n], " ")
}

// errNode builds a NodeError, mapping transport failures to ErrUnreachable.
func errNode(addr, step string, err error) error {
	if err == nil {
		return nil
	}
	var ne *NodeError
	if errors.As(err, &ne) {
		return err
	}
	if _, isRedis := rueidis.IsRedisErr(err); !isRedis && !errors.Is(err, context.Canceled) && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrUnreachable) {
		err = fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return &NodeError{Addr: addr, Step: step, Err: err}
}
