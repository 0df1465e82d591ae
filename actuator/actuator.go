package actuator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/statedb"
)

// Querier evaluates a PromQL expression at a time and returns its single
// value (the first sample of a vector, or a scalar). It returns an error
// wrapping ENOTFOUND when the result is empty. Implementations are safe
// for concurrent use.
type Querier interface {
	Query(ctx context.Context, expr string, t time.Time) (float64, error)
}

// QueryFunc adapts a function to Querier.
type QueryFunc func(ctx context.Context, expr string, t time.Time) (float64, error)

// Query calls f.
func (f QueryFunc) Query(ctx context.Context, expr string, t time.Time) (float64, error) {
	return f(ctx, expr, t)
}

// Topics names the bus topics the actuator writes.
type Topics struct {
	// Events is where action_state and alerting incident events go.
	Events string
}

// Settings are what the binary injects.
type Settings struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Deps are the actuator's collaborators.
type Deps struct {
	// DB is the state database holding the ledger. Required.
	DB *statedb.DB
	// Drivers act on VMs, keyed by provider ("sim", "libvirt", "aws").
	// Required: at least one.
	Drivers map[string]novacron.Driver
	// Bus and Topics, when set, carry the events the actuator publishes.
	Bus    novacron.Bus
	Topics Topics
	// Sink, when set, also receives those events (an in-process alerting
	// component, a test recorder).
	Sink novacron.EventConsumer
	// Query evaluates verification queries. Without it, actions with a
	// verify query succeed on the observed state alone, and are so marked.
	Query Querier
}

// SizeResolver is implemented by drivers whose sizes are named types
// (EC2 instance types): ResolveSize returns the size, with its type name,
// vCPUs and memory, that Resize would give VM id for the request (zero
// fields of the request keep the VM's current value). The actuator calls
// it when it plans a resize in vCPUs, so that the action names the type
// it sets, is compared with the VM by that type, and is dropped when no
// type fits (the driver's EINVALID or EUNSUPPORTED error says why).
// Implementations are safe for concurrent use and change nothing.
type SizeResolver interface {
	ResolveSize(ctx context.Context, id string, size novacron.Size) (novacron.Size, error)
}

// Actuator plans and executes VM actions. It implements
// novacron.EventConsumer (events in) and novacron.InventoryConsumer (the
// fleet, for placement and tenant budgets). Its methods are safe for
// concurrent use.
type Actuator struct {
	cfg     Config
	logger  *slog.Logger
	now     func() time.Time
	deps    Deps
	st      *store
	m       *metrics
	q       *queue
	opToken string
	holder  string

	// basePolicies are the configured policies; stored ones replace or
	// join them by name.
	basePolicies []Policy
	reloadMu     sync.Mutex // serialises policy reloads

	mu             sync.Mutex
	policies       []Policy
	policyGen      int64 // generation of the stored policies loaded
	policiesLoaded bool
	hosts          map[string]novacron.Host
	vms            map[string]novacron.VM
	fence          int64 // lease token while leader, else 0
	leaseTil       time.Time

	startMu sync.Mutex // serialises the budget check and start of actions

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
	stopped bool
}

var (
	_ novacron.EventConsumer     = (*Actuator)(nil)
	_ novacron.InventoryConsumer = (*Actuator)(nil)
)

// New builds an actuator. It returns cfg's validation errors, and errors
// for missing dependencies, an unreadable operator token or policies
// file, and metrics that cannot be registered.
func New(cfg Config, set Settings, deps Deps) (*Actuator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.DB == nil {
		return nil, errors.New("actuator: no state database")
	}
	if len(deps.Drivers) == 0 {
		return nil, errors.New("actuator: no drivers")
	}
	policies, err := cfg.loadPolicies()
	if err != nil {
		return nil, err
	}
	tok, err := cfg.operatorToken()
	if err != nil {
		return nil, err
	}
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	if set.Now == nil {
		set.Now = time.Now
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	a := &Actuator{
		cfg: cfg, logger: set.Logger.With("component", "actuator"), now: set.Now, deps: deps,
		st: &store{db: deps.DB, leaseName: cfg.Lease.Name}, q: newQueue(), opToken: tok,
		holder: hex.EncodeToString(b[:]), policies: policies, basePolicies: slices.Clone(policies),
		hosts: map[string]novacron.Host{}, vms: map[string]novacron.VM{},
	}
	a.m, err = newMetrics(set.Registerer, func() float64 { return float64(a.q.len()) })
	if err != nil {
		return nil, err
	}
	return a, nil
}

// OperatorToken returns the token operator routes require ("" when none is
// configured, or on a nil actuator: those routes are then refused).
func (a *Actuator) OperatorToken() string {
	if a == nil {
		return ""
	}
	return a.opToken
}

// Start migrates the schema, loads stored policies and starts the lease
// loop, the policy reload loop and the workers. It returns once they run.
func (a *Actuator) Start(ctx context.Context) error {
	a.mu.Lock()
	if a.started || a.stopped {
		a.mu.Unlock()
		return errors.New("actuator: started twice or after shutdown")
	}
	a.started = true
	a.mu.Unlock()
	begin := time.Now()
	if err := a.deps.DB.Migrate(ctx, Migrations()); err != nil {
		return fmt.Errorf("actuator schema: %w", err)
	}
	if err := a.syncPolicies(ctx); err != nil {
		return err
	}
	if a.cfg.KillSwitch {
		if err := a.st.setSetting(ctx, "kill_switch", "true"); err != nil {
			return fmt.Errorf("store kill switch: %w", err)
		}
	}
	bg, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.wg.Add(1)
	go a.leaseLoop(bg)
	if a.cfg.PolicyReloadInterval > 0 {
		a.wg.Add(1)
		go a.policyLoop(bg)
	}
	for range a.cfg.Workers {
		a.wg.Add(1)
		go a.worker(bg)
	}
	a.logger.Info("actuator started", "workers", a.cfg.Workers, "default_mode", a.cfg.DefaultMode, "policy_generation", a.PolicyGeneration(), "duration", time.Since(begin))
	return nil
}

// Shutdown stops the workers, waiting for reconcile passes in progress
// within ctx, and releases the lease. Safe without Start and twice.
func (a *Actuator) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return nil
	}
	a.stopped = true
	a.mu.Unlock()
	a.q.close()
	if a.cancel == nil {
		return nil
	}
	a.cancel()
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	a.mu.Lock()
	fence := a.fence
	a.fence = 0
	a.mu.Unlock()
	if fence != 0 {
		if err := a.st.releaseLease(ctx, a.holder, fence); err != nil {
			a.logger.Warn("releasing the lease failed", "err", err)
		}
	}
	a.logger.Info("actuator stopped")
	return nil
}

// Leader reports whether this actuator holds the executor lease.
func (a *Actuator) Leader() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fence != 0 && a.now().Before(a.leaseTil)
}

func (a *Actuator) leaseLoop(ctx context.Context) {
	defer a.wg.Done()
	t := time.NewTicker(a.cfg.Lease.RenewInterval)
	defer t.Stop()
	for {
		a.tryLease(ctx)
		if err := a.st.pruneEvents(ctx, a.now().Add(-a.cfg.EventRetention)); err != nil && ctx.Err() == nil {
			a.logger.Warn("pruning stored events failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *Actuator) tryLease(ctx context.Context) {
	now := a.now()
	tok, err := a.st.acquireLease(ctx, a.holder, now, a.cfg.Lease.TTL)
	if err != nil {
		if ctx.Err() == nil {
			a.logger.Warn("lease check failed", "err", err)
		}
		return
	}
	a.mu.Lock()
	was := a.fence
	// A lease that lapsed (renewals late past its TTL) and is renewed with
	// the same token is like a new one: passes in the lapse dropped their
	// keys, so the pending actions are enqueued again.
	lapsed := was != 0 && !now.Before(a.leaseTil)
	a.fence = tok
	if tok != 0 {
		a.leaseTil = now.Add(a.cfg.Lease.TTL)
	}
	a.mu.Unlock()
	if tok != 0 {
		a.m.leader.Set(1)
	} else {
		a.m.leader.Set(0)
	}
	if tok != 0 && (was != tok || lapsed) {
		a.logger.Info("actuator holds the executor lease", "token", tok)
		a.enqueuePending(ctx)
	} else if tok == 0 && was != 0 {
		a.logger.Warn("actuator lost the executor lease")
	}
}

func (a *Actuator) enqueuePending(ctx context.Context) {
	vms, err := a.st.pendingVMs(ctx)
	if err != nil {
		a.logger.Warn("listing pending actions failed", "err", err)
		return
	}
	for _, vm := range vms {
		a.q.add(vm)
	}
}

// fenceToken returns the lease token while the lease is valid, else 0.
func (a *Actuator) fenceToken() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fence == 0 || !a.now().Before(a.leaseTil) {
		return 0
	}
	return a.fence
}

func (a *Actuator) worker(ctx context.Context) {
	defer a.wg.Done()
	for {
		key, ok := a.q.get()
		if !ok {
			return
		}
		after, err := a.reconcileSafe(ctx, key)
		a.q.done(key)
		switch {
		case err != nil:
			a.logger.Warn("reconcile failed", "vm_id", key, "err", err)
			a.q.addAfter(key, a.cfg.RetryMin)
		case after > 0:
			a.q.addAfter(key, after)
		}
	}
}

// reconcileSafe runs one pass with a timeout, recovering panics.
func (a *Actuator) reconcileSafe(ctx context.Context, vmID string) (after time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.ReconcileTimeout)
	defer cancel()
	begin := time.Now()
	defer func() {
		a.m.duration.Observe(time.Since(begin).Seconds())
		if r := recover(); r != nil {
			a.m.reconciles.WithLabelValues("panic").Inc()
			a.logger.Error("reconcile panicked", "vm_id", vmID, "panic", r, "stack", string(debug.Stack()))
			after, err = 0, fmt.Errorf("panic: %v", r)
			return
		}
		switch {
		case err != nil:
			a.m.reconciles.WithLabelValues("error").Inc()
		case after > 0:
			a.m.reconciles.WithLabelValues("requeue").Inc()
		default:
			a.m.reconciles.WithLabelValues("success").Inc()
		}
	}()
	return a.reconcile(ctx, vmID)
}

// Reconcile runs one pass for the VM: it reads its unfinished actions and
// the VM the driver observes, and takes at most one step. It returns when
// to look again (0: not needed) or an error to retry with backoff.
func (a *Actuator) reconcile(ctx context.Context, vmID string) (time.Duration, error) {
	fence := a.fenceToken()
	if fence == 0 {
		return 0, nil // the leader's queue owns this VM
	}
	acts, err := a.st.list(ctx, ActionFilter{VMID: vmID, States: []string{StateProposed, StateApproved, StateRunning, StateVerifying, StateRollingBack}, Limit: 1000})
	if err != nil {
		return 0, err
	}
	if len(acts) == 0 {
		return 0, nil
	}
	sort.Slice(acts, func(i, j int) bool {
		ri, rj := inFlight(acts[i].State), inFlight(acts[j].State)
		if ri != rj {
			return ri
		}
		return acts[i].CreatedAt.Before(acts[j].CreatedAt)
	})
	now := a.now()
	var next time.Duration
	// Proposed actions only expire; approved ones wait for the first.
	for i := range acts {
		act := &acts[i]
		if act.State == StateProposed {
			exp := act.CreatedAt.Add(a.cfg.ApprovalTTL)
			if !now.Before(exp) {
				a.transition(ctx, act, StateExpired, fence, "actuator", "expire", "not approved within approval_ttl")
			} else if d := exp.Sub(now); next == 0 || d < next {
				next = d
			}
		}
	}
	for i := range acts {
		act := &acts[i]
		if act.State == StateProposed {
			continue
		}
		d, err := a.step(ctx, act, fence)
		if err != nil {
			return 0, err
		}
		if d == 0 && !Terminal(act.State) {
			d = time.Millisecond
		}
		if Terminal(act.State) {
			return time.Millisecond, nil // the next approved action, if any
		}
		return d, nil
	}
	return next, nil
}

func (a *Actuator) driver(act *Action) (novacron.Driver, error) {
	d, ok := a.deps.Drivers[act.Provider]
	if !ok {
		return nil, novacron.Errorf(novacron.EINVALID, "no driver for provider %q of vm %s", act.Provider, act.VMID)
	}
	return d, nil
}

// step advances one action by one step.
func (a *Actuator) step(ctx context.Context, act *Action, fence int64) (time.Duration, error) {
	drv, err := a.driver(act)
	if err != nil {
		a.fail(ctx, act, fence, err.Error())
		return 0, nil
	}
	observe := func() (novacron.VM, error) {
		sctx, cancel := context.WithTimeout(ctx, a.cfg.StepTimeout)
		defer cancel()
		return drv.VM(sctx, act.VMID)
	}
	switch act.State {
	case StateApproved:
		return a.startAction(ctx, act, fence, observe)
	case StateRunning, StateRollingBack:
		vm, err := observe()
		if err != nil {
			return a.stepFailed(ctx, act, fence, fmt.Errorf("observe vm %s: %w", act.VMID, err))
		}
		want := act.Desired
		if act.State == StateRollingBack {
			want = act.Original
		}
		if want.matches(vm) {
			if act.State == StateRollingBack {
				act.Result = "rolled back: " + act.Result
				a.transition(ctx, act, StateRolledBack, fence, "actuator", "rollback", "the VM is back to its original shape")
				a.raiseAlert(ctx, act, "warning")
				return 0, nil
			}
			act.VerifyFrom = a.now()
			a.transition(ctx, act, StateVerifying, fence, "actuator", "verify", fmt.Sprintf("the driver shows the desired state; watching the signal for %s", a.verifyWindow(act)))
			return a.verifyWindow(act), nil
		}
		if a.fenceToken() != fence {
			return 0, errFenced
		}
		sctx, cancel := context.WithTimeout(ctx, a.cfg.StepTimeout)
		err = a.callDriver(sctx, drv, act, want, vm)
		cancel()
		if err != nil {
			return a.stepFailed(ctx, act, fence, err)
		}
		a.audit(ctx, act, "actuator", "step", fmt.Sprintf("%s requested from %s", act.Kind, drv.Provider()))
		return a.cfg.PollInterval / 10, nil
	case StateVerifying:
		left := act.VerifyFrom.Add(a.verifyWindow(act)).Sub(a.now())
		if left > 0 {
			return left, nil
		}
		ok, why := a.verify(ctx, act)
		if ok {
			act.Result = why
			a.transition(ctx, act, StateSucceeded, fence, "actuator", "succeed", why)
			return 0, nil
		}
		act.Result = why
		if act.undoable() {
			a.transition(ctx, act, StateRollingBack, fence, "actuator", "rollback", why+"; rolling back")
			return time.Millisecond, nil
		}
		a.fail(ctx, act, fence, why+"; the action cannot be undone")
		return 0, nil
	}
	return 0, nil
}

func (a *Actuator) verifyWindow(act *Action) time.Duration {
	if act.Verify.Window > 0 {
		return act.Verify.Window
	}
	return a.cfg.VerifyWindow
}

func expand(expr string, act *Action) string {
	return strings.NewReplacer("$vm_id", act.VMID, "$host", act.Host).Replace(expr)
}

// verify reports whether the action helped, and why.
func (a *Actuator) verify(ctx context.Context, act *Action) (bool, string) {
	if act.Verify.Query == "" {
		return true, "the VM reached the desired state"
	}
	if a.deps.Query == nil {
		return true, "the VM reached the desired state (no query interface to verify the signal)"
	}
	now := a.now()
	v, err := a.deps.Query.Query(ctx, expand(act.Verify.Query, act), now)
	if err != nil {
		return false, fmt.Sprintf("the signal could not be read: %v", err)
	}
	act.Observed = &v
	if v >= act.Verify.Below {
		return false, fmt.Sprintf("the signal did not improve: %g, not below %g", v, act.Verify.Below)
	}
	if act.Baseline != nil && v >= *act.Baseline {
		return false, fmt.Sprintf("the signal did not improve: %g, not below %g before the action", v, *act.Baseline)
	}
	for _, g := range act.Verify.Guards {
		before, err1 := a.deps.Query.Query(ctx, expand(g, act), act.StartedAt)
		after, err2 := a.deps.Query.Query(ctx, expand(g, act), now)
		if err1 == nil && err2 == nil && after > before*1.1 && after-before > 0.05 {
			return false, fmt.Sprintf("%s regressed from %g to %g", g, before, after)
		}
	}
	return true, fmt.Sprintf("the signal improved to %g (below %g)", v, act.Verify.Below)
}

func (a *Actuator) callDriver(ctx context.Context, drv novacron.Driver, act *Action, want Target, vm novacron.VM) error {
	switch act.Kind {
	case novacron.ActionResize:
		mem := want.MemoryBytes
		if mem == 0 {
			mem = vm.Size.MemoryBytes
		}
		return drv.Resize(ctx, act.VMID, novacron.Size{VCPUs: want.VCPUs, MemoryBytes: mem, InstanceType: want.InstanceType})
	case novacron.ActionMigrate:
		return drv.Migrate(ctx, act.VMID, want.Host)
	case novacron.ActionStop:
		if want.Power == novacron.PowerRunning {
			return drv.Start(ctx, act.VMID)
		}
		return drv.Stop(ctx, act.VMID, a.cfg.StepTimeout/2)
	case novacron.ActionStart:
		return drv.Start(ctx, act.VMID)
	case novacron.ActionReboot:
		return drv.Reboot(ctx, act.VMID)
	}
	return novacron.Errorf(novacron.EINVALID, "unknown action kind %q", act.Kind)
}

// terminalCode reports whether a driver error cannot be fixed by retrying.
func terminalCode(err error) bool {
	switch novacron.ErrorCode(err) {
	case novacron.EINVALID, novacron.ENOTFOUND, novacron.EUNSUPPORTED, novacron.ECONFLICT:
		return true
	}
	return novacron.IsPermanent(err)
}

func (a *Actuator) stepFailed(ctx context.Context, act *Action, fence int64, err error) (time.Duration, error) {
	if errors.Is(err, errFenced) {
		return 0, nil
	}
	act.Attempts++
	act.LastError = err.Error()
	if terminalCode(err) || act.Attempts >= a.cfg.MaxAttempts {
		a.fail(ctx, act, fence, err.Error())
		return 0, nil
	}
	act.UpdatedAt = a.now()
	if uerr := a.st.update(ctx, act, act.State, a.holder, fence, &AuditEntry{ActionID: act.ID, VMID: act.VMID, Time: act.UpdatedAt,
		Actor: "actuator", Event: "retry", FromState: act.State, ToState: act.State, Message: err.Error()}); uerr != nil {
		return 0, nil
	}
	backoff := time.Duration(float64(a.cfg.RetryMin) * math.Pow(2, float64(act.Attempts-1)))
	return min(backoff, a.cfg.RetryMax), nil
}

func (a *Actuator) fail(ctx context.Context, act *Action, fence int64, why string) {
	if act.Result == "" {
		act.Result = why
	}
	a.transition(ctx, act, StateFailed, fence, "actuator", "fail", why)
	a.raiseAlert(ctx, act, "critical")
}

// startAction checks the safety rails and preconditions and starts an
// approved action.
func (a *Actuator) startAction(ctx context.Context, act *Action, fence int64, observe func() (novacron.VM, error)) (time.Duration, error) {
	a.startMu.Lock()
	defer a.startMu.Unlock()
	now := a.now()
	if rail, why, err := a.blocked(ctx, act, now); err != nil {
		return 0, err
	} else if rail != "" {
		a.m.blocked.WithLabelValues(rail).Inc()
		if act.Blocked != why {
			act.Blocked = why
			act.UpdatedAt = now
			_ = a.st.update(ctx, act, act.State, a.holder, fence, &AuditEntry{ActionID: act.ID, VMID: act.VMID, Time: now,
				Actor: "actuator", Event: "block", FromState: act.State, ToState: act.State, Message: why})
		}
		return a.cfg.PollInterval, nil
	}
	vm, err := observe()
	if err != nil {
		return a.stepFailed(ctx, act, fence, fmt.Errorf("observe vm %s: %w", act.VMID, err))
	}
	if why := a.precondition(act, vm); why != "" {
		a.fail(ctx, act, fence, "precondition: "+why)
		return 0, nil
	}
	act.Blocked = ""
	act.StartedAt = now
	a.transition(ctx, act, StateRunning, fence, "actuator", "start", fmt.Sprintf("starting %s of vm %s", act.Kind, act.VMID))
	return time.Millisecond, nil
}

// blocked names the safety rail that holds act back, if any.
func (a *Actuator) blocked(ctx context.Context, act *Action, now time.Time) (rail, why string, err error) {
	if on, _, err := a.st.setting(ctx, "kill_switch"); err != nil {
		return "", "", err
	} else if on == "true" {
		return "kill_switch", "the kill switch is on", nil
	}
	for _, w := range a.cfg.FreezeWindows {
		if !now.Before(w.Start) && now.Before(w.End) {
			return "freeze", fmt.Sprintf("freeze window until %s", w.End.Format(time.RFC3339)), nil
		}
	}
	if len(a.cfg.MaintenanceWindows) > 0 && strings.HasPrefix(act.ApprovedBy, "policy:") {
		in := false
		for _, w := range a.cfg.MaintenanceWindows {
			in = in || w.contains(now)
		}
		if !in {
			return "maintenance", "automatic actions wait for a maintenance window", nil
		}
	}
	started, inflight, tenantInflight, lastStart, err := a.st.counts(ctx, now.Add(-time.Hour), act.Tenant, act.VMID)
	if err != nil {
		return "", "", err
	}
	b := a.cfg.Budgets
	if b.ActionsPerHour > 0 && started >= b.ActionsPerHour {
		return "actions_per_hour", fmt.Sprintf("budget: %d actions started in the last hour (budgets.actions_per_hour)", started), nil
	}
	if b.Concurrent > 0 && inflight >= b.Concurrent {
		return "concurrent", fmt.Sprintf("budget: %d actions in flight (budgets.concurrent)", inflight), nil
	}
	if b.TenantShare > 0 && act.Tenant != "" {
		n := a.tenantSize(act.Tenant)
		limit := max(1, int(math.Floor(b.TenantShare*float64(n))))
		if tenantInflight >= limit {
			return "tenant_share", fmt.Sprintf("budget: %d of tenant %s's %d VMs in flight (budgets.tenant_share)", tenantInflight, act.Tenant, n), nil
		}
	}
	if a.cfg.Cooldown > 0 && !lastStart.IsZero() && now.Sub(lastStart) < a.cfg.Cooldown {
		return "cooldown", fmt.Sprintf("cooldown: the VM's last action started %s ago", now.Sub(lastStart).Round(time.Second)), nil
	}
	return "", "", nil
}

func (a *Actuator) tenantSize(tenant string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, vm := range a.vms {
		if vm.Tenant == tenant {
			n++
		}
	}
	return n
}

// precondition returns why act cannot start on vm, or "".
func (a *Actuator) precondition(act *Action, vm novacron.VM) string {
	switch act.Kind {
	case novacron.ActionResize, novacron.ActionMigrate, novacron.ActionReboot, novacron.ActionStop:
		if vm.State != novacron.PowerRunning && !act.Desired.matches(vm) {
			return fmt.Sprintf("vm %s is %s, not running", vm.ID, vm.State)
		}
	}
	if act.Kind == novacron.ActionResize && act.Desired.VCPUs > 0 {
		a.mu.Lock()
		h, ok := a.hosts[vm.Host]
		a.mu.Unlock()
		if ok && h.CPUs > 0 && act.Desired.VCPUs > h.CPUs {
			return fmt.Sprintf("host %s has %d CPUs, fewer than %d vCPUs", h.ID, h.CPUs, act.Desired.VCPUs)
		}
	}
	if act.Kind == novacron.ActionMigrate {
		if _, free, ok := a.hostRoom(act.Desired.Host, vm.ID); ok && free < vm.Size.MemoryBytes {
			return fmt.Sprintf("host %s has no room for vm %s", act.Desired.Host, vm.ID)
		}
	}
	return ""
}

// transition moves act to state and records it; a lost race or lease is
// logged and left to the next pass.
func (a *Actuator) transition(ctx context.Context, act *Action, to string, fence int64, actor, event, msg string) {
	from := act.State
	now := a.now()
	act.State, act.UpdatedAt = to, now
	if Terminal(to) {
		act.FinishedAt = now
	}
	err := a.st.update(ctx, act, from, a.holder, fence, &AuditEntry{ActionID: act.ID, VMID: act.VMID, Time: now,
		Actor: actor, Event: event, FromState: from, ToState: to, Message: msg})
	if err != nil {
		act.State = from
		a.logger.Warn("recording an action's state failed", "vm_id", act.VMID, "action_id", act.ID, "to", to, "err", err)
		return
	}
	a.m.actions.WithLabelValues(to).Inc()
	a.logger.Info("action state changed", "vm_id", act.VMID, "action_id", act.ID, "from", from, "to", to, "msg", msg)
	a.publishState(ctx, act)
}

func (a *Actuator) audit(ctx context.Context, act *Action, actor, event, msg string) {
	if err := a.st.db.InTx(ctx, func(tx *statedb.Tx) error {
		return appendAudit(ctx, tx, AuditEntry{ActionID: act.ID, VMID: act.VMID, Time: a.now(), Actor: actor, Event: event,
			FromState: act.State, ToState: act.State, Message: msg})
	}); err != nil {
		a.logger.Warn("audit failed", "vm_id", act.VMID, "err", err)
	}
}

// publishState publishes an action_state event: alerting inhibits the
// VM's other alerts while the state is running or verifying.
func (a *Actuator) publishState(ctx context.Context, act *Action) {
	state := act.State
	if state == StateRollingBack {
		state = "in_progress" // alerting's in-flight vocabulary
	}
	sev := "info"
	switch act.State {
	case StateFailed:
		sev = "critical"
	case StateRolledBack:
		sev = "warning"
	}
	a.publish(ctx, novacron.Event{
		SchemaVersion: novacron.EventSchemaVersion,
		ID:            fmt.Sprintf("%s/%s", act.ID, act.State),
		Kind:          novacron.EventActionStateChange,
		Time:          a.now(),
		Source:        "actuator",
		VMID:          act.VMID,
		Host:          act.Host,
		Labels:        map[string]string{"action": string(act.Kind), "policy": act.Policy},
		Summary:       fmt.Sprintf("%s of vm %s is %s", act.Kind, act.VMID, act.State),
		Severity:      sev,
		Details:       map[string]any{"state": state, "action": string(act.Kind), "action_id": act.ID, "actuator_state": act.State},
	})
}

// raiseAlert publishes an incident event, which alerting turns into a
// NovaCronIncident alert: an action failed or had to be rolled back.
func (a *Actuator) raiseAlert(ctx context.Context, act *Action, severity string) {
	evidence := ""
	if act.Verify.Query != "" {
		evidence = expand(act.Verify.Query, act)
	}
	a.publish(ctx, novacron.Event{
		SchemaVersion: novacron.EventSchemaVersion,
		ID:            act.ID + "/alert",
		Kind:          novacron.EventIncident,
		Time:          a.now(),
		Source:        "actuator",
		VMID:          act.VMID,
		Host:          act.Host,
		Labels:        map[string]string{"type": "action_" + act.State, "action": string(act.Kind), "policy": act.Policy},
		Summary:       fmt.Sprintf("%s of vm %s %s: %s", act.Kind, act.VMID, act.State, act.Result),
		Severity:      severity,
		Evidence:      evidence,
		Details:       map[string]any{"status": "open", "action_id": act.ID, "state": act.State},
	})
}

func (a *Actuator) publish(ctx context.Context, ev novacron.Event) {
	if a.deps.Sink != nil {
		if err := a.deps.Sink.ConsumeEvents(ctx, []novacron.Event{ev}); err != nil {
			a.logger.Warn("delivering an event failed", "vm_id", ev.VMID, "err", err)
		}
	}
	if a.deps.Bus == nil || a.deps.Topics.Events == "" {
		return
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	if err := a.deps.Bus.Produce(ctx, &novacron.Record{Topic: a.deps.Topics.Events, Key: []byte(ev.VMID), Value: b, Timestamp: ev.Time}); err != nil {
		a.logger.Warn("publishing an event failed", "vm_id", ev.VMID, "err", err)
	}
}
