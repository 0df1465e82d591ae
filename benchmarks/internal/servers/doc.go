// Package servers starts the real servers the benchmark commands measure
// against: a single-node VictoriaMetrics and a single-node Apache Kafka
// broker (KRaft), each on 127.0.0.1 with its data under a directory the
// caller gives, configured as internal/testserver configures them for the
// tests.
//
// It sits beside the pipeline, not in it: benchmarks/ingest and
// benchmarks/stream use it to build the bus and the store their NovaCron
// stage runs between. Unlike internal/testserver it needs no testing.TB and
// gives each caller servers of its own (a fresh one per scenario), which
// it must Stop.
package servers
