package analytics

import (
	"encoding/json"
	"hash/fnv"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron/api/eventsapi"
	"github.com/novacron/novacron/pipeline/events"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/sim"
	"github.com/novacron/novacron/pipeline/analytics/correlate"
)

// simCause is the probable cause each simulated incident kind must get.
var simCause = map[string]string{
	sim.IncidentCPURunaway:    correlate.CauseVMRunaway,
	sim.IncidentMemoryLeak:    correlate.CauseMemoryLeak,
	sim.IncidentNoisyNeighbor: correlate.CauseHostContention,
	sim.IncidentDiskFill:      correlate.CauseDiskFilling,
	sim.IncidentIdle:          correlate.CauseVMIdle,
}

// correlateEvents runs the events through one correlator per events
// partition, the events keyed by EventKey as the stage publishes them.
func correlateEvents(events []novacron.Event, partitions int) []novacron.Event {
	cs := make([]*correlate.Correlator, partitions)
	for i := range cs {
		cs[i] = correlate.New(correlate.NewDefaultConfig().Window, correlate.Source)
	}
	var out []novacron.Event
	for _, e := range events {
		h := fnv.New32a()
		h.Write([]byte(EventKey(e)))
		c := cs[h.Sum32()%uint32(partitions)]
		c.Observe(e, nil)
		evs, _ := c.Take()
		out = append(out, evs...)
	}
	for _, c := range cs {
		c.Flush()
		evs, _ := c.Take()
		out = append(out, evs...)
	}
	return out
}

// TestIncidentsFromSim drives a simulated fleet (four quiet days, then one
// incident of each kind) through the models and the correlator: each
// scheduled incident must appear as an incident on its target with the
// right probable cause, opened within detectBound of its start (a slow
// incident, a leak or a filling disk, is found by its forecast breach:
// within slowBound).
func TestIncidentsFromSim(t *testing.T) {
	t.Parallel()
	const detectBound, slowBound = 5 * time.Minute, 3 * time.Hour
	bound := func(kind string) time.Duration {
		if kind == sim.IncidentMemoryLeak || kind == sim.IncidentDiskFill {
			return slowBound
		}
		return detectBound
	}
	r := incidentRun(t)
	start, warm := r.start, 4*24*time.Hour
	incs := correlateEvents(r.events, 4)
	opened := map[string]novacron.Event{}
	for _, e := range incs {
		require.Equal(t, novacron.EventIncident, e.Kind)
		if e.Details["state"] == correlate.StateOpen && e.ID == e.Details["incident_id"].(string)+"-opened" {
			opened[e.ID] = e
		}
	}
	for _, in := range r.fleet.Incidents() {
		var hit *novacron.Event
		for _, e := range opened {
			target := e.VMID
			if in.Kind == sim.IncidentNoisyNeighbor {
				target = e.Host
			}
			if target != in.Target || e.Details["cause"] != simCause[in.Kind] || e.Time.Before(in.Start) || e.Time.Sub(in.Start) > bound(in.Kind) {
				continue
			}
			hit = &e
			break
		}
		require.NotNil(t, hit, "incident %s on %s at %s has no incident with cause %s", in.Kind, in.Target, in.Start, simCause[in.Kind])
		t.Logf("%s on %s: %s after %s, %d members: %s", in.Kind, in.Target, hit.ID, hit.Time.Sub(in.Start), len(hit.Details["members"].([]string)), hit.Summary)
	}
	byCause, n := map[string]int{}, 0
	for _, e := range opened {
		if e.Time.After(start.Add(warm)) {
			byCause[e.Details["cause"].(string)]++
			n++
		}
	}
	t.Logf("%d incidents opened in the 26h after warm-up (5 scheduled): %v", n, byCause)

	// The API role indexes the events topic: /api/v1/incidents lists each
	// scheduled incident with its cause.
	idx := events.NewIndex(events.NewDefaultConfig())
	require.NoError(t, idx.ConsumeEvents(t.Context(), r.events))
	require.NoError(t, idx.ConsumeEvents(t.Context(), incs))
	gin.SetMode(gin.TestMode)
	eng := gin.New()
	eventsapi.Mount(idx)(eng.Group("/api/v1"))
	srv := httptest.NewServer(eng)
	t.Cleanup(srv.Close)
	for _, in := range r.fleet.Incidents() {
		q := url.Values{"limit": {"1000"}}
		if in.Kind == sim.IncidentNoisyNeighbor {
			q.Set("host", in.Target)
		} else {
			q.Set("vm_id", in.Target)
		}
		resp, err := http.Get(srv.URL + "/api/v1/incidents?" + q.Encode())
		require.NoError(t, err)
		var page eventsapi.Page
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
		resp.Body.Close()
		found := false
		for _, it := range page.Items {
			if it.Details["cause"] == simCause[in.Kind] && !it.Start.Before(in.Start) && it.Start.Sub(in.Start) <= bound(in.Kind) {
				found = true
				require.NotEmpty(t, it.Details["members"])
				require.NotEmpty(t, it.Evidence)
			}
		}
		require.True(t, found, "/api/v1/incidents?%s lacks the %s incident", q.Encode(), in.Kind)
	}
}
