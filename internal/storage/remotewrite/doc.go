// Package remotewrite is a storage.Writer that sends series with
// Prometheus remote write 1.0 (snappy-compressed protobuf over HTTP POST)
// to any receiver: VictoriaMetrics single-node (/api/v1/write), vminsert
// (/insert/<tenant>/prometheus/api/v1/write), or a Prometheus with its
// remote-write receiver enabled.
//
// It is the production storage backend: the pipeline's storage stage puts
// a storage.Sender in front of it, which retries what this package reports
// as retryable (network errors, 5xx, 429) and drops what it reports as
// permanent (every other 4xx, with an excerpt of the receiver's answer).
package remotewrite
