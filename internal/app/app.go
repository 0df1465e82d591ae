package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/actuator"
	actapi "github.com/novacron/novacron/actuator/api"
	actaws "github.com/novacron/novacron/actuator/aws"
	actlibvirt "github.com/novacron/novacron/actuator/libvirt"
	"github.com/novacron/novacron/alerting"
	alertapi "github.com/novacron/novacron/alerting/api"
	"github.com/novacron/novacron/api"
	"github.com/novacron/novacron/api/eventsapi"
	awscoll "github.com/novacron/novacron/collectors/aws"
	libvirtcoll "github.com/novacron/novacron/collectors/libvirt"
	"github.com/novacron/novacron/collectors/sim"
	"github.com/novacron/novacron/internal/buildinfo"
	"github.com/novacron/novacron/internal/bus/kafkabus"
	"github.com/novacron/novacron/internal/bus/membus"
	"github.com/novacron/novacron/internal/config"
	"github.com/novacron/novacron/internal/inventory"
	"github.com/novacron/novacron/internal/selfscrape"
	"github.com/novacron/novacron/internal/statedb"
	"github.com/novacron/novacron/internal/storage"
	"github.com/novacron/novacron/internal/storage/promapi"
	"github.com/novacron/novacron/internal/storage/remotewrite"
	"github.com/novacron/novacron/internal/storage/tsdbstore"
	"github.com/novacron/novacron/pipeline/analytics"
	"github.com/novacron/novacron/pipeline/events"
	"github.com/novacron/novacron/pipeline/ingest"
	"github.com/novacron/novacron/pipeline/publish"
	"github.com/novacron/novacron/pipeline/subscribe"
)

// App is one NovaCron process running some roles. Open builds and starts
// them; Close stops them in an order that drains data downstream.
type App struct {
	cfg    *config.Config
	roles  []string
	logger *slog.Logger
	// Registry holds every metric of the process; /metrics serves it.
	Registry *prometheus.Registry
	// Stdout receives the start-up banner (URLs, token file); nil: none.
	Stdout io.Writer

	bus    novacron.Bus
	store  *tsdbstore.Store
	writer storage.Writer
	sender *storage.Sender
	ingest *ingest.Ingest
	subs   []*subscribe.Subscriber
	server *api.Server
	sim    *sim.Collector
	// collectors are every started collector, the simulated fleet included.
	collectors    []novacron.Collector
	collectorKeys []string
	// operatorTokenPath is the generated actuator operator token file.
	operatorTokenPath string
	actuator          *actuator.Actuator
	fleet             *inventory.Store
	scraper           *selfscrape.Scraper
	analytics         *analytics.Stage
	alerting          *alerting.Alerting
	db                *statedb.DB
	events            *events.Index
	token             api.TokenSource
	closeOnce         bool
}

// New returns an App for the roles; nothing runs before Open.
func New(cfg *config.Config, roles []string, logger *slog.Logger) *App {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildinfo.NewCollector())
	return &App{cfg: cfg, roles: roles, logger: logger, Registry: reg}
}

func (a *App) has(role string) bool { return slices.Contains(a.roles, role) }

// APIURL returns the API's base URL once Open returned, or "".
func (a *App) APIURL() string {
	if a.server == nil {
		return ""
	}
	return a.server.URL()
}

// Token returns the API token once Open returned.
func (a *App) Token() string { return a.token.Token }

// SimFleet returns the simulated fleet's collector, when it runs here.
func (a *App) SimFleet() *sim.Collector { return a.sim }

// Run opens the app, waits for ctx to end, then closes it.
func (a *App) Run(ctx context.Context) error {
	if err := a.Open(ctx); err != nil {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return errors.Join(err, a.Close(cctx))
	}
	<-ctx.Done()
	a.logger.Info("shutting down", "reason", context.Cause(ctx))
	cctx, cancel := context.WithTimeout(context.Background(), a.cfg.Ingest.DrainTimeout+a.cfg.API.ShutdownTimeout+5*time.Second)
	defer cancel()
	return a.Close(cctx)
}

// Open builds the roles' components and starts them, consumers before
// producers. On error the caller must still Close.
func (a *App) Open(ctx context.Context) error {
	start := time.Now()
	a.logger.Info("starting novacron", "version", buildinfo.Version, "roles", a.roles)
	if err := os.MkdirAll(a.cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("create data_dir %q: %w", a.cfg.DataDir, err)
	}
	if err := a.openBus(ctx); err != nil {
		return err
	}
	if a.has(RoleProcessor) || a.has(RoleAPI) {
		if err := a.openStorage(); err != nil {
			return err
		}
	}
	if a.has(RoleProcessor) {
		a.sender = storage.NewSender(a.writer, a.cfg.Storage.Sender, storage.Settings{Logger: a.logger, Registerer: a.Registry})
		if err := a.sender.Start(ctx); err != nil {
			return fmt.Errorf("start storage sender: %w", err)
		}
		a.ingest = ingest.New(ingest.Config{
			Group:           a.cfg.Ingest.Group,
			SamplesTopic:    a.cfg.Topics.Samples,
			DeadLetterTopic: a.cfg.Topics.DeadLetter,
			MaxPollRecords:  a.cfg.Ingest.MaxPollRecords,
		}, ingest.Settings{Logger: a.logger, Registerer: a.Registry}, a.bus, a.sender)
		if err := a.ingest.Start(ctx); err != nil {
			return err
		}
		if a.cfg.Analytics.Enabled {
			acfg := a.cfg.Analytics
			if a.cfg.Bus.Type == config.BusMemory {
				if acfg.Checkpoint.Store == "topic" {
					acfg.Checkpoint.Store = "dir"
				}
				// The in-process bus keeps unacknowledged records, and
				// blocks producers when a partition is full: checkpoint
				// before the records waiting for one could fill it.
				acfg.Checkpoint.MaxRecords = min(acfg.Checkpoint.MaxRecords, a.cfg.Bus.Memory.MaxRecordsPerPartition/2)
			}
			st, err := analytics.New(acfg, analytics.Settings{Logger: a.logger, Registerer: a.Registry, DataDir: a.cfg.DataDir},
				a.bus, a.sender, analytics.Topics{
					Samples: a.cfg.Topics.Samples, Events: a.cfg.Topics.Events, ReplicationFactor: a.cfg.Topics.ReplicationFactor,
				})
			if err != nil {
				return fmt.Errorf("analytics: %w", err)
			}
			if err := st.Start(ctx); err != nil {
				return fmt.Errorf("start analytics: %w", err)
			}
			a.analytics = st
		}
	}
	if a.has(RoleCollector) {
		if err := a.buildCollectors(); err != nil {
			return err
		}
	}
	if a.has(RoleAPI) {
		if err := a.openAPI(ctx); err != nil {
			return err
		}
	}
	if a.has(RoleCollector) {
		if err := a.startCollectors(ctx); err != nil {
			return err
		}
	}
	if a.writer != nil && a.has(RoleProcessor) && a.cfg.SelfScrapeInterval > 0 {
		instance := a.cfg.API.ListenAddress
		if a.server != nil {
			instance = a.server.Addr()
		} else if h, err := os.Hostname(); err == nil {
			instance = h
		}
		a.scraper = selfscrape.New(a.Registry, a.writer, a.cfg.SelfScrapeInterval, "novacron", instance, a.logger)
		if err := a.scraper.Start(ctx); err != nil {
			return err
		}
	}
	a.logger.Info("novacron started", "roles", a.roles, "duration", time.Since(start))
	a.banner()
	return nil
}

// buildCollectors builds the enabled collectors, each delivering to the
// publisher; startCollectors starts them once their consumers run.
func (a *App) buildCollectors() error {
	pub := publish.New(a.bus, publish.Topics{
		Samples: a.cfg.Topics.Samples, Inventory: a.cfg.Topics.Inventory, Events: a.cfg.Topics.Events,
	}, publish.Settings{Logger: a.logger, Registerer: a.Registry})
	type named struct {
		key string
		c   novacron.Collector
	}
	var cs []named
	if a.cfg.SimEnabled() {
		c, err := sim.New(a.cfg.Collectors.Sim.Config, sim.Settings{Logger: a.logger, Registerer: a.Registry}, pub)
		if err != nil {
			return fmt.Errorf("collectors.sim: %w", err)
		}
		a.sim = c
		cs = append(cs, named{"collectors.sim", c})
	}
	if a.cfg.Collectors.Libvirt.Enabled {
		c, err := libvirtcoll.New(a.cfg.Collectors.Libvirt, libvirtcoll.Settings{Logger: a.logger, Registerer: a.Registry}, pub)
		if err != nil {
			return fmt.Errorf("collectors.libvirt: %w", err)
		}
		cs = append(cs, named{"collectors.libvirt", c})
	}
	if a.cfg.Collectors.AWS.Enabled {
		c, err := awscoll.New(a.cfg.Collectors.AWS, awscoll.Settings{Logger: a.logger, Registerer: a.Registry}, pub)
		if err != nil {
			return fmt.Errorf("collectors.aws: %w", err)
		}
		cs = append(cs, named{"collectors.aws", c})
	}
	for _, n := range cs {
		a.collectors = append(a.collectors, n.c)
		a.collectorKeys = append(a.collectorKeys, n.key)
	}
	if len(cs) == 0 {
		a.logger.Warn("the collector role runs no collector: enable one under collectors")
	}
	return nil
}

func (a *App) startCollectors(ctx context.Context) error {
	for i, c := range a.collectors {
		if err := c.Start(ctx); err != nil {
			return fmt.Errorf("start %s: %w", a.collectorKeys[i], err)
		}
	}
	return nil
}

func (a *App) openBus(ctx context.Context) error {
	switch a.cfg.Bus.Type {
	case config.BusKafka:
		b, err := kafkabus.New(a.cfg.Bus.Kafka, kafkabus.Settings{Logger: a.logger, Registerer: a.Registry})
		if err != nil {
			return fmt.Errorf("bus.kafka: %w", err)
		}
		a.bus = b
	default:
		b, err := membus.New(a.cfg.Bus.Memory, membus.Settings{Logger: a.logger, Registerer: a.Registry})
		if err != nil {
			return fmt.Errorf("bus.memory: %w", err)
		}
		a.bus = b
	}
	if !a.cfg.Topics.Create {
		return nil
	}
	t := a.cfg.Topics
	specs := []novacron.TopicSpec{
		{Name: t.Samples, Partitions: t.Partitions, ReplicationFactor: t.ReplicationFactor},
		{Name: t.Events, Partitions: t.Partitions, ReplicationFactor: t.ReplicationFactor},
		{Name: t.DeadLetter, Partitions: 1, ReplicationFactor: t.ReplicationFactor},
		// Inventory snapshots replace each other per source: compaction
		// keeps the newest one per key forever and drops the rest.
		{Name: t.Inventory, Partitions: 1, ReplicationFactor: t.ReplicationFactor,
			Configs: map[string]string{"cleanup.policy": "compact"}},
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := a.bus.EnsureTopics(cctx, specs); err != nil {
		return fmt.Errorf("create topics (topics.create): %w", err)
	}
	return nil
}

func (a *App) openStorage() error {
	switch a.cfg.Storage.Type {
	case config.StorageRemote:
		w, err := remotewrite.New(a.cfg.Storage.Remote.Write, storage.Settings{Logger: a.logger, Registerer: a.Registry})
		if err != nil {
			return fmt.Errorf("storage.remote.write: %w", err)
		}
		a.writer = w
	default:
		ecfg := a.cfg.Storage.Embedded
		ecfg.Path = a.cfg.EmbeddedPath()
		s, err := tsdbstore.Open(ecfg, storage.Settings{Logger: a.logger, Registerer: a.Registry})
		if err != nil {
			return fmt.Errorf("storage.embedded: %w", err)
		}
		a.store, a.writer = s, s
	}
	return nil
}

func (a *App) queryHandler() (http.Handler, error) {
	if a.store != nil {
		return promapi.NewHandler(a.store), nil
	}
	return promapi.NewProxy(a.cfg.Storage.Remote.Query)
}

func (a *App) openAPI(ctx context.Context) error {
	tok, err := api.ResolveToken(a.cfg.API.Token, a.cfg.API.TokenFile, a.cfg.DataDir)
	if err != nil {
		return err
	}
	a.token = tok
	q, err := a.queryHandler()
	if err != nil {
		return fmt.Errorf("storage query API: %w", err)
	}
	a.fleet = inventory.NewStore()
	// Every API process needs the whole inventory: a group of its own,
	// reading the compacted topic from the start.
	sub := subscribe.Inventory(a.bus, "novacron-api-"+randomSuffix(), a.cfg.Topics.Inventory, a.cfg.Topics.DeadLetter,
		a.fleet, subscribe.Settings{Logger: a.logger, Registerer: a.Registry})
	if err := sub.Start(ctx); err != nil {
		return err
	}
	a.subs = append(a.subs, sub)
	mounts, err := a.openAlerting(ctx)
	if err != nil {
		return err
	}
	am, err := a.openActuator(ctx, q)
	if err != nil {
		return err
	}
	mounts = append(mounts, am...)
	a.events = events.NewIndex(events.NewDefaultConfig())
	esub := subscribe.Events(a.bus, "novacron-api-events-"+randomSuffix(), a.cfg.Topics.Events, a.cfg.Topics.DeadLetter,
		a.events, subscribe.Settings{Logger: a.logger, Registerer: a.Registry})
	if err := esub.Start(ctx); err != nil {
		return err
	}
	a.subs = append(a.subs, esub)
	ready := []api.ReadyCheck{{Name: "bus", Check: a.bus.Ping}}
	if a.writer != nil {
		ready = append(ready, api.ReadyCheck{Name: "storage", Check: a.writer.Ping})
	}
	srv, err := api.New(api.Options{
		ListenAddress: a.cfg.API.ListenAddress, Token: tok.Token, ShutdownTimeout: a.cfg.API.ShutdownTimeout,
	}, api.Settings{Logger: a.logger, Registerer: a.Registry, Gatherer: a.Registry}, api.Deps{
		Fleet: a.fleet, Query: q, Ready: ready,
		Mount: append([]func(*gin.RouterGroup){eventsapi.Mount(a.events)}, mounts...),
	})
	if err != nil {
		return err
	}
	if err := srv.Open(); err != nil {
		return err
	}
	a.server = srv
	return nil
}

// openAlerting opens the state database and starts alerting (rules,
// event alerts, notifications) when enabled, fed by the events topic.
func (a *App) openAlerting(ctx context.Context) ([]func(*gin.RouterGroup), error) {
	if !a.cfg.Alerting.Enabled {
		return nil, nil
	}
	db, err := a.stateDB(ctx)
	if err != nil {
		return nil, err
	}
	deps := alerting.Deps{DB: db}
	if a.store != nil {
		deps.Query, deps.Appendable = a.store, a.store.Appendable()
	} else {
		q := a.cfg.Storage.Remote.Query
		deps.RemoteQuery = &q
		// Recording rules and ALERTS are re-evaluated every interval, so
		// they go straight to the writer without a queue of their own.
		deps.Appendable = alerting.WriterAppendable(a.writer)
	}
	al, err := alerting.New(a.cfg.Alerting, alerting.Settings{Logger: a.logger, Registerer: a.Registry}, deps)
	if err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	if err := al.Start(ctx); err != nil {
		return nil, fmt.Errorf("start alerting: %w", err)
	}
	a.alerting = al
	sub := subscribe.Events(a.bus, "novacron-alerting", a.cfg.Topics.Events, a.cfg.Topics.DeadLetter, al,
		subscribe.Settings{Logger: a.logger, Registerer: a.Registry, Consumer: "alerting"})
	if err := sub.Start(ctx); err != nil {
		return nil, err
	}
	a.subs = append(a.subs, sub)
	return []func(*gin.RouterGroup){alertapi.Mount(al, a.logger)}, nil
}

// stateDB opens the state database once for the components that share it.
func (a *App) stateDB(ctx context.Context) (*statedb.DB, error) {
	if a.db != nil {
		return a.db, nil
	}
	db, err := statedb.Open(ctx, a.cfg.StateConfig(), statedb.Settings{Logger: a.logger, Registerer: a.Registry})
	if err != nil {
		return nil, fmt.Errorf("state database: %w", err)
	}
	a.db = db
	return db, nil
}

// openActuator starts the actuator with the drivers this process has,
// fed by the events and inventory topics, when enabled.
func (a *App) openActuator(ctx context.Context, query http.Handler) ([]func(*gin.RouterGroup), error) {
	ac := a.cfg.Actuator
	if !ac.Enabled {
		return nil, nil
	}
	drivers := map[string]novacron.Driver{}
	if a.sim != nil {
		d := a.sim.Driver()
		drivers[d.Provider()] = d
	}
	if ac.Drivers.Libvirt.Enabled {
		d, err := actlibvirt.New(ac.Drivers.Libvirt.Config, actlibvirt.Settings{Logger: a.logger})
		if err != nil {
			return nil, fmt.Errorf("actuator.drivers.libvirt: %w", err)
		}
		drivers[d.Provider()] = d
	}
	if ac.Drivers.AWS.Enabled {
		d, err := actaws.New(ac.Drivers.AWS.Config, actaws.Settings{Logger: a.logger})
		if err != nil {
			return nil, fmt.Errorf("actuator.drivers.aws: %w", err)
		}
		drivers[d.Provider()] = d
	}
	if len(drivers) == 0 {
		a.logger.Warn("actuator enabled without drivers in this process: it records plans only; enable actuator.drivers or run the simulated fleet here")
		return nil, nil
	}
	db, err := a.stateDB(ctx)
	if err != nil {
		return nil, err
	}
	if ac.OperatorToken == "" && ac.OperatorTokenFile == "" {
		// Like the API token: generated once into the data directory, so
		// an operator can approve actions on a fresh installation.
		path := filepath.Join(a.cfg.DataDir, OperatorTokenFileName)
		if _, err := api.ResolveTokenFile(path); err != nil {
			return nil, fmt.Errorf("actuator operator token: %w", err)
		}
		ac.OperatorTokenFile = path
		a.operatorTokenPath = path
	}
	act, err := actuator.New(ac.Config, actuator.Settings{Logger: a.logger, Registerer: a.Registry}, actuator.Deps{
		DB: db, Drivers: drivers, Bus: a.bus, Topics: actuator.Topics{Events: a.cfg.Topics.Events},
		Query: actuator.QueryFunc(func(ctx context.Context, expr string, t time.Time) (float64, error) {
			return queryOne(ctx, query, expr, t)
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("actuator: %w", err)
	}
	if err := act.Start(ctx); err != nil {
		return nil, fmt.Errorf("start actuator: %w", err)
	}
	a.actuator = act
	set := subscribe.Settings{Logger: a.logger, Registerer: a.Registry, Consumer: "actuator"}
	for _, sub := range []*subscribe.Subscriber{
		subscribe.Events(a.bus, "novacron-actuator", a.cfg.Topics.Events, a.cfg.Topics.DeadLetter, act, set),
		subscribe.Inventory(a.bus, "novacron-actuator-inventory-"+randomSuffix(), a.cfg.Topics.Inventory, a.cfg.Topics.DeadLetter, act, set),
	} {
		if err := sub.Start(ctx); err != nil {
			return nil, err
		}
		a.subs = append(a.subs, sub)
	}
	return []func(*gin.RouterGroup){actapi.Mount(act)}, nil
}

func (a *App) banner() {
	if a.server == nil {
		return
	}
	if a.token.Path != "" {
		a.logger.Info("API token file", "path", a.token.Path, "generated", a.token.Generated)
	}
	if a.Stdout == nil {
		return
	}
	u := a.server.URL()
	fmt.Fprintf(a.Stdout, "\nNovaCron is running (roles: %v)\n", a.roles)
	fmt.Fprintf(a.Stdout, "  API and PromQL:  %s  (Prometheus HTTP API under /api/v1)\n", u)
	fmt.Fprintf(a.Stdout, "  Fleet:           %s/api/v1/fleet\n", u)
	fmt.Fprintf(a.Stdout, "  Health:          %s/healthz  %s/readyz\n", u, u)
	fmt.Fprintf(a.Stdout, "  Metrics:         %s/metrics\n", u)
	switch {
	case a.token.Path != "":
		fmt.Fprintf(a.Stdout, "  API token file:  %s  (send it as: Authorization: Bearer <token>)\n", a.token.Path)
	default:
		fmt.Fprintf(a.Stdout, "  API token:       from the configuration or NOVACRON_API_TOKEN\n")
	}
	if a.operatorTokenPath != "" {
		fmt.Fprintf(a.Stdout, "  Operator token:  %s  (approving actions: X-NovaCron-Operator-Token: <token>)\n", a.operatorTokenPath)
	}
	fmt.Fprintln(a.Stdout)
}

// Close stops producers first, then drains the pipeline into storage,
// then stops the API and closes the bus and the store. It reports every
// error and is safe to call after a failed Open.
func (a *App) Close(ctx context.Context) error {
	if a.closeOnce {
		return nil
	}
	a.closeOnce = true
	start := time.Now()
	var errs []error
	for _, c := range a.collectors {
		errs = append(errs, c.Shutdown(ctx))
	}
	if a.scraper != nil {
		errs = append(errs, a.scraper.Shutdown(ctx))
	}
	if a.ingest != nil {
		errs = append(errs, a.ingest.Shutdown(ctx))
	}
	if a.analytics != nil {
		errs = append(errs, a.analytics.Shutdown(ctx))
	}
	if a.sender != nil {
		errs = append(errs, a.sender.Shutdown(ctx))
	}
	for _, s := range a.subs {
		errs = append(errs, s.Shutdown(ctx))
	}
	if a.server != nil {
		errs = append(errs, a.server.Close(ctx))
	}
	if a.alerting != nil {
		errs = append(errs, a.alerting.Shutdown(ctx))
	}
	if a.actuator != nil {
		errs = append(errs, a.actuator.Shutdown(ctx))
	}
	if a.bus != nil {
		errs = append(errs, a.bus.Close())
	}
	if a.store != nil {
		errs = append(errs, a.store.Shutdown(ctx))
	}
	if a.db != nil {
		errs = append(errs, a.db.Close())
	}
	err := errors.Join(errs...)
	a.logger.Info("novacron stopped", "duration", time.Since(start), "err", err)
	return err
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// OperatorTokenFileName is the file in the data directory that holds a
// generated actuator operator token.
const OperatorTokenFileName = "operator-token"
