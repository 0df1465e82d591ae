package ingest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/bus/kafkabus"
	"github.com/novacron/novacron/internal/storage"
	"github.com/novacron/novacron/internal/storage/prw"
	"github.com/novacron/novacron/pipeline/publish"
)

const (
	samplesTopic = "novacron.samples"
	dlTopic      = "novacron.deadletter"
)

func newBus(t *testing.T) novacron.Bus {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	cfg := kafkabus.NewDefaultConfig()
	cfg.Brokers = c.ListenAddrs()
	cfg.HeartbeatInterval = 200 * time.Millisecond
	cfg.SessionTimeout = 6 * time.Second
	cfg.CommitInterval = 100 * time.Millisecond
	b, err := kafkabus.New(cfg, kafkabus.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	require.NoError(t, b.EnsureTopics(context.Background(), []novacron.TopicSpec{
		{Name: samplesTopic, Partitions: 3, ReplicationFactor: 1},
		{Name: dlTopic, Partitions: 1, ReplicationFactor: 1},
	}))
	return b
}

// store records written samples by series and timestamp, like a TSDB.
type store struct {
	mu      sync.Mutex
	samples map[string]map[int64]float64
	fail    atomic.Int32 // while > 0, writes fail with a retryable error
	reject  atomic.Bool  // writes fail permanently
}

func newStore() *store { return &store{samples: map[string]map[int64]float64{}} }

func (s *store) Write(_ context.Context, batch []novacron.Series) error {
	if s.reject.Load() {
		return novacron.Permanent(fmt.Errorf("400 bad request: out of bounds"))
	}
	if s.fail.Load() > 0 {
		s.fail.Add(-1)
		return fmt.Errorf("503 unavailable")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ser := range batch {
		k := ser.Labels.String()
		if s.samples[k] == nil {
			s.samples[k] = map[int64]float64{}
		}
		for _, smp := range ser.Samples {
			s.samples[k][smp.T] = smp.V
		}
	}
	return nil
}

func (s *store) Ping(context.Context) error { return nil }

func (s *store) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.samples {
		n += len(m)
	}
	return n
}

func series(n, ts int) []novacron.Series {
	out := make([]novacron.Series, n)
	for i := range out {
		out[i] = novacron.Series{
			Labels:  novacron.Labels{{Name: "__name__", Value: "novacron_vm_cpu_usage_ratio"}, {Name: "vm", Value: fmt.Sprintf("vm-%03d", i)}},
			Samples: []novacron.Sample{{T: int64(ts) * 1000, V: float64(i)}},
		}
	}
	return out
}

func startIngest(t *testing.T, b novacron.Bus, st *store, reg prometheus.Registerer) (*Ingest, *storage.Sender) {
	t.Helper()
	scfg := storage.NewDefaultSenderConfig()
	scfg.MinBackoff, scfg.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	snd := storage.NewSender(st, scfg, storage.Settings{})
	require.NoError(t, snd.Start(context.Background()))
	in := New(Config{Group: "ingest", SamplesTopic: samplesTopic, DeadLetterTopic: dlTopic, MaxPollRecords: 100},
		Settings{Registerer: reg}, b, snd)
	require.NoError(t, in.Start(context.Background()))
	return in, snd
}

func stop(t *testing.T, in *Ingest, snd *storage.Sender) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, in.Shutdown(ctx))
	require.NoError(t, snd.Shutdown(ctx))
}

func TestIngestStoresEverythingAndDeadLettersBadRecords(t *testing.T) {
	ctx := context.Background()
	b := newBus(t)
	st := newStore()
	st.fail.Store(3) // storage hiccups: retried, not lost
	reg := prometheus.NewRegistry()
	in, snd := startIngest(t, b, st, reg)
	defer stop(t, in, snd)

	pub := publish.New(b, publish.Topics{Samples: samplesTopic}, publish.Settings{})
	for ts := range 5 {
		require.NoError(t, pub.ConsumeSeries(ctx, series(50, ts)))
	}
	// A malformed record between good ones.
	require.NoError(t, b.Produce(ctx, &novacron.Record{Topic: samplesTopic, Key: []byte("k"), Value: []byte{0xff, 0x01, 0x02}}))
	require.NoError(t, pub.ConsumeSeries(ctx, series(50, 5)))

	require.Eventually(t, func() bool { return st.count() == 300 }, 20*time.Second, 20*time.Millisecond)

	dl, err := b.Consumer("dl-reader", []string{dlTopic})
	require.NoError(t, err)
	defer dl.Close(ctx)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	recs, err := dl.Poll(pctx)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, []byte{0xff, 0x01, 0x02}, recs[0].Value, "the original bytes are kept")
	hdr := map[string]string{}
	for _, h := range recs[0].Headers {
		hdr[h.Key] = string(h.Value)
	}
	require.Equal(t, "decode", hdr[HeaderStage])
	require.Equal(t, samplesTopic, hdr[HeaderTopic])
	require.Contains(t, hdr[HeaderError], "offset "+hdr[HeaderOffset])
	require.Equal(t, 1.0, testutil.ToFloat64(in.metrics.deadLettered.WithLabelValues("decode")))
	require.Equal(t, 300.0, testutil.ToFloat64(in.metrics.samples))
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}

func TestIngestRestartResumesWithoutGaps(t *testing.T) {
	ctx := context.Background()
	b := newBus(t)
	st := newStore()
	pub := publish.New(b, publish.Topics{Samples: samplesTopic}, publish.Settings{})

	in, snd := startIngest(t, b, st, nil)
	for ts := range 3 {
		require.NoError(t, pub.ConsumeSeries(ctx, series(40, ts)))
	}
	require.Eventually(t, func() bool { return st.count() == 120 }, 20*time.Second, 20*time.Millisecond)
	stop(t, in, snd)

	// Written while no consumer runs.
	for ts := 3; ts < 6; ts++ {
		require.NoError(t, pub.ConsumeSeries(ctx, series(40, ts)))
	}
	in, snd = startIngest(t, b, st, nil)
	defer stop(t, in, snd)
	require.Eventually(t, func() bool { return st.count() == 240 }, 20*time.Second, 20*time.Millisecond)
}

func TestIngestPermanentWriteRejectionIsDeadLettered(t *testing.T) {
	ctx := context.Background()
	b := newBus(t)
	st := newStore()
	st.reject.Store(true)
	in, snd := startIngest(t, b, st, nil)
	defer stop(t, in, snd)
	pub := publish.New(b, publish.Topics{Samples: samplesTopic}, publish.Settings{})
	require.NoError(t, pub.ConsumeSeries(ctx, series(4, 1)))
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(in.metrics.deadLettered.WithLabelValues("write")) == 4
	}, 20*time.Second, 20*time.Millisecond)
	require.Equal(t, 0, st.count())
}

// encodedStore is a store that also takes encoded batches, as the
// remote-write client does; it decodes them to count what it stored.
type encodedStore struct {
	*store
	encoded atomic.Int32 // WriteEncoded calls
}

func (s *encodedStore) WriteEncoded(ctx context.Context, raw []byte, samples int) error {
	s.encoded.Add(1)
	batch, err := prw.DecodeWriteRequest(raw, nil)
	if err != nil {
		return novacron.Permanent(err)
	}
	if prw.SampleCount(batch) != samples {
		return novacron.Permanent(fmt.Errorf("got %d samples, told %d", prw.SampleCount(batch), samples))
	}
	return s.store.Write(ctx, batch)
}

func TestIngestForwardsRecordBytes(t *testing.T) {
	ctx := context.Background()
	b := newBus(t)
	st := &encodedStore{store: newStore()}
	st.fail.Store(2)
	scfg := storage.NewDefaultSenderConfig()
	scfg.MinBackoff, scfg.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	snd := storage.NewSender(st, scfg, storage.Settings{})
	require.NoError(t, snd.Start(ctx))
	in := New(Config{Group: "ingest", SamplesTopic: samplesTopic, DeadLetterTopic: dlTopic, MaxPollRecords: 100},
		Settings{}, b, snd)
	require.NoError(t, in.Start(ctx))
	defer stop(t, in, snd)

	pub := publish.New(b, publish.Topics{Samples: samplesTopic}, publish.Settings{})
	require.NoError(t, pub.ConsumeSeries(ctx, series(30, 1)))
	// A record with an exemplar and metadata is not forwarded as is: the
	// store gets its labels and samples only.
	wr := prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{{
			Labels:    []prompb.Label{{Name: "__name__", Value: "novacron_vm_cpu_usage_ratio"}, {Name: "vm", Value: "vm-x"}},
			Samples:   []prompb.Sample{{Timestamp: 7000, Value: 7}},
			Exemplars: []prompb.Exemplar{{Value: 1, Timestamp: 7000}},
		}},
		Metadata: []prompb.MetricMetadata{{MetricFamilyName: "novacron_vm_cpu_usage_ratio"}},
	}
	v, err := wr.Marshal()
	require.NoError(t, err)
	require.NoError(t, b.Produce(ctx, &novacron.Record{Topic: samplesTopic, Key: []byte("x"), Value: v}))
	// An invalid record is dead-lettered alone.
	bad, err := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "vm-id", Value: "a"}},
		Samples: []prompb.Sample{{Timestamp: 1, Value: 1}},
	}}}).Marshal()
	require.NoError(t, err)
	require.NoError(t, b.Produce(ctx, &novacron.Record{Topic: samplesTopic, Key: []byte("y"), Value: bad}))
	require.NoError(t, pub.ConsumeSeries(ctx, series(30, 2)))

	require.Eventually(t, func() bool { return st.count() == 61 }, 20*time.Second, 20*time.Millisecond)
	require.Positive(t, st.encoded.Load())
	st.mu.Lock()
	require.Equal(t, map[int64]float64{7000: 7}, st.samples[`novacron_vm_cpu_usage_ratio{vm="vm-x"}`])
	st.mu.Unlock()
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(in.metrics.deadLettered.WithLabelValues("decode")) == 1
	}, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return testutil.ToFloat64(in.metrics.samples) == 61 }, 10*time.Second, 20*time.Millisecond)

	dl, err := b.Consumer("dl-reader", []string{dlTopic})
	require.NoError(t, err)
	defer dl.Close(ctx)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	recs, err := dl.Poll(pctx)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, bad, recs[0].Value)
	for _, h := range recs[0].Headers {
		if h.Key == HeaderError {
			require.Contains(t, string(h.Value), `series 0 (up{vm-id="a"}): invalid label name "vm-id"`)
		}
	}
}

func TestShutdownWithoutStart(t *testing.T) {
	in := New(Config{Group: "g", SamplesTopic: samplesTopic, DeadLetterTopic: dlTopic, MaxPollRecords: 1}, Settings{}, nil, nil)
	require.NoError(t, in.Shutdown(context.Background()))
	require.NoError(t, in.Shutdown(context.Background()))
}
