package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// killWait bounds the wait for a process to vanish after SIGKILL.
const killWait = 5 * time.Second

// exitPoll is how often a stopping process is checked.
const exitPoll = 20 * time.Millisecond

// process is one redis-server process, started by this agent or adopted.
// It is identified by pid and by its start time (field 22 of
// /proc/<pid>/stat), so a pid reused by another process is never mistaken
// for it. Only its supervisor goroutine uses it.
type process struct {
	pid   int
	start uint64 // clock ticks after boot; 0 if it could not be read
	// exit describes how the process ended, once known: the wait status
	// when it was this process's child, else "process gone".
	exit string
}

// procStat is what the agent needs from /proc/<pid>/stat.
type procStat struct {
	state byte
	pgrp  int
	start uint64
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// parseStat parses a /proc/<pid>/stat line. The command name (field 2) is
// in parentheses and may hold spaces, so fields are counted from the last
// ')'.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), f[2] field 5 (pgrp), f[19] field 22 (starttime).
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, errors.New("malformed /proc stat")
	}
	pgrp, err := strconv.Atoi(f[2])
	if err != nil {
		return procStat{}, fmt.Errorf("malformed /proc stat: %w", err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("malformed /proc stat: %w", err)
	}
	return procStat{state: f[0][0], pgrp: pgrp, start: start}, nil
}

// alive reports whether the process still runs. It reaps the process if it
// is this agent's child and has exited, recording how it ended.
func (p *process) alive() bool {
	if p.exit != "" {
		return false
	}
	var ws syscall.WaitStatus
	// WNOHANG on one pid: it never blocks and never reaps anyone else's
	// child. ECHILD just means the process is not our child (adopted).
	if wpid, err := syscall.Wait4(p.pid, &ws, syscall.WNOHANG, nil); err == nil && wpid == p.pid {
		p.exit = describeWait(ws)
		return false
	}
	st, err := readStat(p.pid)
	if err != nil || st.state == 'Z' || st.state == 'X' || (p.start != 0 && st.start != p.start) {
		p.exit = "process gone"
		return false
	}
	return true
}

func describeWait(ws syscall.WaitStatus) string {
	switch {
	case ws.Exited():
		return "exited with status " + strconv.Itoa(ws.ExitStatus())
	case ws.Signaled():
		return "killed by signal " + ws.Signal().String()
	}
	return fmt.Sprintf("ended (wait status %#x)", uint32(ws))
}

// signal sends sig to the process unless it is gone. With group set and the
// process leading its own process group (as every instance the agent starts
// does), it signals the whole group, which includes a fork saving an RDB.
func (p *process) signal(sig syscall.Signal, group bool) error {
	if !p.alive() {
		return nil
	}
	target := p.pid
	if st, err := readStat(p.pid); group && err == nil && st.pgrp == p.pid {
		target = -p.pid
	}
	if err := syscall.Kill(target, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("send %v to pid %d: %w", sig, p.pid, err)
	}
	return nil
}

// waitGone polls until the process has ended or d has passed.
func (p *process) waitGone(d time.Duration) bool {
	deadline := time.Now().Add(d)
	t := time.NewTicker(exitPoll)
	defer t.Stop()
	for p.alive() {
		if time.Now().After(deadline) {
			return false
		}
		<-t.C
	}
	return true
}

// stop ends the process: SIGCONT (in case it is paused) and SIGTERM, which
// Redis answers with a graceful shutdown; after grace, SIGKILL to its
// process group. It returns once the process is gone, or an error if even
// SIGKILL did not end it within killWait.
func (p *process) stop(grace time.Duration) error {
	if !p.alive() {
		return nil
	}
	_ = p.signal(syscall.SIGCONT, false)
	if err := p.signal(syscall.SIGTERM, false); err != nil {
		return err
	}
	if p.waitGone(grace) {
		return nil
	}
	if err := p.signal(syscall.SIGKILL, true); err != nil {
		return err
	}
	if p.waitGone(killWait) {
		return nil
	}
	return fmt.Errorf("pid %d still running %v after SIGKILL", p.pid, killWait)
}

// startRedis starts redis-server with the instance's config file, in its
// own session so that the agent's exit, or a signal to the agent's process
// group (Ctrl-C in a terminal), does not reach it. Its output goes to the
// instance's log file, which is also Redis's own logfile.
func startRedis(bin, dir string, dieWithParent bool) (*process, error) {
	logf, err := os.OpenFile(filepath.Join(dir, logName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	sys := &syscall.SysProcAttr{Setsid: true}
	if dieWithParent {
		sys.Pdeathsig = syscall.SIGKILL
	}
	p, err := os.StartProcess(bin, []string{bin, filepath.Join(dir, confName)}, &os.ProcAttr{
		Dir: dir,
		// A minimal environment: the agent's own may hold secrets
		// (R2M_TOKEN, coordinator credentials) that Redis has no use for.
		Env:   []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Files: []*os.File{devnull, logf, logf},
		Sys:   sys,
	})
	if err != nil {
		return nil, fmt.Errorf("exec %s: %w", bin, err)
	}
	proc := &process{pid: p.Pid}
	// The agent never calls Wait (it polls, and reaps with wait4), so the
	// handle is released at once.
	_ = p.Release()
	if st, err := readStat(proc.pid); err == nil {
		proc.start = st.start
	}
	// Redis writes the pidfile itself a moment later; writing it now closes
	// the window in which an agent that dies would leave no trace of it.
	if err := writeFileAtomic(filepath.Join(dir, pidName), []byte(strconv.Itoa(proc.pid)+"\n"), 0o600); err != nil {
		return proc, fmt.Errorf("write pidfile: %w", err)
	}
	return proc, nil
}

// findInstance returns the live redis-server of the instance directory
// dir (real path) on port, or nil. It tries the pidfile first and then
// scans /proc, so that a missing or stale pidfile never leads to a
// duplicate start.
func findInstance(ctx context.Context, dir string, port int) (*process, error) {
	if b, err := os.ReadFile(filepath.Join(dir, pidName)); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			if p := identify(pid, dir, port); p != nil {
				return p, nil
			}
		}
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("scan /proc: %w", err)
	}
	for _, e := range entries {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p := identify(pid, dir, port); p != nil {
			return p, nil
		}
	}
	return nil, nil
}

// identify returns pid as a process if it is the redis-server of the
// instance directory dir on port: a live process whose working directory is
// dir (the agent starts it there, and Redis's own "dir" is the same), whose
// command line is Redis's ("redis-server 127.0.0.1:7000 [cluster]" once it
// has set its title, "redis-server …/redis.conf" before).
func identify(pid int, dir string, port int) *process {
	ps := "/proc/" + strconv.Itoa(pid)
	cwd, err := os.Readlink(ps + "/cwd")
	if err != nil || cwd != dir {
		return nil
	}
	cmd, err := os.ReadFile(ps + "/cmdline")
	if err != nil {
		return nil
	}
	line := strings.TrimSpace(string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))
	if !strings.Contains(line, "redis") {
		return nil
	}
	portSuffix := ":" + strconv.Itoa(port)
	match := strings.Contains(line, filepath.Join(dir, confName))
	for _, f := range strings.Fields(line) {
		if strings.HasSuffix(f, portSuffix) {
			match = true
		}
	}
	if !match {
		return nil
	}
	st, err := readStat(pid)
	if err != nil || st.state == 'Z' || st.state == 'X' {
		return nil
	}
	p := &process{pid: pid, start: st.start}
	if !p.alive() {
		return nil
	}
	return p
}
