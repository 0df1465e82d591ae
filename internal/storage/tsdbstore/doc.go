// Package tsdbstore is the embedded time-series store: a Prometheus TSDB
// opened under a data directory, written through storage.Writer and read
// with the PromQL engine.
//
// It is the storage backend of the single-binary, embedded mode (no
// VictoriaMetrics): the pipeline's storage stage writes into it through a
// storage.Sender, and the API serves PromQL from it through package
// promapi. Re-delivered samples (same series, timestamp and value) are
// accepted as success, so at-least-once delivery from the bus stores each
// sample once.
package tsdbstore
