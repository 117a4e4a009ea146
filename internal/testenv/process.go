package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ownerEnv marks every process testenv starts with the pid of the test
// binary that owns it, for anyone inspecting a machine with ps/proc.
const ownerEnv = "R2M_TESTENV_OWNER"

// Bounds for stopping a process: a graceful signal first, then SIGKILL.
const (
	gracefulStop = 5 * time.Second
	killWait     = 5 * time.Second
)

// process is one child server process. Its log (stdout and stderr) goes to
// logPath. Every method is safe to call after the process has exited.
type process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	logFile *os.File

	done    chan struct{} // closed once Wait has returned; waitErr is then set
	waitErr error

	mu      sync.Mutex
	stopped bool // Stop or Kill was called; an exit is expected
}

// startProcess starts argv with its output appended to logPath. The child
// gets the owner marker and dies with the test binary.
func startProcess(name, dir, logPath string, argv []string) (*process, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("testenv: %s: open log: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout = lf
	cmd.Stderr = lf
	cmd.Env = append(os.Environ(), ownerEnv+"="+strconv.Itoa(os.Getpid()))
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// If the test binary dies (panic, timeout, kill -9), the kernel kills
		// the server too, so nothing outlives the run.
		Pdeathsig: syscall.SIGKILL,
		Setpgid:   true,
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("testenv: %s: start %s: %w", name, argv[0], err)
	}
	p := &process{name: name, logPath: logPath, cmd: cmd, logFile: lf, done: make(chan struct{})}
	started.mu.Lock()
	started.procs = append(started.procs, p)
	started.mu.Unlock()
	go func() {
		p.waitErr = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	return p, nil
}

// PID returns the operating-system process id.
func (p *process) PID() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig unless the process has already ended.
func (p *process) signal(sig syscall.Signal) error {
	if p.exited() {
		return fmt.Errorf("testenv: %s (pid %d) has already exited", p.name, p.PID())
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("testenv: %s: send %v: %w", p.name, sig, err)
	}
	return nil
}

// stop ends the process: SIGCONT (in case it was paused), SIGTERM, then
// SIGKILL if it has not exited within gracefulStop. It returns once the
// process is reaped, or an error if even SIGKILL did not end it in time.
func (p *process) stop() error {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	if p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(gracefulStop):
	}
	return p.kill()
}

// kill sends SIGKILL and waits for the process to be reaped.
func (p *process) kill() error {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	if p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("testenv: %s (pid %d) still running %v after SIGKILL", p.name, p.PID(), killWait)
	}
}

// fileTail returns the last n lines of a file, or a note saying why it could
// not be read.
func fileTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(log %s unreadable: %v)", path, err)
	}
	b = bytes.TrimRight(b, "\n")
	lines := strings.Split(string(b), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// started records every process this test binary started, so [Main] can
// tell which are still alive. (A marker in the environment cannot do this:
// redis-server rewrites the memory /proc/<pid>/environ shows to hold its
// process title.)
var started struct {
	mu    sync.Mutex
	procs []*process
}

// survivors describes every process testenv started that has not exited.
func survivors() []string {
	started.mu.Lock()
	defer started.mu.Unlock()
	var out []string
	for _, p := range started.procs {
		if !p.exited() {
			out = append(out, fmt.Sprintf("pid %d: %s", p.PID(), strings.Join(p.cmd.Args, " ")))
		}
	}
	return out
}

// isZombieStat reports whether a /proc/<pid>/stat line is for a zombie.
func isZombieStat(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// killSurvivors sends SIGKILL to every survivor and waits for it.
func killSurvivors() {
	started.mu.Lock()
	procs := slices.Clone(started.procs)
	started.mu.Unlock()
	for _, p := range procs {
		_ = p.kill()
	}
}
