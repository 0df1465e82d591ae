package models

import (
	"fmt"
	"math"
	"slices"
)

// loess smooths x (values at positions 0..n-1) with a locally weighted
// (tricube) regression of degree 0 or 1 over the q nearest positions and
// returns the fit at positions at (which may lie outside 0..n-1), as in
// Cleveland et al.'s STL. rw, when non-nil, holds robustness weights.
func loess(x []float64, q, degree int, rw []float64, at []float64) []float64 {
	n := len(x)
	out := make([]float64, len(at))
	for k, xp := range at {
		// The q nearest positions form a window [lo, hi].
		lo, hi := 0, n-1
		if q < n {
			c := int(math.Round(xp))
			lo = min(max(c-(q-1)/2, 0), n-q)
			hi = lo + q - 1
			// Slide towards xp while that brings nearer points in.
			for lo > 0 && xp-float64(lo-1) < float64(hi)-xp {
				lo--
				hi--
			}
			for hi < n-1 && float64(hi+1)-xp < xp-float64(lo) {
				lo++
				hi++
			}
		}
		h := math.Max(xp-float64(lo), float64(hi)-xp)
		if q > n {
			h += float64(q-n) / 2
		}
		var sw, swx, swy, swxx, swxy float64
		for j := lo; j <= hi; j++ {
			d := math.Abs(float64(j)-xp) / h
			if d >= 0.999 && h > 0 {
				if d >= 1 {
					continue
				}
			}
			w := 1 - d*d*d
			w = w * w * w
			if d <= 0.001 {
				w = 1
			}
			if rw != nil {
				w *= rw[j]
			}
			fj := float64(j) - xp
			sw += w
			swx += w * fj
			swy += w * x[j]
			swxx += w * fj * fj
			swxy += w * fj * x[j]
		}
		switch {
		case sw <= 0:
			out[k] = x[min(max(int(math.Round(xp)), 0), n-1)]
		case degree == 0:
			out[k] = swy / sw
		default:
			// Local line centred at xp: the fit there is its intercept.
			mx := swx / sw
			den := swxx - sw*mx*mx
			if den <= 1e-12*math.Max(swxx, 1) {
				out[k] = swy / sw
			} else {
				b := (swxy - mx*swy) / den
				out[k] = swy/sw - b*mx
			}
		}
	}
	return out
}

// positions returns 0..n-1 as float64.
func positions(n int) []float64 {
	p := make([]float64, n)
	for i := range p {
		p[i] = float64(i)
	}
	return p
}

// movingAverage returns the length-w moving averages of x.
func movingAverage(x []float64, w int) []float64 {
	out := make([]float64, len(x)-w+1)
	s := 0.0
	for i, v := range x {
		s += v
		if i >= w {
			s -= x[i-w]
		}
		if i >= w-1 {
			out[i-w+1] = s / float64(w)
		}
	}
	return out
}

// oddAtLeast returns the smallest odd integer ≥ x.
func oddAtLeast(x float64) int {
	k := int(math.Ceil(x))
	if k%2 == 0 {
		k++
	}
	return k
}

// STL decomposes y into seasonal and trend components with period m by
// Cleveland et al.'s seasonal-trend decomposition by loess (inner loop
// only, no robustness iterations): ns is the seasonal smoothing span (odd,
// ≥ 7); the trend span is the smallest odd integer ≥ 1.5m/(1-1.5/ns) and
// the low-pass span the smallest odd integer ≥ m. The remainder is
// y - seasonal - trend.
func STL(y []float64, m, ns int) (seasonal, trend []float64) {
	n := len(y)
	nt := oddAtLeast(1.5 * float64(m) / (1 - 1.5/float64(ns)))
	nl := oddAtLeast(float64(m))
	trend = make([]float64, n)
	seasonal = make([]float64, n)
	d := make([]float64, n)
	c := make([]float64, n+2*m)
	sub := make([]float64, 0, n/m+1)
	for range 2 {
		for i := range y {
			d[i] = y[i] - trend[i]
		}
		// Cycle-subseries smoothing, extended one cycle at each end.
		for k := range m {
			sub = sub[:0]
			for i := k; i < n; i += m {
				sub = append(sub, d[i])
			}
			at := make([]float64, len(sub)+2)
			for j := range at {
				at[j] = float64(j - 1)
			}
			sm := loess(sub, ns, 1, nil, at)
			for j, v := range sm {
				c[k+j*m] = v
			}
			// Positions past the extended end stay as the last value.
		}
		// Low-pass filter of the cycle-subseries: MA m, MA m, MA 3, loess.
		lp := movingAverage(movingAverage(movingAverage(c, m), m), 3)
		lp = loess(lp[:n], nl, 1, nil, positions(n))
		for i := range n {
			seasonal[i] = c[m+i] - lp[i]
			d[i] = y[i] - seasonal[i]
		}
		trend = loess(d, nt, 1, nil, positions(n))
	}
	return seasonal, trend
}

// MSTL is multiple seasonal-trend decomposition by loess (Bandara,
// Hyndman & Bergmeir) used as a forecaster: the series (log-transformed
// when Log and all values are positive) is decomposed into one seasonal
// component per period in Seasons (each extracted by STL with seasonal
// span 7+4i, two passes over the periods), each seasonal component is
// forecast by repeating its last cycle, and the seasonally adjusted series
// by Adjusted (default: AutoETS without season). Periods longer than half
// the series are left out.
type MSTL struct {
	// Seasons are the periods, e.g. 24 and 168 for hourly data.
	Seasons []int
	// Adjusted forecasts the seasonally adjusted series; nil uses
	// ETS with trends N and Ad and no season.
	Adjusted Forecaster
	// Log decomposes log(y) when every value is positive.
	Log bool
}

// Decompose returns the seasonal components (one per usable period, in
// ascending order of period) and the seasonally adjusted series of y.
func (ms MSTL) Decompose(y []float64) (periods []int, seasonals [][]float64, adjusted []float64) {
	n := len(y)
	periods = slices.Clone(ms.Seasons)
	slices.Sort(periods)
	periods = slices.DeleteFunc(periods, func(p int) bool { return p < 2 || 2*p > n })
	adjusted = slices.Clone(y)
	seasonals = make([][]float64, len(periods))
	for i := range seasonals {
		seasonals[i] = make([]float64, n)
	}
	iters := 2
	if len(periods) == 1 {
		iters = 1
	}
	for range iters {
		for i, p := range periods {
			for t := range adjusted {
				adjusted[t] += seasonals[i][t]
			}
			s, _ := STL(adjusted, p, 7+4*(i+1))
			seasonals[i] = s
			for t := range adjusted {
				adjusted[t] -= s[t]
			}
		}
	}
	return periods, seasonals, adjusted
}

// Forecast implements Forecaster. The interval is the adjusted series'
// interval shifted by the seasonal forecast (and transformed back).
func (ms MSTL) Forecast(y []float64, h int) (Forecast, error) {
	n := len(y)
	if n < 4 {
		return Forecast{}, fmt.Errorf("%w: MSTL needs 4 values, got %d", ErrTooShort, n)
	}
	logged := ms.Log && slices.Min(y) > 0
	x := y
	if logged {
		x = make([]float64, n)
		for i, v := range y {
			x[i] = math.Log(v)
		}
	}
	periods, seasonals, adj := ms.Decompose(x)
	af := ms.Adjusted
	if af == nil {
		af = ETS{Season: 1, Candidates: []ETSSpec{{TrendNone, SeasonNone}, {TrendDamped, SeasonNone}}}
	}
	fa, err := af.Forecast(adj, h)
	if err != nil {
		return Forecast{}, fmt.Errorf("MSTL: seasonally adjusted series: %w", err)
	}
	out := Forecast{Point: make([]float64, h), Lower: make([]float64, h), Upper: make([]float64, h), Level: fa.Level, Model: "mstl+" + fa.Model}
	for i := range h {
		s := 0.0
		for k, p := range periods {
			s += seasonals[k][n-p+i%p]
		}
		out.Point[i] = fa.Point[i] + s
		out.Lower[i] = fa.Lower[i] + s
		out.Upper[i] = fa.Upper[i] + s
		if logged {
			out.Point[i] = math.Exp(out.Point[i])
			out.Lower[i] = math.Exp(out.Lower[i])
			out.Upper[i] = math.Exp(out.Upper[i])
		}
	}
	return out, nil
}
