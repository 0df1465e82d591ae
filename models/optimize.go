package models

import (
	"math"
	"slices"
)

// NelderMead minimises f from x0 with the Nelder-Mead simplex method
// (reflection 1, expansion 2, contraction 0.5, shrink 0.5), starting from
// a simplex of side step, for at most maxEval evaluations of f. It returns
// the best point and its value. Non-finite values of f count as +Inf, so
// f may reject infeasible points that way.
//
// It is used in place of gonum/optimize's NelderMead to keep the models
// package's dependencies to gonum's numeric core.
func NelderMead(f func([]float64) float64, x0 []float64, step float64, maxEval int) ([]float64, float64) {
	d := len(x0)
	eval := func(x []float64) float64 {
		v := f(x)
		if math.IsNaN(v) {
			return math.Inf(1)
		}
		return v
	}
	pts := make([][]float64, d+1)
	vals := make([]float64, d+1)
	for i := range pts {
		pts[i] = slices.Clone(x0)
		if i > 0 {
			pts[i][i-1] += step
		}
		vals[i] = eval(pts[i])
	}
	nEval := d + 1
	idx := make([]int, d+1)
	cen := make([]float64, d)
	xr := make([]float64, d)
	xe := make([]float64, d)
	xc := make([]float64, d)
	at := func(dst []float64, t float64, worst []float64) {
		for j := range dst {
			dst[j] = cen[j] + t*(worst[j]-cen[j])
		}
	}
	for nEval < maxEval {
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(a, b int) int {
			switch {
			case vals[a] < vals[b]:
				return -1
			case vals[a] > vals[b]:
				return 1
			}
			return 0
		})
		best, worst, second := idx[0], idx[d], idx[d-1]
		if math.Abs(vals[worst]-vals[best]) <= 1e-10*(math.Abs(vals[best])+1e-300) {
			break
		}
		for j := range cen {
			cen[j] = 0
			for _, i := range idx[:d] {
				cen[j] += pts[i][j]
			}
			cen[j] /= float64(d)
		}
		at(xr, -1, pts[worst])
		fr := eval(xr)
		nEval++
		switch {
		case fr < vals[best]:
			at(xe, -2, pts[worst])
			fe := eval(xe)
			nEval++
			if fe < fr {
				copy(pts[worst], xe)
				vals[worst] = fe
			} else {
				copy(pts[worst], xr)
				vals[worst] = fr
			}
		case fr < vals[second]:
			copy(pts[worst], xr)
			vals[worst] = fr
		default:
			if fr < vals[worst] {
				at(xc, -0.5, pts[worst])
			} else {
				at(xc, 0.5, pts[worst])
			}
			fc := eval(xc)
			nEval++
			if fc < math.Min(fr, vals[worst]) {
				copy(pts[worst], xc)
				vals[worst] = fc
				continue
			}
			for _, i := range idx[1:] {
				for j := range pts[i] {
					pts[i][j] = pts[best][j] + 0.5*(pts[i][j]-pts[best][j])
				}
				vals[i] = eval(pts[i])
				nEval++
			}
		}
	}
	bi := 0
	for i := range vals {
		if vals[i] < vals[bi] {
			bi = i
		}
	}
	return pts[bi], vals[bi]
}
