package main

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron/internal/storage/prw"
)

func TestFleetSeriesAreValidAndOrdered(t *testing.T) {
	f := newFleet(1000, 20, 1_700_000_000_000, 5000)
	require.Equal(t, int64(20_000), f.roundSamples())
	r1, r2 := f.batch(0, 1000, 1), f.batch(0, 1000, 2)
	require.NoError(t, prw.Validate(r1))
	require.NoError(t, prw.Validate(r2))
	seen := map[uint64]bool{}
	for i := range r1 {
		require.Len(t, r1[i].Samples, 20)
		// A series' rounds follow each other without gap or overlap.
		require.Equal(t, r1[i].Samples[19].T+5000, r2[i].Samples[0].T)
		require.Equal(t, "ingest", r1[i].Labels.Get("bench"))
		seen[r1[i].Labels.Hash()] = true
	}
	require.Len(t, seen, 1000, "series labels must be distinct")
	// Same series and round, same data: every scenario stores the same.
	require.Equal(t, r1[7], f.series(7, 1))
}

func TestAppendRequestMatchesPrw(t *testing.T) {
	for _, spr := range []int{1, 20} {
		f := newFleet(2000, spr, 1_700_000_000_000, 5000)
		f.prepareLabels()
		for _, c := range []struct{ lo, hi, r int }{{0, 1, 0}, {0, 500, 1}, {1500, 2000, 7}} {
			want, err := prw.AppendWriteRequest(nil, f.batch(c.lo, c.hi, c.r))
			require.NoError(t, err)
			require.Equal(t, want, f.appendRequest([]byte{}, c.lo, c.hi, c.r), "spr=%d %+v", spr, c)
		}
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-samples-per-record", "20,1", "-scenarios", "kafka-vm,memory-tsdb"})
	require.NoError(t, err)
	require.Equal(t, []int{20, 1}, o.shapes)
	require.Equal(t, []string{scenarioRaw, scenarioKafkaVM, scenarioMemoryTSDB}, o.scenarios)
	require.Equal(t, 5000, o.maxPollRecords, "defaults come from the configuration")

	_, err = parseFlags([]string{"-scenarios", "nope"})
	require.ErrorContains(t, err, `unknown scenario "nope"`)
	_, err = parseFlags([]string{"-samples-per-record", "0"})
	require.ErrorContains(t, err, "-samples-per-record")
}

func TestProcStatus(t *testing.T) {
	rss, err := procStatusKB(0, "VmRSS")
	require.NoError(t, err)
	require.Positive(t, rss)
	require.NoError(t, resetPeakRSS(0))
	hwm, err := procStatusKB(0, "VmHWM")
	require.NoError(t, err)
	require.GreaterOrEqual(t, hwm, rss/2)
	cpu, err := procCPUSeconds(os.Getpid())
	require.NoError(t, err)
	require.GreaterOrEqual(t, cpu, 0.0)
	busy, total, err := systemCPU()
	require.NoError(t, err)
	require.Greater(t, total, busy)
	_, err = procStatusKB(0, "NoSuchField")
	require.Error(t, err)
}

func TestRenderMarkdown(t *testing.T) {
	rep := &report{
		Date: "2026-01-02", Machine: machineInfo{CPUModel: "cpu", Cores: 2}, Series: 100, Target: 0.5,
		Results: []result{
			{Scenario: scenarioRaw, SamplesPerRecord: 20, Run: 1, Samples: 1000, Seconds: 1, SamplesPerSecond: 1000, RatioToRaw: 1,
				StoredSamples: 3000, StoredExpected: 3000, Usage: usage{CPUSeconds: map[string]float64{"victoria-metrics": 1}}},
			{Scenario: scenarioMemoryVM, SamplesPerRecord: 20, Run: 1, Samples: 1000, Seconds: 4, SamplesPerSecond: 250, RatioToRaw: 0.25,
				StoredSamples: 1999, StoredExpected: 2000, Worker: &workerResult{}, Usage: usage{PeakRSSBytes: map[string]int64{"novacron": 64 << 20}}},
		},
	}
	md := renderMarkdown(rep)
	require.Contains(t, md, "**25%** < 50%")
	require.Contains(t, md, "3000 / 3000 ✓")
	require.Contains(t, md, "1999 / 2000 ✗")
	require.Contains(t, md, "BenchmarkIngest/memory-vm/spr=20-2\t1000\t4000000.00 ns/op\t250 samples/s\t0.250 ratio-to-raw\t0.000 cpu-cost-ratio")
	require.Contains(t, md, `"scenario": "memory-vm"`)
}

// The pass-through the results README proposes relies on this: the
// concatenation of records' WriteRequests is the WriteRequest of all
// their series.
func TestConcatenatedWriteRequestsAreOneRequest(t *testing.T) {
	f := newFleet(50, 3, 1_700_000_000_000, 5000)
	batch := f.batch(0, 50, 1)
	var concat []byte
	for i := range batch {
		v, err := prw.AppendWriteRequest(nil, batch[i:i+1])
		require.NoError(t, err)
		concat = append(concat, v...)
	}
	whole, err := prw.AppendWriteRequest(nil, batch)
	require.NoError(t, err)
	require.Equal(t, whole, concat)
	got, err := prw.DecodeWriteRequest(concat, nil)
	require.NoError(t, err)
	require.Equal(t, batch, got)
}
