package storage_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/storage"
	"github.com/novacron/novacron/internal/storage/remotewrite"
)

func TestSenderConfigValidate(t *testing.T) {
	require.NoError(t, storage.NewDefaultSenderConfig().Validate())
	err := storage.SenderConfig{QueueMaxSamples: -1, MinBackoff: time.Second, Timeout: -1}.Validate()
	for _, want := range []string{
		"queue_capacity must be > 0", "queue_max_samples must be >= 0", "concurrency must be > 0",
		"max_backoff (0s) must be >= min_backoff (1s)", "timeout must be >= 0",
	} {
		require.ErrorContains(t, err, want)
	}
	require.ErrorContains(t, storage.SenderConfig{}.Validate(), "min_backoff must be > 0")
}

func fastConfig() storage.SenderConfig {
	cfg := storage.NewDefaultSenderConfig()
	cfg.MinBackoff = time.Millisecond
	cfg.MaxBackoff = 5 * time.Millisecond
	cfg.Timeout = 5 * time.Second
	return cfg
}

func batch(n int) []novacron.Series {
	out := make([]novacron.Series, n)
	for i := range out {
		out[i] = novacron.Series{
			Labels:  novacron.Labels{{Name: "__name__", Value: "up"}, {Name: "vm_id", Value: fmt.Sprintf("vm-%d", i)}},
			Samples: []novacron.Sample{{T: 1000, V: 1}},
		}
	}
	return out
}

// doneRecorder records done calls and fails the test on a second call.
type doneRecorder struct {
	t     *testing.T
	mu    sync.Mutex
	calls int
	err   error
	ch    chan struct{}
}

func newDone(t *testing.T) *doneRecorder { return &doneRecorder{t: t, ch: make(chan struct{})} }

func (d *doneRecorder) done(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	if d.calls > 1 {
		d.t.Errorf("done called %d times", d.calls)
		return
	}
	d.err = err
	close(d.ch)
}

func (d *doneRecorder) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-d.ch:
	case <-time.After(10 * time.Second):
		t.Fatal("done not called within 10s")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

func remoteWriter(t *testing.T, url string) *remotewrite.Writer {
	w, err := remotewrite.New(remotewrite.Config{URL: url, Timeout: 5 * time.Second}, storage.Settings{})
	require.NoError(t, err)
	return w
}

// TestSenderRetriesUntilRecovery: a receiver answering 503 three times
// then 204 gets the batch on the fourth attempt; done is called once, with
// nil.
func TestSenderRetriesUntilRecovery(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) <= 3 {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	reg := prometheus.NewPedanticRegistry()
	s := storage.NewSender(remoteWriter(t, srv.URL), fastConfig(), storage.Settings{Registerer: reg})
	require.NoError(t, s.Start(context.Background()))
	d := newDone(t)
	require.NoError(t, s.Enqueue(context.Background(), batch(5), d.done))
	require.NoError(t, d.wait(t))
	require.NoError(t, s.Shutdown(context.Background()))
	require.Equal(t, int32(4), requests.Load())
	require.Equal(t, 1, d.calls)

	require.Equal(t, 3.0, labelled(t, reg, "novacron_storage_write_total", "retryable_error"))
	require.Equal(t, 1.0, labelled(t, reg, "novacron_storage_write_total", "success"))
	require.Equal(t, 3.0, gather(t, reg, "novacron_storage_retries_total"))
	require.Equal(t, 5.0, gather(t, reg, "novacron_storage_samples_written_total"))
	require.Equal(t, 0.0, gather(t, reg, "novacron_storage_queue_length"))
	require.Equal(t, 64.0, gather(t, reg, "novacron_storage_queue_capacity"))
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}

// TestSenderPermanentDrops: a 400 drops the batch after one attempt and
// reports the receiver's reason to done.
func TestSenderPermanentDrops(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "bad label", http.StatusBadRequest)
	}))
	defer srv.Close()
	reg := prometheus.NewPedanticRegistry()
	s := storage.NewSender(remoteWriter(t, srv.URL), fastConfig(), storage.Settings{Registerer: reg})
	require.NoError(t, s.Start(context.Background()))
	d := newDone(t)
	require.NoError(t, s.Enqueue(context.Background(), batch(1), d.done))
	err := d.wait(t)
	require.Error(t, err)
	require.True(t, novacron.IsPermanent(err))
	require.ErrorContains(t, err, "HTTP 400: bad label")
	require.NoError(t, s.Shutdown(context.Background()))
	require.Equal(t, int32(1), requests.Load())
	require.Equal(t, 1.0, labelled(t, reg, "novacron_storage_dropped_total", "permanent_error"))
	require.Equal(t, 0.0, gather(t, reg, "novacron_storage_retries_total"))
}

// gateWriter blocks every Write until release is closed.
type gateWriter struct {
	release chan struct{}
	writes  atomic.Int32
	started chan struct{}
}

func (g *gateWriter) Write(ctx context.Context, _ []novacron.Series) error {
	select {
	case g.started <- struct{}{}:
	default:
	}
	select {
	case <-g.release:
		g.writes.Add(1)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gateWriter) Ping(context.Context) error { return nil }

// TestSenderQueueFullBlocks: with the writer stuck, Enqueue blocks once
// the queue holds queue_capacity batches, returns ctx.Err() when its
// context ends, and proceeds when space frees.
func TestSenderQueueFullBlocks(t *testing.T) {
	g := &gateWriter{release: make(chan struct{}), started: make(chan struct{}, 1)}
	cfg := fastConfig()
	cfg.QueueCapacity = 2
	cfg.Concurrency = 1
	reg := prometheus.NewPedanticRegistry()
	s := storage.NewSender(g, cfg, storage.Settings{Registerer: reg})
	require.NoError(t, s.Start(context.Background()))
	ctx := context.Background()

	var dones []*doneRecorder
	enqueue := func(ctx context.Context) error {
		d := newDone(t)
		err := s.Enqueue(ctx, batch(1), d.done)
		if err == nil {
			dones = append(dones, d)
		}
		return err
	}
	require.NoError(t, enqueue(ctx))
	<-g.started // the worker holds the first batch
	require.NoError(t, enqueue(ctx))
	require.NoError(t, enqueue(ctx))
	require.Equal(t, 2.0, gather(t, reg, "novacron_storage_queue_length"))

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, enqueue(short), context.DeadlineExceeded)

	blocked := make(chan error, 1)
	d4 := newDone(t)
	go func() { blocked <- s.Enqueue(ctx, batch(1), d4.done) }()
	select {
	case err := <-blocked:
		t.Fatalf("Enqueue returned %v while the queue was full", err)
	case <-time.After(100 * time.Millisecond):
	}
	require.Equal(t, 2.0, gather(t, reg, "novacron_storage_queue_length"))

	close(g.release)
	require.NoError(t, <-blocked)
	for _, d := range append(dones, d4) {
		require.NoError(t, d.wait(t))
	}
	require.NoError(t, s.Shutdown(ctx))
	require.Equal(t, int32(4), g.writes.Load())
}

// TestSenderQueueSampleBound: queue_max_samples blocks Enqueue even when
// there is room for more batches.
func TestSenderQueueSampleBound(t *testing.T) {
	g := &gateWriter{release: make(chan struct{}), started: make(chan struct{}, 1)}
	cfg := fastConfig()
	cfg.QueueCapacity = 100
	cfg.QueueMaxSamples = 10
	cfg.Concurrency = 1
	s := storage.NewSender(g, cfg, storage.Settings{})
	require.NoError(t, s.Start(context.Background()))
	ctx := context.Background()
	require.NoError(t, s.Enqueue(ctx, batch(1), nil))
	<-g.started
	require.NoError(t, s.Enqueue(ctx, batch(6), nil))
	require.NoError(t, s.Enqueue(ctx, batch(4), nil)) // 10 samples queued
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, s.Enqueue(short, batch(1), nil), context.DeadlineExceeded)
	close(g.release)
	require.NoError(t, s.Enqueue(ctx, batch(50), nil)) // oversize, admitted once the queue empties
	require.NoError(t, s.Shutdown(ctx))
	require.Equal(t, int32(4), g.writes.Load())
}

// TestSenderShutdownDrains: batches queued when Shutdown starts are all
// written before it returns.
func TestSenderShutdownDrains(t *testing.T) {
	var writes atomic.Int32
	w := storage.WriterFunc(func(ctx context.Context, b []novacron.Series) error {
		time.Sleep(5 * time.Millisecond)
		writes.Add(1)
		return nil
	})
	cfg := fastConfig()
	cfg.Concurrency = 2
	s := storage.NewSender(w, cfg, storage.Settings{})
	ctx := context.Background()
	var dones []*doneRecorder
	for range 20 { // enqueued before Start: they wait in the queue
		d := newDone(t)
		require.NoError(t, s.Enqueue(ctx, batch(1), d.done))
		dones = append(dones, d)
	}
	require.NoError(t, s.Start(ctx))
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, s.Shutdown(sctx))
	require.Equal(t, int32(20), writes.Load())
	for _, d := range dones {
		require.NoError(t, d.wait(t))
	}
	require.ErrorIs(t, s.Enqueue(ctx, batch(1), nil), storage.ErrSenderClosed)
	require.NoError(t, s.Shutdown(ctx), "second Shutdown")
	require.ErrorIs(t, s.Start(ctx), storage.ErrSenderClosed)
}

// TestSenderShutdownStopsRetries: a batch backing off (for an hour) is
// given up as soon as Shutdown starts; batches still queued at the
// deadline get done(ErrSenderClosed).
func TestSenderShutdownStopsRetries(t *testing.T) {
	var writes atomic.Int32
	w := storage.WriterFunc(func(ctx context.Context, b []novacron.Series) error {
		writes.Add(1)
		return errors.New("connection refused")
	})
	cfg := fastConfig()
	cfg.MinBackoff = time.Hour
	cfg.MaxBackoff = time.Hour
	cfg.Concurrency = 1
	reg := prometheus.NewPedanticRegistry()
	s := storage.NewSender(w, cfg, storage.Settings{Registerer: reg})
	ctx := context.Background()
	require.NoError(t, s.Start(ctx))
	var dones []*doneRecorder
	for range 3 {
		d := newDone(t)
		require.NoError(t, s.Enqueue(ctx, batch(2), d.done))
		dones = append(dones, d)
	}
	require.Eventually(t, func() bool { return writes.Load() == 1 }, 5*time.Second, time.Millisecond)

	start := time.Now()
	require.NoError(t, s.Shutdown(ctx))
	require.Less(t, time.Since(start), 5*time.Second)
	for _, d := range dones {
		err := d.wait(t)
		require.ErrorIs(t, err, storage.ErrSenderClosed)
		require.ErrorContains(t, err, "connection refused")
	}
	// First batch: first attempt + one after its backoff was cut short;
	// the two queued ones: one drain attempt each, no retries.
	require.Equal(t, int32(4), writes.Load())
	require.Equal(t, 3.0, labelled(t, reg, "novacron_storage_dropped_total", "shutdown"))
}

// TestSenderShutdownDeadline: when the writer hangs, Shutdown returns at
// its deadline and every batch still gets its done call.
func TestSenderShutdownDeadline(t *testing.T) {
	g := &gateWriter{release: make(chan struct{}), started: make(chan struct{}, 1)}
	cfg := fastConfig()
	cfg.Concurrency = 1
	s := storage.NewSender(g, cfg, storage.Settings{})
	ctx := context.Background()
	require.NoError(t, s.Start(ctx))
	var dones []*doneRecorder
	for range 3 {
		d := newDone(t)
		require.NoError(t, s.Enqueue(ctx, batch(1), d.done))
		dones = append(dones, d)
	}
	<-g.started
	sctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, s.Shutdown(sctx), context.DeadlineExceeded)
	for _, d := range dones {
		require.ErrorIs(t, d.wait(t), storage.ErrSenderClosed)
	}
	require.Equal(t, int32(0), g.writes.Load())
}

// TestSenderShutdownWithoutStart gives queued batches up.
func TestSenderShutdownWithoutStart(t *testing.T) {
	s := storage.NewSender(storage.WriterFunc(func(context.Context, []novacron.Series) error { return nil }),
		fastConfig(), storage.Settings{})
	d := newDone(t)
	require.NoError(t, s.Enqueue(context.Background(), batch(1), d.done))
	require.NoError(t, s.Shutdown(context.Background()))
	require.ErrorIs(t, d.wait(t), storage.ErrSenderClosed)
	require.NoError(t, s.Shutdown(context.Background()))
}

func gather(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// labelled returns the value of the counter name{...=label}.
func labelled(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("metric %s{%s} not found", name, label)
	return 0
}
