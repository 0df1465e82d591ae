// Package models holds NovaCron's analytics models: streaming baselines,
// anomaly detectors and forecasters.
//
// It sits in the pipeline stage after the bus: the pipeline feeds each
// series, sample by sample, to a Detector (and periodically to a
// forecaster) and turns the results into domain Anomaly and Forecast
// events. The package is pure numeric code on the standard library and
// gonum: no I/O, no Kafka, no HTTP. Offline evaluation and the
// `novacron models` commands live in internal/modelscli.
//
// # Streaming contract
//
// A streaming model consumes one series in arrival order through
// Observe(t, v), with O(1) amortised work and bounded memory, and never
// looks ahead: the result for a sample depends only on that sample and the
// ones before it. Its whole state serialises with MarshalBinary into a
// small versioned binary snapshot, and UnmarshalBinary restores it so that
// future outputs are identical to those of an uninterrupted model.
//
// Irregular input is handled as follows:
//   - NaN and ±Inf values are ignored: the model state does not change and
//     the result has score 0 and the current expectation.
//   - Gaps are not filled: the next sample is simply the next observation;
//     seasonal profiles are indexed by the sample's timestamp, so a gap does
//     not shift the season.
//   - Repeated and out-of-order timestamps are processed as ordinary
//     samples in arrival order (the stream is the order of arrival); only
//     the seasonal slot is taken from the timestamp as given.
//   - Counter resets: models work on gauges. Feed cumulative counters
//     through a CounterRate first, which turns them into per-second rates
//     and treats a decrease as a reset, as Prometheus' rate() does.
package models
