package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/snappy"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/storage/prw"
)

// These benchmarks split the per-sample CPU cost of what the ingest stage
// and the remote-write writer do with one poll of records (5000 records,
// one series each, as the publish sink writes them): decode every record
// (ingest), encode the batch again and snappy it (remote write). The
// pass-through steps show what forwarding the records' bytes would cost
// instead: a WriteRequest is a repeated field, so concatenated
// WriteRequests are one WriteRequest. The ingest stage now scans each
// record (step=scan) and joins the bytes (step=concat); the remote-write
// writer compresses them (step=snappy-fast, which prw.AppendSnappy is
// now); a store that needs series decodes the joined batch in a sender
// worker (step=decode-batch).

const pollRecords = 5000

func pollOf(b *testing.B, spr int) (values [][]byte, series []novacron.Series, samples int) {
	b.Helper()
	f := newFleet(pollRecords, spr, time.Now().UnixMilli(), 5000)
	for i := range pollRecords {
		s := f.series(i, 1)
		v, err := prw.AppendWriteRequest(nil, []novacron.Series{s})
		if err != nil {
			b.Fatal(err)
		}
		values = append(values, v)
		series = append(series, s)
	}
	return values, series, pollRecords * spr
}

func perSample(b *testing.B, samples int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(samples), "ns/sample")
}

func BenchmarkRecode(b *testing.B) {
	for _, spr := range []int{1, 20} {
		values, series, samples := pollOf(b, spr)
		raw, err := prw.AppendWriteRequest(nil, series)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("spr=%d/step=decode", spr), func(b *testing.B) {
			b.ReportAllocs()
			var out []novacron.Series
			for b.Loop() {
				out = out[:0]
				for _, v := range values {
					if out, err = prw.DecodeWriteRequest(v, out); err != nil {
						b.Fatal(err)
					}
				}
			}
			perSample(b, samples)
		})
		b.Run(fmt.Sprintf("spr=%d/step=encode", spr), func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				if buf, err = prw.AppendWriteRequest(buf[:0], series); err != nil {
					b.Fatal(err)
				}
			}
			perSample(b, samples)
		})
		b.Run(fmt.Sprintf("spr=%d/step=snappy-better", spr), func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, snappy.MaxEncodedLen(len(raw)))
			for b.Loop() {
				buf = snappy.Encode(buf[:cap(buf)], raw) // what prw.AppendSnappy used before
			}
			perSample(b, samples)
		})
		b.Run(fmt.Sprintf("spr=%d/step=snappy-fast", spr), func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, s2.MaxEncodedLen(len(raw)))
			for b.Loop() {
				buf = s2.EncodeSnappy(buf[:cap(buf)], raw)
			}
			perSample(b, samples)
		})
		b.Run(fmt.Sprintf("spr=%d/step=scan", spr), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, v := range values {
					if _, err := prw.ScanWriteRequest(v); err != nil {
						b.Fatal(err)
					}
				}
			}
			perSample(b, samples)
		})
		b.Run(fmt.Sprintf("spr=%d/step=decode-batch", spr), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := prw.DecodeWriteRequest(raw, nil); err != nil {
					b.Fatal(err)
				}
			}
			perSample(b, samples)
		})
		b.Run(fmt.Sprintf("spr=%d/step=concat", spr), func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				buf = buf[:0]
				for _, v := range values {
					buf = append(buf, v...)
				}
			}
			perSample(b, samples)
		})
	}
}
