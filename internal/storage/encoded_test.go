package storage_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/storage"
	"github.com/novacron/novacron/internal/storage/prw"
)

// encodedWriter records what it is given through each method.
type encodedWriter struct {
	mu      sync.Mutex
	series  [][]novacron.Series
	raw     [][]byte
	samples []int
	fail    int // WriteEncoded fails this many times, retryably
}

func (w *encodedWriter) Write(_ context.Context, b []novacron.Series) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.series = append(w.series, b)
	return nil
}

func (w *encodedWriter) WriteEncoded(_ context.Context, raw []byte, samples int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail > 0 {
		w.fail--
		return context.DeadlineExceeded
	}
	w.raw = append(w.raw, append([]byte(nil), raw...))
	w.samples = append(w.samples, samples)
	return nil
}

func (w *encodedWriter) Ping(context.Context) error { return nil }

func TestSenderEncodedGoesToEncodedWriter(t *testing.T) {
	w := &encodedWriter{fail: 2}
	s := storage.NewSender(w, fastConfig(), storage.Settings{})
	require.NoError(t, s.Start(context.Background()))
	defer s.Shutdown(context.Background())

	raw, err := prw.AppendWriteRequest(nil, batch(3))
	require.NoError(t, err)
	d := newDone(t)
	require.NoError(t, s.EnqueueEncoded(context.Background(), raw, 3, d.done))
	require.NoError(t, d.wait(t))
	require.Equal(t, [][]byte{raw}, w.raw, "forwarded as is, after the retries")
	require.Equal(t, []int{3}, w.samples)
	require.Empty(t, w.series)
}

func TestSenderEncodedDecodedForSeriesWriter(t *testing.T) {
	var got []novacron.Series
	w := storage.WriterFunc(func(_ context.Context, b []novacron.Series) error { got = b; return nil })
	s := storage.NewSender(w, fastConfig(), storage.Settings{})
	require.NoError(t, s.Start(context.Background()))
	defer s.Shutdown(context.Background())

	raw, err := prw.AppendWriteRequest(nil, batch(3))
	require.NoError(t, err)
	d := newDone(t)
	require.NoError(t, s.EnqueueEncoded(context.Background(), raw, 3, d.done))
	require.NoError(t, d.wait(t))
	require.Equal(t, batch(3), got)

	// Bytes that do not decode are given up at once, permanently.
	calls := 0
	w2 := storage.WriterFunc(func(context.Context, []novacron.Series) error { calls++; return nil })
	s2 := storage.NewSender(w2, fastConfig(), storage.Settings{})
	require.NoError(t, s2.Start(context.Background()))
	defer s2.Shutdown(context.Background())
	d = newDone(t)
	require.NoError(t, s2.EnqueueEncoded(context.Background(), []byte{0xff, 0x01}, 1, d.done))
	err = d.wait(t)
	require.True(t, novacron.IsPermanent(err))
	require.ErrorIs(t, err, prw.ErrInvalid)
	require.Zero(t, calls)
}

func TestSenderEncodedCountsTowardSampleBound(t *testing.T) {
	gate, started := make(chan struct{}), make(chan struct{}, 4)
	w := storage.WriterFunc(func(context.Context, []novacron.Series) error { started <- struct{}{}; <-gate; return nil })
	cfg := fastConfig()
	cfg.Concurrency = 1
	cfg.QueueMaxSamples = 10
	s := storage.NewSender(w, cfg, storage.Settings{})
	require.NoError(t, s.Start(context.Background()))
	raw, err := prw.AppendWriteRequest(nil, batch(6))
	require.NoError(t, err)
	require.NoError(t, s.EnqueueEncoded(context.Background(), raw, 6, nil))
	<-started                                                               // taken by the worker
	require.NoError(t, s.EnqueueEncoded(context.Background(), raw, 6, nil)) // queued: 6 of 10
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, s.EnqueueEncoded(ctx, raw, 6, nil), context.DeadlineExceeded, "12 samples exceed the bound")
	close(gate)
	require.NoError(t, s.Shutdown(context.Background()))
}
