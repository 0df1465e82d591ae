package tsdbstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/promql"
	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/storage"
	"github.com/novacron/novacron/internal/storage/prw"
)

func TestConfigValidate(t *testing.T) {
	require.NoError(t, NewDefaultConfig().Validate())
	err := Config{OutOfOrderWindow: -1}.Validate()
	for _, want := range []string{
		"path is required", "retention must be > 0", "out_of_order_window must be >= 0",
		"query_timeout must be > 0", "query_max_samples must be > 0", "lookback_delta must be > 0",
	} {
		require.ErrorContains(t, err, want)
	}
}

func openStore(t testing.TB, dir string, reg prometheus.Registerer) *Store {
	t.Helper()
	cfg := NewDefaultConfig()
	cfg.Path = dir
	s, err := Open(cfg, storage.Settings{Registerer: reg})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

func ser(name string, samples []novacron.Sample, kv ...string) novacron.Series {
	ls := novacron.Labels{{Name: "__name__", Value: name}}
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, novacron.Label{Name: kv[i], Value: kv[i+1]})
	}
	return novacron.Series{Labels: ls.Sort(), Samples: samples}
}

func instant(t *testing.T, s *Store, q string, ts int64) promql.Vector {
	t.Helper()
	qry, err := s.Engine().NewInstantQuery(context.Background(), s.Queryable(), nil, q, time.UnixMilli(ts))
	require.NoError(t, err)
	defer qry.Close()
	res := qry.Exec(context.Background())
	require.NoError(t, res.Err)
	v, err := res.Vector()
	require.NoError(t, err)
	return v
}

func TestWriteAndQuery(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	ctx := context.Background()
	base := int64(1_700_000_000_000)
	var batch []novacron.Series
	for vm := range 3 {
		var smp []novacron.Sample
		for i := range 20 {
			// A counter growing by (vm+1) per second, sampled every 15s.
			smp = append(smp, novacron.Sample{T: base + int64(i)*15000, V: float64((vm + 1) * i * 15)})
		}
		batch = append(batch, ser("vm_cpu_seconds_total", smp, "vm_id", fmt.Sprintf("vm-%d", vm), "host", "h1"))
	}
	require.NoError(t, s.Write(ctx, batch))
	require.NoError(t, s.Ping(ctx))

	at := base + 19*15000
	v := instant(t, s, `vm_cpu_seconds_total{vm_id="vm-1"}`, at)
	require.Len(t, v, 1)
	require.Equal(t, float64(2*19*15), v[0].F)

	v = instant(t, s, `sum(rate(vm_cpu_seconds_total[1m]))`, at)
	require.Len(t, v, 1)
	require.InDelta(t, 1+2+3, v[0].F, 1e-9)

	v = instant(t, s, `count by (host) (vm_cpu_seconds_total)`, at)
	require.Len(t, v, 1)
	require.Equal(t, "h1", v[0].Metric.Get("host"))
	require.Equal(t, 3.0, v[0].F)
}

// TestRedelivery: writing the same batch twice stores each sample once and
// counts nothing as rejected; a different value at a stored timestamp is
// skipped and counted, without failing the batch.
func TestRedelivery(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	s := openStore(t, t.TempDir(), reg)
	ctx := context.Background()
	base := int64(1_700_000_000_000)
	batch := []novacron.Series{ser("up", []novacron.Sample{{T: base, V: 1}, {T: base + 1000, V: 2}, {T: base + 2000, V: 3}}, "vm_id", "a")}
	require.NoError(t, s.Write(ctx, batch))
	require.NoError(t, s.Write(ctx, batch))

	v := instant(t, s, `count_over_time(up[1m])`, base+2000)
	require.Len(t, v, 1)
	require.Equal(t, 3.0, v[0].F)
	// Identical re-appends are accepted (and counted) without being stored twice.
	require.Equal(t, 6.0, testutil.ToFloat64(s.m.appended))
	require.Equal(t, 0.0, testutil.ToFloat64(s.m.rejected.WithLabelValues(reasonDuplicate)))

	conflict := []novacron.Series{ser("up", []novacron.Sample{{T: base + 2000, V: 99}, {T: base + 3000, V: 4}}, "vm_id", "a")}
	require.NoError(t, s.Write(ctx, conflict))
	require.Equal(t, 1.0, testutil.ToFloat64(s.m.rejected.WithLabelValues(reasonDuplicate)))
	v = instant(t, s, `up`, base+3000)
	require.Equal(t, 4.0, v[0].F)
	v = instant(t, s, `max_over_time(up[1m])`, base+3000)
	require.Equal(t, 4.0, v[0].F, "the conflicting 99 was not stored")

	problems, err := testutil.GatherAndLint(reg, "novacron_tsdb_samples_appended_total", "novacron_tsdb_samples_rejected_total")
	require.NoError(t, err)
	require.Empty(t, problems)
}

// TestOutOfOrder: late samples inside out_of_order_window are stored;
// older ones are skipped and counted.
func TestOutOfOrder(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	ctx := context.Background()
	base := int64(1_700_000_000_000)
	require.NoError(t, s.Write(ctx, []novacron.Series{ser("late", []novacron.Sample{{T: base, V: 1}})}))
	require.NoError(t, s.Write(ctx, []novacron.Series{ser("late", []novacron.Sample{{T: base - 30*60*1000, V: 2}})}))
	require.NoError(t, s.Write(ctx, []novacron.Series{ser("late", []novacron.Sample{{T: base - 2*3600*1000, V: 3}})}))
	v := instant(t, s, `count_over_time(late[3h])`, base)
	require.Equal(t, 2.0, v[0].F)
	require.Equal(t, 1.0, testutil.ToFloat64(s.m.rejected.WithLabelValues(reasonTooOld)))
}

func TestInvalidBatchIsPermanent(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	err := s.Write(context.Background(), []novacron.Series{{Labels: novacron.Labels{{Name: "vm_id", Value: "a"}}, Samples: []novacron.Sample{{T: 1}}}})
	require.True(t, novacron.IsPermanent(err))
	require.ErrorIs(t, err, prw.ErrInvalid)
}

// TestReopen: committed samples survive Shutdown and Open (WAL replay).
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	cfg := NewDefaultConfig()
	cfg.Path = dir
	s, err := Open(cfg, storage.Settings{})
	require.NoError(t, err)
	base := int64(1_700_000_000_000)
	require.NoError(t, s.Write(context.Background(), []novacron.Series{ser("kept", []novacron.Sample{{T: base, V: 42}})}))
	require.NoError(t, s.Shutdown(context.Background()))
	require.NoError(t, s.Shutdown(context.Background()), "second Shutdown")
	require.ErrorIs(t, s.Write(context.Background(), []novacron.Series{ser("kept", []novacron.Sample{{T: base + 1, V: 1}})}), ErrClosed)
	require.ErrorIs(t, s.Ping(context.Background()), ErrClosed)

	s2 := openStore(t, dir, nil)
	v := instant(t, s2, `kept`, base)
	require.Len(t, v, 1)
	require.Equal(t, 42.0, v[0].F)
}

// BenchmarkWrite appends one sample to each of 10k series per op, the
// shape of one collection round.
//
//	go test ./internal/storage/tsdbstore -run '^$' -bench Write -count 6 | tee new.txt && benchstat old.txt new.txt
func BenchmarkWrite(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("series=%d", n), func(b *testing.B) {
			s := openStore(b, b.TempDir(), nil)
			batch := make([]novacron.Series, n)
			for i := range batch {
				batch[i] = ser("vm_cpu_usage_ratio", []novacron.Sample{{}},
					"vm_id", fmt.Sprintf("vm-%05d", i), "host", fmt.Sprintf("host-%02d", i%40), "provider", "sim")
			}
			ctx := context.Background()
			ts := int64(1_700_000_000_000)
			b.ReportAllocs()
			for b.Loop() {
				ts += 15000
				for i := range batch {
					batch[i].Samples[0] = novacron.Sample{T: ts, V: float64(i)}
				}
				if err := s.Write(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
