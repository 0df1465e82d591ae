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
	var out Output
	require.NoError(f, fl.Generate(start, start.Add(2*time.Hour), time.Minute, func(b []novacron.Series) error {
		for _, s := range b {
			p.Process(0, s, &out)
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
