package main

import (
	"github.com/spf13/cobra"
)

// newRootCommand builds the command tree. It is a function, not a package
// variable, so tests can build a fresh tree per case.
func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "r2m",
		Short:         "R2M: a distributed cache platform on stock Redis Cluster",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newVersionCommand(), newServerCommand(), newUserCommand(), newTokenCommand(), newAppCommand(), newClientsCommand(), newClusterCommand(), newOpCommand(), newAgentCommand(), newUpCommand(), newAlertCommand(), newMigrateCommand())
	return root
}
