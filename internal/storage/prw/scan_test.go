package prw

import (
	"math"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
)

func TestScanCountsAndPlain(t *testing.T) {
	raw, err := AppendWriteRequest(nil, testSeries())
	require.NoError(t, err)
	sc, err := ScanWriteRequest(raw)
	require.NoError(t, err)
	require.Equal(t, 2, sc.Series)
	require.Equal(t, 4, sc.Samples)
	require.True(t, sc.Plain)

	f := func(name string, wr prompb.WriteRequest) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			b, err := wr.Marshal()
			require.NoError(t, err)
			sc, err := ScanWriteRequest(b)
			require.NoError(t, err)
			require.False(t, sc.Plain)
			require.Equal(t, 1, sc.Series)
			require.Equal(t, 1, sc.Samples)
		})
	}
	ts := func() prompb.TimeSeries {
		return prompb.TimeSeries{Labels: []prompb.Label{{Name: "__name__", Value: "up"}}, Samples: []prompb.Sample{{Timestamp: 1, Value: 1}}}
	}
	withExemplar := ts()
	withExemplar.Exemplars = []prompb.Exemplar{{Value: 1, Timestamp: 1}}
	f("exemplar", prompb.WriteRequest{Timeseries: []prompb.TimeSeries{withExemplar}})
	withHistogram := ts()
	withHistogram.Histograms = []prompb.Histogram{{Timestamp: 1}}
	f("histogram beside samples", prompb.WriteRequest{Timeseries: []prompb.TimeSeries{withHistogram}})
	f("metadata", prompb.WriteRequest{Timeseries: []prompb.TimeSeries{ts()},
		Metadata: []prompb.MetricMetadata{{MetricFamilyName: "up", Help: "h"}}})
}

func TestScanDoesNotAllocate(t *testing.T) {
	raw, err := AppendWriteRequest(nil, benchSeries(50, 3))
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ScanWriteRequest(raw); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)
}

// TestConcatenatedRequestsAreOneRequest checks what forwarding relies on:
// the bytes of plain requests, joined, are the request of all their
// series.
func TestConcatenatedRequestsAreOneRequest(t *testing.T) {
	a, err := AppendWriteRequest(nil, testSeries()[:1])
	require.NoError(t, err)
	b, err := AppendWriteRequest(nil, testSeries()[1:])
	require.NoError(t, err)
	joined := append(append([]byte(nil), a...), b...)
	whole, err := AppendWriteRequest(nil, testSeries())
	require.NoError(t, err)
	require.Equal(t, whole, joined)
	sc, err := ScanWriteRequest(joined)
	require.NoError(t, err)
	require.Equal(t, Scan{Series: 2, Samples: 4, Plain: true, labels: 6}, sc)
	out, err := DecodeWriteRequest(joined, nil)
	require.NoError(t, err)
	require.Equal(t, testSeries(), out)
}

// TestDecodedSeriesDoNotShareSpace checks that the series sharing one
// allocation cannot overwrite each other when a caller appends.
func TestDecodedSeriesDoNotShareSpace(t *testing.T) {
	raw, err := AppendWriteRequest(nil, testSeries())
	require.NoError(t, err)
	out, err := DecodeWriteRequest(raw, nil)
	require.NoError(t, err)
	out[0].Labels = append(out[0].Labels, novacron.Label{Name: "zz", Value: "x"})
	out[0].Samples = append(out[0].Samples, novacron.Sample{T: 9999, V: 1})
	require.Equal(t, testSeries()[1], out[1])
	// Nothing points into raw.
	clear(raw)
	require.Equal(t, "vm-1", out[0].Labels.Get("vm_id"))
}

// TestDecodeLastFieldWins checks repeated scalar fields read as protobuf
// says (the last one), as a receiver would read the forwarded bytes.
func TestDecodeLastFieldWins(t *testing.T) {
	label := func(name, value string) []byte {
		return append(appendBytesField(appendBytesField(nil, 1, []byte("ignored")), 1, []byte(name)), appendBytesField(nil, 2, []byte(value))...)
	}
	sample := []byte{0x10, 0x05, 0x10, 0x07, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f} // t=5, t=7, v=1.0
	ts := appendBytesField(nil, 1, label("__name__", "up"))
	ts = appendBytesField(ts, 2, sample)
	req := appendBytesField(nil, 1, ts)
	out, err := DecodeWriteRequest(req, nil)
	require.NoError(t, err)
	require.Equal(t, []novacron.Series{{Labels: series("up"), Samples: []novacron.Sample{{T: 7, V: 1}}}}, out)

	var wr prompb.WriteRequest
	require.NoError(t, wr.Unmarshal(req))
	require.Equal(t, int64(7), wr.Timeseries[0].Samples[0].Timestamp)
	require.Equal(t, "__name__", wr.Timeseries[0].Labels[0].Name)
}

func TestScanMalformed(t *testing.T) {
	f := func(name string, b []byte, want string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			_, err := ScanWriteRequest(b)
			require.ErrorIs(t, err, ErrInvalid)
			require.ErrorContains(t, err, "malformed protobuf: ")
			require.ErrorContains(t, err, want)
		})
	}
	f("truncated length", []byte{0x0a, 0x10, 0x01}, "length beyond the end")
	f("truncated varint", []byte{0x0a, 0x80}, "unexpected end")
	f("overlong varint", []byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "overflows")
	f("field zero", []byte{0x02, 0x00}, "field number 0")
	f("group", []byte{0x0b}, "wire type 3")
	f("series as varint", []byte{0x08, 0x01}, "WriteRequest field 1 has wire type 0")
	f("label as varint", appendBytesField(nil, 1, []byte{0x08, 0x01}), "TimeSeries field 1 has wire type 0")
	f("timestamp as fixed64", appendBytesField(nil, 1, appendBytesField(nil, 2, []byte{0x11, 0, 0, 0, 0, 0, 0, 0, 0})), "Sample field 2 has wire type 1")
	f("value as varint", appendBytesField(nil, 1, appendBytesField(nil, 2, []byte{0x08, 0x01})), "Sample field 1 has wire type 0")
	f("label name as varint", appendBytesField(nil, 1, appendBytesField(nil, 1, []byte{0x08, 0x01})), "Label field 1 has wire type 0")
	f("truncated fixed64", appendBytesField(nil, 1, appendBytesField(nil, 2, []byte{0x09, 0, 0})), "unexpected end")
}

func TestScanNaNAndInf(t *testing.T) {
	in := []novacron.Series{{Labels: series("up"), Samples: []novacron.Sample{{T: 1, V: math.NaN()}, {T: 2, V: math.Inf(-1)}}}}
	raw, err := AppendWriteRequest(nil, in)
	require.NoError(t, err)
	out, err := DecodeWriteRequest(raw, nil)
	require.NoError(t, err)
	require.True(t, math.IsNaN(out[0].Samples[0].V))
	require.True(t, math.IsInf(out[0].Samples[1].V, -1))
}

func appendBytesField(dst []byte, num int, val []byte) []byte {
	dst = append(dst, byte(num<<3|2))
	for l := uint(len(val)); ; l >>= 7 {
		if l < 0x80 {
			dst = append(dst, byte(l))
			break
		}
		dst = append(dst, byte(l)|0x80)
	}
	return append(dst, val...)
}
