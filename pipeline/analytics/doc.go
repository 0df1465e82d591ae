// Package analytics is the pipeline stage that learns what normal looks
// like for every series and says when something is not.
//
// It sits beside ingest after the bus: a consumer group of its own on the
// samples topic feeds each series, sample by sample, to the streaming
// models of package models, chosen per metric by selectors (Config.Rules).
// Per-series state lives in memory, keyed by the series hash, on the
// processor that owns the series' partition. The stage writes derived
// series (baseline, band, anomaly score, forecast, time to threshold)
// through the storage sender beside the raw ones, and publishes anomaly
// and forecast-breach events, with hysteresis and deterministic IDs, on the
// events topic.
//
// Model state is checkpointed per partition (package checkpoint) and
// records are acknowledged only once the checkpoint that covers them is
// durable, so a restart or a rebalance resumes exactly where the state
// left off: no cold start, and re-processed records re-emit the same
// event IDs rather than new ones.
package analytics
