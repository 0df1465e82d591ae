package app

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/sim"
	"github.com/novacron/novacron/internal/config"
	"github.com/novacron/novacron/internal/storage"
	"github.com/novacron/novacron/internal/storage/promapi"
	"github.com/novacron/novacron/internal/storage/tsdbstore"
	"github.com/novacron/novacron/pipeline/analytics"
	"github.com/novacron/novacron/pipeline/analytics/checkpoint"
)

// TestRunBackfill writes a day of a simulated fleet into an embedded
// store, backfills from its query API and checks that the checkpoints the
// stage would load hold warmed models for the modelled series.
func TestRunBackfill(t *testing.T) {
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	scfg := tsdbstore.NewDefaultConfig()
	scfg.Path = t.TempDir()
	st, err := tsdbstore.Open(scfg, storage.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Shutdown(context.Background()) })
	sc := sim.NewDefaultConfig()
	sc.VMs, sc.Hosts, sc.Incidents = 4, 1, nil
	f, err := sim.NewFleet(*sc, start)
	require.NoError(t, err)
	require.NoError(t, f.Generate(start, start.Add(24*time.Hour), time.Minute, func(b []novacron.Series) error {
		return st.Write(t.Context(), b)
	}))
	srv := httptest.NewServer(promapi.NewHandler(st))
	t.Cleanup(srv.Close)

	cfg := config.NewDefault()
	cfg.DataDir = t.TempDir()
	cfg.Bus.Type = config.BusMemory
	var stdout, stderr bytes.Buffer
	err = RunBackfill(t.Context(), cfg, BackfillArgs{Start: start, End: start.Add(24 * time.Hour), QueryURL: srv.URL}, &stdout, &stderr)
	require.NoError(t, err)
	require.Contains(t, stderr.String(), "backfill: 2026-03-02T18:00:00Z to 2026-03-03T00:00:00Z")
	require.Contains(t, stdout.String(), "partition checkpoints written")

	dir, err := checkpoint.NewDir(filepath.Join(cfg.DataDir, "analytics"))
	require.NoError(t, err)
	parts := make([]int32, cfg.Topics.Partitions)
	for i := range parts {
		parts[i] = int32(i)
	}
	snaps, err := dir.Load(t.Context(), parts)
	require.NoError(t, err)
	require.NotEmpty(t, snaps)
	p, err := analytics.NewProcessor(cfg.Analytics, nil, analytics.Source)
	require.NoError(t, err)
	for part, b := range snaps {
		fresh, err := p.Restore(part, b)
		require.NoError(t, err)
		require.Zero(t, fresh)
	}
	// 4 VMs × (cpu, memory, disk ratios, steal, 8 I/O counters) + the
	// host's cpu and memory ratios.
	require.Equal(t, 4*12+2, p.SeriesCount())

	// A second run loads what the first wrote: the same history adds
	// nothing, and the series stay.
	stdout.Reset()
	stderr.Reset()
	require.NoError(t, RunBackfill(t.Context(), cfg, BackfillArgs{Start: start, End: start.Add(24 * time.Hour), QueryURL: srv.URL}, &stdout, &stderr))
	require.Contains(t, stderr.String(), "existing checkpoints loaded (50 series)")
}

func TestRunBackfillBadRange(t *testing.T) {
	cfg := config.NewDefault()
	cfg.DataDir = t.TempDir()
	cfg.Bus.Type = config.BusMemory
	now := time.Now()
	err := RunBackfill(t.Context(), cfg, BackfillArgs{Start: now, End: now.Add(-time.Hour), QueryURL: "http://127.0.0.1:1"}, &bytes.Buffer{}, &bytes.Buffer{})
	require.ErrorContains(t, err, "start")
}

func TestParseBackfillTime(t *testing.T) {
	now := time.Date(2026, 3, 9, 12, 0, 0, 0, time.UTC)
	f := func(in string, want time.Time) {
		t.Helper()
		got, err := ParseBackfillTime(in, now)
		require.NoError(t, err, in)
		require.True(t, want.Equal(got), "%s: got %s", in, got)
	}
	f("now", now)
	f("168h", now.Add(-168*time.Hour))
	f("2026-03-02T00:00:00Z", time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
	f("1772409600", time.Unix(1772409600, 0))
	for _, bad := range []string{"", "yesterday", "-5h", "1e12"} {
		_, err := ParseBackfillTime(bad, now)
		require.Error(t, err, bad)
	}
}
