// Package membus implements novacron.Bus in process, for the embedded
// single-process mode where collectors, pipeline and sinks run in one
// binary without Kafka. It keeps Kafka's contract: topics with
// partitions, records with one key on one partition in order, consumer
// groups with committed offsets, at-least-once delivery with the same
// contiguous-ack commits.
//
// Memory stays bounded over days: a partition keeps a record only until
// every group that ever subscribed to its topic has committed past it, and
// at most max_records_per_partition records. When a partition is full
// because some group lags, Produce blocks until the group catches up or
// the producer's context ends (backpressure). A topic no group has ever
// subscribed to keeps only the newest max_records_per_partition records
// per partition, dropping the oldest (novacron_bus_dropped_records_total).
// A group stays subscribed after its last member leaves, so a stopped
// consumer makes producers block rather than lose its records.
//
// Partition assignment is static: for each topic, partition p goes to
// the member at index p mod n among the n members subscribed to that
// topic, in the order they joined. A member joining or leaving reassigns
// at once; the new owner resumes at the group's committed offset, so
// records the old owner polled but did not acknowledge are delivered
// again, and the old owner's later acks for them are ignored.
//
// Offsets commit as soon as Ack makes them contiguous: there is no
// separate commit step, and nothing survives the process. Topic configs
// (cleanup.policy and others) and replication factors are accepted and
// ignored.
package membus
