package main

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/novacron/novacron"
)

// metricNames are the metric names of the generated series, shaped like
// NovaCron's VM catalogue.
var metricNames = []string{
	"bench_vm_cpu_usage_ratio",
	"bench_vm_memory_used_bytes",
	"bench_vm_disk_read_bytes_total",
	"bench_vm_disk_write_bytes_total",
	"bench_vm_disk_read_ops_total",
	"bench_vm_disk_write_ops_total",
	"bench_vm_network_receive_bytes_total",
	"bench_vm_network_transmit_bytes_total",
	"bench_vm_network_receive_packets_total",
	"bench_vm_network_transmit_packets_total",
}

// benchLabel marks every generated series, so the stored count can be
// checked with one selector.
const benchLabel = "ingest"

// fleet generates the benchmark's series: len(metricNames) metrics for
// each of series/len(metricNames) VMs, labels sorted by name, and samples
// in rounds. Round r holds, for every series, samplesPerSeries samples at
// timestamps base + (r*samplesPerSeries + j)*step. Values are a cheap
// deterministic function of series and time, so every scenario stores the
// same data.
type fleet struct {
	labels           []novacron.Labels
	samplesPerSeries int
	baseMs, stepMs   int64
	encodedLabels    [][]byte // by series; see labelBytes
}

func newFleet(series, samplesPerSeries int, baseMs, stepMs int64) *fleet {
	f := &fleet{labels: make([]novacron.Labels, series), samplesPerSeries: samplesPerSeries, baseMs: baseMs, stepMs: stepMs}
	for i := range series {
		vm := i / len(metricNames)
		f.labels[i] = novacron.Labels{
			{Name: novacron.MetricNameLabel, Value: metricNames[i%len(metricNames)]},
			{Name: "bench", Value: benchLabel},
			{Name: "host", Value: fmt.Sprintf("host-%04d", vm/25)},
			{Name: "vm_id", Value: fmt.Sprintf("vm-%06d", vm)},
			{Name: "zone", Value: fmt.Sprintf("zone-%d", vm%3)},
		}
	}
	return f
}

// series returns series i with its samples of round r, in fresh memory.
func (f *fleet) series(i, r int) novacron.Series {
	s := novacron.Series{Labels: f.labels[i], Samples: make([]novacron.Sample, f.samplesPerSeries)}
	for j := range s.Samples {
		k := int64(r*f.samplesPerSeries + j)
		s.Samples[j] = novacron.Sample{T: f.baseMs + k*f.stepMs, V: value(i, k)}
	}
	return s
}

// batch returns series [from, to) of round r.
func (f *fleet) batch(from, to, r int) []novacron.Series {
	out := make([]novacron.Series, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, f.series(i, r))
	}
	return out
}

// roundSamples is the number of samples in one round.
func (f *fleet) roundSamples() int64 { return int64(len(f.labels) * f.samplesPerSeries) }

// value is a gauge-like value: a per-series level plus hashed noise of
// up to ±10%, with three decimals, as a collector reports it.
func value(i int, k int64) float64 {
	level := float64(splitmix(uint64(i))%1000) + 1
	noise := int64(splitmix(uint64(i)<<32^uint64(k))%200_001) - 100_000 // ±100000 thousandths of a percent
	return float64(int64(level*1000)+int64(level)*noise/1000) / 1000
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// labelBytes returns the protobuf encoding of series i's labels as
// TimeSeries fields (repeated Label labels = 1), computed once.
func (f *fleet) labelBytes(i int) []byte {
	if f.encodedLabels == nil {
		f.encodedLabels = make([][]byte, len(f.labels))
	}
	if b := f.encodedLabels[i]; b != nil {
		return b
	}
	var b []byte
	for _, l := range f.labels[i] {
		n := 1 + uvarintLen(uint64(len(l.Name))) + len(l.Name) + 1 + uvarintLen(uint64(len(l.Value))) + len(l.Value)
		b = append(b, 0x0a)
		b = binary.AppendUvarint(b, uint64(n))
		b = append(b, 0x0a)
		b = binary.AppendUvarint(b, uint64(len(l.Name)))
		b = append(b, l.Name...)
		b = append(b, 0x12)
		b = binary.AppendUvarint(b, uint64(len(l.Value)))
		b = append(b, l.Value...)
	}
	f.encodedLabels[i] = b
	return b
}

// appendRequest appends the remote-write WriteRequest (raw protobuf) of
// series [lo, hi) of round r: the bytes prw.AppendWriteRequest makes of
// f.batch(lo, hi, r), written directly and much faster, because the raw
// baseline's requests are set up for every round before the timed run.
// It is not safe for concurrent use until labelBytes was called for
// every series (prepareLabels).
func (f *fleet) appendRequest(dst []byte, lo, hi, r int) []byte {
	for i := lo; i < hi; i++ {
		lb := f.labelBytes(i)
		size := len(lb)
		for j := range f.samplesPerSeries {
			k := int64(r*f.samplesPerSeries + j)
			n := sampleLen(f.baseMs+k*f.stepMs, value(i, k))
			size += 1 + uvarintLen(uint64(n)) + n
		}
		dst = append(dst, 0x0a)
		dst = binary.AppendUvarint(dst, uint64(size))
		dst = append(dst, lb...)
		for j := range f.samplesPerSeries {
			k := int64(r*f.samplesPerSeries + j)
			t, v := f.baseMs+k*f.stepMs, value(i, k)
			dst = append(dst, 0x12)
			dst = binary.AppendUvarint(dst, uint64(sampleLen(t, v)))
			if v != 0 {
				dst = append(dst, 0x09)
				dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
			}
			if t != 0 {
				dst = append(dst, 0x10)
				dst = binary.AppendUvarint(dst, uint64(t))
			}
		}
	}
	return dst
}

// prepareLabels encodes every series' labels, so that appendRequest can
// then run concurrently.
func (f *fleet) prepareLabels() {
	for i := range f.labels {
		f.labelBytes(i)
	}
}

// sampleLen is the size of an encoded Sample{Value: v, Timestamp: t}; as
// in gogo protobuf, zero fields are left out.
func sampleLen(t int64, v float64) int {
	n := 0
	if v != 0 {
		n += 9
	}
	if t != 0 {
		n += 1 + uvarintLen(uint64(t))
	}
	return n
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
