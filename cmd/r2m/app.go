package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/r2m-go/r2m/api"
)

func newAppCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "app", Short: "Apps: the names clients use, and their live client config"}
	f := addAPIFlags(cmd)

	list := &cobra.Command{
		Use: "list", Short: "List apps", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			apps, err := c.Apps(cmd.Context())
			if err != nil {
				return err
			}
			return f.printer(cmd).print(apps, []string{"APP", "CLUSTER", "CLIENTS", "CONFIG"}, func(add func(...any)) {
				for _, a := range apps {
					add(a.Name, a.ActiveCluster, a.Clients, fmt.Sprintf("v%d", a.ConfigVersion))
				}
			})
		},
	}

	show := &cobra.Command{
		Use: "show APP", Short: "Show an app and its client config", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			a, err := c.App(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return f.printer(cmd).print(a, []string{"FIELD", "VALUE"}, func(add func(...any)) {
				add("name", a.Name)
				add("active cluster", a.ActiveCluster)
				add("standby clusters", strings.Join(a.StandbyClusters, ","))
				add("clients", a.Clients)
				add("config version", a.ConfigVersion)
				for _, kv := range configRows(a.Config) {
					add("config."+kv[0], kv[1])
				}
			})
		},
	}

	var cfg api.ClientConfig
	config := &cobra.Command{
		Use:   "config APP",
		Short: "Set the client config of an app; its clients apply it live",
		Long: "Set the client config of an app. Only the flags you give change; the others keep their value.\n" +
			"Every client of the app picks the new config up through its watch, without a restart.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			cur, err := c.App(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			next := cur.Config
			fl := cmd.Flags()
			changed := false
			apply := func(name string, set func()) {
				if fl.Changed(name) {
					set()
					changed = true
				}
			}
			apply("pool-size", func() { next.PoolSize = cfg.PoolSize })
			apply("dial-timeout", func() { next.DialTimeout = cfg.DialTimeout })
			apply("read-timeout", func() { next.ReadTimeout = cfg.ReadTimeout })
			apply("write-timeout", func() { next.WriteTimeout = cfg.WriteTimeout })
			apply("max-retries", func() { next.MaxRetries = cfg.MaxRetries })
			apply("read-from-replica", func() { next.ReadFromReplica = cfg.ReadFromReplica })
			apply("client-cache", func() { next.ClientCache = cfg.ClientCache })
			apply("client-cache-bytes", func() { next.ClientCacheBytes = cfg.ClientCacheBytes })
			apply("heartbeat-interval", func() { next.HeartbeatInterval = cfg.HeartbeatInterval })
			if !changed {
				return fmt.Errorf("nothing to change: give at least one of the config flags (see r2m app config --help)")
			}
			a, err := c.SetAppConfig(cmd.Context(), args[0], next)
			if err != nil {
				return err
			}
			return f.printer(cmd).print(a, []string{"APP", "CONFIG VERSION"}, func(add func(...any)) {
				add(a.Name, a.ConfigVersion)
			})
		},
	}
	fl := config.Flags()
	fl.IntVar(&cfg.PoolSize, "pool-size", 0, "connections per node for blocking commands (0 = default)")
	fl.StringVar(&cfg.DialTimeout, "dial-timeout", "", "dial timeout, such as 2s")
	fl.StringVar(&cfg.ReadTimeout, "read-timeout", "", "read timeout")
	fl.StringVar(&cfg.WriteTimeout, "write-timeout", "", "write timeout")
	fl.IntVar(&cfg.MaxRetries, "max-retries", 0, "retries of read-only commands (-1 = none)")
	fl.BoolVar(&cfg.ReadFromReplica, "read-from-replica", false, "send read-only commands to replicas")
	fl.BoolVar(&cfg.ClientCache, "client-cache", false, "server-assisted client-side caching")
	fl.Int64Var(&cfg.ClientCacheBytes, "client-cache-bytes", 0, "client-side cache size per connection")
	fl.StringVar(&cfg.HeartbeatInterval, "heartbeat-interval", "", "how often clients refresh their registration, such as 60s")
	cmd.AddCommand(list, show, config)
	return cmd
}

func configRows(c api.ClientConfig) [][2]string {
	d := func(s string) string {
		if s == "" {
			return "(default)"
		}
		return s
	}
	n := func(v int64) string {
		if v == 0 {
			return "(default)"
		}
		return fmt.Sprint(v)
	}
	return [][2]string{
		{"pool_size", n(int64(c.PoolSize))}, {"dial_timeout", d(c.DialTimeout)}, {"read_timeout", d(c.ReadTimeout)},
		{"write_timeout", d(c.WriteTimeout)}, {"max_retries", n(int64(c.MaxRetries))},
		{"read_from_replica", fmt.Sprint(c.ReadFromReplica)}, {"client_cache", fmt.Sprint(c.ClientCache)},
		{"client_cache_bytes", n(c.ClientCacheBytes)}, {"heartbeat_interval", d(c.HeartbeatInterval)},
	}
}

func newClientsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "clients APP",
		Short: "List the live clients of an app with leak and zombie flags",
		Long: "List the live clients of an app: host, pid, name, creation site, age and heartbeat,\n" +
			"with flags for suspected leaks (one process holding many clients, a count that only rises)\n" +
			"and zombies (heartbeat overdue, or no connections, while the registration lives).",
		Args: cobra.ExactArgs(1),
	}
	f := addAPIFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := f.client()
		if err != nil {
			return err
		}
		ac, err := c.AppClients(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		p := f.printer(cmd)
		if p.format == "json" {
			return p.print(ac, nil, nil)
		}
		if err := p.print(ac, []string{"HOST", "PID", "NAME", "SITE", "AGE", "HEARTBEAT", "CONNS", "EPOCH", "FLAGS"}, func(add func(...any)) {
			for _, cl := range ac.Clients {
				add(cl.Host, cl.PID, cl.Name, cl.CreationSite, cl.Age, cl.HeartbeatAge+" ago", cl.OpenConns, cl.TopologyEpoch, strings.Join(cl.Flags, ","))
			}
		}); err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "\n%d clients of %s\n", ac.Count, ac.App)
		for _, fl := range ac.Flags {
			fmt.Fprintf(w, "%s: %s\n", strings.ToUpper(fl.Code), fl.Message)
		}
		return nil
	}
	return cmd
}
