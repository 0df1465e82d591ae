// Package publish is the Sink collectors deliver to: it encodes series as
// Prometheus remote-write WriteRequests, inventory and events as JSON, and
// produces them on the bus. It is the first stage of the pipeline.
package publish

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/storage/prw"
)

// Topics names the topics the publisher writes.
type Topics struct {
	Samples, Inventory, Events string
}

// Settings are what the binary injects.
type Settings struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Publisher is a novacron.Sink that produces to a bus. It is safe for
// concurrent use.
type Publisher struct {
	bus     novacron.Bus
	topics  Topics
	logger  *slog.Logger
	metrics *metrics
}

var _ novacron.Sink = (*Publisher)(nil)

// New returns a publisher writing to bus.
func New(bus novacron.Bus, topics Topics, set Settings) *Publisher {
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	return &Publisher{bus: bus, topics: topics, logger: set.Logger.With("component", "publish"), metrics: newMetrics(set.Registerer)}
}

// SeriesKey returns the record key of a series: the 16 hex digits of the
// stable hash of its sorted labels, so one series always lands on one
// partition.
func SeriesKey(ls novacron.Labels) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], ls.Hash())
	return []byte(hex.EncodeToString(b[:]))
}

// ConsumeSeries publishes one record per series (all of its samples in one
// WriteRequest) and returns when the bus acknowledged every record.
func (p *Publisher) ConsumeSeries(ctx context.Context, batch []novacron.Series) error {
	if len(batch) == 0 {
		return nil
	}
	recs := make([]*novacron.Record, 0, len(batch))
	samples := 0
	for i := range batch {
		s := batch[i : i+1]
		val, err := prw.AppendWriteRequest(nil, s)
		if err != nil {
			p.metrics.errors.WithLabelValues("encode").Inc()
			return novacron.Permanent(fmt.Errorf("encode series %s: %w", batch[i].Labels, err))
		}
		samples += len(batch[i].Samples)
		recs = append(recs, &novacron.Record{Topic: p.topics.Samples, Key: SeriesKey(batch[i].Labels), Value: val})
	}
	start := time.Now()
	if err := p.bus.Produce(ctx, recs...); err != nil {
		p.metrics.errors.WithLabelValues("produce").Inc()
		return fmt.Errorf("publish %d series to topic %q: %w", len(recs), p.topics.Samples, err)
	}
	p.metrics.duration.Observe(time.Since(start).Seconds())
	p.metrics.records.WithLabelValues("samples").Add(float64(len(recs)))
	p.metrics.samples.Add(float64(samples))
	return nil
}

// ConsumeInventory publishes a snapshot keyed by its source.
func (p *Publisher) ConsumeInventory(ctx context.Context, inv novacron.Inventory) error {
	val, err := json.Marshal(inv)
	if err != nil {
		return novacron.Permanent(fmt.Errorf("encode inventory of %q: %w", inv.Source, err))
	}
	if err := p.bus.Produce(ctx, &novacron.Record{Topic: p.topics.Inventory, Key: []byte(inv.Source), Value: val}); err != nil {
		p.metrics.errors.WithLabelValues("produce").Inc()
		return fmt.Errorf("publish inventory of %q to topic %q: %w", inv.Source, p.topics.Inventory, err)
	}
	p.metrics.records.WithLabelValues("inventory").Inc()
	return nil
}

// ConsumeEvents publishes events keyed by VM (so one VM's events stay in
// order), or by event ID when they concern no VM. SchemaVersion is set.
func (p *Publisher) ConsumeEvents(ctx context.Context, events []novacron.Event) error {
	recs := make([]*novacron.Record, 0, len(events))
	for _, e := range events {
		e.SchemaVersion = novacron.EventSchemaVersion
		val, err := json.Marshal(e)
		if err != nil {
			return novacron.Permanent(fmt.Errorf("encode event %q: %w", e.ID, err))
		}
		key := e.VMID
		if key == "" {
			key = e.ID
		}
		recs = append(recs, &novacron.Record{Topic: p.topics.Events, Key: []byte(key), Value: val})
	}
	if err := p.bus.Produce(ctx, recs...); err != nil {
		p.metrics.errors.WithLabelValues("produce").Inc()
		return fmt.Errorf("publish %d events to topic %q: %w", len(recs), p.topics.Events, err)
	}
	p.metrics.records.WithLabelValues("events").Add(float64(len(recs)))
	return nil
}

type metrics struct {
	records  *prometheus.CounterVec
	samples  prometheus.Counter
	errors   *prometheus.CounterVec
	duration prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_publish_records_total", Help: "Records published to the bus, by kind.",
		}, []string{"kind"}),
		samples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "novacron_publish_samples_total", Help: "Samples published to the bus.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_publish_errors_total", Help: "Publish failures, by stage.",
		}, []string{"stage"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "novacron_publish_duration_seconds", Help: "Time for the bus to acknowledge a batch of series.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
		}),
	}
	for _, k := range []string{"samples", "inventory", "events"} {
		m.records.WithLabelValues(k)
	}
	for _, s := range []string{"encode", "produce"} {
		m.errors.WithLabelValues(s)
	}
	if reg != nil {
		reg.MustRegister(m.records, m.samples, m.errors, m.duration)
	}
	return m
}
