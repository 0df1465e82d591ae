package analytics

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/sim"
	"github.com/novacron/novacron/pipeline/analytics/correlate"
)

// TestRunawayFoundAtAnyTime schedules a CPU runaway after a day of
// learning, at 24 start times 7 hours apart (every hour of the day, every
// day of the week): each time it must open an anomaly on the VM within 5
// minutes and a runaway incident within 10, whatever the detector was
// doing before (the processor sees the target's series only) (a high score on an ordinary sample makes it rest for an
// hour, which once hid runaways that started inside that hour).
func TestRunawayFoundAtAnyTime(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("24 simulated days")
	}
	for h := range 24 {
		start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC).Add(time.Duration(h*7) * time.Hour)
		c := sim.NewDefaultConfig()
		c.VMs, c.Hosts, c.Interval = 12, 3, time.Minute
		c.Incidents = []sim.IncidentConfig{{Kind: sim.IncidentCPURunaway, Target: "vm-0002", At: 24*time.Hour + 20*time.Minute, Duration: 2 * time.Hour}}
		cfg := NewDefaultConfig()
		cfg.MaxClockSkew = 0
		r := newSimRun(t, cfg, c, start)
		r.keep = func(ls novacron.Labels) bool { return ls.Get("vm_id") == "vm-0002" } // the target's series alone
		r.run(t, start, start.Add(24*time.Hour+35*time.Minute), time.Minute)
		in := r.fleet.Incidents()[0]
		anomaly, incident := false, false
		for _, e := range r.events {
			if e.Kind == novacron.EventAnomalyOpened && e.VMID == in.Target && !e.Time.Before(in.Start) && e.Time.Sub(in.Start) <= 5*time.Minute {
				anomaly = true
			}
		}
		for _, e := range correlateEvents(r.events, 4) {
			if e.VMID == in.Target && e.Details["cause"] == correlate.CauseVMRunaway && !e.Time.Before(in.Start) && e.Time.Sub(in.Start) <= 10*time.Minute {
				incident = true
			}
		}
		require.True(t, anomaly, "runaway starting %s: no anomaly", in.Start.Format(time.RFC3339))
		require.True(t, incident, "runaway starting %s: no runaway incident", in.Start.Format(time.RFC3339))
	}
}
