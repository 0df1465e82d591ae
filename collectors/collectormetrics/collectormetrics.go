// Package collectormetrics holds the service metrics every collector
// exports about itself (novacron_collector_*), with the names and help
// texts of internal/catalog and a constant collector label, so several
// collectors share one registry.
package collectormetrics

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/novacron/novacron/internal/catalog"
)

// Metrics are one collector's service metrics.
type Metrics struct {
	// Series and Samples count what was delivered to the sink.
	Series, Samples prometheus.Counter
	// Cycle is the wall-clock time of one cycle, source read to sink
	// acknowledgement.
	Cycle prometheus.Histogram
	// Errors counts failures by stage; ErrCollect and ErrDeliver are its
	// two children.
	Errors                 *prometheus.CounterVec
	ErrCollect, ErrDeliver prometheus.Counter
}

// New builds the metrics of the collector type name and registers them
// when reg is not nil.
func New(reg prometheus.Registerer, name string) (*Metrics, error) {
	cl := prometheus.Labels{catalog.LabelCollector: name}
	m := &Metrics{
		Series: prometheus.NewCounter(prometheus.CounterOpts{
			Name: catalog.CollectorSeriesTotal, Help: catalog.CollectorSeriesTotalHelp, ConstLabels: cl,
		}),
		Samples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: catalog.CollectorSamplesTotal, Help: catalog.CollectorSamplesTotalHelp, ConstLabels: cl,
		}),
		Cycle: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: catalog.CollectorCycleDurationSeconds, Help: catalog.CollectorCycleDurationSecondsHelp, ConstLabels: cl,
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: catalog.CollectorErrorsTotal, Help: catalog.CollectorErrorsTotalHelp, ConstLabels: cl,
		}, []string{catalog.LabelStage}),
	}
	m.ErrCollect = m.Errors.WithLabelValues(catalog.StageCollect)
	m.ErrDeliver = m.Errors.WithLabelValues(catalog.StageDeliver)
	if reg != nil {
		for _, c := range []prometheus.Collector{m.Series, m.Samples, m.Cycle, m.Errors} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register %s collector metrics: %w", name, err)
			}
		}
	}
	return m, nil
}
