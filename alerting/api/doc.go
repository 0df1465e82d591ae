// Package api serves alerting over NovaCron's REST API: current alerts,
// their history, silences, thresholds and rule groups, under /api/v1. The
// binary adds Mount's function to api.Deps.Mount, so the routes share the
// API server's authentication, metrics and error shape.
package api
