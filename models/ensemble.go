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
	// ContextSpread: the contextual component quantises at every bin count
	// from ContextBins-ContextSpread to ContextBins+ContextSpread (at most
	// 3) and fires when the transition is new at a majority of them.
	ContextSpread int
	// Warmup is the number of samples scored 0 while the model learns.
	Warmup int
	// RestLevel and Rest: a score is reported only when no score of the
	// previous Rest samples reached RestLevel; otherwise it is 0, so one
	// event raises one alarm (Rest 0 disables).
	RestLevel float64
	Rest      int
	// DaySlots is the number of equal slots of the day (from the sample
	// timestamp) for which the time-of-day component keeps the range of
	// values seen (0 disables; at most DaySlotsMax). A value outside its
	// slot's range by more than DayMargin of the overall range scores 1,
	// once DayMinDays days have passed since the first sample.
	DaySlots   int
	DayMargin  float64
	DayMinDays float64
	// EventGap: a firing of the time-of-day or the multi-scale level
	// component g samples after that component's previous firing scores
	// min(1, g/EventGap), so a component that fires often counts for
	// little (0: always 1).
	EventGap float64
	// LevelFast and LevelSlow are the EWMA weights of the multi-scale
	// level-shift component; it fires once when the fast and slow means
	// differ by more than LevelZ times the EWMA of that difference's size
	// (LevelZ 0 disables).
	LevelFast, LevelSlow, LevelZ float64
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
		ShiftK:          0.3,
		ShiftH:          8,
		ContextBins:     7,
		Warmup:          200,
		RestLevel:       0.8,
		Rest:            60,
		Empirical:       true,
		ContextSpread:   1,
		DaySlots:        24,
		DayMargin:       0.3,
		DayMinDays:      3,
		LevelFast:       0.015,
		LevelSlow:       0.001,
		LevelZ:          3,
		EventGap:        1000,
	}
}

const ensembleWindowMax = 32

// DaySlotsMax is the largest EnsembleConfig.DaySlots.
const DaySlotsMax = 24

const histBins = 64

// ContextBinsMax is the largest EnsembleConfig.ContextBins: the transition
// table holds (bins+2)² bits, the two extra bins being below and above the
// range seen so far.
const ContextBinsMax = 14

// ctxResMax is the largest number of context resolutions.
const ctxResMax = 2*ctxSpreadMax + 1

// ctxSpreadMax is the largest EnsembleConfig.ContextSpread.
const ctxSpreadMax = 3

// ctxRange returns the smallest and largest bin counts of the contextual
// component's resolutions.
func (e *Ensemble) ctxRange() (lo, hi int) {
	c := &e.cfg
	return max(c.ContextBins-c.ContextSpread, 1), min(c.ContextBins+c.ContextSpread, ContextBinsMax)
}

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
// detector does), reported on a log scale. Three event components are
// fused with it by taking the largest score:
//   - contextual novelty scores 1 when the value moves between two coarse
//     levels (bins of the range seen so far) in a way never seen before at
//     a majority of three resolutions, as the Contextual Anomaly Detector
//     does with sequences of quantised values;
//   - time-of-day novelty fires when the value leaves the range its hour
//     of the day has shown (a missing daily peak, traffic at night);
//   - the multi-scale level component fires when a fast and a slow mean
//     drift apart by more than LevelZ times their usual distance.
//
// The last two score less when they fired recently (EventGap), so a series
// on which they fire often does not raise a stream of alarms. After a high
// score the detector rests (reports 0) until Rest quiet samples have
// passed, so one event raises one alarm, at its onset. The state is
// fixed-size (about 1.6 KiB in memory).
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
	ctxPrev [ctxResMax]int8
	ctxSeen [ctxResMax][ctxWords]uint64
	// rest: sample count of the last score at or above RestLevel
	lastHigh int64
	hist     [histBins]float32
	inc      float64 // current weight of a new histogram entry
	prof     profile24
	// time-of-day context: first timestamp and per-slot value range
	t0      int64
	dayLo   [DaySlotsMax]float32
	dayHi   [DaySlotsMax]float32
	daySeen uint64
	dayLast int64
	// multi-scale level shift
	mFast, mSlow, mDev float64
	mArmed             bool
	mLast              int64
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
	cfg.DaySlots = min(max(cfg.DaySlots, 0), DaySlotsMax)
	cfg.ContextSpread = min(max(cfg.ContextSpread, 0), ctxSpreadMax)
	return &Ensemble{cfg: cfg}
}

// NewDefaultDetector returns NovaCron's default streaming detector.
func NewDefaultDetector() Detector { return NewEnsemble(NewDefaultEnsembleConfig()) }

// Warm reports whether the ensemble has seen its warm-up samples: before
// that its scores are 0 and its band is not yet to be trusted.
func (e *Ensemble) Warm() bool { return e.n > int64(e.cfg.Warmup) }

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
		for i := range e.ctxPrev {
			e.ctxPrev[i] = 1
		}
		e.t0 = t
		e.mFast, e.mSlow = v, v
		if c.DaySlots > 0 {
			ds := e.daySlot(t)
			e.dayLo[ds], e.dayHi[ds], e.daySeen = float32(v), float32(v), 1<<ds
		}
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
		lo, hi := e.ctxRange()
		novel := 0
		f := e.contextPos(v)
		for i := range hi - lo + 1 {
			nb := lo + i
			b := contextBin(f, nb)
			bit := int64(e.ctxPrev[i])*int64(nb+2) + b
			w, m := bit>>6, uint64(1)<<(bit&63)
			if e.ctxSeen[i][w]&m == 0 {
				e.ctxSeen[i][w] |= m
				novel++
			}
			e.ctxPrev[i] = int8(b)
		}
		if 2*novel > hi-lo+1 {
			ctxScore = 1
		}
	}
	dayScore := e.dayContext(t, v)
	lvlScore := e.levelShift(v)
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
	if dayScore > score {
		score = dayScore
		if comp != ComponentNovelty && comp != ComponentShift {
			comp = ComponentSeason
		}
	}
	if lvlScore > score {
		score = lvlScore
		if comp != ComponentNovelty {
			comp = ComponentShift
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

// dayContext is the time-of-day component: it scores a value outside the
// range its slot of the day has seen (widened by DayMargin of the overall
// range seen before v), once DayMinDays days of history exist, and folds v
// into the slot's range.
func (e *Ensemble) dayContext(t int64, v float64) float64 {
	c := &e.cfg
	if c.DaySlots == 0 {
		return 0
	}
	score := 0.0
	ds := e.daySlot(t)
	if e.daySeen&(1<<ds) == 0 {
		e.dayLo[ds], e.dayHi[ds] = float32(v), float32(v)
		e.daySeen |= 1 << ds
		return 0
	}
	m := c.DayMargin * (e.maxV - e.minV)
	lo, hi := float64(e.dayLo[ds]), float64(e.dayHi[ds])
	if (v < lo-m || v > hi+m) && float64(t-e.t0) >= c.DayMinDays*dayMS {
		score = gapScore(e.n-e.dayLast, c.EventGap)
		e.dayLast = e.n
	}
	e.dayLo[ds], e.dayHi[ds] = float32(math.Min(lo, v)), float32(math.Max(hi, v))
	return score
}

// levelShift is the multi-scale level component: it fires once when a fast
// and a slow EWMA mean differ by more than LevelZ times the slow EWMA of
// their absolute difference, and re-arms when they come back within half
// of that.
func (e *Ensemble) levelShift(v float64) float64 {
	c := &e.cfg
	if c.LevelZ <= 0 {
		return 0
	}
	score := 0.0
	e.mFast += c.LevelFast * (v - e.mFast)
	e.mSlow += c.LevelSlow * (v - e.mSlow)
	diff := math.Abs(e.mFast - e.mSlow)
	if e.mDev > 0 && diff > c.LevelZ*e.mDev {
		if e.mArmed {
			score = gapScore(e.n-e.mLast, c.EventGap)
			e.mArmed = false
			e.mLast = e.n
		}
	} else if diff < 0.5*c.LevelZ*e.mDev {
		e.mArmed = true
	}
	e.mDev += c.LevelSlow * (diff - e.mDev)
	return score
}

// gapScore is the score of a binary component that fires g samples after
// its previous firing: min(1, g/gap), or 1 when gap is 0.
func gapScore(g int64, gap float64) float64 {
	if gap <= 0 {
		return 1
	}
	return math.Min(1, float64(g)/gap)
}

// daySlot returns the time-of-day slot of t.
func (e *Ensemble) daySlot(t int64) int {
	ph := t % dayMS
	if ph < 0 {
		ph += dayMS
	}
	return int(ph * int64(e.cfg.DaySlots) / dayMS)
}

// contextPos returns where v lies in the range seen so far: -1 below it,
// 2 above it, else its position in [0, 1] (0 when the range is empty).
func (e *Ensemble) contextPos(v float64) float64 {
	switch {
	case v < e.minV:
		return -1
	case v > e.maxV:
		return 2
	case e.maxV == e.minV:
		return 0
	}
	// Halves keep the difference finite for values near ±MaxFloat64.
	f := (v/2 - e.minV/2) / (e.maxV/2 - e.minV/2)
	if !(f >= 0) { // NaN when the halves underflow to an empty width
		return 0
	}
	return f
}

// contextBin returns the bin of position f (from contextPos) among nb
// equal-width bins, offset by 1: 0 is below the range and nb+1 above it.
func contextBin(f float64, nb int) int64 {
	switch {
	case f < 0:
		return 0
	case f > 1:
		return int64(nb + 1)
	}
	return 1 + min(int64(f*float64(nb)), int64(nb-1))
}

const ensembleVersion = 3

// MarshalBinary implements Detector.
func (e *Ensemble) MarshalBinary() ([]byte, error) {
	enc := newEncoder(kindEnsemble, ensembleVersion, 1536)
	c := &e.cfg
	for _, f := range []float64{c.FastAlpha, c.ScaleAlpha, c.ProfileAlpha, float64(c.Window), c.LikelihoodAlpha,
		c.NoveltyWeight, c.NoveltyMargin, c.ShiftK, c.ShiftH, float64(c.Warmup), c.RestLevel, float64(c.Rest),
		float64(c.ContextBins), float64(c.ContextSpread), float64(c.DaySlots), c.DayMargin, c.DayMinDays, c.EventGap,
		c.LevelFast, c.LevelSlow, c.LevelZ} {
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
	lo, hi := e.ctxRange()
	for i := range hi - lo + 1 {
		enc.i64(int64(e.ctxPrev[i]))
		for _, w := range e.ctxSeen[i] {
			enc.i64(int64(w))
		}
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
	enc.i64(e.t0)
	enc.i64(int64(e.daySeen))
	enc.i64(e.dayLast)
	for i := range c.DaySlots {
		enc.f32(e.dayLo[i])
		enc.f32(e.dayHi[i])
	}
	for _, f := range []float64{e.mFast, e.mSlow, e.mDev, boolf(e.mArmed)} {
		enc.f64(f)
	}
	enc.i64(e.mLast)
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
	c.ContextSpread = int(d.f64())
	c.DaySlots = int(d.f64())
	c.DayMargin, c.DayMinDays, c.EventGap = d.f64(), d.f64(), d.f64()
	c.LevelFast, c.LevelSlow, c.LevelZ = d.f64(), d.f64(), d.f64()
	if d.err == nil && (c.Window < 1 || c.Window > ensembleWindowMax || c.ContextBins < 0 || c.ContextBins > ContextBinsMax ||
		c.ContextSpread < 0 || c.ContextSpread > ctxSpreadMax || c.DaySlots < 0 || c.DaySlots > DaySlotsMax) {
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
	lo, hi := x.ctxRange()
	for i := range hi - lo + 1 {
		p := d.i64()
		if p < 0 || p > int64(lo+i+1) {
			return ErrSnapshot
		}
		x.ctxPrev[i] = int8(p)
		for j := range x.ctxSeen[i] {
			x.ctxSeen[i][j] = uint64(d.i64())
		}
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
	x.t0 = d.i64()
	x.daySeen = uint64(d.i64())
	x.dayLast = d.i64()
	for i := range c.DaySlots {
		x.dayLo[i], x.dayHi[i] = d.f32(), d.f32()
	}
	x.mFast, x.mSlow, x.mDev = d.f64(), d.f64(), d.f64()
	x.mArmed = d.f64() != 0
	x.mLast = d.i64()
	if err := d.finish(); err != nil {
		return err
	}
	if x.ringPos < 0 || x.ringPos >= c.Window {
		return ErrSnapshot
	}
	*e = x
	return nil
}
