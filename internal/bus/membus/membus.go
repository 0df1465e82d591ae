package membus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/novacron/novacron"
)

// ErrUnknownTopic is returned by Produce for a topic EnsureTopics never
// created, as Kafka does without topic auto-creation.
var ErrUnknownTopic = errors.New("unknown topic")

// Settings are what the program injects into the bus.
type Settings struct {
	// Logger receives the bus's logs. Nil discards them.
	Logger *slog.Logger
	// Registerer receives the novacron_bus_* metrics. Nil registers none.
	Registerer prometheus.Registerer
}

// Bus is an in-process novacron.Bus. It is safe for concurrent use.
type Bus struct {
	cfg     Config
	logger  *slog.Logger
	metrics *metrics

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change
	topics  map[string]*topic
	groups  map[string]*group
	closed  bool
}

var _ novacron.Bus = (*Bus)(nil)

type topic struct {
	name   string
	parts  []*partition
	groups []*group // every group that ever subscribed
	rr     int      // next partition for keyless records
}

type partition struct {
	base int64              // offset of recs[0]
	recs []*novacron.Record // offsets base, base+1, ...
}

func (p *partition) end() int64 { return p.base + int64(len(p.recs)) }

// dropBefore removes the records below offset.
func (p *partition) dropBefore(offset int64) int {
	n := int(min(max(offset-p.base, 0), int64(len(p.recs))))
	if n == 0 {
		return 0
	}
	clear(p.recs[:n])
	p.recs = p.recs[n:]
	p.base += int64(n)
	if len(p.recs) == 0 || cap(p.recs) > 2*len(p.recs)+1024 {
		p.recs = append([]*novacron.Record(nil), p.recs...)
	}
	return n
}

type tp struct {
	topic     string
	partition int32
}

type group struct {
	name      string
	committed map[tp]int64 // next offset to consume
	topics    map[string]bool
	members   []*Consumer // in join order
}

// New returns an empty bus.
func New(cfg Config, set Settings) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("membus config: %w", err)
	}
	logger := set.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	b := &Bus{
		cfg:     cfg,
		logger:  logger.With("component", "membus"),
		changed: make(chan struct{}),
		topics:  make(map[string]*topic),
		groups:  make(map[string]*group),
	}
	b.metrics = newMetrics(set.Registerer, b.storedRecords, float64(cfg.MaxRecordsPerPartition))
	return b, nil
}

// broadcast wakes every waiting Poll and Produce. b.mu must be held.
func (b *Bus) broadcast() {
	close(b.changed)
	b.changed = make(chan struct{})
}

func (b *Bus) storedRecords() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, t := range b.topics {
		for _, p := range t.parts {
			n += len(p.recs)
		}
	}
	return float64(n)
}

// EnsureTopics creates the missing topics with spec.Partitions partitions
// (the configured default when zero). Existing topics are left alone.
func (b *Bus) EnsureTopics(_ context.Context, topics []novacron.TopicSpec) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return novacron.ErrBusClosed
	}
	for _, spec := range topics {
		if spec.Name == "" {
			return errors.New("ensure topics: empty topic name")
		}
		if spec.Partitions < 0 {
			return fmt.Errorf("ensure topic %q: negative partitions %d", spec.Name, spec.Partitions)
		}
	}
	created := false
	for _, spec := range topics {
		if _, ok := b.topics[spec.Name]; ok {
			continue
		}
		n := spec.Partitions
		if n == 0 {
			n = b.cfg.Partitions
		}
		t := &topic{name: spec.Name, parts: make([]*partition, n)}
		for i := range t.parts {
			t.parts[i] = &partition{}
		}
		b.topics[spec.Name] = t
		created = true
		// Groups that subscribed before the topic existed start at 0.
		for _, g := range b.groups {
			if g.topics[spec.Name] {
				b.subscribe(g, t, false)
				b.rebalance(g)
			}
		}
	}
	if created {
		b.broadcast()
	}
	return nil
}

// subscribe gives g a committed offset on every partition of t it has
// none on yet: the oldest retained record, or the end with atEnd.
func (b *Bus) subscribe(g *group, t *topic, atEnd bool) {
	if !slices.Contains(t.groups, g) {
		t.groups = append(t.groups, g)
	}
	for i, p := range t.parts {
		k := tp{t.name, int32(i)}
		if _, ok := g.committed[k]; ok {
			continue
		}
		if atEnd {
			g.committed[k] = p.end()
		} else {
			g.committed[k] = p.base
		}
	}
}

// Produce implements novacron.Bus. It copies the records, so the caller
// may reuse them when it returns. It blocks while a target partition is
// full and a subscribed group has not committed past its oldest record.
func (b *Bus) Produce(ctx context.Context, recs ...*novacron.Record) error {
	start := time.Now()
	err := b.produce(ctx, recs)
	b.metrics.ProduceDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		return fmt.Errorf("produce %d records: %w", len(recs), err)
	}
	return nil
}

func (b *Bus) produce(ctx context.Context, recs []*novacron.Record) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return novacron.ErrBusClosed
	}
	// Check everything first, so a bad record fails the call before any
	// record is stored.
	for _, r := range recs {
		t, ok := b.topics[r.Topic]
		if !ok {
			b.metrics.ProduceErrors.Add(float64(len(recs)))
			return fmt.Errorf("topic %q: %w", r.Topic, ErrUnknownTopic)
		}
		if r.Partition < 0 || int(r.Partition) >= len(t.parts) {
			b.metrics.ProduceErrors.Add(float64(len(recs)))
			return fmt.Errorf("topic %q has no partition %d", r.Topic, r.Partition)
		}
	}
	now := time.Now()
	var cnt produceCounts
	defer cnt.flush(b.metrics) // records stored before an error
	for i, r := range recs {
		t := b.topics[r.Topic]
		pi := r.Partition
		switch {
		case pi != 0:
		case r.Key != nil:
			pi = partitionForKey(r.Key, len(t.parts))
		default:
			pi = int32(t.rr % len(t.parts))
			t.rr++
		}
		p := t.parts[pi]
		if err := b.makeRoom(ctx, t, pi, p); err != nil {
			b.metrics.ProduceErrors.Add(float64(len(recs) - i))
			if i > 0 {
				b.broadcast()
			}
			return err
		}
		c := copyRecord(r)
		c.Partition, c.Offset = pi, p.end()
		if c.Timestamp.IsZero() {
			c.Timestamp = now
		}
		p.recs = append(p.recs, c)
		if r.Topic != cnt.topic {
			cnt.flush(b.metrics)
			cnt.topic = r.Topic
		}
		cnt.records++
		cnt.bytes += len(r.Key) + len(r.Value)
	}
	cnt.flush(b.metrics)
	if len(recs) > 0 {
		b.broadcast()
	}
	return nil
}

// produceCounts sums the produced records of a run of one topic, so the
// labelled counters are looked up once per run instead of per record.
type produceCounts struct {
	topic          string
	records, bytes int
}

func (c *produceCounts) flush(m *metrics) {
	if c.records > 0 {
		m.ProducedRecords.WithLabelValues(c.topic).Add(float64(c.records))
		m.ProducedBytes.WithLabelValues(c.topic).Add(float64(c.bytes))
	}
	*c = produceCounts{}
}

// makeRoom makes sure partition p of t can take one more record: it drops
// what every group committed, drops the oldest record of a topic nobody
// subscribed to, or waits (unlocking b.mu) for a lagging group.
func (b *Bus) makeRoom(ctx context.Context, t *topic, pi int32, p *partition) error {
	var blockedSince time.Time
	defer func() {
		if !blockedSince.IsZero() {
			b.metrics.blockedSeconds.Add(time.Since(blockedSince).Seconds())
		}
	}()
	for len(p.recs) >= b.cfg.MaxRecordsPerPartition {
		if len(t.groups) == 0 {
			n := p.dropBefore(p.end() - int64(b.cfg.MaxRecordsPerPartition) + 1)
			b.metrics.dropped.WithLabelValues(reasonNoSubscriber).Add(float64(n))
			return nil
		}
		if b.trim(t, pi) > 0 {
			continue
		}
		if blockedSince.IsZero() {
			blockedSince = time.Now()
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		b.mu.Lock()
		if b.closed {
			return novacron.ErrBusClosed
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("partition %d of topic %q full, waiting for a lagging group: %w", pi, t.name, err)
		}
	}
	return nil
}

// trim drops the records of partition pi of t that every subscribed group
// committed, and returns how many.
func (b *Bus) trim(t *topic, pi int32) int {
	if len(t.groups) == 0 {
		return 0
	}
	k := tp{t.name, pi}
	low := int64(-1)
	for _, g := range t.groups {
		if c := g.committed[k]; low < 0 || c < low {
			low = c
		}
	}
	return t.parts[pi].dropBefore(low)
}

func copyRecord(r *novacron.Record) *novacron.Record {
	c := &novacron.Record{
		Topic:     r.Topic,
		Partition: r.Partition,
		Offset:    r.Offset,
		Key:       cloneBytes(r.Key),
		Value:     cloneBytes(r.Value),
		Timestamp: r.Timestamp,
	}
	if len(r.Headers) > 0 {
		c.Headers = make([]novacron.RecordHeader, len(r.Headers))
		for i, h := range r.Headers {
			c.Headers[i] = novacron.RecordHeader{Key: h.Key, Value: cloneBytes(h.Value)}
		}
	}
	return c
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// Ping reports whether the bus is open.
func (b *Bus) Ping(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return novacron.ErrBusClosed
	}
	return nil
}

// Close closes the bus: blocked and later calls return
// novacron.ErrBusClosed. Records not consumed are lost. Close is
// idempotent.
func (b *Bus) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		b.broadcast()
	}
	return nil
}
