package prw

import (
	"math"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
)

func series(name string, kv ...string) novacron.Labels {
	ls := novacron.Labels{{Name: novacron.MetricNameLabel, Value: name}}
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, novacron.Label{Name: kv[i], Value: kv[i+1]})
	}
	return ls.Sort()
}

func testSeries() []novacron.Series {
	return []novacron.Series{
		{
			Labels:  series("vm_cpu_seconds_total", "vm_id", "vm-1", "provider", "sim"),
			Samples: []novacron.Sample{{T: 1000, V: 1.5}, {T: 2000, V: 2.5}, {T: 3000, V: math.Inf(1)}},
		},
		{
			Labels:  series("vm_memory_bytes", "vm_id", "vm-2", "host", "h-1"),
			Samples: []novacron.Sample{{T: -5, V: -1e300}},
		},
	}
}

func TestRoundTrip(t *testing.T) {
	in := testSeries()
	b, err := AppendWriteRequest(nil, in)
	require.NoError(t, err)

	// The bytes are a plain prompb.WriteRequest.
	var wr prompb.WriteRequest
	require.NoError(t, wr.Unmarshal(b))
	require.Len(t, wr.Timeseries, 2)
	require.Equal(t, "vm_id", wr.Timeseries[0].Labels[2].Name)
	require.Equal(t, int64(2000), wr.Timeseries[0].Samples[1].Timestamp)

	out, err := DecodeWriteRequest(b, nil)
	require.NoError(t, err)
	require.Equal(t, in, out)

	// Appending keeps what was in dst.
	prefix := []byte("xyz")
	b2, err := AppendWriteRequest(prefix, in)
	require.NoError(t, err)
	require.Equal(t, "xyz", string(b2[:3]))
	require.Equal(t, b, b2[3:])

	kept := []novacron.Series{{Labels: series("kept"), Samples: []novacron.Sample{{T: 1, V: 1}}}}
	out, err = DecodeWriteRequest(b, kept)
	require.NoError(t, err)
	require.Len(t, out, 3)
	require.Equal(t, "kept", out[0].Labels.Get(novacron.MetricNameLabel))
}

func TestRoundTripNaN(t *testing.T) {
	in := []novacron.Series{{Labels: series("up"), Samples: []novacron.Sample{{T: 1, V: math.NaN()}}}}
	b, err := AppendWriteRequest(nil, in)
	require.NoError(t, err)
	out, err := DecodeWriteRequest(b, nil)
	require.NoError(t, err)
	require.True(t, math.IsNaN(out[0].Samples[0].V))
}

// TestPoolDoesNotLeakFields checks that a decode that saw exemplars and
// histograms does not leave them in a pooled request a later encode uses.
func TestPoolDoesNotLeakFields(t *testing.T) {
	wr := prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:    []prompb.Label{{Name: "__name__", Value: "x"}},
		Samples:   []prompb.Sample{{Timestamp: 1, Value: 1}},
		Exemplars: []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "abc"}}, Value: 1, Timestamp: 1}},
	}}}
	raw, err := wr.Marshal()
	require.NoError(t, err)
	for range 10 {
		_, err := DecodeWriteRequest(raw, nil)
		require.NoError(t, err)
		b, err := AppendWriteRequest(nil, testSeries())
		require.NoError(t, err)
		require.NotContains(t, string(b), "trace_id")
	}
}

func TestDecodeInvalid(t *testing.T) {
	f := func(name string, ts []prompb.TimeSeries, wantErr string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			wr := prompb.WriteRequest{Timeseries: ts}
			b, err := wr.Marshal()
			require.NoError(t, err)
			out, err := DecodeWriteRequest(b, nil)
			require.ErrorIs(t, err, ErrInvalid)
			require.ErrorContains(t, err, wantErr)
			require.Empty(t, out)
		})
	}
	lbl := func(kv ...string) []prompb.Label {
		var ls []prompb.Label
		for i := 0; i+1 < len(kv); i += 2 {
			ls = append(ls, prompb.Label{Name: kv[i], Value: kv[i+1]})
		}
		return ls
	}
	one := []prompb.Sample{{Timestamp: 1, Value: 1}}

	f("no series", nil, "no series")
	f("no labels", []prompb.TimeSeries{{Samples: one}}, "series 0 ({}): no labels")
	f("no metric name", []prompb.TimeSeries{{Labels: lbl("vm_id", "a"), Samples: one}}, `no metric name (label __name__)`)
	f("bad metric name", []prompb.TimeSeries{{Labels: lbl("__name__", "1cpu"), Samples: one}}, `invalid metric name "1cpu"`)
	f("metric name with dash", []prompb.TimeSeries{{Labels: lbl("__name__", "cpu-usage"), Samples: one}}, `invalid metric name "cpu-usage"`)
	f("bad label name", []prompb.TimeSeries{{Labels: lbl("__name__", "up", "vm-id", "a"), Samples: one}}, `invalid label name "vm-id"`)
	f("label name with colon", []prompb.TimeSeries{{Labels: lbl("__name__", "up", "a:b", "a"), Samples: one}}, `invalid label name "a:b"`)
	f("empty label name", []prompb.TimeSeries{{Labels: lbl("", "x", "__name__", "up"), Samples: one}}, `invalid label name ""`)
	f("empty label value", []prompb.TimeSeries{{Labels: lbl("__name__", "up", "vm_id", ""), Samples: one}}, `label "vm_id" has an empty value`)
	f("bad utf8", []prompb.TimeSeries{{Labels: lbl("__name__", "up", "vm_id", "\xff"), Samples: one}}, `not valid UTF-8`)
	f("unsorted", []prompb.TimeSeries{{Labels: lbl("__name__", "up", "z", "1", "a", "2"), Samples: one}}, `label names not sorted: "a" after "z"`)
	f("duplicate", []prompb.TimeSeries{{Labels: lbl("__name__", "up", "a", "1", "a", "2"), Samples: one}}, `duplicate label name "a"`)
	f("no samples", []prompb.TimeSeries{{Labels: lbl("__name__", "up")}}, `series 0 (up{}): no samples`)
	f("histogram only", []prompb.TimeSeries{{Labels: lbl("__name__", "up"), Histograms: []prompb.Histogram{{Timestamp: 1}}}}, `native histogram samples are not supported`)
	f("samples out of order", []prompb.TimeSeries{{Labels: lbl("__name__", "up"), Samples: []prompb.Sample{{Timestamp: 2}, {Timestamp: 1}}}}, `sample timestamps not in order: 1 after 2`)
	f("second series bad", []prompb.TimeSeries{
		{Labels: lbl("__name__", "up"), Samples: one},
		{Labels: lbl("__name__", "up", "vm_id", "a", "host", "h"), Samples: one},
	}, `series 1 (up{vm_id="a",host="h"}): label names not sorted`)
}

func TestDecodeMalformed(t *testing.T) {
	f := func(b []byte) {
		t.Helper()
		_, err := DecodeWriteRequest(b, nil)
		require.ErrorIs(t, err, ErrInvalid)
		require.ErrorContains(t, err, "malformed protobuf")
	}
	f([]byte{0x0a, 0x10, 0x01})            // length beyond the end
	f([]byte{0xff, 0xff, 0xff})            // bad varint tag
	f([]byte("this is not a protobuf...")) // text
}

func TestEncodeInvalid(t *testing.T) {
	dst := []byte("abc")
	out, err := AppendWriteRequest(dst, []novacron.Series{{Labels: series("up", "Bad-Name", "x"), Samples: []novacron.Sample{{T: 1}}}})
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, `invalid label name "Bad-Name"`)
	require.Equal(t, "abc", string(out))

	_, err = AppendWriteRequest(nil, nil)
	require.ErrorContains(t, err, "no series")
}

func TestNames(t *testing.T) {
	f := func(name string, label, metric bool) {
		t.Helper()
		require.Equal(t, label, IsValidLabelName(name), "label name %q", name)
		require.Equal(t, metric, IsValidMetricName(name), "metric name %q", name)
	}
	f("", false, false)
	f("a", true, true)
	f("_", true, true)
	f("__name__", true, true)
	f("A9_b", true, true)
	f("9a", false, false)
	f("a:b", false, true)
	f(":a", false, true)
	f("a-b", false, false)
	f("a.b", false, false)
	f("é", false, false)
}

func TestSnappy(t *testing.T) {
	raw, err := AppendWriteRequest(nil, testSeries())
	require.NoError(t, err)
	comp := AppendSnappy([]byte("p"), raw)
	require.Equal(t, byte('p'), comp[0])

	dec, err := AppendUnsnappy([]byte("q"), comp[1:], 0)
	require.NoError(t, err)
	require.Equal(t, append([]byte("q"), raw...), dec)

	_, err = AppendUnsnappy(nil, comp[1:], len(raw)-1)
	require.ErrorContains(t, err, "more than the limit")

	_, err = AppendUnsnappy(nil, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0)
	require.ErrorIs(t, err, ErrInvalid)

	big := strings.Repeat("a", 1000)
	_, err = AppendUnsnappy(nil, AppendSnappy(nil, []byte(big))[:5], 0)
	require.ErrorIs(t, err, ErrInvalid, "truncated block")
}

func TestSampleCount(t *testing.T) {
	require.Equal(t, 4, SampleCount(testSeries()))
	require.Equal(t, 0, SampleCount(nil))
}
