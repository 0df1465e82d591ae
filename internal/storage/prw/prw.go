package prw

import (
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/prometheus/prompb"

	"github.com/novacron/novacron"
)

// ErrInvalid is wrapped by every validation error of EncodeWriteRequest and
// DecodeWriteRequest, so callers can tell bad data (dead-letter it) from
// other failures with errors.Is.
var ErrInvalid = errors.New("invalid write request")

// writeRequestPool holds WriteRequests whose Timeseries, Labels and Samples
// slices are reused between encodes, so a steady stream of batches of
// similar shape encodes without allocating.
var writeRequestPool = sync.Pool{New: func() any { return new(prompb.WriteRequest) }}

func getWriteRequest() *prompb.WriteRequest { return writeRequestPool.Get().(*prompb.WriteRequest) }

// putWriteRequest clears the strings the request points to (so the pool
// does not keep callers' label strings alive) and returns it to the pool.
func putWriteRequest(wr *prompb.WriteRequest) {
	for i := range wr.Timeseries {
		ts := &wr.Timeseries[i]
		clear(ts.Labels)
		// Drop exemplars, histograms and unknown fields a decode may have
		// left, so the next encode writes only labels and samples.
		*ts = prompb.TimeSeries{Labels: ts.Labels[:0], Samples: ts.Samples[:0]}
	}
	*wr = prompb.WriteRequest{Timeseries: wr.Timeseries[:0]}
	writeRequestPool.Put(wr)
}

// AppendWriteRequest validates series, encodes them as one remote-write
// WriteRequest (raw protobuf, not snappy-compressed) appended to dst and
// returns the extended slice. On error dst is returned unchanged in length
// and the error wraps ErrInvalid, naming the offending series and rule.
//
// AppendWriteRequest does not retain series. It is safe for concurrent use.
func AppendWriteRequest(dst []byte, series []novacron.Series) ([]byte, error) {
	if err := Validate(series); err != nil {
		return dst, err
	}
	wr := getWriteRequest()
	defer putWriteRequest(wr)
	wr.Timeseries = growTimeseries(wr.Timeseries, len(series))
	for i, s := range series {
		ts := &wr.Timeseries[i]
		for _, l := range s.Labels {
			ts.Labels = append(ts.Labels, prompb.Label{Name: l.Name, Value: l.Value})
		}
		for _, smp := range s.Samples {
			ts.Samples = append(ts.Samples, prompb.Sample{Timestamp: smp.T, Value: smp.V})
		}
	}
	n := wr.Size()
	start := len(dst)
	dst = growBytes(dst, n)
	if _, err := wr.MarshalToSizedBuffer(dst[start : start+n]); err != nil {
		return dst[:start], fmt.Errorf("marshal write request: %w", err)
	}
	return dst, nil
}

// DecodeWriteRequest parses a raw (not snappy-compressed) remote-write
// WriteRequest, validates every series with Validate, and appends the
// series to dst, returning the extended slice. The returned series own
// their memory: nothing points into b. Their label strings share one
// allocation holding the request's label bytes, so a label kept after the
// series are dropped keeps the others' bytes alive (clone it with
// strings.Clone to keep it alone). It decodes without prompb and makes
// four allocations per call (label bytes, labels and samples of all
// series, and a closure) besides growing dst. Exemplars and metadata
// are ignored;
// native histograms are rejected because NovaCron stores float samples
// only.
//
// Errors wrap ErrInvalid and read as a dead-letter reason, for example
// `series 2 (cpu_seconds_total{vm_id="a"}): label names not sorted: "b" after "c"`.
// On error dst is returned with its original length.
func DecodeWriteRequest(b []byte, dst []novacron.Series) ([]novacron.Series, error) {
	sc, err := ScanWriteRequest(b)
	if err != nil {
		return dst, err
	}
	return decodeChecked(b, sc, dst), nil
}

// Validate checks series against the rules remote-write receivers enforce
// and returns the first problem found, wrapping ErrInvalid:
//
//   - at least one series;
//   - every series has a non-empty metric name (__name__) matching
//     [a-zA-Z_:][a-zA-Z0-9_:]*;
//   - every label name matches [a-zA-Z_][a-zA-Z0-9_]* (names starting with
//     "__" are reserved but allowed, as in Prometheus);
//   - label values are valid UTF-8 and not empty (an empty value means "no
//     such label" to every Prometheus-compatible store);
//   - labels are sorted by name with no duplicates;
//   - every series has at least one sample, and timestamps never decrease.
func Validate(series []novacron.Series) error {
	if len(series) == 0 {
		return fmt.Errorf("%w: no series", ErrInvalid)
	}
	for i, s := range series {
		if err := validateSeries(i, s); err != nil {
			return err
		}
	}
	return nil
}

func validateSeries(i int, s novacron.Series) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: series %d (%s): %s", ErrInvalid, i, s.Labels.String(), fmt.Sprintf(format, args...))
	}
	if len(s.Labels) == 0 {
		return fail("no labels")
	}
	name := ""
	for j, l := range s.Labels {
		if !IsValidLabelName(l.Name) {
			return fail("invalid label name %q", l.Name)
		}
		if l.Value == "" {
			return fail("label %q has an empty value", l.Name)
		}
		if !utf8.ValidString(l.Value) {
			return fail("label %q has a value that is not valid UTF-8", l.Name)
		}
		if j > 0 {
			prev := s.Labels[j-1].Name
			if prev == l.Name {
				return fail("duplicate label name %q", l.Name)
			}
			if prev > l.Name {
				return fail("label names not sorted: %q after %q", l.Name, prev)
			}
		}
		if l.Name == novacron.MetricNameLabel {
			name = l.Value
		}
	}
	if name == "" {
		return fail("no metric name (label %s)", novacron.MetricNameLabel)
	}
	if !IsValidMetricName(name) {
		return fail("invalid metric name %q", name)
	}
	if len(s.Samples) == 0 {
		return fail("no samples")
	}
	for j := 1; j < len(s.Samples); j++ {
		if s.Samples[j].T < s.Samples[j-1].T {
			return fail("sample timestamps not in order: %d after %d", s.Samples[j].T, s.Samples[j-1].T)
		}
	}
	return nil
}

// IsValidLabelName reports whether name matches [a-zA-Z_][a-zA-Z0-9_]*,
// Prometheus' classic label-name rule that every remote-write receiver
// accepts.
func IsValidLabelName(name string) bool {
	return isValidLabelName(name)
}

// IsValidMetricName reports whether name matches [a-zA-Z_:][a-zA-Z0-9_:]*,
// Prometheus' classic metric-name rule.
func IsValidMetricName(name string) bool {
	return isValidMetricName(name)
}

// SampleCount returns the number of samples in series.
func SampleCount(series []novacron.Series) int {
	n := 0
	for _, s := range series {
		n += len(s.Samples)
	}
	return n
}

func growTimeseries(ts []prompb.TimeSeries, n int) []prompb.TimeSeries {
	if cap(ts) < n {
		ts = append(ts[:cap(ts)], make([]prompb.TimeSeries, n-cap(ts))...)
	}
	return ts[:n]
}

func growBytes(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}
