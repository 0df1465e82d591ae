package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/novacron/novacron/internal/buildinfo"
	"github.com/novacron/novacron/internal/config"
)

// Roles a process can run.
const (
	RoleCollector = "collector"
	RoleProcessor = "processor"
	RoleAPI       = "api"
)

// AllRoles is what `novacron run` runs.
var AllRoles = []string{RoleCollector, RoleProcessor, RoleAPI}

// Main parses args (without the program name), runs the command and
// returns the process exit code. Only package main may exit.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := kingpin.New("novacron", "NovaCron watches fleets of virtual machines and acts on what it sees.")
	a.UsageWriter(stderr)
	a.ErrorWriter(stderr)
	a.Terminate(nil)
	a.HelpFlag.Short('h')

	var ov overrides
	addRunFlags := func(c *kingpin.CmdClause) {
		c.Flag("config.file", "YAML configuration file; built-in defaults when empty.").Envar("NOVACRON_CONFIG_FILE").StringVar(&ov.configFile)
		c.Flag("api.listen-address", "Override api.listen_address.").StringVar(&ov.listen)
		c.Flag("data-dir", "Override data_dir.").StringVar(&ov.dataDir)
		c.Flag("log.level", "Override log.level (debug, info, warn, error).").StringVar(&ov.logLevel)
		c.Flag("sim.speed", "Override collectors.sim.speed: simulated seconds per real second.").Float64Var(&ov.simSpeed)
	}
	run := a.Command("run", "Run every role in one process (embedded defaults when no config is given).").Default()
	addRunFlags(run)
	collector := a.Command("collector", "Run the collector role: collect metrics and inventory and publish them to the bus.")
	addRunFlags(collector)
	processor := a.Command("processor", "Run the processor role: consume the bus and write to storage.")
	addRunFlags(processor)
	apiCmd := a.Command("api", "Run the API role: REST API and Prometheus-compatible queries.")
	addRunFlags(apiCmd)

	backfill := a.Command("backfill", "Warm the analytics models from stored history and save them as checkpoints; run before the processors start.")
	var bfConfig, bfStart, bfEnd, bfQueryURL string
	var bfSelectors []string
	var bfStep time.Duration
	var bfPartitions int32
	backfill.Flag("config.file", "YAML configuration file; built-in defaults when empty.").Envar("NOVACRON_CONFIG_FILE").StringVar(&bfConfig)
	backfill.Flag("start", "Start of the history: RFC 3339, Unix seconds, or a duration before now (168h, 24h).").Default("168h").StringVar(&bfStart)
	backfill.Flag("end", "End of the history: RFC 3339, Unix seconds, a duration before now, or now.").Default("now").StringVar(&bfEnd)
	backfill.Flag("selector", "PromQL series selector to read (repeatable); default one per analytics rule.").StringsVar(&bfSelectors)
	backfill.Flag("step", "Resolution of the history read.").Default("1m").DurationVar(&bfStep)
	backfill.Flag("query-url", "Prometheus HTTP API to read (without /api/v1); default the configured store.").StringVar(&bfQueryURL)
	backfill.Flag("partitions", "Partition count of the samples topic; default topics.partitions.").Int32Var(&bfPartitions)

	cfgCmd := a.Command("config", "Configuration commands.")
	check := cfgCmd.Command("check", "Validate a configuration file, listing every problem with its key and line.")
	checkFile := check.Arg("file", "The YAML file to check.").Required().String()

	version := a.Command("version", "Print the version.")

	cmd, err := a.Parse(args)
	if err != nil {
		fmt.Fprintln(stderr, "novacron:", err)
		return 2
	}
	switch cmd {
	case version.FullCommand():
		fmt.Fprintln(stdout, buildinfo.String())
		return 0
	case check.FullCommand():
		cfg, err := config.Load(*checkFile)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		if err := checkRoles(cfg, AllRoles); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: configuration is valid\n", *checkFile)
		return 0
	}
	if cmd == backfill.FullCommand() {
		cfg, err := config.Load(bfConfig)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		now := time.Now()
		start, err := ParseBackfillTime(bfStart, now)
		if err != nil {
			fmt.Fprintf(stderr, "novacron backfill: --start=%q: %v\n", bfStart, err)
			return 2
		}
		end, err := ParseBackfillTime(bfEnd, now)
		if err != nil {
			fmt.Fprintf(stderr, "novacron backfill: --end=%q: %v\n", bfEnd, err)
			return 2
		}
		if err := RunBackfill(ctx, cfg, BackfillArgs{Start: start, End: end, Selectors: bfSelectors, Step: bfStep,
			QueryURL: bfQueryURL, Partitions: bfPartitions}, stdout, stderr); err != nil {
			fmt.Fprintln(stderr, "novacron backfill:", err)
			return 1
		}
		return 0
	}
	roles := AllRoles
	switch cmd {
	case collector.FullCommand():
		roles = []string{RoleCollector}
	case processor.FullCommand():
		roles = []string{RoleProcessor}
	case apiCmd.FullCommand():
		roles = []string{RoleAPI}
	}
	cfg, err := ov.load()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := checkRoles(cfg, roles); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	logger := NewLogger(cfg.Log, stderr)
	m := New(cfg, roles, logger)
	m.Stdout = stdout
	if err := m.Run(ctx); err != nil {
		logger.Error("novacron stopped with an error", "err", err)
		return 1
	}
	return 0
}

// overrides are command-line flags that win over the config file.
type overrides struct {
	configFile, listen, dataDir, logLevel string
	simSpeed                              float64
}

func (o overrides) load() (*config.Config, error) {
	cfg, err := config.Load(o.configFile)
	if err != nil {
		return nil, err
	}
	if o.listen != "" {
		cfg.API.ListenAddress = o.listen
	}
	if o.dataDir != "" {
		cfg.DataDir = o.dataDir
	}
	if o.logLevel != "" {
		cfg.Log.Level = o.logLevel
	}
	if o.simSpeed != 0 {
		cfg.Collectors.Sim.Speed = o.simSpeed
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration after command-line flags: %w", err)
	}
	return cfg, nil
}

// checkRoles rejects configurations that cannot work for the roles: an
// in-process bus or embedded store cannot be shared between processes.
func checkRoles(cfg *config.Config, roles []string) error {
	if len(roles) == len(AllRoles) {
		return nil
	}
	var probs []string
	if cfg.Bus.Type == config.BusMemory {
		probs = append(probs, "bus.type: \"memory\" works only with every role in one process (novacron run); use kafka")
	}
	if cfg.Storage.Type == config.StorageEmbedded && !(len(roles) == 1 && roles[0] == RoleCollector) {
		probs = append(probs, "storage.type: \"embedded\" works only with every role in one process (novacron run); use remote")
	}
	if len(probs) > 0 {
		return fmt.Errorf("configuration cannot run role %s:\n  %s", strings.Join(roles, ","), strings.Join(probs, "\n  "))
	}
	return nil
}

// NewLogger builds the process logger from the log section.
func NewLogger(c config.LogConfig, w io.Writer) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
