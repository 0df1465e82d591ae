package correlate

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/bus/bustest"
	"github.com/novacron/novacron/internal/bus/membus"
)

var t0 = time.Date(2026, 3, 6, 11, 0, 0, 0, time.UTC)

// opened builds an anomaly_opened event; up says whether the value is
// above its expected value.
func opened(id, vm, host, metric string, at time.Duration, up bool) novacron.Event {
	v, exp := 0.2, 0.5
	if up {
		v, exp = 0.9, 0.3
	}
	return novacron.Event{ID: id + "-opened", Kind: novacron.EventAnomalyOpened, Time: t0.Add(at), VMID: vm, Host: host,
		Details: map[string]any{"anomaly_id": id, "metric": metric, "value": v, "expected": exp}}
}

func closed(id, vm, host string, at time.Duration) novacron.Event {
	return novacron.Event{ID: id + "-closed", Kind: novacron.EventAnomalyClosed, Time: t0.Add(at), VMID: vm, Host: host,
		Details: map[string]any{"anomaly_id": id}}
}

func run(evs ...novacron.Event) ([]novacron.Event, *Correlator) {
	c := New(5*time.Minute, Source)
	var out []novacron.Event
	for _, e := range evs {
		c.Observe(e, e.ID)
		got, _ := c.Take()
		out = append(out, got...)
	}
	c.Flush()
	got, _ := c.Take()
	return append(out, got...), c
}

func TestClassification(t *testing.T) {
	f := func(name, wantCause string, evs ...novacron.Event) {
		t.Run(name, func(t *testing.T) {
			out, _ := run(evs...)
			if wantCause == "" {
				require.Empty(t, out)
				return
			}
			require.NotEmpty(t, out)
			require.Equal(t, novacron.EventIncident, out[0].Kind)
			require.Equal(t, wantCause, out[0].Details["cause"])
			require.Equal(t, StateOpen, out[0].Details["state"])
			require.NotEmpty(t, out[0].Evidence)
		})
	}
	f("steal on two VMs of a host", CauseHostContention,
		opened("a1", "vm-1", "h1", metricVMSteal, 0, true),
		opened("a2", "vm-2", "h1", metricVMSteal, time.Minute, true),
		opened("a3", "", "h1", "novacron_host_cpu_usage_ratio", time.Minute, true))
	f("steal on one VM only is no contention", "",
		opened("a1", "vm-1", "h1", metricVMSteal, 0, true))
	f("steal falling on two VMs is no contention", "",
		opened("a1", "vm-1", "h1", metricVMSteal, 0, false),
		opened("a2", "vm-2", "h1", metricVMSteal, 0, false))
	f("cpu up without I/O", CauseVMRunaway,
		opened("a1", "vm-1", "h1", metricVMCPU, 0, true),
		opened("a2", "vm-1", "h1", metricVMSteal, 0, true))
	f("cpu up with I/O is a workload change", "",
		opened("a1", "vm-1", "h1", metricVMCPU, 0, true),
		opened("a2", "vm-1", "h1", "novacron_vm_network_receive_bytes_total", 2*time.Minute, true))
	f("memory up alone", CauseMemoryLeak,
		opened("a1", "vm-1", "h1", metricVMMemory, 0, true))
	shifted := opened("a1", "vm-1", "h1", metricVMMemory, 0, true)
	shifted.Details["component"] = "shift"
	f("memory stepping to a new level is no leak", "", shifted)
	small := opened("a1", "vm-1", "h1", metricVMCPU, 0, true)
	small.Details["value"], small.Details["expected"] = 0.5, 0.4
	f("a small cpu rise is no runaway", "", small)
	f("disk usage up", CauseDiskFilling,
		opened("a1", "vm-1", "h1", metricVMDisk, 0, true))
	f("cpu and I/O down", CauseVMIdle,
		opened("a1", "vm-1", "h1", metricVMCPU, 0, false),
		opened("a2", "vm-1", "h1", "novacron_vm_disk_read_bytes_total", time.Minute, false))
	f("cpu down alone", "",
		opened("a1", "vm-1", "h1", metricVMCPU, 0, false))
	f("a disk breach alone", CauseDiskFilling, novacron.Event{ID: "b1-predicted", Kind: novacron.EventForecastBreach,
		Time: t0, VMID: "vm-1", Host: "h1", Details: map[string]any{"breach_id": "b1", "state": "predicted", "metric": metricVMDisk}})
	f("a memory breach alone", CauseMemoryLeak, novacron.Event{ID: "b1-predicted", Kind: novacron.EventForecastBreach,
		Time: t0, VMID: "vm-1", Host: "h1", Details: map[string]any{"breach_id": "b1", "state": "predicted", "metric": metricVMMemory}})
	f("a CPU breach alone", "", novacron.Event{ID: "b1-predicted", Kind: novacron.EventForecastBreach,
		Time: t0, VMID: "vm-1", Host: "h1", Details: map[string]any{"breach_id": "b1", "state": "predicted", "metric": metricVMCPU}})
}

// TestWindow: anomalies further apart than the window are not grouped.
func TestWindow(t *testing.T) {
	out, _ := run(
		opened("a1", "vm-1", "h1", metricVMSteal, 0, true),
		opened("a2", "vm-2", "h1", metricVMSteal, 6*time.Minute, true))
	require.Empty(t, out)
}

// TestLifecycle: members join an open incident (updated) and it closes
// when the last member closes; every record is released by then.
func TestLifecycle(t *testing.T) {
	c := New(5*time.Minute, Source)
	var out []novacron.Event
	var acked []any
	feed := func(e novacron.Event) {
		c.Observe(e, e.ID)
		evs, refs := c.Take()
		out = append(out, evs...)
		acked = append(acked, refs...)
	}
	feed(opened("a1", "vm-1", "h1", metricVMSteal, 0, true))
	feed(opened("a2", "vm-2", "h1", metricVMSteal, time.Minute, true))
	feed(opened("x1", "vm-9", "h2", metricVMCPU, 2*time.Minute, false)) // unrelated host
	require.Empty(t, out, "classified only after the window")
	feed(closed("a1", "vm-1", "h1", 6*time.Minute)) // clock passes the window
	require.Len(t, out, 1)
	id := out[0].Details["incident_id"].(string)
	require.Equal(t, IncidentID("host/h1", t0.UnixMilli()), id)
	require.Equal(t, id+"-opened", out[0].ID)
	require.Equal(t, []string{"a1", "a2"}, out[0].Details["members"])
	require.True(t, out[0].Time.Equal(t0))
	feed(opened("a3", "vm-3", "h1", metricVMSteal, 20*time.Minute, true))
	require.Len(t, out, 2)
	require.Equal(t, id+"-updated-1", out[1].ID)
	require.Equal(t, []string{"a1", "a2", "a3"}, out[1].Details["members"])
	feed(closed("a2", "vm-2", "h1", 25*time.Minute))
	require.Len(t, out, 2)
	require.Equal(t, 1, c.OpenIncidents())
	feed(closed("a3", "vm-3", "h1", 30*time.Minute))
	require.Len(t, out, 3)
	require.Equal(t, id+"-closed", out[2].ID)
	require.Equal(t, StateClosed, out[2].Details["state"])
	require.Equal(t, 30*60.0, out[2].Details["duration_seconds"])
	require.Zero(t, c.OpenIncidents())
	require.Zero(t, c.Held())
	got := make([]string, 0, len(acked))
	for _, a := range acked {
		got = append(got, a.(string))
	}
	sort.Strings(got)
	require.Equal(t, []string{"a1-closed", "a1-opened", "a2-closed", "a2-opened", "a3-closed", "a3-opened", "x1-opened"}, got)
}

// TestDuplicatesIgnored: an at-least-once bus may deliver an event twice.
func TestDuplicatesIgnored(t *testing.T) {
	e1, e2 := opened("a1", "vm-1", "h1", metricVMCPU, 0, true), closed("a1", "vm-1", "h1", 20*time.Minute)
	out, _ := run(e1, e1, e2, e2)
	require.Len(t, out, 2)
	require.Equal(t, CauseVMRunaway, out[0].Details["cause"])
	require.Equal(t, StateClosed, out[1].Details["state"])
}

// TestHoldReleased: a member of an incident that never ends is released
// after max hold.
func TestHoldReleased(t *testing.T) {
	c := NewWithHold(5*time.Minute, time.Hour, Source)
	c.Observe(opened("a1", "vm-1", "h1", metricVMCPU, 0, true), "r1")
	c.Advance(t0.Add(10 * time.Minute))
	_, acks := c.Take()
	require.Empty(t, acks)
	c.Advance(t0.Add(2 * time.Hour))
	_, acks = c.Take()
	require.Equal(t, []any{"r1"}, acks)
	require.Equal(t, 1, c.OpenIncidents())
}

func TestDefaultConfigValidates(t *testing.T) {
	cfg := NewDefaultConfig()
	require.NoError(t, cfg.Validate())
	bad := Config{}
	err := bad.Validate()
	require.ErrorContains(t, err, "group")
	require.ErrorContains(t, err, "window")
	require.ErrorContains(t, err, "max_hold")
}

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	newMetrics(reg)
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}

func TestShutdownWithoutStart(t *testing.T) {
	b, err := membus.New(membus.NewDefaultConfig(), membus.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	s, err := NewStage(NewDefaultConfig(), Settings{}, b, "events")
	require.NoError(t, err)
	require.NoError(t, s.Shutdown(t.Context()))
	require.NoError(t, s.Shutdown(t.Context()))
}

// TestStageRestartReplays runs the stage on the memory bus: anomalies of
// two hosts' VMs are published keyed by host; the stage publishes their
// incidents. It is restarted while an incident is open: the new member
// re-reads the held records, so the incident closes with the same ID and
// no incident is published under a second ID.
func TestStageRestartReplays(t *testing.T) {
	b, err := membus.New(membus.NewDefaultConfig(), membus.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	ctx := context.Background()
	topic := bustest.Name(t, "events")
	require.NoError(t, b.EnsureTopics(ctx, []novacron.TopicSpec{{Name: topic, Partitions: 3, ReplicationFactor: 1}}))
	cfg := NewDefaultConfig()
	cfg.Group = bustest.Name(t, "correlate")
	publish := func(evs ...novacron.Event) {
		for _, e := range evs {
			v, err := json.Marshal(e)
			require.NoError(t, err)
			require.NoError(t, b.Produce(ctx, &novacron.Record{Topic: topic, Key: []byte(e.Host), Value: v}))
		}
	}
	var mu sync.Mutex
	incidents := map[string]novacron.Event{}
	reader, err := b.Consumer(bustest.Name(t, "reader"), []string{topic})
	require.NoError(t, err)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			recs, err := reader.Poll(rctx)
			if err != nil {
				return
			}
			for _, r := range recs {
				var e novacron.Event
				if json.Unmarshal(r.Value, &e) == nil && e.Kind == novacron.EventIncident {
					mu.Lock()
					incidents[e.ID] = e
					mu.Unlock()
				}
			}
			reader.Ack(recs...)
		}
	}()
	t.Cleanup(func() { cancel(); <-done; _ = reader.Close(ctx) })
	waitFor := func(ids ...string) {
		t.Helper()
		require.Eventually(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				if _, ok := incidents[id]; !ok {
					return false
				}
			}
			return true
		}, 10*time.Second, 20*time.Millisecond, "incident events %v", ids)
	}

	s, err := NewStage(cfg, Settings{}, b, topic)
	require.NoError(t, err)
	require.NoError(t, s.Start(ctx))
	publish(
		opened("a1", "vm-1", "h1", metricVMSteal, 0, true),
		opened("a2", "vm-2", "h1", metricVMSteal, time.Minute, true),
		opened("c1", "vm-7", "h2", metricVMCPU, 0, true),
		closed("c1", "vm-7", "h2", 8*time.Minute),
		closed("a1", "vm-1", "h1", 8*time.Minute),
	)
	contention := IncidentID("host/h1", t0.UnixMilli())
	runaway := IncidentID("vm/vm-7", t0.UnixMilli())
	waitFor(contention+"-opened", runaway+"-opened", runaway+"-closed")
	require.NoError(t, s.Shutdown(ctx))

	s, err = NewStage(cfg, Settings{}, b, topic)
	require.NoError(t, err)
	require.NoError(t, s.Start(ctx))
	t.Cleanup(func() { _ = s.Shutdown(ctx) })
	publish(closed("a2", "vm-2", "h1", 30*time.Minute))
	waitFor(contention + "-closed")
	mu.Lock()
	defer mu.Unlock()
	ids := make([]string, 0, len(incidents))
	for id := range incidents {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	want := []string{contention + "-closed", contention + "-opened", runaway + "-closed", runaway + "-opened"}
	sort.Strings(want)
	require.Equal(t, want, ids, fmt.Sprint("incident events ", ids))
	require.Equal(t, []any{"a1", "a2"}, toAny(incidents[contention+"-closed"].Details["members"]))
}

func toAny(v any) []any {
	if s, ok := v.([]any); ok {
		return s
	}
	return nil
}
