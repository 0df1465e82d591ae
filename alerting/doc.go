// Package alerting turns what NovaCron stores and notices into alerts and
// notifications. It sits after storage and the analytics stages: it
// evaluates Prometheus rule files (and thresholds compiled into rules)
// against the time-series store, embedded or VictoriaMetrics, turns
// anomaly, forecast-breach and incident events from novacron.events into
// alerts, and routes every alert through an embedded Alertmanager
// pipeline (routing tree, grouping, inhibition, silences, deduplication,
// receivers) and, optionally, to external Alertmanagers.
//
// Alert state, history, thresholds, silences and the notification log live
// in the state database (internal/statedb), so they survive restarts and
// are shared by replicas. Package alerting/api serves them over REST.
package alerting
