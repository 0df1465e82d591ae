package models

import (
	"math"
)

// EnsembleConfig parameterises the Ensemble detector. The defaults
// (NewDefaultEnsembleConfig) are NovaCron's default detector, tuned once
// for all series.
type EnsembleConfig struct {
	// FastAlpha is the EWMA weight of the local level predictor.
	FastAlpha float64
	// ScaleAlpha is the EWMA weight of the prediction-error scale.
	ScaleAlpha float64
	// ProfileAlpha is the weight of a new sample in its hour-of-day slot.
	ProfileAlpha float64
	// Window is the number of recent raw scores averaged by the
	// anomaly-likelihood stage (at most 32).
	Window int
	// LikelihoodAlpha is the EWMA weight of the long-run distribution of
	// averaged raw scores.
	LikelihoodAlpha float64
	// NoveltyWeight is the raw score given to a value outside the range
	// seen so far (0 disables the novelty component).
	NoveltyWeight float64
	// NoveltyMargin widens the seen range by this fraction of its width.
	NoveltyMargin float64
	// ShiftK and ShiftH are the CUSUM allowance and decision level, in
	// standard deviations, of the level-shift component.
	ShiftK, ShiftH float64
	// ContextBins is the number of equal-width bins of the range seen so
	// far into which the contextual-novelty component quantises values; a
	// transition from the previous sample's bin to the current one that was
	// never seen before scores 1 (0 disables; at most ContextBinsMax).
	ContextBins int
	// Warmup is the number of samples scored 0 while the model learns.
	Warmup int
	// RestLevel and Rest: a score is reported only when no score of the
	// previous Rest samples reached RestLevel; otherwise it is 0, so one
	// event raises one alarm (Rest 0 disables).
	RestLevel float64
	Rest      int
	// Empirical selects an empirical (histogram) tail probability instead
	// of a normal one in the likelihood stage.
	Empirical bool
}

// NewDefaultEnsembleConfig returns the default detector's parameters.
func NewDefaultEnsembleConfig() EnsembleConfig {
	return EnsembleConfig{
		FastAlpha:       0.3,
		ScaleAlpha:      0.01,
		ProfileAlpha:    0.1,
		Window:          4,
		LikelihoodAlpha: 0.0002,
		NoveltyWeight:   1,
		NoveltyMargin:   0,
		ShiftK:          0.5,
		ShiftH:          8,
		ContextBins:     7,
		Warmup:          200,
		RestLevel:       0.8,
		Rest:            75,
		Empirical:       true,
	}
}

const ensembleWindowMax = 32

const histBins = 64

// ContextBinsMax is the largest EnsembleConfig.ContextBins: the transition
// table holds (bins+2)² bits, the two extra bins being below and above the
// range seen so far.
const ContextBinsMax = 14

// ctxWords is the size of the transition table in 64-bit words.
const ctxWords = ((ContextBinsMax+2)*(ContextBinsMax+2) + 63) / 64

// Ensemble is NovaCron's default streaming anomaly detector. It combines
// three views of each sample into a raw score:
//   - the prediction error of a local level (EWMA) or, when it predicts
//     better, of an hour-of-day seasonal profile plus a deseasonalised level,
//     standardised by an EWMA of absolute errors;
//   - novelty: a value outside the range seen so far;
//   - a two-sided CUSUM of standardised errors (level shifts);
//
// then turns the average of the last Window raw scores into an anomaly
// likelihood against their long-run distribution (as Numenta's HTM
// detector does), reported on a log scale. A fourth view, contextual
// novelty, scores 1 when the value moves between two coarse levels (bins of
// the range seen so far) in a way never seen before, as the Contextual
// Anomaly Detector does with sequences of quantised values. The report is the
// larger of the likelihood and the contextual novelty, and after a high
// score the detector rests (reports 0) until Rest quiet samples have passed,
// so one event raises one alarm, at its onset.
// The state is fixed-size (about 700 bytes).
type Ensemble struct {
	cfg EnsembleConfig

	n     int64
	level float64 // fast EWMA level (non-seasonal predictor)
	dsLvl float64 // fast EWMA of value minus profile (seasonal predictor)
	errA  float64 // EWMA |error| of the non-seasonal predictor
	errB  float64 // EWMA |error| of the seasonal predictor
	nB    int64   // samples scored by the seasonal predictor
	minV  float64
	maxV  float64
	cpos  float64 // CUSUM statistics
	cneg  float64
	since int64 // start of the current deviation
	// likelihood stage
	ring    [ensembleWindowMax]float64
	ringPos int
	ringSum float64
	lMean   float64
	lVar    float64
	lN      int64
	// contextual novelty: previous bin (offset by 1) and seen transitions
	ctxPrev int64
	ctxSeen [ctxWords]uint64
	// rest: sample count of the last score at or above RestLevel
	lastHigh int64
	hist     [histBins]float32
	inc      float64 // current weight of a new histogram entry
	prof     profile24
}

// profile24 is a fixed-size half-hour-of-day profile (48 slots).
type profile24 struct {
	mean [48]float32
	seen [48]bool
}

const dayMS = 24 * 3600 * 1000

func (p *profile24) slot(t int64) int {
	ph := t % dayMS
	if ph < 0 {
		ph += dayMS
	}
	return int(ph * 48 / dayMS)
}

// NewEnsemble returns a detector with the given configuration.
func NewEnsemble(cfg EnsembleConfig) *Ensemble {
	cfg.Window = min(max(cfg.Window, 1), ensembleWindowMax)
	cfg.ContextBins = min(max(cfg.ContextBins, 0), ContextBinsMax)
	return &Ensemble{cfg: cfg}
}

// NewDefaultDetector returns NovaCron's default streaming detector.
func NewDefaultDetector() Detector { return NewEnsemble(NewDefaultEnsembleConfig()) }

// Observe implements Detector.
func (e *Ensemble) Observe(t int64, v float64) Result {
	c := &e.cfg
	if !finite(v) {
		return Result{Expected: e.level}
	}
	e.n++
	if e.n == 1 {
		e.level, e.minV, e.maxV = v, v, v
		e.dsLvl = 0
		e.ctxPrev = 1
		e.prof.mean[e.prof.slot(t)], e.prof.seen[e.prof.slot(t)] = float32(v), true
		return Result{Expected: v, Lower: v, Upper: v}
	}
	// Predictions made before seeing v.
	predA := e.level
	s := e.prof.slot(t)
	seasonal := e.prof.seen[s]
	predB := predA
	if seasonal {
		predB = float64(e.prof.mean[s]) + e.dsLvl
	}
	useB := seasonal && e.nB > 200 && e.errB < 0.9*e.errA
	pred, scale := predA, e.errA
	comp := ComponentLevel
	if useB {
		pred, scale, comp = predB, e.errB, ComponentSeason
	}
	sigma := 1.2533*scale + 1e-9*math.Abs(pred) + 1e-12
	errv := v - pred
	z := math.Abs(errv) / sigma
	raw := math.Erf(z / math.Sqrt2 / 2)

	// Novelty: outside the range seen so far.
	width := e.maxV - e.minV
	margin := c.NoveltyMargin * width
	if c.NoveltyWeight > 0 && e.n > int64(c.Warmup) && (v > e.maxV+margin || v < e.minV-margin) {
		if c.NoveltyWeight > raw {
			raw, comp = c.NoveltyWeight, ComponentNovelty
		}
	}
	// Contextual novelty: a transition between coarse levels never seen.
	ctxScore := 0.0
	if c.ContextBins > 0 {
		b := e.contextBin(v)
		bit := e.ctxPrev*int64(c.ContextBins+2) + b
		w, m := bit>>6, uint64(1)<<(bit&63)
		if e.ctxSeen[w]&m == 0 {
			e.ctxSeen[w] |= m
			ctxScore = 1
		}
		e.ctxPrev = b
	}
	// CUSUM on standardised errors against the local level.
	zs := errv / sigma
	e.cpos = math.Max(0, e.cpos+zs-c.ShiftK)
	e.cneg = math.Max(0, e.cneg-zs-c.ShiftK)
	if e.cpos > c.ShiftH || e.cneg > c.ShiftH {
		if raw < 1 {
			raw, comp = 1, ComponentShift
		}
		e.cpos, e.cneg = 0, 0
	}

	// Update the baselines.
	if seasonal {
		e.errB += c.ScaleAlpha * (math.Abs(v-predB) - e.errB)
		e.nB++
	}
	if e.n == 2 {
		e.errA = math.Abs(v - predA)
	} else {
		e.errA += c.ScaleAlpha * (math.Abs(v-predA) - e.errA)
	}
	e.level += c.FastAlpha * (v - e.level)
	if seasonal {
		e.dsLvl += c.FastAlpha * (v - float64(e.prof.mean[s]) - e.dsLvl)
		e.prof.mean[s] += float32(c.ProfileAlpha) * (float32(v-e.dsLvl) - e.prof.mean[s])
	} else {
		e.prof.mean[s], e.prof.seen[s] = float32(v-e.dsLvl), true
	}
	e.minV, e.maxV = math.Min(e.minV, v), math.Max(e.maxV, v)

	// Anomaly likelihood of the recent average raw score.
	w := c.Window
	e.ringSum += raw - e.ring[e.ringPos]
	e.ring[e.ringPos] = raw
	e.ringPos = (e.ringPos + 1) % w
	avg := e.ringSum / float64(w)
	var score float64
	if c.Empirical {
		// Empirical tail probability of avg among the decayed history.
		b := min(int(avg*histBins), histBins-1)
		above := 0.0
		for i := b + 1; i < histBins; i++ {
			above += float64(e.hist[i])
		}
		total := above
		for i := 0; i <= b; i++ {
			total += float64(e.hist[i])
		}
		above += 0.5 * float64(e.hist[b])
		if total > 0 {
			total /= e.inc
			above /= e.inc
			tail := (above + 0.5) / (total + 1)
			score = math.Log(tail) / math.Log(0.5/(total+1))
		}
		// Decay by growing the weight of new samples instead of shrinking
		// every bin; renormalise rarely (O(1) amortised).
		if e.inc == 0 {
			e.inc = 1
		}
		e.hist[b] += float32(e.inc)
		e.inc /= 1 - c.LikelihoodAlpha
		if e.inc > 1e20 {
			for i := range e.hist {
				e.hist[i] = float32(float64(e.hist[i]) / e.inc)
			}
			e.inc = 1
		}
	} else if e.lN > 0 {
		sd := math.Max(math.Sqrt(e.lVar), 0.02)
		tail := gaussTail((avg - e.lMean) / sd)
		score = math.Log(tail+1e-10) / math.Log(1e-10)
	}
	e.lN++
	a := max(c.LikelihoodAlpha, 1/float64(e.lN))
	d := avg - e.lMean
	e.lMean += a * d
	e.lVar = (1 - a) * (e.lVar + a*d*d)

	if ctxScore > score {
		score = ctxScore
		if comp != ComponentNovelty && comp != ComponentShift {
			comp = ComponentPattern
		}
	}
	if e.n <= int64(c.Warmup) {
		score = 0
	}
	// Rest after a high score: report only the onset of an event.
	if c.Rest > 0 {
		high := score >= c.RestLevel
		if e.lastHigh > 0 && e.n-e.lastHigh <= int64(c.Rest) {
			score = 0
		}
		if high {
			e.lastHigh = e.n
		}
	}
	score = clamp01(score)
	res := Result{Score: score, Expected: pred, Lower: pred - 3*sigma, Upper: pred + 3*sigma}
	if z > 3 || comp == ComponentNovelty || comp == ComponentShift || comp == ComponentPattern {
		if e.since == 0 {
			e.since = t
		}
		res.Component, res.Since = comp, e.since
	} else {
		e.since = 0
	}
	return res
}

// contextBin returns the bin of v among ContextBins equal-width bins of
// the range seen so far, offset by 1: 0 is below the range and
// ContextBins+1 above it.
func (e *Ensemble) contextBin(v float64) int64 {
	nb := e.cfg.ContextBins
	switch {
	case v < e.minV:
		return 0
	case v > e.maxV:
		return int64(nb + 1)
	case e.maxV == e.minV:
		return 1
	}
	// Halves keep the difference finite for values near ±MaxFloat64.
	f := (v/2 - e.minV/2) / (e.maxV/2 - e.minV/2)
	if !(f >= 0) { // NaN when the halves underflow to an empty width
		return 1
	}
	return 1 + min(int64(f*float64(nb)), int64(nb-1))
}

const ensembleVersion = 2

// MarshalBinary implements Detector.
func (e *Ensemble) MarshalBinary() ([]byte, error) {
	enc := newEncoder(kindEnsemble, ensembleVersion, 1024)
	c := &e.cfg
	for _, f := range []float64{c.FastAlpha, c.ScaleAlpha, c.ProfileAlpha, float64(c.Window), c.LikelihoodAlpha,
		c.NoveltyWeight, c.NoveltyMargin, c.ShiftK, c.ShiftH, float64(c.Warmup), c.RestLevel, float64(c.Rest),
		float64(c.ContextBins)} {
		enc.f64(f)
	}
	enc.i64(e.n)
	for _, f := range []float64{e.level, e.dsLvl, e.errA, e.errB} {
		enc.f64(f)
	}
	enc.i64(e.nB)
	for _, f := range []float64{e.minV, e.maxV, e.cpos, e.cneg} {
		enc.f64(f)
	}
	enc.i64(e.since)
	for _, f := range e.ring[:c.Window] {
		enc.f64(f)
	}
	enc.i64(int64(e.ringPos))
	enc.f64(e.ringSum)
	enc.f64(e.lMean)
	enc.f64(e.lVar)
	enc.i64(e.lN)
	enc.i64(e.ctxPrev)
	for _, w := range e.ctxSeen {
		enc.i64(int64(w))
	}
	enc.i64(e.lastHigh)
	var seen uint64
	for i, m := range e.prof.mean {
		enc.f32(m)
		if e.prof.seen[i] {
			seen |= 1 << i
		}
	}
	enc.i64(int64(seen))
	enc.f64(boolf(c.Empirical))
	for _, h := range e.hist {
		enc.f32(h)
	}
	enc.f64(e.inc)
	return enc.b, nil
}

// UnmarshalBinary implements Detector.
func (e *Ensemble) UnmarshalBinary(data []byte) error {
	d := newDecoder(data, kindEnsemble, ensembleVersion)
	var x Ensemble
	c := &x.cfg
	c.FastAlpha, c.ScaleAlpha, c.ProfileAlpha = d.f64(), d.f64(), d.f64()
	c.Window = int(d.f64())
	c.LikelihoodAlpha, c.NoveltyWeight, c.NoveltyMargin, c.ShiftK, c.ShiftH = d.f64(), d.f64(), d.f64(), d.f64(), d.f64()
	c.Warmup = int(d.f64())
	c.RestLevel = d.f64()
	c.Rest = int(d.f64())
	c.ContextBins = int(d.f64())
	if d.err == nil && (c.Window < 1 || c.Window > ensembleWindowMax || c.ContextBins < 0 || c.ContextBins > ContextBinsMax) {
		return ErrSnapshot
	}
	x.n = d.i64()
	x.level, x.dsLvl, x.errA, x.errB = d.f64(), d.f64(), d.f64(), d.f64()
	x.nB = d.i64()
	x.minV, x.maxV, x.cpos, x.cneg = d.f64(), d.f64(), d.f64(), d.f64()
	x.since = d.i64()
	for i := 0; i < c.Window; i++ {
		x.ring[i] = d.f64()
	}
	x.ringPos = int(d.i64())
	x.ringSum, x.lMean, x.lVar = d.f64(), d.f64(), d.f64()
	x.lN = d.i64()
	x.ctxPrev = d.i64()
	for i := range x.ctxSeen {
		x.ctxSeen[i] = uint64(d.i64())
	}
	x.lastHigh = d.i64()
	for i := range x.prof.mean {
		x.prof.mean[i] = d.f32()
	}
	seen := uint64(d.i64())
	for i := range x.prof.seen {
		x.prof.seen[i] = seen&(1<<i) != 0
	}
	c.Empirical = d.f64() != 0
	for i := range x.hist {
		x.hist[i] = d.f32()
	}
	x.inc = d.f64()
	if err := d.finish(); err != nil {
		return err
	}
	if x.ringPos < 0 || x.ringPos >= c.Window || x.ctxPrev < 0 || x.ctxPrev > int64(c.ContextBins+1) {
		return ErrSnapshot
	}
	*e = x
	return nil
}
