package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/collectormetrics"
)

// Settings are what the binary injects into the collector.
type Settings struct {
	// Logger receives start, stop and delivery problems. Nil discards.
	Logger *slog.Logger
	// Registerer receives the collector's service metrics. Nil skips
	// registration.
	Registerer prometheus.Registerer
	// Now gives the real time, used only as the default start_time. Nil
	// means time.Now.
	Now func() time.Time
}

// Collector runs a Fleet in (scaled) real time and delivers what it
// produces to a novacron.Sink:
//
//   - every real interval/speed, the fleet steps interval of simulated time
//     and the batch goes to ConsumeSeries (the first batch at Start);
//   - lifecycle events from actions go to ConsumeEvents;
//   - an inventory snapshot goes to ConsumeInventory at start, every
//     inventory_interval of simulated time, and after actions.
//
// All sink calls come from one goroutine. Delivery failures are counted and
// logged, never fatal; the batch is dropped (the next one follows one
// interval later).
type Collector struct {
	cfg   Config
	log   *slog.Logger
	sink  novacron.Sink
	fleet *Fleet
	m     *collectormetrics.Metrics
	tick  time.Duration
	dirty chan struct{}

	mu      sync.Mutex
	started bool
	stopped bool
	cancel  context.CancelFunc
	done    chan struct{}

	// Owned by the run goroutine.
	failing   bool
	invSentAt time.Time
	invSent   bool
}

var _ novacron.Collector = (*Collector)(nil)

// New builds a collector for cfg delivering to sink. It returns the
// validation errors of cfg, and an error when the metrics cannot be
// registered.
func New(cfg Config, set Settings, sink novacron.Sink) (*Collector, error) {
	if sink == nil {
		return nil, errors.New("sim collector: sink is nil")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sim collector config: %w", err)
	}
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := cfg.StartTime
	if start.IsZero() {
		now := set.Now
		if now == nil {
			now = time.Now
		}
		start = now().Truncate(time.Millisecond)
	}
	fleet, err := NewFleet(cfg, start)
	if err != nil {
		return nil, err
	}
	m, err := collectormetrics.New(set.Registerer, Provider)
	if err != nil {
		return nil, err
	}
	return &Collector{
		cfg:   cfg,
		log:   log.With("component", "collector/sim"),
		sink:  sink,
		fleet: fleet,
		m:     m,
		tick:  time.Duration(float64(cfg.Interval) / cfg.Speed),
		dirty: make(chan struct{}, 1),
	}, nil
}

// Fleet returns the simulated fleet, for inspection. Actions applied to it
// directly are delivered with the next cycle; use Driver to have them
// delivered at once.
func (c *Collector) Fleet() *Fleet { return c.fleet }

// Driver returns the fleet's novacron.Driver. After each action that
// changes something, the collector delivers the lifecycle event and a fresh
// inventory without waiting for the next cycle.
func (c *Collector) Driver() novacron.Driver { return driver{c} }

// Start starts stepping the fleet in the background and returns at once.
// It fails when called twice or after Shutdown.
func (c *Collector) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.stopped {
		return novacron.Errorf(novacron.ECONFLICT, "sim collector already started or shut down")
	}
	c.started = true
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	c.done = make(chan struct{})
	go c.run(runCtx)
	c.log.Info("sim collector started", "hosts", c.cfg.Hosts, "vms", c.cfg.VMs,
		"interval", c.cfg.Interval, "speed", c.cfg.Speed, "start_time", c.fleet.StartTime())
	return nil
}

// Shutdown stops the background work and delivers pending lifecycle
// events within ctx's deadline. It is safe without Start and more than
// once.
func (c *Collector) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	c.stopped = true
	cancel, done := c.cancel, c.done
	c.mu.Unlock()
	if cancel == nil {
		return nil
	}
	began := time.Now()
	cancel()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("sim collector shutdown: %w", ctx.Err())
	}
	c.deliverEvents(ctx)
	c.log.Info("sim collector stopped", "duration", time.Since(began), "simulated_time", c.fleet.Now())
	return nil
}

func (c *Collector) run(ctx context.Context) {
	defer close(c.done)
	simNow := c.fleet.StartTime()
	c.cycle(ctx, simNow)
	ticker := time.NewTicker(c.tick)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			simNow = simNow.Add(c.cfg.Interval)
			c.cycle(ctx, simNow)
		case <-c.dirty:
			if c.deliverEvents(ctx) {
				c.deliverInventory(ctx, c.fleet.Now())
			}
		}
	}
}

// cycle steps the fleet to simNow and delivers the batch, pending events
// and, when due, the inventory.
func (c *Collector) cycle(ctx context.Context, simNow time.Time) {
	began := time.Now()
	batch := c.fleet.Step(simNow)
	n := len(batch)
	if err := c.sink.ConsumeSeries(ctx, batch); err != nil {
		c.deliveryFailed(ctx, "series", err)
	} else {
		c.deliverySucceeded()
		c.m.Series.Add(float64(n))
		c.m.Samples.Add(float64(n))
	}
	changed := c.deliverEvents(ctx)
	due := c.cfg.InventoryInterval > 0 && simNow.Sub(c.invSentAt) >= c.cfg.InventoryInterval
	if !c.invSent || due || changed {
		c.deliverInventory(ctx, simNow)
	}
	c.m.Cycle.Observe(time.Since(began).Seconds())
}

// deliverEvents hands pending lifecycle events to the sink and reports
// whether there were any.
func (c *Collector) deliverEvents(ctx context.Context) bool {
	events, dropped := c.fleet.TakeEvents(nil)
	if dropped > 0 {
		c.m.ErrDeliver.Add(float64(dropped))
		c.log.Warn("sim lifecycle events dropped: too many actions between deliveries", "dropped", dropped)
	}
	if len(events) == 0 {
		return false
	}
	if err := c.sink.ConsumeEvents(ctx, events); err != nil {
		c.deliveryFailed(ctx, "events", err)
	}
	return true
}

func (c *Collector) deliverInventory(ctx context.Context, at time.Time) {
	if err := c.sink.ConsumeInventory(ctx, c.fleet.Inventory(at)); err != nil {
		c.deliveryFailed(ctx, "inventory", err)
		return
	}
	c.invSent, c.invSentAt = true, at
}

// deliveryFailed counts a failed delivery and logs the first of a run of
// failures, so a down sink does not flood the log.
func (c *Collector) deliveryFailed(ctx context.Context, what string, err error) {
	if ctx.Err() != nil {
		return // shutting down
	}
	c.m.ErrDeliver.Inc()
	if !c.failing {
		c.failing = true
		c.log.Warn("sim collector delivery failed; counting further failures silently until it recovers", "what", what, "err", err)
	}
}

func (c *Collector) deliverySucceeded() {
	if c.failing {
		c.failing = false
		c.log.Info("sim collector delivery recovered")
	}
}

// driver is the fleet's Driver with prompt delivery of what actions change.
type driver struct{ c *Collector }

func (d driver) notify(err error) error {
	if err == nil {
		select {
		case d.c.dirty <- struct{}{}:
		default:
		}
	}
	return err
}

func (d driver) Provider() string { return Provider }

func (d driver) VM(ctx context.Context, id string) (novacron.VM, error) {
	return d.c.fleet.VM(ctx, id)
}

func (d driver) Start(ctx context.Context, id string) error {
	return d.notify(d.c.fleet.Start(ctx, id))
}

func (d driver) Stop(ctx context.Context, id string, timeout time.Duration) error {
	return d.notify(d.c.fleet.Stop(ctx, id, timeout))
}

func (d driver) Reboot(ctx context.Context, id string) error {
	return d.notify(d.c.fleet.Reboot(ctx, id))
}

func (d driver) Resize(ctx context.Context, id string, size novacron.Size) error {
	return d.notify(d.c.fleet.Resize(ctx, id, size))
}

func (d driver) Migrate(ctx context.Context, id, host string) error {
	return d.notify(d.c.fleet.Migrate(ctx, id, host))
}
