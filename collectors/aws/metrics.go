package aws

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/novacron/novacron/internal/catalog"
)

// Results of one API attempt (label result of novacron_aws_api_requests_total).
const (
	resultOK        = "ok"
	resultThrottled = "throttled"
	resultError     = "error"
)

// apis are the APIs the collector calls, for initialising label values.
var apis = []string{APIDescribeInstances, APIDescribeInstanceTypes, APIGetMetricData, APIListMetrics, APIAssumeRole}

// metrics are the collector's service metrics: the catalogue's collector
// set plus the AWS API accounting.
type metrics struct {
	series     prometheus.Counter
	samples    prometheus.Counter
	cycle      prometheus.Histogram
	errors     *prometheus.CounterVec
	errCollect prometheus.Counter
	errDeliver prometheus.Counter

	requests         *prometheus.CounterVec // api, result
	requestDuration  *prometheus.HistogramVec
	metricsRequested *prometheus.CounterVec // api
	cost             *prometheus.CounterVec // api
	queryErrors      *prometheus.CounterVec // reason
	instances        *prometheus.GaugeVec   // account, region
}

// Reasons for novacron_aws_query_errors_total.
const (
	queryErrStatus  = "status"  // a query came back InternalError or Forbidden
	queryErrRequest = "request" // a whole GetMetricData call failed
	queryErrGap     = "gap"     // periods skipped because a cycle fell behind lookback
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	cl := prometheus.Labels{catalog.LabelCollector: Provider}
	m := &metrics{
		series: prometheus.NewCounter(prometheus.CounterOpts{
			Name: catalog.CollectorSeriesTotal, Help: catalog.CollectorSeriesTotalHelp, ConstLabels: cl,
		}),
		samples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: catalog.CollectorSamplesTotal, Help: catalog.CollectorSamplesTotalHelp, ConstLabels: cl,
		}),
		cycle: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: catalog.CollectorCycleDurationSeconds, Help: catalog.CollectorCycleDurationSecondsHelp, ConstLabels: cl,
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: catalog.CollectorErrorsTotal, Help: catalog.CollectorErrorsTotalHelp, ConstLabels: cl,
		}, []string{catalog.LabelStage}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_aws_api_requests_total",
			Help: "AWS API request attempts by the AWS collector, retries included, by API and result (ok, throttled, error).",
		}, []string{"api", "result"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "novacron_aws_api_request_duration_seconds",
			Help:    "Duration of one AWS API request attempt by the AWS collector, rate-limit wait excluded.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"api"}),
		metricsRequested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_aws_metrics_requested_total",
			Help: "CloudWatch metrics requested by the AWS collector (metric queries of successful calls), by API; GetMetricData bills per metric requested.",
		}, []string{"api"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_aws_api_estimated_cost_dollars_total",
			Help: "Estimated AWS bill of the AWS collector's API use in US dollars, from the configured price list, by API.",
		}, []string{"api"}),
		queryErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_aws_query_errors_total",
			Help: "CloudWatch metric queries the AWS collector lost, by reason (status: the query failed; request: its GetMetricData call failed; gap: periods skipped after falling behind).",
		}, []string{"reason"}),
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "novacron_aws_instances",
			Help: "EC2 instances the AWS collector saw in its last discovery, by account and region.",
		}, []string{"account", "region"}),
	}
	m.errCollect = m.errors.WithLabelValues(catalog.StageCollect)
	m.errDeliver = m.errors.WithLabelValues(catalog.StageDeliver)
	for _, api := range apis {
		for _, r := range []string{resultOK, resultThrottled, resultError} {
			m.requests.WithLabelValues(api, r)
		}
		m.cost.WithLabelValues(api)
	}
	m.metricsRequested.WithLabelValues(APIGetMetricData)
	for _, r := range []string{queryErrStatus, queryErrRequest, queryErrGap} {
		m.queryErrors.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.series, m.samples, m.cycle, m.errors,
			m.requests, m.requestDuration, m.metricsRequested, m.cost, m.queryErrors, m.instances} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register aws collector metrics: %w", err)
			}
		}
	}
	return m, nil
}
