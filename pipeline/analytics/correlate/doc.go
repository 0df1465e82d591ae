// Package correlate groups the analytics stage's anomalies into
// incidents with a probable cause.
//
// It sits after the analytics stage, on the events topic: the stage keys
// its events by host, so every anomaly of one host's VMs lands on one
// partition, and a Stage consuming that topic in a consumer group of its
// own owns each host on exactly one processor however the samples were
// spread over the analytics processors. A Correlator (pure, no I/O) holds
// one partition's state: anomalies that open within Config.Window of each
// other on the VMs of one host, or on one VM across metrics, form a group,
// and once the window has passed in event time the group is classified.
// Groups with a probable cause (host contention, VM runaway, memory leak,
// disk filling, VM gone idle) become incidents, published back on the
// events topic as EventIncident events with deterministic IDs; groups that
// look like an ordinary change of workload do not.
//
// The Stage keeps no checkpoint: it acknowledges the record of an anomaly
// only once the anomaly can no longer change an incident, so after a
// restart or a rebalance the new owner re-reads exactly the records that
// rebuild the open incidents and re-emits the same event IDs.
package correlate
