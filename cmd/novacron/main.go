// Command novacron is NovaCron's single binary: every role in one process
// (`novacron run`) or one role per process (collector, processor, api),
// plus configuration checks and the models' evaluation commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/novacron/novacron/internal/app"
	"github.com/novacron/novacron/internal/modelscli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The models commands have their own flags; hand them the rest.
	if len(os.Args) > 1 && os.Args[1] == "models" {
		if err := modelscli.Run(ctx, os.Args[2:], os.Stdout, os.Stderr); err != nil {
			if !errors.Is(err, modelscli.ErrUsage) {
				fmt.Fprintln(os.Stderr, "novacron models:", err)
			}
			os.Exit(2)
		}
		return
	}
	os.Exit(app.Main(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
