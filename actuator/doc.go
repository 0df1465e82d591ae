// Package actuator is the end of NovaCron's pipeline: it turns
// recommendations, forecast breaches, anomalies, incidents and alerts
// (from the events topic, an Alertmanager webhook or the API) into VM
// actions carried out through novacron.Driver (the simulated fleet,
// libvirt, AWS).
//
// Policies match events and name an action with bounds; each has a mode
// (off, dry_run, approve, auto). Actions are planned with a deterministic
// id built from the VM, the action and the VM's generation, recorded in
// the state database (the ledger), and executed by a level-triggered
// reconcile loop keyed by VM: each pass compares the action's desired
// state with the VM the driver observes and takes at most one idempotent
// step. Safety rails (budgets, cooldowns, windows, preconditions, a kill
// switch) gate every start; verification watches the triggering signal
// through a PromQL query and rolls back what did not help. Only the
// holder of a lease with a fencing token executes, so several actuators
// sharing a database never act twice.
//
// The REST routes are in package actuator/api.
package actuator
