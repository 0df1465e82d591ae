// Package subscribe feeds JSON topics of the bus (inventory, events) to the
// roles that keep them in memory, such as the API's fleet view. Records
// that do not decode go to the dead-letter topic and are counted; the
// subscriber carries on.
package subscribe

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/pipeline/deadletter"
)

// Settings are what the binary injects.
type Settings struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Consumer names who consumes (api, alerting): the consumer label of
	// the subscriber's metrics, so several subscribers of one kind can
	// share a registry. Default "api".
	Consumer string
}

// Subscriber consumes one topic and hands each decoded record to a
// handler; records are acknowledged once the handler returns nil.
type Subscriber struct {
	bus        novacron.Bus
	group      string
	topic      string
	deadLetter string
	handle     func(ctx context.Context, value []byte) error
	logger     *slog.Logger
	metrics    *metrics

	consumer novacron.Consumer
	cancel   context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
	stopped  bool
}

// Inventory returns a subscriber feeding inventory snapshots to c.
func Inventory(bus novacron.Bus, group, topic, deadLetter string, c novacron.InventoryConsumer, set Settings) *Subscriber {
	return newSubscriber(bus, group, topic, deadLetter, "inventory", set, func(ctx context.Context, v []byte) error {
		var inv novacron.Inventory
		if err := json.Unmarshal(v, &inv); err != nil {
			return novacron.Permanent(fmt.Errorf("decode inventory JSON: %w", err))
		}
		if inv.Source == "" {
			return novacron.Permanent(fmt.Errorf("inventory snapshot has no source"))
		}
		return c.ConsumeInventory(ctx, inv)
	})
}

// Events returns a subscriber feeding events to c.
func Events(bus novacron.Bus, group, topic, deadLetter string, c novacron.EventConsumer, set Settings) *Subscriber {
	return newSubscriber(bus, group, topic, deadLetter, "events", set, func(ctx context.Context, v []byte) error {
		var e novacron.Event
		if err := json.Unmarshal(v, &e); err != nil {
			return novacron.Permanent(fmt.Errorf("decode event JSON: %w", err))
		}
		if e.ID == "" || e.Kind == "" {
			return novacron.Permanent(fmt.Errorf("event needs id and kind"))
		}
		return c.ConsumeEvents(ctx, []novacron.Event{e})
	})
}

func newSubscriber(bus novacron.Bus, group, topic, deadLetter, kind string, set Settings, h func(context.Context, []byte) error) *Subscriber {
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	return &Subscriber{bus: bus, group: group, topic: topic, deadLetter: deadLetter, handle: h,
		logger: set.Logger.With("component", "subscribe", "topic", topic), metrics: newMetrics(set.Registerer, kind, set.Consumer)}
}

// Start joins the group and consumes in the background.
func (s *Subscriber) Start(_ context.Context) error {
	c, err := s.bus.Consumer(s.group, []string{s.topic}, novacron.WithMaxPollRecords(500))
	if err != nil {
		return fmt.Errorf("join consumer group %q on topic %q: %w", s.group, s.topic, err)
	}
	s.consumer = c
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go s.loop(ctx)
	return nil
}

// Shutdown stops consuming, commits and leaves the group. Safe to call
// twice and without Start.
func (s *Subscriber) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.consumer == nil {
		s.stopped = true
		return nil
	}
	s.stopped = true
	s.cancel()
	<-s.done
	return s.consumer.Close(ctx)
}

func (s *Subscriber) loop(ctx context.Context) {
	defer close(s.done)
	for {
		recs, err := s.consumer.Poll(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.logger.Warn("poll failed", "err", err)
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		for _, r := range recs {
			if !s.one(ctx, r) {
				return
			}
		}
	}
}

// one handles a record until it is acknowledged; false when ctx ended.
func (s *Subscriber) one(ctx context.Context, r *novacron.Record) bool {
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 10*time.Second) {
		err := s.handle(ctx, r.Value)
		if err == nil {
			s.metrics.records.WithLabelValues("ok").Inc()
			s.consumer.Ack(r)
			return true
		}
		if novacron.IsPermanent(err) {
			s.logger.Warn("record dead-lettered", "partition", r.Partition, "offset", r.Offset, "err", err)
			dl := deadletter.Record(s.deadLetter, r, "decode", err)
			if err := s.bus.Produce(ctx, dl); err == nil {
				s.metrics.records.WithLabelValues("deadletter").Inc()
				s.consumer.Ack(r)
				return true
			}
		}
		s.metrics.errors.Inc()
		if !sleep(ctx, backoff) {
			return false
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
	records *prometheus.CounterVec
	errors  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, kind, consumer string) *metrics {
	if consumer == "" {
		consumer = "api"
	}
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_subscribe_records_total", Help: "Records consumed by subscribers, by result (ok, deadletter).",
			ConstLabels: prometheus.Labels{"kind": kind, "consumer": consumer},
		}, []string{"result"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "novacron_subscribe_errors_total", Help: "Failed attempts to handle a record (retried).",
			ConstLabels: prometheus.Labels{"kind": kind, "consumer": consumer},
		}),
	}
	m.records.WithLabelValues("ok")
	m.records.WithLabelValues("deadletter")
	if reg != nil {
		reg.MustRegister(m.records, m.errors)
	}
	return m
}
