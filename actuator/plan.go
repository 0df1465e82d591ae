package actuator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	novacron "github.com/novacron/novacron"
)

// syncPolicies reloads the policies when the stored generation differs
// from the one loaded (always on the first call): the configured ones,
// replaced or joined by name by those stored through the API. Reloads
// are serialised, and the generation is read before the policies, so
// the policies applied are never older than the generation recorded.
func (a *Actuator) syncPolicies(ctx context.Context) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	begin := time.Now()
	gen, err := a.st.policyGeneration(ctx)
	if err != nil {
		a.m.policyReloads.WithLabelValues("error").Inc()
		return err
	}
	a.mu.Lock()
	prev, loaded := a.policyGen, a.policiesLoaded
	a.mu.Unlock()
	if loaded && gen == prev {
		return nil
	}
	stored, err := a.st.policies(ctx)
	if err != nil {
		a.m.policyReloads.WithLabelValues("error").Inc()
		return err
	}
	policies := slices.Clone(a.basePolicies)
	for _, p := range stored {
		if i := slices.IndexFunc(policies, func(q Policy) bool { return q.Name == p.Name }); i >= 0 {
			policies[i] = p
		} else {
			policies = append(policies, p)
		}
	}
	a.mu.Lock()
	a.policies, a.policyGen, a.policiesLoaded = policies, gen, true
	a.mu.Unlock()
	a.m.policyReloads.WithLabelValues("success").Inc()
	a.m.policyGeneration.Set(float64(gen))
	if loaded {
		a.logger.Info("policies reloaded", "generation", gen, "previous_generation", prev, "policies", len(policies), "stored", len(stored), "duration", time.Since(begin))
	}
	return nil
}

// policyLoop polls the policies' generation every
// policy_reload_interval and reloads them when another replica (or this
// one) changed them.
func (a *Actuator) policyLoop(ctx context.Context) {
	defer a.wg.Done()
	t := time.NewTicker(a.cfg.PolicyReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := a.syncPolicies(ctx); err != nil && ctx.Err() == nil {
			a.logger.Warn("reloading policies failed", "err", err)
		}
	}
}

// PolicyGeneration returns the generation of the stored policies this
// actuator has loaded: every change through PutPolicy, on any replica,
// raises it by one.
func (a *Actuator) PolicyGeneration() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.policyGen
}

// Policies returns the policies in force, each with its effective mode.
func (a *Actuator) Policies() []Policy {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := slices.Clone(a.policies)
	for i := range out {
		out[i].Mode = a.mode(out[i])
	}
	return out
}

func (a *Actuator) mode(p Policy) string {
	if p.Mode == "" {
		return a.cfg.DefaultMode
	}
	return p.Mode
}

// PutPolicy adds or replaces a policy by name and stores it for every
// replica: this one applies it at once, the others when they next poll
// the policies' generation (policy_reload_interval).
func (a *Actuator) PutPolicy(ctx context.Context, p Policy) error {
	if err := p.Validate("policy"); err != nil {
		return &novacron.Error{Code: novacron.EINVALID, Message: err.Error(), Err: err}
	}
	if err := a.st.putPolicy(ctx, p, a.now()); err != nil {
		return fmt.Errorf("store policy %s: %w", p.Name, err)
	}
	return a.syncPolicies(ctx)
}

// ConsumeInventory records the fleet, for migration targets, host
// capacity and tenant budgets.
func (a *Actuator) ConsumeInventory(_ context.Context, inv novacron.Inventory) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, h := range inv.Hosts {
		a.hosts[h.ID] = h
	}
	for _, vm := range inv.VMs {
		a.vms[vm.ID] = vm
	}
	return nil
}

// hostRoom returns the vCPUs allocated on host (without vm skip) and the
// free memory; ok is false when the host is unknown.
func (a *Actuator) hostRoom(host, skip string) (vcpus int, freeMem int64, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h, ok := a.hosts[host]
	if !ok {
		return 0, 0, false
	}
	freeMem = h.MemoryBytes
	for _, vm := range a.vms {
		if vm.Host == host && vm.ID != skip && vm.State == novacron.PowerRunning {
			vcpus += vm.Size.VCPUs
			freeMem -= vm.Size.MemoryBytes
		}
	}
	return vcpus, freeMem, true
}

// ConsumeEvents matches events against the policies and plans actions.
// Duplicates (the same VM, action and generation) are recognised by the
// action id and recorded once. It returns an error only when the state
// database fails, so the subscriber retries the record.
func (a *Actuator) ConsumeEvents(ctx context.Context, events []novacron.Event) error {
	for _, ev := range events {
		if ev.Source == "actuator" {
			continue // our own action_state and alert events
		}
		if err := a.consume(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

func (a *Actuator) consume(ctx context.Context, ev novacron.Event) (err error) {
	policies := a.Policies()
	matched := false
	for _, p := range policies {
		if slices.Contains(p.Match.Kinds, ev.Kind) {
			matched = true
		}
	}
	if !matched {
		a.m.events.WithLabelValues("unmatched").Inc()
		return nil
	}
	// An event consumed before (redelivered by the bus, repeated by
	// Alertmanager, fed to two replicas) plans nothing again: the VM may
	// have changed since, and a plan against its new generation would be
	// a second action for the same cause. The event is stored only once
	// its actions are in the ledger, so a crash in between replans it.
	if seen, err := a.st.seenEvent(ctx, ev); err != nil {
		return fmt.Errorf("look up event %s: %w", ev.ID, err)
	} else if seen {
		a.m.events.WithLabelValues("duplicate").Inc()
		return nil
	}
	defer func() {
		if err == nil {
			if err = a.st.saveEvent(ctx, ev); err != nil {
				err = fmt.Errorf("store event %s: %w", ev.ID, err)
			}
		}
	}()
	for _, p := range policies {
		if p.Mode == ModeOff || !p.Matches(ev) {
			continue
		}
		act, err := a.plan(ctx, p, ev)
		if err != nil {
			if novacron.ErrorCode(err) == novacron.EINTERNAL {
				return err
			}
			a.m.events.WithLabelValues("dropped").Inc()
			if novacron.ErrorCode(err) == novacron.EUNSUPPORTED {
				// The provider cannot do what the policy asks (no instance
				// type fits): worth an operator's attention.
				a.logger.Warn("no action planned", "vm_id", ev.VMID, "policy", p.Name, "err", err)
			} else {
				a.logger.Debug("no action planned", "vm_id", ev.VMID, "policy", p.Name, "err", err)
			}
			continue
		}
		if act == nil {
			continue
		}
		if _, err := a.st.get(ctx, act.ID); err == nil {
			a.m.events.WithLabelValues("duplicate").Inc()
			continue
		}
		actor := "policy:" + p.Name
		inserted, err := a.st.insert(ctx, act, AuditEntry{ActionID: act.ID, VMID: act.VMID, Time: act.CreatedAt, Actor: actor,
			Event: "plan", ToState: act.State, Message: act.Explanation})
		if err != nil {
			return err
		}
		if !inserted {
			a.m.events.WithLabelValues("duplicate").Inc()
			continue
		}
		a.m.events.WithLabelValues("planned").Inc()
		a.m.actions.WithLabelValues(act.State).Inc()
		a.q.add(act.VMID)
	}
	return nil
}

// plan builds the action policy p takes for ev, without recording it. It
// returns nil, nil when nothing needs doing (the VM is at the bound), and
// a *novacron.Error when the event names no usable VM.
func (a *Actuator) plan(ctx context.Context, p Policy, ev novacron.Event) (*Action, error) {
	vmID := ev.VMID
	if vmID == "" && p.Action.Kind == novacron.ActionMigrate && ev.Host != "" {
		vmID = a.noisiest(ctx, ev.Host)
	}
	if vmID == "" {
		return nil, novacron.Errorf(novacron.EINVALID, "event %s names no VM", ev.ID)
	}
	provider := ev.Labels["provider"]
	if provider == "" {
		a.mu.Lock()
		provider = a.vms[vmID].Provider
		a.mu.Unlock()
	}
	if provider == "" && len(a.deps.Drivers) == 1 {
		for k := range a.deps.Drivers {
			provider = k
		}
	}
	drv, ok := a.deps.Drivers[provider]
	if !ok {
		return nil, novacron.Errorf(novacron.EINVALID, "no driver for provider %q of vm %s", provider, vmID)
	}
	sctx, cancel := context.WithTimeout(ctx, a.cfg.StepTimeout)
	vm, err := drv.VM(sctx, vmID)
	cancel()
	if err != nil {
		if novacron.ErrorCode(err) == novacron.EINTERNAL {
			err = &novacron.Error{Code: novacron.EUNAVAILABLE, Message: "observe vm " + vmID, Err: err}
		}
		return nil, err
	}
	now := a.now()
	act := &Action{
		ID: ActionID(vm.ID, p.Action.Kind, vm.Generation), VMID: vm.ID, Provider: provider, Tenant: vm.Tenant, Host: vm.Host,
		Policy: p.Name, Mode: a.mode(p), Kind: p.Action.Kind, Generation: vm.Generation, State: StateProposed,
		Original: Target{VCPUs: vm.Size.VCPUs, MemoryBytes: vm.Size.MemoryBytes, Host: vm.Host, Power: vm.State},
		Evidence: []Evidence{{EventID: ev.ID, Kind: ev.Kind, Time: ev.Time, Summary: ev.Summary, Severity: ev.Severity, Query: ev.Evidence}},
		Verify:   p.Verify, CreatedAt: now, UpdatedAt: now,
	}
	var what string
	switch p.Action.Kind {
	case novacron.ActionResize:
		want := p.Action.VCPUs
		if want == 0 {
			want = vm.Size.VCPUs + p.Action.AddVCPUs
		}
		if p.Action.MaxVCPUs > 0 {
			want = min(want, p.Action.MaxVCPUs)
		}
		if want == vm.Size.VCPUs {
			return nil, nil
		}
		act.Desired = Target{VCPUs: want}
		act.Original = Target{VCPUs: vm.Size.VCPUs, MemoryBytes: vm.Size.MemoryBytes, InstanceType: vm.Size.InstanceType}
		what = fmt.Sprintf("resize from %d to %d vCPUs", vm.Size.VCPUs, want)
		if r, ok := drv.(SizeResolver); ok {
			sctx, cancel := context.WithTimeout(ctx, a.cfg.StepTimeout)
			to, err := r.ResolveSize(sctx, vm.ID, novacron.Size{VCPUs: want, MemoryBytes: vm.Size.MemoryBytes})
			cancel()
			if err != nil {
				if novacron.ErrorCode(err) == novacron.EINTERNAL {
					err = &novacron.Error{Code: novacron.EUNAVAILABLE, Message: "resolve size of vm " + vm.ID, Err: err}
				}
				return nil, err
			}
			if to.InstanceType == vm.Size.InstanceType {
				return nil, nil // the smallest type that fits is the current one
			}
			if p.Action.MaxVCPUs > 0 && to.VCPUs > p.Action.MaxVCPUs {
				return nil, novacron.Errorf(novacron.EUNSUPPORTED, "the smallest instance type for vm %s with at least %d vCPUs is %s with %d vCPUs, above max_vcpus %d",
					vm.ID, want, to.InstanceType, to.VCPUs, p.Action.MaxVCPUs)
			}
			act.Desired = Target{VCPUs: to.VCPUs, MemoryBytes: to.MemoryBytes, InstanceType: to.InstanceType}
			what = fmt.Sprintf("resize from %s (%d vCPUs) to %s (%d vCPUs", vm.Size.InstanceType, vm.Size.VCPUs, to.InstanceType, to.VCPUs)
			if to.VCPUs != want {
				what += fmt.Sprintf(", the smallest type with at least %d", want)
			}
			what += ")"
		}
		if p.Action.MaxVCPUs > 0 {
			what += fmt.Sprintf(" (at most %d)", p.Action.MaxVCPUs)
		}
	case novacron.ActionMigrate:
		to := p.Action.Target
		if to == "" || to == "least_loaded" {
			to = a.leastLoaded(vm)
		}
		if to == "" || to == vm.Host {
			return nil, novacron.Errorf(novacron.ECONFLICT, "no host with room for vm %s", vm.ID)
		}
		act.Desired = Target{Host: to}
		act.Original = Target{Host: vm.Host}
		what = fmt.Sprintf("migrate from host %s to %s", vm.Host, to)
	case novacron.ActionStop:
		if vm.State == novacron.PowerStopped {
			return nil, nil
		}
		act.Desired, act.Original = Target{Power: novacron.PowerStopped}, Target{Power: vm.State}
		what = "stop"
	case novacron.ActionStart:
		if vm.State == novacron.PowerRunning {
			return nil, nil
		}
		act.Desired, act.Original = Target{Power: novacron.PowerRunning}, Target{Power: vm.State}
		what = "start"
	case novacron.ActionReboot:
		what = "reboot"
	}
	act.Explanation = fmt.Sprintf("policy %s (%s) matched %s event %s", p.Name, act.Mode, ev.Kind, ev.ID)
	if ev.Summary != "" {
		act.Explanation += fmt.Sprintf(" (%s)", ev.Summary)
	}
	act.Explanation += fmt.Sprintf(": %s vm %s", what, vm.ID)
	if p.Verify.Query != "" && a.deps.Query != nil {
		if v, err := a.deps.Query.Query(ctx, expand(p.Verify.Query, act), now); err == nil {
			act.Baseline = &v
		}
	}
	if act.Mode == ModeAuto {
		act.State, act.ApprovedBy = StateApproved, "policy:"+p.Name
	}
	return act, nil
}

// leastLoaded returns the host, other than vm's, with the lowest share
// of its CPUs allocated and room for vm's vCPUs and memory.
func (a *Actuator) leastLoaded(vm novacron.VM) string {
	a.mu.Lock()
	hosts := make([]novacron.Host, 0, len(a.hosts))
	for _, h := range a.hosts {
		if h.ID != vm.Host && (h.Provider == "" || h.Provider == vm.Provider) {
			hosts = append(hosts, h)
		}
	}
	a.mu.Unlock()
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].ID < hosts[j].ID })
	best, bestLoad := "", 0.0
	for _, h := range hosts {
		vcpus, free, _ := a.hostRoom(h.ID, vm.ID)
		if h.CPUs < vm.Size.VCPUs || free < vm.Size.MemoryBytes {
			continue
		}
		load := float64(vcpus) / float64(max(h.CPUs, 1))
		if best == "" || load < bestLoad {
			best, bestLoad = h.ID, load
		}
	}
	return best
}

// noisiest returns the running VM on host using the most CPU cores, by
// the query interface, else by allocated vCPUs.
func (a *Actuator) noisiest(ctx context.Context, host string) string {
	a.mu.Lock()
	var cands []novacron.VM
	for _, vm := range a.vms {
		if vm.Host == host && vm.State == novacron.PowerRunning {
			cands = append(cands, vm)
		}
	}
	a.mu.Unlock()
	sort.Slice(cands, func(i, j int) bool { return cands[i].ID < cands[j].ID })
	best, bestV := "", -1.0
	for _, vm := range cands {
		v := float64(vm.Size.VCPUs)
		if a.deps.Query != nil {
			if r, err := a.deps.Query.Query(ctx, fmt.Sprintf(`max(novacron_vm_cpu_usage_ratio{vm_id=%q})`, vm.ID), a.now()); err == nil {
				v = r * float64(vm.Size.VCPUs)
			}
		}
		if v > bestV {
			best, bestV = vm.ID, v
		}
	}
	return best
}

// List returns actions, newest first.
func (a *Actuator) List(ctx context.Context, f ActionFilter) ([]Action, error) {
	return a.st.list(ctx, f)
}

// Get returns one action; ENOTFOUND when there is none.
func (a *Actuator) Get(ctx context.Context, id string) (Action, error) {
	return a.st.get(ctx, id)
}

// Audit returns audit entries, newest first.
func (a *Actuator) Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	return a.st.audit(ctx, f)
}

// Decision is an operator's decision on an action.
type Decision struct {
	// Actor names the operator.
	Actor   string `json:"actor"`
	Comment string `json:"comment"`
}

// operate applies an operator's transition when the action is in one of
// the from states.
func (a *Actuator) operate(ctx context.Context, id string, d Decision, to, event string, from ...string) (Action, error) {
	act, err := a.st.get(ctx, id)
	if err != nil {
		return act, err
	}
	if !slices.Contains(from, act.State) {
		return act, novacron.Errorf(novacron.ECONFLICT, "action %s is %s; %s needs it %v", id, act.State, event, from)
	}
	if d.Actor == "" {
		d.Actor = "operator"
	}
	prev := act.State
	now := a.now()
	act.State, act.UpdatedAt = to, now
	if event == "approve" || event == "execute" {
		act.ApprovedBy, act.Comment = d.Actor, d.Comment
	} else if d.Comment != "" {
		act.Comment = d.Comment
	}
	if event == "execute" {
		act.Mode = ModeApprove // an operator ran a dry-run plan
	}
	if Terminal(to) {
		act.FinishedAt = now
	}
	msg := d.Comment
	if msg == "" {
		msg = event + " by " + d.Actor
	}
	if err := a.st.update(ctx, &act, prev, "", 0, &AuditEntry{ActionID: act.ID, VMID: act.VMID, Time: now, Actor: d.Actor,
		Event: event, FromState: prev, ToState: to, Message: msg}); err != nil {
		if errors.Is(err, errFenced) {
			return act, novacron.Errorf(novacron.ECONFLICT, "action %s changed meanwhile; retry", id)
		}
		return act, err
	}
	a.m.actions.WithLabelValues(to).Inc()
	if prev != to && (inFlight(prev) || inFlight(to)) {
		a.publishState(ctx, &act)
	}
	a.q.add(act.VMID)
	return act, nil
}

// Approve approves a proposed action (not a dry-run plan: use Execute).
func (a *Actuator) Approve(ctx context.Context, id string, d Decision) (Action, error) {
	act, err := a.st.get(ctx, id)
	if err == nil && act.Mode == ModeDryRun {
		return act, novacron.Errorf(novacron.ECONFLICT, "action %s is a dry-run plan; execute it to run it", id)
	}
	return a.operate(ctx, id, d, StateApproved, "approve", StateProposed)
}

// Reject rejects a proposed or approved action that has not started.
func (a *Actuator) Reject(ctx context.Context, id string, d Decision) (Action, error) {
	return a.operate(ctx, id, d, StateRejected, "reject", StateProposed, StateApproved)
}

// Execute approves an action, dry-run plans included, to run as soon as
// the safety rails allow.
func (a *Actuator) Execute(ctx context.Context, id string, d Decision) (Action, error) {
	return a.operate(ctx, id, d, StateApproved, "execute", StateProposed)
}

// Cancel cancels an action that has not finished. A running step already
// sent to the driver is not undone: roll back instead.
func (a *Actuator) Cancel(ctx context.Context, id string, d Decision) (Action, error) {
	return a.operate(ctx, id, d, StateCancelled, "cancel", StateProposed, StateApproved, StateRunning)
}

// Rollback undoes a running, verifying or succeeded resize or migration.
func (a *Actuator) Rollback(ctx context.Context, id string, d Decision) (Action, error) {
	act, err := a.st.get(ctx, id)
	if err != nil {
		return act, err
	}
	if !act.undoable() {
		return act, novacron.Errorf(novacron.EUNSUPPORTED, "a %s cannot be rolled back", act.Kind)
	}
	return a.operate(ctx, id, d, StateRollingBack, "rollback", StateRunning, StateVerifying, StateSucceeded)
}

// KillSwitch reports whether the kill switch is on.
func (a *Actuator) KillSwitch(ctx context.Context) (bool, error) {
	v, _, err := a.st.setting(ctx, "kill_switch")
	return v == "true", err
}

// SetKillSwitch turns the kill switch on or off for every replica.
func (a *Actuator) SetKillSwitch(ctx context.Context, on bool, actor string) error {
	if err := a.st.setSetting(ctx, "kill_switch", fmt.Sprint(on)); err != nil {
		return fmt.Errorf("store kill switch: %w", err)
	}
	a.logger.Warn("kill switch changed", "on", on, "actor", actor)
	if !on {
		a.enqueuePending(ctx)
	}
	return nil
}

// WhatIfResult is what a policy would have done over a period.
type WhatIfResult struct {
	Policy string    `json:"policy"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	// Events is how many stored events the policy was run against.
	Events int `json:"events"`
	// Actions are the actions it would have planned (the VMs' current
	// state stands in for their state at the time), at most one per VM
	// per cooldown.
	Actions []Action `json:"actions"`
}

// WhatIf runs policy p (a stored one by name when p.Name is set and
// p.Match is empty) against the events stored over the last days,
// recording nothing and changing nothing.
func (a *Actuator) WhatIf(ctx context.Context, p Policy, days int) (WhatIfResult, error) {
	if len(p.Match.Kinds) == 0 {
		i := slices.IndexFunc(a.Policies(), func(q Policy) bool { return q.Name == p.Name })
		if i < 0 {
			return WhatIfResult{}, novacron.Errorf(novacron.ENOTFOUND, "policy %q not found", p.Name)
		}
		p = a.Policies()[i]
	} else if err := p.Validate("policy"); err != nil {
		return WhatIfResult{}, &novacron.Error{Code: novacron.EINVALID, Message: err.Error(), Err: err}
	}
	if days <= 0 || days > 366 {
		return WhatIfResult{}, novacron.Errorf(novacron.EINVALID, "days must be between 1 and 366, got %d", days)
	}
	to := a.now()
	from := to.Add(-time.Duration(days) * 24 * time.Hour)
	evs, err := a.st.events(ctx, from)
	if err != nil {
		return WhatIfResult{}, err
	}
	res := WhatIfResult{Policy: p.Name, From: from, To: to, Events: len(evs), Actions: []Action{}}
	p.Mode = ModeDryRun
	last := map[string]time.Time{}
	for _, ev := range evs {
		if !p.Matches(ev) {
			continue
		}
		act, err := a.plan(ctx, p, ev)
		if err != nil || act == nil {
			continue
		}
		if t, ok := last[act.VMID]; ok && ev.Time.Sub(t) < max(a.cfg.Cooldown, time.Nanosecond) {
			continue
		}
		last[act.VMID] = ev.Time
		act.CreatedAt, act.UpdatedAt = ev.Time, ev.Time
		res.Actions = append(res.Actions, *act)
	}
	return res, nil
}
