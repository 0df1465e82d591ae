// Package config is NovaCron's configuration file: one YAML document with
// one section per component, defaults that work with no file at all,
// NOVACRON_... environment overrides and *_file fields for secrets.
//
// Load reports every problem at once, each with its key path and line, so
// `novacron config check` can list them and exit non-zero.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/novacron/novacron/actuator"
	actaws "github.com/novacron/novacron/actuator/aws"
	actlibvirt "github.com/novacron/novacron/actuator/libvirt"
	"github.com/novacron/novacron/alerting"
	awscoll "github.com/novacron/novacron/collectors/aws"
	libvirtcoll "github.com/novacron/novacron/collectors/libvirt"
	"github.com/novacron/novacron/collectors/sim"
	"github.com/novacron/novacron/internal/bus/kafkabus"
	"github.com/novacron/novacron/internal/bus/membus"
	"github.com/novacron/novacron/internal/confutil"
	"github.com/novacron/novacron/internal/statedb"
	"github.com/novacron/novacron/internal/storage"
	"github.com/novacron/novacron/internal/storage/promapi"
	"github.com/novacron/novacron/internal/storage/remotewrite"
	"github.com/novacron/novacron/internal/storage/tsdbstore"
	"github.com/novacron/novacron/pipeline/analytics"
)

// Bus types.
const (
	BusMemory = "memory"
	BusKafka  = "kafka"
)

// Storage types.
const (
	StorageEmbedded = "embedded"
	StorageRemote   = "remote"
)

// Config is the whole configuration file.
type Config struct {
	// DataDir holds the embedded store, the generated API token and other
	// local state. Default "data" (relative to the working directory).
	DataDir string `yaml:"data_dir"`
	// Log configures logging.
	Log LogConfig `yaml:"log"`
	// API configures the REST API and the Prometheus-compatible endpoints.
	API APIConfig `yaml:"api"`
	// Topics names the bus topics and how they are created.
	Topics TopicsConfig `yaml:"topics"`
	// Ingest configures the stage that moves samples from the bus to storage.
	Ingest IngestConfig `yaml:"ingest"`
	// Bus selects and configures the bus.
	Bus BusConfig `yaml:"bus"`
	// Storage selects and configures where series are stored and queried.
	Storage StorageConfig `yaml:"storage"`
	// Collectors configures the metric and inventory sources.
	Collectors CollectorsConfig `yaml:"collectors"`
	// Analytics configures the processor role's streaming analytics:
	// baselines, anomaly detection, forecasts and their events. On the
	// memory bus, checkpoints always go to a directory (checkpoint.store
	// "topic" is treated as "dir").
	Analytics analytics.Config `yaml:"analytics"`
	// State is the state database (alert state, silences, thresholds,
	// actions): SQLite under data_dir by default, PostgreSQL when several
	// processes share it. sqlite.path defaults to <data_dir>/state.db.
	State statedb.Config `yaml:"state"`
	// Alerting evaluates Prometheus rules and event alerts and notifies the
	// Alertmanager way; it runs in the API role (run one API process with
	// alerting enabled, or forward to a clustered Alertmanager). See
	// docs/alerting.md.
	Alerting alerting.Config `yaml:"alerting"`
	// Actuator turns recommendations and alerts into VM actions, behind
	// policies (dry-run by default), approvals and safety rails; it runs in
	// the API role. See docs/actuator.md.
	Actuator ActuatorConfig `yaml:"actuator"`
	// SelfScrapeInterval is how often the processor role writes the
	// process's own metrics (the ones on /metrics) into the store, with
	// job="novacron", like VictoriaMetrics' -selfScrapeInterval. Default
	// 15s; 0 disables it.
	SelfScrapeInterval time.Duration `yaml:"self_scrape_interval"`
}

// BusConfig selects the bus.
type BusConfig struct {
	// Type is memory (in-process; every role in one process) or kafka.
	// Default memory.
	Type string `yaml:"type"`
	// Memory configures the in-process bus.
	Memory membus.Config `yaml:"memory"`
	// Kafka configures the Kafka bus.
	Kafka kafkabus.Config `yaml:"kafka"`
}

// StorageConfig selects the store.
type StorageConfig struct {
	// Type is embedded (the Prometheus TSDB in-process, under data_dir) or
	// remote (any remote-write receiver such as VictoriaMetrics, queried
	// through its Prometheus API). Default embedded.
	Type string `yaml:"type"`
	// Embedded configures the embedded store. Its path defaults to
	// <data_dir>/tsdb when empty.
	Embedded tsdbstore.Config `yaml:"embedded"`
	// Remote configures remote write and remote queries.
	Remote RemoteConfig `yaml:"remote"`
	// Sender configures the queue and retries in front of the store.
	Sender storage.SenderConfig `yaml:"sender"`
}

// RemoteConfig is a remote store: remote write plus the Prometheus query
// API of the same store.
type RemoteConfig struct {
	// Write configures remote write (VictoriaMetrics /api/v1/write, or
	// vminsert /insert/<tenant>/prometheus/api/v1/write).
	Write remotewrite.Config `yaml:"write"`
	// Query is the VictoriaMetrics the API role forwards Prometheus API
	// queries to: a single node (url: http://victoriametrics:8428) or
	// vmselect (url: http://vmselect:8481, tenant: "0"). url is required.
	Query promapi.ProxyConfig `yaml:"query"`
}

// CollectorsConfig configures the collectors.
type CollectorsConfig struct {
	// Sim is the simulated fleet.
	Sim SimConfig `yaml:"sim"`
	// Libvirt collects from KVM/QEMU (and Xen) hosts through libvirt; see
	// docs/providers/libvirt.md.
	Libvirt libvirtcoll.Config `yaml:"libvirt"`
	// AWS collects EC2 inventory and CloudWatch metrics; see
	// docs/providers/aws.md.
	AWS awscoll.Config `yaml:"aws"`
}

// ActuatorConfig enables the actuator and its provider drivers.
type ActuatorConfig struct {
	// Enabled runs the actuator in the API role. Default true (policies
	// default to dry-run: plans are recorded, nothing is changed).
	Enabled         bool `yaml:"enabled"`
	actuator.Config `yaml:",inline"`
	// Drivers configures the provider drivers actions go through. The
	// simulated fleet's driver is always there when the fleet runs in the
	// same process.
	Drivers DriversConfig `yaml:"drivers"`
}

// DriversConfig configures the actuator's provider drivers.
type DriversConfig struct {
	// Libvirt acts on libvirt hosts (see docs/providers/libvirt.md).
	Libvirt LibvirtDriverConfig `yaml:"libvirt"`
	// AWS acts on EC2 instances (see docs/providers/aws.md).
	AWS AWSDriverConfig `yaml:"aws"`
}

// LibvirtDriverConfig enables the libvirt driver.
type LibvirtDriverConfig struct {
	// Enabled turns the driver on. Default false.
	Enabled           bool `yaml:"enabled"`
	actlibvirt.Config `yaml:",inline"`
}

// AWSDriverConfig enables the EC2 driver.
type AWSDriverConfig struct {
	// Enabled turns the driver on. Default false.
	Enabled       bool `yaml:"enabled"`
	actaws.Config `yaml:",inline"`
}

// SimConfig enables and configures the simulated fleet.
type SimConfig struct {
	// Enabled runs the simulated fleet: true or false. Default (unset):
	// only when no real collector is enabled, so a new installation shows
	// a working fleet and a configured one shows only real VMs.
	Enabled    *bool `yaml:"enabled"`
	sim.Config `yaml:",inline"`
}

// SimEnabled reports whether the simulated fleet runs.
func (c *Config) SimEnabled() bool {
	if c.Collectors.Sim.Enabled != nil {
		return *c.Collectors.Sim.Enabled
	}
	return !c.Collectors.Libvirt.Enabled && !c.Collectors.AWS.Enabled
}

// LogConfig configures log/slog output.
type LogConfig struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is logfmt (slog text) or json. Default logfmt.
	Format string `yaml:"format"`
}

// APIConfig configures the API server.
type APIConfig struct {
	// ListenAddress is host:port. Default 127.0.0.1:8090.
	ListenAddress string `yaml:"listen_address"`
	// Token is the bearer token every route but health and metrics needs.
	// Prefer NOVACRON_API_TOKEN or token_file. Default: empty, and then a
	// token is generated on first start into <data_dir>/api-token.
	Token string `yaml:"token"`
	// TokenFile reads the token from a file. Default empty.
	TokenFile string `yaml:"token_file"`
	// ShutdownTimeout bounds a graceful shutdown. Default 10s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// TopicsConfig names the bus topics.
type TopicsConfig struct {
	// Samples carries Prometheus remote-write WriteRequests. Default novacron.samples.
	Samples string `yaml:"samples"`
	// Inventory carries inventory snapshots as JSON. Default novacron.inventory.
	Inventory string `yaml:"inventory"`
	// Events carries events as JSON. Default novacron.events.
	Events string `yaml:"events"`
	// DeadLetter receives records that could not be processed, with the
	// error in headers. Default novacron.deadletter.
	DeadLetter string `yaml:"deadletter"`
	// Partitions for topics created by NovaCron. Default 6.
	Partitions int32 `yaml:"partitions"`
	// ReplicationFactor for topics created by NovaCron. Default 1; use 3
	// on a production Kafka cluster.
	ReplicationFactor int16 `yaml:"replication_factor"`
	// Create creates missing topics on start. Default true.
	Create bool `yaml:"create"`
}

// IngestConfig configures the bus → storage stage.
type IngestConfig struct {
	// Group is the consumer group. Default novacron-ingest.
	Group string `yaml:"group"`
	// MaxPollRecords caps the records handled per poll. Default 5000.
	MaxPollRecords int `yaml:"max_poll_records"`
	// DrainTimeout bounds how long shutdown waits for in-flight batches to
	// be written. Default 15s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
}

// NewDefault returns the configuration used when no file is given.
func NewDefault() *Config {
	return &Config{
		DataDir: "data",
		Log:     LogConfig{Level: "info", Format: "logfmt"},
		API: APIConfig{
			ListenAddress:   "127.0.0.1:8090",
			ShutdownTimeout: 10 * time.Second,
		},
		Topics: TopicsConfig{
			Samples:           "novacron.samples",
			Inventory:         "novacron.inventory",
			Events:            "novacron.events",
			DeadLetter:        "novacron.deadletter",
			Partitions:        6,
			ReplicationFactor: 1,
			Create:            true,
		},
		Ingest: IngestConfig{Group: "novacron-ingest", MaxPollRecords: 5000, DrainTimeout: 15 * time.Second},
		Bus: BusConfig{
			Type:   BusMemory,
			Memory: membus.NewDefaultConfig(),
			Kafka:  kafkabus.NewDefaultConfig(),
		},
		Storage: StorageConfig{
			Type:     StorageEmbedded,
			Embedded: embeddedDefaults(),
			Remote:   RemoteConfig{Write: remotewrite.NewDefaultConfig(), Query: promapi.NewDefaultProxyConfig()},
			Sender:   storage.NewDefaultSenderConfig(),
		},
		Collectors: CollectorsConfig{
			Sim:     SimConfig{Config: *sim.NewDefaultConfig()},
			Libvirt: *libvirtcoll.NewDefaultConfig(),
			AWS:     *awscoll.NewDefaultConfig(),
		},
		Analytics: analytics.NewDefaultConfig(),
		State:     stateDefaults(),
		Actuator: ActuatorConfig{
			Enabled: true,
			Config:  actuator.NewDefaultConfig(),
			Drivers: DriversConfig{
				Libvirt: LibvirtDriverConfig{Config: *actlibvirt.NewDefaultConfig()},
				AWS:     AWSDriverConfig{Config: *actaws.NewDefaultConfig()},
			},
		},
		Alerting:           alerting.NewDefaultConfig(),
		SelfScrapeInterval: 15 * time.Second,
	}
}

func stateDefaults() statedb.Config {
	c := statedb.NewDefaultConfig()
	c.SQLite.Path = "" // <data_dir>/state.db
	return c
}

// StateConfig returns the state database configuration with defaults
// that depend on data_dir filled in.
func (c *Config) StateConfig() statedb.Config {
	s := c.State
	if s.SQLite.Path == "" {
		s.SQLite.Path = filepath.Join(c.DataDir, "state.db")
	}
	return s
}

func embeddedDefaults() tsdbstore.Config {
	c := tsdbstore.NewDefaultConfig()
	c.Path = "" // <data_dir>/tsdb
	return c
}

// EmbeddedPath returns the embedded store's directory.
func (c *Config) EmbeddedPath() string {
	if c.Storage.Embedded.Path != "" {
		return c.Storage.Embedded.Path
	}
	return filepath.Join(c.DataDir, "tsdb")
}

// Validate reports every problem, with YAML key paths.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, confutil.Errorf("data_dir", "must not be empty"))
	}
	if c.SelfScrapeInterval < 0 {
		errs = append(errs, confutil.Errorf("self_scrape_interval", "must not be negative"))
	}
	errs = append(errs, confutil.Prefix("log", c.Log.Validate()))
	errs = append(errs, confutil.Prefix("api", c.API.Validate()))
	errs = append(errs, confutil.Prefix("topics", c.Topics.Validate()))
	errs = append(errs, confutil.Prefix("ingest", c.Ingest.Validate()))
	switch c.Bus.Type {
	case BusMemory:
		errs = append(errs, confutil.Prefix("bus.memory", c.Bus.Memory.Validate()))
	case BusKafka:
		errs = append(errs, confutil.Prefix("bus.kafka", c.Bus.Kafka.Validate()))
	default:
		errs = append(errs, confutil.Errorf("bus.type", "must be memory or kafka, not %q", c.Bus.Type))
	}
	switch c.Storage.Type {
	case StorageEmbedded:
		e := c.Storage.Embedded
		e.Path = c.EmbeddedPath()
		errs = append(errs, confutil.Prefix("storage.embedded", e.Validate()))
	case StorageRemote:
		errs = append(errs, confutil.Prefix("storage.remote.write", c.Storage.Remote.Write.Validate()))
		errs = append(errs, confutil.Prefix("storage.remote.query", c.Storage.Remote.Query.Validate()))
	default:
		errs = append(errs, confutil.Errorf("storage.type", "must be embedded or remote, not %q", c.Storage.Type))
	}
	errs = append(errs, confutil.Prefix("storage.sender", c.Storage.Sender.Validate()))
	errs = append(errs, confutil.Prefix("analytics", c.Analytics.Validate()))
	errs = append(errs, confutil.Prefix("state", c.StateConfig().Validate()))
	if c.Alerting.Enabled {
		errs = append(errs, confutil.Prefix("alerting", c.Alerting.Validate()))
	}
	if c.Actuator.Enabled {
		errs = append(errs, confutil.Prefix("actuator", c.Actuator.Config.Validate()))
		if c.Actuator.Drivers.Libvirt.Enabled {
			errs = append(errs, confutil.Prefix("actuator.drivers.libvirt", c.Actuator.Drivers.Libvirt.Config.Validate()))
		}
		if c.Actuator.Drivers.AWS.Enabled {
			errs = append(errs, confutil.Prefix("actuator.drivers.aws", c.Actuator.Drivers.AWS.Config.Validate()))
		}
	}
	if c.SimEnabled() {
		errs = append(errs, confutil.Prefix("collectors.sim", c.Collectors.Sim.Config.Validate()))
	}
	if c.Collectors.Libvirt.Enabled {
		errs = append(errs, confutil.Prefix("collectors.libvirt", c.Collectors.Libvirt.Validate()))
	}
	if c.Collectors.AWS.Enabled {
		errs = append(errs, confutil.Prefix("collectors.aws", c.Collectors.AWS.Validate()))
	}
	return errors.Join(errs...)
}

// Validate checks the log section.
func (c LogConfig) Validate() error {
	var errs []error
	switch c.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, confutil.Errorf("level", "must be debug, info, warn or error, not %q", c.Level))
	}
	switch c.Format {
	case "logfmt", "json":
	default:
		errs = append(errs, confutil.Errorf("format", "must be logfmt or json, not %q", c.Format))
	}
	return errors.Join(errs...)
}

// Validate checks the api section.
func (c APIConfig) Validate() error {
	var errs []error
	if c.ListenAddress == "" {
		errs = append(errs, confutil.Errorf("listen_address", "must not be empty"))
	}
	if c.Token != "" && c.TokenFile != "" {
		errs = append(errs, confutil.Errorf("token_file", "set either token or token_file, not both"))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, confutil.Errorf("shutdown_timeout", "must be positive"))
	}
	return errors.Join(errs...)
}

// Validate checks the topics section.
func (c TopicsConfig) Validate() error {
	var errs []error
	seen := map[string]string{}
	for _, t := range []struct{ key, name string }{
		{"samples", c.Samples}, {"inventory", c.Inventory}, {"events", c.Events}, {"deadletter", c.DeadLetter},
	} {
		if t.name == "" {
			errs = append(errs, confutil.Errorf(t.key, "must not be empty"))
			continue
		}
		if other, ok := seen[t.name]; ok {
			errs = append(errs, confutil.Errorf(t.key, "topic %q is already used by topics.%s", t.name, other))
		}
		seen[t.name] = t.key
	}
	if c.Partitions < 1 {
		errs = append(errs, confutil.Errorf("partitions", "must be at least 1"))
	}
	if c.ReplicationFactor < 1 {
		errs = append(errs, confutil.Errorf("replication_factor", "must be at least 1"))
	}
	return errors.Join(errs...)
}

// Validate checks the ingest section.
func (c IngestConfig) Validate() error {
	var errs []error
	if c.Group == "" {
		errs = append(errs, confutil.Errorf("group", "must not be empty"))
	}
	if c.MaxPollRecords < 1 {
		errs = append(errs, confutil.Errorf("max_poll_records", "must be at least 1"))
	}
	if c.DrainTimeout <= 0 {
		errs = append(errs, confutil.Errorf("drain_timeout", "must be positive"))
	}
	return errors.Join(errs...)
}

// Load reads the file at path (no file when path is empty) over the
// defaults, applies the environment and validates.
func Load(path string) (*Config, error) {
	cfg := NewDefault()
	var data []byte
	if path != "" {
		var err error
		data, err = os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config (--config.file=%q): %w", path, err)
		}
	}
	if err := load(data, path, os.Environ(), cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Parse is Load for YAML already in memory, with an explicit environment
// (KEY=VALUE strings); file only names the source in messages.
func Parse(data []byte, file string, environ []string) (*Config, error) {
	cfg := NewDefault()
	if err := load(data, file, environ, cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}
