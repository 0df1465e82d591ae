// Package storage is where the pipeline's series end up: it defines the
// provider-neutral Writer that every time-series store implements (the
// embedded Prometheus TSDB in tsdbstore, any remote-write receiver such as
// VictoriaMetrics in remotewrite) and the Sender, the chain every storage
// sink puts in front of its Writer:
//
//	bounded queue -> retry (exponential backoff with jitter) -> timeout -> Writer.Write
//
// The pipeline decodes records from the bus (see package prw), hands each
// batch to Sender.Enqueue and acknowledges the records once the batch's
// done callback reports it durably written, which gives at-least-once
// delivery from the bus to the store. Subpackages: prw (codec),
// remotewrite, tsdbstore, promapi (the Prometheus-compatible query API).
package storage
