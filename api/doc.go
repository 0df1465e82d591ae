// Package api serves NovaCron's REST API with gin behind an http.Server
// that NovaCron owns: health and readiness, /metrics, the
// Prometheus-compatible query endpoints, and the fleet. Every route but
// health and metrics requires a bearer token.
//
// Handlers depend on small interfaces (a fleet reader, a query handler,
// readiness checks), never on the adapters behind them.
package api
