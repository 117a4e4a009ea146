package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/r2m-go/r2m/api"
)

func newOpCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "op", Short: "Operations: list, follow, pause, resume, cancel"}
	f := addAPIFlags(cmd)
	var clusterName string
	list := &cobra.Command{
		Use: "list", Short: "List operations, newest first", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			ops, err := c.Ops(cmd.Context(), clusterName)
			if err != nil {
				return err
			}
			return f.printer(cmd).print(ops, []string{"ID", "TYPE", "CLUSTER", "STATE", "PROGRESS", "BY", "CREATED"}, func(add func(...any)) {
				for _, o := range ops {
					prog := ""
					if o.Progress.SlotsTotal > 0 {
						prog = fmt.Sprintf("%d/%d slots", o.Progress.SlotsDone, o.Progress.SlotsTotal)
					}
					add(o.ID, o.Type, o.Cluster, o.State, prog, o.CreatedBy, o.CreatedAt.Format(time.RFC3339))
				}
			})
		},
	}
	list.Flags().StringVar(&clusterName, "cluster", "", "only this cluster's operations")

	var wait bool
	show := &cobra.Command{
		Use: "show ID", Short: "Show an operation (--wait follows it to the end)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			if wait {
				op, err := waitOp(cmd.Context(), c, args[0], cmd.ErrOrStderr())
				if op != nil {
					if perr := printOp(cmd, f, op); perr != nil {
						return perr
					}
				}
				return err
			}
			op, err := c.Op(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printOp(cmd, f, op)
		},
	}
	show.Flags().BoolVar(&wait, "wait", false, "follow the operation until it ends; exit non-zero unless it succeeded with a clean check")

	control := func(use, short string, call func(*api.Client, *cobra.Command, string) (*api.Operation, error)) *cobra.Command {
		return &cobra.Command{
			Use: use + " ID", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := f.client()
				if err != nil {
					return err
				}
				op, err := call(c, cmd, args[0])
				if err != nil {
					return err
				}
				return printOp(cmd, f, op)
			},
		}
	}
	pause := control("pause", "Pause an operation at its next safe point", func(c *api.Client, cmd *cobra.Command, id string) (*api.Operation, error) {
		return c.PauseOp(cmd.Context(), id)
	})
	resume := control("resume", "Resume a paused operation", func(c *api.Client, cmd *cobra.Command, id string) (*api.Operation, error) {
		return c.ResumeOp(cmd.Context(), id)
	})
	cancel := control("cancel", "Cancel an operation; it stops at a safe point and leaves the cluster consistent", func(c *api.Client, cmd *cobra.Command, id string) (*api.Operation, error) {
		return c.CancelOp(cmd.Context(), id)
	})
	var keys int
	throttle := control("throttle", "Cap an operation's keys per second (0 removes the cap)", func(c *api.Client, cmd *cobra.Command, id string) (*api.Operation, error) {
		return c.ThrottleOp(cmd.Context(), id, keys)
	})
	throttle.Flags().IntVar(&keys, "keys-per-sec", 0, "the cap; 0 for none")
	cmd.AddCommand(list, show, pause, resume, cancel, throttle)
	return cmd
}

func printOp(cmd *cobra.Command, f *apiFlags, op *api.Operation) error {
	return f.printer(cmd).print(op, []string{"FIELD", "VALUE"}, func(add func(...any)) {
		add("id", op.ID)
		add("type", op.Type)
		add("cluster", op.Cluster)
		add("state", op.State)
		if op.Error != "" {
			add("error", op.Error)
		}
		for _, st := range op.Steps {
			add("step "+st.Name, st.State+" "+st.Error)
		}
		if op.Progress.SlotsTotal > 0 {
			add("progress", progressLine(op))
		}
		if op.Throttle > 0 {
			add("throttle", fmt.Sprintf("%d keys/s", op.Throttle))
		}
		switch {
		case !op.CheckDone:
			add("check", "not run yet")
		case len(op.CheckFindings) == 0:
			add("check", "clean")
		default:
			add("check", strings.Join(op.CheckFindings, "; "))
		}
		add("created", op.CreatedAt.Format(time.RFC3339)+" by "+op.CreatedBy)
		for i, l := range strings.Split(strings.TrimRight(op.PlanText, "\n"), "\n") {
			k := ""
			if i == 0 {
				k = "plan"
			}
			add(k, l)
		}
	})
}
