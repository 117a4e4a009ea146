package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions configures one redis-server. The zero value is a standalone
// server without a password, persistence or cluster mode.
type RedisOptions struct {
	// Password sets requirepass and masterauth. Empty means no password.
	Password string
	// Cluster turns on cluster-enabled.
	Cluster bool
	// NodeTimeout is cluster-node-timeout. Zero means 5s, shorter than
	// Redis's 15s default so failover tests finish quickly.
	NodeTimeout time.Duration
	// AppendOnly turns on the AOF so that data survives Kill and Restart.
	AppendOnly bool
	// Config holds extra "directive value" lines appended to redis.conf.
	Config []string
	// Host is a label, used by tests that need servers that look like they
	// run on different hosts (placement tests). It does not change the
	// listening address, which is always 127.0.0.1.
	Host string
}

// RedisServer is one running (or stopped) redis-server on 127.0.0.1.
type RedisServer struct {
	// Port is the client port; the cluster bus, if any, is Port+10000.
	Port int
	// Addr is "127.0.0.1:Port".
	Addr string
	// Dir holds redis.conf, the log and any data files.
	Dir  string
	opts RedisOptions

	mu   sync.Mutex
	proc *process
}

const redisStartTimeout = 10 * time.Second

// StartRedis starts a redis-server and stops it when the test ends. It fails
// the test if redis-server is missing or does not answer PING in time.
func StartRedis(tb testing.TB, opts RedisOptions) *RedisServer {
	tb.Helper()
	s, err := startRedis(tb.TempDir(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("redis-server %s log (tail):\n%s", s.Addr, s.LogTail(60))
		}
		if err := s.Stop(); err != nil {
			tb.Error(err)
		}
	})
	return s
}

// startRedis starts a server in a fresh subdirectory of parent, retrying on
// a new port when it loses the race for a free one.
func startRedis(parent string, opts RedisOptions) (*RedisServer, error) {
	bin, err := RedisServerPath()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePortWithBus()
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(parent, "redis-"+strconv.Itoa(port))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("testenv: %w", err)
		}
		s := &RedisServer{Port: port, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Dir: dir, opts: opts}
		if err := os.WriteFile(filepath.Join(dir, "redis.conf"), []byte(s.config()), 0o644); err != nil {
			return nil, fmt.Errorf("testenv: %w", err)
		}
		if err := s.start(bin); err != nil {
			lastErr = err
			if strings.Contains(s.LogTail(20), "in use") {
				continue // lost the port race; try another
			}
			return nil, err
		}
		return s, nil
	}
	return nil, lastErr
}

func (s *RedisServer) config() string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("port %d", s.Port)
	line("bind 127.0.0.1")
	line("dir %s", s.Dir)
	line("daemonize no")
	line("logfile \"\"")
	line("save \"\"")
	line("enable-debug-command local")
	// Replicas sync at once instead of waiting 5s for more replicas.
	line("repl-diskless-sync-delay 0")
	if s.opts.AppendOnly {
		line("appendonly yes")
		line("appendfsync no")
	} else {
		line("appendonly no")
	}
	if s.opts.Password != "" {
		line("requirepass %q", s.opts.Password)
		line("masterauth %q", s.opts.Password)
	}
	if s.opts.Cluster {
		nt := s.opts.NodeTimeout
		if nt == 0 {
			nt = 5 * time.Second
		}
		line("cluster-enabled yes")
		line("cluster-config-file nodes.conf")
		line("cluster-node-timeout %d", nt.Milliseconds())
	}
	for _, c := range s.opts.Config {
		line("%s", c)
	}
	return b.String()
}

func (s *RedisServer) start(bin string) error {
	proc, err := startProcess("redis-server "+s.Addr, s.Dir, filepath.Join(s.Dir, "redis.log"),
		[]string{bin, filepath.Join(s.Dir, "redis.conf")})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.proc = proc
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), redisStartTimeout)
	defer cancel()
	if err := s.waitPing(ctx, proc); err != nil {
		_ = proc.kill()
		return fmt.Errorf("testenv: redis-server %s did not start: %w\nlog:\n%s", s.Addr, err, s.LogTail(20))
	}
	return nil
}

// waitPing polls PING until the server answers, the process exits or ctx ends.
func (s *RedisServer) waitPing(ctx context.Context, proc *process) error {
	c := s.newClient()
	defer c.Close()
	return poll(ctx, 20*time.Millisecond, func() (bool, error) {
		if proc.exited() {
			return false, fmt.Errorf("process exited: %v", proc.waitErr)
		}
		err := c.Ping(ctx).Err()
		if err != nil && strings.HasPrefix(err.Error(), "LOADING") {
			return false, nil
		}
		return err == nil, nil
	})
}

func (s *RedisServer) newClient() *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: s.Addr, Password: s.opts.Password,
		DialTimeout: time.Second, ReadTimeout: 5 * time.Second,
		MaxRetries: -1, PoolSize: 4, Protocol: 2,
	})
}

// Client returns a go-redis client for this server, closed when the test
// ends.
func (s *RedisServer) Client(tb testing.TB) *redis.Client {
	c := s.newClient()
	tb.Cleanup(func() { c.Close() })
	return c
}

// Password returns the server's requirepass, or "".
func (s *RedisServer) Password() string { return s.opts.Password }

// Host returns the host label given in RedisOptions.
func (s *RedisServer) Host() string { return s.opts.Host }

// PID returns the process id of the running server, or 0 when stopped.
func (s *RedisServer) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || s.proc.exited() {
		return 0
	}
	return s.proc.PID()
}

func (s *RedisServer) current() *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// Running reports whether the server process is alive (it may be paused).
func (s *RedisServer) Running() bool {
	p := s.current()
	return p != nil && !p.exited()
}

// Stop shuts the server down (SIGTERM, then SIGKILL) and waits for it.
// Calling it on a stopped server does nothing.
func (s *RedisServer) Stop() error {
	if p := s.current(); p != nil {
		return p.stop()
	}
	return nil
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (s *RedisServer) Kill() error {
	if p := s.current(); p != nil {
		return p.kill()
	}
	return nil
}

// Pause freezes the server with SIGSTOP: it keeps its sockets but answers
// nothing, like a node stuck in a long GC or swap storm.
func (s *RedisServer) Pause() error {
	if p := s.current(); p != nil {
		return p.signal(syscall.SIGSTOP)
	}
	return errors.New("testenv: redis-server was never started")
}

// Resume continues a paused server with SIGCONT.
func (s *RedisServer) Resume() error {
	if p := s.current(); p != nil {
		return p.signal(syscall.SIGCONT)
	}
	return errors.New("testenv: redis-server was never started")
}

// Restart starts a stopped or killed server again on the same port and
// directory, so it keeps its nodes.conf (and its data when AppendOnly is
// set). It stops the server first if it is still running.
func (s *RedisServer) Restart() error {
	if err := s.Stop(); err != nil {
		return err
	}
	bin, err := RedisServerPath()
	if err != nil {
		return err
	}
	return s.start(bin)
}

// LogTail returns the last n lines of the server's log.
func (s *RedisServer) LogTail(n int) string { return fileTail(filepath.Join(s.Dir, "redis.log"), n) }

// poll calls f every interval until it reports done, returns an error, or ctx
// ends. It is for waiting on servers that offer no notification (a port
// starting to answer, a cluster converging); the bound is ctx's deadline.
func poll(ctx context.Context, interval time.Duration, f func() (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := f()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up waiting: %w", ctx.Err())
		case <-t.C:
		}
	}
}
