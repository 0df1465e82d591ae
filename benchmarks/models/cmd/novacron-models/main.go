// Command novacron-models runs the `novacron models` subcommands on their
// own, for development and the evaluation scripts in benchmarks/models.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"

	"github.com/novacron/novacron/internal/modelscli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := modelscli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		if errors.Is(err, modelscli.ErrUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
