package analytics

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/sim"
	"github.com/novacron/novacron/internal/bus/bustest"
	"github.com/novacron/novacron/internal/bus/membus"
	"github.com/novacron/novacron/internal/storage"
	"github.com/novacron/novacron/internal/storage/promapi"
	"github.com/novacron/novacron/internal/storage/tsdbstore"
	"github.com/novacron/novacron/pipeline/publish"
)

// storeWithHistory writes d of a simulated fleet into an embedded store
// and serves its Prometheus API.
func storeWithHistory(t *testing.T, sc *sim.Config, start time.Time, d time.Duration) (*HTTPQuerier, *sim.Fleet) {
	t.Helper()
	cfg := tsdbstore.NewDefaultConfig()
	cfg.Path = t.TempDir()
	st, err := tsdbstore.Open(cfg, storage.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Shutdown(context.Background()) })
	f, err := sim.NewFleet(*sc, start)
	require.NoError(t, err)
	require.NoError(t, f.Generate(start, start.Add(d), time.Minute, func(b []novacron.Series) error {
		return st.Write(t.Context(), b)
	}))
	srv := httptest.NewServer(promapi.NewHandler(st, promapi.WithNow(func() time.Time { return start.Add(d) })))
	t.Cleanup(srv.Close)
	return &HTTPQuerier{URL: srv.URL}, f
}

// TestBackfillWarmsModels: a processor backfilled from the embedded store
// with a day of history produces, on the next hours of live data, exactly
// the events of a processor that saw that day live.
func TestBackfillWarmsModels(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	sc := sim.NewDefaultConfig()
	sc.VMs, sc.Hosts, sc.Interval = 4, 1, time.Minute
	sc.Incidents = []sim.IncidentConfig{{Kind: sim.IncidentCPURunaway, Target: "vm-0002", At: 26 * time.Hour, Duration: time.Hour}}
	history := 24 * time.Hour
	q, _ := storeWithHistory(t, sc, start, history)
	cfg := NewDefaultConfig()
	cfg.MaxClockSkew = 0
	const parts = 4

	ref, err := NewProcessor(cfg, nil, Source)
	require.NoError(t, err)
	live := func(p *Processor, from, to time.Time) []novacron.Event {
		f, err := sim.NewFleet(*sc, start)
		require.NoError(t, err)
		var out Output
		var evs []novacron.Event
		require.NoError(t, f.Generate(start, to, time.Minute, func(b []novacron.Series) error {
			if b[0].Samples[0].T < from.UnixMilli() {
				return nil
			}
			for _, s := range b {
				p.Process(PartitionOf(s.Labels, parts), s, &out)
			}
			evs = append(evs, out.Events...)
			out.Reset()
			return nil
		}))
		return evs
	}
	live(ref, start, start.Add(history))
	want := live(ref, start.Add(history), start.Add(30*time.Hour))
	require.NotEmpty(t, want)

	warm, err := NewProcessor(cfg, nil, Source)
	require.NoError(t, err)
	var progress bytes.Buffer
	// The store holds samples at [start, start+history); the range is
	// inclusive at both ends.
	stats, err := Backfill(t.Context(), q, warm, BackfillOptions{Start: start, End: start.Add(history - time.Minute),
		Partitions: parts, Progress: &progress})
	require.NoError(t, err)
	require.Equal(t, 4*len(cfg.Rules), stats.Queries)
	require.Positive(t, stats.Samples)
	require.Equal(t, 4, strings.Count(progress.String(), "\n"), progress.String())
	require.Contains(t, progress.String(), "100%")
	require.Equal(t, ref.SeriesCount(), warm.SeriesCount()+unmodelled(ref), "backfill reads only what the rules model")

	// Snapshot and restore, as RunBackfill and the stage do.
	restored, err := NewProcessor(cfg, nil, Source)
	require.NoError(t, err)
	for p := range int32(parts) {
		b, err := warm.Snapshot(p)
		require.NoError(t, err)
		if b != nil {
			_, err = restored.Restore(p, b)
			require.NoError(t, err)
		}
	}
	got := live(restored, start.Add(history), start.Add(30*time.Hour))
	require.Equal(t, len(want), len(got))
	for i := range want {
		require.Equal(t, want[i].ID, got[i].ID)
		require.Equal(t, want[i].Summary, got[i].Summary)
	}
}

// unmodelled counts series with state but no rule.
func unmodelled(p *Processor) int {
	n := 0
	for _, pt := range p.parts {
		for _, st := range pt.series {
			if st.rule < 0 {
				n++
			}
		}
	}
	return n
}

// TestPartitionOfMatchesBus: PartitionOf places a series where the bus
// puts its published record.
func TestPartitionOfMatchesBus(t *testing.T) {
	b, err := membus.New(membus.NewDefaultConfig(), membus.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	topic := bustest.Name(t, "samples")
	require.NoError(t, b.EnsureTopics(t.Context(), []novacron.TopicSpec{{Name: topic, Partitions: 5, ReplicationFactor: 1}}))
	c, err := b.Consumer(bustest.Name(t, "g"), []string{topic})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	f, err := sim.NewFleet(*sim.NewDefaultConfig(), time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	var batch []novacron.Series
	start := f.StartTime()
	require.NoError(t, f.Generate(start, start, time.Minute, func(b []novacron.Series) error { batch = b; return nil }))
	pub := publish.New(b, publish.Topics{Samples: topic}, publish.Settings{})
	require.NoError(t, pub.ConsumeSeries(t.Context(), batch))
	want := map[string]int32{}
	for _, s := range batch {
		want[string(publish.SeriesKey(s.Labels))] = PartitionOf(s.Labels, 5)
	}
	n := 0
	for n < len(batch) {
		recs, err := c.Poll(t.Context())
		require.NoError(t, err)
		for _, r := range recs {
			require.Equal(t, want[string(r.Key)], r.Partition)
			n++
		}
	}
}
