package models

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEWMA(t *testing.T) {
	f := func(alpha float64, in []float64, mean, variance float64) {
		t.Helper()
		e := NewEWMA(alpha)
		for _, v := range in {
			e.Update(v)
		}
		require.InDelta(t, mean, e.Mean, 1e-12)
		require.InDelta(t, variance, e.Var, 1e-12)
	}
	// The first 1/alpha samples are plain running means.
	f(0.5, []float64{2}, 2, 0)
	f(0.5, []float64{2, 4}, 3, 1)                // a=1/2: mean 3, var (1/2)(0+1/2*4)=1
	f(0.5, []float64{2, 4, 6}, 4.5, 2.75)        // a=1/2: d=3, mean 4.5, var 1/2(1+1/2*9)
	f(0.1, []float64{1, 1, 1, math.NaN()}, 1, 0) // NaN ignored
}

func TestRobustIgnoresSpike(t *testing.T) {
	r := NewRobust(0.05)
	for i := range 2000 {
		r.Update(10 + float64(i%3-1)) // 9, 10, 11
	}
	require.InDelta(t, 10, r.Median, 0.2)
	before := r.Median
	r.Update(1e9)
	require.Less(t, r.Median-before, 0.1, "one spike moves the median by at most one bounded step")
}

func TestProfileSlots(t *testing.T) {
	p := NewHourOfDayProfile(0.5)
	const hour = 3600 * 1000
	require.Equal(t, 0, p.Slot(0))
	require.Equal(t, 5, p.Slot(5*hour+59*60*1000))
	require.Equal(t, 23, p.Slot(-1)) // before the epoch wraps around
	p.Update(5*hour, 10)
	p.Update(24*hour+5*hour, 20) // same slot next day
	v, ok := p.Expected(5 * hour)
	require.True(t, ok)
	require.InDelta(t, 15, v, 1e-6)
	_, ok = p.Expected(6 * hour)
	require.False(t, ok)
}

func TestCounterRate(t *testing.T) {
	var c CounterRate
	require.True(t, math.IsNaN(c.Update(0, 100)))
	require.InDelta(t, 10, c.Update(1000, 110), 1e-12)
	require.InDelta(t, 2.5, c.Update(3000, 5), 1e-12, "reset: counts from zero, 5 in 2 s")
	require.True(t, math.IsNaN(c.Update(3000, 9)), "repeated timestamp")
	require.InDelta(t, 2, c.Update(5000, 9), 1e-12)
}

func TestACFAndPeriod(t *testing.T) {
	x := make([]float64, 480)
	for i := range x {
		x[i] = math.Sin(2 * math.Pi * float64(i) / 24)
	}
	r := ACF(x, 24)
	require.InDelta(t, 1, r[0], 1e-12)
	require.Greater(t, r[24], 0.9)
	require.Equal(t, 24, DetectPeriod(x, 100))
	require.True(t, IsSeasonal(x, 24))
	noise := make([]float64, 480)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range noise {
		noise[i] = rng.NormFloat64()
	}
	require.Equal(t, 0, DetectPeriod(noise, 100))
}

func TestSeasonalIndices(t *testing.T) {
	// A pure multiplicative pattern 1,2,3 (mean 2) repeated: indices 0.5,1,1.5.
	y := []float64{}
	for range 10 {
		y = append(y, 1, 2, 3)
	}
	si := SeasonalIndices(y, 3)
	require.InDeltaSlice(t, []float64{0.5, 1, 1.5}, si, 1e-12)
}

func TestSeasonalNaiveAndTheta(t *testing.T) {
	y := []float64{1, 2, 3, 4, 5, 6}
	f, err := SeasonalNaive{Season: 3}.Forecast(y, 4)
	require.NoError(t, err)
	require.Equal(t, []float64{4, 5, 6, 4}, f.Point)
	// Theta on a straight line: SES (alpha near 1) ends at the last value
	// 108 and the drift is half the slope b0 = 2, so f(h) = 108 + h.
	line := make([]float64, 50)
	for i := range line {
		line[i] = 10 + 2*float64(i)
	}
	th, err := Theta{Season: 1}.Forecast(line, 3)
	require.NoError(t, err)
	for i, p := range th.Point {
		require.InDelta(t, 108+float64(i+1), p, 0.05)
		require.Less(t, th.Lower[i], p)
		require.Greater(t, th.Upper[i], p)
	}
}

func TestETSRecoversSeasonalPattern(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	y := make([]float64, 24*20)
	for i := range y {
		y[i] = 100 + 20*math.Sin(2*math.Pi*float64(i)/24) + rng.NormFloat64()
	}
	f, err := ETS{Season: 24}.Forecast(y, 48)
	require.NoError(t, err)
	for i, p := range f.Point {
		want := 100 + 20*math.Sin(2*math.Pi*float64(len(y)+i)/24)
		require.InDelta(t, want, p, 3, "step %d (model %s)", i+1, f.Model)
	}
}

func TestNelderMead(t *testing.T) {
	rosen := func(x []float64) float64 {
		return 100*math.Pow(x[1]-x[0]*x[0], 2) + math.Pow(1-x[0], 2)
	}
	x, v := NelderMead(rosen, []float64{-1.2, 1}, 0.5, 5000)
	require.InDelta(t, 1, x[0], 1e-3)
	require.InDelta(t, 1, x[1], 1e-3)
	require.Less(t, v, 1e-6)
}

func TestTimeToThreshold(t *testing.T) {
	f := Forecast{
		Point: []float64{1, 2, 3, 4, 5},
		Lower: []float64{0, 1, 2, 3, 4},
		Upper: []float64{2, 3, 4, 5, 6},
	}
	require.Equal(t, Crossing{Step: 3, Earliest: 2, Latest: 4}, TimeToThreshold(f, 3, true))
	require.Equal(t, Crossing{Step: 0, Earliest: 0, Latest: 0}, TimeToThreshold(f, 10, true))
	require.Equal(t, Crossing{Step: 1, Earliest: 1, Latest: 0}, TimeToThreshold(f, 1, false))
}

func TestSHESDFindsSpikes(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	x := make([]float64, 24*14)
	for i := range x {
		x[i] = 10 + 5*math.Sin(2*math.Pi*float64(i)/24) + 0.3*rng.NormFloat64()
	}
	x[100] += 8
	x[250] -= 8
	got := SHESD(x, SHESDConfig{Period: 24, MaxAnoms: 0.02, Alpha: 0.05})
	require.GreaterOrEqual(t, len(got), 2)
	require.LessOrEqual(t, len(got), int(0.02*float64(len(x))))
	require.ElementsMatch(t, []int{100, 250}, got[:2], "the two spikes are the most extreme points")
}

func TestCombinationMedian(t *testing.T) {
	c := Combination{Median: true, Members: []Forecaster{SeasonalNaive{Season: 1}, SeasonalNaive{Season: 2}, SeasonalNaive{Season: 3}}}
	f, err := c.Forecast([]float64{1, 5, 9, 13}, 1) // members forecast 13, 9, 5
	require.NoError(t, err)
	require.Equal(t, []float64{9}, f.Point)
}
