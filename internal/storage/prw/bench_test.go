package prw

import (
	"fmt"
	"testing"

	"github.com/novacron/novacron"
)

// benchSeries builds n series of a realistic shape: a metric name and
// four labels, samplesPer samples each.
func benchSeries(n, samplesPer int) []novacron.Series {
	out := make([]novacron.Series, n)
	for i := range out {
		out[i].Labels = novacron.Labels{
			{Name: "__name__", Value: "vm_cpu_usage_ratio"},
			{Name: "host", Value: fmt.Sprintf("host-%03d", i%50)},
			{Name: "provider", Value: "libvirt"},
			{Name: "region", Value: "eu-west-1"},
			{Name: "vm_id", Value: fmt.Sprintf("vm-%06d", i)},
		}
		for j := range samplesPer {
			out[i].Samples = append(out[i].Samples, novacron.Sample{T: int64(1700000000000 + j*15000), V: float64(j) / 7})
		}
	}
	return out
}

// Compare runs with:
//
//	go test ./internal/storage/prw -run '^$' -bench . -count 6 | tee new.txt && benchstat old.txt new.txt
func BenchmarkAppendWriteRequest(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("series=%d", n), func(b *testing.B) {
			in := benchSeries(n, 4)
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				var err error
				buf, err = AppendWriteRequest(buf[:0], in)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

func BenchmarkDecodeWriteRequest(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("series=%d", n), func(b *testing.B) {
			raw, err := AppendWriteRequest(nil, benchSeries(n, 4))
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeWriteRequest(raw, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
