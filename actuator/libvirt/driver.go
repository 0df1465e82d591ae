package libvirt

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/libvirt/conn"
)

// Provider is the provider name the driver acts on.
const Provider = "libvirt"

// Settings are what the binary injects into the driver.
type Settings struct {
	// Logger receives connection problems and actions. Nil discards.
	Logger *slog.Logger
}

// Driver acts on VMs of the configured libvirt hosts. It is safe for
// concurrent use. Connections are opened on first use and reopened after
// they break.
type Driver struct {
	cfg    Config
	log    *slog.Logger
	hosts  []*hostConn
	byName map[string]*hostConn
	poll   time.Duration // state polling period (Stop, Migrate)
}

var _ novacron.Driver = (*Driver)(nil)

// hostConn is one configured host and its connection.
type hostConn struct {
	cfg    HostConfig
	target conn.Target

	mu     sync.Mutex
	client *conn.Client
}

// New builds a driver. It returns the validation errors of cfg; it does
// not connect.
func New(cfg Config, set Settings) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("libvirt driver config: %w", err)
	}
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Driver{cfg: cfg, log: log.With("component", "actuator/libvirt"), byName: map[string]*hostConn{}, poll: 100 * time.Millisecond}
	for _, hc := range cfg.Hosts {
		t, err := conn.ParseURI(hc.URI)
		if err != nil {
			return nil, err
		}
		h := &hostConn{cfg: hc, target: t}
		d.hosts = append(d.hosts, h)
		d.byName[hc.Name] = h
	}
	return d, nil
}

// Provider returns "libvirt".
func (d *Driver) Provider() string { return Provider }

// Shutdown closes every connection within ctx. Safe to call more than
// once; a later call reopens connections as needed.
func (d *Driver) Shutdown(ctx context.Context) error {
	for _, h := range d.hosts {
		h.mu.Lock()
		c := h.client
		h.client = nil
		h.mu.Unlock()
		if c != nil {
			c.CloseWithin(ctx)
		}
	}
	return nil
}

// Hosts returns the configured host names, in configuration order.
func (d *Driver) Hosts() []string {
	out := make([]string, len(d.hosts))
	for i, h := range d.hosts {
		out[i] = h.cfg.Name
	}
	return out
}

// Templates returns the template names, sorted.
func (d *Driver) Templates() []string { return sortedNames(d.cfg.Templates) }

// Template returns a template by name.
func (d *Driver) Template(name string) (Template, bool) {
	t, ok := d.cfg.Templates[name]
	return t, ok
}

// client returns the host's open connection, dialing when needed.
func (h *hostConn) conn(ctx context.Context) (*conn.Client, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.client != nil {
		select {
		case <-h.client.Disconnected():
			h.client.Close()
			h.client = nil
		default:
			return h.client, nil
		}
	}
	c, err := conn.Dial(ctx, h.target)
	if err != nil {
		return nil, conn.Classify(err, "host %s", h.cfg.Name)
	}
	h.client = c
	return c, nil
}

// callCtx bounds one libvirt call by the configured timeout.
func (d *Driver) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d.cfg.Timeout)
}

// do runs call on the host's connection within the call timeout and
// classifies its error with the formatted context.
func (d *Driver) do(ctx context.Context, h *hostConn, call func(*conn.Client) error, format string, args ...any) error {
	cctx, cancel := d.callCtx(ctx)
	defer cancel()
	c, err := h.conn(cctx)
	if err != nil {
		return conn.Classify(err, format, args...)
	}
	if err := c.Do(cctx, func() error { return call(c) }); err != nil {
		return conn.Classify(err, format, args...)
	}
	return nil
}

// parseUUID parses a VM ID.
func parseUUID(id string) (libvirt.UUID, error) {
	var u libvirt.UUID
	s := strings.ReplaceAll(id, "-", "")
	if len(s) != 32 {
		return u, novacron.Errorf(novacron.EINVALID, "vm id %q is not a libvirt UUID", id)
	}
	if _, err := hex.Decode(u[:], []byte(s)); err != nil {
		return u, novacron.Errorf(novacron.EINVALID, "vm id %q is not a libvirt UUID", id)
	}
	return u, nil
}

// located is a domain found on a host.
type located struct {
	h     *hostConn
	dom   libvirt.Domain
	state int32
}

// domain states (virDomainState).
const (
	stRunning     = 1
	stBlocked     = 2
	stPaused      = 3
	stShutdown    = 4
	stShutoff     = 5
	stCrashed     = 6
	stPMSuspended = 7
)

func powerState(s int32) novacron.PowerState {
	switch s {
	case stRunning, stBlocked, stShutdown:
		return novacron.PowerRunning
	case stPaused, stPMSuspended:
		return novacron.PowerSuspended
	case stShutoff:
		return novacron.PowerStopped
	case stCrashed:
		return novacron.PowerCrashed
	}
	return novacron.PowerUnknown
}

func active(state int32) bool { return state != stShutoff && state != stCrashed && state != 0 }

// locate finds the VM on the configured hosts, preferring a host where it
// is active. When it is on no host that answered but some host did not
// answer, the error is EUNAVAILABLE: it may be there.
func (d *Driver) locate(ctx context.Context, id string) (located, error) {
	u, err := parseUUID(id)
	if err != nil {
		return located{}, err
	}
	var (
		found       []located
		unavailable error
	)
	for _, h := range d.hosts {
		var l located
		err := d.do(ctx, h, func(c *conn.Client) error {
			dom, err := c.DomainLookupByUUID(u)
			if err != nil {
				return err
			}
			st, _, err := c.DomainGetState(dom, 0)
			l = located{h: h, dom: dom, state: st}
			return err
		}, "vm %s on host %s", id, h.cfg.Name)
		switch novacron.ErrorCode(err) {
		case "":
			found = append(found, l)
		case novacron.ENOTFOUND:
		default:
			if unavailable == nil {
				unavailable = err
			}
		}
	}
	for _, l := range found {
		if active(l.state) {
			return l, nil
		}
	}
	if len(found) > 0 {
		return found[0], nil
	}
	if unavailable != nil {
		return located{}, &novacron.Error{Code: novacron.EUNAVAILABLE, Message: fmt.Sprintf("vm %s not found on the hosts that answered", id), Err: unavailable}
	}
	return located{}, novacron.Errorf(novacron.ENOTFOUND, "vm %s not found on any host", id)
}

// domainXML reads and parses a domain's XML; inactive reads the
// persistent configuration instead of the live one.
func (d *Driver) domainXML(ctx context.Context, l located, inactive bool) (*libvirtxml.Domain, error) {
	var doc string
	flags := libvirt.DomainXMLFlags(0)
	if inactive {
		flags = libvirt.DomainXMLInactive
	}
	if err := d.do(ctx, l.h, func(c *conn.Client) error {
		var err error
		doc, err = c.DomainGetXMLDesc(l.dom, flags)
		return err
	}, "vm %s: read XML", uuidString(l.dom.UUID)); err != nil {
		return nil, err
	}
	var x libvirtxml.Domain
	if err := x.Unmarshal(doc); err != nil {
		return nil, &novacron.Error{Code: novacron.EINTERNAL, Message: fmt.Sprintf("vm %s: parse XML", uuidString(l.dom.UUID)), Err: err}
	}
	return &x, nil
}

func uuidString(u libvirt.UUID) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// VM returns the observed state of one VM.
func (d *Driver) VM(ctx context.Context, id string) (novacron.VM, error) {
	l, err := d.locate(ctx, id)
	if err != nil {
		return novacron.VM{}, err
	}
	x, err := d.domainXML(ctx, l, false)
	if err != nil {
		return novacron.VM{}, err
	}
	return vmFromXML(x, l.h.cfg.Name, powerState(l.state)), nil
}

// vmFromXML builds the inventory view of a domain.
func vmFromXML(x *libvirtxml.Domain, host string, state novacron.PowerState) novacron.VM {
	v := novacron.VM{ID: x.UUID, Name: x.Name, Provider: Provider, Host: host, State: state, UpdatedAt: time.Now()}
	if x.VCPU != nil {
		v.Size.VCPUs = int(x.VCPU.Value)
		if x.VCPU.Current > 0 {
			v.Size.VCPUs = int(x.VCPU.Current)
		}
	}
	if x.CurrentMemory != nil {
		v.Size.MemoryBytes = memBytes(x.CurrentMemory.Value, x.CurrentMemory.Unit)
	} else if x.Memory != nil {
		v.Size.MemoryBytes = memBytes(x.Memory.Value, x.Memory.Unit)
	}
	if x.Devices != nil {
		for _, disk := range x.Devices.Disks {
			if disk.Target != nil && (disk.Device == "" || disk.Device == "disk") {
				v.Disks = append(v.Disks, novacron.Disk{Name: disk.Target.Dev})
			}
		}
		for _, n := range x.Devices.Interfaces {
			nic := novacron.NIC{}
			if n.Target != nil {
				nic.Name = n.Target.Dev
			}
			if n.MAC != nil {
				nic.MAC = n.MAC.Address
			}
			if n.Source != nil && n.Source.Network != nil {
				nic.Network = n.Source.Network.Network
			} else if n.Source != nil && n.Source.Bridge != nil {
				nic.Network = n.Source.Bridge.Bridge
			}
			v.NICs = append(v.NICs, nic)
		}
	}
	if x.Metadata != nil {
		v.Tags, _ = conn.ParseTags(x.Metadata.XML)
		v.Tenant = v.Tags["tenant"]
	}
	return v
}

func memBytes(v uint, unit string) int64 {
	switch strings.ToLower(unit) {
	case "b", "bytes":
		return int64(v)
	case "m", "mib":
		return int64(v) << 20
	case "g", "gib":
		return int64(v) << 30
	case "t", "tib":
		return int64(v) << 40
	}
	return int64(v) << 10 // KiB, libvirt's default
}

// Start powers the VM on; a suspended VM is resumed. Starting a running
// VM does nothing.
func (d *Driver) Start(ctx context.Context, id string) error {
	l, err := d.locate(ctx, id)
	if err != nil {
		return err
	}
	switch l.state {
	case stRunning, stBlocked:
		return nil
	case stPaused:
		return d.do(ctx, l.h, func(c *conn.Client) error { return c.DomainResume(l.dom) }, "start vm %s: resume", id)
	case stShutdown:
		return novacron.Errorf(novacron.ECONFLICT, "start vm %s: it is shutting down; retry when it is off", id)
	case stPMSuspended:
		return d.do(ctx, l.h, func(c *conn.Client) error { return c.DomainPmWakeup(l.dom, 0) }, "start vm %s: wake up", id)
	}
	return d.do(ctx, l.h, func(c *conn.Client) error { return c.DomainCreate(l.dom) }, "start vm %s", id)
}

// Stop shuts the VM down gracefully (ACPI) and forces it off when it is
// still running after timeout (0: shutdown_timeout). A suspended VM is
// forced off at once. Stopping a stopped VM does nothing.
func (d *Driver) Stop(ctx context.Context, id string, timeout time.Duration) error {
	if timeout < 0 {
		return novacron.Errorf(novacron.EINVALID, "stop vm %s: timeout must not be negative, got %s", id, timeout)
	}
	if timeout == 0 {
		timeout = d.cfg.ShutdownTimeout
	}
	l, err := d.locate(ctx, id)
	if err != nil {
		return err
	}
	if !active(l.state) {
		return nil
	}
	if l.state != stPaused && l.state != stPMSuspended {
		err := d.do(ctx, l.h, func(c *conn.Client) error { return c.DomainShutdown(l.dom) }, "stop vm %s: shutdown", id)
		if err == nil {
			off, err := d.waitState(ctx, l, timeout, func(s int32) bool { return !active(s) })
			if err != nil {
				return err
			}
			if off {
				return nil
			}
			d.log.Info("libvirt guest did not shut down in time; forcing it off", "vm_id", id, "timeout", timeout)
		} else if c := novacron.ErrorCode(err); c == novacron.EUNAVAILABLE || c == novacron.ENOTFOUND {
			return err
		}
	}
	err = d.do(ctx, l.h, func(c *conn.Client) error { return c.DomainDestroy(l.dom) }, "stop vm %s: force off", id)
	if novacron.ErrorCode(err) == novacron.ECONFLICT {
		// It went off between the shutdown and the destroy.
		return nil
	}
	return err
}

// waitState polls the domain's state until done returns true (true), the
// timeout passes (false) or ctx ends (error).
func (d *Driver) waitState(ctx context.Context, l located, timeout time.Duration, done func(int32) bool) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		var st int32
		err := d.do(ctx, l.h, func(c *conn.Client) error {
			var err error
			st, _, err = c.DomainGetState(l.dom, 0)
			return err
		}, "vm %s: state", uuidString(l.dom.UUID))
		if err != nil {
			return false, err
		}
		if done(st) {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, &novacron.Error{Code: novacron.EUNAVAILABLE, Message: "request cancelled", Err: ctx.Err()}
		case <-time.After(d.poll):
		}
	}
}

// Reboot restarts a running VM's guest (ACPI). A VM that is not running is
// a conflict.
func (d *Driver) Reboot(ctx context.Context, id string) error {
	l, err := d.locate(ctx, id)
	if err != nil {
		return err
	}
	if l.state != stRunning && l.state != stBlocked {
		return novacron.Errorf(novacron.ECONFLICT, "reboot vm %s: it is %s, not running", id, powerState(l.state))
	}
	return d.do(ctx, l.h, func(c *conn.Client) error { return c.DomainReboot(l.dom, 0) }, "reboot vm %s", id)
}

// Suspend pauses a running VM's vCPUs, keeping its memory. Suspending a
// suspended VM does nothing; a stopped VM is a conflict.
func (d *Driver) Suspend(ctx context.Context, id string) error {
	l, err := d.locate(ctx, id)
	if err != nil {
		return err
	}
	switch l.state {
	case stPaused, stPMSuspended:
		return nil
	case stRunning, stBlocked:
		return d.do(ctx, l.h, func(c *conn.Client) error { return c.DomainSuspend(l.dom) }, "suspend vm %s", id)
	}
	return novacron.Errorf(novacron.ECONFLICT, "suspend vm %s: it is %s, not running", id, powerState(l.state))
}

// Resume continues a suspended VM. Resuming a running VM does nothing; a
// stopped VM is a conflict.
func (d *Driver) Resume(ctx context.Context, id string) error {
	l, err := d.locate(ctx, id)
	if err != nil {
		return err
	}
	switch l.state {
	case stRunning, stBlocked:
		return nil
	case stPaused:
		return d.do(ctx, l.h, func(c *conn.Client) error { return c.DomainResume(l.dom) }, "resume vm %s", id)
	}
	return novacron.Errorf(novacron.ECONFLICT, "resume vm %s: it is %s, not suspended", id, powerState(l.state))
}

// Resize changes the VM's vCPUs and memory. The persistent configuration
// always changes (raising the maximums when needed); a running VM is also
// changed live when the new size is within its live maximums (vCPU
// hotplug, memory balloon). When the live change is impossible or the
// guest or hypervisor refuses it, the error is ECONFLICT and says that the
// new size applies from the next boot. size.InstanceType may name a
// template, whose vCPUs and memory are used. Resizing to the current size
// does nothing.
func (d *Driver) Resize(ctx context.Context, id string, size novacron.Size) error {
	size, err := d.resolveSize(size)
	if err != nil {
		return novacron.Errorf(novacron.EINVALID, "resize vm %s: %v", id, err)
	}
	l, err := d.locate(ctx, id)
	if err != nil {
		return err
	}
	cfgX, err := d.domainXML(ctx, l, true)
	if err != nil {
		return err
	}
	liveX := cfgX
	running := l.state == stRunning || l.state == stBlocked || l.state == stPaused
	if running {
		if liveX, err = d.domainXML(ctx, l, false); err != nil {
			return err
		}
	}
	vcpus, maxVCPUs := vcpuCounts(cfgX)
	memKiB, maxMemKiB := memCounts(cfgX)
	wantMem := uint64(size.MemoryBytes >> 10)
	wantV := uint32(size.VCPUs)

	// Persistent configuration first: it must hold whatever happens live.
	err = d.do(ctx, l.h, func(c *conn.Client) error {
		if wantV > maxVCPUs {
			if err := c.DomainSetVcpusFlags(l.dom, wantV, uint32(libvirt.DomainVCPUConfig|libvirt.DomainVCPUMaximum)); err != nil {
				return err
			}
		}
		if wantV != vcpus {
			if err := c.DomainSetVcpusFlags(l.dom, wantV, uint32(libvirt.DomainVCPUConfig)); err != nil {
				return err
			}
		}
		if wantMem > maxMemKiB {
			if err := c.DomainSetMemoryFlags(l.dom, wantMem, uint32(libvirt.DomainMemConfig|libvirt.DomainMemMaximum)); err != nil {
				return err
			}
		}
		if wantMem != memKiB {
			if err := c.DomainSetMemoryFlags(l.dom, wantMem, uint32(libvirt.DomainMemConfig)); err != nil {
				return err
			}
		}
		return nil
	}, "resize vm %s: persistent configuration", id)
	if err != nil {
		return err
	}
	if !running {
		return nil
	}
	liveV, liveMaxV := vcpuCounts(liveX)
	liveMem, liveMaxMem := memCounts(liveX)
	var refused []string
	var cause error
	if wantV != liveV {
		if wantV > liveMaxV {
			refused = append(refused, fmt.Sprintf("%d vCPUs exceed the live maximum of %d", wantV, liveMaxV))
		} else if err := d.do(ctx, l.h, func(c *conn.Client) error {
			return c.DomainSetVcpusFlags(l.dom, wantV, uint32(libvirt.DomainVCPULive))
		}, "set vCPUs"); err != nil {
			if novacron.ErrorCode(err) == novacron.EUNAVAILABLE {
				return err
			}
			refused, cause = append(refused, novacron.ErrorMessage(err)), err
		}
	}
	if wantMem != liveMem {
		if wantMem > liveMaxMem {
			refused = append(refused, fmt.Sprintf("%d KiB exceed the live maximum of %d KiB", wantMem, liveMaxMem))
		} else if err := d.do(ctx, l.h, func(c *conn.Client) error {
			return c.DomainSetMemoryFlags(l.dom, wantMem, uint32(libvirt.DomainMemLive))
		}, "set memory"); err != nil {
			if novacron.ErrorCode(err) == novacron.EUNAVAILABLE {
				return err
			}
			refused, cause = append(refused, novacron.ErrorMessage(err)), err
		}
	}
	if len(refused) > 0 {
		return &novacron.Error{Code: novacron.ECONFLICT, Err: cause, Message: fmt.Sprintf(
			"resize vm %s: saved for the next boot, but the running VM cannot change live: %s", id, strings.Join(refused, "; "))}
	}
	return nil
}

func (d *Driver) resolveSize(s novacron.Size) (novacron.Size, error) {
	if s.InstanceType != "" {
		t, ok := d.cfg.Templates[s.InstanceType]
		if !ok {
			return s, fmt.Errorf("instance_type %q is not a template (have %s)", s.InstanceType, strings.Join(d.Templates(), ", "))
		}
		if (s.VCPUs != 0 && s.VCPUs != t.VCPUs) || (s.MemoryBytes != 0 && s.MemoryBytes != t.MemoryBytes) {
			return s, fmt.Errorf("template %s has %d vCPUs and %d bytes, not %d and %d", s.InstanceType, t.VCPUs, t.MemoryBytes, s.VCPUs, s.MemoryBytes)
		}
		s.VCPUs, s.MemoryBytes = t.VCPUs, t.MemoryBytes
	}
	if s.VCPUs < 1 || s.VCPUs > 4096 {
		return s, fmt.Errorf("vcpus must be between 1 and 4096, got %d", s.VCPUs)
	}
	if s.MemoryBytes < 1<<20 {
		return s, fmt.Errorf("memory_bytes must be at least 1 MiB, got %d", s.MemoryBytes)
	}
	return s, nil
}

// vcpuCounts returns the current and maximum vCPUs of a domain XML.
func vcpuCounts(x *libvirtxml.Domain) (cur, maxV uint32) {
	if x.VCPU == nil {
		return 0, 0
	}
	maxV = uint32(x.VCPU.Value)
	cur = maxV
	if x.VCPU.Current > 0 {
		cur = uint32(x.VCPU.Current)
	}
	return cur, maxV
}

// memCounts returns the current and maximum memory of a domain XML in KiB.
func memCounts(x *libvirtxml.Domain) (cur, maxM uint64) {
	if x.Memory != nil {
		maxM = uint64(memBytes(x.Memory.Value, x.Memory.Unit) >> 10)
	}
	cur = maxM
	if x.CurrentMemory != nil {
		cur = uint64(memBytes(x.CurrentMemory.Value, x.CurrentMemory.Unit) >> 10)
	}
	return cur, maxM
}

// errIs reports whether err carries the libvirt error number n.
func errIs(err error, n libvirt.ErrorNumber) bool {
	var le libvirt.Error
	return errors.As(err, &le) && libvirt.ErrorNumber(le.Code) == n
}
