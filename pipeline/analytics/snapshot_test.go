package analytics

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/sim"
	"github.com/novacron/novacron/models"
)

// TestSnapshotContinuity: a processor restored from a snapshot taken at
// any point produces exactly the output of one that never stopped.
func TestSnapshotContinuity(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	sc := sim.NewDefaultConfig()
	sc.VMs, sc.Hosts, sc.Interval = 4, 1, time.Minute
	sc.Incidents = []sim.IncidentConfig{{Kind: sim.IncidentDiskFill, Target: "vm-0001", At: 14 * time.Hour, Duration: 8 * time.Hour}}
	cfg := NewDefaultConfig()
	cfg.MaxClockSkew = 0
	gen := func() *sim.Fleet {
		f, err := sim.NewFleet(*sc, start)
		require.NoError(t, err)
		return f
	}
	var ref, got Output
	a, err := NewProcessor(cfg, nil, Source)
	require.NoError(t, err)
	require.NoError(t, gen().Generate(start, start.Add(30*time.Hour), time.Minute, func(b []novacron.Series) error {
		for _, s := range b {
			a.Process(0, s, &ref)
		}
		return nil
	}))
	b, err := NewProcessor(cfg, nil, Source)
	require.NoError(t, err)
	i := 0
	require.NoError(t, gen().Generate(start, start.Add(30*time.Hour), time.Minute, func(batch []novacron.Series) error {
		if i%97 == 0 { // restart often, at odd points
			snap, err := b.Snapshot(0)
			require.NoError(t, err)
			b, err = NewProcessor(cfg, nil, Source)
			require.NoError(t, err)
			if snap != nil {
				fresh, err := b.Restore(0, snap)
				require.NoError(t, err)
				require.Zero(t, fresh)
			}
		}
		i++
		for _, s := range batch {
			b.Process(0, s, &got)
		}
		return nil
	}))
	require.NotEmpty(t, ref.Events)
	require.Equal(t, len(ref.Series), len(got.Series))
	require.Equal(t, ref.Events, got.Events)
	for j := range ref.Series {
		require.Equal(t, ref.Series[j], got.Series[j])
	}
	kinds := map[string]int{}
	for _, e := range ref.Events {
		kinds[e.Kind]++
	}
	require.Positive(t, kinds[novacron.EventForecastBreach], "a filling disk predicts a breach")
}

func TestSnapshotRejectsGarbage(t *testing.T) {
	p, err := NewProcessor(NewDefaultConfig(), nil, Source)
	require.NoError(t, err)
	for _, b := range [][]byte{nil, []byte("NCA1"), []byte("XXXX\x00\x00"), []byte("NCA1\x02\x05\x01\x02")} {
		_, err := p.Restore(0, b)
		require.Error(t, err, "%q", b)
	}
}

// TestBadSamples: NaN and infinite values, samples far in the future or
// past and out-of-order samples are dropped and counted by reason.
func TestBadSamples(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	cfg := NewDefaultConfig()
	cfg.MaxSampleAge = 24 * time.Hour
	p, err := NewProcessor(cfg, func() time.Time { return now }, Source)
	require.NoError(t, err)
	ls := novacron.Labels{{Name: "__name__", Value: "novacron_vm_cpu_usage_ratio"}, {Name: "vm_id", Value: "vm-1"}}
	ms := now.UnixMilli()
	nan := func() float64 { var z float64; return z / z }()
	var out Output
	p.Process(0, novacron.Series{Labels: ls, Samples: []novacron.Sample{
		{T: ms - 60000, V: 0.5},
		{T: ms - 30000, V: nan},                       // non-finite
		{T: ms - 90000, V: 0.5},                       // out of order
		{T: ms - 60000, V: 0.5},                       // repeated timestamp
		{T: ms + 2*time.Hour.Milliseconds(), V: 0.5},  // future
		{T: ms - 48*time.Hour.Milliseconds(), V: 0.5}, // too old
		{T: ms, V: 0.6},
	}}, &out)
	c := p.Counts()
	require.EqualValues(t, 7, c.Samples)
	require.EqualValues(t, 2, c.Modelled)
	require.EqualValues(t, 1, c.Dropped[dropNonFinite])
	require.EqualValues(t, 2, c.Dropped[dropOutOfOrder])
	require.EqualValues(t, 1, c.Dropped[dropFuture])
	require.EqualValues(t, 1, c.Dropped[dropTooOld])
	// An unmodelled series is neither modelled nor dropped.
	p.Process(0, novacron.Series{Labels: novacron.Labels{{Name: "__name__", Value: "novacron_vm_up"}}, Samples: []novacron.Sample{{T: ms, V: 1}}}, &out)
	require.EqualValues(t, 2, p.Counts().Modelled)
}

// TestDeviation: how far a sample lies from the expected value, in widths
// of the band on its side, which gates the opening of anomalies.
func TestDeviation(t *testing.T) {
	t.Parallel()
	band := models.Result{Expected: 10, Lower: 8, Upper: 11}
	for _, c := range []struct {
		v, want float64
	}{
		{10, 0}, {11, 1}, {13.5, 3.5}, {8, 1}, {6, 2}, {9, 0.5},
	} {
		require.InDelta(t, c.want, deviation(c.v, band), 1e-12, "v=%v", c.v)
	}
	flat := models.Result{Expected: 5, Lower: 5, Upper: 5}
	require.Zero(t, deviation(5, flat))
	require.InDelta(t, 2, deviation(5.1, flat), 1e-9, "a flat band counts in hundredths of the expected value")
	zero := models.Result{}
	require.True(t, math.IsInf(deviation(0.1, zero), 1), "any departure from a zero-width band around zero is infinitely far")
}

// TestOpenDeviation: a jump far outside the band opens an anomaly even
// when the detector does not score it (it has learnt that the series is
// noisy), but not while the detector warms up; with open_deviation 0 the
// same jump opens nothing.
func TestOpenDeviation(t *testing.T) {
	t.Parallel()
	ls := novacron.Labels{{Name: "__name__", Value: "novacron_vm_cpu_usage_ratio"}, {Name: "vm_id", Value: "vm-1"}}
	run := func(openDev float64, before int) (opened []novacron.Event, maxScore float64) {
		cfg := NewDefaultConfig()
		cfg.MaxClockSkew = 0
		cfg.Anomaly.OpenDeviation = openDev
		p, err := NewProcessor(cfg, nil, Source)
		require.NoError(t, err)
		rng := rand.New(rand.NewPCG(1, 1000))
		var out Output
		tm := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC).UnixMilli()
		for i := range before + 6 {
			tm += 15000
			v := 0.3 + 0.03*rng.NormFloat64()
			if i >= before {
				v = 10*v + 1
			}
			p.Process(0, novacron.Series{Labels: ls, Samples: []novacron.Sample{{T: tm, V: v}}}, &out)
			for _, s := range out.Series {
				if s.Labels.Get("__name__") == "novacron_vm_cpu_usage_ratio:anomaly_score" && i >= before {
					maxScore = max(maxScore, s.Samples[0].V)
				}
			}
			for _, e := range out.Events {
				if e.Kind == novacron.EventAnomalyOpened {
					opened = append(opened, e)
				}
			}
			out.Reset()
		}
		return opened, maxScore
	}
	opened, score := run(0, 1000)
	require.Less(t, score, 0.9, "the detector does not score this jump as an anomaly")
	require.Empty(t, opened, "without open_deviation the jump opens nothing")
	opened, _ = run(10, 1000)
	require.Len(t, opened, 1, "the jump opens one anomaly")
	require.Greater(t, opened[0].Details["value"].(float64), 3.0, "on the first sample of the jump")
	opened, _ = run(10, 50)
	require.Empty(t, opened, "nothing opens while the detector warms up")
}
