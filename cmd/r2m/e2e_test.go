package main

import (
	"bufio"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The end-to-end tests run the real r2m binary, built once per test run.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func r2mBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "r2m-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "r2m")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			binPath = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build r2m: %v\n%s", buildErr, binPath)
	}
	return binPath
}

// proc is a running r2m process whose output is collected.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
	err  error
}

// startR2M runs the binary with args until the test ends (SIGINT, then
// SIGKILL) and returns at once.
func startR2M(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(r2mBinary(t), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	p := &proc{cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	go func() {
		p.err = cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.interrupt(t)
		if t.Failed() {
			t.Logf("r2m %v output:\n%s", args, p.output())
		}
	})
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// interrupt sends SIGINT, as Ctrl-C would, and waits up to 30s, then kills.
func (p *proc) interrupt(t *testing.T) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
		return p.err
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("r2m did not stop within 30s of SIGINT")
		return p.err
	}
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// waitOutput waits until the output contains s.
func (p *proc) waitOutput(t *testing.T, s string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(p.output(), s) {
		select {
		case <-p.done:
			t.Fatalf("r2m exited (%v) before printing %q:\n%s", p.err, s, p.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("r2m did not print %q within %v:\n%s", s, d, p.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a free port.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// field returns the value printed after "label:" in r2m up's banner.
func field(out, label string) string {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), label+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// runCLI runs the binary as a CLI command and returns its output.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, r2mBinary(t), args...).CombinedOutput()
	return string(out), err
}

func testPortBase() string { return strconv.Itoa(12000 + rand.IntN(70)*100) }
