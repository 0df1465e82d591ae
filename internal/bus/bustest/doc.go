// Package bustest is the conformance suite every novacron.Bus
// implementation must pass (membus in process, kafkabus against kfake and
// a real Apache Kafka broker), so the pipeline can rely on one contract:
// key-ordered partitions, at-least-once delivery with contiguous-ack
// commits, rebalancing groups and clean shutdown.
package bustest
