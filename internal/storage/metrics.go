package storage

import "github.com/prometheus/client_golang/prometheus"

// Results of one write attempt, the values of the result label.
const (
	resultSuccess   = "success"
	resultRetryable = "retryable_error"
	resultPermanent = "permanent_error"
)

// Reasons a batch is dropped, the values of the reason label.
const (
	reasonPermanent = "permanent_error"
	reasonShutdown  = "shutdown"
)

type senderMetrics struct {
	writes         *prometheus.CounterVec
	writeDuration  prometheus.Histogram
	retries        prometheus.Counter
	queueLength    prometheus.Gauge
	queueSamples   prometheus.Gauge
	queueCapacity  prometheus.Gauge
	samplesWritten prometheus.Counter
	dropped        *prometheus.CounterVec
}

func newSenderMetrics(reg prometheus.Registerer) *senderMetrics {
	m := &senderMetrics{
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_storage_write_total",
			Help: "Write attempts to the time-series store, by result (success, retryable_error, permanent_error).",
		}, []string{"result"}),
		writeDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "novacron_storage_write_duration_seconds",
			Help:    "Duration of one write attempt to the time-series store.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "novacron_storage_retries_total",
			Help: "Write attempts that were retries of a batch that failed before.",
		}),
		queueLength: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "novacron_storage_queue_length",
			Help: "Batches waiting in the storage sender's queue.",
		}),
		queueSamples: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "novacron_storage_queue_samples",
			Help: "Samples held by the batches waiting in the storage sender's queue.",
		}),
		queueCapacity: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "novacron_storage_queue_capacity",
			Help: "Most batches the storage sender's queue holds before Enqueue blocks.",
		}),
		samplesWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "novacron_storage_samples_written_total",
			Help: "Samples durably written to the time-series store.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_storage_dropped_total",
			Help: "Batches given up on, by reason (permanent_error, shutdown).",
		}, []string{"reason"}),
	}
	for _, r := range []string{resultSuccess, resultRetryable, resultPermanent} {
		m.writes.WithLabelValues(r)
	}
	for _, r := range []string{reasonPermanent, reasonShutdown} {
		m.dropped.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.writes, m.writeDuration, m.retries, m.queueLength, m.queueSamples,
			m.queueCapacity, m.samplesWritten, m.dropped)
	}
	return m
}
