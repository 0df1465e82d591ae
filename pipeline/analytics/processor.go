package analytics

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"time"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/models"
)

// Reasons a sample is dropped, the values of the reason label of
// novacron_analytics_samples_dropped_total.
const (
	DropNonFinite   = "non_finite"
	DropOutOfOrder  = "out_of_order"
	DropFuture      = "future"
	DropTooOld      = "too_old"
	DropSeriesLimit = "series_limit"
)

var dropReasons = []string{DropNonFinite, DropOutOfOrder, DropFuture, DropTooOld, DropSeriesLimit}

const (
	dropNonFinite = iota
	dropOutOfOrder
	dropFuture
	dropTooOld
	dropSeriesLimit
	dropCount
)

// Counts are what a Processor has done since it was built.
type Counts struct {
	// Samples is every sample seen; Modelled those fed to a model.
	Samples, Modelled uint64
	// Dropped counts dropped samples by reason, indexed like DropReasons.
	Dropped [dropCount]uint64
}

// DropReasons returns the drop reasons in the order of Counts.Dropped.
func DropReasons() []string { return append([]string(nil), dropReasons...) }

// Output collects what processing produced. The caller owns it and resets
// it between batches.
type Output struct {
	// Series are derived series, one sample each.
	Series []novacron.Series
	// Events are anomaly and forecast events.
	Events []novacron.Event
}

// Reset empties o, keeping its capacity.
func (o *Output) Reset() {
	clear(o.Series)
	o.Series = o.Series[:0]
	clear(o.Events)
	o.Events = o.Events[:0]
}

// Processor keeps the models of the series of some partitions and turns
// their samples into derived series and events. It does no I/O. It is not
// safe for concurrent use: the stage owns it from one goroutine.
type Processor struct {
	cfg        Config
	rules      []rule
	now        func() time.Time
	source     string
	parts      map[int32]*partition
	nSeries    int
	counts     Counts
	scratch    []float64
	forecaster models.Forecaster
	scratchF   []float64
	horizons   []horizon
	// names caches the derived series names of each input, so emitting
	// derived points builds no strings.
	names map[nameKey]*derivedNames
}

type nameKey struct {
	metric string
	rate   bool
}

// derivedNames are the names of an input's derived series.
type derivedNames struct {
	input                                   string
	baseline, lower, upper, score, forecast string
	ttt                                     string
}

// namesFor returns the cached derived names of a metric.
func (p *Processor) namesFor(metric string, rate bool) *derivedNames {
	k := nameKey{metric, rate}
	if n := p.names[k]; n != nil {
		return n
	}
	in := InputName(metric, rate)
	n := &derivedNames{input: in, baseline: DerivedName(in, KindBaseline), lower: DerivedName(in, KindBaselineLower),
		upper: DerivedName(in, KindBaselineUpper), score: DerivedName(in, KindAnomalyScore),
		forecast: DerivedName(in, KindForecast), ttt: DerivedName(in, KindTimeToThreshold)}
	if p.names == nil {
		p.names = map[nameKey]*derivedNames{}
	}
	p.names[k] = n
	return n
}

type horizon struct {
	steps int
	label string
}

type partition struct {
	series map[uint64]*seriesState
	// next is the offset of the next record this state expects; -1 when
	// unknown.
	next int64
}

// seriesState is everything kept for one series.
type seriesState struct {
	labels novacron.Labels // nil until the first sample after a restore
	rule   int16           // index in rules; -1 not modelled
	rate   bool
	lastT  int64
	prevT  int64
	prevV  float64
	det    models.Detector

	nextEmit int64
	maxScore float64

	open bool
	// armed: a sample scored at least open_score and the value has not
	// been back inside the band since; the anomaly opens once the
	// excursion reaches min_deviation (the detector rests after a high
	// score, so the excursion, not the next score, decides).
	armed      bool
	anomalyID  uint64
	openT      int64
	peak       float64
	reported   float64
	lastUpdate int64
	quietSince int64
	component  models.Component
	since      int64

	fc *forecastState
}

type forecastState struct {
	hist    []float32 // ring of points, oldest at head when full
	head, n int
	bucket  int64 // start of the bucket being averaged; 0 none
	sum     float64
	cnt     int32
	nextRun int64

	breach    bool
	breachID  uint64
	breachETA int64 // predicted crossing time (ms)
	breachSeq int32
	// streak counts consecutive forecasts that disagree with the breach
	// state: a breach opens after two forecasts predict it and clears
	// after two do not, so a borderline forecast does not flap.
	streak int32

	// The daily profile: prof[i] is the usual departure from the level in
	// slot i of the (UTC) day, learnt from the history points; level is
	// their mean over about a day; profN counts the points learnt.
	prof  []float32
	level float64
	profN int32
}

// NewProcessor returns a processor for cfg, which must be valid. now gives
// the wall-clock time for the clock-skew checks (nil: time.Now); source
// is the Source of the events it makes.
func NewProcessor(cfg Config, now func() time.Time, source string) (*Processor, error) {
	rules, err := compileRules(cfg.Rules)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	p := &Processor{cfg: cfg, rules: rules, now: now, source: source, parts: map[int32]*partition{},
		forecaster: linearTrend{}}
	for _, h := range cfg.Forecast.Horizons {
		p.horizons = append(p.horizons, horizon{int(h / cfg.Forecast.Step), fmtDuration(h)})
	}
	return p, nil
}

// Counts returns what the processor has done so far.
func (p *Processor) Counts() Counts { return p.counts }

// SeriesCount returns the number of series with state.
func (p *Processor) SeriesCount() int { return p.nSeries }

// Partitions returns the partitions the processor has state for.
func (p *Processor) Partitions() []int32 {
	out := make([]int32, 0, len(p.parts))
	for k := range p.parts {
		out = append(out, k)
	}
	return out
}

func (p *Processor) part(id int32) *partition {
	pt := p.parts[id]
	if pt == nil {
		pt = &partition{series: map[uint64]*seriesState{}, next: -1}
		p.parts[id] = pt
	}
	return pt
}

// Has reports whether the processor holds state for the partition.
func (p *Processor) Has(part int32) bool { return p.parts[part] != nil }

// Next returns the offset of the next record the partition's state
// expects, or -1 when unknown.
func (p *Processor) Next(part int32) int64 {
	if pt := p.parts[part]; pt != nil {
		return pt.next
	}
	return -1
}

// SetNext records that the partition's state covers every record before
// offset next.
func (p *Processor) SetNext(part int32, next int64) { p.part(part).next = next }

// Drop forgets a partition's state (it moved to another processor).
func (p *Processor) Drop(part int32) {
	if pt := p.parts[part]; pt != nil {
		p.nSeries -= len(pt.series)
		delete(p.parts, part)
	}
}

// Process feeds one series' samples to its models and appends derived
// series and events to out. ls must stay unchanged while the processor
// holds it (decoded batches are never reused, so this holds for them).
func (p *Processor) Process(part int32, s novacron.Series, out *Output) {
	p.ProcessKeyed(part, s.Labels.Hash(), s, out)
}

// ProcessKeyed is Process for a caller that knows the series hash
// (novacron.Labels.Hash, which the bus record key carries).
func (p *Processor) ProcessKeyed(part int32, key uint64, s novacron.Series, out *Output) {
	p.counts.Samples += uint64(len(s.Samples))
	pt := p.part(part)
	st := pt.series[key]
	if st == nil {
		if p.nSeries >= p.cfg.MaxSeries {
			p.counts.Dropped[dropSeriesLimit] += uint64(len(s.Samples))
			return
		}
		st = &seriesState{rule: -1}
		pt.series[key] = st
		p.nSeries++
	}
	if st.labels == nil {
		p.attach(st, s.Labels)
	}
	if st.rule < 0 {
		return
	}
	var nowMS, maxT, minT int64 = 0, math.MaxInt64, math.MinInt64
	if p.cfg.MaxClockSkew > 0 || p.cfg.MaxSampleAge > 0 {
		nowMS = p.now().UnixMilli()
		if p.cfg.MaxClockSkew > 0 {
			maxT = nowMS + p.cfg.MaxClockSkew.Milliseconds()
		}
		if p.cfg.MaxSampleAge > 0 {
			minT = nowMS - p.cfg.MaxSampleAge.Milliseconds()
		}
	}
	for _, smp := range s.Samples {
		switch {
		case math.IsNaN(smp.V) || math.IsInf(smp.V, 0):
			p.counts.Dropped[dropNonFinite]++
			continue
		case smp.T > maxT:
			p.counts.Dropped[dropFuture]++
			continue
		case smp.T < minT:
			p.counts.Dropped[dropTooOld]++
			continue
		case smp.T <= st.lastT:
			p.counts.Dropped[dropOutOfOrder]++
			continue
		}
		st.lastT = smp.T
		p.observe(key, st, smp.T, smp.V, out)
	}
}

// attach sets the labels and rule of a series, keeping restored model
// state when the rule still asks for it.
func (p *Processor) attach(st *seriesState, ls novacron.Labels) {
	st.labels = ls
	r := match(p.rules, ls)
	st.rule = int16(r)
	if r < 0 {
		st.det, st.fc = nil, nil
		return
	}
	rl := &p.rules[r]
	if st.rate != rl.Rate {
		st.prevT, st.prevV = 0, 0
	}
	st.rate = rl.Rate
	if rl.Detect && st.det == nil {
		st.det = models.NewDefaultDetector()
	}
	if !rl.Detect {
		st.det = nil
		st.open, st.armed = false, false
	}
	if rl.Forecast && (st.fc == nil || len(st.fc.hist) != p.cfg.Forecast.History) {
		st.fc = &forecastState{hist: make([]float32, p.cfg.Forecast.History),
			prof: make([]float32, profileSlots(p.cfg.Forecast.Step.Milliseconds()))}
	}
	if !rl.Forecast {
		st.fc = nil
	}
}

func (p *Processor) observe(key uint64, st *seriesState, t int64, v float64, out *Output) {
	if st.rate {
		pt, pv := st.prevT, st.prevV
		st.prevT, st.prevV = t, v
		if pt == 0 {
			return
		}
		d := v - pv
		if d < 0 { // counter reset: it restarted from zero
			d = v
		}
		v = d / (float64(t-pt) / 1000)
	}
	p.counts.Modelled++
	rl := &p.rules[st.rule]
	if st.det != nil {
		res := st.det.Observe(t, v)
		p.anomaly(key, st, t, v, res, out)
		st.maxScore = max(st.maxScore, res.Score)
		if t >= st.nextEmit {
			out.Series = p.appendBand(out.Series, st, t, res.Expected, res.Lower, res.Upper, st.maxScore)
			st.maxScore = 0
			st.nextEmit = t + p.cfg.DerivedInterval.Milliseconds()
		}
	}
	if st.fc != nil {
		p.forecast(key, st, rl, t, v, out)
	}
}

// appendBand appends the baseline, band and score points of a series at
// t, their labels and samples carved from one allocation each.
func (p *Processor) appendBand(dst []novacron.Series, st *seriesState, t int64, expected, lower, upper, score float64) []novacron.Series {
	n := p.namesFor(st.labels.Get(novacron.MetricNameLabel), st.rate)
	src := st.labels
	k := len(src)
	labels := make(novacron.Labels, 4*k)
	samples := make([]novacron.Sample, 4)
	for i, kv := range [4]struct {
		name string
		v    float64
	}{{n.baseline, expected}, {n.lower, lower}, {n.upper, upper}, {n.score, score}} {
		ls := labels[i*k : (i+1)*k : (i+1)*k]
		copy(ls, src)
		for j := range ls {
			if ls[j].Name == novacron.MetricNameLabel {
				ls[j].Value = kv.name
			}
		}
		samples[i] = novacron.Sample{T: t, V: kv.v}
		dst = append(dst, novacron.Series{Labels: ls, Samples: samples[i : i+1 : i+1]})
	}
	return dst
}

// derived builds one point of a derived series, with the source labels
// and __name__ replaced.
func (p *Processor) derived(src novacron.Labels, input, kind, extraName, extraValue string, t int64, v float64) novacron.Series {
	n := len(src)
	if extraName != "" {
		n++
	}
	ls := make(novacron.Labels, 0, n)
	added := extraName == ""
	for _, l := range src {
		if !added && l.Name > extraName {
			ls = append(ls, novacron.Label{Name: extraName, Value: extraValue})
			added = true
		}
		if l.Name == novacron.MetricNameLabel {
			l.Value = DerivedName(input, kind)
		}
		ls = append(ls, l)
	}
	if !added {
		ls = append(ls, novacron.Label{Name: extraName, Value: extraValue})
	}
	return novacron.Series{Labels: ls, Samples: []novacron.Sample{{T: t, V: v}}}
}

// anomaly runs the open/update/close hysteresis of one series.
func (p *Processor) anomaly(key uint64, st *seriesState, t int64, v float64, res models.Result, out *Output) {
	a := p.cfg.Anomaly
	high := res.Score >= a.OpenScore
	if !st.open {
		if !high && a.OpenDeviation > 0 && deviation(v, res) >= a.OpenDeviation {
			w, ok := st.det.(interface{ Warm() bool })
			high = !ok || w.Warm()
		}
		if high {
			if !st.armed || res.Score > st.peak {
				st.peak, st.component, st.since = res.Score, res.Component, res.Since
			}
			st.armed = true
		}
		if !st.armed {
			return
		}
		if !high && v >= res.Lower && v <= res.Upper {
			st.armed = false // back to normal before going far
			return
		}
		if deviation(v, res) < a.MinDeviation {
			return
		}
		st.armed, st.open, st.openT, st.reported, st.lastUpdate = false, true, t, st.peak, t
		st.anomalyID = hashIDs(key, uint64(t))
		st.quietSince = 0
		out.Events = append(out.Events, p.anomalyEvent(novacron.EventAnomalyOpened, st, t, v, res))
		return
	}
	quiet := !high && v >= res.Lower && v <= res.Upper
	if res.Score > st.peak {
		st.peak, st.component = res.Score, res.Component
	}
	if !quiet {
		st.quietSince = 0
		if a.UpdateInterval > 0 && st.peak > st.reported && t-st.lastUpdate >= a.UpdateInterval.Milliseconds() {
			st.reported, st.lastUpdate = st.peak, t
			out.Events = append(out.Events, p.anomalyEvent(novacron.EventAnomalyUpdated, st, t, v, res))
		}
		return
	}
	if st.quietSince == 0 {
		st.quietSince = t
	}
	if t-st.quietSince >= a.CloseAfter.Milliseconds() {
		out.Events = append(out.Events, p.anomalyEvent(novacron.EventAnomalyClosed, st, t, v, res))
		st.open, st.quietSince = false, 0
	}
}

// minBandWidth is the least band width deviation counts in, relative to
// the expected value: a series that has been flat for long (a disk's
// usage between two log rotations) has a band of nearly zero width, and a
// change of a hundredth of its value is not an anomaly.
const minBandWidth = 0.01

// deviation returns how far v lies from the expected value in widths of
// the band on its side (at least minBandWidth of the expected value): 1
// on the band's edge. A band of zero width around zero makes any
// departure infinitely far.
func deviation(v float64, res models.Result) float64 {
	d, w := v-res.Expected, res.Upper-res.Expected
	if d < 0 {
		d, w = -d, res.Expected-res.Lower
	}
	w = max(w, minBandWidth*math.Abs(res.Expected))
	switch {
	case d == 0:
		return 0
	case !(w > 0):
		return math.Inf(1)
	}
	return d / w
}

// AnomalyID returns the ID of the anomaly opened on the series with the
// given hash at t (ms): "anomaly-" and 16 hex digits.
func AnomalyID(seriesHash uint64, t int64) string {
	return fmt.Sprintf("anomaly-%016x", hashIDs(seriesHash, uint64(t)))
}

func hashIDs(a, b uint64) uint64 {
	h := fnv.New64a()
	var buf [16]byte
	binary.BigEndian.PutUint64(buf[:8], a)
	binary.BigEndian.PutUint64(buf[8:], b)
	h.Write(buf[:])
	return h.Sum64()
}

func (p *Processor) anomalyEvent(kind string, st *seriesState, t int64, v float64, res models.Result) novacron.Event {
	id := fmt.Sprintf("anomaly-%016x", st.anomalyID)
	metric := st.labels.Get(novacron.MetricNameLabel)
	input := InputName(metric, st.rate)
	e := novacron.Event{
		SchemaVersion: novacron.EventSchemaVersion,
		Kind:          kind,
		Time:          time.UnixMilli(t).UTC(),
		Source:        p.source,
		VMID:          st.labels.Get("vm_id"),
		Host:          st.labels.Get("host"),
		Labels:        labelMap(st.labels),
		Evidence:      Evidence(st.labels, st.rate),
		Details: map[string]any{
			"anomaly_id":  id,
			"metric":      metric,
			"input":       input,
			"series":      st.labels.String(),
			"score":       round(res.Score),
			"peak_score":  round(st.peak),
			"value":       round(v),
			"expected":    round(res.Expected),
			"lower":       round(res.Lower),
			"upper":       round(res.Upper),
			"component":   st.component.String(),
			"opened_at":   time.UnixMilli(st.openT).UTC().Format(time.RFC3339),
			"explanation": explain(input, st.component, v, res),
		},
	}
	switch kind {
	case novacron.EventAnomalyOpened:
		e.ID, e.Severity = id+"-opened", "warning"
		e.Summary = "anomaly on " + st.labels.String() + ": " + explain(input, st.component, v, res)
	case novacron.EventAnomalyUpdated:
		e.ID, e.Severity = id+"-updated-"+strconv.FormatInt(t, 10), "warning"
		e.Summary = "anomaly continues on " + st.labels.String() + " (peak score " + strconv.FormatFloat(round(st.peak), 'g', -1, 64) + ")"
	case novacron.EventAnomalyClosed:
		e.ID, e.Severity = id+"-closed", "info"
		e.Summary = "anomaly closed on " + st.labels.String() + " after " + fmtDuration(time.Duration(t-st.openT)*time.Millisecond)
		e.Details["duration_seconds"] = float64(t-st.openT) / 1000
	}
	return e
}

func explain(input string, c models.Component, v float64, res models.Result) string {
	dir := "above"
	if v < res.Expected {
		dir = "below"
	}
	val := strconv.FormatFloat(round(v), 'g', -1, 64)
	band := fmt.Sprintf("[%s, %s]", strconv.FormatFloat(round(res.Lower), 'g', -1, 64), strconv.FormatFloat(round(res.Upper), 'g', -1, 64))
	switch c {
	case models.ComponentShift:
		return fmt.Sprintf("%s shifted to a new level (%s, %s the usual band %s)", input, val, dir, band)
	case models.ComponentSeason:
		return fmt.Sprintf("%s breaks its usual daily pattern (%s, %s the band %s for this time of day)", input, val, dir, band)
	case models.ComponentVariance:
		return fmt.Sprintf("%s became more volatile (%s, band %s)", input, val, band)
	case models.ComponentNovelty:
		return fmt.Sprintf("%s is outside the range seen so far (%s)", input, val)
	case models.ComponentPattern:
		return fmt.Sprintf("%s moved between levels in a way not seen before (%s)", input, val)
	default:
		return fmt.Sprintf("%s is %s its expected value %s (%s, band %s)", input, dir,
			strconv.FormatFloat(round(res.Expected), 'g', -1, 64), val, band)
	}
}

func labelMap(ls novacron.Labels) map[string]string {
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.Name] = l.Value
	}
	return m
}

func round(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	if v == 0 {
		return 0
	}
	return math.Round(v*1e4) / 1e4
}

// fmtDuration renders d compactly: "3h", "3h40m", "45m", "30s".
func fmtDuration(d time.Duration) string {
	s := d.Round(time.Second).String()
	if len(s) > 4 && s[len(s)-4:] == "m0s" {
		s = s[:len(s)-2]
	}
	if len(s) > 4 && s[len(s)-4:] == "h0m" {
		s = s[:len(s)-2]
	}
	return s
}

var errShortSnapshot = errors.New("truncated analytics snapshot")
