package libvirt

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/novacron/novacron/internal/catalog"
)

// metrics are the collector's own service metrics, shared in name and help
// with every other collector (see internal/catalog).
type metrics struct {
	series     prometheus.Counter
	samples    prometheus.Counter
	cycle      prometheus.Histogram
	errors     *prometheus.CounterVec
	errCollect prometheus.Counter
	errDeliver prometheus.Counter
}

// newMetrics builds the metrics and registers them when reg is not nil.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	cl := prometheus.Labels{catalog.LabelCollector: TypeName}
	m := &metrics{
		series: prometheus.NewCounter(prometheus.CounterOpts{
			Name: catalog.CollectorSeriesTotal, Help: catalog.CollectorSeriesTotalHelp, ConstLabels: cl,
		}),
		samples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: catalog.CollectorSamplesTotal, Help: catalog.CollectorSamplesTotalHelp, ConstLabels: cl,
		}),
		cycle: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: catalog.CollectorCycleDurationSeconds, Help: catalog.CollectorCycleDurationSecondsHelp, ConstLabels: cl,
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: catalog.CollectorErrorsTotal, Help: catalog.CollectorErrorsTotalHelp, ConstLabels: cl,
		}, []string{catalog.LabelStage}),
	}
	m.errCollect = m.errors.WithLabelValues(catalog.StageCollect)
	m.errDeliver = m.errors.WithLabelValues(catalog.StageDeliver)
	if reg != nil {
		for _, c := range []prometheus.Collector{m.series, m.samples, m.cycle, m.errors} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register libvirt collector metrics: %w", err)
			}
		}
	}
	return m, nil
}
