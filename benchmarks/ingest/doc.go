// Command ingest measures how fast NovaCron moves samples from the bus to
// storage, against VictoriaMetrics' own remote-write ingest rate measured
// in the same run on the same machine, and writes a results file
// (Markdown with a machine-readable JSON block and benchstat-compatible
// lines).
//
// It sits beside the pipeline rather than in it: it starts a
// VictoriaMetrics (a fresh one per scenario) and an Apache Kafka broker on
// 127.0.0.1, the same way internal/testserver does for the tests, and runs
// NovaCron's ingest stage (pipeline/ingest in front of storage.Sender and
// a storage.Writer, wired as internal/app wires the processor role) in a
// child process per scenario, so that each scenario's peak memory is its
// own.
//
// Scenarios, each with about 100k active series already known to the
// store (a warm-up round registers them before timing starts):
//
//   - raw: N concurrent writers post pre-encoded snappy WriteRequests
//     straight to VictoriaMetrics' /api/v1/write for a fixed duration;
//   - kafka-vm, memory-vm, memory-tsdb: the samples topic is filled first
//     (one record per series per batch of samples, as the publish sink
//     writes them), then the ingest stage is started and timed until every
//     sample is acknowledged (drain rate).
//
// Run it with benchmarks/ingest/run.sh, or:
//
//	go run ./benchmarks/ingest -out benchmarks/ingest/results-$(date -u +%F).md
package main
