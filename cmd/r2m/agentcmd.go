package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/r2m-go/r2m/agent"
	"github.com/r2m-go/r2m/coord"
)

type agentFlags struct {
	host, bind, dataDir, redisServer, datacenter string
	maxInstances                                 int
}

func (f *agentFlags) register(cmd *cobra.Command) {
	host, _ := os.Hostname()
	fl := cmd.Flags()
	fl.StringVar(&f.host, "host", host, "this host's name in the coordinator (several agents on one machine need different names)")
	fl.StringVar(&f.bind, "bind", "127.0.0.1", "address the Redis instances bind to and advertise")
	fl.StringVar(&f.redisServer, "redis-server", "", "path of redis-server (default: from PATH)")
	fl.StringVar(&f.datacenter, "datacenter", "", "datacenter label of this host")
	fl.IntVar(&f.maxInstances, "max-instances", 0, "most instances this host takes (0 = no limit)")
}

func newAgentCommand() *cobra.Command {
	var (
		f           agentFlags
		coordinator string
		logLevel    string
	)
	cmd := &cobra.Command{
		Use:   "agent --coordinator URL",
		Short: "Run the host agent: supervise redis-server processes to match the desired state",
		Long: "Run the host agent. It registers this host, runs the redis-server instances the control plane\n" +
			"assigns to it, restarts crashed ones, and reports what runs. Its instances keep running when the\n" +
			"agent stops, and a restarted agent adopts them.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if coordinator == "" {
				return errors.New("--coordinator is required (the URL r2m server or r2m up prints)")
			}
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			c, err := coord.OpenConfig(cmd.Context(), coord.Config{URL: coordinator, Logger: log})
			if err != nil {
				return err
			}
			a, err := agent.New(agent.Options{
				Host: f.host, BindAddr: f.bind, DataDir: f.dataDir, RedisServerPath: f.redisServer,
				Coordinator: c, Logger: log, Datacenter: f.datacenter, MaxInstances: f.maxInstances,
			})
			if err != nil {
				return errors.Join(err, c.Close())
			}
			fmt.Fprintf(cmd.OutOrStdout(), "r2m agent %s running instances from %s\n", f.host, coord.Redact(coordinator))
			return errors.Join(a.Run(cmd.Context()), c.Close())
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&f.dataDir, "data-dir", filepath.Join(defaultDataDir(), "agent"), "directory for the instances' configs and data")
	cmd.Flags().StringVar(&coordinator, "coordinator", "", "coordinator URL")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}
