// Command r2m is the single R2M binary: control plane, host agent, CLI and
// local demo ("r2m up"). Each subcommand lives in its own file and wires its
// dependencies explicitly; no other package reads flags or the environment.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "r2m:", err)
		os.Exit(1)
	}
}
