package testenv

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// Etcd is a single-member etcd server embedded in the test binary
// (go.etcd.io/etcd/server/v3/embed), listening on loopback ports.
//
// Clients reach it through a built-in proxy at Addr. embed.Etcd.Close waits
// up to its request timeout (7s) for open watch streams to end, during which
// the member still runs and expires leases; a crash does nothing of the
// sort. Stop therefore cuts every client connection at the proxy first, so
// the member goes down at once, as a stopped process would.
type Etcd struct {
	// Port is the client port clients use (the proxy's).
	Port int
	// Addr is "127.0.0.1:Port".
	Addr string
	// Dir holds the member's data and its log.
	Dir string

	memberAddr string // where the member itself listens
	peerPort   int
	proxy      *Proxy

	mu sync.Mutex
	e  *embed.Etcd // nil while stopped
}

const etcdStartTimeout = 30 * time.Second

// StartEtcd starts an embedded etcd and stops it when the test ends.
func StartEtcd(tb testing.TB) *Etcd {
	tb.Helper()
	s, err := startEtcd(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("etcd %s log (tail):\n%s", s.Addr, s.LogTail(60))
		}
		if err := s.close(); err != nil {
			tb.Error(err)
		}
	})
	return s
}

func startEtcd(parent string) (*Etcd, error) {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		cport, err := FreePort()
		if err != nil {
			return nil, err
		}
		pport, err := FreePort()
		if err != nil {
			return nil, err
		}
		if pport == cport {
			continue
		}
		memberAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(cport))
		proxy, err := startProxy(memberAddr)
		if err != nil {
			return nil, err
		}
		s := &Etcd{
			Port: proxy.l.Addr().(*net.TCPAddr).Port, Addr: proxy.Addr, memberAddr: memberAddr,
			Dir: filepath.Join(parent, "etcd-"+strconv.Itoa(cport)), peerPort: pport, proxy: proxy,
		}
		if err := s.Start(); err != nil {
			proxy.Close()
			lastErr = err
			if strings.Contains(err.Error(), "address already in use") {
				continue
			}
			return nil, err
		}
		return s, nil
	}
	return nil, lastErr
}

func (s *Etcd) config() *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = "testenv"
	cfg.Dir = filepath.Join(s.Dir, "data")
	curl := url.URL{Scheme: "http", Host: s.memberAddr}
	purl := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.peerPort))}
	cfg.ListenClientUrls = []url.URL{curl}
	cfg.AdvertiseClientUrls = []url.URL{curl}
	cfg.ListenPeerUrls = []url.URL{purl}
	cfg.AdvertisePeerUrls = []url.URL{purl}
	cfg.InitialCluster = cfg.Name + "=" + purl.String()
	cfg.LogLevel = "info"
	cfg.LogOutputs = []string{filepath.Join(s.Dir, "etcd.log")}
	// A test member need not survive power loss.
	cfg.UnsafeNoFsync = true
	return cfg
}

// Start starts the member (again) on its ports with its data directory, so a
// restarted member keeps its keys and leases. It returns once the member
// serves requests.
func (s *Etcd) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.e != nil {
		return fmt.Errorf("testenv: etcd %s is already running", s.Addr)
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	e, err := embed.StartEtcd(s.config())
	if err != nil {
		return fmt.Errorf("testenv: start etcd %s: %w", s.Addr, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("testenv: etcd %s failed while starting: %w", s.Addr, err)
	case <-time.After(etcdStartTimeout):
		e.Server.Stop()
		e.Close()
		return fmt.Errorf("testenv: etcd %s not ready after %v\nlog:\n%s", s.Addr, etcdStartTimeout, s.LogTail(30))
	}
	s.e = e
	s.proxy.Unblock()
	return nil
}

// Stop stops the member and waits until its listeners are closed. Calling it
// on a stopped member does nothing. (embed.Etcd.Close panics when called
// twice, so Stop guards it.)
func (s *Etcd) Stop() error {
	s.mu.Lock()
	e := s.e
	s.e = nil
	s.mu.Unlock()
	if e == nil {
		return nil
	}
	s.proxy.Block()
	e.Close()
	return nil
}

// close stops the member and the proxy for good.
func (s *Etcd) close() error {
	err := s.Stop()
	s.proxy.Close()
	return err
}

// Running reports whether the member is started.
func (s *Etcd) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.e != nil
}

// Endpoint returns the client URL, "http://127.0.0.1:Port".
func (s *Etcd) Endpoint() string { return "http://" + s.Addr }

// URL returns a coordinator URL for this member with the given root path,
// such as "etcd://127.0.0.1:2379/r2m".
func (s *Etcd) URL(root string) string {
	return "etcd://" + s.Addr + "/" + strings.TrimPrefix(root, "/")
}

// LogTail returns the last n lines of the member's log.
func (s *Etcd) LogTail(n int) string { return fileTail(filepath.Join(s.Dir, "etcd.log"), n) }
