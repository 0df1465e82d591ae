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
}

func newSimRun(t *testing.T, cfg Config, simCfg *sim.Config, start time.Time) *simRun {
	t.Helper()
	f, err := sim.NewFleet(*simCfg, start)
	require.NoError(t, err)
	clock := start
	p, err := NewProcessor(cfg, func() time.Time { return clock }, "analytics")
	require.NoError(t, err)
	_ = clock
	return &simRun{fleet: f, start: start, proc: p}
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
		r.run(t, start, start.Add(warm+22*time.Hour), time.Minute)
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
			r.proc.Process(int32(s.Labels.Hash()%8), s, &out)
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
// Each must raise an anomaly (or, for a filling disk, a forecast breach)
// on its target within detectBound of its start.
func TestDetectsSimIncidents(t *testing.T) {
	t.Parallel()
	const detectBound = 90 * time.Minute
	r := incidentRun(t)
	incidents := r.fleet.Incidents()
	require.Len(t, incidents, 5)
	for _, in := range incidents {
		var first time.Time
		for _, e := range r.events {
			if e.Kind != novacron.EventAnomalyOpened && !(e.Kind == novacron.EventForecastBreach && e.Details["state"] == "predicted") {
				continue
			}
			hit := e.VMID == in.Target || (in.Kind == sim.IncidentNoisyNeighbor && e.Host == in.Target)
			if hit && !e.Time.Before(in.Start) {
				first = e.Time
				break
			}
		}
		require.False(t, first.IsZero(), "incident %s on %s at %s not detected", in.Kind, in.Target, in.Start)
		require.LessOrEqual(t, first.Sub(in.Start), detectBound, "incident %s on %s detected late", in.Kind, in.Target)
		t.Logf("%s on %s detected after %s", in.Kind, in.Target, first.Sub(in.Start))
	}
}

// TestQuietWeekFalseAlarms runs a fleet without incidents for two
// simulated weeks, the first to learn, and counts the anomalies opened in
// the second: every one is a false alarm. The default detector is not
// silent on the simulated fleet (weekly and daily shape changes, bursts of
// I/O), so the test holds the measured rate to a budget rather than to
// zero; docs/metrics.md records the figure. Lowering the budget is the
// way to make the test stricter as the models improve.
func TestQuietWeekFalseAlarms(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("two simulated weeks")
	}
	const budgetPerSeriesWeek = 4.5
	// Measured 0.00 per VM-week (no incident in the quiet week) when set;
	// the margin allows two on the eight VMs.
	const incidentBudgetPerVMWeek = 0.25
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
	opened, breaches := 0, 0
	byMetric := map[string]int{}
	for _, e := range r.events {
		switch {
		case e.Kind == novacron.EventAnomalyOpened:
			opened++
			byMetric[e.Details["metric"].(string)]++
		case e.Kind == novacron.EventForecastBreach && e.Details["state"] == "predicted":
			breaches++
		}
	}
	modelled := 0
	for _, pt := range r.proc.parts {
		for _, st := range pt.series {
			if st.det != nil {
				modelled++
			}
		}
	}
	rate := float64(opened) / float64(modelled)
	t.Logf("quiet week: %d anomalies opened on %d modelled series (%.2f per series-week), %d forecast breaches predicted; by metric %v",
		opened, modelled, rate, breaches, byMetric)
	require.LessOrEqual(t, rate, budgetPerSeriesWeek, "false-alarm rate above budget")

	// Incidents are what a person is paged about: every one opened in the
	// quiet week is a false incident.
	incidents, byCause := 0, map[string]int{}
	for _, e := range correlateEvents(r.events, 4) {
		if e.ID == e.Details["incident_id"].(string)+"-opened" {
			incidents++
			byCause[e.Details["cause"].(string)]++
		}
	}
	perVM := float64(incidents) / float64(c.VMs)
	t.Logf("quiet week: %d incidents on %d VMs (%.2f per VM-week): %v", incidents, c.VMs, perVM, byCause)
	require.LessOrEqual(t, perVM, incidentBudgetPerVMWeek, "false-incident rate above budget")
}
