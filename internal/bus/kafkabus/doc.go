// Package kafkabus implements novacron.Bus on Apache Kafka with franz-go.
//
// It sits between the collectors (producers of novacron.samples records)
// and the pipeline stages (consumer groups). Produce is synchronous: it
// returns once every record is acknowledged by all in-sync replicas
// (idempotent producer, acks=all), batching and compressing underneath.
//
// Consumers join a consumer group with the cooperative-sticky balancer and
// commit only what the caller acknowledged: for each partition the
// committed offset is the end of the longest run of acknowledged records
// from the oldest polled one, so a crash re-delivers every record that was
// polled but not acknowledged (at-least-once).
//
// Partitioning: a record whose Partition is zero is placed by the murmur2
// hash of its Key, exactly as the Java client does, so one key always maps
// to one partition. A keyless record is spread over the partitions
// (sticky per batch). A record with a non-zero Partition goes to that
// partition; partition 0 can therefore only be chosen through the key.
package kafkabus
