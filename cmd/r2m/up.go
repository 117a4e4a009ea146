package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/r2m-go/r2m/agent"
	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/manager"
)

// demoCluster is the cluster and app "r2m up" creates on first run.
const demoCluster = "demo"

func newUpCommand() *cobra.Command {
	var (
		f        serverFlags
		af       agentFlags
		demo     bool
		portBase int
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the whole platform on this machine: embedded etcd, server, agent and a demo cluster",
		Long: "Run R2M on one machine. Without --coordinator it starts an embedded etcd in --data-dir. It runs\n" +
			"the server and an agent, and on first run creates the cluster and app \"demo\" (3 masters x 1\n" +
			"replica). Ctrl-C stops everything it started, Redis included; the next r2m up brings the same\n" +
			"cluster back with its data.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			start := time.Now()
			log, err := newLogger(f.logLevel)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			p, err := startPlatform(ctx, &f, log, manager.Config{PortBase: portBase})
			if err != nil {
				return err
			}
			ag, err := agent.New(agent.Options{
				Host: af.host, BindAddr: af.bind, DataDir: filepath.Join(f.dataDir, "agent"), RedisServerPath: af.redisServer,
				Coordinator: p.coord, Logger: log, StopOnExit: true,
			})
			if err != nil {
				return errors.Join(err, p.stop(log))
			}
			g, gctx := errgroup.WithContext(ctx)
			g.Go(func() error { return p.server.Run(gctx) })
			g.Go(func() error { return ag.Run(gctx) })
			g.Go(func() error {
				err := upReady(gctx, cmd.OutOrStdout(), p, &f, demo, start)
				if err != nil && gctx.Err() == nil {
					return err
				}
				return nil
			})
			err = g.Wait()
			if errors.Is(err, context.Canceled) {
				err = nil
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "r2m up: stopped")
			return errors.Join(err, p.stop(log))
		},
	}
	f.register(cmd, "127.0.0.1:8080")
	cmd.Flags().BoolVar(&demo, "demo", true, "create the demo cluster and app on first run")
	cmd.Flags().IntVar(&portBase, "port-base", 7000, "first port for Redis instances")
	cmd.Flags().StringVar(&af.host, "host", "local", "the agent's host name")
	cmd.Flags().StringVar(&af.bind, "bind", "127.0.0.1", "address the Redis instances bind to")
	cmd.Flags().StringVar(&af.redisServer, "redis-server", "", "path of redis-server (default: from PATH)")
	return cmd
}

// upReady waits for the platform to serve, creates the demo cluster on
// first run (or waits for it to come back), and prints how to use it.
func upReady(ctx context.Context, out io.Writer, p *platform, f *serverFlags, demo bool, start time.Time) error {
	base := consoleURL(p.listener.Addr().String())
	tokPath := manager.AdminTokenPath(f.dataDir)
	var c *api.Client
	for {
		if b, err := os.ReadFile(tokPath); err == nil && p.server.IsLeader() {
			c, err = api.NewClient(base, strings.TrimSpace(string(b)), nil)
			if err != nil {
				return err
			}
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	defer c.CloseIdleConnections()
	if demo {
		if err := ensureDemo(ctx, c); err != nil {
			return fmt.Errorf("demo cluster: %w", err)
		}
	}
	fmt.Fprintf(out, `
R2M is up (ready in %.1fs)
  console:      %s
  coordinator:  %s
  admin token:  %s
  CLI:          r2m cluster list    (uses that token)
`, time.Since(start).Seconds(), base, p.url, tokPath)
	if demo {
		fmt.Fprintf(out, `
Use the demo app from Go (import "github.com/r2m-go/r2m/client"):

	c, err := client.New(ctx, client.Options{Coordinator: %q, App: "demo", Name: "example"})
	if err != nil { log.Fatal(err) }
	defer c.Close()
	err = c.Do(ctx, c.B().Set().Key("hello").Value("world").Build()).Error()
	v, err := c.Do(ctx, c.B().Get().Key("hello").Build()).ToString()

`, p.url)
	}
	fmt.Fprintln(out, "Press Ctrl-C to stop everything.")
	return nil
}

// ensureDemo creates the demo cluster if it does not exist, or waits until
// the existing one is healthy again after a restart.
func ensureDemo(ctx context.Context, c *api.Client) error {
	if _, err := c.Cluster(ctx, demoCluster); err == nil {
		for {
			res, err := c.Check(ctx, demoCluster)
			if err == nil && res.Clean {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	} else if !api.IsStatus(err, 404) {
		return err
	}
	op, _, err := c.CreateCluster(ctx, api.CreateParams{Name: demoCluster, Masters: 3, Replicas: 1, MaxMemory: "128mb", NodeTimeout: "5s"}, false)
	if err != nil {
		return err
	}
	final, err := c.WaitOp(ctx, op.ID, 100*time.Millisecond, nil)
	if err != nil {
		return err
	}
	return opOutcome(final)
}
