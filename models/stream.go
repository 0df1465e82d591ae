package models

import (
	"math"
)

// Component names the part of a model whose deviation raised a score.
type Component uint8

// Components reported in explanations.
const (
	// ComponentNone: nothing deviated.
	ComponentNone Component = iota
	// ComponentLevel: the value is far from the expected value (a spike or dip).
	ComponentLevel
	// ComponentShift: the level has shifted persistently (change point).
	ComponentShift
	// ComponentSeason: the value breaks the usual seasonal pattern.
	ComponentSeason
	// ComponentVariance: the series became more volatile.
	ComponentVariance
	// ComponentNovelty: the value lies outside the range seen so far.
	ComponentNovelty
	// ComponentPattern: the value moved between levels in a way never
	// seen before (contextual novelty).
	ComponentPattern
)

// String returns the component's lower-case name.
func (c Component) String() string {
	switch c {
	case ComponentLevel:
		return "level"
	case ComponentShift:
		return "shift"
	case ComponentSeason:
		return "season"
	case ComponentVariance:
		return "variance"
	case ComponentNovelty:
		return "novelty"
	case ComponentPattern:
		return "pattern"
	}
	return "none"
}

// Result is a streaming detector's verdict on one sample.
type Result struct {
	// Score is the anomaly score in [0, 1]; 0 for ignored (NaN) samples.
	Score float64
	// Expected is the value the model expected before seeing the sample.
	Expected float64
	// Lower and Upper bound the normal band around Expected.
	Lower, Upper float64
	// Component is the part of the model that deviated most.
	Component Component
	// Since is the timestamp (ms) of the first sample of the current
	// deviation, or 0 when the sample is normal.
	Since int64
}

// Detector is a streaming anomaly detector for one series.
//
// Observe must be called with the samples in arrival order; it does O(1)
// amortised work, allocates nothing, and its result depends only on this
// and earlier samples. A Detector is not safe for concurrent use: the
// pipeline keeps one per series, owned by one goroutine.
type Detector interface {
	// Observe consumes one sample (t in ms since the epoch) and scores it.
	Observe(t int64, v float64) Result
	// MarshalBinary snapshots the detector's whole state.
	MarshalBinary() ([]byte, error)
	// UnmarshalBinary restores a snapshot taken by MarshalBinary of a
	// detector of the same kind; it wraps ErrSnapshot when it cannot.
	UnmarshalBinary(data []byte) error
}

// finite reports whether v is neither NaN nor infinite.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// gaussTail returns P(Z > z) for a standard normal Z.
func gaussTail(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }

// clamp01 limits v to [0, 1] (NaN becomes 0).
func clamp01(v float64) float64 {
	if !(v > 0) {
		return 0
	}
	if v > 1 {
		return 1
	}
	return v
}

// EWMA is an exponentially weighted moving mean and variance.
// The zero value is not usable; build with NewEWMA.
type EWMA struct {
	// Alpha is the weight of the newest sample, in (0, 1].
	Alpha float64
	// Mean and Var are the current estimates; N counts updates.
	Mean, Var float64
	N         int64
}

// NewEWMA returns an EWMA with weight alpha for new samples; its memory is
// about 2/alpha samples.
func NewEWMA(alpha float64) EWMA { return EWMA{Alpha: alpha} }

// Update folds v in. During the first 1/Alpha samples the weight is 1/N,
// so early estimates are plain running means rather than biased to v0.
func (e *EWMA) Update(v float64) {
	if !finite(v) {
		return
	}
	e.N++
	a := max(e.Alpha, 1/float64(e.N))
	d := v - e.Mean
	e.Mean += a * d
	e.Var = (1 - a) * (e.Var + a*d*d)
}

// Std is the standard deviation estimate.
func (e *EWMA) Std() float64 { return math.Sqrt(e.Var) }

// Robust is a streaming approximation of the median and the median
// absolute deviation (MAD) in O(1) memory: each sample moves the location
// by a step proportional to the current scale in the direction of the
// sample (stochastic approximation of the 0.5 quantile), and likewise the
// MAD tracks the median of absolute deviations. Outliers move it by one
// bounded step only, which makes it robust to spikes.
type Robust struct {
	// Rate is the step as a fraction of the scale (default 0.05).
	Rate float64
	// Median and MAD are the current estimates; N counts updates.
	Median, MAD float64
	N           int64
}

// NewRobust returns a Robust estimator with the given step rate.
func NewRobust(rate float64) Robust { return Robust{Rate: rate} }

// Update folds v in.
func (r *Robust) Update(v float64) {
	if !finite(v) {
		return
	}
	r.N++
	if r.N == 1 {
		r.Median = v
		return
	}
	dev := math.Abs(v - r.Median)
	if r.N == 2 {
		r.MAD = dev
	}
	step := r.Rate * math.Max(r.MAD, 1e-9*math.Abs(r.Median)+1e-12)
	switch {
	case v > r.Median:
		r.Median += math.Min(step, v-r.Median)
	case v < r.Median:
		r.Median -= math.Min(step, r.Median-v)
	}
	mstep := r.Rate * math.Max(r.MAD, 1e-12)
	if dev > r.MAD {
		r.MAD += math.Min(mstep, dev-r.MAD) * 0.5
	} else {
		r.MAD -= math.Min(mstep, r.MAD-dev) * 0.5
	}
}

// Sigma is the MAD scaled to a normal standard deviation (1.4826 MAD).
func (r *Robust) Sigma() float64 { return 1.4826 * r.MAD }

// Profile is a seasonal profile: an EWMA mean per slot of a fixed-length
// cycle, the slot taken from the sample's timestamp. HourOfDay profiles use
// Slots=24, Period=1 day; HourOfWeek profiles Slots=168, Period=1 week.
// Values are kept as float32 to halve the state.
type Profile struct {
	// PeriodMS is the cycle length in milliseconds.
	PeriodMS int64
	// Alpha is the EWMA weight of a new sample within its slot.
	Alpha float32
	// Means are the slot means; Seen marks slots that have a value.
	Means []float32
	Seen  []bool
}

// NewHourOfDayProfile returns a 24-slot daily profile.
func NewHourOfDayProfile(alpha float32) *Profile {
	return NewProfile(24, 24*3600*1000, alpha)
}

// NewHourOfWeekProfile returns a 168-slot weekly profile.
func NewHourOfWeekProfile(alpha float32) *Profile {
	return NewProfile(168, 7*24*3600*1000, alpha)
}

// NewProfile returns a profile of slots equal slots over a cycle of periodMS.
func NewProfile(slots int, periodMS int64, alpha float32) *Profile {
	return &Profile{PeriodMS: periodMS, Alpha: alpha, Means: make([]float32, slots), Seen: make([]bool, slots)}
}

// Slot returns the slot of timestamp t.
func (p *Profile) Slot(t int64) int {
	ph := t % p.PeriodMS
	if ph < 0 {
		ph += p.PeriodMS
	}
	return int(ph * int64(len(p.Means)) / p.PeriodMS)
}

// Expected returns the profile value at t and whether the slot has data.
func (p *Profile) Expected(t int64) (float64, bool) {
	s := p.Slot(t)
	return float64(p.Means[s]), p.Seen[s]
}

// Update folds v into the slot of t.
func (p *Profile) Update(t int64, v float64) {
	if !finite(v) {
		return
	}
	s := p.Slot(t)
	if !p.Seen[s] {
		p.Means[s], p.Seen[s] = float32(v), true
		return
	}
	p.Means[s] += p.Alpha * (float32(v) - p.Means[s])
}

// CounterRate turns a cumulative counter into a per-second rate. A value
// lower than the previous one is a counter reset: the counter is assumed
// to have restarted from zero, as Prometheus' rate() assumes. Samples with
// a timestamp not after the previous one yield NaN (no rate can be formed)
// and do not change the state.
type CounterRate struct {
	last  float64
	lastT int64
	have  bool
}

// Update consumes a counter sample and returns the rate since the previous
// one, or NaN for the first sample, a non-finite value or a non-increasing
// timestamp.
func (c *CounterRate) Update(t int64, v float64) float64 {
	if !finite(v) {
		return math.NaN()
	}
	if !c.have {
		c.last, c.lastT, c.have = v, t, true
		return math.NaN()
	}
	if t <= c.lastT {
		return math.NaN()
	}
	d := v - c.last
	if d < 0 {
		d = v
	}
	r := d / (float64(t-c.lastT) / 1000)
	c.last, c.lastT = v, t
	return r
}
