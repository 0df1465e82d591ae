package prw

import (
	"math"
	"testing"

	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
)

// maxFuzzInput caps fuzz inputs; real records are limited by the bus's
// max message size long before the decoder sees them.
const maxFuzzInput = 64 << 10

// FuzzDecodeWriteRequest checks that no input makes the decoder panic, and
// that whatever it accepts is valid and survives a re-encode unchanged.
//
//	go test ./internal/storage/prw -run '^$' -fuzz FuzzDecodeWriteRequest -fuzztime 30s
func FuzzDecodeWriteRequest(f *testing.F) {
	good, err := AppendWriteRequest(nil, testSeries())
	require.NoError(f, err)
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00})
	bad := prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:     []prompb.Label{{Name: "b", Value: "1"}, {Name: "a", Value: ""}},
		Histograms: []prompb.Histogram{{Timestamp: 1}},
	}}}
	b, err := bad.Marshal()
	require.NoError(f, err)
	f.Add(b)

	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > maxFuzzInput {
			t.Skip()
		}
		out, err := DecodeWriteRequest(in, nil)
		sc, scanErr := ScanWriteRequest(in)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			require.Empty(t, out)
			require.EqualError(t, scanErr, err.Error(), "scan and decode disagree")
			_, ok := fastScan(in)
			require.False(t, ok, "the fast scan accepted what the precise one refuses")
			return
		}
		require.NoError(t, scanErr)
		precise, err := preciseScan(in)
		require.NoError(t, err, "the fast scan accepted what the precise one refuses")
		require.Equal(t, precise, sc)
		require.Equal(t, SampleCount(out), sc.Samples)
		require.Len(t, out, sc.Series)
		// A plain request is forwarded as is: a receiver decoding it with
		// prompb must read exactly what NovaCron decoded.
		var wr prompb.WriteRequest
		perr := wr.Unmarshal(in)
		if sc.Plain {
			require.NoError(t, perr)
			require.Len(t, wr.Timeseries, len(out))
			for i, ts := range wr.Timeseries {
				require.Len(t, ts.Labels, len(out[i].Labels))
				for j, l := range ts.Labels {
					require.Equal(t, novacron.Label{Name: l.Name, Value: l.Value}, out[i].Labels[j])
				}
				require.Len(t, ts.Samples, len(out[i].Samples))
				for j, smp := range ts.Samples {
					require.Equal(t, smp.Timestamp, out[i].Samples[j].T)
					require.Equal(t, math.Float64bits(smp.Value), math.Float64bits(out[i].Samples[j].V))
				}
			}
		}
		require.NoError(t, Validate(out))
		enc, err := AppendWriteRequest(nil, out)
		require.NoError(t, err)
		again, err := DecodeWriteRequest(enc, nil)
		require.NoError(t, err)
		require.Equal(t, len(out), len(again))
		for i := range out {
			require.Equal(t, out[i].Labels, again[i].Labels)
			require.Equal(t, len(out[i].Samples), len(again[i].Samples))
		}
	})
}

// FuzzUnsnappy checks the snappy helper never panics nor exceeds its cap.
func FuzzUnsnappy(f *testing.F) {
	good, err := AppendWriteRequest(nil, testSeries())
	require.NoError(f, err)
	f.Add(AppendSnappy(nil, good))
	f.Add([]byte{0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > maxFuzzInput {
			t.Skip()
		}
		out, err := AppendUnsnappy(nil, in, 1<<20)
		if err == nil {
			require.LessOrEqual(t, len(out), 1<<20)
		}
	})
}
