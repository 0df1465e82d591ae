// Command stream measures the streaming-analytics stage (pipeline/analytics)
// end to end on this machine, and its memory per active series, and writes
// a dated results file (Markdown with a JSON block).
//
// It sits beside the pipeline rather than in it. In the end-to-end mode
// (-mode=e2e) it starts an Apache Kafka broker and a VictoriaMetrics on
// 127.0.0.1 (package benchmarks/internal/servers, configured as
// internal/testserver configures them), runs the analytics stage in a child
// process (the "stage" subcommand: kafkabus, analytics.Stage,
// storage.Sender, remote write, as internal/app wires the processor role,
// default configuration), and drives it from this process with a simulated
// fleet (collectors/sim) published one record per series as
// pipeline/publish encodes it, at a paced rate. Level shifts injected on
// known series at known times open anomalies; each anomaly_opened event read
// back from the events topic is joined to the sample that triggered it (by
// series and sample time) to give the latency from "sample handed to the
// Kafka producer" to "event read back". A plain Kafka produce-consume round
// trip of the same records at the same rate on the same broker is the peer.
//
// In the memory mode (-mode=memory) no server runs: about a million distinct
// series of a simulated fleet go through analytics.Processor, decoded from
// their records as the stage decodes them, and the heap is split into model
// state, labels and the rest (map entries, per-series structs).
//
// Run it with benchmarks/stream/run.sh, or:
//
//	go run ./benchmarks/stream -out benchmarks/stream/results-$(date -u +%F).md
package main
