package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/r2m-go/r2m/api"
)

// opFlags are the flags every operation command takes.
type opFlags struct {
	dryRun   bool
	wait     bool
	throttle int
}

func (o *opFlags) register(cmd *cobra.Command, throttle bool) {
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "print the plan and change nothing")
	cmd.Flags().BoolVar(&o.wait, "wait", false, "follow the operation to its end; exit non-zero unless it succeeded with a clean check")
	if throttle {
		cmd.Flags().IntVar(&o.throttle, "throttle", 0, "cap keys moved per second (0 = no cap; change it later with r2m op throttle)")
	}
}

// startOperation submits an operation (or its dry run) and prints the
// plan, the accepted operation, or its progress to the end.
func startOperation(cmd *cobra.Command, f *apiFlags, o *opFlags, clusterName, kind string, params map[string]any) error {
	c, err := f.client()
	if err != nil {
		return err
	}
	if o.throttle > 0 {
		params["throttle"] = o.throttle
	}
	op, dry, err := c.StartOp(cmd.Context(), clusterName, kind, params, o.dryRun)
	return followOperation(cmd, f, o, c, op, dry, err)
}

func followOperation(cmd *cobra.Command, f *apiFlags, o *opFlags, c *api.Client, op *api.Operation, dry *api.DryRun, err error) error {
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	if dry != nil {
		if f.output == "json" {
			return f.printer(cmd).print(dry, nil, nil)
		}
		fmt.Fprintf(w, "dry run: %s of %s\n%s\nsteps: %s\n", dry.Type, dry.Cluster, strings.TrimRight(dry.PlanText, "\n"), strings.Join(dry.Steps, ", "))
		return nil
	}
	if !o.wait {
		if f.output == "json" {
			return f.printer(cmd).print(op, nil, nil)
		}
		fmt.Fprintf(w, "operation %s accepted; follow it with: r2m op show --wait %s\n", op.ID, op.ID)
		return nil
	}
	final, werr := waitOp(cmd.Context(), c, op.ID, cmd.ErrOrStderr())
	if final != nil {
		if perr := printOp(cmd, f, final); perr != nil {
			return perr
		}
	}
	return werr
}

func newClusterCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Deploy, adopt, inspect and change Redis Clusters"}
	f := addAPIFlags(cmd)
	one := cobra.ExactArgs(1)

	list := &cobra.Command{
		Use: "list", Short: "List clusters", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			cs, err := c.Clusters(cmd.Context())
			if err != nil {
				return err
			}
			return f.printer(cmd).print(cs, []string{"NAME", "STATE", "HEALTH", "MASTERS", "REPLICAS", "DC", "EPOCH", "OPERATION"}, func(add func(...any)) {
				for _, x := range cs {
					add(x.Name, x.State, x.Health, x.Masters, x.Replicas, x.Datacenter, x.Epoch, x.Op)
				}
			})
		},
	}

	show := &cobra.Command{
		Use: "show NAME", Short: "Show a cluster and its nodes", Args: one,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			d, err := c.Cluster(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			p := f.printer(cmd)
			if p.format == "json" {
				return p.print(d, nil, nil)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s, health %s, %d masters, %d replicas, epoch %d, apps %s\n\n",
				d.Name, d.State, d.Health, d.Masters, d.Replicas, d.Epoch, strings.Join(d.Apps, ","))
			addrOf := map[string]string{}
			for _, n := range d.Nodes {
				addrOf[n.ID] = n.Addr
			}
			return p.print(d, []string{"ADDR", "ROLE", "MASTER", "HOST", "HEALTH", "SLOTS", "ID"}, func(add func(...any)) {
				for _, n := range d.Nodes {
					add(n.Addr, n.Role, addrOf[n.MasterID], n.Host, n.Health, strings.Join(n.Slots, ","), n.ID[:min(12, len(n.ID))])
				}
			})
		},
	}

	check := &cobra.Command{
		Use: "check NAME", Short: "Check a cluster now; exit 0 only when it is clean", Args: one,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			res, err := c.Check(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := f.printer(cmd).print(res, []string{"SEVERITY", "KIND", "NODE", "SLOTS", "DETAIL"}, func(add func(...any)) {
				for _, x := range res.Findings {
					add(x.Severity, x.Kind, x.Node, strings.Join(x.Slots, ","), x.Detail)
				}
			}); err != nil {
				return err
			}
			if !res.Clean {
				return fmt.Errorf("cluster %s is not clean", args[0])
			}
			if f.output != "json" {
				fmt.Fprintf(cmd.OutOrStdout(), "cluster %s is clean\n", args[0])
			}
			return nil
		},
	}

	credentials := &cobra.Command{
		Use: "credentials NAME", Short: "Print the cluster's Redis password alone (admin only; audited)", Args: one,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			cr, err := c.Credentials(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), cr.Password)
			return nil
		},
	}

	var ao opFlags
	var adopt api.AdoptParams
	var passwordStdin bool
	adoptCmd := &cobra.Command{
		Use: "adopt NAME --seed HOST:PORT", Short: "Register an existing Redis Cluster so its clients can use R2M", Args: one,
		RunE: func(cmd *cobra.Command, args []string) error {
			adopt.Name = args[0]
			if passwordStdin {
				pw, err := readSecret(cmd.InOrStdin())
				if err != nil {
					return err
				}
				adopt.Password = pw
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			op, dry, err := c.Adopt(cmd.Context(), adopt, ao.dryRun)
			return followOperation(cmd, f, &ao, c, op, dry, err)
		},
	}
	adoptCmd.Flags().StringVar(&adopt.Seed, "seed", "", "address of any node of the cluster")
	adoptCmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the cluster's password from standard input")
	adoptCmd.Flags().StringVar(&adopt.Datacenter, "datacenter", "", "datacenter label")
	adoptCmd.Flags().StringVar(&adopt.App, "app", "", "app to bind (default: the cluster's name; - for none)")
	ao.register(adoptCmd, false)

	var fo opFlags
	var force bool
	fix := &cobra.Command{
		Use: "fix NAME", Short: "Close open slots and cover uncovered slots", Args: one,
		RunE: func(cmd *cobra.Command, args []string) error {
			return startOperation(cmd, f, &fo, args[0], "fix", map[string]any{"force": force})
		},
	}
	fix.Flags().BoolVar(&force, "force", false, "fix even with unreachable masters (their slots are left alone and reported)")
	fo.register(fix, false)

	var ro opFlags
	var weights []string
	var threshold float64
	var excludeEmpty bool
	rebalance := &cobra.Command{
		Use: "rebalance NAME", Short: "Spread slots over the masters by weight", Args: one,
		RunE: func(cmd *cobra.Command, args []string) error {
			w := map[string]float64{}
			for _, kv := range weights {
				node, val, ok := strings.Cut(kv, "=")
				x, err := strconv.ParseFloat(val, 64)
				if !ok || err != nil || x < 0 {
					return fmt.Errorf("--weight %q: want NODE=WEIGHT with WEIGHT ≥ 0 (0 drains the node)", kv)
				}
				w[node] = x
			}
			return startOperation(cmd, f, &ro, args[0], "rebalance", map[string]any{"weights": w, "threshold_pct": threshold, "exclude_empty": excludeEmpty})
		},
	}
	rebalance.Flags().StringArrayVar(&weights, "weight", nil, "NODE=WEIGHT (node id or address); repeatable; weight 0 drains")
	rebalance.Flags().Float64Var(&threshold, "threshold", 0, "do nothing unless a master is this many percent off its share (default 2)")
	rebalance.Flags().BoolVar(&excludeEmpty, "exclude-empty", false, "leave masters without slots out")
	ro.register(rebalance, true)

	var so opFlags
	var from, to string
	var slots int
	reshard := &cobra.Command{
		Use: "reshard NAME --from NODE --to NODE --slots N", Short: "Move N slots from one master to another", Args: one,
		RunE: func(cmd *cobra.Command, args []string) error {
			return startOperation(cmd, f, &so, args[0], "reshard", map[string]any{"from": from, "to": to, "slots": slots})
		},
	}
	reshard.Flags().StringVar(&from, "from", "", "source master (id or address)")
	reshard.Flags().StringVar(&to, "to", "", "target master (id or address)")
	reshard.Flags().IntVar(&slots, "slots", 0, "number of slots to move")
	so.register(reshard, true)

	var fvo opFlags
	var fp api.FailoverParams
	failover := &cobra.Command{
		Use: "failover NAME (--replica NODE | --master NODE)", Short: "Promote a replica, verified to completion", Args: one,
		RunE: func(cmd *cobra.Command, args []string) error {
			return startOperation(cmd, f, &fvo, args[0], "failover", map[string]any{"replica": fp.Replica, "master": fp.Master, "mode": fp.Mode, "timeout": fp.Timeout})
		},
	}
	failover.Flags().StringVar(&fp.Replica, "replica", "", "the replica to promote")
	failover.Flags().StringVar(&fp.Master, "master", "", "the master to replace (its best replica is promoted)")
	failover.Flags().StringVar(&fp.Mode, "mode", "default", "default (no data loss), force (master down) or takeover (no vote; may lose writes)")
	failover.Flags().StringVar(&fp.Timeout, "timeout", "", "how long to wait for the failover (default 60s)")
	fvo.register(failover, false)

	var ano opFlags
	var an api.AddNodeParams
	addNode := &cobra.Command{
		Use: "add-node NAME --addr HOST:PORT [--replica-of NODE]", Short: "Add a running, empty node as a master or a replica", Args: one,
		RunE: func(cmd *cobra.Command, args []string) error {
			return startOperation(cmd, f, &ano, args[0], "add-node", map[string]any{"addr": an.Addr, "host": an.Host, "replica_of": an.ReplicaOf})
		},
	}
	addNode.Flags().StringVar(&an.Addr, "addr", "", "address of the new node")
	addNode.Flags().StringVar(&an.Host, "host", "", "host label of the new node")
	addNode.Flags().StringVar(&an.ReplicaOf, "replica-of", "", "make it a replica of this master")
	ano.register(addNode, false)

	var rno opFlags
	var rn api.RemoveNodeParams
	removeNode := &cobra.Command{
		Use: "remove-node NAME --node NODE", Short: "Drain a node, forget it everywhere, and shut it down", Args: one,
		RunE: func(cmd *cobra.Command, args []string) error {
			return startOperation(cmd, f, &rno, args[0], "remove-node", map[string]any{"node": rn.Node, "keep_running": rn.KeepRunning})
		},
	}
	removeNode.Flags().StringVar(&rn.Node, "node", "", "the node to remove (id or address)")
	removeNode.Flags().BoolVar(&rn.KeepRunning, "keep-running", false, "leave the process running (reset, alone)")
	rno.register(removeNode, true)

	var co opFlags
	var cp api.CreateParams
	create := &cobra.Command{
		Use:   "create NAME --masters N --replicas R",
		Short: "Deploy a new cluster on the running agents (and an app of the same name)",
		Args:  one,
		RunE: func(cmd *cobra.Command, args []string) error {
			cp.Name = args[0]
			c, err := f.client()
			if err != nil {
				return err
			}
			op, dry, err := c.CreateCluster(cmd.Context(), cp, co.dryRun)
			return followOperation(cmd, f, &co, c, op, dry, err)
		},
	}
	create.Flags().IntVar(&cp.Masters, "masters", 3, "number of masters")
	create.Flags().IntVar(&cp.Replicas, "replicas", 1, "replicas per master")
	create.Flags().StringVar(&cp.MaxMemory, "maxmemory", "", "maxmemory per instance, such as 256mb or 2gb")
	create.Flags().StringVar(&cp.Datacenter, "datacenter", "", "datacenter: only agents there are used")
	create.Flags().StringVar(&cp.Persistence, "persistence", "", "none, rdb (default) or aof")
	create.Flags().StringVar(&cp.NodeTimeout, "node-timeout", "", "cluster-node-timeout, such as 5s (default 15s)")
	create.Flags().StringVar(&cp.App, "app", "", "app to bind (default: the cluster's name; - for none)")
	co.register(create, false)

	var sco opFlags
	var masters int
	scale := &cobra.Command{
		Use: "scale NAME --masters N", Short: "Scale a deployed cluster out or in to N masters", Args: one,
		RunE: func(cmd *cobra.Command, args []string) error {
			return startOperation(cmd, f, &sco, args[0], "scale", map[string]any{"masters": masters})
		},
	}
	scale.Flags().IntVar(&masters, "masters", 0, "the number of masters to have")
	sco.register(scale, true)

	cmd.AddCommand(list, show, check, credentials, create, adoptCmd, fix, rebalance, reshard, scale, failover, addNode, removeNode)
	return cmd
}
