// Package embedetcd runs a single-member etcd inside the r2m process: the
// zero-setup coordinator that "r2m up" and "r2m server" start when no
// coordinator URL is given. Its data lives in a directory of the caller's, so
// the next start finds the same keys.
//
// It is imported by cmd/r2m only. The client library must never import it:
// it would pull the whole etcd server into every application.
package embedetcd

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// Config configures the member.
type Config struct {
	// Dir holds the member's data; it is created if missing.
	Dir string
	// ClientAddr is the host:port clients connect to. Zero means
	// 127.0.0.1:2379; a port of 0 picks a free one.
	ClientAddr string
	// PeerAddr is the raft peer address. Zero means the one this data
	// directory used before, or 127.0.0.1 with a free port on first start; a
	// single member talks to no peers, but etcd must listen, and its peer URL
	// is recorded in its data.
	PeerAddr string
	// StartTimeout bounds the wait for the member to serve. Zero means 60s.
	StartTimeout time.Duration
	// Logger receives one line when the member starts and stops; etcd's own
	// log goes to Dir/etcd.log.
	Logger *slog.Logger
}

// Server is a running member.
type Server struct {
	e    *embed.Etcd
	addr string
	log  *slog.Logger
	once sync.Once
}

// Start starts the member and returns once it serves requests.
func Start(cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("embedetcd: no data directory")
	}
	if cfg.ClientAddr == "" {
		cfg.ClientAddr = "127.0.0.1:2379"
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	caddr, err := resolvePort(cfg.ClientAddr)
	if err != nil {
		return nil, fmt.Errorf("embedetcd: client address: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedetcd: %w", err)
	}
	peerFile := filepath.Join(cfg.Dir, "peer-addr")
	if cfg.PeerAddr == "" {
		if b, err := os.ReadFile(peerFile); err == nil {
			cfg.PeerAddr = string(b)
		} else {
			cfg.PeerAddr = "127.0.0.1:0"
		}
	}
	paddr, err := resolvePort(cfg.PeerAddr)
	if err != nil {
		return nil, fmt.Errorf("embedetcd: peer address: %w", err)
	}
	if err := os.WriteFile(peerFile, []byte(paddr), 0o600); err != nil {
		return nil, fmt.Errorf("embedetcd: %w", err)
	}
	ec := embed.NewConfig()
	ec.Name = "r2m"
	ec.Dir = filepath.Join(cfg.Dir, "member")
	curl := url.URL{Scheme: "http", Host: caddr}
	purl := url.URL{Scheme: "http", Host: paddr}
	ec.ListenClientUrls, ec.AdvertiseClientUrls = []url.URL{curl}, []url.URL{curl}
	ec.ListenPeerUrls, ec.AdvertisePeerUrls = []url.URL{purl}, []url.URL{purl}
	ec.InitialCluster = ec.Name + "=" + purl.String()
	ec.LogLevel = "warn"
	ec.LogOutputs = []string{filepath.Join(cfg.Dir, "etcd.log")}
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("embedetcd: start in %s: %w", cfg.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedetcd: member failed while starting: %w", err)
	case <-time.After(cfg.StartTimeout):
		e.Server.Stop()
		e.Close()
		return nil, fmt.Errorf("embedetcd: member not ready after %v (see %s)", cfg.StartTimeout, filepath.Join(cfg.Dir, "etcd.log"))
	}
	log.Info("embedded etcd started", "addr", caddr, "dir", cfg.Dir)
	return &Server{e: e, addr: caddr, log: log}, nil
}

// resolvePort replaces a port of 0 with a free one, so the address can be
// printed and given to clients before the member binds it.
func resolvePort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if port != "0" {
		if _, err := strconv.Atoi(port); err != nil {
			return "", fmt.Errorf("port %q: %w", port, err)
		}
		return addr, nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Addr returns the client address, host:port.
func (s *Server) Addr() string { return s.addr }

// URL returns the coordinator URL for root, such as etcd://127.0.0.1:2379/r2m.
func (s *Server) URL(root string) string { return "etcd://" + s.addr + root }

// Close stops the member. It is safe to call more than once
// (embed.Etcd.Close is not).
func (s *Server) Close() {
	s.once.Do(func() {
		s.e.Close()
		s.log.Info("embedded etcd stopped", "addr", s.addr)
	})
}
