package events

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func anomaly(kind, id string, at time.Duration, score float64) novacron.Event {
	return novacron.Event{ID: id + "-" + kind, Kind: kind, Time: t0.Add(at), VMID: "vm-1", Host: "h1",
		Details: map[string]any{"anomaly_id": id, "metric": "m", "peak_score": score, "opened_at": t0.Format(time.RFC3339)}}
}

func TestFoldLifecycleAndDuplicates(t *testing.T) {
	x := NewIndex(NewDefaultConfig())
	sub := x.Subscribe()
	defer sub.Close()
	open := anomaly(novacron.EventAnomalyOpened, "a1", 0, 0.9)
	require.NoError(t, x.ConsumeEvents(t.Context(), []novacron.Event{open, open, anomaly(novacron.EventAnomalyUpdated, "a1", 15*time.Minute, 0.97)}))
	items, total := x.Find(Query{Kind: KindAnomaly})
	require.Equal(t, 1, total)
	require.Equal(t, StateOpen, items[0].State)
	require.Equal(t, 0.97, items[0].Score)
	require.Len(t, items[0].EventIDs, 2, "the duplicate is ignored")
	require.Len(t, sub.C(), 2, "subscribers get each event once")

	require.NoError(t, x.ConsumeEvents(t.Context(), []novacron.Event{anomaly(novacron.EventAnomalyClosed, "a1", 30*time.Minute, 0.97)}))
	// A late update does not reopen it.
	late := anomaly(novacron.EventAnomalyUpdated, "a1", 20*time.Minute, 0.99)
	late.ID = "a1-updated-late"
	require.NoError(t, x.ConsumeEvents(t.Context(), []novacron.Event{late}))
	items, _ = x.Find(Query{Kind: KindAnomaly, State: StateClosed})
	require.Len(t, items, 1)
	require.NotNil(t, items[0].End)
	require.True(t, items[0].End.Equal(t0.Add(30*time.Minute)))
}

func TestIncidentFold(t *testing.T) {
	x := NewIndex(NewDefaultConfig())
	inc := func(id, state string, opened, at time.Duration) novacron.Event {
		return novacron.Event{ID: id + "-" + state, Kind: novacron.EventIncident, Time: t0.Add(at), Host: "h1",
			Details: map[string]any{"incident_id": id, "state": state, "cause": "host_contention", "opened_at": t0.Add(opened).Format(time.RFC3339)}}
	}
	require.NoError(t, x.ConsumeEvents(t.Context(), []novacron.Event{inc("i1", StateOpen, 0, 0), inc("i2", StateOpen, time.Hour, time.Hour)}))
	require.NoError(t, x.ConsumeEvents(t.Context(), []novacron.Event{inc("i1", StateClosed, 0, 10*time.Minute)}))
	items, total := x.Find(Query{Kind: KindIncident, Host: "h1"})
	require.Equal(t, 2, total)
	require.Equal(t, "i2", items[0].ID, "newest first")
	open, _ := x.Find(Query{Kind: KindIncident, State: StateOpen})
	require.Len(t, open, 1)
	// From/To select by activity.
	got, _ := x.Find(Query{Kind: KindIncident, From: t0.Add(20 * time.Minute)})
	require.Len(t, got, 1)
	require.Equal(t, "i2", got[0].ID)
}

func TestEvictionAndPaging(t *testing.T) {
	x := NewIndex(Config{MaxItems: 3})
	for i := range 5 {
		e := anomaly(novacron.EventAnomalyOpened, string(rune('a'+i)), time.Duration(i)*time.Minute, float64(i))
		e.Details["opened_at"] = t0.Add(time.Duration(i) * time.Minute).Format(time.RFC3339)
		require.NoError(t, x.ConsumeEvents(t.Context(), []novacron.Event{e}))
	}
	items, total := x.Find(Query{Kind: KindAnomaly, Sort: "+start"})
	require.Equal(t, 3, total)
	require.Equal(t, []string{"c", "d", "e"}, []string{items[0].ID, items[1].ID, items[2].ID})
	page, total := x.Find(Query{Kind: KindAnomaly, Sort: "-score", Limit: 1, Offset: 1})
	require.Equal(t, 3, total)
	require.Equal(t, "d", page[0].ID)
}
