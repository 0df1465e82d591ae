package analytics

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/sim"
)

// simRun drives a simulated fleet through a processor at simulated speed
// and returns the events.
type simRun struct {
	fleet  *sim.Fleet
	start  time.Time
	events []novacron.Event
	proc   *Processor
	// crossed is when each capacity series (by labels) first reached its
	// forecast threshold: the truth a breach prediction is scored on.
	crossed map[string]time.Time
	// keep, when set, selects the series the processor sees.
	keep func(novacron.Labels) bool
}

func newSimRun(t *testing.T, cfg Config, simCfg *sim.Config, start time.Time) *simRun {
	t.Helper()
	f, err := sim.NewFleet(*simCfg, start)
	require.NoError(t, err)
	p, err := NewProcessor(cfg, nil, "analytics")
	require.NoError(t, err)
	return &simRun{fleet: f, start: start, proc: p, crossed: map[string]time.Time{}}
}

var (
	incidentOnce sync.Once
	incidentSim  *simRun
)

// incidentRun is the run of incidentSimConfig over four quiet days and the
// incident day, shared by the tests that score it (read-only).
func incidentRun(t *testing.T) *simRun {
	incidentOnce.Do(func() {
		start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
		warm := 4 * 24 * time.Hour
		cfg := NewDefaultConfig()
		cfg.MaxClockSkew = 0
		r := newSimRun(t, cfg, incidentSimConfig(warm), start)
		r.run(t, start, start.Add(warm+26*time.Hour), time.Minute)
		incidentSim = r
	})
	require.NotNil(t, incidentSim, "the shared incident run failed")
	return incidentSim
}

func (r *simRun) run(t *testing.T, from, to time.Time, step time.Duration) {
	t.Helper()
	var out Output
	require.NoError(t, r.fleet.Generate(from, to, step, func(batch []novacron.Series) error {
		for _, s := range batch {
			if r.keep != nil && !r.keep(s.Labels) {
				continue
			}
			r.proc.Process(int32(s.Labels.Hash()%8), s, &out)
			if i := match(r.proc.rules, s.Labels); i >= 0 && r.proc.rules[i].Threshold > 0 {
				k := s.Labels.String()
				for _, sm := range s.Samples {
					if _, ok := r.crossed[k]; !ok && sm.V >= r.proc.rules[i].Threshold {
						r.crossed[k] = time.UnixMilli(sm.T).UTC()
					}
				}
			}
		}
		r.events = append(r.events, out.Events...)
		out.Reset()
		return nil
	}))
}

// incidentSimConfig is a small fleet with one incident of each kind on
// day 5, after the models have learnt four days.
func incidentSimConfig(warm time.Duration) *sim.Config {
	c := sim.NewDefaultConfig()
	c.VMs, c.Hosts, c.Interval = 16, 4, time.Minute
	c.Incidents = nil
	for i, in := range sim.DefaultIncidents() {
		in.At += warm + time.Duration(i)*time.Hour
		c.Incidents = append(c.Incidents, in)
	}
	return c
}

// TestDetectsSimIncidents drives a simulated fleet at simulated speed:
// four quiet days for the models to learn, then one incident of each kind.
// A sudden incident (a CPU runaway, a VM gone idle, a noisy neighbour) must
// open an anomaly on its target within quickBound of its start. A slow one
// (a memory leak, a filling disk) must be predicted: a forecast breach on
// the target's series, raised at least leadTime before the series really
// reached the threshold, and within slowBound of the incident's start.
func TestDetectsSimIncidents(t *testing.T) {
	t.Parallel()
	const (
		quickBound = 5 * time.Minute
		slowBound  = 3 * time.Hour
		leadTime   = time.Hour
	)
	r := incidentRun(t)
	incidents := r.fleet.Incidents()
	require.Len(t, incidents, 5)
	for _, in := range incidents {
		slow := in.Kind == sim.IncidentMemoryLeak || in.Kind == sim.IncidentDiskFill
		var first novacron.Event
		for _, e := range r.events {
			if e.Time.Before(in.Start) {
				continue
			}
			hit := e.VMID == in.Target || (in.Kind == sim.IncidentNoisyNeighbor && e.Host == in.Target)
			if !hit {
				continue
			}
			if slow && e.Kind == novacron.EventForecastBreach && e.Details["state"] == "predicted" ||
				!slow && e.Kind == novacron.EventAnomalyOpened {
				first = e
				break
			}
		}
		require.False(t, first.Time.IsZero(), "incident %s on %s at %s not detected", in.Kind, in.Target, in.Start)
		after := first.Time.Sub(in.Start)
		if !slow {
			require.LessOrEqual(t, after, quickBound, "incident %s on %s detected late", in.Kind, in.Target)
			t.Logf("%s on %s: anomaly after %s: %s", in.Kind, in.Target, after, first.Summary)
			continue
		}
		require.LessOrEqual(t, after, slowBound, "incident %s on %s predicted late", in.Kind, in.Target)
		crossed, ok := r.crossed[first.Details["series"].(string)]
		require.True(t, ok, "the predicted series %s never reached the threshold", first.Details["series"])
		lead := crossed.Sub(first.Time)
		require.GreaterOrEqual(t, lead, leadTime, "incident %s on %s predicted too close to the breach", in.Kind, in.Target)
		t.Logf("%s on %s: breach predicted after %s, %s before it happened: %s", in.Kind, in.Target, after, lead, first.Summary)
	}
}

// TestQuietWeekFalseAlarms runs a fleet without incidents for two
// simulated weeks, the first to learn, and checks that the second, with
// its office hours, nightly batch jobs, weekend dips and bursts of I/O,
// raises no anomaly, no forecast breach and no incident: each would be a
// false alarm.
func TestQuietWeekFalseAlarms(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("two simulated weeks")
	}
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	c := sim.NewDefaultConfig()
	c.VMs, c.Hosts, c.Interval = 8, 2, time.Minute
	c.Incidents = nil
	cfg := NewDefaultConfig()
	cfg.MaxClockSkew = 0
	r := newSimRun(t, cfg, c, start)
	week := 7 * 24 * time.Hour
	r.run(t, start, start.Add(week), time.Minute)
	r.events = nil
	r.run(t, start.Add(week), start.Add(2*week), time.Minute)
	modelled := 0
	for _, pt := range r.proc.parts {
		for _, st := range pt.series {
			if st.det != nil {
				modelled++
			}
		}
	}
	require.Greater(t, modelled, 8*10, "the quiet VMs' series are modelled")
	var alarms []string
	for _, e := range r.events {
		if e.Kind == novacron.EventAnomalyOpened || e.Kind == novacron.EventForecastBreach && e.Details["state"] == "predicted" {
			alarms = append(alarms, e.Time.Format(time.DateTime)+" "+e.Summary)
		}
	}
	for _, e := range correlateEvents(r.events, 4) {
		alarms = append(alarms, e.Time.Format(time.DateTime)+" "+e.Summary)
	}
	require.Empty(t, alarms, "false alarms on %d modelled series in a quiet week", modelled)
}
