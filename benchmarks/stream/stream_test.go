package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron/internal/testserver"
	"github.com/novacron/novacron/pipeline/analytics"
)

// TestSmoke runs the end-to-end mode at a tiny rate against the test
// servers, so the command does not rot: the stage must keep up, level
// shifts must open anomalies that are joined to their samples, and the
// derived series must reach VictoriaMetrics.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Kafka and VictoriaMetrics")
	}
	brokers := testserver.Kafka(t)
	vm := testserver.NewVictoriaMetrics(t)
	out := filepath.Join(t.TempDir(), "results.md")
	o, err := parseFlags([]string{"-mode", "e2e", "-vms", "20", "-rate", "4000", "-measure", "6s", "-ramp", "",
		"-warmup.steps", "205", "-inject", "8", "-peer.duration", "2s", "-drain.wait", "5s", "-out", out})
	require.NoError(t, err)
	o.brokers, o.vmURL = brokers, vm.URL()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var log bytes.Buffer
	rep, err := run(ctx, o, &log)
	require.NoError(t, err, log.String())

	e := rep.E2E
	require.NotNil(t, e.Peer)
	require.Positive(t, e.Peer.Latency.N, "the peer read its records back")
	require.Len(t, e.Phases, 1)
	p := e.Phases[0]
	require.InDelta(t, 4000, p.Load.Rate, 400, "the pacer holds the rate")
	require.True(t, p.keptUp(4000), "the stage keeps up with 4k samples/s: %+v", p)
	require.Positive(t, p.Injected)
	require.Positive(t, p.Opened, "some level shift opened an anomaly")
	require.Equal(t, p.Opened, p.Latency.N)
	require.Positive(t, p.Latency.P50)
	require.LessOrEqual(t, p.Latency.P50, p.Latency.P99)
	require.Positive(t, e.Final.Derived, "the stage wrote derived samples")
	require.Empty(t, e.VMError)
	require.Equal(t, e.Final.Derived, e.VMDerivedSamples, "VictoriaMetrics holds every derived sample written")
	require.Positive(t, e.VMSeriesByKind["anomaly_score"])

	md, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Contains(t, string(md), "| measured 4.0k/s | 4.0k |")
	require.Contains(t, string(md), `"end_to_end"`)
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-ramp", "150000, 200000", "-kafka.brokers", "a:1,b:2"})
	require.NoError(t, err)
	require.Equal(t, []float64{150000, 200000}, o.ramp)
	require.Equal(t, []string{"a:1", "b:2"}, o.brokers)
	require.Equal(t, modeAll, o.mode)

	_, err = parseFlags([]string{"-mode", "nope", "-ramp", "x"})
	require.ErrorContains(t, err, `-mode: "nope"`)
	require.ErrorContains(t, err, `-ramp: "x"`)
}

func TestMemorySmall(t *testing.T) {
	m, err := runMemory(400, 2, 6, t.Logf)
	require.NoError(t, err)
	require.Equal(t, 400*25+10*10, m.Series)
	require.Equal(t, m.Series, m.Detected+m.Unmodelled, "every modelled series of the default rules has a detector")
	require.Positive(t, m.Forecast)
	// The parts are measured, not derived from each other: they must add
	// up to no more than the whole and each be positive.
	require.Positive(t, m.LabelsBytes)
	require.Positive(t, m.overheadBytes())
	require.Positive(t, m.modelStateBytes())
	require.Greater(t, m.HeapBytes, m.BareHeapBytes)
	require.Positive(t, m.SnapshotBytes)
	h := analytics.NewDefaultConfig().Forecast.History
	require.InDelta(t, 4*h, m.ForecastBytes, 64, "%d float32 points", h)
}
