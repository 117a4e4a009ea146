package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/internal/backoff"
	"github.com/r2m-go/r2m/meta"
)

// probeTimeout bounds one PING. A server that takes longer is reported as
// not answering, but it is not restarted: it may be loading a large
// dataset or running a slow command.
const probeTimeout = 2 * time.Second

// supervisor runs one instance: it writes its config, starts or adopts its
// process, probes it, restarts it with backoff when it dies, applies
// desired changes, and on retirement stops it and removes its directory.
// The reconcile loop owns the supervisor value; every field below the
// channels belongs to the supervisor's own goroutine.
type supervisor struct {
	a    *Agent
	port int
	dir  string
	log  *slog.Logger

	specs  chan meta.Instance // capacity 1, newest wins; only the reconcile loop sends
	retire chan struct{}      // closed by the reconcile loop: stop, remove, return
	sent   meta.Instance      // the last spec sent; the reconcile loop's copy

	inst    meta.Instance
	proc    *process   // nil while not running
	file    *redisConf // the config file on disk; nil if none or unreadable
	live    *redisConf // the config the running process uses
	confErr string     // why the desired config could not be applied
	conn    *redisConn // the probe connection

	state     string
	pid       int
	restarts  int
	crashed   bool      // a crash or failed start was seen: the next start is a restart
	startedAt time.Time // of the current process
	upSince   time.Time // when the current process was first seen answering
	bo        backoff.Backoff
}

func (a *Agent) newSupervisor(port int) *supervisor {
	return &supervisor{
		a: a, port: port, dir: instanceDir(a.dataDir, port),
		log:    a.log.With("port", port),
		specs:  make(chan meta.Instance, 1),
		retire: make(chan struct{}),
		bo:     backoff.Backoff{Min: a.opts.RestartBackoffMin, Max: a.opts.RestartBackoffMax},
	}
}

// update hands the supervisor a (possibly unchanged) desired spec. Only the
// reconcile loop calls it, so after draining a stale spec the send cannot
// block.
func (s *supervisor) update(in meta.Instance) {
	s.sent = in
	select {
	case <-s.specs:
	default:
	}
	s.specs <- in
}

// run supervises until ctx ends (leaving the process running) or until
// retire is closed. An orphan is only stopped and removed.
func (s *supervisor) run(ctx context.Context, in meta.Instance, orphan bool) {
	defer s.dropConn()
	s.inst = in
	s.locate(ctx)
	if orphan {
		s.finish(true)
		return
	}
	if s.proc != nil {
		s.check(ctx)
	}
	s.configure(ctx)

	probe := time.NewTicker(s.a.opts.ProbeInterval)
	defer probe.Stop()
	restart := time.NewTimer(0) // start at once unless adopted
	if s.proc != nil {
		restart.Stop()
	}
	defer restart.Stop()
	for {
		select {
		case <-ctx.Done():
			select {
			case <-s.retire: // a removal already under way is finished
				s.finish(false)
			default:
			}
			return
		case <-s.retire:
			s.finish(false)
			return
		case in := <-s.specs:
			s.inst = in
			s.configure(ctx)
		case <-probe.C:
			if s.proc != nil && !s.check(ctx) {
				restart.Reset(s.restartDelay())
			}
		case <-restart.C:
			if s.proc == nil && !s.start(ctx) {
				restart.Reset(s.restartDelay())
			}
		}
	}
}

func (s *supervisor) restartDelay() time.Duration {
	d := s.bo.Next()
	s.log.Info("restarting redis-server after a delay", "delay", d.Round(time.Millisecond))
	return d
}

// locate reads the instance directory: the config file if the agent wrote
// one, and the instance's live process if there is one, which is adopted.
func (s *supervisor) locate(ctx context.Context) {
	if b, err := os.ReadFile(filepath.Join(s.dir, confName)); err == nil {
		if c, err := parseConf(b); err == nil && c.Dir == s.dir && c.Port == s.port {
			c.Host = s.a.opts.Host // a label in a comment, not read back
			s.file = &c
		} else {
			s.log.Warn("config file not as the agent writes it; it will be rewritten", "file", filepath.Join(s.dir, confName))
		}
	}
	p, err := findInstance(ctx, s.dir, s.port)
	if err != nil {
		s.log.Warn("cannot look for a running instance", "err", err)
		return
	}
	if p != nil {
		s.adopt(p)
	}
}

func (s *supervisor) adopt(p *process) {
	s.proc = p
	s.live = s.file
	s.startedAt = time.Now()
	s.upSince = time.Time{}
	s.set(StateStarting, p.pid, "")
	s.log.Info("adopted running redis-server", "pid", p.pid)
}

// password resolves the instance's PasswordFrom.
func (s *supervisor) password(ctx context.Context) (string, error) {
	if s.inst.PasswordFrom == "" {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.a.opts.CoordTimeout)
	defer cancel()
	cred, _, err := s.a.store.Credentials(s.inst.PasswordFrom).Get(ctx)
	if errors.Is(err, coord.ErrNotFound) {
		return "", fmt.Errorf("credentials of cluster %q do not exist", s.inst.PasswordFrom)
	}
	if err != nil {
		return "", fmt.Errorf("read credentials of cluster %q: %w", s.inst.PasswordFrom, err)
	}
	return cred.Password, nil
}

// configure brings the config file, and a running process's live config,
// to the desired spec. When it cannot (no credentials during an outage, an
// invalid spec) it keeps what there is and records why; a process that runs
// keeps running, and a restart uses the file already on disk.
func (s *supervisor) configure(ctx context.Context) {
	pw, err := s.password(ctx)
	if err != nil {
		s.setConfErr(fmt.Errorf("agent: instance %d: configure: %w", s.port, err))
		return
	}
	want, err := newConf(s.a.opts.Host, s.a.opts.BindAddr, s.dir, s.inst, pw)
	if err != nil {
		s.setConfErr(fmt.Errorf("agent: instance %d: invalid desired instance: %w", s.port, err))
		return
	}
	if s.file == nil || *s.file != want {
		if err := os.MkdirAll(s.dir, 0o700); err != nil {
			s.setConfErr(fmt.Errorf("agent: instance %d: create directory: %w", s.port, err))
			return
		}
		if err := writeFileAtomic(filepath.Join(s.dir, confName), want.render(), 0o600); err != nil {
			s.setConfErr(fmt.Errorf("agent: instance %d: write config: %w", s.port, err))
			return
		}
		s.file = &want
		s.log.Info("config written", "file", filepath.Join(s.dir, confName), "cluster", want.Cluster,
			"maxmemory", want.MaxMemory, "persistence", want.Persistence, "password", want.Password != "")
	}
	if s.proc != nil && (s.live == nil || *s.live != want) {
		if err := s.applyLive(ctx, want); err != nil {
			s.setConfErr(fmt.Errorf("agent: instance %d: apply config to pid %d: %w", s.port, s.proc.pid, err))
			return
		}
		s.live = &want
		s.dropConn() // it may have authenticated with the old password
		s.log.Info("config applied to the running instance", "pid", s.proc.pid)
	}
	s.setConfErr(nil)
}

// applyLive changes a running instance's settings with CONFIG SET,
// authenticating with the password it runs with.
func (s *supervisor) applyLive(ctx context.Context, want redisConf) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var old [][2]string
	oldPw := ""
	if s.live != nil {
		old, oldPw = s.live.settings(), s.live.Password
	}
	args := []string{"CONFIG", "SET"}
	for i, kv := range want.settings() {
		if old == nil || old[i] != kv {
			args = append(args, kv[0], kv[1])
		}
	}
	if len(args) == 2 {
		return nil
	}
	c, err := dialRedis(ctx, s.addr())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	if oldPw != "" {
		if _, err := c.do(ctx, "AUTH", oldPw); err != nil {
			return fmt.Errorf("AUTH: %w", err)
		}
	}
	if _, err := c.do(ctx, args...); err != nil {
		names := make([]string, 0, (len(args)-2)/2)
		for i := 2; i < len(args); i += 2 {
			names = append(names, args[i])
		}
		return fmt.Errorf("CONFIG SET %s: %w", strings.Join(names, " "), err)
	}
	return nil
}

// start starts the instance's process, unless one is already running for
// its directory, which is adopted instead: the agent never runs two.
func (s *supervisor) start(ctx context.Context) bool {
	p, err := findInstance(ctx, s.dir, s.port)
	if err != nil {
		s.crashed = true
		s.set(StateCrashed, 0, fmt.Sprintf("agent: instance %d: look for a running process: %v", s.port, err))
		return false
	}
	if p != nil {
		s.adopt(p)
		return true
	}
	if s.file == nil {
		s.configure(ctx)
	}
	if s.file == nil {
		s.crashed = true
		s.set(StateCrashed, 0, "")
		return false
	}
	if s.crashed {
		s.restarts++
	}
	s.crashed = true // until it is seen running, a failure here is a crash
	p, err = startRedis(s.a.opts.RedisServerPath, s.dir, s.a.opts.dieWithParent)
	if err != nil && p == nil {
		msg := fmt.Sprintf("agent: instance %d: start: %v", s.port, err)
		s.set(StateCrashed, 0, msg)
		s.log.Error("cannot start redis-server", "err", msg)
		return false
	}
	if err != nil {
		s.log.Warn("redis-server started, but", "pid", p.pid, "err", err)
	}
	s.proc = p
	s.live = s.file
	s.startedAt = time.Now()
	s.upSince = time.Time{}
	s.set(StateStarting, p.pid, "")
	s.log.Info("redis-server started", "pid", p.pid, "restarts", s.restarts)
	return true
}

// check probes the process: alive, then PING. It returns false when the
// process has ended, after recording the crash.
func (s *supervisor) check(ctx context.Context) bool {
	p := s.proc
	if !p.alive() {
		s.proc, s.live = nil, nil
		s.dropConn()
		s.crashed = true
		msg := fmt.Sprintf("agent: instance %d: pid %d %s", s.port, p.pid, p.exit)
		if s.state == StateStarting {
			msg += "; log: " + s.logTail(5)
		}
		s.set(StateCrashed, 0, msg)
		s.log.Warn("redis-server exited", "pid", p.pid, "how", p.exit, "up_for", time.Since(s.startedAt).Round(time.Millisecond))
		return false
	}
	err := s.ping(ctx)
	switch {
	case err == nil:
		if s.upSince.IsZero() {
			s.upSince = time.Now()
			s.log.Info("redis-server answering", "pid", p.pid)
		}
		if time.Since(s.upSince) >= s.a.opts.RestartBackoffMax {
			s.bo.Reset()
		}
		s.set(StateRunning, p.pid, "")
	case s.upSince.IsZero():
		s.set(StateStarting, p.pid, "") // loading, or not listening yet
	default:
		s.set(StateRunning, p.pid, fmt.Sprintf("agent: instance %d: pid %d alive but not answering PING: %v", s.port, p.pid, err))
	}
	return true
}

// errLoading: the server answers, but is still loading its dataset.
var errLoading = errors.New("loading its dataset")

// ping sends PING. Any reply proves the server answers, including NOAUTH
// (so probes need no password), except LOADING.
func (s *supervisor) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if s.conn == nil {
		c, err := dialRedis(ctx, s.addr())
		if err != nil {
			return err
		}
		s.conn = c
	}
	_, err := s.conn.do(ctx, "PING")
	var re redisError
	switch {
	case errors.As(err, &re) && strings.HasPrefix(string(re), "LOADING"):
		return errLoading
	case errors.As(err, &re):
		return nil
	case err != nil:
		s.dropConn()
		return err
	}
	return nil
}

func (s *supervisor) dropConn() {
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn = nil
	}
}

// addr is where the agent reaches the instance: its bind address, or
// loopback when it binds every address.
func (s *supervisor) addr() string {
	host := s.a.opts.BindAddr
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(s.port))
}

// finish stops the instance and removes its directory. If the process
// cannot be stopped, the directory stays and the next reconcile retries.
func (s *supervisor) finish(orphan bool) {
	what := "instance no longer desired"
	if orphan {
		what = "instance directory not in the desired state (orphan)"
	}
	for range 2 { // the second round catches a process not seen before
		if s.proc == nil {
			p, err := findInstance(context.Background(), s.dir, s.port)
			if err != nil || p == nil {
				break
			}
			s.proc = p
		}
		s.log.Info("stopping redis-server", "why", what, "pid", s.proc.pid)
		if err := s.proc.stop(s.a.opts.StopTimeout); err != nil {
			msg := fmt.Sprintf("agent: instance %d: stop pid %d: %v", s.port, s.proc.pid, err)
			s.log.Error("cannot stop redis-server; will retry", "err", msg)
			if !orphan {
				s.set(StateStopped, s.proc.pid, msg)
			}
			s.notifyRetired()
			return
		}
		s.log.Info("redis-server stopped", "pid", s.proc.pid, "how", s.proc.exit)
		s.proc = nil
	}
	if err := os.RemoveAll(s.dir); err != nil {
		s.log.Error("cannot remove instance directory", "dir", s.dir, "err", err)
	} else {
		s.log.Info("instance removed", "dir", s.dir)
	}
	s.a.board.remove(s.port)
	s.notifyRetired()
}

func (s *supervisor) notifyRetired() {
	select {
	case s.a.retired <- s.port:
	case <-s.a.runDone:
	}
}

// set reports the instance's status; the config error, if any, is added to
// err.
func (s *supervisor) set(state string, pid int, err string) {
	s.state, s.pid = state, pid
	var msgs []string
	for _, m := range []string{err, s.confErr} {
		if m != "" {
			msgs = append(msgs, m)
		}
	}
	s.a.board.set(meta.InstanceStatus{
		Port: s.port, Cluster: s.inst.Cluster, PID: pid, State: state,
		Restarts: s.restarts, Error: s.redact(strings.Join(msgs, "; ")),
	})
}

func (s *supervisor) setConfErr(err error) {
	msg := ""
	if err != nil {
		msg = s.redact(err.Error())
		if msg != s.confErr {
			s.log.Error("cannot apply the desired config", "err", msg)
		}
	}
	if msg == s.confErr {
		return
	}
	s.confErr = msg
	if s.state != "" || msg != "" {
		state := s.state
		if state == "" {
			state = StateStopped
		}
		s.set(state, s.pid, "")
	}
}

// redact removes any password the agent knows of from text bound for
// reports and logs (Redis can echo a config line in a start-up error).
func (s *supervisor) redact(text string) string {
	for _, c := range []*redisConf{s.file, s.live} {
		if c != nil && c.Password != "" {
			text = strings.ReplaceAll(text, c.Password, "[redacted]")
		}
	}
	return text
}

// logTail returns the last n lines of the instance's log, redacted and on
// one line.
func (s *supervisor) logTail(n int) string {
	b, err := os.ReadFile(filepath.Join(s.dir, logName))
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return s.redact(string(bytes.Join(lines, []byte(" | "))))
}
