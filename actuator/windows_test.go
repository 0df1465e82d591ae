package actuator_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/actuator"
)

// clock is a settable clock for actuator.Settings.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func startClocked(t *testing.T, cfg actuator.Config, c *clock, drv novacron.Driver) *actuator.Actuator {
	t.Helper()
	a, err := actuator.New(cfg, actuator.Settings{Now: c.Now}, actuator.Deps{DB: sqliteDB(t), Drivers: map[string]novacron.Driver{"sim": drv}})
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	return a
}

// blockedBy waits until the action is held back with a reason containing
// want, and checks it is still approved and has not started.
func blockedBy(t *testing.T, a *actuator.Actuator, id, want string) {
	t.Helper()
	require.Eventually(t, func() bool {
		act, err := a.Get(context.Background(), id)
		require.NoError(t, err)
		return act.Blocked != ""
	}, 5*time.Second, 5*time.Millisecond)
	act, err := a.Get(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, actuator.StateApproved, act.State)
	require.Contains(t, act.Blocked, want)
	require.True(t, act.StartedAt.IsZero())
}

func TestFreezeWindowHoldsActions(t *testing.T) {
	e := newSim(t, nil)
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	c := &clock{t: t0}
	cfg := testConfig(actuator.ModeAuto)
	cfg.FreezeWindows = []actuator.Window{{Start: t0.Add(-time.Hour), End: t0.Add(time.Hour)}}
	drv := &countingDriver{Driver: e.fleet}
	a := startClocked(t, cfg, c, drv)
	id := proposed(t, a, "vm-0001")["vm-0001"].ID
	blockedBy(t, a, id, "freeze window until 2026-03-02T11:00:00Z")
	time.Sleep(100 * time.Millisecond)
	require.Zero(t, drv.resizes.Load(), "nothing starts in a freeze")

	c.set(t0.Add(time.Hour)) // End is exclusive
	started := waitState(t, a, id, actuator.StateVerifying, actuator.StateFailed)
	require.Equal(t, actuator.StateVerifying, started.State, started.Result)
	require.Equal(t, t0.Add(time.Hour), started.StartedAt.UTC())
	require.Equal(t, int64(1), drv.resizes.Load())
	c.set(t0.Add(2 * time.Hour)) // past the verify window
	require.Equal(t, actuator.StateSucceeded, waitState(t, a, id, actuator.StateSucceeded, actuator.StateFailed).State)
}

func TestMaintenanceWindowHoldsOnlyAutomaticActions(t *testing.T) {
	ctx := context.Background()
	e := newSim(t, nil)
	c := &clock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)} // a Monday
	cfg := testConfig(actuator.ModeAuto)
	cfg.MaintenanceWindows = []actuator.DailyWindow{{Start: "22:00", End: "04:00", Days: []string{"mon"}}}
	manual := alertPolicy("manual", "Manual", actuator.ActionSpec{Kind: novacron.ActionResize, AddVCPUs: 1})
	manual.Mode = actuator.ModeApprove
	cfg.Policies = append(cfg.Policies, manual)
	drv := &countingDriver{Driver: e.fleet}
	a := startClocked(t, cfg, c, drv)

	auto := proposed(t, a, "vm-0001")["vm-0001"].ID
	blockedBy(t, a, auto, "maintenance window")

	// An operator's approval is not held back by maintenance windows.
	require.NoError(t, a.ConsumeEvents(ctx, []novacron.Event{alert("Manual", "sim", "vm-0002")}))
	acts, err := a.List(ctx, actuator.ActionFilter{Policy: "manual"})
	require.NoError(t, err)
	require.Len(t, acts, 1)
	_, err = a.Approve(ctx, acts[0].ID, actuator.Decision{Actor: "operator:bob"})
	require.NoError(t, err)
	require.Equal(t, actuator.StateVerifying, waitState(t, a, acts[0].ID, actuator.StateVerifying, actuator.StateFailed).State)
	require.Equal(t, int64(1), drv.resizes.Load())
	act, err := a.Get(ctx, auto)
	require.NoError(t, err)
	require.Equal(t, actuator.StateApproved, act.State, "the automatic one still waits")

	// Tuesday 01:00 is in Monday's window, which wraps midnight.
	c.set(time.Date(2026, 3, 3, 1, 0, 0, 0, time.UTC))
	require.Equal(t, actuator.StateVerifying, waitState(t, a, auto, actuator.StateVerifying, actuator.StateFailed).State)
	require.Equal(t, int64(2), drv.resizes.Load())
	c.set(time.Date(2026, 3, 3, 2, 0, 0, 0, time.UTC))
	require.Equal(t, actuator.StateSucceeded, waitState(t, a, auto, actuator.StateSucceeded, actuator.StateFailed).State)
	require.Equal(t, actuator.StateSucceeded, waitState(t, a, acts[0].ID, actuator.StateSucceeded, actuator.StateFailed).State)
}

func TestMaintenanceWindowDays(t *testing.T) {
	e := newSim(t, nil)
	c := &clock{t: time.Date(2026, 3, 3, 23, 0, 0, 0, time.UTC)} // Tuesday 23:00: Monday's window is over
	cfg := testConfig(actuator.ModeAuto)
	cfg.MaintenanceWindows = []actuator.DailyWindow{{Start: "22:00", End: "04:00", Days: []string{"mon"}}}
	a := startClocked(t, cfg, c, e.fleet)
	blockedBy(t, a, proposed(t, a, "vm-0003")["vm-0003"].ID, "maintenance window")
}

func TestTenantShareBudget(t *testing.T) {
	ctx := context.Background()
	e := newSim(t, nil)
	inv := e.fleet.Inventory(e.t)
	byTenant := map[string][]string{}
	for _, vm := range inv.VMs {
		byTenant[vm.Tenant] = append(byTenant[vm.Tenant], vm.ID)
	}
	var tenant string
	for tn, vms := range byTenant {
		if tn != "" && len(vms) >= 2 && (tenant == "" || len(vms) > len(byTenant[tenant])) {
			tenant = tn
		}
	}
	require.NotEmpty(t, tenant, "the simulated fleet has a tenant with two VMs")
	vms := byTenant[tenant]
	n := len(vms)

	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	c := &clock{t: t0}
	cfg := testConfig(actuator.ModeAuto)
	cfg.Budgets.TenantShare = 1.5 / float64(n) // one of the tenant's VMs in flight at a time
	cfg.VerifyWindow = time.Hour               // by the clock: the first stays in flight until it moves
	drv := &countingDriver{Driver: e.fleet}
	a := startClocked(t, cfg, c, drv)
	require.NoError(t, a.ConsumeInventory(ctx, inv))

	first := proposed(t, a, vms[0])[vms[0]].ID
	require.Equal(t, actuator.StateVerifying, waitState(t, a, first, actuator.StateVerifying).State)
	second := proposed(t, a, vms[1])[vms[1]].ID
	blockedBy(t, a, second, "budgets.tenant_share")
	require.Equal(t, int64(1), drv.resizes.Load())

	c.set(t0.Add(2 * time.Hour))
	require.Equal(t, actuator.StateSucceeded, waitState(t, a, first, actuator.StateSucceeded, actuator.StateFailed).State)
	require.Equal(t, actuator.StateVerifying, waitState(t, a, second, actuator.StateVerifying, actuator.StateFailed).State, "started once the first finished")
	require.Equal(t, int64(2), drv.resizes.Load())
}
