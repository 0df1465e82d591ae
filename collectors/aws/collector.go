package aws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/prometheus/client_golang/prometheus"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/catalog"
)

// Provider is the provider label of every series and the collector label
// of the service metrics.
const Provider = "aws"

// Settings are what the binary injects into the collector.
type Settings struct {
	// Logger receives start, stop and collection problems. Nil discards.
	Logger *slog.Logger
	// Registerer receives the collector's service metrics. Nil skips
	// registration.
	Registerer prometheus.Registerer
	// Now gives the time that cycles collect up to. Nil means time.Now.
	Now func() time.Time
	// Credentials replaces the standard credential chain's base
	// credentials (roles are still assumed with them). Nil: the chain.
	Credentials aws.CredentialsProvider
	// HTTPClient sends the API requests. Nil: the SDK's default client.
	HTTPClient aws.HTTPClient
}

// Collector discovers EC2 instances and reads their CloudWatch metrics in
// every configured account and region, delivering series and inventory
// snapshots to a novacron.Sink.
//
// Every interval it runs one cycle per account and region, concurrently:
// DescribeInstances when discovery_interval has passed (with an inventory
// snapshot), ListMetrics when its cache is older than list_metrics_ttl,
// and GetMetricData over the periods completed since the last cycle. A
// failing account or region is logged and counted; the others carry on.
// Sink calls are serialised. Errors never stop the collector.
type Collector struct {
	cfg     Config
	log     *slog.Logger
	sink    novacron.Sink
	m       *metrics
	guard   *apiGuard
	now     func() time.Time
	targets []*target
	states  []*targetState

	sinkMu sync.Mutex

	mu      sync.Mutex
	started bool
	stopped bool
	cancel  context.CancelFunc
	done    chan struct{}
}

var _ novacron.Collector = (*Collector)(nil)

// targetState is what one account-region keeps between cycles. Only the
// cycle of that target touches it.
type targetState struct {
	types    map[ec2types.InstanceType]typeSize
	listed   map[string][]listedMetric
	listedAt time.Time

	insts        []*instance
	discovered   bool
	discoveredAt time.Time

	cursor   time.Time            // end of the last window read in full
	last     map[string]time.Time // per query key: newest sample delivered
	counters map[string]float64   // per query key: running sum
	status   map[string]float64   // per instance: latest StatusCheckFailed
}

func newTargetState() *targetState {
	return &targetState{
		types:    map[ec2types.InstanceType]typeSize{},
		last:     map[string]time.Time{},
		counters: map[string]float64{},
		status:   map[string]float64{},
	}
}

// New builds a collector for cfg delivering to sink. It returns the
// validation errors of cfg, an error when the AWS configuration (profile,
// shared files) cannot be loaded, and an error when the metrics cannot be
// registered. It makes no AWS call.
func New(cfg Config, set Settings, sink novacron.Sink) (*Collector, error) {
	if sink == nil {
		return nil, errors.New("aws collector: sink is nil")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("aws collector config: %w", err)
	}
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := set.Now
	if now == nil {
		now = time.Now
	}
	m, err := newMetrics(set.Registerer)
	if err != nil {
		return nil, err
	}
	guard := newAPIGuard(&cfg, m)
	base, err := loadBase(context.Background(), &cfg, set, guard)
	if err != nil {
		return nil, fmt.Errorf("aws collector: %w", err)
	}
	c := &Collector{
		cfg:     cfg,
		log:     log.With("component", "collector/aws"),
		sink:    sink,
		m:       m,
		guard:   guard,
		now:     now,
		targets: newTargets(base, &cfg),
	}
	for range c.targets {
		c.states = append(c.states, newTargetState())
	}
	return c, nil
}

// Start begins collecting in the background (the first cycle at once)
// and returns. It fails when called twice or after Shutdown.
func (c *Collector) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.stopped {
		return novacron.Errorf(novacron.ECONFLICT, "aws collector already started or shut down")
	}
	c.started = true
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	c.done = make(chan struct{})
	go c.run(runCtx)
	c.log.Info("aws collector started", "targets", len(c.targets), "interval", c.cfg.Interval, "period", c.cfg.Period)
	return nil
}

// Shutdown stops collecting, waiting for a running cycle within ctx's
// deadline. It is safe without Start and more than once.
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
		return fmt.Errorf("aws collector shutdown: %w", ctx.Err())
	}
	c.log.Info("aws collector stopped", "duration", time.Since(began))
	return nil
}

func (c *Collector) run(ctx context.Context) {
	defer close(c.done)
	ticker := time.NewTicker(c.cfg.Interval)
	defer ticker.Stop()
	for {
		c.Collect(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// Collect runs one cycle over every account and region at once, up to
// Settings.Now, and returns when it is delivered. Start calls it every
// interval; tests and tools may call it directly instead of Start, never
// both and never concurrently.
func (c *Collector) Collect(ctx context.Context) {
	began := time.Now()
	now := c.now()
	var wg sync.WaitGroup
	for i, t := range c.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.collectTarget(ctx, t, c.states[i], now)
		}()
	}
	wg.Wait()
	c.m.cycle.Observe(time.Since(began).Seconds())
}

func (c *Collector) collectTarget(ctx context.Context, t *target, st *targetState, now time.Time) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout*4)
	defer cancel()
	log := c.log.With("account", t.account, "region", t.region)
	if !st.discovered || now.Sub(st.discoveredAt) >= c.cfg.DiscoveryInterval {
		insts, err := c.discover(ctx, t, st, now)
		if err != nil {
			if ctx.Err() == nil {
				c.m.errCollect.Inc()
				log.Warn("aws discovery failed", "err", err)
			}
			if !st.discovered {
				return
			}
		} else {
			c.forget(st, st.insts, insts)
			st.insts, st.discovered, st.discoveredAt = insts, true, now
			c.m.instances.WithLabelValues(t.account, t.region).Set(float64(len(insts)))
			c.deliverInventory(ctx, inventory(t, insts, now))
		}
	}

	var batch []novacron.Series
	end := now.Add(-c.cfg.Delay).Truncate(c.cfg.Period)
	start := st.cursor
	if start.IsZero() || end.Sub(start) > c.cfg.Lookback {
		earliest := end.Add(-c.cfg.Lookback).Truncate(c.cfg.Period)
		if !start.IsZero() {
			c.m.queryErrors.WithLabelValues(queryErrGap).Add(float64(earliest.Sub(start) / c.cfg.Period))
			log.Warn("aws collector fell behind; skipping periods", "from", start, "to", earliest)
		}
		start = earliest
	}
	if end.After(start) {
		listed, err := c.listMetrics(ctx, t, st, now)
		if err != nil && ctx.Err() == nil {
			c.m.errCollect.Inc()
			log.Warn("aws ListMetrics failed; reading core metrics only", "err", err)
		}
		qs := c.plan(st.insts, listed)
		pts, err := c.fetch(ctx, t, qs, start, end)
		if err != nil {
			if ctx.Err() == nil {
				c.m.errCollect.Inc()
				log.Warn("aws GetMetricData failed; the window is read again next cycle", "err", err)
			}
		} else {
			st.cursor = end
		}
		batch = c.convert(st, qs, pts, batch)
	}
	batch = c.stateSeries(st, now, batch)
	c.deliverSeries(ctx, batch)
}

// forget drops the per-series state of instances that are gone.
func (c *Collector) forget(st *targetState, old, cur []*instance) {
	keep := map[string]bool{}
	for _, in := range cur {
		keep[in.vm.ID] = true
	}
	gone := map[string]bool{}
	for _, in := range old {
		if !keep[in.vm.ID] {
			gone[in.vm.ID] = true
			delete(st.status, in.vm.ID)
		}
	}
	if len(gone) == 0 {
		return
	}
	for _, m := range []map[string]float64{st.counters} {
		for k := range m {
			if gone[instanceOfKey(k)] {
				delete(m, k)
			}
		}
	}
	for k := range st.last {
		if gone[instanceOfKey(k)] {
			delete(st.last, k)
		}
	}
}

func instanceOfKey(k string) string {
	for i := 0; i < len(k); i++ {
		if k[i] == 0 {
			return k[:i]
		}
	}
	return k
}

func (c *Collector) deliverSeries(ctx context.Context, batch []novacron.Series) {
	if len(batch) == 0 {
		return
	}
	samples := 0
	for _, s := range batch {
		samples += len(s.Samples)
	}
	n := len(batch)
	c.sinkMu.Lock()
	err := c.sink.ConsumeSeries(ctx, batch)
	c.sinkMu.Unlock()
	if err != nil {
		c.deliveryFailed(ctx, "series", err)
		return
	}
	c.m.series.Add(float64(n))
	c.m.samples.Add(float64(samples))
}

func (c *Collector) deliverInventory(ctx context.Context, inv novacron.Inventory) {
	c.sinkMu.Lock()
	err := c.sink.ConsumeInventory(ctx, inv)
	c.sinkMu.Unlock()
	if err != nil {
		c.deliveryFailed(ctx, "inventory", err)
	}
}

func (c *Collector) deliveryFailed(ctx context.Context, what string, err error) {
	if ctx.Err() != nil {
		return
	}
	c.m.errDeliver.Inc()
	c.log.Warn("aws collector delivery failed", "what", what, "err", err)
}

// vmLabels returns the identity labels of vm with the metric name and the
// extra labels, sorted; empty values are left out.
func vmLabels(vm *novacron.VM, name string, extra ...novacron.Label) novacron.Labels {
	ls := make(novacron.Labels, 0, 8+len(extra))
	ls = append(ls, novacron.Label{Name: novacron.MetricNameLabel, Value: name})
	for _, l := range []novacron.Label{
		{Name: catalog.LabelProvider, Value: Provider},
		{Name: catalog.LabelRegion, Value: vm.Region},
		{Name: catalog.LabelZone, Value: vm.Zone},
		{Name: catalog.LabelHost, Value: vm.Host},
		{Name: catalog.LabelTenant, Value: vm.Tenant},
		{Name: catalog.LabelVMID, Value: vm.ID},
		{Name: catalog.LabelVM, Value: vm.Name},
	} {
		if l.Value != "" {
			ls = append(ls, l)
		}
	}
	for _, l := range extra {
		if l.Value != "" {
			ls = append(ls, l)
		}
	}
	return ls.Sort()
}

var powerStates = []novacron.PowerState{novacron.PowerRunning, novacron.PowerStopped, novacron.PowerSuspended, novacron.PowerCrashed, novacron.PowerUnknown}

// stateSeries appends the inventory-derived gauges of every instance at
// now: info, up, power state, vCPUs and memory. A running instance whose
// latest StatusCheckFailed is 1 is reported crashed (not up).
func (c *Collector) stateSeries(st *targetState, now time.Time, dst []novacron.Series) []novacron.Series {
	ts := now.UnixMilli()
	one := func(v float64) []novacron.Sample { return []novacron.Sample{{T: ts, V: v}} }
	for _, in := range st.insts {
		vm := &in.vm
		state := vm.State
		if state == novacron.PowerRunning && st.status[vm.ID] >= 1 {
			state = novacron.PowerCrashed
		}
		info := append(novacron.Labels{{Name: catalog.LabelInstanceType, Value: vm.Size.InstanceType}}, in.tagLabels...)
		up := 0.0
		if state == novacron.PowerRunning {
			up = 1
		}
		dst = append(dst,
			novacron.Series{Labels: vmLabels(vm, catalog.VMInfo, info...), Samples: one(1)},
			novacron.Series{Labels: vmLabels(vm, catalog.VMUp), Samples: one(up)},
		)
		for _, ps := range powerStates {
			v := 0.0
			if ps == state {
				v = 1
			}
			dst = append(dst, novacron.Series{Labels: vmLabels(vm, catalog.VMPowerState, novacron.Label{Name: catalog.LabelState, Value: string(ps)}), Samples: one(v)})
		}
		if vm.Size.VCPUs > 0 {
			dst = append(dst, novacron.Series{Labels: vmLabels(vm, catalog.VMVCPUs), Samples: one(float64(vm.Size.VCPUs))})
		}
		if vm.Size.MemoryBytes > 0 {
			dst = append(dst, novacron.Series{Labels: vmLabels(vm, catalog.VMMemoryBytes), Samples: one(float64(vm.Size.MemoryBytes))})
		}
	}
	return dst
}
