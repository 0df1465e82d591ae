package actuator

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	reconciles *prometheus.CounterVec
	duration   prometheus.Histogram
	actions    *prometheus.CounterVec
	blocked    *prometheus.CounterVec
	events     *prometheus.CounterVec
	queueLen   prometheus.GaugeFunc
	leader     prometheus.Gauge

	policyReloads    *prometheus.CounterVec
	policyGeneration prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, queueLen func() float64) (*metrics, error) {
	m := &metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "novacron_actuator_reconciles_total",
			Help: "Reconcile passes of one VM, by result (success, requeue, error, panic)."}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "novacron_actuator_reconcile_duration_seconds",
			Help: "Time one reconcile pass took.", Buckets: prometheus.DefBuckets}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "novacron_actuator_actions_total",
			Help: "Actions that reached a state, by state."}, []string{"state"}),
		blocked: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "novacron_actuator_blocked_total",
			Help: "Times a safety rail held an approved action back, by rail."}, []string{"rail"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "novacron_actuator_events_total",
			Help: "Input events, by result (planned, duplicate, unmatched, dropped)."}, []string{"result"}),
		queueLen: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "novacron_actuator_queue_length",
			Help: "VMs waiting for a reconcile pass."}, queueLen),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "novacron_actuator_leader",
			Help: "1 while this actuator holds the executor lease."}),
		policyReloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "novacron_actuator_policy_reloads_total",
			Help: "Loads of the stored policies (at start and when their generation moved), by result (success, error)."}, []string{"result"}),
		policyGeneration: prometheus.NewGauge(prometheus.GaugeOpts{Name: "novacron_actuator_policy_generation",
			Help: "Generation of the stored policies this actuator has loaded; replicas agree once they all reloaded."}),
	}
	for _, r := range []string{"success", "requeue", "error", "panic"} {
		m.reconciles.WithLabelValues(r)
	}
	for _, s := range []string{StateProposed, StateApproved, StateRunning, StateVerifying, StateRollingBack, StateSucceeded, StateFailed, StateRolledBack, StateRejected, StateExpired, StateCancelled} {
		m.actions.WithLabelValues(s)
	}
	for _, r := range []string{"kill_switch", "freeze", "maintenance", "actions_per_hour", "concurrent", "tenant_share", "cooldown"} {
		m.blocked.WithLabelValues(r)
	}
	for _, r := range []string{"planned", "duplicate", "unmatched", "dropped"} {
		m.events.WithLabelValues(r)
	}
	for _, r := range []string{"success", "error"} {
		m.policyReloads.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.reconciles, m.duration, m.actions, m.blocked, m.events, m.queueLen, m.leader, m.policyReloads, m.policyGeneration} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register actuator metrics: %w", err)
			}
		}
	}
	return m, nil
}
