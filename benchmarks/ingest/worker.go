package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/bus/kafkabus"
	"github.com/novacron/novacron/internal/bus/membus"
	"github.com/novacron/novacron/internal/storage"
	"github.com/novacron/novacron/internal/storage/remotewrite"
	"github.com/novacron/novacron/internal/storage/tsdbstore"
	"github.com/novacron/novacron/pipeline/ingest"
	"github.com/novacron/novacron/pipeline/publish"
)

// workerSpec is what the parent asks a worker process to do: fill the
// samples topic, then drain it into the store through NovaCron's ingest
// stage. It travels as JSON on the worker's stdin.
type workerSpec struct {
	Scenario string `json:"scenario"`
	// Bus is "kafka" or "memory"; Store is "vm", "tsdb" or "null".
	Bus   string `json:"bus"`
	Store string `json:"store"`

	Brokers  []string `json:"brokers,omitempty"`
	WriteURL string   `json:"write_url,omitempty"`
	TSDBDir  string   `json:"tsdb_dir,omitempty"`

	Series           int   `json:"series"`
	SamplesPerSeries int   `json:"samples_per_series"`
	BaseMs           int64 `json:"base_ms"`
	StepMs           int64 `json:"step_ms"`
	// Round 0 is written straight to the store before timing, so the
	// series exist (steady state); rounds 1..Rounds fill the topic.
	Rounds int `json:"rounds"`

	Topic          string        `json:"topic"`
	DeadLetter     string        `json:"deadletter_topic"`
	Group          string        `json:"group"`
	Partitions     int32         `json:"partitions"`
	MaxPollRecords int           `json:"max_poll_records"`
	Sender         senderSpec    `json:"sender"`
	Kafka          kafkaSpec     `json:"kafka"`
	PublishBatch   int           `json:"publish_batch"`
	Timeout        time.Duration `json:"timeout"`
	CPUProfile     string        `json:"cpu_profile,omitempty"`
	// Watch names the server processes whose CPU and peak RSS are
	// measured over the timed section, besides this one ("novacron").
	Watch map[string]int `json:"watch,omitempty"`
}

type senderSpec struct {
	QueueCapacity   int `json:"queue_capacity"`
	QueueMaxSamples int `json:"queue_max_samples"`
	Concurrency     int `json:"concurrency"`
}

type kafkaSpec struct {
	Compression string        `json:"compression"`
	Linger      time.Duration `json:"linger"`
}

// workerResult is what a worker measured, as JSON on its stdout.
type workerResult struct {
	PrefillRecords int64   `json:"prefill_records"`
	PrefillSamples int64   `json:"prefill_samples"`
	PrefillSeconds float64 `json:"prefill_seconds"`

	AckedSamples    int64   `json:"acked_samples"`
	ElapsedSeconds  float64 `json:"elapsed_seconds"`
	FirstAckSeconds float64 `json:"first_ack_seconds"`
	TimedOut        bool    `json:"timed_out"`

	// RSSAtStartBytes is this process' RSS when timing began (with a
	// memory bus, the filled topic is part of it).
	RSSAtStartBytes int64 `json:"rss_at_start_bytes"`
	Usage           usage `json:"usage"`

	StorageWrites   float64 `json:"storage_writes"`
	StorageRetries  float64 `json:"storage_retries"`
	DeadLettered    float64 `json:"deadlettered_records"`
	MeanBatchSeries float64 `json:"mean_batch_records"`
	// StoredSamples is counted in the embedded TSDB after the drain
	// (-1 for remote stores, which the parent checks).
	StoredSamples int64 `json:"stored_samples"`
}

// runWorker reads a workerSpec from stdin, runs it and writes the result
// to stdout; progress goes to stderr.
func runWorker() error {
	var spec workerSpec
	if err := json.NewDecoder(os.Stdin).Decode(&spec); err != nil {
		return fmt.Errorf("read worker spec from stdin: %w", err)
	}
	res, err := work(spec)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// countingEnqueuer sits between the ingest stage and the storage sender
// and counts the samples of batches written and acknowledged.
type countingEnqueuer struct {
	next     ingest.Enqueuer
	start    time.Time
	acked    atomic.Int64
	firstAck atomic.Int64 // ns since start
	lastAck  atomic.Int64 // ns since start
}

func (c *countingEnqueuer) EnqueueEncoded(ctx context.Context, raw []byte, samples int, done func(error)) error {
	n := int64(samples)
	return c.next.EnqueueEncoded(ctx, raw, samples, func(err error) {
		done(err) // acknowledges the records on the bus
		if err != nil {
			return
		}
		now := int64(time.Since(c.start))
		c.firstAck.CompareAndSwap(0, now)
		c.lastAck.Store(now)
		c.acked.Add(n)
	})
}

func work(spec workerSpec) (workerResult, error) {
	var res workerResult
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	reg := prometheus.NewRegistry()
	f := newFleet(spec.Series, spec.SamplesPerSeries, spec.BaseMs, spec.StepMs)
	tag := "[" + spec.Scenario + "]"

	// The store, with the series registered by round 0.
	var (
		writer storage.Writer
		store  *tsdbstore.Store
	)
	switch spec.Store {
	case "vm":
		cfg := remotewrite.NewDefaultConfig()
		cfg.URL = spec.WriteURL
		w, err := remotewrite.New(cfg, storage.Settings{Logger: logger, Registerer: reg})
		if err != nil {
			return res, err
		}
		writer = w
	case "tsdb":
		cfg := tsdbstore.NewDefaultConfig()
		cfg.Path = spec.TSDBDir
		s, err := tsdbstore.Open(cfg, storage.Settings{Logger: logger, Registerer: reg})
		if err != nil {
			return res, err
		}
		defer s.Shutdown(context.Background())
		writer, store = s, s
	case "null":
		// Diagnostic: a store that accepts everything at once, to find
		// the bus and ingest stage's own ceiling.
		writer = storage.WriterFunc(func(context.Context, []novacron.Series) error { return nil })
	default:
		return res, fmt.Errorf("unknown store %q", spec.Store)
	}
	for lo := 0; lo < spec.Series; lo += 5000 {
		if err := writer.Write(ctx, f.batch(lo, min(lo+5000, spec.Series), 0)); err != nil {
			return res, fmt.Errorf("warm-up write: %w", err)
		}
	}

	// The bus, with the topic filled.
	topics := []novacron.TopicSpec{
		{Name: spec.Topic, Partitions: spec.Partitions, ReplicationFactor: 1},
		{Name: spec.DeadLetter, Partitions: 1, ReplicationFactor: 1},
	}
	newBus := func(reg prometheus.Registerer) (novacron.Bus, error) {
		switch spec.Bus {
		case "kafka":
			cfg := kafkabus.NewDefaultConfig()
			cfg.Brokers = spec.Brokers
			cfg.Compression = spec.Kafka.Compression
			cfg.Linger = spec.Kafka.Linger
			return kafkabus.New(cfg, kafkabus.Settings{Logger: logger, Registerer: reg})
		case "memory":
			cfg := membus.NewDefaultConfig()
			cfg.Partitions = spec.Partitions
			// Room for the whole backlog: the drain starts from a full topic.
			perPart := int(math.Ceil(float64(spec.Series*spec.Rounds) / float64(spec.Partitions)))
			cfg.MaxRecordsPerPartition = max(cfg.MaxRecordsPerPartition, perPart*5/4+10000)
			return membus.New(cfg, membus.Settings{Logger: logger, Registerer: reg})
		}
		return nil, fmt.Errorf("unknown bus %q", spec.Bus)
	}
	bus, err := newBus(reg)
	if err != nil {
		return res, err
	}
	defer bus.Close()
	if err := bus.EnsureTopics(ctx, topics); err != nil {
		return res, err
	}
	producer := bus
	if spec.Bus == "kafka" {
		// A producer of its own, closed before timing, as a collector
		// process would be.
		if producer, err = newBus(nil); err != nil {
			return res, err
		}
	} else {
		// Subscribe the group before filling, as a running processor is.
		c, err := bus.Consumer(spec.Group, []string{spec.Topic})
		if err != nil {
			return res, err
		}
		_ = c.Close(ctx)
	}
	start := time.Now()
	if err := prefill(ctx, producer, spec, f, tag, &res); err != nil {
		return res, err
	}
	res.PrefillSeconds = time.Since(start).Seconds()
	if producer != bus {
		_ = producer.Close()
	}
	fmt.Fprintf(os.Stderr, "%s topic filled: %d records, %s samples in %.1fs\n", tag, res.PrefillRecords, si(float64(res.PrefillSamples)), res.PrefillSeconds)

	// Timed section: NovaCron's ingest stage drains the topic.
	runtime.GC()
	debug.FreeOSMemory()
	res.RSSAtStartBytes, _ = procStatusKB(0, "VmRSS")
	pids := map[string]int{"novacron": 0}
	for name, pid := range spec.Watch {
		pids[name] = pid
	}
	w, err := startWatch(pids)
	if err != nil {
		return res, fmt.Errorf("watch processes: %w", err)
	}
	if spec.CPUProfile != "" {
		pf, err := os.Create(spec.CPUProfile)
		if err != nil {
			return res, err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return res, err
		}
	}
	senderCfg := storage.NewDefaultSenderConfig()
	senderCfg.QueueCapacity = spec.Sender.QueueCapacity
	senderCfg.QueueMaxSamples = spec.Sender.QueueMaxSamples
	senderCfg.Concurrency = spec.Sender.Concurrency
	sender := storage.NewSender(writer, senderCfg, storage.Settings{Logger: logger, Registerer: reg})
	counter := &countingEnqueuer{next: sender}
	ing := ingest.New(ingest.Config{
		Group: spec.Group, SamplesTopic: spec.Topic, DeadLetterTopic: spec.DeadLetter, MaxPollRecords: spec.MaxPollRecords,
	}, ingest.Settings{Logger: logger, Registerer: reg}, bus, counter)
	counter.start = time.Now()
	if err := sender.Start(ctx); err != nil {
		return res, err
	}
	if err := ing.Start(ctx); err != nil {
		return res, err
	}
	want := res.PrefillSamples
	tick := time.NewTicker(100 * time.Millisecond)
	lastReport := time.Now()
	for counter.acked.Load() < want {
		<-tick.C
		if time.Since(counter.start) > spec.Timeout {
			res.TimedOut = true
			break
		}
		if time.Since(lastReport) >= 2*time.Second {
			lastReport = time.Now()
			n := counter.acked.Load()
			fmt.Fprintf(os.Stderr, "%s %s/%s samples acknowledged, %s samples/s so far\n",
				tag, si(float64(n)), si(float64(want)), si(float64(n)/time.Since(counter.start).Seconds()))
		}
	}
	tick.Stop()
	res.AckedSamples = counter.acked.Load()
	res.ElapsedSeconds = time.Duration(counter.lastAck.Load()).Seconds()
	if res.TimedOut {
		res.ElapsedSeconds = time.Since(counter.start).Seconds()
	}
	res.FirstAckSeconds = time.Duration(counter.firstAck.Load()).Seconds()
	res.Usage = w.stop()
	if spec.CPUProfile != "" {
		pprof.StopCPUProfile()
	}

	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = errors.Join(ing.Shutdown(sctx), sender.Shutdown(sctx))
	res.StorageWrites = metricSum(reg, "novacron_storage_write_total")
	res.StorageRetries = metricSum(reg, "novacron_storage_retries_total")
	res.DeadLettered = metricSum(reg, "novacron_ingest_deadlettered_records_total")
	if n := metricSum(reg, "novacron_ingest_batch_records"); n > 0 {
		res.MeanBatchSeries = n
	}
	res.StoredSamples = -1
	if store != nil {
		n, cerr := countTSDB(ctx, store, spec)
		err = errors.Join(err, cerr)
		res.StoredSamples = n
	}
	return res, err
}

// prefill publishes rounds 1..Rounds through the publish sink, one record
// per series per round, from one goroutine per core, each owning a range
// of series so that every series' rounds stay in order.
func prefill(ctx context.Context, b novacron.Bus, spec workerSpec, f *fleet, tag string, res *workerResult) error {
	pub := publish.New(b, publish.Topics{Samples: spec.Topic}, publish.Settings{})
	producers := max(2, runtime.GOMAXPROCS(0))
	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
		records  atomic.Int64
	)
	total := int64(spec.Series * spec.Rounds)
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				fmt.Fprintf(os.Stderr, "%s filling the topic: %d/%d records\n", tag, records.Load(), total)
			}
		}
	}()
	for g := range producers {
		lo, hi := g*spec.Series/producers, (g+1)*spec.Series/producers
		wg.Go(func() {
			for r := 1; r <= spec.Rounds; r++ {
				for from := lo; from < hi; from += spec.PublishBatch {
					to := min(from+spec.PublishBatch, hi)
					if err := pub.ConsumeSeries(ctx, f.batch(from, to, r)); err != nil {
						errMu.Lock()
						firstErr = errors.Join(firstErr, err)
						errMu.Unlock()
						return
					}
					records.Add(int64(to - from))
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	res.PrefillRecords = records.Load()
	res.PrefillSamples = res.PrefillRecords * int64(spec.SamplesPerSeries)
	return firstErr
}

// countTSDB counts the benchmark's samples stored in the embedded TSDB.
func countTSDB(ctx context.Context, s *tsdbstore.Store, spec workerSpec) (int64, error) {
	q, err := s.Queryable().Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		return 0, err
	}
	defer q.Close()
	set := q.Select(ctx, false, nil, labels.MustNewMatcher(labels.MatchEqual, "bench", benchLabel))
	var n int64
	var it chunkenc.Iterator
	for set.Next() {
		it = set.At().Iterator(it)
		for it.Next() != chunkenc.ValNone {
			n++
		}
		if err := it.Err(); err != nil {
			return n, err
		}
	}
	return n, set.Err()
}

func tvSeconds(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)/1e6 }

// metricSum returns the sum over series of a counter, or the mean of a
// histogram, from reg.
func metricSum(reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetHistogram() != nil && m.GetHistogram().GetSampleCount() > 0:
				sum += m.GetHistogram().GetSampleSum() / float64(m.GetHistogram().GetSampleCount())
			}
		}
		return sum
	}
	return 0
}

// si formats n with a k/M/G suffix.
func si(n float64) string {
	switch a := math.Abs(n); {
	case a >= 1e9:
		return fmt.Sprintf("%.2fG", n/1e9)
	case a >= 1e6:
		return fmt.Sprintf("%.2fM", n/1e6)
	case a >= 1e3:
		return fmt.Sprintf("%.1fk", n/1e3)
	}
	return fmt.Sprintf("%.0f", n)
}
