// Package ingest is the pipeline stage that moves samples from the bus to
// storage: it consumes the samples topic in a consumer group, checks each
// record's remote-write WriteRequest (prw.ScanWriteRequest, which does not
// allocate), joins the records' bytes into one WriteRequest of the poll's
// series (a WriteRequest is one repeated field, so concatenated requests
// are one request), hands it to the storage sender and acknowledges the records only once the batch is durably
// written, so a crash or restart resumes without gaps (at-least-once).
//
// A record that cannot be decoded, or a batch that storage rejects
// permanently, goes to the dead-letter topic with its error before it is
// acknowledged: nothing is dropped silently and the consumer carries on.
// While storage is down the sender's bounded queue fills, Enqueue blocks,
// and this stage stops polling: the bus holds the backlog.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/storage/prw"
	"github.com/novacron/novacron/pipeline/deadletter"
)

// Dead-letter record headers (see package deadletter).
const (
	HeaderError     = deadletter.HeaderError
	HeaderStage     = deadletter.HeaderStage
	HeaderTopic     = deadletter.HeaderTopic
	HeaderPartition = deadletter.HeaderPartition
	HeaderOffset    = deadletter.HeaderOffset
)

// Enqueuer accepts encoded batches for storage; *storage.Sender
// implements it. EnqueueEncoded takes a raw WriteRequest of samples
// samples that prw.ScanWriteRequest accepted as plain, blocks while the
// queue is full and calls done exactly once, with nil when the batch is
// durably written or the permanent error that made it be dropped; raw is
// not used after done.
type Enqueuer interface {
	EnqueueEncoded(ctx context.Context, raw []byte, samples int, done func(error)) error
}

// bufPool holds the buffers polls are joined into; a buffer returns to it
// once the sender has called done.
var bufPool sync.Pool // *[]byte

// maxPooledBuf keeps a poll of unusually large records from pinning its
// buffer.
const maxPooledBuf = 64 << 20

// Config configures the stage.
type Config struct {
	// Group is the consumer group.
	Group string
	// SamplesTopic is consumed; DeadLetterTopic receives bad records.
	SamplesTopic, DeadLetterTopic string
	// MaxPollRecords caps the records per batch.
	MaxPollRecords int
}

// Settings are what the binary injects.
type Settings struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Ingest is the bus → storage stage. Start, then Shutdown.
type Ingest struct {
	cfg     Config
	bus     novacron.Bus
	sender  Enqueuer
	logger  *slog.Logger
	metrics *metrics

	consumer novacron.Consumer
	cancel   context.CancelFunc
	// dlCtx bounds dead-letter retries made from write callbacks; it ends
	// when Shutdown gives up.
	dlCtx    context.Context
	dlCancel context.CancelFunc
	loopDone chan struct{}
	inflight sync.WaitGroup
	mu       sync.Mutex
	stopped  bool
}

// New returns the stage.
func New(cfg Config, set Settings, bus novacron.Bus, sender Enqueuer) *Ingest {
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	return &Ingest{cfg: cfg, bus: bus, sender: sender,
		logger: set.Logger.With("component", "ingest"), metrics: newMetrics(set.Registerer)}
}

// Start joins the consumer group and starts consuming in the background.
func (in *Ingest) Start(_ context.Context) error {
	c, err := in.bus.Consumer(in.cfg.Group, []string{in.cfg.SamplesTopic}, novacron.WithMaxPollRecords(in.cfg.MaxPollRecords))
	if err != nil {
		return fmt.Errorf("join consumer group %q on topic %q: %w", in.cfg.Group, in.cfg.SamplesTopic, err)
	}
	in.consumer = c
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	in.dlCtx, in.dlCancel = context.WithCancel(context.Background())
	in.loopDone = make(chan struct{})
	go in.loop(ctx)
	return nil
}

// Shutdown stops polling, waits within ctx for the batches in flight to be
// written and acknowledged, then commits and leaves the group. Safe to call
// twice and without Start.
func (in *Ingest) Shutdown(ctx context.Context) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stopped || in.consumer == nil {
		in.stopped = true
		return nil
	}
	in.stopped = true
	in.cancel()
	<-in.loopDone
	drained := make(chan struct{})
	go func() { in.inflight.Wait(); close(drained) }()
	var err error
	select {
	case <-drained:
	case <-ctx.Done():
		err = fmt.Errorf("ingest: batches still in flight at shutdown (they will be re-read): %w", ctx.Err())
	}
	in.dlCancel()
	return errors.Join(err, in.consumer.Close(ctx))
}

func (in *Ingest) loop(ctx context.Context) {
	defer close(in.loopDone)
	var lastLag time.Time
	for {
		recs, err := in.consumer.Poll(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			in.metrics.pollErrors.Inc()
			in.logger.Warn("poll failed", "topic", in.cfg.SamplesTopic, "err", err)
			sleep(ctx, time.Second)
			continue
		}
		if time.Since(lastLag) > time.Second {
			in.metrics.lag.Set(float64(in.consumer.Lag()))
			lastLag = time.Now()
		}
		if len(recs) == 0 {
			continue
		}
		in.handle(ctx, recs)
	}
}

func (in *Ingest) handle(ctx context.Context, recs []*novacron.Record) {
	buf, _ := bufPool.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	raw := (*buf)[:0]
	good := make([]*novacron.Record, 0, len(recs))
	samples := 0
	for _, r := range recs {
		sc, err := prw.ScanWriteRequest(r.Value)
		if err == nil && !sc.Plain {
			// Exemplars, histograms, metadata or unknown fields: keep
			// what NovaCron stores, as decoding does, and encode that.
			raw, err = in.recode(raw, r.Value)
		} else if err == nil {
			raw = append(raw, r.Value...)
		}
		if err != nil {
			in.metrics.records.WithLabelValues("deadletter").Inc()
			in.deadLetter(ctx, r, "decode", err)
			continue
		}
		samples += sc.Samples
		good = append(good, r)
	}
	*buf = raw
	in.metrics.records.WithLabelValues("ok").Add(float64(len(good)))
	if len(good) == 0 {
		putBuf(buf)
		return
	}
	in.metrics.batchRecords.Observe(float64(len(good)))
	in.inflight.Add(1)
	in.metrics.inflight.Inc()
	err := in.sender.EnqueueEncoded(ctx, raw, samples, func(err error) {
		defer in.inflight.Done()
		defer in.metrics.inflight.Dec()
		putBuf(buf)
		if err != nil {
			// Storage refused the batch for good: keep the records.
			in.metrics.writeRejected.Add(float64(len(good)))
			for _, r := range good {
				in.deadLetter(in.dlCtx, r, "write", err)
			}
			return
		}
		in.metrics.samples.Add(float64(samples))
		in.consumer.Ack(good...)
	})
	if err != nil {
		// Shutting down before the batch was queued: nothing was acked,
		// so the records are re-read after restart.
		in.inflight.Done()
		in.metrics.inflight.Dec()
	}
}

// recode appends the plain encoding of the valid request v to raw.
func (in *Ingest) recode(raw, v []byte) ([]byte, error) {
	series, err := prw.DecodeWriteRequest(v, nil)
	if err != nil {
		return raw, err
	}
	return prw.AppendWriteRequest(raw, series)
}

func putBuf(b *[]byte) {
	if cap(*b) <= maxPooledBuf {
		*b = (*b)[:0]
		bufPool.Put(b)
	}
}

// deadLetter produces the original record with its error to the
// dead-letter topic and acknowledges it; it retries until the dead-letter
// write succeeds or ctx ends (then the record stays unacknowledged and is
// re-read later).
func (in *Ingest) deadLetter(ctx context.Context, r *novacron.Record, stage string, cause error) {
	in.metrics.deadLettered.WithLabelValues(stage).Inc()
	in.logger.Warn("record dead-lettered", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "stage", stage, "err", cause)
	dl := deadletter.Record(in.cfg.DeadLetterTopic, r, stage, cause)
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 10*time.Second) {
		err := in.bus.Produce(ctx, dl)
		if err == nil {
			in.consumer.Ack(r)
			return
		}
		in.metrics.deadLetterErrors.Inc()
		in.logger.Error("dead-letter produce failed", "topic", in.cfg.DeadLetterTopic, "err", err)
		if !sleep(ctx, backoff) {
			return
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
	records          *prometheus.CounterVec
	samples          prometheus.Counter
	deadLettered     *prometheus.CounterVec
	deadLetterErrors prometheus.Counter
	writeRejected    prometheus.Counter
	pollErrors       prometheus.Counter
	batchRecords     prometheus.Histogram
	inflight         prometheus.Gauge
	lag              prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_ingest_records_total", Help: "Sample records consumed from the bus, by result (ok, deadletter).",
		}, []string{"result"}),
		samples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "novacron_ingest_samples_total", Help: "Samples written to storage and acknowledged on the bus.",
		}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_ingest_deadlettered_records_total", Help: "Records sent to the dead-letter topic, by stage (decode, write).",
		}, []string{"stage"}),
		deadLetterErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "novacron_ingest_deadletter_errors_total", Help: "Failed attempts to produce to the dead-letter topic.",
		}),
		writeRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "novacron_ingest_write_rejected_records_total", Help: "Records whose batch storage rejected permanently.",
		}),
		pollErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "novacron_ingest_poll_errors_total", Help: "Failed polls of the samples topic.",
		}),
		batchRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "novacron_ingest_batch_records", Help: "Records per batch handed to storage.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "novacron_ingest_inflight_batches", Help: "Batches handed to storage and not yet acknowledged.",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "novacron_ingest_consumer_lag_records", Help: "Records in owned partitions not yet committed.",
		}),
	}
	for _, r := range []string{"ok", "deadletter"} {
		m.records.WithLabelValues(r)
	}
	for _, s := range []string{"decode", "write"} {
		m.deadLettered.WithLabelValues(s)
	}
	if reg != nil {
		reg.MustRegister(m.records, m.samples, m.deadLettered, m.deadLetterErrors, m.writeRejected,
			m.pollErrors, m.batchRecords, m.inflight, m.lag)
	}
	return m
}
