package storage

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/storage/prw"
)

// Sender is the chain in front of a Writer: a bounded queue, Concurrency
// workers that retry retryable failures with exponential backoff and
// jitter, and a timeout per attempt. It is safe for concurrent use.
//
// Lifecycle: NewSender, Start, any number of Enqueue calls, Shutdown.
// Enqueue may be called before Start (batches wait in the queue).
type Sender struct {
	w      Writer
	cfg    SenderConfig
	logger *slog.Logger
	m      *senderMetrics
	q      *queue

	mu       sync.Mutex
	started  bool
	shutdown bool

	stopRetry  chan struct{} // closed when Shutdown begins
	workCtx    context.Context
	cancelWork context.CancelFunc
	workers    sync.WaitGroup

	shutdownOnce sync.Once
	shutdownErr  error
}

// NewSender returns a Sender writing to w. cfg must be valid (see
// SenderConfig.Validate); NewSender panics on an invalid cfg because that
// is a programming error once configuration has been validated at
// startup.
func NewSender(w Writer, cfg SenderConfig, set Settings) *Sender {
	if err := cfg.Validate(); err != nil {
		panic(fmt.Sprintf("storage.NewSender: invalid config: %v", err))
	}
	m := newSenderMetrics(set.Registerer)
	m.queueCapacity.Set(float64(cfg.QueueCapacity))
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sender{
		w:          w,
		cfg:        cfg,
		logger:     set.LoggerOrDiscard().With("component", "storage_sender"),
		m:          m,
		stopRetry:  make(chan struct{}),
		workCtx:    ctx,
		cancelWork: cancel,
	}
	s.q = newQueue(cfg.QueueCapacity, cfg.QueueMaxSamples, func(items, samples int) {
		m.queueLength.Set(float64(items))
		m.queueSamples.Set(float64(samples))
	})
	return s
}

// Start launches the workers and returns at once. The workers run on
// their own context, not ctx, until Shutdown. Calling Start again does
// nothing; Start after Shutdown returns ErrSenderClosed.
func (s *Sender) Start(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		return ErrSenderClosed
	}
	if s.started {
		return nil
	}
	s.started = true
	s.workers.Add(s.cfg.Concurrency)
	for range s.cfg.Concurrency {
		go s.worker()
	}
	return nil
}

// Enqueue queues batch for writing and takes ownership of it: the caller
// must not modify batch afterwards. It blocks while the queue is full
// (backpressure) and returns ctx.Err() if ctx ends first, or
// ErrSenderClosed once Shutdown has begun; in both cases done is never
// called.
//
// When Enqueue returns nil, done (if non-nil) is called exactly once, from
// a worker goroutine: with nil when the batch is durably written, or with
// the reason it was given up on: a permanent error from the Writer (the
// batch is dropped, not retried), or an error wrapping ErrSenderClosed
// when Shutdown ended before the batch could be written. done must not
// block for long; it holds up a worker.
func (s *Sender) Enqueue(ctx context.Context, batch []novacron.Series, done func(error)) error {
	if done == nil {
		done = func(error) {}
	}
	it := &item{batch: batch, samples: prw.SampleCount(batch), done: done}
	if err := s.q.push(ctx, it); err != nil {
		return err
	}
	return nil
}

// EnqueueEncoded is Enqueue for a batch that is already a raw (not
// snappy-compressed) remote-write WriteRequest of samples float samples,
// which prw.ScanWriteRequest accepted as plain (the ingest stage joins the
// bus records' bytes). The Sender hands raw as it is to a Writer that
// implements EncodedWriter; for any other Writer a worker decodes it (in
// parallel with the other workers) and calls Write, and a raw that does
// not decode is given up with a permanent error wrapping prw.ErrInvalid.
// The caller must not modify raw until done is called; after that the
// Sender no longer refers to it, so the caller may reuse it.
func (s *Sender) EnqueueEncoded(ctx context.Context, raw []byte, samples int, done func(error)) error {
	if done == nil {
		done = func(error) {}
	}
	return s.q.push(ctx, &item{raw: raw, samples: samples, done: done})
}

// Shutdown stops retrying at once, then lets the workers drain the queue,
// giving each remaining batch one attempt, until the queue is empty or
// ctx ends. When ctx ends first, in-flight writes are cancelled and every
// batch not written gets done(err) with err wrapping ErrSenderClosed, and
// Shutdown returns ctx.Err(). Shutdown is safe to call without Start (the
// queued batches are then all given up) and more than once.
func (s *Sender) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		s.mu.Lock()
		s.shutdown = true
		started := s.started
		s.mu.Unlock()

		close(s.stopRetry)
		s.q.close()
		if started {
			finished := make(chan struct{})
			go func() { s.workers.Wait(); close(finished) }()
			select {
			case <-finished:
			case <-ctx.Done():
				s.shutdownErr = ctx.Err()
				s.cancelWork()
				<-finished
			}
		}
		s.cancelWork()
		left := s.q.drain()
		for _, it := range left {
			s.m.dropped.WithLabelValues(reasonShutdown).Inc()
			it.done(fmt.Errorf("%w: batch of %d samples not written", ErrSenderClosed, it.samples))
		}
		if len(left) > 0 {
			s.logger.Warn("storage sender shut down with unwritten batches", "batches", len(left))
		}
	})
	return s.shutdownErr
}

func (s *Sender) worker() {
	defer s.workers.Done()
	for {
		it, ok := s.q.pop(s.workCtx)
		if !ok {
			return
		}
		s.send(it)
	}
}

// send writes one batch, retrying retryable errors until it succeeds, the
// error is permanent, or Shutdown stops retries. It calls it.done once.
func (s *Sender) send(it *item) {
	if err := s.decode(it); err != nil {
		s.m.dropped.WithLabelValues(reasonPermanent).Inc()
		s.logger.Warn("dropping batch that does not decode", "samples", it.samples, "err", err)
		it.done(err)
		return
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			s.m.retries.Inc()
		}
		err := s.attempt(it)
		if err == nil {
			s.m.samplesWritten.Add(float64(it.samples))
			it.done(nil)
			return
		}
		if novacron.IsPermanent(err) {
			s.m.dropped.WithLabelValues(reasonPermanent).Inc()
			s.logger.Warn("dropping batch the store rejected", "samples", it.samples, "err", err)
			it.done(err)
			return
		}
		if s.stopping() || s.workCtx.Err() != nil {
			s.m.dropped.WithLabelValues(reasonShutdown).Inc()
			it.done(fmt.Errorf("%w: batch of %d samples not written: %w", ErrSenderClosed, it.samples, err))
			return
		}
		if attempt == 0 || attempt%10 == 0 {
			s.logger.Warn("storage write failed, retrying", "attempt", attempt+1, "err", err)
		}
		// Shutdown cuts the backoff short: the batch then gets one last
		// attempt (the loop gives up on its failure, as stopping() holds).
		timer := time.NewTimer(s.backoff(attempt))
		select {
		case <-timer.C:
		case <-s.stopRetry:
			timer.Stop()
		case <-s.workCtx.Done():
			timer.Stop()
		}
	}
}

// stopping reports whether Shutdown has begun.
func (s *Sender) stopping() bool {
	select {
	case <-s.stopRetry:
		return true
	default:
		return false
	}
}

// decode decodes an encoded batch for a Writer that takes series only.
func (s *Sender) decode(it *item) error {
	if it.raw == nil || it.batch != nil {
		return nil
	}
	if _, ok := s.w.(EncodedWriter); ok {
		return nil
	}
	batch, err := prw.DecodeWriteRequest(it.raw, nil)
	if err != nil {
		return novacron.Permanent(fmt.Errorf("decode encoded batch: %w", err))
	}
	it.batch = batch
	return nil
}

// attempt makes one write under the configured timeout and records it.
func (s *Sender) attempt(it *item) error {
	ctx := s.workCtx
	if s.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
	}
	start := time.Now()
	var err error
	if ew, ok := s.w.(EncodedWriter); ok && it.raw != nil {
		err = ew.WriteEncoded(ctx, it.raw, it.samples)
	} else {
		err = s.w.Write(ctx, it.batch)
	}
	s.m.writeDuration.Observe(time.Since(start).Seconds())
	switch {
	case err == nil:
		s.m.writes.WithLabelValues(resultSuccess).Inc()
	case novacron.IsPermanent(err):
		s.m.writes.WithLabelValues(resultPermanent).Inc()
	default:
		s.m.writes.WithLabelValues(resultRetryable).Inc()
	}
	return err
}

// backoff returns the wait before retry number attempt+1: min_backoff
// doubled per attempt, capped at max_backoff, with "equal jitter" (a random
// point in the upper half) so workers that failed together do not retry
// in lockstep.
func (s *Sender) backoff(attempt int) time.Duration {
	d := s.cfg.MinBackoff
	for range min(attempt, 62) {
		d *= 2
		if d >= s.cfg.MaxBackoff || d <= 0 {
			d = s.cfg.MaxBackoff
			break
		}
	}
	d = min(d, s.cfg.MaxBackoff)
	half := d / 2
	return half + rand.N(d-half+1)
}
