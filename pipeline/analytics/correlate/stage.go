package correlate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/confutil"
)

// Validate reports every problem, worded with the YAML keys. It does not
// change the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Group == "" {
		errs = append(errs, confutil.Errorf("group", "must not be empty"))
	}
	if c.Window <= 0 {
		errs = append(errs, confutil.Errorf("window", "must be positive, got %s", c.Window))
	}
	if c.MaxHold <= 0 {
		errs = append(errs, confutil.Errorf("max_hold", "must be positive, got %s", c.MaxHold))
	}
	return errors.Join(errs...)
}

// Settings are what the binary injects.
type Settings struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the wall clock that moves a quiet partition's event-time
	// clock on; nil means time.Now.
	Now func() time.Time
}

// Stage consumes the events topic in its own consumer group, correlates
// each partition's anomalies and publishes incident events back on the
// same topic, keyed by host. Start, then Shutdown.
type Stage struct {
	cfg     Config
	topic   string
	bus     novacron.Bus
	logger  *slog.Logger
	metrics *metrics
	now     func() time.Time

	mu    sync.Mutex // guards parts: the loop and the rebalance listener
	parts map[int32]*part

	consumer novacron.Consumer
	cancel   context.CancelFunc
	done     chan struct{}
	stopMu   sync.Mutex
	stopped  bool
}

type part struct {
	c         *Correlator
	lastEvent time.Time // latest event time seen
	lastWall  time.Time // wall time it was seen
}

// NewStage builds the correlator stage on the events topic; cfg must be
// valid.
func NewStage(cfg Config, set Settings, bus novacron.Bus, eventsTopic string) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	if set.Now == nil {
		set.Now = time.Now
	}
	return &Stage{cfg: cfg, topic: eventsTopic, bus: bus, logger: set.Logger.With("component", "correlate"),
		metrics: newMetrics(set.Registerer), now: set.Now, parts: map[int32]*part{}}, nil
}

// Start joins the consumer group and correlates in the background.
func (s *Stage) Start(_ context.Context) error {
	c, err := s.bus.Consumer(s.cfg.Group, []string{s.topic}, novacron.WithMaxPollRecords(1000),
		novacron.WithRebalanceListener(s.reset, s.reset))
	if err != nil {
		return fmt.Errorf("join consumer group %q (correlation.group) on topic %q: %w", s.cfg.Group, s.topic, err)
	}
	s.consumer = c
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go s.loop(ctx)
	return nil
}

// reset forgets the state of partitions gained or lost: a gained one is
// rebuilt from the records its previous owner left unacknowledged.
func (s *Stage) reset(_ context.Context, topic string, parts []int32) {
	if topic != s.topic {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range parts {
		delete(s.parts, p)
	}
	s.export()
}

// Shutdown stops correlating and leaves the group; held records stay
// unacknowledged for the next owner. Safe to call twice and without
// Start.
func (s *Stage) Shutdown(ctx context.Context) error {
	s.stopMu.Lock()
	defer s.stopMu.Unlock()
	if s.stopped || s.consumer == nil {
		s.stopped = true
		return nil
	}
	s.stopped = true
	s.cancel()
	<-s.done
	return s.consumer.Close(ctx)
}

func (s *Stage) loop(ctx context.Context) {
	defer close(s.done)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		recs, err := s.consumer.Poll(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			s.logger.Warn("poll failed", "topic", s.topic, "err", err)
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		if err := s.handle(ctx, recs); err != nil {
			return
		}
	}
}

// handle folds a poll in, moves quiet partitions' clocks on by the wall
// time since their last event, publishes incident events and then
// acknowledges the records that no longer matter.
func (s *Stage) handle(ctx context.Context, recs []*novacron.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, r := range recs {
		var e novacron.Event
		if err := json.Unmarshal(r.Value, &e); err != nil {
			s.metrics.records.WithLabelValues("undecodable").Inc()
			s.consumer.Ack(r)
			continue
		}
		s.metrics.records.WithLabelValues("ok").Inc()
		p := s.parts[r.Partition]
		if p == nil {
			p = &part{c: NewWithHold(s.cfg.Window, s.cfg.MaxHold, Source)}
			s.parts[r.Partition] = p
		}
		p.c.Observe(e, r)
		if e.Time.After(p.lastEvent) {
			p.lastEvent = e.Time
		}
		p.lastWall = now
	}
	var events []novacron.Event
	var acks []*novacron.Record
	ids := make([]int32, 0, len(s.parts))
	for id := range s.parts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		p := s.parts[id]
		if !p.lastEvent.IsZero() {
			p.c.Advance(p.lastEvent.Add(now.Sub(p.lastWall)))
		}
		evs, refs := p.c.Take()
		events = append(events, evs...)
		for _, ref := range refs {
			if r, ok := ref.(*novacron.Record); ok {
				acks = append(acks, r)
			}
		}
	}
	if len(events) > 0 {
		if err := s.publish(ctx, events); err != nil {
			return err
		}
	}
	s.consumer.Ack(acks...)
	s.export()
	return nil
}

func (s *Stage) export() {
	held, open := 0, 0
	for _, p := range s.parts {
		held += p.c.Held()
		open += p.c.OpenIncidents()
	}
	s.metrics.held.Set(float64(held))
	s.metrics.open.Set(float64(open))
}

// publish produces the incident events keyed by host, retrying until ctx
// ends.
func (s *Stage) publish(ctx context.Context, events []novacron.Event) error {
	recs := make([]*novacron.Record, 0, len(events))
	for _, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			s.logger.Error("encode event", "id", e.ID, "err", err)
			continue
		}
		recs = append(recs, &novacron.Record{Topic: s.topic, Key: []byte(e.Host), Value: b})
	}
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 10*time.Second) {
		err := s.bus.Produce(ctx, recs...)
		if err == nil {
			for _, e := range events {
				if e.ID == e.Details["incident_id"].(string)+"-opened" {
					s.metrics.incidents.WithLabelValues(e.Details["cause"].(string)).Inc()
				}
			}
			return nil
		}
		s.logger.Warn("publishing incident events failed", "topic", s.topic, "err", err)
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

type metrics struct {
	records   *prometheus.CounterVec
	incidents *prometheus.CounterVec
	held      prometheus.Gauge
	open      prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_correlate_records_total", Help: "Event records read by the correlator, by result (ok, undecodable).",
		}, []string{"result"}),
		incidents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_correlate_incidents_total", Help: "Incidents opened, by probable cause.",
		}, []string{"cause"}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "novacron_correlate_held_anomalies", Help: "Anomalies held by the correlator (pending classification or members of open incidents).",
		}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "novacron_correlate_open_incidents", Help: "Open incidents.",
		}),
	}
	for _, r := range []string{"ok", "undecodable"} {
		m.records.WithLabelValues(r)
	}
	for _, c := range Causes() {
		m.incidents.WithLabelValues(c)
	}
	if reg != nil {
		reg.MustRegister(m.records, m.incidents, m.held, m.open)
	}
	return m
}
