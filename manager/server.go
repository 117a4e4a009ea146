package manager

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/errgroup"

	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/internal/buildinfo"
	"github.com/r2m-go/r2m/meta"
	"github.com/r2m-go/r2m/monitor"
)

// Config configures a Server.
type Config struct {
	// Coordinator is the session the server works through. The server does
	// not own it: the caller closes it after Run returns.
	Coordinator *coord.Coordinator
	// Listener is where the HTTP API is served. Required.
	Listener net.Listener
	// AdvertiseAddr is the host:port other servers use to reach this one
	// (forwarded mutations). Zero means the listener's address.
	AdvertiseAddr string
	// DataDir is where the first server writes admin.token and
	// admin.password. Required.
	DataDir string
	// ID names this server instance; zero means a random one.
	ID string
	// Logger receives the server's log. Nil discards it.
	Logger *slog.Logger
	// PasswordCost is the bcrypt cost; zero means bcrypt.DefaultCost + 2
	// (12). Tests lower it.
	PasswordCost int
	// Console, if set, builds the web console served at "/". It is given
	// the server's own handler, so that pages read the API in-process with
	// the visitor's credentials and every rule of the API applies to them.
	Console func(api http.Handler) http.Handler
	// Leaks tunes leak and zombie detection.
	Leaks LeakConfig
	// ClientSampleInterval is how often each app's client count is
	// sampled. Zero means 30s.
	ClientSampleInterval time.Duration
	// ObserveInterval is how often the leader reads every cluster's
	// topology. Zero means 5s.
	ObserveInterval time.Duration
	// Monitor, if set, collects metrics and evaluates alerts while this
	// server leads, and serves /metrics and the monitoring API. The server
	// does not own it: the caller closes it after Run returns.
	Monitor *monitor.Monitor
	// PublicMetrics serves /metrics without authentication, for
	// Prometheus servers that scrape without a token.
	PublicMetrics bool
	// PortBase and PortSpan are the ports deployed instances get:
	// [PortBase, PortBase+PortSpan). Zero means 7000 and 1000; the cluster
	// bus uses each port + 10000.
	PortBase, PortSpan int
}

// Server is one r2m server instance.
type Server struct {
	cfg   Config
	log   *slog.Logger
	store *meta.Store
	id    string
	addr  string

	secret []byte // signs session cookies; loaded before serving

	mux        *http.ServeMux
	patterns   []string    // every route registered, for the OpenAPI check
	routeRoles []routeRole // every API route with its least role

	lead      leadership
	history   countHistory
	engines   engines
	nodes     nodeClients
	kinds     map[string]*opKind
	observeCh chan struct{} // capacity 1: an observer pass is wanted
}

// New checks cfg and builds a Server. It does no I/O; Run does.
func New(cfg Config) (*Server, error) {
	var errs []error
	if cfg.Coordinator == nil {
		errs = append(errs, errors.New("manager: Config.Coordinator is required"))
	}
	if cfg.Listener == nil {
		errs = append(errs, errors.New("manager: Config.Listener is required"))
	}
	if cfg.DataDir == "" {
		errs = append(errs, errors.New("manager: Config.DataDir is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.PasswordCost == 0 {
		cfg.PasswordCost = bcrypt.DefaultCost + 2
	}
	if cfg.ID == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		host, _ := os.Hostname()
		cfg.ID = host + "-" + hex.EncodeToString(b)
	}
	if cfg.PortBase <= 0 {
		cfg.PortBase = 7000
	}
	if cfg.PortSpan <= 0 {
		cfg.PortSpan = 1000
	}
	if cfg.ObserveInterval <= 0 {
		cfg.ObserveInterval = 5 * time.Second
	}
	if cfg.ClientSampleInterval <= 0 {
		cfg.ClientSampleInterval = 30 * time.Second
	}
	if cfg.AdvertiseAddr == "" {
		cfg.AdvertiseAddr = cfg.Listener.Addr().String()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		cfg: cfg, log: log.With("server", cfg.ID), store: meta.NewStore(cfg.Coordinator),
		id: cfg.ID, addr: cfg.AdvertiseAddr, observeCh: make(chan struct{}, 1),
	}
	s.kinds = s.opKinds()
	s.routes()
	return s, nil
}

// ID returns the server instance's ID.
func (s *Server) ID() string { return s.id }

// Handler returns the server's HTTP handler (API, /healthz and console).
func (s *Server) Handler() http.Handler { return s.mux }

// Run serves until ctx ends, taking part in leader election, and returns
// after every goroutine it started has stopped. On first start against an
// empty coordinator it creates the admin user and token first.
func (s *Server) Run(ctx context.Context) error {
	if err := s.loadSecret(ctx); err != nil {
		return err
	}
	if err := s.bootstrap(ctx); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		s.log.Info("serving HTTP", "addr", s.cfg.Listener.Addr().String())
		if err := srv.Serve(s.cfg.Listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("manager: serve: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		s.log.Info("stopping HTTP")
		// A fresh, bounded context: the run context is already done, and
		// in-flight requests deserve a moment to finish.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(sctx)
		s.log.Info("HTTP stopped")
		return err
	})
	g.Go(func() error { return s.campaign(gctx) })
	g.Go(func() error { return s.sampleClients(gctx) })
	err := g.Wait()
	s.closeEngines()
	s.closeNodeClients()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// bootstrap creates the first admin when there are no users yet, writes its
// token and password to files only the owner can read, and logs where they
// are (never what they are).
func (s *Server) bootstrap(ctx context.Context) error {
	names, err := s.store.Users().Names(ctx)
	if err != nil {
		return fmt.Errorf("manager: list users: %w", err)
	}
	if len(names) > 0 {
		return nil
	}
	password := randomString(18)
	hash, err := s.hashPassword(password)
	if err != nil {
		return err
	}
	err = s.store.User("admin").Create(ctx, &meta.User{Name: "admin", Role: meta.Admin, PasswordHash: hash, CreatedAt: time.Now().UTC()})
	if errors.Is(err, coord.ErrExists) {
		return nil // another server bootstrapped at the same moment
	}
	if err != nil {
		return fmt.Errorf("manager: create admin: %w", err)
	}
	_, tok, err := s.newToken(ctx, "admin", 0)
	if err != nil {
		return fmt.Errorf("manager: create admin token: %w", err)
	}
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	tokPath, pwPath := AdminTokenPath(s.cfg.DataDir), s.cfg.DataDir+"/admin.password"
	if err := writeSecretFile(tokPath, tok); err != nil {
		return err
	}
	if err := writeSecretFile(pwPath, password); err != nil {
		return err
	}
	s.log.Info("created the admin user; its API token and console password are in files readable only by you",
		"user", "admin", "token_file", tokPath, "password_file", pwPath)
	return nil
}

// AdminTokenPath is where the first server writes the admin's API token.
func AdminTokenPath(dataDir string) string { return dataDir + "/admin.token" }

func writeSecretFile(path, content string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("manager: write %s: %w", path, err)
	}
	if err := f.Chmod(0o600); err != nil { // an older file may have looser bits
		f.Close()
		return fmt.Errorf("manager: chmod %s: %w", path, err)
	}
	if _, err := f.WriteString(content + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("manager: write %s: %w", path, err)
	}
	return f.Close()
}

// leadership tracks whether this server leads and where the leader is.
type leadership struct {
	mu       sync.Mutex
	isLeader bool
	leader   *meta.Leader // the current leader record, if known
}

func (l *leadership) set(isLeader bool, rec *meta.Leader) {
	l.mu.Lock()
	l.isLeader, l.leader = isLeader, rec
	l.mu.Unlock()
}

func (l *leadership) get() (bool, *meta.Leader) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.isLeader, l.leader
}

// IsLeader reports whether this server currently leads.
func (s *Server) IsLeader() bool {
	ok, _ := s.lead.get()
	return ok
}

// version is reported by /healthz.
func version() string { return buildinfo.Version }
