package modelscli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// ErrUsage is returned (wrapped) for a missing or unknown subcommand or bad
// flags; the caller should exit with status 2.
var ErrUsage = errors.New("usage")

type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"detect":          {"score NAB-layout CSVs with an anomaly detector", runDetect},
	"score-anomalies": {"score detector results with the NAB rules", runScoreAnomalies},
	"forecast":        {"forecast M4-layout series", runForecast},
	"score-forecasts": {"score M4-layout forecasts (sMAPE, MASE, OWA)", runScoreForecasts},
	"backtest":        {"rolling-origin evaluation of a forecaster on a CSV series", runBacktest},
	"plot":            {"draw a series with its baseline band, anomaly scores and forecast as PNG", runPlot},
}

// Run runs one `novacron models` subcommand: args[0] names it (detect,
// score-anomalies, forecast, score-forecasts, backtest, plot) and the rest
// are its flags. Results go to stdout, progress and diagnostics to stderr.
// Cancelling ctx stops long runs between files or series.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		return fmt.Errorf("%w: no subcommand given", ErrUsage)
	}
	c, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		return fmt.Errorf("%w: unknown subcommand %q", ErrUsage, args[0])
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: novacron models <subcommand> [flags]\n\nsubcommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-16s %s\n", n, commands[n].summary)
	}
}

// newFlagSet returns a flag set that reports errors as values.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("models "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses and checks required flags.
func parseFlags(fs *flag.FlagSet, args []string, required ...string) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", ErrUsage, strings.Join(fs.Args(), " "))
	}
	var missing []string
	for _, r := range required {
		if f := fs.Lookup(r); f != nil && f.Value.String() == "" {
			missing = append(missing, "--"+r)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s %s required", ErrUsage, fs.Name(), strings.Join(missing, ", "))
	}
	return nil
}
