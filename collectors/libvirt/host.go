package libvirt

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/libvirt/conn"
	"github.com/novacron/novacron/internal/catalog"
)

// host is one libvirt daemon and what the collector remembers about it.
// Everything but the fields under mu is owned by the cycle, which runs one
// collect at a time per host.
type host struct {
	name, region, zone string
	target             conn.Target
	cfg                *Config
	log                *slog.Logger
	events             func(novacron.Event) // hands an event to the collector
	now                func() time.Time

	client    *conn.Client
	nextDial  time.Time
	backoff   time.Duration
	lastErr   string
	everUp    bool
	evClient  *conn.Client // a connection of its own for events, so a slow poll never drops them
	cancelSub context.CancelFunc

	cpus         int
	memBytes     int64
	nodeInfoOK   bool
	cpuParams    int32 // NodeGetCPUStats parameter count; 0 until known
	memParams    int32
	noCPUStats   bool // the driver has no node CPU stats
	noMemStats   bool // the driver has no node memory stats
	prevBusy     uint64
	prevTotal    uint64
	prevCPUOK    bool
	xmlRefreshed time.Time

	vms    map[libvirt.UUID]*vm
	labels map[string]novacron.Labels // host series labels by metric
	stats  domStats                   // scratch

	mu    sync.Mutex
	stale map[libvirt.UUID]bool // domains whose XML must be read again
}

// vm is one domain of a host.
type vm struct {
	id      string
	dom     libvirt.Domain
	info    domainInfo
	hasInfo bool
	state   novacron.PowerState
	vcpus   int
	memory  int64

	ident  [2]string // name, tenant the labels were built for
	labels map[labelKey]novacron.Labels

	diskCap map[string]int64 // capacity by device, from the last stats

	prevCPU uint64 // ns
	prevMs  int64
	prevOK  bool
	seen    bool
}

type labelKey struct{ metric, extra string }

func newHost(hc HostConfig, name string, cfg *Config, log *slog.Logger, now func() time.Time, events func(novacron.Event)) (*host, error) {
	t, err := conn.ParseURI(hc.URI)
	if err != nil {
		return nil, err
	}
	h := &host{
		name:    name,
		region:  cfg.Region,
		zone:    cfg.Zone,
		target:  t,
		cfg:     cfg,
		log:     log.With("host", name),
		events:  events,
		now:     now,
		backoff: cfg.Reconnect.Initial,
		vms:     map[libvirt.UUID]*vm{},
		labels:  map[string]novacron.Labels{},
		stale:   map[libvirt.UUID]bool{},
	}
	if hc.Region != "" {
		h.region = hc.Region
	}
	if hc.Zone != "" {
		h.zone = hc.Zone
	}
	return h, nil
}

// emitter appends one-sample series to a batch. Samples are carved out of
// shared chunks, so a batch of n series costs a few allocations, not n.
type emitter struct {
	series  []novacron.Series
	samples []novacron.Sample
	t       int64
}

func (e *emitter) add(ls novacron.Labels, v float64) {
	if len(e.samples) == cap(e.samples) {
		e.samples = make([]novacron.Sample, 0, max(256, 2*cap(e.samples)))
	}
	e.samples = append(e.samples, novacron.Sample{T: e.t, V: v})
	n := len(e.samples)
	e.series = append(e.series, novacron.Series{Labels: ls, Samples: e.samples[n-1 : n : n]})
}

// hostLabels returns the cached label set of a host series.
func (h *host) hostLabels(metric string) novacron.Labels {
	if ls, ok := h.labels[metric]; ok {
		return ls
	}
	ls := novacron.Labels{{Name: novacron.MetricNameLabel, Value: metric}, {Name: catalog.LabelProvider, Value: Provider}, {Name: catalog.LabelHost, Value: h.name}}
	if h.region != "" {
		ls = append(ls, novacron.Label{Name: catalog.LabelRegion, Value: h.region})
	}
	if h.zone != "" {
		ls = append(ls, novacron.Label{Name: catalog.LabelZone, Value: h.zone})
	}
	ls.Sort()
	h.labels[metric] = ls
	return ls
}

// vmLabels returns the cached label set of one VM series; extraName and
// extra add the metric's own label (device, interface, state) when set.
func (h *host) vmLabels(v *vm, metric, extraName, extra string) novacron.Labels {
	tenant := ""
	if h.cfg.TenantTag != "" {
		tenant = v.info.tags[h.cfg.TenantTag]
	}
	name := v.dom.Name
	if v.ident != [2]string{name, tenant} || v.labels == nil {
		v.ident = [2]string{name, tenant}
		v.labels = map[labelKey]novacron.Labels{}
	}
	k := labelKey{metric, extra}
	if ls, ok := v.labels[k]; ok {
		return ls
	}
	ls := make(novacron.Labels, 0, 9)
	ls = append(ls, novacron.Label{Name: novacron.MetricNameLabel, Value: metric},
		novacron.Label{Name: catalog.LabelProvider, Value: Provider},
		novacron.Label{Name: catalog.LabelHost, Value: h.name},
		novacron.Label{Name: catalog.LabelVMID, Value: v.id})
	for _, l := range [...]novacron.Label{{Name: catalog.LabelRegion, Value: h.region}, {Name: catalog.LabelZone, Value: h.zone},
		{Name: catalog.LabelTenant, Value: tenant}, {Name: catalog.LabelVM, Value: name}, {Name: extraName, Value: extra}} {
		if l.Name != "" && l.Value != "" {
			ls = append(ls, l)
		}
	}
	ls.Sort()
	v.labels[k] = ls
	return ls
}

// markStale asks for a domain's XML to be read again at the next cycle.
// It is called from the event goroutine.
func (h *host) markStale(u libvirt.UUID) {
	h.mu.Lock()
	h.stale[u] = true
	h.mu.Unlock()
}

func (h *host) takeStale() map[libvirt.UUID]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.stale) == 0 {
		return nil
	}
	s := h.stale
	h.stale = map[libvirt.UUID]bool{}
	return s
}

// connected returns the host's client, dialing when the backoff allows.
func (h *host) connected(ctx context.Context, now time.Time) (*conn.Client, error) {
	if h.client != nil {
		select {
		case <-h.client.Disconnected():
			h.dropClient("connection lost")
		default:
			h.ensureEvents(ctx)
			return h.client, nil
		}
	}
	if now.Before(h.nextDial) {
		return nil, fmt.Errorf("host %s down; next attempt in %s", h.name, h.nextDial.Sub(now).Round(time.Millisecond))
	}
	c, err := conn.Dial(ctx, h.target)
	if err != nil {
		h.failed(now, err)
		return nil, err
	}
	h.client = c
	h.backoff = h.cfg.Reconnect.Initial
	h.nodeInfoOK, h.prevCPUOK, h.noCPUStats, h.noMemStats, h.cpuParams, h.memParams = false, false, false, false, 0, 0
	for _, v := range h.vms {
		v.prevOK = false // counters may have moved while we were away
	}
	h.log.Info("libvirt host connected", "uri", h.target.URI, "driver", h.target.Driver)
	h.everUp, h.lastErr = true, ""
	h.ensureEvents(ctx)
	return c, nil
}

// failed notes a failed dial or call and schedules the next attempt with
// exponential backoff and ±20% jitter. Only a change of error is logged.
func (h *host) failed(now time.Time, err error) {
	if msg := err.Error(); msg != h.lastErr {
		h.lastErr = msg
		h.log.Warn("libvirt host unavailable; retrying with backoff", "uri", h.target.URI, "err", err, "code", novacron.ErrorCode(err))
	}
	wait := time.Duration(float64(h.backoff) * (0.8 + 0.4*rand.Float64()))
	h.nextDial = now.Add(wait)
	h.backoff = min(2*h.backoff, h.cfg.Reconnect.Max)
}

// dropClient breaks and forgets the connection.
func (h *host) dropClient(why string) {
	if h.client == nil {
		return
	}
	h.client.Close()
	h.client = nil
	h.log.Info("libvirt host disconnected", "reason", why)
}

// close ends the connection politely within ctx.
func (h *host) close(ctx context.Context) {
	if h.cancelSub != nil {
		h.cancelSub()
		h.cancelSub = nil
	}
	if h.evClient != nil {
		h.evClient.CloseWithin(ctx)
		h.evClient = nil
	}
	if h.client != nil {
		h.client.CloseWithin(ctx)
		h.client = nil
	}
}

// collect reads the host once and appends its series to e. It reports
// whether the inventory changed (domains appeared, went or changed state,
// size or XML) and the error that made the host count as down.
func (h *host) collect(ctx context.Context, now time.Time, e *emitter) (changed bool, err error) {
	wasUp := h.client != nil
	c, err := h.connected(ctx, now)
	if err != nil {
		e.add(h.hostLabels(catalog.HostUp), 0)
		return wasUp, err
	}
	if !wasUp {
		changed = true
	}
	var recs []libvirt.DomainStatsRecord
	err = c.Do(ctx, func() error {
		if !h.nodeInfoOK {
			_, mem, cpus, _, _, _, _, _, err := c.NodeGetInfo()
			if err != nil {
				return err
			}
			h.cpus, h.memBytes, h.nodeInfoOK = int(cpus), int64(mem)*1024, true
		}
		var err error
		recs, err = c.ConnectGetAllDomainStats(nil, uint32(statsGroups), 0)
		return err
	})
	if err != nil {
		err = conn.Classify(err, "host %s: domain stats", h.name)
		h.dropClient("domain stats failed")
		h.failed(now, err)
		e.add(h.hostLabels(catalog.HostUp), 0)
		return true, err
	}
	nodeCPU, nodeMem := h.nodeStats(ctx, c)

	stale := h.takeStale()
	refreshAll := h.cfg.InventoryInterval > 0 && now.Sub(h.xmlRefreshed) >= h.cfg.InventoryInterval
	if refreshAll {
		h.xmlRefreshed = now
	}
	for _, v := range h.vms {
		v.seen = false
	}
	var (
		running, vcpusAlloc int
		memAlloc            int64
	)
	for i := range recs {
		r := &recs[i]
		v := h.vms[r.Dom.UUID]
		if v == nil {
			v = &vm{id: uuidString(r.Dom.UUID)}
			h.vms[r.Dom.UUID] = v
			changed = true
		}
		v.seen = true
		if v.dom.Name != r.Dom.Name {
			changed = true
		}
		v.dom = r.Dom
		st := &h.stats
		st.parse(r.Params)
		state := novacron.PowerUnknown
		if st.hasState {
			state = powerState(st.state)
		}
		vcpus, memory := v.info.vcpus, v.info.memoryBytes
		if st.hasVCPU && state == novacron.PowerRunning {
			vcpus = st.vcpuCurrent
		}
		if st.hasBalloonMax {
			memory = int64(st.balloonMax) * 1024
		}
		if !v.hasInfo || stale[r.Dom.UUID] || refreshAll || (v.hasInfo && (vcpus != v.vcpus || memory != v.memory)) {
			if err := h.readXML(ctx, c, v); err != nil {
				if ctx.Err() != nil || !c.IsConnected() {
					h.dropClient("domain XML read failed")
					h.failed(now, err)
					e.series = e.series[:0]
					e.add(h.hostLabels(catalog.HostUp), 0)
					return true, err
				}
				h.log.Debug("libvirt domain XML unreadable", "vm_id", v.id, "err", err)
			} else {
				changed = true
				if !st.hasVCPU || state != novacron.PowerRunning {
					vcpus = v.info.vcpus
				}
				if !st.hasBalloonMax {
					memory = v.info.memoryBytes
				}
			}
		}
		if state != v.state || vcpus != v.vcpus || memory != v.memory {
			changed = true
		}
		v.state, v.vcpus, v.memory = state, vcpus, memory
		h.emitVM(e, v, st)
		if state == novacron.PowerRunning {
			running++
			vcpusAlloc += vcpus
			memAlloc += memory
		}
	}
	for u, v := range h.vms {
		if !v.seen {
			delete(h.vms, u)
			changed = true
		}
	}
	e.add(h.hostLabels(catalog.HostUp), 1)
	if h.nodeInfoOK {
		e.add(h.hostLabels(catalog.HostCPUs), float64(h.cpus))
		e.add(h.hostLabels(catalog.HostMemoryBytes), float64(h.memBytes))
	}
	e.add(h.hostLabels(catalog.HostVMs), float64(running))
	e.add(h.hostLabels(catalog.HostVCPUsAllocated), float64(vcpusAlloc))
	e.add(h.hostLabels(catalog.HostMemoryAllocatedBytes), float64(memAlloc))
	if nodeCPU.ok {
		busy, total := nodeCPU.busy, nodeCPU.total
		e.add(h.hostLabels(catalog.HostCPUSecondsTotal), float64(busy)/1e9)
		if h.prevCPUOK && total > h.prevTotal && busy >= h.prevBusy {
			e.add(h.hostLabels(catalog.HostCPUUsageRatio), clamp01(float64(busy-h.prevBusy)/float64(total-h.prevTotal)))
		}
		h.prevBusy, h.prevTotal, h.prevCPUOK = busy, total, true
	}
	if nodeMem.ok && h.nodeInfoOK && h.memBytes > 0 {
		e.add(h.hostLabels(catalog.HostMemoryUsedBytes), float64(nodeMem.used))
		e.add(h.hostLabels(catalog.HostMemoryUsageRatio), clamp01(float64(nodeMem.used)/float64(h.memBytes)))
	}
	return changed, nil
}

type nodeCPU struct {
	busy, total uint64
	ok          bool
}

type nodeMem struct {
	used uint64
	ok   bool
}

// nodeStats reads the node's CPU and memory statistics. A driver without
// them (the test driver has no memory stats) is not asked again until the
// next connection.
func (h *host) nodeStats(ctx context.Context, c *conn.Client) (cpu nodeCPU, mem nodeMem) {
	_ = c.Do(ctx, func() error {
		if !h.noCPUStats {
			if h.cpuParams == 0 {
				_, n, err := c.NodeGetCPUStats(-1, 0, 0)
				h.cpuParams = n
				h.noCPUStats = err != nil || n == 0
			}
			if !h.noCPUStats {
				params, _, err := c.NodeGetCPUStats(-1, h.cpuParams, 0)
				if err == nil {
					var user, kernel, idle, iowait uint64
					for _, p := range params {
						switch p.Field {
						case "user":
							user = p.Value
						case "kernel":
							kernel = p.Value
						case "idle":
							idle = p.Value
						case "iowait":
							iowait = p.Value
						}
					}
					cpu = nodeCPU{busy: user + kernel, total: user + kernel + idle + iowait, ok: true}
				} else if conn.Code(err) == libvirt.ErrNoSupport {
					h.noCPUStats = true
				}
			}
		}
		if !h.noMemStats {
			if h.memParams == 0 {
				_, n, err := c.NodeGetMemoryStats(0, -1, 0)
				h.memParams = n
				h.noMemStats = err != nil || n == 0
			}
			if !h.noMemStats {
				params, _, err := c.NodeGetMemoryStats(h.memParams, -1, 0)
				if err == nil {
					var total, free, buffers, cached uint64
					var hasTotal bool
					for _, p := range params {
						switch p.Field {
						case "total":
							total, hasTotal = p.Value, true
						case "free":
							free = p.Value
						case "buffers":
							buffers = p.Value
						case "cached":
							cached = p.Value
						}
					}
					if hasTotal && total >= free+buffers+cached {
						mem = nodeMem{used: (total - free - buffers - cached) * 1024, ok: true}
					}
				} else if conn.Code(err) == libvirt.ErrNoSupport {
					h.noMemStats = true
				}
			}
		}
		return nil
	})
	return cpu, mem
}

// readXML reads a domain's XML into v.info.
func (h *host) readXML(ctx context.Context, c *conn.Client, v *vm) error {
	var doc string
	err := c.Do(ctx, func() error {
		var err error
		doc, err = c.DomainGetXMLDesc(v.dom, 0)
		return err
	})
	if err != nil {
		return conn.Classify(err, "vm %s: read XML", v.id)
	}
	info, err := parseDomainXML(doc)
	if err != nil {
		return err
	}
	v.info, v.hasInfo = info, true
	return nil
}

// emitVM appends one domain's series.
func (h *host) emitVM(e *emitter, v *vm, st *domStats) {
	e.add(h.vmLabels(v, catalog.VMInfo, "", ""), 1)
	up := 0.0
	if v.state == novacron.PowerRunning {
		up = 1
	}
	e.add(h.vmLabels(v, catalog.VMUp, "", ""), up)
	for _, s := range powerStates {
		val := 0.0
		if s == v.state {
			val = 1
		}
		e.add(h.vmLabels(v, catalog.VMPowerState, catalog.LabelState, string(s)), val)
	}
	if v.vcpus > 0 {
		e.add(h.vmLabels(v, catalog.VMVCPUs, "", ""), float64(v.vcpus))
	}
	if v.memory > 0 {
		e.add(h.vmLabels(v, catalog.VMMemoryBytes, "", ""), float64(v.memory))
	}
	for i := range st.blocks {
		b := &st.blocks[i]
		if b.name == "" {
			continue
		}
		if b.hasCapacity && b.capacity > 0 {
			if v.diskCap == nil {
				v.diskCap = map[string]int64{}
			}
			v.diskCap[b.name] = int64(b.capacity)
			e.add(h.vmLabels(v, catalog.VMDiskCapacityBytes, catalog.LabelDevice, b.name), float64(b.capacity))
			if b.hasAllocation {
				e.add(h.vmLabels(v, catalog.VMDiskUsedBytes, catalog.LabelDevice, b.name), float64(b.allocation))
				e.add(h.vmLabels(v, catalog.VMDiskUsageRatio, catalog.LabelDevice, b.name), clamp01(float64(b.allocation)/float64(b.capacity)))
			}
		}
	}
	if v.state != novacron.PowerRunning {
		v.prevOK = false
		return
	}
	cpuNs, hasCPU := st.vcpuTime, st.hasVCPUTime
	if !hasCPU {
		cpuNs, hasCPU = st.cpuTime, st.hasCPUTime
	}
	if hasCPU {
		e.add(h.vmLabels(v, catalog.VMCPUSecondsTotal, "", ""), float64(cpuNs)/1e9)
		if v.prevOK && e.t > v.prevMs && cpuNs >= v.prevCPU && v.vcpus > 0 {
			dt := float64(e.t-v.prevMs) / 1e3
			e.add(h.vmLabels(v, catalog.VMCPUUsageRatio, "", ""), clamp01(float64(cpuNs-v.prevCPU)/1e9/(dt*float64(v.vcpus))))
		}
		v.prevCPU, v.prevMs, v.prevOK = cpuNs, e.t, true
	}
	switch {
	case st.hasDelay:
		e.add(h.vmLabels(v, catalog.VMCPUStealSecondsTotal, "", ""), float64(st.vcpuDelay)/1e9)
	case st.hasWait:
		e.add(h.vmLabels(v, catalog.VMCPUStealSecondsTotal, "", ""), float64(st.vcpuWait)/1e9)
	}
	if st.hasBalloonAvail && st.hasUsable && st.balloonAvail >= st.balloonUsable {
		used := float64(st.balloonAvail-st.balloonUsable) * 1024
		e.add(h.vmLabels(v, catalog.VMMemoryUsedBytes, "", ""), used)
		if v.memory > 0 {
			e.add(h.vmLabels(v, catalog.VMMemoryUsageRatio, "", ""), clamp01(used/float64(v.memory)))
		}
	}
	for i := range st.blocks {
		b := &st.blocks[i]
		if b.name == "" {
			continue
		}
		if b.hasRd {
			e.add(h.vmLabels(v, catalog.VMDiskReadBytesTotal, catalog.LabelDevice, b.name), float64(b.rdBytes))
		}
		if b.hasRdReqs {
			e.add(h.vmLabels(v, catalog.VMDiskReadOpsTotal, catalog.LabelDevice, b.name), float64(b.rdReqs))
		}
		if b.hasWr {
			e.add(h.vmLabels(v, catalog.VMDiskWriteBytesTotal, catalog.LabelDevice, b.name), float64(b.wrBytes))
		}
		if b.hasWrReqs {
			e.add(h.vmLabels(v, catalog.VMDiskWriteOpsTotal, catalog.LabelDevice, b.name), float64(b.wrReqs))
		}
	}
	for i := range st.nets {
		n := &st.nets[i]
		if n.name == "" {
			continue
		}
		if n.hasRx {
			e.add(h.vmLabels(v, catalog.VMNetworkReceiveBytesTotal, catalog.LabelInterface, n.name), float64(n.rxBytes))
		}
		if n.hasRxPkts {
			e.add(h.vmLabels(v, catalog.VMNetworkReceivePacketsTotal, catalog.LabelInterface, n.name), float64(n.rxPkts))
		}
		if n.hasTx {
			e.add(h.vmLabels(v, catalog.VMNetworkTransmitBytesTotal, catalog.LabelInterface, n.name), float64(n.txBytes))
		}
		if n.hasTxPkts {
			e.add(h.vmLabels(v, catalog.VMNetworkTransmitPacketsTotal, catalog.LabelInterface, n.name), float64(n.txPkts))
		}
	}
}

var powerStates = [...]novacron.PowerState{novacron.PowerRunning, novacron.PowerStopped, novacron.PowerSuspended, novacron.PowerCrashed, novacron.PowerUnknown}

func clamp01(x float64) float64 {
	if x < 0 || x != x {
		return 0
	}
	if x > 1 {
		return 1
	}
	return x
}

// uuidString formats a libvirt UUID in its canonical text form.
func uuidString(u libvirt.UUID) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// inventory appends the host's VMs and the host itself to inv.
func (h *host) inventory(inv *novacron.Inventory, now time.Time) {
	up := h.client != nil
	for _, v := range h.vms {
		state := v.state
		if !up {
			state = novacron.PowerUnknown
		}
		tenant := ""
		if h.cfg.TenantTag != "" {
			tenant = v.info.tags[h.cfg.TenantTag]
		}
		var disks []novacron.Disk
		if len(v.info.disks) > 0 {
			disks = make([]novacron.Disk, len(v.info.disks))
			for i, d := range v.info.disks {
				disks[i] = novacron.Disk{Name: d.Name, CapacityBytes: v.diskCap[d.Name]}
			}
		}
		inv.VMs = append(inv.VMs, novacron.VM{
			ID:        v.id,
			Name:      v.dom.Name,
			Provider:  Provider,
			Region:    h.region,
			Zone:      h.zone,
			Host:      h.name,
			Tenant:    tenant,
			State:     state,
			Size:      novacron.Size{VCPUs: v.vcpus, MemoryBytes: v.memory},
			Disks:     disks,
			NICs:      v.info.nics,
			Tags:      v.info.tags,
			UpdatedAt: now,
		})
	}
	if h.everUp {
		inv.Hosts = append(inv.Hosts, novacron.Host{
			ID: h.name, Name: h.name, Provider: Provider, Region: h.region, Zone: h.zone,
			CPUs: h.cpus, MemoryBytes: h.memBytes, UpdatedAt: now,
		})
	}
}
