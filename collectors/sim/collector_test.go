package sim

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/sim/simtest"
	"github.com/novacron/novacron/internal/catalog"
)

func newCollector(t *testing.T, mod func(*Config), set Settings) (*Collector, *simtest.Sink) {
	t.Helper()
	cfg := NewDefaultConfig()
	cfg.StartTime = t0
	if mod != nil {
		mod(cfg)
	}
	sink := &simtest.Sink{}
	c, err := NewFactory().Create(cfg, set, sink)
	require.NoError(t, err)
	return c, sink
}

func TestShutdownWithoutStart(t *testing.T) {
	c, _ := newCollector(t, nil, Settings{})
	require.NoError(t, c.Shutdown(context.Background()))
	require.NoError(t, c.Shutdown(context.Background()))
	require.Error(t, c.Start(context.Background()), "no start after shutdown")
}

func TestNewRejectsBadInput(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.Hosts = 0
	_, err := New(*cfg, Settings{}, &simtest.Sink{})
	require.ErrorContains(t, err, "hosts:")
	_, err = New(*NewDefaultConfig(), Settings{}, nil)
	require.ErrorContains(t, err, "sink is nil")
}

func TestDefaultStartTimeComesFromSettings(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	c, err := New(*NewDefaultConfig(), Settings{Now: func() time.Time { return now }}, &simtest.Sink{})
	require.NoError(t, err)
	require.Equal(t, now, c.Fleet().StartTime())
}

func TestMetricsRegisterAndLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	newCollector(t, nil, Settings{Registerer: reg})
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
	n, err := testutil.GatherAndCount(reg, catalog.CollectorErrorsTotal)
	require.NoError(t, err)
	require.Equal(t, 2, n, "both stages are initialised to 0")

	cfg := NewDefaultConfig()
	_, err = New(*cfg, Settings{Registerer: reg}, &simtest.Sink{})
	require.Error(t, err, "a second sim collector on one registry clashes")
}

func TestStartConsumeShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		reg := prometheus.NewPedanticRegistry()
		c, sink := newCollector(t, nil, Settings{Registerer: reg})
		require.NoError(t, c.Start(ctx))
		require.Error(t, c.Start(ctx), "start twice")

		time.Sleep(time.Minute - time.Millisecond)
		synctest.Wait()
		batches := sink.Batches()
		require.Len(t, batches, 4, "a batch at start and every 15s")
		for i, b := range batches {
			require.Equal(t, t0.Add(time.Duration(i)*15*time.Second).UnixMilli(), b[0].Samples[0].T)
		}
		invs := sink.Inventories()
		require.Len(t, invs, 1, "one inventory at start")
		require.Len(t, invs[0].VMs, 60)

		d := c.Driver()
		require.Equal(t, "sim", d.Provider())
		require.NoError(t, d.Stop(ctx, "vm-0001", 0))
		synctest.Wait()
		events := sink.Events()
		require.Len(t, events, 1, "the action's event is delivered at once")
		require.Equal(t, "vm-0001", events[0].VMID)
		require.Equal(t, novacron.EventVMLifecycle, events[0].Kind)
		invs = sink.Inventories()
		require.Len(t, invs, 2, "and a fresh inventory")
		require.Equal(t, novacron.PowerStopped, invs[1].VMs[0].State)
		require.Equal(t, novacron.ENOTFOUND, novacron.ErrorCode(d.Start(ctx, "vm-0000")))

		time.Sleep(15 * time.Second)
		synctest.Wait()
		batches = sink.Batches()
		require.Len(t, batches, 5)
		up, ok := find(batches[4], catalog.VMUp, catalog.LabelVMID, "vm-0001")
		require.True(t, ok)
		require.Equal(t, 0.0, up.Samples[0].V, "the stopped VM reports down")

		require.NoError(t, c.Shutdown(ctx))
		require.NoError(t, c.Shutdown(ctx))
		time.Sleep(time.Minute)
		require.Len(t, sink.Batches(), 5, "nothing after shutdown")

		total := 0
		for _, b := range batches {
			total += len(b)
		}
		require.Equal(t, float64(total), testutil.ToFloat64(c.m.Series))
		require.Equal(t, float64(total), testutil.ToFloat64(c.m.Samples))
		require.Equal(t, 0.0, testutil.ToFloat64(c.m.ErrDeliver))
		mfs, err := reg.Gather()
		require.NoError(t, err)
		var cycles uint64
		for _, mf := range mfs {
			if mf.GetName() == catalog.CollectorCycleDurationSeconds {
				cycles = mf.GetMetric()[0].GetHistogram().GetSampleCount()
			}
		}
		require.Equal(t, uint64(5), cycles, "one cycle observed per batch")
		problems, err := testutil.GatherAndLint(reg)
		require.NoError(t, err)
		require.Empty(t, problems)
	})
}

func TestSpeedAndInventoryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, sink := newCollector(t, func(cfg *Config) { cfg.Speed = 60 }, Settings{})
		require.NoError(t, c.Start(context.Background()))
		// 10 simulated minutes take 10 real seconds at speed 60.
		time.Sleep(10*time.Second - time.Millisecond)
		synctest.Wait()
		require.NoError(t, c.Shutdown(context.Background()))
		batches := sink.Batches()
		require.Len(t, batches, 40)
		require.Equal(t, t0.Add(39*15*time.Second).UnixMilli(), batches[39][0].Samples[0].T)
		invs := sink.Inventories()
		require.Len(t, invs, 2, "at start and after inventory_interval (5m)")
		require.Equal(t, t0.Add(5*time.Minute), invs[1].Time)
	})
}

func TestDeliveryFailuresAreCountedNotFatal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, sink := newCollector(t, nil, Settings{})
		sink.SetErr(errors.New("sink down"))
		require.NoError(t, c.Start(context.Background()))
		time.Sleep(time.Minute - time.Millisecond)
		synctest.Wait()
		require.Empty(t, sink.Batches())
		// 4 series batches and 4 inventory attempts (retried each cycle
		// until one is delivered).
		require.Equal(t, 8.0, testutil.ToFloat64(c.m.ErrDeliver))
		require.Equal(t, 0.0, testutil.ToFloat64(c.m.Series))

		sink.SetErr(nil)
		time.Sleep(15 * time.Second)
		synctest.Wait()
		require.Len(t, sink.Batches(), 1, "delivery resumes")
		require.Len(t, sink.Inventories(), 1)
		require.NoError(t, c.Shutdown(context.Background()))
	})
}
