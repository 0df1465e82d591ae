package libvirt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/collectormetrics"
	"github.com/novacron/novacron/collectors/libvirt/conn"
)

// Settings are what the binary injects into the collector.
type Settings struct {
	// Logger receives connection, start, stop and delivery problems. Nil
	// discards.
	Logger *slog.Logger
	// Registerer receives the collector's service metrics. Nil skips
	// registration.
	Registerer prometheus.Registerer
	// Now gives the time of samples and events. Nil means time.Now.
	Now func() time.Time
}

// maxPendingEvents bounds the lifecycle events waiting for delivery; when
// the sink is slower than the hosts, newer events are dropped and counted.
const maxPendingEvents = 4096

// Collector reads every configured libvirt host each interval and delivers
// what it reads to a novacron.Sink:
//
//   - one series batch per cycle, covering every host (ConsumeSeries);
//   - an inventory snapshot at the first cycle, whenever something in it
//     changed, and at least every inventory_interval (ConsumeInventory);
//   - lifecycle events as they arrive (ConsumeEvents).
//
// All sink calls come from one goroutine. Hosts are read concurrently, each
// within timeout. Delivery failures are counted and logged, never fatal.
type Collector struct {
	cfg    Config
	log    *slog.Logger
	sink   novacron.Sink
	m      *collectormetrics.Metrics
	now    func() time.Time
	hosts  []*host
	events chan novacron.Event

	mu      sync.Mutex
	started bool
	stopped bool
	cancel  context.CancelFunc
	done    chan struct{}

	// Owned by the run goroutine.
	failing   bool
	invSent   bool
	invSentAt time.Time
	invDirty  bool
	lastBatch int
}

var _ novacron.Collector = (*Collector)(nil)

// New builds a collector for cfg delivering to sink. It returns the
// validation errors of cfg, and an error when the metrics cannot be
// registered. It does not connect: hosts are dialled by the first cycle
// after Start, so an unreachable host never stops the collector from
// starting.
func New(cfg Config, set Settings, sink novacron.Sink) (*Collector, error) {
	if sink == nil {
		return nil, errors.New("libvirt collector: sink is nil")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("libvirt collector config: %w", err)
	}
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "collector/libvirt")
	now := set.Now
	if now == nil {
		now = time.Now
	}
	c := &Collector{
		cfg:    cfg,
		log:    log,
		sink:   sink,
		now:    now,
		events: make(chan novacron.Event, maxPendingEvents),
	}
	seen := map[string]string{}
	for i, hc := range cfg.Hosts {
		name, err := hostName(hc)
		if err != nil {
			return nil, fmt.Errorf("libvirt collector: hosts[%d]: %w", i, err)
		}
		if other, dup := seen[name]; dup {
			return nil, fmt.Errorf("libvirt collector: hosts[%d] (%s) and %s both have host name %q: set name", i, hc.URI, other, name)
		}
		seen[name] = hc.URI
		h, err := newHost(hc, name, &c.cfg, log, now, c.pushEvent)
		if err != nil {
			return nil, fmt.Errorf("libvirt collector: hosts[%d].uri: %w", i, err)
		}
		c.hosts = append(c.hosts, h)
	}
	m, err := collectormetrics.New(set.Registerer, TypeName)
	if err != nil {
		return nil, err
	}
	c.m = m
	return c, nil
}

// hostName is the configured name, else the URI's host, else this
// machine's name for a local daemon.
func hostName(hc HostConfig) (string, error) {
	if hc.Name != "" {
		return hc.Name, nil
	}
	t, err := conn.ParseURI(hc.URI)
	if err != nil {
		return "", err
	}
	if t.Host != "" {
		return t.Host, nil
	}
	if u, err := url.Parse(hc.URI); err == nil && u.Hostname() != "" {
		return u.Hostname(), nil
	}
	name, err := os.Hostname()
	if err != nil || name == "" {
		return "", fmt.Errorf("no name given and the local host name is unknown: %v", err)
	}
	return name, nil
}

// pushEvent queues an event for delivery; it never blocks.
func (c *Collector) pushEvent(ev novacron.Event) {
	select {
	case c.events <- ev:
	default:
		c.m.ErrDeliver.Inc()
		c.log.Warn("libvirt lifecycle event dropped: too many pending", "vm_id", ev.VMID)
	}
}

// Start starts collecting in the background and returns at once. It fails
// when called twice or after Shutdown.
func (c *Collector) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.stopped {
		return novacron.Errorf(novacron.ECONFLICT, "libvirt collector already started or shut down")
	}
	c.started = true
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	c.done = make(chan struct{})
	go c.run(runCtx)
	names := make([]string, len(c.hosts))
	for i, h := range c.hosts {
		names[i] = h.name
	}
	c.log.Info("libvirt collector started", "hosts", names, "interval", c.cfg.Interval)
	return nil
}

// Shutdown stops collecting, delivers pending lifecycle events and closes
// the connections, within ctx's deadline. It is safe without Start and
// more than once.
func (c *Collector) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	c.stopped = true
	cancel, done := c.cancel, c.done
	c.cancel = nil
	c.mu.Unlock()
	if cancel == nil {
		return nil
	}
	began := time.Now()
	cancel()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("libvirt collector shutdown: %w", ctx.Err())
	}
	var wg sync.WaitGroup
	for _, h := range c.hosts {
		wg.Go(func() { h.close(ctx) })
	}
	wg.Wait()
	c.deliverEvents(ctx)
	c.log.Info("libvirt collector stopped", "duration", time.Since(began))
	return nil
}

func (c *Collector) run(ctx context.Context) {
	defer close(c.done)
	c.cycle(ctx)
	ticker := time.NewTicker(c.cfg.Interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			c.cycle(ctx)
		case ev := <-c.events:
			c.deliverEvents(ctx, ev)
		}
	}
}

// collect reads every host concurrently, each within the timeout, and
// returns the batch and whether the inventory changed.
func (c *Collector) collect(ctx context.Context) ([]novacron.Series, bool) {
	now := c.now()
	t := now.UnixMilli()
	emitters := make([]emitter, len(c.hosts))
	changed := make([]bool, len(c.hosts))
	var wg sync.WaitGroup
	for i, h := range c.hosts {
		emitters[i] = emitter{t: t, series: make([]novacron.Series, 0, 16+c.lastBatch/max(1, len(c.hosts)))}
		wg.Go(func() {
			hctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
			defer cancel()
			var err error
			changed[i], err = h.collect(hctx, now, &emitters[i])
			if err != nil && ctx.Err() == nil {
				c.m.ErrCollect.Inc()
			}
		})
	}
	wg.Wait()
	n := 0
	anyChanged := false
	for i := range emitters {
		n += len(emitters[i].series)
		anyChanged = anyChanged || changed[i]
	}
	if len(emitters) == 1 {
		return emitters[0].series, anyChanged
	}
	batch := make([]novacron.Series, 0, n)
	for i := range emitters {
		batch = append(batch, emitters[i].series...)
	}
	return batch, anyChanged
}

// cycle collects once and delivers the batch, pending events and, when
// due, the inventory.
func (c *Collector) cycle(ctx context.Context) {
	began := time.Now()
	batch, changed := c.collect(ctx)
	if ctx.Err() != nil {
		return
	}
	n := len(batch)
	c.lastBatch = n
	if err := c.sink.ConsumeSeries(ctx, batch); err != nil {
		c.deliveryFailed(ctx, "series", err)
	} else {
		c.deliverySucceeded()
		c.m.Series.Add(float64(n))
		c.m.Samples.Add(float64(n))
	}
	c.deliverEvents(ctx)
	now := c.now()
	c.invDirty = c.invDirty || changed
	due := c.cfg.InventoryInterval > 0 && now.Sub(c.invSentAt) >= c.cfg.InventoryInterval
	if !c.invSent || due || c.invDirty {
		c.deliverInventory(ctx, now)
	}
	c.m.Cycle.Observe(time.Since(began).Seconds())
}

// inventory returns a snapshot of what the collector last read. Only the
// run goroutine calls it, between cycles.
func (c *Collector) inventory(now time.Time) novacron.Inventory {
	inv := novacron.Inventory{Source: Provider, Time: now, VMs: []novacron.VM{}, Hosts: []novacron.Host{}}
	for _, h := range c.hosts {
		h.inventory(&inv, now)
	}
	return inv
}

func (c *Collector) deliverInventory(ctx context.Context, now time.Time) {
	if err := c.sink.ConsumeInventory(ctx, c.inventory(now)); err != nil {
		c.deliveryFailed(ctx, "inventory", err)
		return
	}
	c.invSent, c.invSentAt, c.invDirty = true, now, false
}

// deliverEvents hands first (when given) and every queued event to the
// sink in one call.
func (c *Collector) deliverEvents(ctx context.Context, first ...novacron.Event) {
	events := first
	for {
		select {
		case ev := <-c.events:
			events = append(events, ev)
			continue
		default:
		}
		break
	}
	if len(events) == 0 {
		return
	}
	if err := c.sink.ConsumeEvents(ctx, events); err != nil {
		c.deliveryFailed(ctx, "events", err)
	}
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
		c.log.Warn("libvirt collector delivery failed; counting further failures silently until it recovers", "what", what, "err", err)
	}
}

func (c *Collector) deliverySucceeded() {
	if c.failing {
		c.failing = false
		c.log.Info("libvirt collector delivery recovered")
	}
}
