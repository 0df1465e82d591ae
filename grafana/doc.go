// Package grafana holds NovaCron's Grafana dashboards and provisioning
// files; it has no Go API, only tests.
//
// It sits at the very end of the pipeline, beside the API: Grafana reads
// the VM and host metrics through NovaCron's Prometheus-compatible query
// endpoints (the embedded store, or VictoriaMetrics behind the API), and
// NovaCron's own health from a store that scrapes its /metrics.
//
//   - dashboards/ holds the dashboard JSON: fleet-overview.json,
//     vm-detail.json and novacron-self.json.
//   - provisioning/ holds the files Grafana loads at start: the data
//     sources (datasources/novacron.yaml) and a file provider for the
//     dashboards (dashboards/novacron.yaml).
//   - prometheus.yml is a minimal Prometheus configuration scraping
//     NovaCron's /metrics, for the self-monitoring dashboard.
//
// The tests parse every dashboard and provisioning file, parse every PromQL
// expression with the Prometheus parser, check that each metric it names is
// in the catalogue (internal/catalog) or in docs/metrics.md, and run every
// panel query against an embedded store filled by the real pipeline from an
// hour of the simulated fleet. README.md says how to use the directory.
package grafana
