package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/catalog"
)

// Provider is the provider label and name of the simulated fleet.
const Provider = "sim"

const (
	gib     = 1 << 30
	mib     = 1 << 20
	hourMs  = int64(time.Hour / time.Millisecond)
	dayMs   = 24 * hourMs
	weekMs  = 7 * dayMs
	maxEvts = 1024
)

type personality uint8

const (
	persWeb personality = iota
	persBatch
	persDB
	persIdle
)

func (p personality) String() string {
	return [...]string{"web", "batch", "db", "idle"}[p]
}

var instanceTypes = []novacron.Size{
	{VCPUs: 1, MemoryBytes: 2 * gib, InstanceType: "sim.small"},
	{VCPUs: 2, MemoryBytes: 4 * gib, InstanceType: "sim.medium"},
	{VCPUs: 4, MemoryBytes: 8 * gib, InstanceType: "sim.large"},
	{VCPUs: 8, MemoryBytes: 16 * gib, InstanceType: "sim.xlarge"},
	{VCPUs: 16, MemoryBytes: 32 * gib, InstanceType: "sim.2xlarge"},
}

// InstanceTypes returns the simulated fleet's instance types. Resize
// accepts one of them by name, or any custom vCPU and memory combination.
func InstanceTypes() []novacron.Size { return slices.Clone(instanceTypes) }

// Indexes of a VM's series in vm.labels. The first vmAlways series are
// reported in every state; the rest only while the VM runs.
const (
	sInfo = iota
	sUp
	sPowerState // one per powerStates entry
	sVCPUs      = sPowerState + len(powerStates)
	sMemBytes   = sVCPUs + 1
	sDiskUsed   = sMemBytes + 1
	sDiskCap    = sDiskUsed + 1
	sDiskRatio  = sDiskCap + 1
	vmAlways    = sDiskRatio + 1

	sCPURatio   = vmAlways
	sCPUSeconds = sCPURatio + 1
	sSteal      = sCPUSeconds + 1
	sMemUsed    = sSteal + 1
	sMemRatio   = sMemUsed + 1
	sReadBytes  = sMemRatio + 1
	sWriteBytes = sReadBytes + 1
	sReadOps    = sWriteBytes + 1
	sWriteOps   = sReadOps + 1
	sRxBytes    = sWriteOps + 1
	sTxBytes    = sRxBytes + 1
	sRxPackets  = sTxBytes + 1
	sTxPackets  = sRxPackets + 1
	nVMSeries   = sTxPackets + 1
)

var powerStates = [...]novacron.PowerState{
	novacron.PowerRunning, novacron.PowerStopped, novacron.PowerSuspended, novacron.PowerCrashed, novacron.PowerUnknown,
}

// Indexes of a host's series in host.labels.
const (
	hUp = iota
	hCPUs
	hCPURatio
	hCPUSeconds
	hMemBytes
	hMemUsed
	hMemRatio
	hVMs
	hVCPUs
	hMemAlloc
	nHostSeries
)

// vmSeriesName returns the metric name and extra label of series s.
func vmSeriesName(s int) (name, extra string, extraValue func(*vm) string) {
	switch {
	case s == sInfo:
		return catalog.VMInfo, catalog.LabelInstanceType, func(v *vm) string { return v.size.InstanceType }
	case s == sUp:
		return catalog.VMUp, "", nil
	case s >= sPowerState && s < sVCPUs:
		st := string(powerStates[s-sPowerState])
		return catalog.VMPowerState, catalog.LabelState, func(*vm) string { return st }
	}
	disk := func(*vm) string { return "vda" }
	nic := func(*vm) string { return "eth0" }
	switch s {
	case sVCPUs:
		return catalog.VMVCPUs, "", nil
	case sMemBytes:
		return catalog.VMMemoryBytes, "", nil
	case sDiskUsed:
		return catalog.VMDiskUsedBytes, catalog.LabelDevice, disk
	case sDiskCap:
		return catalog.VMDiskCapacityBytes, catalog.LabelDevice, disk
	case sDiskRatio:
		return catalog.VMDiskUsageRatio, catalog.LabelDevice, disk
	case sCPURatio:
		return catalog.VMCPUUsageRatio, "", nil
	case sCPUSeconds:
		return catalog.VMCPUSecondsTotal, "", nil
	case sSteal:
		return catalog.VMCPUStealSecondsTotal, "", nil
	case sMemUsed:
		return catalog.VMMemoryUsedBytes, "", nil
	case sMemRatio:
		return catalog.VMMemoryUsageRatio, "", nil
	case sReadBytes:
		return catalog.VMDiskReadBytesTotal, catalog.LabelDevice, disk
	case sWriteBytes:
		return catalog.VMDiskWriteBytesTotal, catalog.LabelDevice, disk
	case sReadOps:
		return catalog.VMDiskReadOpsTotal, catalog.LabelDevice, disk
	case sWriteOps:
		return catalog.VMDiskWriteOpsTotal, catalog.LabelDevice, disk
	case sRxBytes:
		return catalog.VMNetworkReceiveBytesTotal, catalog.LabelInterface, nic
	case sTxBytes:
		return catalog.VMNetworkTransmitBytesTotal, catalog.LabelInterface, nic
	case sRxPackets:
		return catalog.VMNetworkReceivePacketsTotal, catalog.LabelInterface, nic
	case sTxPackets:
		return catalog.VMNetworkTransmitPacketsTotal, catalog.LabelInterface, nic
	}
	panic(fmt.Sprintf("sim: no series %d", s))
}

var hostSeriesNames = [nHostSeries]string{
	hUp:         catalog.HostUp,
	hCPUs:       catalog.HostCPUs,
	hCPURatio:   catalog.HostCPUUsageRatio,
	hCPUSeconds: catalog.HostCPUSecondsTotal,
	hMemBytes:   catalog.HostMemoryBytes,
	hMemUsed:    catalog.HostMemoryUsedBytes,
	hMemRatio:   catalog.HostMemoryUsageRatio,
	hVMs:        catalog.HostVMs,
	hVCPUs:      catalog.HostVCPUsAllocated,
	hMemAlloc:   catalog.HostMemoryAllocatedBytes,
}

type host struct {
	id, zone string
	cpus     int
	mem      int64
	labels   [nHostSeries]novacron.Labels
	cpuSec   float64

	// Scratch for one Step.
	need, used, noisy, contention, memUsed float64
	vms, vcpus                             int
	memAlloc                               int64
}

type vm struct {
	idx                int
	id, name, tenant   string
	env                string
	pers               personality
	size               novacron.Size
	diskCap            float64
	host               int
	state              novacron.PowerState
	generation         int64
	bootMs             int64
	updated            time.Time
	eventSeq           int
	labels             [nVMSeries]novacron.Labels
	incidents          []int
	diskUsed           float64 // last value while running, reported while stopped
	mac                string
	phaseMs            int64
	peakCores, growth  float64
	wsBase, wsLoad     float64
	diskBase, diskGrow float64
	rdPerCore, wrPerCore, ioSize,
	rxPerCore, txPerCore float64

	// Counters since boot.
	cpuSec, stealSec, rdB, wrB, rdOps, wrOps, rxB, txB, rxP, txP float64

	// Scratch for one Step.
	work, cpuNeed, fillRate float64
	runaway, leakFromMs     int64 // window start when active, else -1
	fillFromMs, fillDurMs   int64
	leakDurMs               int64
}

type incident struct {
	kind               string
	target             int
	atMs, durMs, every int64
}

// window returns the start of the incident's window containing tms, or
// false when it is not active at tms.
func (in *incident) window(startMs, tms int64) (int64, bool) {
	off := tms - (startMs + in.atMs)
	if off < 0 {
		return 0, false
	}
	if in.every > 0 {
		off %= in.every
	}
	if off >= in.durMs {
		return 0, false
	}
	return tms - off, true
}

// Incident is one scheduled incident with its target resolved.
type Incident struct {
	// Kind is one of the Incident… constants.
	Kind string
	// Target is a VM ID, or a host ID for noisy_neighbor.
	Target string
	// Start is when the first window opens.
	Start time.Time
	// Duration is the length of each window.
	Duration time.Duration
	// Every is the repeat period, 0 for once.
	Every time.Duration
}

// Active reports whether a window of the incident contains t.
func (in Incident) Active(t time.Time) bool {
	x := incident{atMs: 0, durMs: in.Duration.Milliseconds(), every: in.Every.Milliseconds()}
	_, ok := x.window(in.Start.UnixMilli(), t.UnixMilli())
	return ok
}

// Fleet is the simulated fleet's model: hosts, VMs, their workloads and
// incidents. It is deterministic: its output depends only on the config,
// the start time, the times passed to Step and the actions applied between
// steps. It never reads the clock.
//
// Fleet implements novacron.Driver: actions apply at the simulated time of
// the latest Step (the start time before the first). All methods are safe
// for concurrent use.
type Fleet struct {
	mu        sync.Mutex
	seed      uint64
	start     time.Time
	startMs   int64
	region    string
	hosts     []host
	vms       []vm
	byID      map[string]int
	hostByID  map[string]int
	incidents []incident
	now       time.Time
	lastMs    int64
	stepped   bool
	events    []novacron.Event
	dropped   int
}

var _ novacron.Driver = (*Fleet)(nil)

// NewFleet builds the fleet described by cfg, starting at start (which
// overrides cfg.StartTime). It returns cfg.Validate's error when the
// configuration is invalid.
func NewFleet(cfg Config, start time.Time) (*Fleet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6e6f766163726f6e))
	f := &Fleet{
		seed:     mix64(cfg.Seed),
		start:    start,
		startMs:  start.UnixMilli(),
		region:   cfg.Region,
		now:      start,
		lastMs:   start.UnixMilli(),
		byID:     make(map[string]int, cfg.VMs),
		hostByID: make(map[string]int, cfg.Hosts),
	}
	f.hosts = make([]host, cfg.Hosts)
	for i := range f.hosts {
		h := &f.hosts[i]
		h.id = hostID(i)
		h.zone = cfg.Zones[i%len(cfg.Zones)]
		h.cpus = []int{16, 24, 32}[rng.IntN(3)]
		h.mem = int64(h.cpus) * 8 * gib
		f.hostByID[h.id] = i
	}
	weights := []float64{cfg.Mix.Web, cfg.Mix.Batch, cfg.Mix.DB, cfg.Mix.Idle}
	allocated := make([]int, cfg.Hosts)
	f.vms = make([]vm, cfg.VMs)
	for i := range f.vms {
		v := &f.vms[i]
		v.idx = i
		v.id = vmID(i)
		v.pers = personality(pick(rng, weights))
		v.name = fmt.Sprintf("%s-%04d", v.pers, i+1)
		if len(cfg.Tenants) > 0 {
			v.tenant = cfg.Tenants[rng.IntN(len(cfg.Tenants))]
		}
		v.env = "prod"
		if rng.Float64() < 0.3 {
			v.env = "staging"
		}
		v.state = novacron.PowerRunning
		v.bootMs = f.startMs
		v.updated = start
		v.mac = fmt.Sprintf("52:54:00:%02x:%02x:%02x", (i>>16)&0xff, (i>>8)&0xff, i&0xff)
		v.phaseMs = int64((rng.Float64()*2 - 1) * float64(hourMs))
		u := func(lo, hi float64) float64 { return lo + (hi-lo)*rng.Float64() }
		var sizeWeights []float64
		var peakUtil float64
		switch v.pers {
		case persWeb:
			sizeWeights = []float64{0.3, 0.5, 0.2}
			peakUtil = u(0.45, 0.75)
			v.diskCap = math.Round(u(20, 60)) * gib
			v.diskBase, v.diskGrow = u(0.2, 0.5), u(0.002, 0.006)
			v.rdPerCore, v.wrPerCore, v.ioSize = 100e3, 200e3, 16<<10
			v.rxPerCore, v.txPerCore = 300e3, 1.2e6
		case persBatch:
			sizeWeights = []float64{0, 0, 0.4, 0.4, 0.2}
			peakUtil = u(0.7, 0.95)
			v.diskCap = math.Round(u(100, 300)) * gib
			v.diskBase, v.diskGrow = u(0.3, 0.6), u(0.001, 0.004)
			v.rdPerCore, v.wrPerCore, v.ioSize = 8e6, 4e6, 128<<10
			v.rxPerCore, v.txPerCore = 2e6, 0.5e6
		case persDB:
			sizeWeights = []float64{0, 0, 0.5, 0.5}
			peakUtil = u(0.4, 0.7)
			v.diskCap = math.Round(u(200, 800)) * gib
			v.diskBase, v.diskGrow = u(0.4, 0.65), u(0.004, 0.01)
			v.rdPerCore, v.wrPerCore, v.ioSize = 3e6, 1.5e6, 8<<10
			v.rxPerCore, v.txPerCore = 1e6, 1.5e6
		case persIdle:
			sizeWeights = []float64{0.7, 0.3}
			peakUtil = u(0.01, 0.04)
			v.diskCap = math.Round(u(10, 30)) * gib
			v.diskBase, v.diskGrow = u(0.1, 0.3), u(0, 0.001)
			v.rdPerCore, v.wrPerCore, v.ioSize = 10e3, 20e3, 4<<10
			v.rxPerCore, v.txPerCore = 20e3, 20e3
		}
		v.size = instanceTypes[pick(rng, sizeWeights)]
		v.peakCores = peakUtil * float64(v.size.VCPUs)
		v.growth = u(-0.01, 0.05)
		mem := float64(v.size.MemoryBytes)
		switch v.pers {
		case persWeb:
			v.wsBase, v.wsLoad = 0.3*mem, 0.2*mem
		case persBatch:
			v.wsBase, v.wsLoad = 0.15*mem, 0.6*mem
		case persDB:
			v.wsBase, v.wsLoad = 0.7*mem, 0.15*mem
		case persIdle:
			v.wsBase, v.wsLoad = 0.12*mem, 0.05*mem
		}
		// Place on the least allocated host (by vCPU share), lowest index
		// first on ties, so placement is deterministic.
		best := 0
		for j := 1; j < len(f.hosts); j++ {
			if allocated[j]*f.hosts[best].cpus < allocated[best]*f.hosts[j].cpus {
				best = j
			}
		}
		v.host = best
		allocated[best] += v.size.VCPUs
		v.diskUsed = f.diskBaseline(v, f.startMs)
		f.byID[v.id] = i
	}
	f.resolveIncidents(cfg.Incidents, rng)
	for i := range f.hosts {
		f.buildHostLabels(&f.hosts[i])
	}
	for i := range f.vms {
		f.buildVMLabels(&f.vms[i])
	}
	return f, nil
}

// pick returns an index drawn with the given relative weights.
func pick(rng *rand.Rand, weights []float64) int {
	var sum float64
	for _, w := range weights {
		sum += w
	}
	x := rng.Float64() * sum
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	for i := len(weights) - 1; i >= 0; i-- {
		if weights[i] > 0 {
			return i
		}
	}
	return 0
}

func (f *Fleet) resolveIncidents(cfgs []IncidentConfig, rng *rand.Rand) {
	taken := map[int]bool{}
	for _, ic := range cfgs {
		in := incident{kind: ic.Kind, atMs: ic.At.Milliseconds(), durMs: ic.Duration.Milliseconds(), every: ic.Every.Milliseconds()}
		if ic.Kind == IncidentNoisyNeighbor {
			if ic.Target != "" {
				in.target = f.hostByID[ic.Target]
			} else {
				in.target = f.pickHost(rng)
			}
			f.incidents = append(f.incidents, in)
			continue
		}
		if ic.Target != "" {
			in.target = f.byID[ic.Target]
		} else {
			var prefer []personality
			switch ic.Kind {
			case IncidentCPURunaway:
				prefer = []personality{persWeb, persDB}
			case IncidentMemoryLeak:
				prefer = []personality{persWeb, persDB}
			case IncidentIdle:
				prefer = []personality{persWeb, persBatch}
			case IncidentDiskFill:
				prefer = []personality{persDB, persBatch}
			}
			t, ok := f.pickVM(rng, prefer, taken)
			if !ok {
				continue // no VMs: nothing to break
			}
			in.target = t
		}
		taken[in.target] = true
		f.incidents = append(f.incidents, in)
		v := &f.vms[in.target]
		v.incidents = append(v.incidents, len(f.incidents)-1)
	}
}

// pickVM picks a VM not yet targeted, preferring the personalities in
// order; it falls back to any VM.
func (f *Fleet) pickVM(rng *rand.Rand, prefer []personality, taken map[int]bool) (int, bool) {
	if len(f.vms) == 0 {
		return 0, false
	}
	for _, p := range prefer {
		var cands []int
		for i := range f.vms {
			if f.vms[i].pers == p && !taken[i] {
				cands = append(cands, i)
			}
		}
		if len(cands) > 0 {
			return cands[rng.IntN(len(cands))], true
		}
	}
	return rng.IntN(len(f.vms)), true
}

// pickHost picks a host among those with the most VMs, so the incident
// touches as many VMs as it can.
func (f *Fleet) pickHost(rng *rand.Rand) int {
	count := make([]int, len(f.hosts))
	most := 0
	for i := range f.vms {
		count[f.vms[i].host]++
		most = max(most, count[f.vms[i].host])
	}
	var cands []int
	for i, c := range count {
		if c == most {
			cands = append(cands, i)
		}
	}
	return cands[rng.IntN(len(cands))]
}

func (f *Fleet) buildHostLabels(h *host) {
	ident := []novacron.Label{
		{Name: catalog.LabelHost, Value: h.id},
		{Name: catalog.LabelProvider, Value: Provider},
		{Name: catalog.LabelRegion, Value: f.region},
		{Name: catalog.LabelZone, Value: h.zone},
	}
	n := 1 + len(ident)
	chunk := make([]novacron.Label, n*nHostSeries)
	for s := range nHostSeries {
		ls := chunk[s*n : s*n : (s+1)*n]
		ls = append(ls, novacron.Label{Name: novacron.MetricNameLabel, Value: hostSeriesNames[s]})
		ls = append(ls, ident...)
		h.labels[s] = novacron.Labels(ls).Sort()
	}
}

// buildVMLabels builds the labels of every series of v once; Step reuses
// them until the VM's identity changes (migrate, resize). Each Labels has
// cap == len, so a consumer appending to it gets a copy.
func (f *Fleet) buildVMLabels(v *vm) {
	h := &f.hosts[v.host]
	ident := []novacron.Label{
		{Name: catalog.LabelHost, Value: h.id},
		{Name: catalog.LabelProvider, Value: Provider},
		{Name: catalog.LabelRegion, Value: f.region},
		{Name: catalog.LabelTenant, Value: v.tenant},
		{Name: catalog.LabelVM, Value: v.name},
		{Name: catalog.LabelVMID, Value: v.id},
		{Name: catalog.LabelZone, Value: h.zone},
	}
	ident = slices.DeleteFunc(ident, func(l novacron.Label) bool { return l.Value == "" })
	n := 2 + len(ident)
	chunk := make([]novacron.Label, 0, n*nVMSeries)
	for s := range nVMSeries {
		name, extra, value := vmSeriesName(s)
		off := len(chunk)
		chunk = append(chunk, novacron.Label{Name: novacron.MetricNameLabel, Value: name})
		if extra != "" {
			if val := value(v); val != "" {
				chunk = append(chunk, novacron.Label{Name: extra, Value: val})
			}
		}
		chunk = append(chunk, ident...)
		v.labels[s] = novacron.Labels(chunk[off:len(chunk):len(chunk)]).Sort()
	}
}

func hourOf(ms int64) float64 {
	r := ms % dayMs
	if r < 0 {
		r += dayMs
	}
	return float64(r) / float64(hourMs)
}

// weekdayOf returns 0 for Sunday … 6 for Saturday (1970-01-01 was a
// Thursday).
func weekdayOf(ms int64) int {
	d := ms / dayMs
	if ms < 0 && ms%dayMs != 0 {
		d--
	}
	return int(((d+4)%7 + 7) % 7)
}

// bump is a Gaussian bump around mu (hours), on the 24-hour circle.
func bump(h, mu, sd float64) float64 {
	d := math.Mod(h-mu+36, 24) - 12
	return math.Exp(-d * d / (2 * sd * sd))
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// baseWork returns the CPU work (in cores) v's personality asks for at tms,
// before incidents and host effects.
func (f *Fleet) baseWork(v *vm, tms int64) float64 {
	lt := tms + v.phaseMs
	h := hourOf(lt)
	wd := weekdayOf(lt)
	weekend := wd == 0 || wd == 6
	var p float64
	switch v.pers {
	case persWeb:
		p = 0.2 + 0.8*bump(h, 14, 3.5)
		if weekend {
			p *= 0.55
		}
	case persBatch:
		p = 0.06 + 0.94*sigmoid((h-1)*3)*sigmoid((5-h)*3)
		if wd == 0 {
			p *= 1.25 // weekly reports
		}
	case persDB:
		p = 0.45 + 0.55*bump(h, 14, 5)
		if weekend {
			p *= 0.7
		}
	case persIdle:
		p = 1
	}
	trend := max(0.1, 1+v.growth*float64(tms-f.startMs)/float64(weekMs))
	n := 1 + 0.08*white(f.seed, key(v.idx, chCPUWhite), tms) + 0.12*smooth(f.seed, key(v.idx, chCPUSmooth), tms, 30*60*1000)
	return max(0, v.peakCores*p*trend*n)
}

// memBaseline is v's memory use at tms for the given work, without a leak.
func (f *Fleet) memBaseline(v *vm, tms int64, work float64) float64 {
	load := 0.0
	if v.peakCores > 0 {
		load = min(1.5, work/v.peakCores)
	}
	u := v.wsBase + v.wsLoad*load + 0.03*(v.wsBase+v.wsLoad)*smooth(f.seed, key(v.idx, chMemSmooth), tms, 20*60*1000)
	return min(max(u, 64*mib), 0.97*float64(v.size.MemoryBytes))
}

// diskBaseline is v's disk use at tms without a disk_fill incident.
func (f *Fleet) diskBaseline(v *vm, tms int64) float64 {
	days := float64(tms-f.startMs) / float64(dayMs)
	frac := min(0.92, v.diskBase+v.diskGrow*max(0, days)) + 0.002*smooth(f.seed, key(v.idx, chDiskSmooth), tms, 6*hourMs)
	return frac * v.diskCap
}

// Step advances the fleet to simulated time t and returns one sample per
// series at t. See AppendStep.
func (f *Fleet) Step(t time.Time) []novacron.Series { return f.AppendStep(nil, t) }

// AppendStep advances the fleet to simulated time t, appends one sample
// per series at t to dst and returns it. Counters grow by the rates at t
// times the time since the previous step; a t not after the previous step
// leaves counters where they are.
//
// The appended Series and their Samples are new and belong to the caller.
// Their Labels are shared with later steps and must be treated as
// read-only; each has cap == len, so appending to one copies it.
func (f *Fleet) AppendStep(dst []novacron.Series, t time.Time) []novacron.Series {
	f.mu.Lock()
	defer f.mu.Unlock()
	tms := t.UnixMilli()
	dt := 0.0
	if f.stepped && tms > f.lastMs {
		dt = float64(tms-f.lastMs) / 1000
	}
	if !f.stepped || tms > f.lastMs {
		f.lastMs, f.now, f.stepped = tms, t, true
	}

	for i := range f.hosts {
		h := &f.hosts[i]
		h.need, h.used, h.noisy, h.contention, h.memUsed = 0, 0, 0, 0, 0
		h.vms, h.vcpus, h.memAlloc = 0, 0, 0
	}
	for i := range f.incidents {
		in := &f.incidents[i]
		if in.kind != IncidentNoisyNeighbor {
			continue
		}
		if _, ok := in.window(f.startMs, tms); ok {
			f.hosts[in.target].noisy = 0.35
		}
	}

	// Pass 1: what each running VM asks for.
	running := 0
	for i := range f.vms {
		v := &f.vms[i]
		if v.state != novacron.PowerRunning {
			continue
		}
		running++
		h := &f.hosts[v.host]
		vcpus := float64(v.size.VCPUs)
		work := f.baseWork(v, tms)
		v.runaway, v.leakFromMs, v.fillFromMs = -1, -1, -1
		for _, ii := range v.incidents {
			in := &f.incidents[ii]
			ws, ok := in.window(f.startMs, tms)
			if !ok {
				continue
			}
			switch in.kind {
			case IncidentIdle:
				work = vcpus * 0.003 * (1 + 0.3*white(f.seed, key(v.idx, chRunaway), tms))
			case IncidentCPURunaway:
				if v.bootMs <= ws {
					v.runaway = ws
				}
			case IncidentMemoryLeak:
				if v.bootMs <= ws {
					v.leakFromMs, v.leakDurMs = ws, in.durMs
				}
			case IncidentDiskFill:
				v.fillFromMs, v.fillDurMs = ws, in.durMs
			}
		}
		need := work
		if v.runaway >= 0 {
			need = vcpus * (0.97 + 0.02*white(f.seed, key(v.idx, chRunaway), tms))
		}
		if h.noisy > 0 {
			need *= 1.3 // caches and memory bandwidth shared with the neighbour
		}
		v.work, v.cpuNeed = work, min(need, vcpus)
		h.need += v.cpuNeed
		h.vms++
		h.vcpus += v.size.VCPUs
		h.memAlloc += v.size.MemoryBytes
	}

	// Pass 2: host contention.
	for i := range f.hosts {
		h := &f.hosts[i]
		cpus := float64(h.cpus)
		load := h.need + (h.noisy+0.02)*cpus
		if load > cpus {
			h.contention = 1 - cpus/load
		}
	}

	n := running*nVMSeries + (len(f.vms)-running)*vmAlways + len(f.hosts)*nHostSeries
	dst = slices.Grow(dst, n)
	e := emitter{series: dst[len(dst) : len(dst)+n], samples: make([]novacron.Sample, n), tms: tms}

	// Pass 3: each VM's values and counters.
	for i := range f.vms {
		v := &f.vms[i]
		h := &f.hosts[v.host]
		up := v.state == novacron.PowerRunning
		if up {
			f.stepRunning(v, h, tms, dt)
		}
		e.add(v.labels[sInfo], 1)
		e.add(v.labels[sUp], b2f(up))
		for k, st := range powerStates {
			e.add(v.labels[sPowerState+k], b2f(v.state == st))
		}
		e.add(v.labels[sVCPUs], float64(v.size.VCPUs))
		e.add(v.labels[sMemBytes], float64(v.size.MemoryBytes))
		e.add(v.labels[sDiskUsed], math.Floor(v.diskUsed))
		e.add(v.labels[sDiskCap], v.diskCap)
		e.add(v.labels[sDiskRatio], v.diskUsed/v.diskCap)
		if !up {
			continue
		}
		vcpus := float64(v.size.VCPUs)
		used := v.cpuNeed * (1 - h.contention)
		h.used += used
		memUsed := f.memUsed(v, tms)
		h.memUsed += memUsed
		e.add(v.labels[sCPURatio], min(1, used/vcpus))
		e.add(v.labels[sCPUSeconds], v.cpuSec)
		e.add(v.labels[sSteal], v.stealSec)
		e.add(v.labels[sMemUsed], math.Floor(memUsed))
		e.add(v.labels[sMemRatio], memUsed/float64(v.size.MemoryBytes))
		e.add(v.labels[sReadBytes], math.Floor(v.rdB))
		e.add(v.labels[sWriteBytes], math.Floor(v.wrB))
		e.add(v.labels[sReadOps], math.Floor(v.rdOps))
		e.add(v.labels[sWriteOps], math.Floor(v.wrOps))
		e.add(v.labels[sRxBytes], math.Floor(v.rxB))
		e.add(v.labels[sTxBytes], math.Floor(v.txB))
		e.add(v.labels[sRxPackets], math.Floor(v.rxP))
		e.add(v.labels[sTxPackets], math.Floor(v.txP))
	}

	for i := range f.hosts {
		h := &f.hosts[i]
		cpus := float64(h.cpus)
		busy := min(cpus, h.used+(h.noisy+0.02)*cpus)
		h.cpuSec += busy * dt
		mem := float64(h.mem)
		memUsed := min(mem, 4*gib+1.05*h.memUsed)
		e.add(h.labels[hUp], 1)
		e.add(h.labels[hCPUs], cpus)
		e.add(h.labels[hCPURatio], busy/cpus)
		e.add(h.labels[hCPUSeconds], h.cpuSec)
		e.add(h.labels[hMemBytes], mem)
		e.add(h.labels[hMemUsed], math.Floor(memUsed))
		e.add(h.labels[hMemRatio], memUsed/mem)
		e.add(h.labels[hVMs], float64(h.vms))
		e.add(h.labels[hVCPUs], float64(h.vcpus))
		e.add(h.labels[hMemAlloc], float64(h.memAlloc))
	}
	return dst[:len(dst)+n]
}

// stepRunning updates the counters and disk use of a running VM for the
// step ending at tms.
func (f *Fleet) stepRunning(v *vm, h *host, tms int64, dt float64) {
	used := v.cpuNeed * (1 - h.contention)
	steal := 0.005 + 0.004*smooth(f.seed, key(v.idx, chStealSmooth), tms, 10*60*1000)
	if h.noisy > 0 {
		steal += 0.25 + 0.08*smooth(f.seed, key(v.idx, chStealSmooth), tms, 5*60*1000)
	}
	steal = min(0.95, steal+h.contention)

	// Disk use: the baseline, or a climb to full during disk_fill.
	v.fillRate = 0
	if v.fillFromMs >= 0 {
		u0 := f.diskBaseline(v, v.fillFromMs)
		target := 0.995 * v.diskCap
		p := float64(tms-v.fillFromMs) / float64(v.fillDurMs)
		v.diskUsed = u0 + (target-u0)*p
		v.fillRate = max(0, (target-u0)/(float64(v.fillDurMs)/1000))
	} else {
		v.diskUsed = f.diskBaseline(v, tms)
	}

	if dt <= 0 {
		return
	}
	v.cpuSec += used * dt
	v.stealSec += v.cpuNeed * steal * dt
	ioN := 1 + 0.1*white(f.seed, key(v.idx, chIOWhite), tms)
	rd := (v.rdPerCore*v.work + 2e3) * ioN
	wr := (v.wrPerCore*v.work+4e3)*ioN + v.fillRate
	v.rdB += rd * dt
	v.wrB += wr * dt
	v.rdOps += rd / v.ioSize * dt
	v.wrOps += wr / max(v.ioSize, 64<<10*b2f(v.fillRate > 0)) * dt
	netN := 1 + 0.1*white(f.seed, key(v.idx, chNetWhite), tms)
	rx := (v.rxPerCore*v.work + 2e3) * netN
	tx := (v.txPerCore*v.work + 1.5e3) * netN
	v.rxB += rx * dt
	v.txB += tx * dt
	v.rxP += rx / 620 * dt
	v.txP += tx / 980 * dt
}

// memUsed is v's memory use at tms: the baseline, or during a leak a steady
// climb from the baseline at the leak's start to nearly all of the memory.
func (f *Fleet) memUsed(v *vm, tms int64) float64 {
	if v.leakFromMs < 0 {
		return f.memBaseline(v, tms, v.work)
	}
	limit := 0.97 * float64(v.size.MemoryBytes)
	u0 := f.memBaseline(v, v.leakFromMs, f.baseWork(v, v.leakFromMs))
	rate := max(0, limit-u0) / float64(v.leakDurMs) * 1.15 // full a little before the end
	return min(limit, u0+rate*float64(tms-v.leakFromMs))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

type emitter struct {
	series  []novacron.Series
	samples []novacron.Sample
	n       int
	tms     int64
}

func (e *emitter) add(ls novacron.Labels, v float64) {
	e.samples[e.n] = novacron.Sample{T: e.tms, V: v}
	e.series[e.n] = novacron.Series{Labels: ls, Samples: e.samples[e.n : e.n+1 : e.n+1]}
	e.n++
}

// Generate steps the fleet from from (inclusive) to to (exclusive) every
// step and calls fn with each step's batch, which fn owns. It stops at and
// returns fn's first error. Use it to backfill days of data quickly; the
// output is the same as calling Step at those times.
func (f *Fleet) Generate(from, to time.Time, step time.Duration, fn func(batch []novacron.Series) error) error {
	if step <= 0 {
		return novacron.Errorf(novacron.EINVALID, "generate step must be positive, got %s", step)
	}
	for t := from; t.Before(to); t = t.Add(step) {
		if err := fn(f.Step(t)); err != nil {
			return fmt.Errorf("generate at %s: %w", t.UTC().Format(time.RFC3339), err)
		}
	}
	return nil
}

// Now returns the simulated time of the latest Step, or the start time
// before the first. Actions apply at this time.
func (f *Fleet) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// StartTime returns the fleet's start time, which incident offsets count
// from.
func (f *Fleet) StartTime() time.Time { return f.start }

// Incidents returns the incident schedule with targets resolved: the
// ground truth to score anomaly detection against.
func (f *Fleet) Incidents() []Incident {
	out := make([]Incident, len(f.incidents))
	for i, in := range f.incidents {
		target := ""
		if in.kind == IncidentNoisyNeighbor {
			target = f.hosts[in.target].id
		} else {
			target = f.vms[in.target].id
		}
		out[i] = Incident{
			Kind:     in.kind,
			Target:   target,
			Start:    f.start.Add(time.Duration(in.atMs) * time.Millisecond),
			Duration: time.Duration(in.durMs) * time.Millisecond,
			Every:    time.Duration(in.every) * time.Millisecond,
		}
	}
	return out
}

// Inventory returns a snapshot of the fleet's hosts and VMs, stamped t.
func (f *Fleet) Inventory(t time.Time) novacron.Inventory {
	f.mu.Lock()
	defer f.mu.Unlock()
	inv := novacron.Inventory{
		Source: Provider,
		Time:   t,
		VMs:    make([]novacron.VM, len(f.vms)),
		Hosts:  make([]novacron.Host, len(f.hosts)),
	}
	for i := range f.vms {
		inv.VMs[i] = f.vmView(&f.vms[i])
	}
	for i := range f.hosts {
		h := &f.hosts[i]
		inv.Hosts[i] = novacron.Host{
			ID:          h.id,
			Name:        h.id,
			Provider:    Provider,
			Region:      f.region,
			Zone:        h.zone,
			CPUs:        h.cpus,
			MemoryBytes: h.mem,
			UpdatedAt:   f.start,
		}
	}
	return inv
}

// vmView returns v as inventory. f.mu must be held.
func (f *Fleet) vmView(v *vm) novacron.VM {
	h := &f.hosts[v.host]
	return novacron.VM{
		ID:         v.id,
		Name:       v.name,
		Provider:   Provider,
		Region:     f.region,
		Zone:       h.zone,
		Host:       h.id,
		Tenant:     v.tenant,
		State:      v.state,
		Size:       v.size,
		Disks:      []novacron.Disk{{Name: "vda", CapacityBytes: int64(v.diskCap)}},
		NICs:       []novacron.NIC{{Name: "eth0", MAC: v.mac, Network: "sim-net"}},
		Tags:       map[string]string{"role": v.pers.String(), "env": v.env},
		Generation: v.generation,
		UpdatedAt:  v.updated,
	}
}
