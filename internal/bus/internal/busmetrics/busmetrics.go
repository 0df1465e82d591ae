// Package busmetrics holds the metrics every novacron.Bus implementation
// in internal/bus exports, so both report under the same names.
package busmetrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the novacron_bus_* metrics common to all buses.
type Metrics struct {
	ProducedRecords *prometheus.CounterVec // by topic
	ProducedBytes   *prometheus.CounterVec // by topic; key+value bytes
	ProduceErrors   prometheus.Counter
	ProduceDuration prometheus.Histogram
	ConsumedRecords *prometheus.CounterVec // by topic
	CommitErrors    prometheus.Counter
	ConsumerLag     *prometheus.GaugeVec // by group
}

// New builds the metrics and registers them on reg when reg is not nil.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		ProducedRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_bus_produced_records_total",
			Help: "Records acknowledged by the bus, by topic.",
		}, []string{"topic"}),
		ProducedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_bus_produced_bytes_total",
			Help: "Key and value bytes of records acknowledged by the bus, by topic, before compression.",
		}, []string{"topic"}),
		ProduceErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "novacron_bus_produce_errors_total",
			Help: "Records the bus failed to produce.",
		}),
		ProduceDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:                            "novacron_bus_produce_duration_seconds",
			Help:                            "Time from a Produce call to the acknowledgement of all its records.",
			Buckets:                         prometheus.ExponentialBuckets(0.0005, 4, 9),
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  100,
			NativeHistogramMinResetDuration: 0,
		}),
		ConsumedRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_bus_consumed_records_total",
			Help: "Records handed to consumers by Poll, by topic.",
		}, []string{"topic"}),
		CommitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "novacron_bus_commit_errors_total",
			Help: "Failed offset commits.",
		}),
		ConsumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "novacron_bus_consumer_lag_records",
			Help: "Records in the partitions owned by this process's consumers not yet committed, by group, as of the last poll.",
		}, []string{"group"}),
	}
	if reg != nil {
		reg.MustRegister(m.ProducedRecords, m.ProducedBytes, m.ProduceErrors, m.ProduceDuration,
			m.ConsumedRecords, m.CommitErrors, m.ConsumerLag)
	}
	return m
}

// LagReporter adds one consumer's lag to the shared per-group gauge, so
// several consumers of one group in a process add up instead of
// overwriting each other.
type LagReporter struct {
	g    prometheus.Gauge
	last float64
}

// NewLagReporter returns the reporter of a consumer of group.
func (m *Metrics) NewLagReporter(group string) *LagReporter {
	return &LagReporter{g: m.ConsumerLag.WithLabelValues(group)}
}

// Set reports the consumer's current lag; a negative lag (unknown) counts
// as zero.
func (r *LagReporter) Set(lag int64) {
	v := float64(max(lag, 0))
	r.g.Add(v - r.last)
	r.last = v
}

// Clear removes the consumer's contribution, on Close.
func (r *LagReporter) Clear() { r.Set(0) }
