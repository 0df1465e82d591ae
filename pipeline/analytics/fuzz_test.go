package analytics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/sim"
)

// FuzzRestore feeds arbitrary bytes to the snapshot decoder: it must
// return an error or a state the processor can snapshot again, never
// panic or allocate without bound.
func FuzzRestore(f *testing.F) {
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	sc := sim.NewDefaultConfig()
	sc.VMs, sc.Hosts, sc.Incidents = 1, 1, nil
	fl, err := sim.NewFleet(*sc, start)
	require.NoError(f, err)
	cfg := NewDefaultConfig()
	cfg.MaxClockSkew = 0
	p, err := NewProcessor(cfg, nil, Source)
	require.NoError(f, err)
	// Seeds from three series (a detected and forecast ratio, a detected
	// rate, one whose forecast history is full): a few kilobytes, because
	// the fuzzer minimises every new input byte by byte, and a seed of the
	// whole VM's tens of kilobytes keeps it minimising for minutes.
	keep := map[string]bool{"novacron_vm_cpu_usage_ratio": true, "novacron_vm_disk_read_bytes_total": true}
	var out Output
	require.NoError(f, fl.Generate(start, start.Add(13*time.Hour), 5*time.Minute, func(b []novacron.Series) error {
		for _, s := range b {
			if keep[s.Labels.Get(novacron.MetricNameLabel)] {
				p.Process(0, s, &out)
			}
		}
		out.Reset()
		return nil
	}))
	snap, err := p.Snapshot(0)
	require.NoError(f, err)
	f.Add(snap)
	f.Add(snap[:len(snap)/2])
	f.Add([]byte(snapshotMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<20 {
			return
		}
		q, err := NewProcessor(cfg, nil, Source)
		require.NoError(t, err)
		if _, err := q.Restore(3, b); err != nil {
			return
		}
		_, err = q.Snapshot(3)
		require.NoError(t, err)
	})
}

// TestMetricsLint checks the stage's metrics against the Prometheus
// naming and help conventions.
func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	newMetrics(reg)
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}

// TestAppendBandMatchesDerived: the batched band points equal the ones
// derived builds one by one (names, labels, samples), for a gauge and a
// counter converted to a rate.
func TestAppendBandMatchesDerived(t *testing.T) {
	p, err := NewProcessor(NewDefaultConfig(), nil, Source)
	require.NoError(t, err)
	for _, tc := range []struct {
		metric string
		rate   bool
	}{{"novacron_vm_cpu_usage_ratio", false}, {"novacron_vm_disk_read_bytes_total", true}} {
		ls := novacron.Labels{{Name: "__name__", Value: tc.metric}, {Name: "host", Value: "h1"}, {Name: "vm_id", Value: "vm-1"}}
		st := &seriesState{labels: ls, rate: tc.rate}
		got := p.appendBand(nil, st, 42, 1, 2, 3, 4)
		in := InputName(tc.metric, tc.rate)
		want := []novacron.Series{
			p.derived(ls, in, KindBaseline, "", "", 42, 1),
			p.derived(ls, in, KindBaselineLower, "", "", 42, 2),
			p.derived(ls, in, KindBaselineUpper, "", "", 42, 3),
			p.derived(ls, in, KindAnomalyScore, "", "", 42, 4),
		}
		require.Equal(t, want, got)
		require.Equal(t, tc.metric, ls.Get("__name__"), "source labels untouched")
	}
}
