package models

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// detectorKinds builds each streaming detector fresh.
var detectorKinds = map[string]func() Detector{
	"ensemble": NewDefaultDetector,
	"robust-z": func() Detector { return NewRobustZ(NewDefaultRobustZConfig()) },
	"cusum":    func() Detector { return NewCUSUM(NewDefaultCUSUMConfig()) },
	"likelihood": func() Detector {
		return NewLikelihood(NewRobustZ(NewDefaultRobustZConfig()), NewDefaultLikelihoodConfig())
	},
}

// testSeries is a noisy daily pattern with irregularities: NaN, Inf, a gap,
// repeated and backward timestamps, a spike and a level shift.
func testSeries(n int, seed uint64) ([]int64, []float64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	ts := make([]int64, n)
	vs := make([]float64, n)
	t := int64(1_400_000_000_000)
	for i := range n {
		t += 300_000
		switch {
		case i == 50:
			t += 86_400_000 // gap
		case i == 60:
			t -= 300_000 // repeated
		case i == 70:
			t -= 900_000 // backwards
		}
		ts[i] = t
		vs[i] = 50 + 10*math.Sin(2*math.Pi*float64(t%86_400_000)/86_400_000) + rng.NormFloat64()
		if i > n/2 {
			vs[i] += 30
		}
	}
	vs[10], vs[11], vs[12] = math.NaN(), math.Inf(1), math.Inf(-1)
	vs[n/3] += 100
	return ts, vs
}

func TestDetectorsFiniteBounded(t *testing.T) {
	for name, mk := range detectorKinds {
		t.Run(name, func(t *testing.T) {
			for seed := range uint64(5) {
				ts, vs := testSeries(3000, seed)
				d := mk()
				var maxSnap int
				for i := range ts {
					r := d.Observe(ts[i], vs[i])
					require.False(t, math.IsNaN(r.Score) || r.Score < 0 || r.Score > 1, "score %v at %d", r.Score, i)
					if i%500 == 0 {
						b, err := d.MarshalBinary()
						require.NoError(t, err)
						maxSnap = max(maxSnap, len(b))
					}
				}
				b, _ := d.MarshalBinary()
				require.LessOrEqual(t, max(maxSnap, len(b)), 2048, "state must stay under 2 KiB")
			}
		})
	}
}

func TestDetectorsExtremeValues(t *testing.T) {
	for name, mk := range detectorKinds {
		t.Run(name, func(t *testing.T) {
			d := mk()
			for i, v := range []float64{0, 0, 0, 1e300, -1e300, 5e-324, 0, math.MaxFloat64, 1, 1} {
				for range 200 {
					r := d.Observe(int64(i)*1000, v)
					require.False(t, math.IsNaN(r.Score), "score NaN after %v", v)
					require.True(t, r.Score >= 0 && r.Score <= 1)
				}
			}
		})
	}
}

func TestDetectorsSnapshotRestore(t *testing.T) {
	for name, mk := range detectorKinds {
		t.Run(name, func(t *testing.T) {
			ts, vs := testSeries(2000, 11)
			a := mk()
			for i := range 1000 {
				a.Observe(ts[i], vs[i])
			}
			snap, err := a.MarshalBinary()
			require.NoError(t, err)
			b := mk()
			require.NoError(t, b.UnmarshalBinary(snap))
			for i := 1000; i < len(ts); i++ {
				ra, rb := a.Observe(ts[i], vs[i]), b.Observe(ts[i], vs[i])
				require.Equal(t, ra, rb, "row %d", i)
			}
			// Corrupt snapshots are rejected, never panic.
			require.ErrorIs(t, b.UnmarshalBinary(snap[:len(snap)-3]), ErrSnapshot)
			require.ErrorIs(t, b.UnmarshalBinary(append([]byte("XXXX"), snap[4:]...)), ErrSnapshot)
			bad := append([]byte{}, snap...)
			bad[5]++
			require.ErrorIs(t, b.UnmarshalBinary(bad), ErrSnapshot)
		})
	}
}

func TestDetectorsCausal(t *testing.T) {
	for name, mk := range detectorKinds {
		t.Run(name, func(t *testing.T) {
			ts, vs := testSeries(1500, 21)
			ref := make([]Result, len(ts))
			d := mk()
			for i := range ts {
				ref[i] = d.Observe(ts[i], vs[i])
			}
			// Change every sample from cut on: earlier results must not move.
			cut := 900
			alt := append([]float64{}, vs...)
			for i := cut; i < len(alt); i++ {
				alt[i] = -alt[i] * 3
			}
			d = mk()
			for i := range ts {
				r := d.Observe(ts[i], alt[i])
				if i < cut {
					require.Equal(t, ref[i], r, "row %d changed", i)
				}
			}
		})
	}
}

func TestCausalSHESDCausal(t *testing.T) {
	ts, vs := testSeries(1200, 3)
	for i := range vs {
		if !finite(vs[i]) {
			vs[i] = 50
		}
	}
	cfg := NewDefaultSHESDConfig()
	ref := CausalSHESD(ts, vs, cfg)
	alt := append([]float64{}, vs...)
	for i := 700; i < len(alt); i++ {
		alt[i] *= 5
	}
	got := CausalSHESD(ts, alt, cfg)
	require.Equal(t, ref[:700], got[:700])
}

func TestEnsembleFlagsSpike(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	d := NewDefaultDetector()
	var normal []float64
	for i := range 3000 {
		r := d.Observe(int64(i)*300_000, 10+rng.NormFloat64())
		if i > 1000 {
			normal = append(normal, r.Score)
		}
	}
	r := d.Observe(3000*300_000, 40)
	slices.Sort(normal)
	require.Greater(t, r.Score, normal[len(normal)*99/100], "a 30-sigma spike scores above 99% of normal samples")
	require.NotEqual(t, ComponentNone, r.Component)
	require.Equal(t, int64(3000*300_000), r.Since)
	require.InDelta(t, 10, r.Expected, 1)
}

func TestEnsembleContextNoveltyFlagsNewTransition(t *testing.T) {
	// A square wave between 0 and 10 (the likelihood and contextual parts
	// disabled except the context): after learning, only a jump between
	// levels never seen in sequence (0 -> 5 -> 10) is novel.
	cfg := NewDefaultEnsembleConfig()
	cfg.NoveltyWeight, cfg.ShiftH = 0, math.Inf(1)
	cfg.Rest = 0
	d := NewEnsemble(cfg)
	level := func(i int) float64 { return float64(10 * ((i / 20) % 2)) }
	var maxCtx float64
	for i := range 1000 {
		r := d.Observe(int64(i)*60_000, level(i))
		if i > cfg.Warmup && r.Component == ComponentPattern {
			maxCtx = max(maxCtx, r.Score)
		}
	}
	require.Zero(t, maxCtx, "a learned square wave has no new transitions")
	r := d.Observe(1000*60_000, 5)
	require.Equal(t, 1.0, r.Score)
	require.Equal(t, ComponentPattern, r.Component)
	// The same transition (10 -> 5) a second time is no longer new.
	d.Observe(1001*60_000, 10)
	r = d.Observe(1002*60_000, 5)
	require.NotEqual(t, ComponentPattern, r.Component)
}

func TestEnsembleRestsAfterAlarm(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	cfg := NewDefaultEnsembleConfig()
	d := NewEnsemble(cfg)
	i := 0
	obs := func(v float64) Result {
		i++
		return d.Observe(int64(i)*300_000, v)
	}
	for range 3000 {
		obs(10 + rng.NormFloat64())
	}
	burst := func(v float64) bool { // the alarm comes within its first samples
		for range 8 {
			if obs(v).Score >= cfg.RestLevel {
				return true
			}
		}
		return false
	}
	require.True(t, burst(60), "the onset of an event raises an alarm")
	for k := range cfg.Rest {
		v := 10 + rng.NormFloat64()
		if k == cfg.Rest/2 {
			v = 80 // a second spike while resting
		}
		require.Zero(t, obs(v).Score, "sample %d after the alarm is reported as 0 while resting", k+1)
	}
	for range 2 * cfg.Rest {
		obs(10 + rng.NormFloat64())
	}
	require.True(t, burst(100), "after the rest a new event raises an alarm again")
}

func TestNaNLeavesStateUnchanged(t *testing.T) {
	for name, mk := range detectorKinds {
		t.Run(name, func(t *testing.T) {
			d := mk()
			for i := range 500 {
				d.Observe(int64(i)*1000, float64(i%7))
			}
			before, _ := d.MarshalBinary()
			r := d.Observe(501_000, math.NaN())
			require.Zero(t, r.Score)
			after, _ := d.MarshalBinary()
			require.Equal(t, before, after)
		})
	}
}

// go test -run '^$' -bench . -count 6 ./models | benchstat -
func BenchmarkDefaultDetector(b *testing.B) {
	ts, vs := testSeries(4096, 1)
	for i := range vs {
		if !finite(vs[i]) {
			vs[i] = 1
		}
	}
	d := NewDefaultDetector()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.Observe(ts[i&4095], vs[i&4095])
		i++
	}
	snap, _ := d.MarshalBinary()
	b.ReportMetric(float64(len(snap)), "state_bytes")
}

// dailyPeak is a day with a high plateau from 09:00 to 18:00 (80) and a
// low night (20), with small noise; peak false drops the plateau.
func dailyPeak(t int64, peak bool, rng *rand.Rand) float64 {
	h := (t % dayMS) / 3_600_000
	if peak && h >= 9 && h < 18 {
		return 80 + rng.NormFloat64()
	}
	return 20 + rng.NormFloat64()
}

func TestEnsembleDayContextFlagsMissingPeakAfterHistory(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	e := NewEnsemble(NewDefaultEnsembleConfig())
	const step = 300_000 // 5 minutes
	t0 := int64(1_400_000_000_000) / dayMS * dayMS
	obs := func(i int, v float64) float64 {
		tt := t0 + int64(i)*step
		e.n++
		if e.n == 1 {
			e.t0, e.minV, e.maxV = tt, v, v
		}
		s := e.dayContext(tt, v)
		e.minV, e.maxV = math.Min(e.minV, v), math.Max(e.maxV, v)
		return s
	}
	perDay := int(dayMS / step)
	// Day 1 at 10:00 onwards is new to every slot, and a value new to its
	// slot before DayMinDays of history never fires.
	i := 0
	for ; i < 2*perDay; i++ {
		v := dailyPeak(t0+int64(i)*step, true, rng)
		if i == perDay+3*12 { // 03:00 on day 2: a daytime value at night
			v = 80
		}
		require.Zero(t, obs(i, v), "sample %d fired before %v days of history", i, e.cfg.DayMinDays)
	}
	for ; i < 8*perDay; i++ {
		require.Zero(t, obs(i, dailyPeak(t0+int64(i)*step, true, rng)), "a learned day fires at sample %d", i)
	}
	// A day without its peak: the first plateau sample scores 1; the later
	// hours of the same plateau fire too, but so soon after that they
	// score little.
	var fired []int
	for k := range perDay {
		tt := t0 + int64(i)*step
		if s := obs(i, dailyPeak(tt, false, rng)); s >= 0.5 {
			require.Equal(t, 1.0, s, "the first firing in %v samples scores 1", e.cfg.EventGap)
			fired = append(fired, k)
		}
		i++
	}
	require.Equal(t, []int{9 * 12}, fired, "only 09:00 of the day without a peak scores high")
}

func TestEnsembleDayContextFiringOftenScoresLess(t *testing.T) {
	cfg := NewDefaultEnsembleConfig()
	cfg.DayMinDays = 0
	e := NewEnsemble(cfg)
	e.n, e.t0 = 1, 0
	e.dayContext(0, 0)
	e.minV, e.maxV = 0, 10
	// Values growing past the slot's range at every sample fire every time;
	// all but the first come 1 sample after the previous firing.
	e.n = int64(cfg.EventGap) + 1
	require.Equal(t, 1.0, e.dayContext(1000, 10))
	e.n++
	require.InDelta(t, 1/cfg.EventGap, e.dayContext(2000, 20), 1e-12)
}

func TestEnsembleLevelShiftFiresOnceOnShift(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	e := NewEnsemble(NewDefaultEnsembleConfig())
	e.mFast, e.mSlow = 10, 10
	var noise, onShift, after int
	for i := range 9000 {
		v := 10 + rng.NormFloat64()
		if i >= 8000 {
			v += 3 // a shift of 3 sigma
		}
		e.n++
		if e.levelShift(v) == 0 {
			continue
		}
		switch {
		case i >= 2000 && i < 8000:
			noise++
		case i >= 8000 && i < 8020:
			onShift++
		case i >= 8020 && i < 8500:
			after++
		}
	}
	require.Less(t, noise, 20, "on stationary noise it fires rarely")
	require.Equal(t, 1, onShift, "the shift fires within 20 samples")
	require.Zero(t, after, "and only once")
}

func TestEnsembleCatchesMissingDailyPeak(t *testing.T) {
	// End to end: the default detector flags a day without its peak near
	// the hour the peak should start; without the time-of-day component it
	// does not (so this test can fail).
	run := func(cfg EnsembleConfig) (onset float64, quiet float64) {
		rng := rand.New(rand.NewPCG(6, 6))
		d := NewEnsemble(cfg)
		t0 := int64(1_400_000_000_000) / dayMS * dayMS
		perDay := int(dayMS / 300_000)
		for i := range 14 * perDay {
			tt := t0 + int64(i)*300_000
			day := i / perDay
			s := d.Observe(tt, dailyPeak(tt, day != 12, rng)).Score
			k := i % perDay
			switch {
			case day == 12 && k >= 9*12 && k < 10*12:
				onset = max(onset, s)
			case day >= 5 && day < 12:
				quiet = max(quiet, s)
			}
		}
		return onset, quiet
	}
	cfg := NewDefaultEnsembleConfig()
	onset, quiet := run(cfg)
	require.GreaterOrEqual(t, onset, 0.99, "the missing peak is flagged within its first hour")
	require.Less(t, quiet, onset)
	cfg.DaySlots = 0
	onset, _ = run(cfg)
	require.Less(t, onset, 0.99, "without the time-of-day component the missing peak is not flagged")
}
