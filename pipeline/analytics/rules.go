package analytics

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/novacron/novacron"
)

// rule is a compiled Rule.
type rule struct {
	Rule
	metric *regexp.Regexp
	labels []labelMatcher
}

type labelMatcher struct {
	name string
	re   *regexp.Regexp
}

func compileRules(rs []Rule) ([]rule, error) {
	out := make([]rule, 0, len(rs))
	for i, r := range rs {
		m, err := regexp.Compile("^(?:" + r.Metric + ")$")
		if err != nil {
			return nil, fmt.Errorf("rules[%d].metric %q: %w", i, r.Metric, err)
		}
		cr := rule{Rule: r, metric: m}
		names := make([]string, 0, len(r.Labels))
		for n := range r.Labels {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			re, err := regexp.Compile("^(?:" + r.Labels[n] + ")$")
			if err != nil {
				return nil, fmt.Errorf("rules[%d].labels.%s %q: %w", i, n, r.Labels[n], err)
			}
			cr.labels = append(cr.labels, labelMatcher{n, re})
		}
		out = append(out, cr)
	}
	return out, nil
}

// match returns the index of the first rule matching ls, or -1 when none
// does or the first match is a skip rule.
func match(rules []rule, ls novacron.Labels) int {
	name := ls.Get(novacron.MetricNameLabel)
	for i := range rules {
		r := &rules[i]
		if !r.metric.MatchString(name) {
			continue
		}
		ok := true
		for _, lm := range r.labels {
			if !lm.re.MatchString(ls.Get(lm.name)) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if r.Skip {
			return -1
		}
		return i
	}
	return -1
}

// Derived series kinds: the suffix after the input name.
const (
	KindBaseline        = "baseline"
	KindBaselineLower   = "baseline_lower"
	KindBaselineUpper   = "baseline_upper"
	KindAnomalyScore    = "anomaly_score"
	KindForecast        = "forecast"
	KindTimeToThreshold = "time_to_threshold_seconds"
)

// Labels added to derived series.
const (
	// LabelHorizon is the lead time of a forecast series ("1h").
	LabelHorizon = "horizon"
	// LabelThreshold is the capacity threshold of a time-to-threshold
	// series ("0.95").
	LabelThreshold = "threshold"
)

// InputName returns the name of what the models see for a metric: the
// metric itself, or for a counter converted to a rate the metric without
// _total followed by ":rate" (novacron_vm_disk_read_bytes:rate), in the
// Prometheus recording-rule style.
func InputName(metric string, rate bool) string {
	if rate {
		return strings.TrimSuffix(metric, "_total") + ":rate"
	}
	return metric
}

// DerivedName returns the name of a derived series of an input
// (InputName) and kind: "<input>:<kind>".
func DerivedName(input, kind string) string { return input + ":" + kind }

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// selector renders ls without __name__ as a PromQL label matcher list.
func selector(ls novacron.Labels) string {
	var b strings.Builder
	b.WriteByte('{')
	first := true
	for _, l := range ls {
		if l.Name == novacron.MetricNameLabel {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(l.Name)
		b.WriteString(`="`)
		b.WriteString(labelEscaper.Replace(l.Value))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// Evidence returns the PromQL expression that shows an anomaly of the
// series ls: its model input (the raw gauge, or rate over 5m of a
// counter) with the model's band.
func Evidence(ls novacron.Labels, rate bool) string {
	metric := ls.Get(novacron.MetricNameLabel)
	sel := selector(ls)
	in := InputName(metric, rate)
	bands := `{__name__=~"` + regexp.QuoteMeta(DerivedName(in, KindBaselineLower)) + "|" + regexp.QuoteMeta(DerivedName(in, KindBaselineUpper)) + `",` + sel[1:]
	if rate {
		return "rate(" + metric + sel + "[5m]) or " + bands
	}
	return metric + sel + " or " + bands
}

// forecastEvidence shows the input with its forecasts.
func forecastEvidence(ls novacron.Labels, rate bool) string {
	metric := ls.Get(novacron.MetricNameLabel)
	sel := selector(ls)
	in := InputName(metric, rate)
	return metric + sel + ` or {__name__="` + DerivedName(in, KindForecast) + `",` + sel[1:]
}
