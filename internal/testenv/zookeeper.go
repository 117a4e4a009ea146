package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ZooKeeper is a standalone ZooKeeper server from the Debian package, run as
// "java … QuorumPeerMain zoo.cfg" on a loopback port.
type ZooKeeper struct {
	// Port is the client port.
	Port int
	// Addr is "127.0.0.1:Port".
	Addr string
	// Dir holds zoo.cfg, the data directory and the log.
	Dir string

	mu   sync.Mutex
	proc *process
}

// zkTick is the server's tickTime. Session timeouts must lie between 2 and
// 240 ticks (minSessionTimeout and maxSessionTimeout below); a short tick lets
// expiry tests use sessions of about a second.
const zkTick = 250 * time.Millisecond

const zkStartTimeout = 30 * time.Second

// StartZooKeeper starts a ZooKeeper server and stops it when the test ends.
func StartZooKeeper(tb testing.TB) *ZooKeeper {
	tb.Helper()
	z, err := startZooKeeper(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("zookeeper %s log (tail):\n%s", z.Addr, z.LogTail(80))
		}
		if err := z.Stop(); err != nil {
			tb.Error(err)
		}
	})
	return z
}

func startZooKeeper(parent string) (*ZooKeeper, error) {
	if _, _, err := zookeeperCommand(); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(parent, "zookeeper-"+strconv.Itoa(port))
		z := &ZooKeeper{Port: port, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Dir: dir}
		if err := z.writeConfig(); err != nil {
			return nil, err
		}
		if err := z.Start(); err != nil {
			lastErr = err
			if strings.Contains(z.LogTail(50), "Address already in use") {
				continue
			}
			return nil, err
		}
		return z, nil
	}
	return nil, lastErr
}

func (z *ZooKeeper) writeConfig() error {
	if err := os.MkdirAll(filepath.Join(z.Dir, "data"), 0o755); err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	cfg := strings.Join([]string{
		"tickTime=" + strconv.Itoa(int(zkTick.Milliseconds())),
		"dataDir=" + filepath.Join(z.Dir, "data"),
		"clientPort=" + strconv.Itoa(z.Port),
		"clientPortAddress=127.0.0.1",
		// The AdminServer would bind 8080 and collide between parallel runs.
		"admin.enableServer=false",
		"4lw.commands.whitelist=srvr,ruok,stat,mntr,cons",
		"minSessionTimeout=" + strconv.Itoa(int(2*zkTick.Milliseconds())),
		"maxSessionTimeout=60000",
		// Tests open many sessions from 127.0.0.1; the default cap is 60.
		"maxClientCnxns=0",
		// A test server need not survive power loss: skip fsync and the
		// 64 MB transaction-log preallocation.
		"forceSync=no",
		"preAllocSize=1024",
	}, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(z.Dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	return nil
}

// Start starts the server (again) on its port with its data directory, so a
// restarted server keeps its znodes and the sessions it had persisted. It
// returns once the server answers "srvr" with a "Mode:" line.
func (z *ZooKeeper) Start() error {
	java, cp, err := zookeeperCommand()
	if err != nil {
		return err
	}
	// slf4j-simple (from libslf4j-java, a dependency of the zookeeper
	// package) gives the server a log; without a binder it logs nothing.
	if _, err := os.Stat("/usr/share/java/slf4j-simple.jar"); err == nil {
		cp += ":/usr/share/java/slf4j-simple.jar"
	}
	z.mu.Lock()
	if z.proc != nil && !z.proc.exited() {
		z.mu.Unlock()
		return fmt.Errorf("testenv: zookeeper %s is already running", z.Addr)
	}
	z.mu.Unlock()
	proc, err := startProcess("zookeeper "+z.Addr, z.Dir, filepath.Join(z.Dir, "zookeeper.log"), []string{
		java,
		"-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
		"-Dorg.slf4j.simpleLogger.showDateTime=true",
		"-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
		"-cp", cp,
		"org.apache.zookeeper.server.quorum.QuorumPeerMain",
		filepath.Join(z.Dir, "zoo.cfg"),
	})
	if err != nil {
		return err
	}
	z.mu.Lock()
	z.proc = proc
	z.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), zkStartTimeout)
	defer cancel()
	err = poll(ctx, 50*time.Millisecond, func() (bool, error) {
		if proc.exited() {
			return false, fmt.Errorf("process exited: %v", proc.waitErr)
		}
		out, err := FourLetterWord(z.Addr, "srvr")
		return err == nil && strings.Contains(out, "Mode:"), nil
	})
	if err != nil {
		_ = proc.kill()
		return fmt.Errorf("testenv: zookeeper %s did not become ready: %w\nlog:\n%s", z.Addr, err, z.LogTail(30))
	}
	return nil
}

// FourLetterWord sends a ZooKeeper four-letter command and returns the reply.
func FourLetterWord(addr, cmd string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(conn, cmd); err != nil {
		return "", err
	}
	b, err := io.ReadAll(conn)
	return string(b), err
}

func (z *ZooKeeper) current() *process {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.proc
}

// Stop shuts the server down and waits for it. It does nothing when stopped.
func (z *ZooKeeper) Stop() error {
	if p := z.current(); p != nil {
		return p.stop()
	}
	return nil
}

// Kill ends the server with SIGKILL and waits for it.
func (z *ZooKeeper) Kill() error {
	if p := z.current(); p != nil {
		return p.kill()
	}
	return nil
}

// PID returns the server's process id, or 0 when it is not running.
func (z *ZooKeeper) PID() int {
	if p := z.current(); p != nil && !p.exited() {
		return p.PID()
	}
	return 0
}

// URL returns a coordinator URL for this server with the given root path,
// such as "zk://127.0.0.1:2181/r2m".
func (z *ZooKeeper) URL(root string) string {
	return "zk://" + z.Addr + "/" + strings.TrimPrefix(root, "/")
}

// LogTail returns the last n lines of the server's log.
func (z *ZooKeeper) LogTail(n int) string {
	return fileTail(filepath.Join(z.Dir, "zookeeper.log"), n)
}
