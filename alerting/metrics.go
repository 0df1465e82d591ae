package alerting

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	transitions *prometheus.CounterVec
	stateErrors prometheus.Counter
	events      *prometheus.CounterVec
	forwarded   *prometheus.CounterVec
	active      *prometheus.GaugeVec
	evalFailed  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_alerting_transitions_total",
			Help: "Alert state changes recorded in the history, by source (rule, threshold, event) and new state.",
		}, []string{"source", "state"}),
		stateErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "novacron_alerting_state_errors_total",
			Help: "Failed writes of alert state to the state database (retried at the next evaluation).",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_alerting_events_total",
			Help: "Events consumed, by result (alert, resolve, ignored).",
		}, []string{"result"}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_alerting_forwarded_alerts_total",
			Help: "Alerts sent to external Alertmanagers, by result (ok, error, dropped).",
		}, []string{"result"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "novacron_alerting_alerts",
			Help: "Current alerts, by state (pending, firing).",
		}, []string{"state"}),
		evalFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "novacron_alerting_rule_group_errors_total",
			Help: "Rule (re)loads that failed; the previous rule set stays in force.",
		}),
	}
	for _, src := range []string{SourceRule, SourceThreshold, SourceEvent} {
		for _, st := range []string{StatePending, StateFiring, StateResolved} {
			m.transitions.WithLabelValues(src, st)
		}
	}
	for _, r := range []string{"alert", "resolve", "ignored"} {
		m.events.WithLabelValues(r)
	}
	m.forwarded.WithLabelValues("ok")
	m.forwarded.WithLabelValues("error")
	m.forwarded.WithLabelValues("dropped")
	m.active.WithLabelValues(StatePending)
	m.active.WithLabelValues(StateFiring)
	if reg != nil {
		reg.MustRegister(m.transitions, m.stateErrors, m.events, m.forwarded, m.active, m.evalFailed)
	}
	return m
}
