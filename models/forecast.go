package models

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// ErrTooShort is returned (wrapped) when a series is too short for a model.
var ErrTooShort = errors.New("series too short")

// Forecast is a point forecast with a central prediction interval.
type Forecast struct {
	// Point holds the h point forecasts, one step ahead first.
	Point []float64
	// Lower and Upper bound the prediction interval at Level.
	Lower, Upper []float64
	// Level is the interval's nominal coverage (0.95 by default).
	Level float64
	// Model names the model (and for ETS the selected form).
	Model string
}

// Forecaster fits a model to a whole series and forecasts h steps. Fit is
// a batch operation on y (oldest first; all values finite), run
// periodically by the pipeline rather than per sample.
type Forecaster interface {
	Forecast(y []float64, h int) (Forecast, error)
}

// z95 is the standard normal 97.5% quantile.
const z95 = 1.959963984540054

// intervals fills Lower/Upper from per-step standard deviations.
func intervals(f *Forecast, sd []float64) {
	f.Level = 0.95
	f.Lower = make([]float64, len(f.Point))
	f.Upper = make([]float64, len(f.Point))
	for i, p := range f.Point {
		f.Lower[i] = p - z95*sd[i]
		f.Upper[i] = p + z95*sd[i]
	}
}

// SeasonalNaive repeats the last season: f(t+h) = y(t+h-m·k).
type SeasonalNaive struct {
	// Season is the period m in samples (1 = naive).
	Season int
}

// Forecast implements Forecaster. Intervals come from the in-sample
// seasonal differences, widening with the number of seasons ahead.
func (s SeasonalNaive) Forecast(y []float64, h int) (Forecast, error) {
	m := max(s.Season, 1)
	n := len(y)
	if n < m+1 {
		return Forecast{}, fmt.Errorf("%w: seasonal naive needs %d values, got %d", ErrTooShort, m+1, n)
	}
	f := Forecast{Point: make([]float64, h), Model: fmt.Sprintf("snaive(%d)", m)}
	ss := 0.0
	for t := m; t < n; t++ {
		d := y[t] - y[t-m]
		ss += d * d
	}
	sigma := math.Sqrt(ss / float64(n-m))
	sd := make([]float64, h)
	for i := range h {
		f.Point[i] = y[n-m+i%m]
		sd[i] = sigma * math.Sqrt(float64(i/m+1))
	}
	intervals(&f, sd)
	return f, nil
}

// IsSeasonal is the M4 seasonality test: the lag-m autocorrelation exceeds
// its 90% bound 1.645·sqrt((1+2·Σ_{k<m} r_k²)/n).
func IsSeasonal(y []float64, m int) bool {
	n := len(y)
	if m <= 1 || n < 3*m {
		return false
	}
	r := ACF(y, m)
	s := 0.0
	for k := 1; k < m; k++ {
		s += r[k] * r[k]
	}
	return math.Abs(r[m]) > 1.645*math.Sqrt((1+2*s)/float64(n))
}

// SeasonalIndices returns the m multiplicative seasonal indices of a
// classical decomposition (centred moving average), averaging to 1; index
// j applies to positions t with t mod m = j. It needs positive data.
func SeasonalIndices(y []float64, m int) []float64 {
	n := len(y)
	w := make([]float64, 0, m+1)
	if m%2 == 0 {
		w = append(w, 0.5/float64(m))
		for range m - 1 {
			w = append(w, 1/float64(m))
		}
		w = append(w, 0.5/float64(m))
	} else {
		for range m {
			w = append(w, 1/float64(m))
		}
	}
	half := (len(w) - 1) / 2
	sums := make([]float64, m)
	counts := make([]float64, m)
	for t := half; t < n-half; t++ {
		tr := 0.0
		for j, wj := range w {
			tr += wj * y[t-half+j]
		}
		if tr != 0 {
			sums[t%m] += y[t] / tr
			counts[t%m]++
		}
	}
	si := make([]float64, m)
	mean := 0.0
	for j := range si {
		si[j] = 1
		if counts[j] > 0 {
			si[j] = sums[j] / counts[j]
		}
		mean += si[j]
	}
	mean /= float64(m)
	for j := range si {
		si[j] /= mean
	}
	return si
}

// Naive2 is the M4 benchmark: naive on the series seasonally adjusted by a
// classical multiplicative decomposition when IsSeasonal.
type Naive2 struct {
	// Season is the period m in samples.
	Season int
}

// Forecast implements Forecaster.
func (s Naive2) Forecast(y []float64, h int) (Forecast, error) {
	n := len(y)
	if n == 0 {
		return Forecast{}, fmt.Errorf("%w: empty", ErrTooShort)
	}
	f := Forecast{Point: make([]float64, h), Model: "naive2"}
	if IsSeasonal(y, s.Season) {
		si := SeasonalIndices(y, s.Season)
		lvl := y[n-1] / si[(n-1)%s.Season]
		for i := range h {
			f.Point[i] = lvl * si[(n+i)%s.Season]
		}
	} else {
		for i := range h {
			f.Point[i] = y[n-1]
		}
	}
	sd := make([]float64, h)
	ss := 0.0
	for t := 1; t < n; t++ {
		ss += (y[t] - y[t-1]) * (y[t] - y[t-1])
	}
	for i := range sd {
		sd[i] = math.Sqrt(ss/float64(max(n-1, 1))) * math.Sqrt(float64(i+1))
	}
	intervals(&f, sd)
	return f, nil
}

// Trend and season forms of an ETS model.
const (
	TrendNone   = "N"
	TrendDamped = "Ad"
	TrendAdd    = "A"
	SeasonNone  = "N"
	SeasonAdd   = "A"
	SeasonMul   = "M"
)

// ETSSpec is one exponential smoothing (Holt-Winters) model form with
// additive errors: trend N, A or Ad (damped), season N, A or M.
type ETSSpec struct {
	Trend, Season string
}

// ETS is exponential smoothing with additive errors and automatic model
// selection. Every form in Candidates is fitted by minimising the
// in-sample one-step squared error with Nelder-Mead over the smoothing
// parameters (alpha, beta < alpha, gamma < 1-alpha, phi in [0.8, 0.98])
// and the initial states (level, trend and, for seasons up to 24, the
// seasonal states; longer seasons keep the classical-decomposition
// values), and the form with the lowest AICc (Gaussian likelihood,
// parameters counted with the initial states and the variance) forecasts.
// The default candidates follow the M4 seasonality test: when it passes
// (and two seasons are available), trends N and Ad with seasons A and, for
// positive data, M; otherwise trends N and Ad without season.
type ETS struct {
	// Season is the period m in samples.
	Season int
	// Candidates restricts the forms tried; nil tries the default set.
	Candidates []ETSSpec
	// MaxFit is how many of the most recent values are used (0: all).
	MaxFit int
}

type etsFit struct {
	spec   ETSSpec
	params []float64 // alpha, beta, gamma, phi
	sse    float64
	n      int
	k      int
	aicc   float64
	l, b   float64
	s      []float64
}

// etsRun runs the recursions, returning SSE and final states.
func etsRun(y []float64, m int, spec ETSSpec, alpha, beta, gamma, phi float64, init []float64, keep bool) (sse float64, l, b float64, s []float64) {
	l, b = init[0], init[1]
	if spec.Season != SeasonNone {
		s = slices.Clone(init[2 : 2+m])
	}
	if spec.Trend == TrendNone {
		b, phi = 0, 0
	} else if spec.Trend == TrendAdd {
		phi = 1
	}
	for t, v := range y {
		var sv float64
		j := t % m
		trend := l + phi*b
		pred := trend
		switch spec.Season {
		case SeasonAdd:
			sv = s[j]
			pred = trend + sv
		case SeasonMul:
			sv = s[j]
			pred = trend * sv
		}
		e := v - pred
		sse += e * e
		switch spec.Season {
		case SeasonNone:
			l = trend + alpha*e
		case SeasonAdd:
			l = trend + alpha*e
			s[j] = sv + gamma*e
		case SeasonMul:
			l = trend + alpha*e/sv
			s[j] = sv + gamma*e/trend
		}
		if spec.Trend != TrendNone {
			b = phi*b + alpha*beta*e/seasonDiv(spec, sv)
		}
		if math.IsNaN(sse) || math.IsInf(sse, 0) {
			return math.Inf(1), l, b, s
		}
	}
	return sse, l, b, s
}

func seasonDiv(spec ETSSpec, sv float64) float64 {
	if spec.Season == SeasonMul {
		return sv
	}
	return 1
}

// sigmoid maps R to (lo, hi).
func sigmoid(x, lo, hi float64) float64 { return lo + (hi-lo)/(1+math.Exp(-x)) }

// etsInit returns heuristic initial states [l0, b0, s_0..s_{m-1}]: the
// seasonal states from a classical decomposition of the first (up to
// four) seasons, the level and trend from a least-squares line through
// the first (up to 2m, at least 10) seasonally adjusted values.
func etsInit(y []float64, m int, spec ETSSpec) []float64 {
	init := make([]float64, 2+m)
	adj := y
	if spec.Season != SeasonNone {
		k := min(len(y)/m, 4) * m
		switch spec.Season {
		case SeasonMul:
			si := SeasonalIndices(y[:k], m)
			copy(init[2:], si)
		case SeasonAdd:
			si := seasonalOffsets(y[:k], m)
			copy(init[2:], si)
		}
		adj = make([]float64, len(y))
		for t, v := range y {
			if spec.Season == SeasonMul {
				adj[t] = v / init[2+t%m]
			} else {
				adj[t] = v - init[2+t%m]
			}
		}
	}
	k := min(len(adj), max(10, 2*m))
	a, b := lineFit(adj[:k])
	init[0], init[1] = a, b
	if spec.Trend == TrendNone {
		init[0], init[1] = a+b*float64(k-1)/2, 0
	}
	return init
}

// lineFit returns the intercept and slope of the least-squares line
// through (t, x[t]).
func lineFit(x []float64) (a, b float64) {
	n := float64(len(x))
	if len(x) < 2 {
		return x[0], 0
	}
	var st, sy, stt, sty float64
	for t, v := range x {
		ft := float64(t)
		st += ft
		sy += v
		stt += ft * ft
		sty += ft * v
	}
	b = (n*sty - st*sy) / (n*stt - st*st)
	return (sy - b*st) / n, b
}

// seasonalOffsets returns the m additive seasonal offsets of a classical
// decomposition (centred moving average), summing to 0.
func seasonalOffsets(y []float64, m int) []float64 {
	n := len(y)
	half := m / 2
	sums := make([]float64, m)
	counts := make([]float64, m)
	for t := half; t < n-half; t++ {
		tr := 0.0
		if m%2 == 0 {
			tr = 0.5 * (y[t-half] + y[t+half])
			for j := t - half + 1; j < t+half; j++ {
				tr += y[j]
			}
		} else {
			for j := t - half; j <= t+half; j++ {
				tr += y[j]
			}
		}
		sums[t%m] += y[t] - tr/float64(m)
		counts[t%m]++
	}
	so := make([]float64, m)
	mean := 0.0
	for j := range so {
		if counts[j] > 0 {
			so[j] = sums[j] / counts[j]
		}
		mean += so[j]
	}
	mean /= float64(m)
	for j := range so {
		so[j] -= mean
	}
	return so
}

func (e ETS) fit(y []float64, spec ETSSpec) (*etsFit, error) {
	m := max(e.Season, 1)
	init0 := etsInit(y, m, spec)
	seasonal := spec.Season != SeasonNone
	trend := spec.Trend != TrendNone
	scale := 0.0
	for t := 1; t < len(y); t++ {
		scale += math.Abs(y[t] - y[t-1])
	}
	scale = max(scale/float64(len(y)-1), 1e-9*math.Abs(y[0]), 1e-12)
	// x = [alpha, beta, gamma, phi, dl, db, ds_0..ds_{m-1}] in unconstrained
	// coordinates; states are offsets from init0 in units of scale (for
	// multiplicative seasons, in units of 0.1 of an index).
	// Seasonal states are optimised only for short seasons (m ≤ 24, as in
	// Hyndman et al.'s ets); longer ones keep the decomposition's values.
	fitSeason := seasonal && m <= 24
	nx := 6
	if fitSeason {
		nx += m
	}
	init := slices.Clone(init0)
	params := func(x []float64) (alpha, beta, gamma, phi float64) {
		alpha = sigmoid(x[0], 0.0001, 0.9999)
		beta = sigmoid(x[1], 0.0001, 0.9999)
		gamma = sigmoid(x[2], 0.0001, 0.9999) * (1 - alpha)
		phi = sigmoid(x[3], 0.8, 0.98)
		return
	}
	states := func(x []float64) bool {
		init[0] = init0[0] + x[4]*scale
		init[1] = 0
		if trend {
			init[1] = init0[1] + x[5]*scale/float64(m)
		}
		if !fitSeason {
			return true
		}
		mean := 0.0
		for i := range m {
			if spec.Season == SeasonMul {
				init[2+i] = init0[2+i] * math.Exp(0.1*x[6+i])
			} else {
				init[2+i] = init0[2+i] + x[6+i]*scale
			}
			mean += init[2+i]
		}
		mean /= float64(m)
		for i := range m {
			if spec.Season == SeasonMul {
				init[2+i] /= mean
			} else {
				init[2+i] -= mean
			}
		}
		return true
	}
	obj := func(x []float64) float64 {
		states(x)
		alpha, beta, gamma, phi := params(x)
		sse, _, _, _ := etsRun(y, m, spec, alpha, beta, gamma, phi, init, false)
		return sse
	}
	x0 := make([]float64, nx)
	x0[0], x0[1], x0[2], x0[3] = -1, -2, -2, 1
	x, _ := NelderMead(obj, x0, 0.5, etsMaxEval(nx))
	x, _ = NelderMead(obj, x, 0.25, etsMaxEval(nx))
	states(x)
	alpha, beta, gamma, phi := params(x)
	sse, l, b, s := etsRun(y, m, spec, alpha, beta, gamma, phi, init, true)
	f := &etsFit{spec: spec, params: []float64{alpha, beta, gamma, phi}, sse: sse, n: len(y), l: l, b: b, s: s}
	// Parameters: smoothing (alpha, beta, gamma, phi as used), initial
	// states (l0, b0, m-1 free seasonal states) and the error variance.
	f.k = 1 + 1 + 1
	if trend {
		f.k += 2
	}
	if spec.Trend == TrendDamped {
		f.k++
	}
	if seasonal {
		f.k += 1 + m - 1
	}
	n := float64(f.n)
	kk := float64(f.k)
	if n-kk-1 <= 0 || !(sse >= 0) || math.IsInf(sse, 0) {
		f.aicc = math.Inf(1)
	} else {
		// -2 log L of Gaussian additive errors with sigma² = SSE/n, plus
		// the AICc penalty.
		f.aicc = n*math.Log(sse/n+1e-300) + n*(1+math.Log(2*math.Pi)) + 2*kk + 2*kk*(kk+1)/(n-kk-1)
	}
	return f, nil
}

// etsMaxEval is the Nelder-Mead budget for nx unknowns.
func etsMaxEval(nx int) int { return 200 + 60*nx }

func (f *etsFit) forecast(h, m int) Forecast {
	alpha, beta, gamma, phi := f.params[0], f.params[1], f.params[2], f.params[3]
	if f.spec.Trend == TrendNone {
		phi = 0
	} else if f.spec.Trend == TrendAdd {
		phi = 1
	}
	out := Forecast{Point: make([]float64, h), Model: fmt.Sprintf("ets(A,%s,%s)", f.spec.Trend, f.spec.Season)}
	phiSum := 0.0
	pk := 1.0
	for i := range h {
		pk *= phi
		phiSum += pk
		p := f.l + phiSum*f.b
		j := (f.n + i) % m
		switch f.spec.Season {
		case SeasonAdd:
			p += f.s[j]
		case SeasonMul:
			p *= f.s[j]
		}
		out.Point[i] = p
	}
	sigma := math.Sqrt(f.sse / float64(f.n))
	sd := make([]float64, h)
	acc := 1.0
	sd[0] = sigma
	for j := 1; j < h; j++ {
		c := alpha * (1 + beta*float64(j))
		if f.spec.Trend == TrendNone {
			c = alpha
		}
		if f.spec.Season != SeasonNone && j%m == 0 {
			c += gamma
		}
		acc += c * c
		sd[j] = sigma * math.Sqrt(acc)
	}
	intervals(&out, sd)
	return out
}

// Forecast implements Forecaster.
func (e ETS) Forecast(y []float64, h int) (Forecast, error) {
	m := max(e.Season, 1)
	if e.MaxFit > 0 && len(y) > e.MaxFit {
		y = y[len(y)-e.MaxFit:]
	}
	if len(y) < 4 {
		return Forecast{}, fmt.Errorf("%w: ETS needs 4 values, got %d", ErrTooShort, len(y))
	}
	cands := e.Candidates
	if cands == nil {
		seasonal := m > 1 && len(y) >= 2*m && IsSeasonal(y, m)
		positive := slices.Min(y) > 0
		for _, tr := range []string{TrendNone, TrendDamped} {
			if !seasonal {
				cands = append(cands, ETSSpec{tr, SeasonNone})
				continue
			}
			cands = append(cands, ETSSpec{tr, SeasonAdd})
			if positive {
				cands = append(cands, ETSSpec{tr, SeasonMul})
			}
		}
	}
	var best *etsFit
	for _, c := range cands {
		if c.Season != SeasonNone && len(y) < 2*m || c.Season == SeasonMul && slices.Min(y) <= 0 {
			continue
		}
		f, err := e.fit(y, c)
		if err != nil {
			continue
		}
		if best == nil || f.aicc < best.aicc {
			best = f
		}
	}
	if best == nil {
		return Forecast{}, fmt.Errorf("ETS: no model form could be fitted")
	}
	return best.forecast(h, m), nil
}

// Theta is the Theta method of Assimakopoulos & Nikolopoulos as
// formulated by Hyndman & Billah: on the seasonally adjusted series
// (classical multiplicative decomposition when IsSeasonal and the data
// are positive), simple exponential smoothing plus half the slope of the
// linear trend, then reseasonalised.
type Theta struct {
	// Season is the period m in samples.
	Season int
}

// Forecast implements Forecaster.
func (th Theta) Forecast(y []float64, h int) (Forecast, error) {
	n := len(y)
	if n < 3 {
		return Forecast{}, fmt.Errorf("%w: Theta needs 3 values, got %d", ErrTooShort, n)
	}
	m := max(th.Season, 1)
	var si []float64
	x := y
	if m > 1 && slices.Min(y) > 0 && IsSeasonal(y, m) {
		si = SeasonalIndices(y, m)
		x = make([]float64, n)
		for t := range y {
			x[t] = y[t] / si[t%m]
		}
	}
	// Linear trend slope b0.
	var st, sy, stt, sty float64
	for t, v := range x {
		ft := float64(t)
		st += ft
		sy += v
		stt += ft * ft
		sty += ft * v
	}
	fn := float64(n)
	b0 := (fn*sty - st*sy) / (fn*stt - st*st)
	// SES with alpha fitted by golden-section search on SSE.
	ses := func(a float64) (float64, float64) {
		l := x[0]
		sse := 0.0
		for _, v := range x[1:] {
			e := v - l
			sse += e * e
			l += a * e
		}
		return sse, l
	}
	lo, hi := 0.001, 0.999
	g := (math.Sqrt(5) - 1) / 2
	for range 60 {
		a1 := hi - g*(hi-lo)
		a2 := lo + g*(hi-lo)
		s1, _ := ses(a1)
		s2, _ := ses(a2)
		if s1 < s2 {
			hi = a2
		} else {
			lo = a1
		}
	}
	alpha := (lo + hi) / 2
	sse, l := ses(alpha)
	f := Forecast{Point: make([]float64, h), Model: "theta"}
	sd := make([]float64, h)
	sigma := math.Sqrt(sse / float64(n-1))
	for i := range h {
		hh := float64(i + 1)
		p := l + b0/2*(hh-1+1/alpha-math.Pow(1-alpha, fn)/alpha)
		if si != nil {
			p *= si[(n+i)%m]
		}
		f.Point[i] = p
		sd[i] = sigma * math.Sqrt(1+float64(i)*alpha*alpha)
		if si != nil {
			sd[i] *= si[(n+i)%m]
		}
	}
	intervals(&f, sd)
	return f, nil
}

// Combination averages the forecasts of its members (point forecasts and
// interval bounds alike), optionally with a median instead of a mean.
// Members that fail are skipped; it fails only when all do.
type Combination struct {
	// Members are the combined forecasters.
	Members []Forecaster
	// Median combines by the median instead of the mean.
	Median bool
}

// Forecast implements Forecaster.
func (c Combination) Forecast(y []float64, h int) (Forecast, error) {
	var fs []Forecast
	var lastErr error
	for _, m := range c.Members {
		f, err := m.Forecast(y, h)
		if err != nil {
			lastErr = err
			continue
		}
		fs = append(fs, f)
	}
	if len(fs) == 0 {
		return Forecast{}, fmt.Errorf("combination: every member failed: %w", lastErr)
	}
	out := Forecast{Point: make([]float64, h), Lower: make([]float64, h), Upper: make([]float64, h), Level: 0.95, Model: "combination"}
	buf := make([]float64, len(fs))
	agg := func(get func(Forecast) []float64, dst []float64) {
		for i := range h {
			for k, f := range fs {
				buf[k] = get(f)[i]
			}
			if c.Median {
				dst[i] = median(buf)
			} else {
				s := 0.0
				for _, v := range buf {
					s += v
				}
				dst[i] = s / float64(len(buf))
			}
		}
	}
	agg(func(f Forecast) []float64 { return f.Point }, out.Point)
	agg(func(f Forecast) []float64 { return f.Lower }, out.Lower)
	agg(func(f Forecast) []float64 { return f.Upper }, out.Upper)
	return out, nil
}

// Crossing is when a forecast is expected to cross a threshold.
type Crossing struct {
	// Step is the first step (1-based) at which the point forecast reaches
	// the threshold; 0 when it does not within the horizon.
	Step int
	// Earliest is the first step at which the interval's near bound
	// reaches it (the optimistic/pessimistic edge); 0 when never.
	Earliest int
	// Latest is the first step at which the interval's far bound reaches
	// it; 0 when it does not within the horizon (the crossing may be later
	// or never).
	Latest int
}

// TimeToThreshold returns when the forecast crosses threshold upward (above
// true) or downward, with a confidence interval from the forecast's
// prediction interval: Earliest uses the upper bound (lower, for a
// downward crossing) and Latest the other bound.
func TimeToThreshold(f Forecast, threshold float64, above bool) Crossing {
	var c Crossing
	first := func(xs []float64) int {
		for i, v := range xs {
			if (above && v >= threshold) || (!above && v <= threshold) {
				return i + 1
			}
		}
		return 0
	}
	c.Step = first(f.Point)
	if above {
		c.Earliest, c.Latest = first(f.Upper), first(f.Lower)
	} else {
		c.Earliest, c.Latest = first(f.Lower), first(f.Upper)
	}
	return c
}

// NewDefaultForecaster returns NovaCron's default forecaster for period
// season: the median of five forecasts, ETS(A,N,A) at the season and at
// seven seasons (the week, for hourly data), the seasonal naive forecasts
// at both, and MSTL of the log series with both periods (ETS with trend N
// or Ad on the seasonally adjusted series). Members that cannot run on a
// short series are left out. Intervals are the medians of the members'
// bounds.
func NewDefaultForecaster(season int) Forecaster {
	na := []ETSSpec{{TrendNone, SeasonAdd}}
	return Combination{Median: true, Members: []Forecaster{
		ETS{Season: season, Candidates: na},
		ETS{Season: 7 * season, Candidates: na},
		SeasonalNaive{Season: season},
		SeasonalNaive{Season: 7 * season},
		MSTL{Seasons: []int{season, 7 * season}, Log: true},
	}}
}
