package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/meta"
	"github.com/r2m-go/r2m/migrate"
)

// migrateSource is the --from / --from-cluster pair.
type migrateSource struct {
	from, fromCluster string
}

func (s *migrateSource) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.from, "from", "", "source Redis: redis://[user:pass@]host:port (any node of a cluster will do)")
	cmd.Flags().StringVar(&s.fromCluster, "from-cluster", "", "source: a cluster registered in R2M")
}

func (s *migrateSource) check() error {
	if (s.from == "") == (s.fromCluster == "") {
		return errors.New("give exactly one of --from redis://host:port and --from-cluster NAME")
	}
	return nil
}

// splitRedisURL returns the URL without its password, and the password.
func splitRedisURL(raw string) (clean, password string, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "redis" || u.Host == "" {
		return "", "", fmt.Errorf("--from %q: want redis://[user:pass@]host:port", raw)
	}
	if u.User != nil {
		password, _ = u.User.Password()
		if name := u.User.Username(); name != "" {
			u.User = url.User(name)
		} else {
			u.User = nil
		}
	}
	return u.String(), password, nil
}

// urlEndpoint turns redis://[user:pass@]host:port into an endpoint.
func urlEndpoint(raw string) (migrate.Endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "redis" || u.Host == "" {
		return migrate.Endpoint{}, fmt.Errorf("%q: want redis://[user:pass@]host:port", raw)
	}
	ep := migrate.Endpoint{Addrs: []string{u.Host}}
	if u.User != nil {
		ep.Username = u.User.Username()
		ep.Password, _ = u.User.Password()
	}
	return ep, nil
}

// clusterEndpoint reads a registered cluster's nodes and password through
// the API (the password needs the admin role).
func clusterEndpoint(ctx context.Context, c *api.Client, name string) (migrate.Endpoint, error) {
	d, err := c.Cluster(ctx, name)
	if err != nil {
		return migrate.Endpoint{}, err
	}
	ep := migrate.Endpoint{}
	for _, n := range d.Nodes {
		if n.Role == "master" {
			ep.Addrs = append([]string{n.Addr}, ep.Addrs...)
		} else {
			ep.Addrs = append(ep.Addrs, n.Addr)
		}
	}
	if len(ep.Addrs) == 0 {
		return ep, fmt.Errorf("cluster %s has no known node", name)
	}
	cred, err := c.Credentials(ctx, name)
	if err != nil {
		return ep, fmt.Errorf("cluster %s: reading its password (admin only): %w", name, err)
	}
	ep.Password = cred.Password
	return ep, nil
}

func newMigrateCommand() *cobra.Command {
	var (
		src      migrateSource
		to, link string
		mode     string
		dbMap    []string
		bigBytes int
		grace    string
		until    string
		o        opFlags
	)
	cmd := &cobra.Command{
		Use:   "migrate --from redis://[user:pass@]host:port | --from-cluster NAME --to CLUSTER",
		Short: "Copy a Redis or a cluster into an R2M cluster online, then stream its writes",
		Long: `migrate starts a migrate operation: the leading r2m server connects to every
source master as a replica, copies its RDB into the target cluster and then
applies its write stream until the target has caught up (--until caught-up,
the default) or until the operation is cancelled (--until cancel). The
operation can be paused, resumed and throttled with r2m op; a resume continues
with PSYNC. A password in --from is stored apart (PUT
/api/v1/syncs/{link}/credentials) and never appears in the operation.

The source's repl-backlog-size is checked first: when it cannot hold the writes
of a 10-minute link outage, a WARNING says so.`,
		Args: cobra.NoArgs,
	}
	f := addAPIFlags(cmd)
	src.register(cmd)
	cmd.Flags().StringVar(&to, "to", "", "target cluster (registered in R2M)")
	cmd.Flags().StringVar(&link, "link", "", "link name (default: derived from the target)")
	cmd.Flags().StringVar(&mode, "mode", "", "at-least-once (default) or exactly-once (per-slot checkpoints on the target)")
	cmd.Flags().StringSliceVar(&dbMap, "db-map", nil, "merge source databases into 0: --db-map 3=0 (repeatable)")
	cmd.Flags().IntVar(&bigBytes, "big-value-bytes", 0, "write values above this size in pieces (default 8 MiB)")
	cmd.Flags().StringVar(&grace, "ttl-grace", "", "TTL grace for keys expiring while the copy catches up (default 10m)")
	cmd.Flags().StringVar(&until, "until", "", "caught-up (default) or cancel")
	o.register(cmd, true)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := src.check(); err != nil {
			return err
		}
		if to == "" {
			return errors.New("--to CLUSTER is required")
		}
		c, err := f.client()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		p := api.MigrateParams{FromCluster: src.fromCluster, Link: link, Mode: mode, BigValueBytes: bigBytes, TTLGrace: grace, Until: until}
		for _, m := range dbMap {
			from, target, ok := strings.Cut(m, "=")
			if _, err := strconv.Atoi(from); !ok || err != nil || target != "0" {
				return fmt.Errorf("--db-map %q: want SOURCE_DB=0", m)
			}
			if p.DBMap == nil {
				p.DBMap = map[string]int{}
			}
			p.DBMap[from] = 0
		}
		if src.from != "" {
			clean, pw, err := splitRedisURL(src.from)
			if err != nil {
				return err
			}
			p.From = clean
			if p.Link == "" {
				p.Link = "mig-" + to + "-" + strconv.FormatInt(time.Now().Unix(), 36)
			}
			if pw != "" {
				if err := c.SetSyncCredentials(ctx, p.Link, pw); err != nil {
					return fmt.Errorf("storing the source password: %w", err)
				}
			}
		}
		params, err := toParams(p)
		if err != nil {
			return err
		}
		if o.throttle > 0 {
			params["throttle"] = o.throttle
		}
		_, dry, err := c.StartOp(ctx, to, "migrate", params, true)
		if err != nil {
			return err
		}
		for _, l := range strings.Split(dry.PlanText, "\n") {
			if strings.HasPrefix(l, "WARNING") {
				fmt.Fprintln(cmd.ErrOrStderr(), l)
			}
		}
		if o.dryRun {
			return followOperation(cmd, f, &o, c, nil, dry, nil)
		}
		op, _, err := c.StartOp(ctx, to, "migrate", params, false)
		return followOperation(cmd, f, &o, c, op, nil, err)
	}
	cmd.AddCommand(newMigrateStatusCommand(f), newMigrateVerifyCommand(f), newMigrateRunCommand(), newMigrateDeleteCommand(f),
		newMigrateCleanupCommand())
	return cmd
}

func newMigrateCleanupCommand() *cobra.Command {
	var toURL, link string
	cmd := &cobra.Command{
		Use:   "cleanup --to-url redis://… --link NAME",
		Short: "Remove the exactly-once checkpoint keys a `migrate run` worker left on its target",
		Long: "cleanup deletes the __r2m_ck:* keys of one link from every master of the target, and nothing else.\n" +
			"Run it once the worker's link is finished for good: a worker resumed afterwards would apply again what it\n" +
			"applied after its last saved position. Links of the control plane are retired with `migrate delete`.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dst, err := urlEndpoint(toURL)
			if err != nil {
				return fmt.Errorf("--to-url %w", err)
			}
			if err := meta.ValidateName("link", link); err != nil {
				return fmt.Errorf("--link: %w", err)
			}
			n, err := migrate.RemoveCheckpoints(cmd.Context(), dst, link)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %d checkpoint keys of link %s\n", n, link)
			return nil
		},
	}
	cmd.Flags().StringVar(&toURL, "to-url", "", "target cluster: redis://[user:pass@]host:port")
	cmd.Flags().StringVar(&link, "link", "local", "the worker's link name (its --link)")
	return cmd
}

func newMigrateDeleteCommand(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete LINK",
		Short: "Retire a link that no longer runs: its positions, password, spool and checkpoint keys go",
		Long: "Retire a sync link for good. A stopped or blocked link is kept so that a migrate with the same --link\n" +
			"resumes it; delete it once it will not be resumed. Its recorded positions, stored source password and\n" +
			"spool go, and for an exactly-once link its __r2m_ck:* checkpoint keys are deleted from the target.\n" +
			"A running link is refused: cancel its operation first. The migrated data stays.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			d, err := c.DeleteSync(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "link %s deleted", d.Link)
			if d.CheckpointKeysRemoved > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "; %d checkpoint keys removed from the target", d.CheckpointKeysRemoved)
			}
			fmt.Fprintln(cmd.OutOrStdout())
			return nil
		},
	}
}

func toParams(p api.MigrateParams) (map[string]any, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

func newMigrateStatusCommand(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use: "status [LINK]", Short: "Show sync links: phase, applied offset and lag per source shard", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			var links []api.SyncLink
			if len(args) == 1 {
				l, err := c.Sync(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				links = []api.SyncLink{*l}
			} else if links, err = c.Syncs(cmd.Context()); err != nil {
				return err
			}
			return f.printer(cmd).print(links, []string{"LINK", "SOURCE", "TARGET", "STATE", "SHARD", "PHASE", "RDB KEYS", "APPLIED", "LAG BYTES", "LAG MS", "FULL SYNCS"}, func(add func(...any)) {
				for _, l := range links {
					if len(l.Shards) == 0 {
						add(l.ID, l.Source, l.Target, l.State, "", "", "", "", "", "", "")
					}
					for _, s := range l.Shards {
						add(l.ID, l.Source, l.Target, l.State, s.Shard, s.Phase, s.RDBKeys, s.Applied, s.LagBytes, s.LagMs, s.FullSyncs)
					}
				}
			})
		},
	}
}

func newMigrateVerifyCommand(f *apiFlags) *cobra.Command {
	var (
		src    migrateSource
		to     string
		toURL  string
		sample int
		tol    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "verify --from redis://… | --from-cluster NAME --to CLUSTER | --to-url redis://…",
		Short: "Compare source and target key by key (content and TTL), in full or sampled",
		Long: `verify reads every source key (SCAN of every source master) or --sample N random
ones, and compares type, content and expiry (within --ttl-tolerance) with the
target. It runs from this machine, which must reach both. Registered clusters
are resolved through the API (their passwords need the admin role). It exits
non-zero when a key differs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := src.check(); err != nil {
				return err
			}
			if (to == "") == (toURL == "") {
				return errors.New("give exactly one of --to CLUSTER and --to-url redis://host:port")
			}
			ctx := cmd.Context()
			var c *api.Client
			client := func() (*api.Client, error) {
				if c != nil {
					return c, nil
				}
				var err error
				c, err = f.client()
				return c, err
			}
			var opts migrate.VerifyOptions
			var err error
			if src.from != "" {
				opts.Source, err = urlEndpoint(src.from)
			} else if cl, cerr := client(); cerr != nil {
				err = cerr
			} else {
				opts.Source, err = clusterEndpoint(ctx, cl, src.fromCluster)
			}
			if err != nil {
				return err
			}
			if toURL != "" {
				opts.Target, err = urlEndpoint(toURL)
			} else if cl, cerr := client(); cerr != nil {
				err = cerr
			} else {
				opts.Target, err = clusterEndpoint(ctx, cl, to)
			}
			if err != nil {
				return err
			}
			opts.Sample, opts.TTLTolerance = sample, tol
			rep, verr := migrate.Verify(ctx, opts)
			if rep == nil {
				return verr
			}
			if perr := printVerify(cmd.OutOrStdout(), f, cmd, rep); perr != nil {
				return perr
			}
			return verr
		},
	}
	src.register(cmd)
	cmd.Flags().StringVar(&to, "to", "", "target cluster (registered in R2M)")
	cmd.Flags().StringVar(&toURL, "to-url", "", "target cluster by address: redis://[user:pass@]host:port")
	cmd.Flags().IntVar(&sample, "sample", 0, "compare N random keys instead of every key")
	cmd.Flags().DurationVar(&tol, "ttl-tolerance", time.Second, "largest accepted expiry difference")
	return cmd
}

func printVerify(w io.Writer, f *apiFlags, cmd *cobra.Command, rep *migrate.VerifyReport) error {
	if f.output == "json" {
		return f.printer(cmd).print(rep, nil, nil)
	}
	fmt.Fprintf(w, "checked %d keys: %d missing, %d with other content, %d with another expiry (%d expired meanwhile); source %d keys, target %d\n",
		rep.Checked, rep.Missing, rep.Different, rep.TTL, rep.Expired, rep.SourceKeys, rep.TargetKeys)
	for _, d := range rep.Diffs {
		fmt.Fprintf(w, "  %s %q %s\n", d.Reason, d.Key, d.Detail)
	}
	if rep.OK() {
		fmt.Fprintln(w, "source and target are equal")
	}
	return nil
}

// newMigrateRunCommand runs a link in this process, without a server: the
// worker form of a link (used by the benchmark and for one-off copies).
func newMigrateRunCommand() *cobra.Command {
	var (
		from, toURL, spool, mode string
		rate                     int
		statsEvery               time.Duration
		id                       string
		caughtUp                 bool
	)
	cmd := &cobra.Command{
		Use:   "run --from redis://… --to-url redis://… --spool DIR",
		Short: "Run a link in this process (a worker), until SIGTERM or, with --until-caught-up, until the target has caught up",
		Long: `run is the link worker without the control plane: it keeps its spool and its
per-shard state (for PSYNC resume, and exactly-once checkpoints) in --spool, so
a worker killed and started again with the same flags resumes where it stopped.
Stats are printed as JSON lines to stderr every --stats-every.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			srcEP, err := urlEndpoint(from)
			if err != nil {
				return fmt.Errorf("--from %w", err)
			}
			dstEP, err := urlEndpoint(toURL)
			if err != nil {
				return fmt.Errorf("--to-url %w", err)
			}
			if spool == "" {
				return errors.New("--spool DIR is required")
			}
			state, err := migrate.NewFileState(filepath.Join(spool, "state"))
			if err != nil {
				return err
			}
			rep, err := migrate.CheckSource(cmd.Context(), srcEP, 0)
			if err != nil {
				return err
			}
			for _, w := range rep.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "WARNING:", w)
			}
			errw := cmd.ErrOrStderr()
			l, err := migrate.New(migrate.Options{
				ID: id, Source: srcEP, Target: dstEP, SpoolDir: filepath.Join(spool, "data"), State: state,
				Mode: migrate.Mode(mode), RateLimit: rate, ProgressEvery: statsEvery,
				Logger: slog.New(slog.NewTextHandler(errw, &slog.HandlerOptions{Level: slog.LevelInfo})),
				Progress: func(st migrate.Stats) {
					b, _ := json.Marshal(st)
					fmt.Fprintln(errw, string(b))
				},
			})
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			if caughtUp {
				lctx, cancel := context.WithCancel(ctx)
				defer cancel()
				done := make(chan error, 1)
				go func() { done <- l.Run(lctx) }()
				werr := l.WaitCaughtUp(lctx)
				cancel()
				if rerr := <-done; rerr != nil {
					return rerr
				}
				if werr != nil && ctx.Err() == nil {
					return werr
				}
				fmt.Fprintln(cmd.OutOrStdout(), "caught up")
				return nil
			}
			return l.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "source: redis://[user:pass@]host:port")
	cmd.Flags().StringVar(&toURL, "to-url", "", "target cluster: redis://[user:pass@]host:port")
	cmd.Flags().StringVar(&spool, "spool", "", "directory for the spool and the link state")
	cmd.Flags().StringVar(&id, "link", "local", "link name (kept in checkpoint keys)")
	cmd.Flags().StringVar(&mode, "mode", "", "at-least-once (default) or exactly-once")
	cmd.Flags().IntVar(&rate, "rate", 0, "cap commands per second to the target (0 = none)")
	cmd.Flags().DurationVar(&statsEvery, "stats-every", 10*time.Second, "how often to print stats")
	cmd.Flags().BoolVar(&caughtUp, "until-caught-up", false, "stop once the target has caught up")
	return cmd
}
