// Package prw converts NovaCron series to and from Prometheus remote-write
// 1.0 protobuf messages (prompb.WriteRequest).
//
// It sits at both ends of the bus: collectors encode batches of
// novacron.Series into raw (uncompressed) WriteRequest bytes that travel as
// Kafka record values, and the pipeline's storage stage decodes and
// validates them before handing them to a storage.Writer. Records that fail
// validation are dead-lettered with the decoder's error as the reason, so
// every error names the series and the rule it broke. The snappy helpers
// frame the same bytes for HTTP remote write.
package prw
