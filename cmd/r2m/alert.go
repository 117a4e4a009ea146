package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/r2m-go/r2m/api"
)

func newAlertCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "alert", Short: "Alert rules, notification channels, and what fired"}
	f := addAPIFlags(cmd)

	rules := &cobra.Command{
		Use: "rules", Short: "List alert rules (built-in and custom)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			rs, err := c.AlertRules(cmd.Context())
			if err != nil {
				return err
			}
			return f.printer(cmd).print(rs, []string{"NAME", "CONDITION", "FOR", "SEVERITY", "STATE"}, func(add func(...any)) {
				for _, r := range rs {
					state := "on"
					if r.Disabled {
						state = "off"
					}
					if r.BuiltIn && !r.Customized {
						state += " (built-in)"
					}
					add(r.Name, fmt.Sprintf("%s %s %g", r.Metric, r.Op, r.Threshold), r.For, r.Severity, state)
				}
			})
		},
	}

	var rule api.AlertRule
	var threshold string
	setRule := &cobra.Command{
		Use: "set-rule NAME --metric M --op OP --threshold N", Short: "Create or replace an alert rule", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rule.Name = args[0]
			t, err := strconv.ParseFloat(threshold, 64)
			if err != nil {
				return fmt.Errorf("--threshold %q: want a number", threshold)
			}
			rule.Threshold = t
			c, err := f.client()
			if err != nil {
				return err
			}
			r, err := c.SetAlertRule(cmd.Context(), rule)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rule %s: %s %s %g for %s, %s\n", r.Name, r.Metric, r.Op, r.Threshold, r.For, r.Severity)
			return nil
		},
	}
	fl := setRule.Flags()
	fl.StringVar(&rule.Metric, "metric", "", "metric name (GET /api/v1/monitor/metrics lists them)")
	fl.StringVar(&rule.Op, "op", ">", "comparison: > >= < <= == !=")
	fl.StringVar(&threshold, "threshold", "0", "threshold")
	fl.StringVar(&rule.For, "for", "1m", "how long the condition must hold before the alert fires")
	fl.StringVar(&rule.Severity, "severity", "warning", "info, warning or critical")
	fl.StringSliceVar(&rule.Channels, "channel", nil, "channels to notify (default: all)")
	fl.StringVar(&rule.Description, "description", "", "what the rule means, for the notification")
	fl.BoolVar(&rule.Disabled, "disabled", false, "keep the rule but do not evaluate it")

	channels := &cobra.Command{
		Use: "channels", Short: "List notification channels (secrets redacted)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			cs, err := c.AlertChannels(cmd.Context())
			if err != nil {
				return err
			}
			return f.printer(cmd).print(cs, []string{"NAME", "TYPE", "URL", "MIN SEVERITY", "DISABLED"}, func(add func(...any)) {
				for _, ch := range cs {
					add(ch.Name, ch.Type, ch.URL, ch.MinSeverity, ch.Disabled)
				}
			})
		},
	}

	var ch api.AlertChannel
	var secretStdin bool
	setChannel := &cobra.Command{
		Use: "set-channel NAME --type webhook|dingtalk|wecom|slack --url URL", Short: "Create or replace a notification channel (admin)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ch.Name = args[0]
			if secretStdin {
				s, err := readSecret(cmd.InOrStdin())
				if err != nil {
					return err
				}
				ch.Secret = s
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			if _, err := c.SetAlertChannel(cmd.Context(), ch); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "channel %s saved; try it with: r2m alert test %s\n", ch.Name, ch.Name)
			return nil
		},
	}
	fl = setChannel.Flags()
	fl.StringVar(&ch.Type, "type", "webhook", "webhook (R2M's JSON), dingtalk, wecom or slack")
	fl.StringVar(&ch.URL, "url", "", "the incoming-webhook URL")
	fl.BoolVar(&secretStdin, "secret-stdin", false, "read DingTalk's signing secret from standard input")
	fl.StringVar(&ch.MinSeverity, "min-severity", "", "send only alerts of this severity or worse")
	fl.BoolVar(&ch.SkipResolved, "skip-resolved", false, "do not send resolved notifications")

	test := &cobra.Command{
		Use: "test CHANNEL", Short: "Send a test notification through a channel", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			d, err := c.TestAlertChannel(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if !d.OK {
				return fmt.Errorf("channel %s did not take the test message after %d attempts: %s", args[0], d.Attempts, d.Error)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "channel %s took the test message\n", args[0])
			return nil
		},
	}

	firing := &cobra.Command{
		Use: "firing", Short: "List the alerts firing now", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			as, err := c.Alerts(cmd.Context())
			if err != nil {
				return err
			}
			return f.printer(cmd).print(as, []string{"SEVERITY", "RULE", "SUBJECT", "SINCE", "SUMMARY"}, func(add func(...any)) {
				for _, a := range as {
					add(a.Severity, a.Rule, strings.Trim(a.Cluster+" "+a.Node+" "+a.App, " "), a.StartsAt.Format(time.RFC3339), a.Summary)
				}
			})
		},
	}

	var since string
	history := &cobra.Command{
		Use: "history", Short: "List notifications sent (firing, repeat, resolved)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			evs, err := c.AlertHistory(cmd.Context(), since)
			if err != nil {
				return err
			}
			return f.printer(cmd).print(evs, []string{"TIME", "KIND", "SEVERITY", "RULE", "SUMMARY", "DELIVERED"}, func(add func(...any)) {
				for _, e := range evs {
					ok := 0
					for _, d := range e.Deliveries {
						if d.OK {
							ok++
						}
					}
					add(e.Time.Format(time.RFC3339), e.Kind, e.Severity, e.Rule, e.Summary, fmt.Sprintf("%d/%d", ok, len(e.Deliveries)))
				}
			})
		},
	}
	history.Flags().StringVar(&since, "since", "24h", "how far back: a duration ago or an RFC 3339 time")

	cmd.AddCommand(rules, setRule, channels, setChannel, test, firing, history)
	return cmd
}
