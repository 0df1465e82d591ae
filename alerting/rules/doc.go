// Package rules holds the alert and recording rules NovaCron ships: VM and
// host health, plus statistical anomaly and forecast rules over the metric
// catalogue (docs/metrics.md), as Prometheus rule files. Package alerting
// loads them (alerting.default_rules) beside the operator's own rule files
// and evaluates them against the time-series store; they complement the
// anomaly and forecast-breach alerts raised from the models' events.
package rules

import "embed"

// FS holds the shipped rule files (*.yaml) at its root.
//
//go:embed *.yaml
var FS embed.FS
