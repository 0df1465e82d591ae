package api

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	authFail prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_api_requests_total",
			Help: "API requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "novacron_api_request_duration_seconds",
			Help:    "API request latency by route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}, []string{"route"}),
		authFail: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "novacron_api_unauthorized_requests_total",
			Help: "Requests refused for a missing or wrong bearer token.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.authFail)
	}
	return m
}
