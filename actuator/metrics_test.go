package actuator_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/actuator"
)

// TestMetrics runs one action and checks the actuator's metrics: they
// pass the Prometheus linter, and the counters moved as the action did.
func TestMetrics(t *testing.T) {
	e := newSim(t, nil)
	reg := prometheus.NewPedanticRegistry()
	a, err := actuator.New(testConfig(actuator.ModeAuto), actuator.Settings{Registerer: reg}, actuator.Deps{DB: sqliteDB(t), Drivers: map[string]novacron.Driver{"sim": e.fleet}})
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	id := proposed(t, a, "vm-0001")["vm-0001"].ID
	require.Equal(t, actuator.StateSucceeded, waitState(t, a, id, actuator.StateSucceeded, actuator.StateFailed).State)

	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP novacron_actuator_leader 1 while this actuator holds the executor lease.
# TYPE novacron_actuator_leader gauge
novacron_actuator_leader 1
`), "novacron_actuator_leader"))
	n, err := testutil.GatherAndCount(reg, "novacron_actuator_actions_total")
	require.NoError(t, err)
	require.Equal(t, 11, n, "one series per state, present from the start")

	// The state is stored before the counters move: wait for them.
	var mfs []*dto.MetricFamily
	require.Eventually(t, func() bool {
		if mfs, err = reg.Gather(); err != nil {
			return false
		}
		for _, mf := range mfs {
			if mf.GetName() != "novacron_actuator_actions_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == "state" && lp.GetValue() == actuator.StateSucceeded {
						return m.GetCounter().GetValue() >= 1
					}
				}
			}
		}
		return false
	}, 5*time.Second, 5*time.Millisecond, "the succeeded action counted")
	val := func(name, label, value string) float64 {
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == label && lp.GetValue() == value {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		t.Fatalf("no %s{%s=%q}", name, label, value)
		return 0
	}
	require.Equal(t, 1.0, val("novacron_actuator_events_total", "result", "planned"))
	require.Equal(t, 1.0, val("novacron_actuator_actions_total", "state", actuator.StateSucceeded))
	require.GreaterOrEqual(t, val("novacron_actuator_reconciles_total", "result", "success"), 1.0)
	require.Zero(t, val("novacron_actuator_reconciles_total", "result", "panic"))

	// A second actuator on the same registry is refused rather than
	// silently sharing series.
	_, err = actuator.New(testConfig(actuator.ModeAuto), actuator.Settings{Registerer: reg}, actuator.Deps{DB: sqliteDB(t), Drivers: map[string]novacron.Driver{"sim": e.fleet}})
	require.ErrorContains(t, err, "register actuator metrics")
}
