package analytics

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/models"
)

// forecast folds a sample into the series' history and, every
// forecast.interval, forecasts it.
func (p *Processor) forecast(key uint64, st *seriesState, rl *rule, t int64, v float64, out *Output) {
	fc := st.fc
	step := p.cfg.Forecast.Step.Milliseconds()
	b := t - t%step
	if fc.bucket == 0 {
		fc.bucket = b
	}
	if b != fc.bucket {
		if fc.cnt > 0 {
			gap := int((b - fc.bucket) / step)
			pt := float32(fc.sum / float64(fc.cnt))
			if gap > len(fc.hist)/4 {
				// A long gap: the history no longer describes the trend.
				fc.head, fc.n = 0, 0
				gap = 1
			}
			for i := range gap { // short gaps repeat the last point
				fc.push(pt)
				fc.learn(fc.bucket+int64(i)*step, float64(pt), step)
			}
		}
		fc.bucket, fc.sum, fc.cnt = b, 0, 0
		if t >= fc.nextRun && fc.n >= 12 {
			fc.nextRun = t + p.cfg.Forecast.Interval.Milliseconds()
			p.runForecast(key, st, rl, t, b, out)
		}
	}
	fc.sum += v
	fc.cnt++
}

// dayMs is a day in milliseconds: the period of the profile.
const dayMs = int64(24 * time.Hour / time.Millisecond)

// profileSlots returns the number of slots of a day's profile at a
// history step: one per step, at most one per quarter of an hour.
func profileSlots(stepMs int64) int {
	slot := max(stepMs, int64(15*time.Minute/time.Millisecond))
	return int(max(dayMs/slot, 1))
}

// slotOf returns the profile slot of time t (ms).
func (fc *forecastState) slotOf(t int64) int {
	n := int64(len(fc.prof))
	return int((t%dayMs + dayMs) % dayMs * n / dayMs)
}

// profileReady reports whether the profile has learnt a whole day.
func (fc *forecastState) profileReady(stepMs int64) bool {
	return fc.prof != nil && int64(fc.profN)*stepMs >= dayMs
}

// learn folds the history point v of the bucket starting at t into the
// level and the daily profile. The level is the mean of the first day's
// points, then a moving average over about a day; the profile slot moves
// halfway towards the point's departure from the level on the first day,
// a tenth of the way after that, so a changed routine is learnt within
// days and a single odd day does not rewrite it.
func (fc *forecastState) learn(t int64, v float64, stepMs int64) {
	if fc.prof == nil { // restored from a checkpoint without one
		fc.prof = make([]float32, profileSlots(stepMs))
		fc.profN = 0
	}
	perDay := float64(dayMs / stepMs)
	n := float64(fc.profN)
	fc.level += (v - fc.level) / min(n+1, perDay)
	alpha := 0.1
	if n < perDay {
		alpha = 0.5
	}
	i := fc.slotOf(t)
	fc.prof[i] += float32(alpha * (v - fc.level - float64(fc.prof[i])))
	if n < 1<<30 {
		fc.profN++
	}
}

func (fc *forecastState) push(v float32) {
	if fc.n < len(fc.hist) {
		fc.hist[(fc.head+fc.n)%len(fc.hist)] = v
		fc.n++
		return
	}
	fc.hist[fc.head] = v
	fc.head = (fc.head + 1) % len(fc.hist)
}

func (p *Processor) runForecast(key uint64, st *seriesState, rl *rule, t, bucket int64, out *Output) {
	fc := st.fc
	y := p.scratch[:0]
	for i := range fc.n {
		y = append(y, float64(fc.hist[(fc.head+i)%len(fc.hist)]))
	}
	p.scratch = y
	step := p.cfg.Forecast.Step
	stepMs := step.Milliseconds()
	// The last point is the bucket that just closed: it stands for
	// bucket-step, and step i of the forecast for bucket-step+i·step.
	base := bucket - stepMs
	last := y[len(y)-1]
	// With a day of profile learnt, the trend is fitted to the history
	// less the daily profile and the profile is added back to the
	// forecast: the morning climb of an office-hours VM is routine, not a
	// trend towards saturation.
	seasonal := fc.profileReady(stepMs)
	if seasonal {
		for i := range y {
			y[i] -= float64(fc.prof[fc.slotOf(base-int64(len(y)-1-i)*stepMs)])
		}
	}
	h := int(p.cfg.Forecast.Horizon / step)
	if w := int(p.cfg.Forecast.TrendWindow / step); seasonal && len(y) > w {
		y = y[len(y)-w:]
	}
	f, err := p.forecaster.Forecast(y, h)
	if err != nil || len(f.Point) < h {
		return
	}
	if seasonal {
		for k := range f.Point {
			s := float64(fc.prof[fc.slotOf(base+int64(k+1)*stepMs)])
			f.Point[k] += s
			f.Lower[k] += s
			f.Upper[k] += s
		}
	}
	in := InputName(st.labels.Get(novacron.MetricNameLabel), st.rate)
	for _, hz := range p.horizons {
		out.Series = append(out.Series, p.derived(st.labels, in, KindForecast, LabelHorizon, hz.label, t, f.Point[hz.steps-1]))
	}
	if rl.Threshold == 0 {
		return
	}
	thr := strconv.FormatFloat(rl.Threshold, 'g', -1, 64)
	c := models.TimeToThreshold(f, rl.Threshold, true)
	// A breach counts when even the interval's far bound crosses within
	// the horizon: a confident prediction, not a possibility.
	if last >= rl.Threshold || c.Step == 0 || c.Latest == 0 {
		if !fc.breach {
			fc.streak = 0
			return
		}
		if fc.streak++; fc.streak >= 2 {
			fc.breach, fc.streak = false, 0
			out.Events = append(out.Events, p.breachEvent(st, "cleared", t, 0, 0, 0, rl.Threshold))
		}
		return
	}
	eta := base + int64(c.Step)*step.Milliseconds()
	out.Series = append(out.Series, p.derived(st.labels, in, KindTimeToThreshold, LabelThreshold, thr, t, float64(max(eta-t, 0))/1000))
	if !seasonal {
		// Until a day of history has taught the daily profile, a rising
		// trend may be the morning: forecast, but predict no breach.
		return
	}
	if !fc.breach {
		if fc.streak++; fc.streak < 2 {
			return
		}
	}
	fc.streak = 0
	earliest, latest := int64(0), int64(0)
	if c.Earliest > 0 {
		earliest = base + int64(c.Earliest)*step.Milliseconds()
	}
	if c.Latest > 0 {
		latest = base + int64(c.Latest)*step.Milliseconds()
	}
	switch {
	case !fc.breach:
		fc.breach, fc.breachETA, fc.breachSeq, fc.streak = true, eta, 0, 0
		fc.breachID = hashIDs(key^math.Float64bits(rl.Threshold), uint64(t))
		out.Events = append(out.Events, p.breachEvent(st, "predicted", t, eta, earliest, latest, rl.Threshold))
	case absInt(eta-fc.breachETA) > max((fc.breachETA-t)/4, 2*step.Milliseconds()):
		fc.breachETA = eta
		fc.breachSeq++
		out.Events = append(out.Events, p.breachEvent(st, "updated", t, eta, earliest, latest, rl.Threshold))
	}
}

func absInt(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// BreachText renders a predicted crossing for people: "in 3h ± 40m",
// "in 3h (or later)".
func BreachText(now, eta, earliest, latest int64) string {
	in := time.Duration(max(eta-now, 0)) * time.Millisecond
	s := "in " + fmtDuration(in.Round(time.Minute))
	if earliest == 0 || latest == 0 {
		return s + " (or later)"
	}
	pm := time.Duration(max(eta-earliest, latest-eta)) * time.Millisecond
	return s + " ± " + fmtDuration(pm.Round(time.Minute))
}

func (p *Processor) breachEvent(st *seriesState, state string, t, eta, earliest, latest int64, threshold float64) novacron.Event {
	fc := st.fc
	id := fmt.Sprintf("breach-%016x", fc.breachID)
	metric := st.labels.Get(novacron.MetricNameLabel)
	input := InputName(metric, st.rate)
	e := novacron.Event{
		SchemaVersion: novacron.EventSchemaVersion,
		Kind:          novacron.EventForecastBreach,
		Time:          time.UnixMilli(t).UTC(),
		Source:        p.source,
		VMID:          st.labels.Get("vm_id"),
		Host:          st.labels.Get("host"),
		Labels:        labelMap(st.labels),
		Evidence:      forecastEvidence(st.labels, st.rate),
		Details: map[string]any{
			"breach_id": id,
			"state":     state,
			"metric":    metric,
			"input":     input,
			"series":    st.labels.String(),
			"threshold": threshold,
		},
	}
	switch state {
	case "cleared":
		e.ID, e.Severity = id+"-cleared", "info"
		e.Summary = fmt.Sprintf("%s no longer expected to reach %g within %s", st.labels.String(), threshold, fmtDuration(p.cfg.Forecast.Horizon))
		return e
	case "predicted":
		e.ID = id + "-predicted"
	default:
		e.ID = id + "-updated-" + strconv.Itoa(int(fc.breachSeq))
	}
	e.Severity = "warning"
	if eta-t < int64(time.Hour/time.Millisecond)*3 {
		e.Severity = "critical"
	}
	text := BreachText(t, eta, earliest, latest)
	e.Summary = fmt.Sprintf("%s expected to reach %g %s", st.labels.String(), threshold, text)
	e.Details["eta"] = time.UnixMilli(eta).UTC().Format(time.RFC3339)
	e.Details["eta_seconds"] = float64(eta-t) / 1000
	if earliest > 0 {
		e.Details["earliest"] = time.UnixMilli(earliest).UTC().Format(time.RFC3339)
	}
	if latest > 0 {
		e.Details["latest"] = time.UnixMilli(latest).UTC().Format(time.RFC3339)
	}
	e.Details["explanation"] = fmt.Sprintf("the forecast of %s reaches %g %s", input, threshold, text)
	return e
}

// linearTrend is the capacity forecaster: an ordinary least-squares line
// through the history, with a 95% prediction interval from the residuals.
// Capacity questions ("when is the disk full?") are about trend, and the
// line costs O(n) where an ETS fit costs milliseconds per series.
type linearTrend struct{}

func (linearTrend) Forecast(y []float64, h int) (models.Forecast, error) {
	n := float64(len(y))
	if len(y) < 3 {
		return models.Forecast{}, models.ErrTooShort
	}
	var sx, sy, sxx, sxy float64
	for i, v := range y {
		x := float64(i)
		sx += x
		sy += v
		sxx += x * x
		sxy += x * v
	}
	mx, my := sx/n, sy/n
	vx := sxx - n*mx*mx
	slope := (sxy - n*mx*my) / vx
	icpt := my - slope*mx
	var sse float64
	for i, v := range y {
		r := v - (icpt + slope*float64(i))
		sse += r * r
	}
	sigma := math.Sqrt(sse / (n - 2))
	f := models.Forecast{Point: make([]float64, h), Lower: make([]float64, h), Upper: make([]float64, h), Level: 0.95, Model: "linear"}
	for k := range h {
		x := n - 1 + float64(k+1)
		pt := icpt + slope*x
		w := 1.96 * sigma * math.Sqrt(1+1/n+(x-mx)*(x-mx)/vx)
		f.Point[k], f.Lower[k], f.Upper[k] = pt, pt-w, pt+w
	}
	return f, nil
}
