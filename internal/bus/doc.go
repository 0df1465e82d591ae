// Package bus holds NovaCron's implementations of novacron.Bus, the record
// stream between collectors, the pipeline and the sinks:
//
//   - kafkabus carries records through Apache Kafka (production);
//   - membus carries them in process (the embedded single-process mode);
//   - bustest is the conformance suite both must pass.
package bus
