package actuator_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/actuator"
	"github.com/novacron/novacron/internal/statedb"
	"github.com/novacron/novacron/internal/testserver"
)

// perVMDriver counts resizes per VM and can hang after one, like a
// process dying mid-step.
type perVMDriver struct {
	novacron.Driver
	mu      sync.Mutex
	resizes map[string]int
	// hangAfter, when set for a VM, is closed after its resize, and the
	// call then never returns.
	hangAfter map[string]chan struct{}
}

func newPerVM(d novacron.Driver) *perVMDriver {
	return &perVMDriver{Driver: d, resizes: map[string]int{}, hangAfter: map[string]chan struct{}{}}
}

func (d *perVMDriver) Resize(ctx context.Context, id string, s novacron.Size) error {
	if err := d.Driver.Resize(ctx, id, s); err != nil {
		return err
	}
	d.mu.Lock()
	d.resizes[id]++
	hang := d.hangAfter[id]
	delete(d.hangAfter, id)
	d.mu.Unlock()
	if hang != nil {
		close(hang)
		select {}
	}
	return nil
}

func (d *perVMDriver) counts() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]int, len(d.resizes))
	for k, v := range d.resizes {
		out[k] = v
	}
	return out
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestTwoActuatorsSharingPostgresActOnce runs two actuators on one
// PostgreSQL database, each with its own connection pool and its own
// driver wrapper around the same fleet, and feeds both the same events.
// Only the lease holder may call its driver, and each action's resize
// runs exactly once. The leader then dies in the middle of a step; the
// other takes the lease after its TTL and finishes the action without
// resizing again, and without touching the finished ones.
func TestTwoActuatorsSharingPostgresActOnce(t *testing.T) {
	ctx := context.Background()
	dsn := testserver.PostgresDSN(t)
	open := func() *statedb.DB {
		cfg := statedb.NewDefaultConfig()
		cfg.Driver = statedb.DriverPostgres
		cfg.Postgres.DSN = dsn
		return openDB(t, cfg)
	}
	e := newSim(t, nil)
	cfg := testConfig(actuator.ModeAuto)
	cfg.Lease.TTL, cfg.Lease.RenewInterval = 400*time.Millisecond, 50*time.Millisecond
	cfg.VerifyWindow = 50 * time.Millisecond

	drvA, drvB := newPerVM(e.fleet), newPerVM(e.fleet)
	a, err := actuator.New(cfg, actuator.Settings{}, actuator.Deps{DB: open(), Drivers: map[string]novacron.Driver{"sim": drvA}})
	require.NoError(t, err)
	require.NoError(t, a.Start(ctx))
	require.Eventually(t, a.Leader, 5*time.Second, 5*time.Millisecond)
	b := startActuator(t, cfg, open(), drvB, nil, nil)

	inv := e.fleet.Inventory(e.t)
	first := []string{inv.VMs[0].ID, inv.VMs[1].ID, inv.VMs[2].ID}
	var evs []novacron.Event
	for i, vm := range first {
		evs = append(evs, breach(vm, i))
	}
	require.NoError(t, a.ConsumeEvents(ctx, evs))
	require.NoError(t, b.ConsumeEvents(ctx, evs))
	var ids []string
	for _, vm := range first {
		acts, err := b.List(ctx, actuator.ActionFilter{VMID: vm})
		require.NoError(t, err)
		require.Len(t, acts, 1, "an event consumed by both plans one action, even after the VM changed")
		ids = append(ids, acts[0].ID)
	}
	for _, id := range ids {
		done := waitState(t, b, id, actuator.StateSucceeded, actuator.StateFailed, actuator.StateRolledBack)
		require.Equal(t, actuator.StateSucceeded, done.State, done.Result)
	}
	require.True(t, a.Leader())
	require.False(t, b.Leader())
	require.Equal(t, map[string]int{first[0]: 1, first[1]: 1, first[2]: 1}, drvA.counts(), "the leader resized each VM once")
	require.Empty(t, drvB.counts(), "the follower never called its driver")

	// The leader dies mid-step: the resize went through, the ledger does
	// not know yet.
	victim := inv.VMs[3].ID
	orig, err := e.fleet.VM(ctx, victim)
	require.NoError(t, err)
	hung := make(chan struct{})
	drvA.mu.Lock()
	drvA.hangAfter[victim] = hung
	drvA.mu.Unlock()
	ev := breach(victim, 9)
	require.NoError(t, a.ConsumeEvents(ctx, []novacron.Event{ev}))
	require.NoError(t, b.ConsumeEvents(ctx, []novacron.Event{ev}))
	<-hung
	sctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_ = a.Shutdown(sctx) // the stuck worker never returns: the lease is not released, it expires
	cancel()

	require.Eventually(t, b.Leader, 5*time.Second, 5*time.Millisecond, "the follower takes the lease after its TTL")
	acts, err := b.List(ctx, actuator.ActionFilter{VMID: victim})
	require.NoError(t, err)
	require.Len(t, acts, 1)
	done := waitState(t, b, acts[0].ID, actuator.StateSucceeded, actuator.StateFailed, actuator.StateRolledBack)
	require.Equal(t, actuator.StateSucceeded, done.State, done.Result)
	vm, err := e.fleet.VM(ctx, victim)
	require.NoError(t, err)
	require.Equal(t, orig.Size.VCPUs+2, vm.Size.VCPUs, "resized once, by the dead leader")
	require.Empty(t, drvB.counts(), "the new leader saw the step done and did not resize again, nor re-ran finished actions")
	require.Equal(t, 4, sum(drvA.counts()))
	for _, id := range ids {
		act, err := b.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, actuator.StateSucceeded, act.State)
	}
}
