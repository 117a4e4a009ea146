package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/r2m-go/r2m/coord"
	_ "github.com/r2m-go/r2m/coord/install"
	"github.com/r2m-go/r2m/internal/embedetcd"
	"github.com/r2m-go/r2m/manager"
	"github.com/r2m-go/r2m/meta"
	"github.com/r2m-go/r2m/monitor"
	"github.com/r2m-go/r2m/web"
)

// serverFlags are shared by "r2m server" and "r2m up".
type serverFlags struct {
	coordinator   string
	dataDir       string
	http          string
	etcdAddr      string
	logLevel      string
	publicMetrics bool
}

func (f *serverFlags) register(cmd *cobra.Command, defaultHTTP string) {
	fl := cmd.Flags()
	fl.StringVar(&f.coordinator, "coordinator", "", "coordinator URL (zk://host:2181/r2m or etcd://host:2379/r2m); empty starts an embedded etcd in --data-dir")
	fl.StringVar(&f.dataDir, "data-dir", defaultDataDir(), "directory for the embedded etcd, admin.token and other local state")
	fl.StringVar(&f.http, "http", defaultHTTP, "HOST:PORT the HTTP API and console listen on")
	fl.StringVar(&f.etcdAddr, "etcd-addr", "127.0.0.1:2379", "client address of the embedded etcd (only without --coordinator)")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fl.BoolVar(&f.publicMetrics, "public-metrics", false, "serve /metrics without authentication (for Prometheus without a token)")
}

func defaultDataDir() string {
	if d, err := os.UserHomeDir(); err == nil {
		return filepath.Join(d, ".r2m")
	}
	return ".r2m"
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// platform is what "r2m server" and "r2m up" run: an optional embedded etcd,
// a coordinator session and the manager server, stopped in reverse order.
type platform struct {
	etcd     *embedetcd.Server
	coord    *coord.Coordinator
	monitor  *monitor.Monitor
	server   *manager.Server
	listener net.Listener
	url      string // the coordinator URL clients should use
}

// startPlatform starts the pieces; on error it stops what it started.
func startPlatform(ctx context.Context, f *serverFlags, log *slog.Logger, extra manager.Config) (_ *platform, err error) {
	p := &platform{url: f.coordinator}
	defer func() {
		if err != nil {
			p.stop(log)
		}
	}()
	if err := os.MkdirAll(f.dataDir, 0o700); err != nil {
		return nil, err
	}
	if p.url == "" {
		p.etcd, err = embedetcd.Start(embedetcd.Config{Dir: filepath.Join(f.dataDir, "etcd"), ClientAddr: f.etcdAddr, Logger: log})
		if err != nil {
			return nil, err
		}
		p.url = p.etcd.URL("/r2m")
	}
	p.coord, err = coord.OpenConfig(ctx, coord.Config{URL: p.url, Logger: log})
	if err != nil {
		return nil, err
	}
	p.listener, err = net.Listen("tcp", f.http)
	if err != nil {
		return nil, fmt.Errorf("--http %s: %w", f.http, err)
	}
	cfg := extra
	cfg.Coordinator, cfg.Listener, cfg.DataDir, cfg.Logger = p.coord, p.listener, f.dataDir, log
	cfg.Console = web.New(web.Options{Logger: log})
	p.monitor, err = monitor.New(monitor.Config{Store: meta.NewStore(p.coord), DataDir: filepath.Join(f.dataDir, "monitor"), ServerID: p.listener.Addr().String(), Logger: log})
	if err != nil {
		p.listener.Close()
		return nil, err
	}
	cfg.Monitor, cfg.PublicMetrics = p.monitor, f.publicMetrics
	p.server, err = manager.New(cfg)
	if err != nil {
		p.listener.Close()
		return nil, err
	}
	return p, nil
}

// stop closes the coordinator session and the embedded etcd. The server
// itself stops when its Run context ends.
func (p *platform) stop(log *slog.Logger) error {
	var errs []error
	if p.monitor != nil {
		errs = append(errs, p.monitor.Close())
	}
	if p.coord != nil {
		errs = append(errs, p.coord.Close())
	}
	if p.etcd != nil {
		p.etcd.Close()
	}
	err := errors.Join(errs...)
	if err != nil {
		log.Warn("shutdown", "err", err)
	}
	return err
}

// consoleURL turns a listen address into a URL to print.
func consoleURL(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func newServerCommand() *cobra.Command {
	var f serverFlags
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane: HTTP API, console, leader election and operations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(f.logLevel)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			p, err := startPlatform(ctx, &f, log, manager.Config{})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "r2m server %s listening on %s (coordinator %s)\n",
				p.server.ID(), consoleURL(p.listener.Addr().String()), coord.Redact(p.url))
			runErr := p.server.Run(ctx)
			return errors.Join(runErr, p.stop(log))
		},
	}
	f.register(cmd, "127.0.0.1:8080")
	return cmd
}
