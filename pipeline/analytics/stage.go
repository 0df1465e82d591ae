package analytics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/storage/prw"
	"github.com/novacron/novacron/pipeline/analytics/checkpoint"
	"github.com/novacron/novacron/pipeline/analytics/correlate"
)

// Enqueuer accepts derived series for storage; *storage.Sender implements
// it. Enqueue blocks while the queue is full and calls done exactly once,
// with nil when the batch is durably written or the permanent error that
// made it be dropped.
type Enqueuer interface {
	Enqueue(ctx context.Context, batch []novacron.Series, done func(error)) error
}

// Topics names the topics the stage uses.
type Topics struct {
	// Samples is consumed; Events receives anomaly and forecast events.
	Samples, Events string
	// ReplicationFactor is used when the stage creates its checkpoint
	// topic (store "topic"); 0 means 1.
	ReplicationFactor int16
}

// Settings are what the binary injects.
type Settings struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the wall clock for the clock-skew checks; nil means time.Now.
	Now func() time.Time
	// DataDir is where store "dir" keeps checkpoints when
	// checkpoint.dir is empty (<data_dir>/analytics).
	DataDir string
	// Checkpoints overrides the store built from the configuration (tests,
	// custom stores).
	Checkpoints checkpoint.Store
}

// Source is the Source of the events the stage publishes.
const Source = "analytics"

// Stage is the samples → models → derived series and events stage. Start,
// then Shutdown.
type Stage struct {
	cfg     Config
	topics  Topics
	bus     novacron.Bus
	writer  Enqueuer
	store   checkpoint.Store
	logger  *slog.Logger
	metrics *metrics
	proc    *Processor
	now     func() time.Time
	set     Settings

	consumer novacron.Consumer
	cancel   context.CancelFunc
	loopDone chan struct{}
	mu       sync.Mutex
	stopped  bool

	// pmu guards what follows: the loop and the rebalance listener share
	// the processor.
	pmu sync.Mutex
	// owned are the samples partitions the rebalance listener says this
	// member owns; listening is set once it has spoken (a bus without
	// listener support leaves it false and every partition is processed).
	owned     map[int32]bool
	listening bool
	corr      *correlate.Stage
	pending   []*novacron.Record
	dirty     map[int32]bool
	out       Output
	lastCP    time.Time
	// inflight counts derived batches handed to the writer and not done;
	// epoch counts those of the records since the last checkpoint began.
	inflight sync.WaitGroup
	epoch    *sync.WaitGroup
	// saving is closed when the checkpoint saved in the background is
	// done; nil when none is. A save that failed leaves its records and
	// partitions in failed, for the next checkpoint to cover.
	saving chan struct{}
	failMu sync.Mutex
	failed struct {
		pending []*novacron.Record
		dirty   []int32
	}
	writeErrs atomic.Int64
	// lastCounts is what was last exported to the metrics.
	lastCounts Counts
}

// New builds the stage; cfg must be valid. It does not touch the bus.
func New(cfg Config, set Settings, bus novacron.Bus, writer Enqueuer, topics Topics) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	if set.Now == nil {
		set.Now = time.Now
	}
	proc, err := NewProcessor(cfg, set.Now, Source)
	if err != nil {
		return nil, err
	}
	store := set.Checkpoints
	if store == nil {
		switch cfg.Checkpoint.Store {
		case CheckpointDir:
			dir := cfg.Checkpoint.Dir
			if dir == "" {
				dir = filepath.Join(set.DataDir, "analytics")
			}
			d, err := checkpoint.NewDir(dir)
			if err != nil {
				return nil, fmt.Errorf("checkpoint.dir: %w", err)
			}
			store = d
		default:
			store = checkpoint.NewTopic(bus, cfg.Checkpoint.Topic, cfg.Group)
		}
	}
	return &Stage{cfg: cfg, topics: topics, bus: bus, writer: writer, store: store,
		logger: set.Logger.With("component", "analytics"), metrics: newMetrics(set.Registerer),
		proc: proc, now: set.Now, dirty: map[int32]bool{}, owned: map[int32]bool{}, set: set, epoch: new(sync.WaitGroup)}, nil
}

// Start creates the checkpoint topic when it is used, joins the consumer
// group and processes in the background.
func (s *Stage) Start(ctx context.Context) error {
	if _, ok := s.store.(*checkpoint.Topic); ok {
		rf := max(s.topics.ReplicationFactor, 1)
		if err := s.bus.EnsureTopics(ctx, []novacron.TopicSpec{checkpoint.Spec(s.cfg.Checkpoint.Topic, rf)}); err != nil {
			return fmt.Errorf("create checkpoint topic %q (checkpoint.topic): %w", s.cfg.Checkpoint.Topic, err)
		}
	}
	if s.cfg.Correlation.Enabled {
		corr, err := correlate.NewStage(s.cfg.Correlation, correlate.Settings{Logger: s.set.Logger, Registerer: s.set.Registerer},
			s.bus, s.topics.Events)
		if err != nil {
			return fmt.Errorf("correlation: %w", err)
		}
		if err := corr.Start(ctx); err != nil {
			return err
		}
		s.corr = corr
	}
	c, err := s.bus.Consumer(s.cfg.Group, []string{s.topics.Samples}, novacron.WithMaxPollRecords(s.cfg.MaxPollRecords),
		novacron.WithRebalanceListener(s.assigned, s.revoked))
	if err != nil {
		return fmt.Errorf("join consumer group %q (group) on topic %q: %w", s.cfg.Group, s.topics.Samples, err)
	}
	s.consumer = c
	lctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.loopDone, s.lastCP = cancel, make(chan struct{}), time.Now()
	go s.loop(lctx)
	return nil
}

// Shutdown stops processing, writes a last checkpoint within ctx so the
// next owner resumes without re-reading, commits and leaves the group.
// Safe to call twice and without Start.
func (s *Stage) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.consumer == nil {
		s.stopped = true
		return nil
	}
	s.stopped = true
	s.cancel()
	<-s.loopDone
	s.pmu.Lock()
	err := s.waitSave(ctx)
	if err == nil {
		err = s.checkpoint(ctx, nil)
	}
	s.pmu.Unlock()
	if err != nil {
		err = fmt.Errorf("analytics: final checkpoint (records since the last one will be re-read): %w", err)
	}
	// Close revokes what is left through the listener: nothing pending.
	err = errors.Join(err, s.consumer.Close(ctx))
	if s.corr != nil {
		err = errors.Join(err, s.corr.Shutdown(ctx))
	}
	return err
}

// assigned is the rebalance listener's gain: the partitions' state is
// dropped so their checkpoints are loaded before their first record is
// processed (whatever this processor held of them may be stale: another
// member owned them in between).
func (s *Stage) assigned(_ context.Context, topic string, parts []int32) {
	if topic != s.topics.Samples {
		return
	}
	s.pmu.Lock()
	defer s.pmu.Unlock()
	s.listening = true
	for _, p := range parts {
		s.owned[p] = true
		s.proc.Drop(p)
	}
	s.logger.Info("partitions assigned", "partitions", parts)
}

// revoked is the rebalance listener's loss: a final checkpoint of the
// partitions (the bus commits the acknowledgements right after, before
// the next owner reads), then their state is dropped and their records
// are no longer processed or checkpointed, so a late checkpoint by this
// member cannot overwrite the next owner's.
func (s *Stage) revoked(ctx context.Context, topic string, parts []int32) {
	if topic != s.topics.Samples {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s.pmu.Lock()
	defer s.pmu.Unlock()
	s.listening = true
	set := make(map[int32]bool, len(parts))
	for _, p := range parts {
		set[p] = true
	}
	err := s.waitSave(ctx)
	if err == nil {
		err = s.checkpoint(ctx, set)
	}
	if err != nil {
		s.logger.Warn("final checkpoint of revoked partitions failed; the next owner re-reads from the last one", "partitions", parts, "err", err)
		s.metrics.checkpoints.WithLabelValues("error").Inc()
	}
	for _, p := range parts {
		delete(s.owned, p)
		delete(s.dirty, p)
		s.proc.Drop(p)
	}
	s.pending = slices.DeleteFunc(s.pending, func(r *novacron.Record) bool { return set[r.Partition] })
	s.metrics.series.Set(float64(s.proc.SeriesCount()))
	s.logger.Info("partitions revoked", "partitions", parts)
}

func (s *Stage) loop(ctx context.Context) {
	defer close(s.loopDone)
	var lastLag time.Time
	for {
		wait := s.cfg.Checkpoint.Interval - time.Since(s.lastCP)
		s.pmu.Lock()
		npending := len(s.pending)
		s.pmu.Unlock()
		if wait <= 0 || npending >= s.cfg.Checkpoint.MaxRecords {
			s.pmu.Lock()
			err := s.checkpointAsync(ctx)
			s.pmu.Unlock()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.logger.Warn("checkpoint failed", "err", err)
				s.metrics.checkpoints.WithLabelValues("error").Inc()
				sleep(ctx, time.Second)
			}
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, wait)
		recs, err := s.consumer.Poll(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				continue
			}
			s.metrics.pollErrors.Inc()
			s.logger.Warn("poll failed", "topic", s.topics.Samples, "err", err)
			sleep(ctx, time.Second)
			continue
		}
		if time.Since(lastLag) > time.Second {
			s.metrics.lag.Set(float64(s.consumer.Lag()))
			lastLag = time.Now()
		}
		if len(recs) > 0 {
			s.pmu.Lock()
			err := s.handle(ctx, recs)
			s.pmu.Unlock()
			if err != nil {
				return // ctx ended; unacknowledged records are re-read
			}
		}
	}
}

// handle processes one poll. Records stay pending (unacknowledged) until
// a checkpoint covers them. Records of partitions revoked since the poll
// are skipped: their next owner reads them. s.pmu must be held.
func (s *Stage) handle(ctx context.Context, recs []*novacron.Record) error {
	if s.listening {
		recs = slices.DeleteFunc(recs, func(r *novacron.Record) bool { return !s.owned[r.Partition] })
	}
	if err := s.restore(ctx, recs); err != nil {
		return err
	}
	start := time.Now()
	var series []novacron.Series
	for _, r := range recs {
		next := s.proc.Next(r.Partition)
		if next >= 0 && r.Offset < next {
			// Already in the restored state: its output was emitted
			// before the checkpoint.
			s.metrics.records.WithLabelValues("covered").Inc()
			s.consumer.Ack(r)
			continue
		}
		var err error
		series, err = prw.DecodeWriteRequest(r.Value, series[:0])
		if err != nil {
			// Ingest dead-letters undecodable records; here they are
			// only counted.
			s.metrics.records.WithLabelValues("undecodable").Inc()
		} else {
			s.metrics.records.WithLabelValues("ok").Inc()
			if k, ok := seriesKey(r.Key); ok && len(series) == 1 {
				// publish keys a one-series record by the series hash.
				s.proc.ProcessKeyed(r.Partition, k, series[0], &s.out)
			} else {
				for _, sr := range series {
					s.proc.Process(r.Partition, sr, &s.out)
				}
			}
		}
		s.proc.SetNext(r.Partition, r.Offset+1)
		s.dirty[r.Partition] = true
		// Only the position is needed to acknowledge it after the next
		// checkpoint: release the payload meanwhile.
		r.Key, r.Value, r.Headers = nil, nil, nil
		s.pending = append(s.pending, r)
	}
	s.exportCounts()
	s.metrics.duration.Observe(time.Since(start).Seconds())
	if len(s.out.Series) > 0 {
		batch := slices.Clone(s.out.Series)
		s.inflight.Add(1)
		ep := s.epoch
		ep.Add(1)
		n := len(batch)
		err := s.writer.Enqueue(ctx, batch, func(err error) {
			defer s.inflight.Done()
			defer ep.Done()
			if err != nil {
				s.writeErrs.Add(1)
				s.metrics.derivedDropped.Add(float64(n))
				return
			}
			s.metrics.derived.Add(float64(n))
		})
		if err != nil {
			s.inflight.Done()
			ep.Done()
			s.out.Reset()
			return err
		}
	}
	if len(s.out.Events) > 0 {
		if err := s.publish(ctx, s.out.Events); err != nil {
			s.out.Reset()
			return err
		}
	}
	s.out.Reset()
	return nil
}

// restore loads the checkpoints of partitions this processor has no state
// for, or whose state does not continue at the record's offset (the
// partition was owned elsewhere in between).
func (s *Stage) restore(ctx context.Context, recs []*novacron.Record) error {
	var need []int32
	seen := map[int32]bool{}
	for _, r := range recs {
		if seen[r.Partition] {
			continue
		}
		seen[r.Partition] = true
		if s.proc.Has(r.Partition) && s.proc.Next(r.Partition) == r.Offset {
			continue
		}
		if s.proc.Has(r.Partition) {
			s.logger.Info("partition state is stale, reloading", "partition", r.Partition,
				"expected_offset", s.proc.Next(r.Partition), "offset", r.Offset)
		}
		s.proc.Drop(r.Partition)
		need = append(need, r.Partition)
	}
	if len(need) == 0 {
		return nil
	}
	start := time.Now()
	for backoff := time.Second; ; backoff = min(2*backoff, 30*time.Second) {
		snaps, err := s.store.Load(ctx, need)
		if err == nil {
			for _, p := range need {
				b, ok := snaps[p]
				if !ok {
					s.proc.SetNext(p, -1)
					s.metrics.restores.WithLabelValues("none").Inc()
					continue
				}
				fresh, err := s.proc.Restore(p, b)
				if err != nil {
					s.logger.Warn("checkpoint unreadable, starting the partition afresh", "partition", p, "err", err)
					s.proc.SetNext(p, -1)
					s.metrics.restores.WithLabelValues("error").Inc()
					continue
				}
				s.metrics.restores.WithLabelValues("ok").Inc()
				if fresh > 0 {
					s.logger.Warn("detector snapshots of another model version, started afresh", "partition", p, "series", fresh)
				}
			}
			s.logger.Info("partitions restored", "partitions", need, "series", s.proc.SeriesCount(), "duration", time.Since(start))
			s.metrics.series.Set(float64(s.proc.SeriesCount()))
			return nil
		}
		s.metrics.restores.WithLabelValues("error").Inc()
		s.logger.Warn("loading checkpoints failed", "partitions", need, "err", err)
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
	}
}

// publish produces events keyed by host (else VM, else ID), so the
// anomalies of one host's VMs share a partition of the events topic and
// one correlator sees them together; it retries until ctx ends.
func (s *Stage) publish(ctx context.Context, events []novacron.Event) error {
	recs := make([]*novacron.Record, 0, len(events))
	for _, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			s.logger.Error("encode event", "id", e.ID, "err", err)
			continue
		}
		recs = append(recs, &novacron.Record{Topic: s.topics.Events, Key: []byte(EventKey(e)), Value: b})
	}
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 10*time.Second) {
		err := s.bus.Produce(ctx, recs...)
		if err == nil {
			for _, e := range events {
				s.metrics.events.WithLabelValues(e.Kind).Inc()
			}
			return nil
		}
		s.metrics.eventErrors.Inc()
		s.logger.Warn("publishing events failed", "topic", s.topics.Events, "err", err)
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
	}
}

// EventKey is the record key of an analytics event: its host, else its VM,
// else its ID.
func EventKey(e novacron.Event) string {
	switch {
	case e.Host != "":
		return e.Host
	case e.VMID != "":
		return e.VMID
	}
	return e.ID
}

// checkpointAsync snapshots the partitions that changed and saves them
// in the background while the loop goes on: the records the snapshots
// cover are acknowledged once their derived writes are done and the save
// succeeded. A snapshot takes milliseconds; saving it (tens of MiB at
// 50,000 series) would stall processing and so the latency of every
// sample behind it. One save is in flight at a time. s.pmu must be held.
func (s *Stage) checkpointAsync(ctx context.Context) error {
	s.lastCP = time.Now()
	if err := s.waitSave(ctx); err != nil {
		return err
	}
	if len(s.pending) == 0 {
		return nil
	}
	start := time.Now()
	snaps := make(map[int32][]byte, len(s.dirty))
	dirty := make([]int32, 0, len(s.dirty))
	size := 0
	for p := range s.dirty {
		b, err := s.proc.Snapshot(p)
		if err != nil {
			return err
		}
		dirty = append(dirty, p)
		if b != nil {
			snaps[p] = b
			size += len(b)
		}
	}
	pending, ep, done := s.pending, s.epoch, make(chan struct{})
	s.pending, s.epoch, s.saving = make([]*novacron.Record, 0, len(pending)), new(sync.WaitGroup), done
	clear(s.dirty)
	s.metrics.series.Set(float64(s.proc.SeriesCount()))
	go func() {
		defer close(done)
		// The records are acknowledged once their derived series are
		// stored and the state that includes them is saved.
		ep.Wait()
		if err := s.store.Save(ctx, snaps); err != nil {
			s.failMu.Lock()
			s.failed.pending = append(s.failed.pending, pending...)
			s.failed.dirty = append(s.failed.dirty, dirty...)
			s.failMu.Unlock()
			if ctx.Err() == nil {
				s.logger.Warn("checkpoint failed; the next one covers its records", "err", err)
			}
			s.metrics.checkpoints.WithLabelValues("error").Inc()
			return
		}
		s.consumer.Ack(pending...)
		s.metrics.checkpoints.WithLabelValues("ok").Inc()
		s.metrics.checkpointBytes.Observe(float64(size))
		s.metrics.checkpointDuration.Observe(time.Since(start).Seconds())
	}()
	return nil
}

// waitSave waits for the checkpoint being saved in the background and
// takes back the records and partitions of a failed one, so the next
// checkpoint covers them. s.pmu must be held.
func (s *Stage) waitSave(ctx context.Context) error {
	if s.saving != nil {
		select {
		case <-s.saving:
			s.saving = nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.failMu.Lock()
	defer s.failMu.Unlock()
	if len(s.failed.pending) > 0 {
		s.pending = append(s.failed.pending, s.pending...)
		for _, p := range s.failed.dirty {
			s.dirty[p] = true
		}
		s.failed.pending, s.failed.dirty = nil, nil
	}
	return nil
}

// checkpoint saves the state of the partitions in only (nil: all) and
// acknowledges their pending records, waiting for every derived batch in
// flight and for the save. s.pmu must be held; no background save may be
// in flight (waitSave).
func (s *Stage) checkpoint(ctx context.Context, only map[int32]bool) error {
	if only == nil {
		s.lastCP = time.Now()
	}
	covered := 0
	for _, r := range s.pending {
		if only == nil || only[r.Partition] {
			covered++
		}
	}
	if covered == 0 {
		return nil
	}
	start := time.Now()
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	snaps := make(map[int32][]byte, len(s.dirty))
	size := 0
	for p := range s.dirty {
		if only != nil && !only[p] {
			continue
		}
		b, err := s.proc.Snapshot(p)
		if err != nil {
			return err
		}
		if b != nil {
			snaps[p] = b
			size += len(b)
		}
	}
	if err := s.store.Save(ctx, snaps); err != nil {
		return err
	}
	if only == nil {
		s.consumer.Ack(s.pending...)
		clear(s.pending)
		s.pending = s.pending[:0]
		clear(s.dirty)
	} else {
		s.pending = slices.DeleteFunc(s.pending, func(r *novacron.Record) bool {
			if only[r.Partition] {
				s.consumer.Ack(r)
				return true
			}
			return false
		})
		for p := range only {
			delete(s.dirty, p)
		}
	}
	s.metrics.checkpoints.WithLabelValues("ok").Inc()
	s.metrics.checkpointBytes.Observe(float64(size))
	s.metrics.checkpointDuration.Observe(time.Since(start).Seconds())
	s.metrics.series.Set(float64(s.proc.SeriesCount()))
	return nil
}

func (s *Stage) exportCounts() {
	c := s.proc.Counts()
	s.metrics.samples.Add(float64(c.Samples - s.lastCounts.Samples))
	s.metrics.modelled.Add(float64(c.Modelled - s.lastCounts.Modelled))
	for i, r := range dropReasons {
		if d := c.Dropped[i] - s.lastCounts.Dropped[i]; d > 0 {
			s.metrics.dropped.WithLabelValues(r).Add(float64(d))
		}
	}
	s.lastCounts = c
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

// seriesKey parses the 16-hex-digit series hash publish.SeriesKey puts in
// a record key.
func seriesKey(b []byte) (uint64, bool) {
	if len(b) != 16 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b), 16, 64)
	return v, err == nil
}
