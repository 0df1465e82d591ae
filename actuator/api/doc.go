// Package api serves the actuator's remediation routes over the REST API:
// actions and recommendations with approval, rejection, execution,
// cancellation and rollback, the audit log, policies with what-if runs,
// the kill switch and an Alertmanager webhook receiver.
//
// It sits at the end of the pipeline, on top of package actuator. The
// binary mounts it under /api/v1 through api.Deps.Mount, behind the API's
// bearer token; routes that change anything also require the operator
// token in the X-NovaCron-Operator-Token header.
package api
