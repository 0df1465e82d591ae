package models

import (
	"math"
	"slices"
	"sort"

	"gonum.org/v1/gonum/stat/distuv"
)

// RobustZConfig parameterises RobustZ.
type RobustZConfig struct {
	// ProfileAlpha is the weight of a new sample in its hour-of-day slot.
	ProfileAlpha float64
	// Rate is the step rate of the streaming median/MAD of the residuals.
	Rate float64
	// Warmup is the number of samples scored 0 while the model learns.
	Warmup int
}

// NewDefaultRobustZConfig returns RobustZ's defaults.
func NewDefaultRobustZConfig() RobustZConfig {
	return RobustZConfig{ProfileAlpha: 0.05, Rate: 0.02, Warmup: 100}
}

// RobustZ scores each sample by the robust z-score of its seasonal
// residual: the residual from an hour-of-day profile, centred by a
// streaming median and scaled by a streaming MAD. Score = 1 - 2·P(Z > z),
// so z = 3 scores 0.997. Use it for series with a daily rhythm and
// spiky anomalies.
type RobustZ struct {
	cfg  RobustZConfig
	prof *Profile
	res  Robust
	n    int64
}

// NewRobustZ returns a RobustZ detector.
func NewRobustZ(cfg RobustZConfig) *RobustZ {
	return &RobustZ{cfg: cfg, prof: NewHourOfDayProfile(float32(cfg.ProfileAlpha)), res: NewRobust(cfg.Rate)}
}

// Observe implements Detector.
func (r *RobustZ) Observe(t int64, v float64) Result {
	exp, ok := r.prof.Expected(t)
	if !ok {
		exp = r.res.Median
	} else {
		exp += r.res.Median
	}
	if !finite(v) {
		return Result{Expected: exp}
	}
	r.n++
	base, _ := r.prof.Expected(t)
	resid := v - base
	sigma := r.res.Sigma() + 1e-9*math.Abs(exp) + 1e-12
	z := math.Abs(resid-r.res.Median) / sigma
	score := 0.0
	if r.n > int64(r.cfg.Warmup) {
		score = clamp01(1 - 2*gaussTail(z))
	}
	r.res.Update(resid)
	r.prof.Update(t, v-r.res.Median)
	res := Result{Score: score, Expected: exp, Lower: exp - 3*sigma, Upper: exp + 3*sigma}
	if z > 3 {
		res.Component, res.Since = ComponentSeason, t
	}
	return res
}

const robustZVersion = 1

// MarshalBinary implements Detector.
func (r *RobustZ) MarshalBinary() ([]byte, error) {
	e := newEncoder(kindRobustZ, robustZVersion, 512)
	e.f64(r.cfg.ProfileAlpha)
	e.f64(r.cfg.Rate)
	e.i64(int64(r.cfg.Warmup))
	e.i64(r.n)
	e.f64(r.res.Median)
	e.f64(r.res.MAD)
	e.i64(r.res.N)
	for i, m := range r.prof.Means {
		e.f32(m)
		e.f64(boolf(r.prof.Seen[i]))
	}
	return e.b, nil
}

// UnmarshalBinary implements Detector.
func (r *RobustZ) UnmarshalBinary(data []byte) error {
	d := newDecoder(data, kindRobustZ, robustZVersion)
	var cfg RobustZConfig
	cfg.ProfileAlpha, cfg.Rate, cfg.Warmup = d.f64(), d.f64(), int(d.i64())
	x := NewRobustZ(cfg)
	x.n = d.i64()
	x.res.Median, x.res.MAD, x.res.N = d.f64(), d.f64(), d.i64()
	for i := range x.prof.Means {
		x.prof.Means[i] = d.f32()
		x.prof.Seen[i] = d.f64() != 0
	}
	if err := d.finish(); err != nil {
		return err
	}
	*r = *x
	return nil
}

// CUSUMConfig parameterises CUSUM.
type CUSUMConfig struct {
	// Alpha is the EWMA weight of the reference mean and variance.
	Alpha float64
	// K is the allowance and H the decision level, in standard deviations.
	K, H float64
	// Warmup is the number of samples scored 0 while the model learns.
	Warmup int
}

// NewDefaultCUSUMConfig returns CUSUM's defaults.
func NewDefaultCUSUMConfig() CUSUMConfig { return CUSUMConfig{Alpha: 0.005, K: 0.5, H: 5, Warmup: 100} }

// CUSUM is a two-sided tabular CUSUM change-point detector on samples
// standardised by a slow EWMA mean and variance. The score is the larger
// CUSUM statistic divided by 2H, capped at 1; when a statistic exceeds H
// a change is declared, the statistics restart and the reference moves to
// the new level. Use it for level shifts that a spike detector misses.
type CUSUM struct {
	cfg      CUSUMConfig
	ref      EWMA
	pos, neg float64
	since    int64
	n        int64
}

// NewCUSUM returns a CUSUM detector.
func NewCUSUM(cfg CUSUMConfig) *CUSUM { return &CUSUM{cfg: cfg, ref: NewEWMA(cfg.Alpha)} }

// Observe implements Detector.
func (c *CUSUM) Observe(t int64, v float64) Result {
	sd := c.ref.Std() + 1e-9*math.Abs(c.ref.Mean) + 1e-12
	res := Result{Expected: c.ref.Mean, Lower: c.ref.Mean - c.cfg.H*sd, Upper: c.ref.Mean + c.cfg.H*sd}
	if !finite(v) {
		return res
	}
	c.n++
	z := (v - c.ref.Mean) / sd
	if c.n <= 2 {
		z = 0
	}
	z = math.Max(-50, math.Min(50, z))
	c.pos = math.Max(0, c.pos+z-c.cfg.K)
	c.neg = math.Max(0, c.neg-z-c.cfg.K)
	s := math.Max(c.pos, c.neg)
	if s > 0 && c.since == 0 {
		c.since = t
	}
	if s == 0 {
		c.since = 0
	}
	if c.n > int64(c.cfg.Warmup) {
		res.Score = clamp01(s / (2 * c.cfg.H))
	}
	if s > c.cfg.H {
		res.Component, res.Since = ComponentShift, c.since
		c.pos, c.neg, c.since = 0, 0, 0
		c.ref.Mean = v
	}
	c.ref.Update(v)
	return res
}

const cusumVersion = 1

// MarshalBinary implements Detector.
func (c *CUSUM) MarshalBinary() ([]byte, error) {
	e := newEncoder(kindCUSUM, cusumVersion, 96)
	for _, f := range []float64{c.cfg.Alpha, c.cfg.K, c.cfg.H, float64(c.cfg.Warmup), c.ref.Mean, c.ref.Var, c.pos, c.neg} {
		e.f64(f)
	}
	e.i64(c.ref.N)
	e.i64(c.since)
	e.i64(c.n)
	return e.b, nil
}

// UnmarshalBinary implements Detector.
func (c *CUSUM) UnmarshalBinary(data []byte) error {
	d := newDecoder(data, kindCUSUM, cusumVersion)
	var x CUSUM
	x.cfg.Alpha, x.cfg.K, x.cfg.H = d.f64(), d.f64(), d.f64()
	x.cfg.Warmup = int(d.f64())
	x.ref = NewEWMA(x.cfg.Alpha)
	x.ref.Mean, x.ref.Var, x.pos, x.neg = d.f64(), d.f64(), d.f64(), d.f64()
	x.ref.N, x.since, x.n = d.i64(), d.i64(), d.i64()
	if err := d.finish(); err != nil {
		return err
	}
	*c = x
	return nil
}

// LikelihoodConfig parameterises Likelihood.
type LikelihoodConfig struct {
	// Window is the number of recent inner scores averaged (at most 32).
	Window int
	// Alpha is the EWMA weight of the long-run mean and variance of the
	// averaged scores.
	Alpha float64
	// Warmup is the number of samples scored 0 while the model learns.
	Warmup int
}

// NewDefaultLikelihoodConfig returns Likelihood's defaults.
func NewDefaultLikelihoodConfig() LikelihoodConfig {
	return LikelihoodConfig{Window: 10, Alpha: 0.002, Warmup: 300}
}

// Likelihood wraps a detector and reports the anomaly likelihood of its
// recent scores: the average of the last Window inner scores is compared
// with the long-run distribution of such averages (a normal with EWMA mean
// and variance) and the tail probability p is reported on a log scale,
// log(p)/log(1e-10), so that p = 1e-10 scores 1. This is the
// post-processing of Numenta's HTM detector; it calibrates scores across
// series so one threshold fits all.
type Likelihood struct {
	inner Detector
	cfg   LikelihoodConfig
	ring  [ensembleWindowMax]float64
	pos   int
	sum   float64
	mean  float64
	vari  float64
	n     int64
}

// NewLikelihood wraps inner.
func NewLikelihood(inner Detector, cfg LikelihoodConfig) *Likelihood {
	cfg.Window = min(max(cfg.Window, 1), ensembleWindowMax)
	return &Likelihood{inner: inner, cfg: cfg}
}

// Observe implements Detector.
func (l *Likelihood) Observe(t int64, v float64) Result {
	r := l.inner.Observe(t, v)
	if !finite(v) {
		return r
	}
	w := l.cfg.Window
	l.sum += r.Score - l.ring[l.pos]
	l.ring[l.pos] = r.Score
	l.pos = (l.pos + 1) % w
	avg := l.sum / float64(w)
	score := 0.0
	if l.n > 0 {
		sd := math.Max(math.Sqrt(l.vari), 0.02)
		score = math.Log(gaussTail((avg-l.mean)/sd)+1e-10) / math.Log(1e-10)
	}
	l.n++
	a := max(l.cfg.Alpha, 1/float64(l.n))
	d := avg - l.mean
	l.mean += a * d
	l.vari = (1 - a) * (l.vari + a*d*d)
	if l.n <= int64(l.cfg.Warmup) {
		score = 0
	}
	r.Score = clamp01(score)
	return r
}

const likelihoodVersion = 1

// MarshalBinary implements Detector; the inner detector's snapshot is
// embedded.
func (l *Likelihood) MarshalBinary() ([]byte, error) {
	inner, err := l.inner.MarshalBinary()
	if err != nil {
		return nil, err
	}
	e := newEncoder(kindLikelihood, likelihoodVersion, 400+len(inner))
	e.i64(int64(l.cfg.Window))
	e.f64(l.cfg.Alpha)
	e.i64(int64(l.cfg.Warmup))
	for _, f := range l.ring[:l.cfg.Window] {
		e.f64(f)
	}
	e.i64(int64(l.pos))
	e.f64(l.sum)
	e.f64(l.mean)
	e.f64(l.vari)
	e.i64(l.n)
	e.bytes(inner)
	return e.b, nil
}

// UnmarshalBinary implements Detector; the wrapped detector must be of the
// kind that was snapshotted.
func (l *Likelihood) UnmarshalBinary(data []byte) error {
	d := newDecoder(data, kindLikelihood, likelihoodVersion)
	var x Likelihood
	x.cfg.Window = int(d.i64())
	x.cfg.Alpha = d.f64()
	x.cfg.Warmup = int(d.i64())
	if d.err == nil && (x.cfg.Window < 1 || x.cfg.Window > ensembleWindowMax) {
		return ErrSnapshot
	}
	for i := 0; i < x.cfg.Window; i++ {
		x.ring[i] = d.f64()
	}
	x.pos = int(d.i64())
	x.sum, x.mean, x.vari = d.f64(), d.f64(), d.f64()
	x.n = d.i64()
	inner := d.bytes()
	if err := d.finish(); err != nil {
		return err
	}
	if x.pos < 0 || x.pos >= x.cfg.Window {
		return ErrSnapshot
	}
	if err := l.inner.UnmarshalBinary(inner); err != nil {
		return err
	}
	x.inner = l.inner
	*l = x
	return nil
}

// SHESDConfig parameterises the seasonal-hybrid ESD detector.
type SHESDConfig struct {
	// Period is the seasonal period in samples; 0 detects it (DetectPeriod).
	Period int
	// MaxAnoms is the largest fraction of a window that may be flagged.
	MaxAnoms float64
	// Alpha is the significance level of the generalized ESD test.
	Alpha float64
	// Window is the length of the trailing window the causal variant fits.
	Window int
	// Refit is how many samples the causal variant scores with one fit.
	Refit int
}

// NewDefaultSHESDConfig returns S-H-ESD's defaults.
func NewDefaultSHESDConfig() SHESDConfig {
	return SHESDConfig{MaxAnoms: 0.02, Alpha: 0.05, Window: 2016, Refit: 48}
}

// seasonalMedians returns per-phase medians of x for period p.
func seasonalMedians(x []float64, p int) []float64 {
	out := make([]float64, p)
	buf := make([]float64, 0, len(x)/p+1)
	for ph := 0; ph < p; ph++ {
		buf = buf[:0]
		for i := ph; i < len(x); i += p {
			buf = append(buf, x[i])
		}
		out[ph] = median(buf)
	}
	return out
}

// median returns the median of x, reordering x.
func median(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	sort.Float64s(x)
	n := len(x)
	if n%2 == 1 {
		return x[n/2]
	}
	return (x[n/2-1] + x[n/2]) / 2
}

// SHESD is the batch seasonal-hybrid ESD test (Twitter's
// AnomalyDetection): the series minus its per-phase seasonal median and
// its overall median gives residuals, on which the generalized ESD test,
// with median and MAD in place of mean and standard deviation, flags at
// most MaxAnoms·n outliers at significance Alpha. It returns the indices
// of the flagged points, most extreme first. NaN values are skipped.
func SHESD(x []float64, cfg SHESDConfig) []int {
	idx := make([]int, 0, len(x))
	vals := make([]float64, 0, len(x))
	for i, v := range x {
		if finite(v) {
			idx = append(idx, i)
			vals = append(vals, v)
		}
	}
	n := len(vals)
	if n < 8 {
		return nil
	}
	p := cfg.Period
	if p == 0 {
		p = DetectPeriod(vals, min(n/3, 2000))
	}
	resid := make([]float64, n)
	copy(resid, vals)
	if p > 1 && n >= 2*p {
		sm := seasonalMedians(vals, p)
		for i := range resid {
			resid[i] -= sm[i%p]
		}
	}
	tmp := slices.Clone(resid)
	med := median(tmp)
	for i := range resid {
		resid[i] -= med
	}
	k := int(cfg.MaxAnoms * float64(n))
	removed := make([]bool, n)
	var cand []int
	lastSig := -1
	for r := 1; r <= k; r++ {
		tmp = tmp[:0]
		for i, v := range resid {
			if !removed[i] {
				tmp = append(tmp, v)
			}
		}
		m := median(tmp)
		for i := range tmp {
			tmp[i] = math.Abs(tmp[i] - m)
		}
		mad := 1.4826 * median(tmp)
		if mad == 0 {
			break
		}
		best, bi := -1.0, -1
		for i, v := range resid {
			if !removed[i] {
				if d := math.Abs(v-m) / mad; d > best {
					best, bi = d, i
				}
			}
		}
		removed[bi] = true
		cand = append(cand, idx[bi])
		nn := float64(n - r + 1)
		tq := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: nn - 2}.Quantile(1 - cfg.Alpha/(2*nn))
		lambda := (nn - 1) * tq / math.Sqrt((nn-2+tq*tq)*nn)
		if best > lambda {
			lastSig = r
		}
	}
	return cand[:max(lastSig, 0)]
}

// CausalSHESD scores a whole series with S-H-ESD without look-ahead: every
// Refit samples it fits the seasonal medians, median and MAD of the
// residuals on the trailing Window samples (past only), and scores the
// next Refit samples by the ESD statistic of their residual relative to
// the critical value: score = 1 - λ/(2·R) for R > λ/2, else 0, so a point
// at the critical value scores 0.5.
func CausalSHESD(ts []int64, x []float64, cfg SHESDConfig) []float64 {
	out := make([]float64, len(x))
	var sm []float64
	var med, mad, lambda float64
	p := 0
	fitted := false
	for i := range x {
		if i%cfg.Refit == 0 && i >= 2*cfg.Refit {
			lo := max(0, i-cfg.Window)
			win := make([]float64, 0, i-lo)
			phase0 := lo
			for _, v := range x[lo:i] {
				win = append(win, v)
			}
			clean := win[:0:0]
			for _, v := range win {
				if finite(v) {
					clean = append(clean, v)
				}
			}
			if len(clean) >= 16 {
				p = cfg.Period
				if p == 0 {
					p = DetectPeriod(clean, min(len(clean)/3, 600))
				}
				resid := slices.Clone(win)
				sm = nil
				if p > 1 && len(win) >= 2*p {
					// medians by absolute phase (index mod p) over the window
					sm = make([]float64, p)
					buf := []float64{}
					for ph := 0; ph < p; ph++ {
						buf = buf[:0]
						for j := lo + ((ph-lo%p)+p)%p; j < i; j += p {
							if finite(x[j]) {
								buf = append(buf, x[j])
							}
						}
						sm[ph] = median(buf)
					}
					for j := range resid {
						resid[j] -= sm[(phase0+j)%p]
					}
				}
				tmp := resid[:0:0]
				for _, v := range resid {
					if finite(v) {
						tmp = append(tmp, v)
					}
				}
				med = median(tmp)
				for j := range tmp {
					tmp[j] = math.Abs(tmp[j] - med)
				}
				mad = 1.4826*median(tmp) + 1e-12
				nn := float64(len(tmp))
				tq := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: nn - 2}.Quantile(1 - cfg.Alpha/(2*nn))
				lambda = (nn - 1) * tq / math.Sqrt((nn-2+tq*tq)*nn)
				fitted = true
			}
		}
		if !fitted || !finite(x[i]) {
			continue
		}
		r := x[i]
		if sm != nil {
			r -= sm[i%p]
		}
		R := math.Abs(r-med) / mad
		if R > lambda/2 {
			out[i] = clamp01(1 - lambda/(2*R))
		}
	}
	_ = ts
	return out
}

// DetectPeriod returns the seasonal period of x in samples, from 2 to
// maxLag, or 0 when there is none: the lag of the highest local maximum
// of the sample autocorrelation that exceeds 0.3 and the approximate 95%
// significance bound 1.96/√n.
func DetectPeriod(x []float64, maxLag int) int {
	n := len(x)
	if maxLag >= n/2 {
		maxLag = n/2 - 1
	}
	if maxLag < 2 {
		return 0
	}
	acf := ACF(x, maxLag)
	bound := math.Max(0.3, 1.96/math.Sqrt(float64(n)))
	best, bl := 0.0, 0
	for k := 2; k < maxLag; k++ {
		if acf[k] > acf[k-1] && acf[k] >= acf[k+1] && acf[k] > bound && acf[k] > best {
			best, bl = acf[k], k
		}
	}
	return bl
}

// ACF returns the sample autocorrelations r_0..r_maxLag of x (biased
// estimator, mean removed); r_0 = 1 unless x is constant (all zeros).
func ACF(x []float64, maxLag int) []float64 {
	n := len(x)
	out := make([]float64, maxLag+1)
	if n == 0 {
		return out
	}
	mean := 0.0
	for _, v := range x {
		mean += v
	}
	mean /= float64(n)
	den := 0.0
	for _, v := range x {
		den += (v - mean) * (v - mean)
	}
	if den == 0 {
		return out
	}
	for k := 0; k <= maxLag && k < n; k++ {
		s := 0.0
		for t := 0; t+k < n; t++ {
			s += (x[t] - mean) * (x[t+k] - mean)
		}
		out[k] = s / den
	}
	return out
}
