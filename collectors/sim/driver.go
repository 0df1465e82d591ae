package sim

import (
	"context"
	"fmt"
	"time"

	novacron "github.com/novacron/novacron"
)

// Provider returns "sim".
func (f *Fleet) Provider() string { return Provider }

// VM returns the observed state of one VM.
func (f *Fleet) VM(ctx context.Context, id string) (novacron.VM, error) {
	if err := ctxErr(ctx); err != nil {
		return novacron.VM{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, err := f.lookup(id)
	if err != nil {
		return novacron.VM{}, err
	}
	return f.vmView(v), nil
}

// Start powers a stopped VM on. Its counters restart from 0 and incidents
// that began before the boot (runaway, leak) no longer affect it. Starting
// a running VM does nothing.
func (f *Fleet) Start(ctx context.Context, id string) error {
	return f.act(ctx, id, func(v *vm) (map[string]any, error) {
		if v.state == novacron.PowerRunning {
			return nil, nil
		}
		from := v.state
		f.boot(v)
		return map[string]any{"action": string(novacron.ActionStart), "from_state": string(from), "to_state": string(v.state)}, nil
	})
}

// Stop powers a running VM off. Simulated guests shut down at once, so
// timeout only has to be non-negative. Stopping a stopped VM does nothing.
func (f *Fleet) Stop(ctx context.Context, id string, timeout time.Duration) error {
	if timeout < 0 {
		return novacron.Errorf(novacron.EINVALID, "stop %s: timeout must not be negative, got %s", id, timeout)
	}
	return f.act(ctx, id, func(v *vm) (map[string]any, error) {
		if v.state == novacron.PowerStopped {
			return nil, nil
		}
		from := v.state
		v.state = novacron.PowerStopped
		return map[string]any{"action": string(novacron.ActionStop), "from_state": string(from), "to_state": string(v.state)}, nil
	})
}

// Reboot restarts a running VM's guest: counters restart from 0 and a
// runaway process or a memory leak that began before ends. Rebooting a VM
// that is not running is a conflict.
func (f *Fleet) Reboot(ctx context.Context, id string) error {
	return f.act(ctx, id, func(v *vm) (map[string]any, error) {
		if v.state != novacron.PowerRunning {
			return nil, novacron.Errorf(novacron.ECONFLICT, "reboot %s: vm is %s, not running", id, v.state)
		}
		f.boot(v)
		return map[string]any{"action": string(novacron.ActionReboot), "from_state": string(v.state), "to_state": string(v.state)}, nil
	})
}

// Resize changes a VM's vCPUs and memory, live. size names one of
// InstanceTypes by InstanceType (VCPUs and MemoryBytes then may be 0 or
// must match), or gives VCPUs and MemoryBytes for a custom size. The VM's
// work stays the same, so fewer vCPUs raise its CPU usage ratio and more
// lower it. Resizing to the current size does nothing.
func (f *Fleet) Resize(ctx context.Context, id string, size novacron.Size) error {
	want, err := resolveSize(size)
	if err != nil {
		return novacron.Errorf(novacron.EINVALID, "resize %s: %s", id, err)
	}
	return f.act(ctx, id, func(v *vm) (map[string]any, error) {
		if v.size.VCPUs == want.VCPUs && v.size.MemoryBytes == want.MemoryBytes {
			return nil, nil
		}
		h := &f.hosts[v.host]
		if want.VCPUs > h.cpus || want.MemoryBytes > h.mem {
			return nil, novacron.Errorf(novacron.ECONFLICT, "resize %s: %d vCPUs and %d bytes do not fit host %s (%d CPUs, %d bytes)",
				id, want.VCPUs, want.MemoryBytes, h.id, h.cpus, h.mem)
		}
		from := v.size
		v.size = want
		v.generation++
		f.buildVMLabels(v)
		return map[string]any{
			"action":     string(novacron.ActionResize),
			"from_vcpus": from.VCPUs, "to_vcpus": want.VCPUs,
			"from_memory_bytes": from.MemoryBytes, "to_memory_bytes": want.MemoryBytes,
			"from_instance_type": from.InstanceType, "to_instance_type": want.InstanceType,
		}, nil
	})
}

// resolveSize checks a requested size and fills it in from the instance
// type, or names the instance type of a custom size that matches one.
func resolveSize(s novacron.Size) (novacron.Size, error) {
	if s.VCPUs < 0 || s.MemoryBytes < 0 {
		return s, fmt.Errorf("vcpus and memory_bytes must not be negative, got %d and %d", s.VCPUs, s.MemoryBytes)
	}
	if s.InstanceType != "" {
		for _, it := range instanceTypes {
			if it.InstanceType != s.InstanceType {
				continue
			}
			if (s.VCPUs != 0 && s.VCPUs != it.VCPUs) || (s.MemoryBytes != 0 && s.MemoryBytes != it.MemoryBytes) {
				return s, fmt.Errorf("instance type %s has %d vCPUs and %d bytes, not %d and %d",
					it.InstanceType, it.VCPUs, it.MemoryBytes, s.VCPUs, s.MemoryBytes)
			}
			return it, nil
		}
		return s, fmt.Errorf("unknown instance type %q", s.InstanceType)
	}
	if s.VCPUs < 1 || s.VCPUs > 256 {
		return s, fmt.Errorf("vcpus must be between 1 and 256, got %d", s.VCPUs)
	}
	if s.MemoryBytes < 256*mib {
		return s, fmt.Errorf("memory_bytes must be at least 256 MiB, got %d", s.MemoryBytes)
	}
	for _, it := range instanceTypes {
		if it.VCPUs == s.VCPUs && it.MemoryBytes == s.MemoryBytes {
			return it, nil
		}
	}
	return novacron.Size{VCPUs: s.VCPUs, MemoryBytes: s.MemoryBytes}, nil
}

// Migrate moves a VM, running or stopped, to another host. Its load moves
// with it, and a noisy neighbour on the old host stops affecting it. Its
// series start anew under the new host label. Migrating to the VM's own
// host does nothing; a host without room for the VM is a conflict.
func (f *Fleet) Migrate(ctx context.Context, id, hostID string) error {
	return f.act(ctx, id, func(v *vm) (map[string]any, error) {
		to, ok := f.hostByID[hostID]
		if !ok {
			return nil, novacron.Errorf(novacron.ENOTFOUND, "migrate %s: host %q not found", id, hostID)
		}
		if to == v.host {
			return nil, nil
		}
		h := &f.hosts[to]
		var memAlloc int64
		for i := range f.vms {
			if o := &f.vms[i]; o.host == to && o.state == novacron.PowerRunning {
				memAlloc += o.size.MemoryBytes
			}
		}
		if v.size.VCPUs > h.cpus || memAlloc+v.size.MemoryBytes > h.mem {
			return nil, novacron.Errorf(novacron.ECONFLICT, "migrate %s: host %s has no room (%d of %d bytes allocated, vm needs %d)",
				id, hostID, memAlloc, h.mem, v.size.MemoryBytes)
		}
		from := f.hosts[v.host].id
		v.host = to
		v.generation++
		f.buildVMLabels(v)
		return map[string]any{"action": string(novacron.ActionMigrate), "from_host": from, "to_host": hostID}, nil
	})
}

// act runs change on the VM under the lock and, when change reports a
// change (non-nil details), records the lifecycle event.
func (f *Fleet) act(ctx context.Context, id string, change func(*vm) (map[string]any, error)) error {
	if err := ctxErr(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, err := f.lookup(id)
	if err != nil {
		return err
	}
	details, err := change(v)
	if err != nil || details == nil {
		return err
	}
	v.updated = f.now
	v.eventSeq++
	action, _ := details["action"].(string)
	ev := novacron.Event{
		SchemaVersion: novacron.EventSchemaVersion,
		ID:            fmt.Sprintf("%s/%s/lifecycle/%d", Provider, v.id, v.eventSeq),
		Kind:          novacron.EventVMLifecycle,
		Time:          f.now,
		Source:        Provider,
		VMID:          v.id,
		Host:          f.hosts[v.host].id,
		Summary:       fmt.Sprintf("%s %s: %s", action, v.id, v.state),
		Severity:      "info",
		Evidence:      fmt.Sprintf(`novacron_vm_up{vm_id=%q}`, v.id),
		Details:       details,
	}
	if len(f.events) >= maxEvts {
		f.events = f.events[1:]
		f.dropped++
	}
	f.events = append(f.events, ev)
	return nil
}

// boot (re)starts v at the fleet's current time. f.mu must be held.
func (f *Fleet) boot(v *vm) {
	v.state = novacron.PowerRunning
	v.bootMs = f.now.UnixMilli()
	v.cpuSec, v.stealSec, v.rdB, v.wrB, v.rdOps, v.wrOps, v.rxB, v.txB, v.rxP, v.txP = 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
}

func (f *Fleet) lookup(id string) (*vm, error) {
	i, ok := f.byID[id]
	if !ok {
		return nil, novacron.Errorf(novacron.ENOTFOUND, "vm %q not found", id)
	}
	return &f.vms[i], nil
}

// TakeEvents appends the lifecycle events recorded since the last call to
// dst, oldest first, and forgets them. At most 1024 are kept between calls;
// the returned count says how many older ones were dropped to respect that.
func (f *Fleet) TakeEvents(dst []novacron.Event) ([]novacron.Event, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dst = append(dst, f.events...)
	dropped := f.dropped
	f.events, f.dropped = f.events[:0], 0
	return dst, dropped
}

func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return &novacron.Error{Code: novacron.EUNAVAILABLE, Message: "request cancelled", Err: err}
	}
	return nil
}
