// Package promapi serves the Prometheus HTTP query API (the subset
// dashboards and NovaCron's own UI use: /api/v1/query, /api/v1/query_range,
// /api/v1/series, /api/v1/labels and /api/v1/label/<name>/values, GET and
// POST) with exactly Prometheus' JSON shapes.
//
// It sits at the read end of the pipeline, behind the REST API. In
// embedded mode Handler answers from the PromQL engine over the embedded
// TSDB (package tsdbstore); in production Proxy forwards the same paths to
// VictoriaMetrics (single-node, or vmselect with a tenant), so the API
// serves the same endpoints in both modes. Both are plain net/http
// handlers; mount them in gin with gin.WrapH.
package promapi
