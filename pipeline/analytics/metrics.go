package analytics

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	records            *prometheus.CounterVec
	samples            prometheus.Counter
	modelled           prometheus.Counter
	dropped            *prometheus.CounterVec
	derived            prometheus.Counter
	derivedDropped     prometheus.Counter
	events             *prometheus.CounterVec
	eventErrors        prometheus.Counter
	pollErrors         prometheus.Counter
	duration           prometheus.Histogram
	checkpoints        *prometheus.CounterVec
	checkpointBytes    prometheus.Histogram
	checkpointDuration prometheus.Histogram
	restores           *prometheus.CounterVec
	series             prometheus.Gauge
	lag                prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_analytics_records_total", Help: "Sample records consumed by the analytics stage, by result (ok, undecodable, covered by a restored checkpoint).",
		}, []string{"result"}),
		samples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "novacron_analytics_samples_total", Help: "Samples seen by the analytics stage.",
		}),
		modelled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "novacron_analytics_modelled_samples_total", Help: "Samples fed to a model (after rate conversion).",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_analytics_samples_dropped_total", Help: "Samples of modelled series not fed to a model, by reason.",
		}, []string{"reason"}),
		derived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "novacron_analytics_derived_samples_total", Help: "Derived samples (baseline, band, score, forecast) durably written.",
		}),
		derivedDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "novacron_analytics_derived_dropped_total", Help: "Derived samples storage rejected permanently.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_analytics_events_total", Help: "Events published, by kind.",
		}, []string{"kind"}),
		eventErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "novacron_analytics_event_errors_total", Help: "Failed attempts to publish events (retried).",
		}),
		pollErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "novacron_analytics_poll_errors_total", Help: "Failed polls of the samples topic.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "novacron_analytics_batch_duration_seconds", Help: "Time to run the models over one poll.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9),
		}),
		checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_analytics_checkpoints_total", Help: "Checkpoints of model state, by result (ok, error).",
		}, []string{"result"}),
		checkpointBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "novacron_analytics_checkpoint_size_bytes", Help: "Uncompressed size of one checkpoint.",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 10),
		}),
		checkpointDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "novacron_analytics_checkpoint_duration_seconds", Help: "Time to write one checkpoint, writes in flight included.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}),
		restores: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_analytics_partition_restores_total", Help: "Partitions whose state was loaded from a checkpoint, by result (ok, none, error).",
		}, []string{"result"}),
		series: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "novacron_analytics_series", Help: "Series with model state in this processor.",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "novacron_analytics_consumer_lag_records", Help: "Records in owned partitions not yet committed (committed only at checkpoints).",
		}),
	}
	for _, r := range []string{"ok", "undecodable", "covered"} {
		m.records.WithLabelValues(r)
	}
	for _, r := range dropReasons {
		m.dropped.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "error"} {
		m.checkpoints.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "none", "error"} {
		m.restores.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.records, m.samples, m.modelled, m.dropped, m.derived, m.derivedDropped, m.events,
			m.eventErrors, m.pollErrors, m.duration, m.checkpoints, m.checkpointBytes, m.checkpointDuration,
			m.restores, m.series, m.lag)
	}
	return m
}
