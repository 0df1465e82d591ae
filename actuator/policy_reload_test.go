package actuator_test

import (
	"context"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/actuator"
	"github.com/novacron/novacron/internal/statedb"
	"github.com/novacron/novacron/internal/testserver"
)

// sharedDB returns a function opening connections (each its own pool) to
// one fresh state database, as separate replicas would.
func sharedDB(t *testing.T, driver string) func() *statedb.DB {
	t.Helper()
	cfg := statedb.NewDefaultConfig()
	switch driver {
	case statedb.DriverSQLite:
		cfg.SQLite.Path = filepath.Join(t.TempDir(), "state.db")
	case statedb.DriverPostgres:
		cfg.Driver = statedb.DriverPostgres
		cfg.Postgres.DSN = testserver.PostgresDSN(t)
	}
	return func() *statedb.DB { return openDB(t, cfg) }
}

func policyNamed(ps []actuator.Policy, name string) (actuator.Policy, bool) {
	i := slices.IndexFunc(ps, func(p actuator.Policy) bool { return p.Name == name })
	if i < 0 {
		return actuator.Policy{}, false
	}
	return ps[i], true
}

// TestPolicyChangesReachOtherReplicas runs two actuators on one state
// database (one SQLite file; one PostgreSQL database) and changes a
// policy through the first one's API: the second one, which never
// restarts, polls the policies' generation and applies the change (the
// reload interval is 50ms; the wait allows for a loaded machine), first a
// new policy, then a change of its mode.
// It reloads once per change, and its metrics say so.
func TestPolicyChangesReachOtherReplicas(t *testing.T) {
	for _, driver := range []string{statedb.DriverSQLite, statedb.DriverPostgres} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			testPolicyPropagation(t, sharedDB(t, driver))
		})
	}
}

func testPolicyPropagation(t *testing.T, open func() *statedb.DB) {
	ctx := context.Background()
	e := newSim(t, nil)
	cfg := testConfig(actuator.ModeApprove)
	const interval = 50 * time.Millisecond
	cfg.PolicyReloadInterval = interval
	a := startActuator(t, cfg, open(), e.fleet, nil, nil)
	regB := prometheus.NewPedanticRegistry()
	b, err := actuator.New(cfg, actuator.Settings{Registerer: regB}, actuator.Deps{DB: open(), Drivers: map[string]novacron.Driver{"sim": e.fleet}})
	require.NoError(t, err)
	require.NoError(t, b.Start(ctx))
	t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
	require.Equal(t, int64(0), b.PolicyGeneration())
	_, ok := policyNamed(b.Policies(), "shrink")
	require.False(t, ok)

	var vms []string
	for _, vm := range e.fleet.Inventory(e.t).VMs {
		if vm.Size.VCPUs > 1 && vm.State == novacron.PowerRunning {
			vms = append(vms, vm.ID)
		}
	}
	require.GreaterOrEqual(t, len(vms), 2)

	// A new policy, stored through a's API, reaches b.
	r := apiRouter(a)
	p := alertPolicy("shrink", "Oversized", actuator.ActionSpec{Kind: novacron.ActionResize, VCPUs: 1})
	p.Mode = actuator.ModeDryRun
	require.Equal(t, http.StatusOK, do(t, r, "PUT", "/api/v1/remediation/policies/shrink", opToken, p).Code)
	require.Equal(t, int64(1), a.PolicyGeneration(), "the replica that stored it applies it at once")
	require.Eventually(t, func() bool { _, ok := policyNamed(b.Policies(), "shrink"); return ok }, 5*time.Second, 5*time.Millisecond,
		"the other replica reloads the policies")
	require.Equal(t, int64(1), b.PolicyGeneration())
	require.NoError(t, b.ConsumeEvents(ctx, []novacron.Event{alert("Oversized", "sim", vms[0])}))
	acts, err := b.List(ctx, actuator.ActionFilter{VMID: vms[0], Policy: "shrink"})
	require.NoError(t, err)
	require.Len(t, acts, 1, "the other replica plans with the new policy")
	require.Equal(t, actuator.ModeDryRun, acts[0].Mode)

	// A change of the stored policy reaches b too: switched off, it plans
	// nothing more there.
	p.Mode = actuator.ModeOff
	require.Equal(t, http.StatusOK, do(t, r, "PUT", "/api/v1/remediation/policies/shrink", opToken, p).Code)
	require.Eventually(t, func() bool { got, _ := policyNamed(b.Policies(), "shrink"); return got.Mode == actuator.ModeOff }, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, int64(2), b.PolicyGeneration())
	require.NoError(t, b.ConsumeEvents(ctx, []novacron.Event{alert("Oversized", "sim", vms[1])}))
	acts, err = b.List(ctx, actuator.ActionFilter{VMID: vms[1]})
	require.NoError(t, err)
	require.Empty(t, acts)
	require.Len(t, b.Policies(), len(actuator.DefaultPolicies())+1, "the configured policies stay beside the stored one")

	// Polls that find the generation unchanged reload nothing: one load
	// at start and one per change.
	time.Sleep(3 * interval)
	require.NoError(t, testutil.GatherAndCompare(regB, strings.NewReader(`
# HELP novacron_actuator_policy_generation Generation of the stored policies this actuator has loaded; replicas agree once they all reloaded.
# TYPE novacron_actuator_policy_generation gauge
novacron_actuator_policy_generation 2
# HELP novacron_actuator_policy_reloads_total Loads of the stored policies (at start and when their generation moved), by result (success, error).
# TYPE novacron_actuator_policy_reloads_total counter
novacron_actuator_policy_reloads_total{result="error"} 0
novacron_actuator_policy_reloads_total{result="success"} 3
`), "novacron_actuator_policy_generation", "novacron_actuator_policy_reloads_total"))
	problems, err := testutil.GatherAndLint(regB)
	require.NoError(t, err)
	require.Empty(t, problems)
}
