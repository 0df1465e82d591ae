package selfscrape

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/storage/prw"
)

type recorder struct {
	mu      sync.Mutex
	batches [][]novacron.Series
}

func (r *recorder) Write(_ context.Context, b []novacron.Series) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, b)
	return nil
}

func find(ss []novacron.Series, name string, kv ...string) (float64, bool) {
outer:
	for _, s := range ss {
		if s.Labels.Get("__name__") != name {
			continue
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if s.Labels.Get(kv[i]) != kv[i+1] {
				continue outer
			}
		}
		return s.Samples[0].V, true
	}
	return 0, false
}

func TestConvertFollowsTextFormatNaming(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "h"}, []string{"result"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "q_length", Help: "h"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lat_seconds", Help: "h", Buckets: []float64{0.1, 1}})
	reg.MustRegister(c, g, h)
	c.WithLabelValues("ok").Add(3)
	g.Set(7)
	h.Observe(0.05)
	h.Observe(0.5)
	h.Observe(5)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	ss := Convert(mfs, novacron.Labels{{Name: "instance", Value: "i"}, {Name: "job", Value: "novacron"}}, 1000)

	v, ok := find(ss, "x_total", "result", "ok", "job", "novacron", "instance", "i")
	require.True(t, ok)
	require.Equal(t, 3.0, v)
	v, _ = find(ss, "q_length")
	require.Equal(t, 7.0, v)
	v, _ = find(ss, "lat_seconds_bucket", "le", "0.1")
	require.Equal(t, 1.0, v)
	v, _ = find(ss, "lat_seconds_bucket", "le", "1")
	require.Equal(t, 2.0, v)
	v, _ = find(ss, "lat_seconds_bucket", "le", "+Inf")
	require.Equal(t, 3.0, v)
	v, _ = find(ss, "lat_seconds_count")
	require.Equal(t, 3.0, v)
	v, _ = find(ss, "lat_seconds_sum")
	require.InDelta(t, 5.55, v, 1e-9)
	// Every series is valid remote-write input: sorted, named, non-empty.
	require.NoError(t, prw.Validate(ss))
}

func TestScraperWritesPeriodically(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "up_ratio", Help: "h"}))
	rec := &recorder{}
	s := New(reg, rec, 10*time.Millisecond, "novacron", "127.0.0.1:8090", nil)
	require.NoError(t, s.Shutdown(context.Background()), "shutdown without start")
	require.NoError(t, s.Start(context.Background()))
	require.Eventually(t, func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.batches) >= 3
	}, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, s.Shutdown(context.Background()))
	require.NoError(t, s.Shutdown(context.Background()))
	rec.mu.Lock()
	n := len(rec.batches)
	rec.mu.Unlock()
	time.Sleep(50 * time.Millisecond)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Equal(t, n, len(rec.batches), "no scrape after shutdown")
	_, ok := find(rec.batches[0], "up_ratio", "job", "novacron")
	require.True(t, ok)
}
