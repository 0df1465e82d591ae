package membus

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/novacron/novacron/internal/bus/internal/busmetrics"
)

// metrics are the common novacron_bus_* metrics plus the in-process
// bus's own: stored records, drops and time blocked on full partitions.
type metrics struct {
	*busmetrics.Metrics
	dropped        *prometheus.CounterVec
	blockedSeconds prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, stored func() float64, capacity float64) *metrics {
	m := &metrics{
		Metrics: busmetrics.New(reg),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_bus_dropped_records_total",
			Help: "Records the in-process bus dropped, by reason (no_subscriber: oldest record of a full partition no group subscribed to).",
		}, []string{"reason"}),
		blockedSeconds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "novacron_bus_produce_blocked_seconds_total",
			Help: "Time producers spent waiting for a lagging group to free space in a full partition.",
		}),
	}
	m.dropped.WithLabelValues(reasonNoSubscriber)
	if reg != nil {
		reg.MustRegister(m.dropped, m.blockedSeconds,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "novacron_bus_stored_records",
				Help: "Records held by the in-process bus across all partitions.",
			}, stored),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "novacron_bus_partition_capacity_records",
				Help: "Records one partition of the in-process bus holds at most.",
			}, func() float64 { return capacity }),
		)
	}
	return m
}

const reasonNoSubscriber = "no_subscriber"
