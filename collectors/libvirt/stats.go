package libvirt

import (
	"strconv"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"

	novacron "github.com/novacron/novacron"
)

// statsGroups are the bulk stats groups requested from every host. Groups
// a driver does not have are left out of its answer (the test driver
// answers only state; Xen has no balloon or vcpu delay).
const statsGroups = libvirt.DomainStatsState | libvirt.DomainStatsCPUTotal | libvirt.DomainStatsBalloon |
	libvirt.DomainStatsVCPU | libvirt.DomainStatsInterface | libvirt.DomainStatsBlock

// libvirt domain states (virDomainState).
const (
	stateNoState     = 0
	stateRunning     = 1
	stateBlocked     = 2
	statePaused      = 3
	stateShutdown    = 4
	stateShutoff     = 5
	stateCrashed     = 6
	statePMSuspended = 7
)

// powerState maps a virDomainState to a provider-neutral power state.
func powerState(s int) novacron.PowerState {
	switch s {
	case stateRunning, stateBlocked, stateShutdown:
		// Blocked is waiting on I/O; shutdown is running its shutdown.
		return novacron.PowerRunning
	case statePaused, statePMSuspended:
		return novacron.PowerSuspended
	case stateShutoff:
		return novacron.PowerStopped
	case stateCrashed:
		return novacron.PowerCrashed
	}
	return novacron.PowerUnknown
}

// domStats is one domain's bulk stats record, parsed. Fields come with a
// has flag because a source that lacks a value must not report it as 0.
type domStats struct {
	state    int
	hasState bool

	cpuTime    uint64 // cpu.time, ns, including emulator threads
	hasCPUTime bool

	vcpuCurrent int
	hasVCPU     bool
	vcpuTime    uint64 // Σ vcpu.<n>.time, ns
	hasVCPUTime bool
	vcpuDelay   uint64 // Σ vcpu.<n>.delay, ns
	hasDelay    bool
	vcpuWait    uint64 // Σ vcpu.<n>.wait, ns
	hasWait     bool

	balloonMax, balloonAvail, balloonUsable   uint64 // KiB
	hasBalloonMax, hasBalloonAvail, hasUsable bool

	blocks []blockStats
	nets   []netStats
}

type blockStats struct {
	name                                     string
	rdBytes, rdReqs, wrBytes, wrReqs         uint64
	allocation, capacity                     uint64
	hasRd, hasWr, hasAllocation, hasCapacity bool
	hasRdReqs, hasWrReqs                     bool
}

type netStats struct {
	name                               string
	rxBytes, rxPkts, txBytes, txPkts   uint64
	hasRx, hasTx, hasRxPkts, hasTxPkts bool
}

// reset empties s for reuse, keeping the device slices' memory.
func (s *domStats) reset() {
	blocks, nets := s.blocks[:0], s.nets[:0]
	*s = domStats{blocks: blocks, nets: nets}
}

// paramUint returns a typed parameter's value as an unsigned integer.
func paramUint(v libvirt.TypedParamValue) (uint64, bool) {
	switch x := v.I.(type) {
	case int32:
		if x < 0 {
			return 0, false
		}
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case int64:
		if x < 0 {
			return 0, false
		}
		return uint64(x), true
	case uint64:
		return x, true
	case float64:
		if x < 0 || x != x {
			return 0, false
		}
		return uint64(x), true
	}
	return 0, false
}

// parse fills s from a stats record's parameters. Unknown fields and
// values of unexpected types are ignored.
func (s *domStats) parse(params []libvirt.TypedParam) {
	s.reset()
	for _, p := range params {
		group, rest, ok := strings.Cut(p.Field, ".")
		if !ok {
			continue
		}
		if str, isStr := p.Value.I.(string); isStr {
			// Only device names are strings.
			if idx, field, ok := indexed(rest); ok && field == "name" {
				switch group {
				case "block":
					s.block(idx).name = str
				case "net":
					s.net(idx).name = str
				}
			}
			continue
		}
		v, ok := paramUint(p.Value)
		if !ok {
			continue
		}
		switch group {
		case "state":
			if rest == "state" {
				s.state, s.hasState = int(v), true
			}
		case "cpu":
			if rest == "time" {
				s.cpuTime, s.hasCPUTime = v, true
			}
		case "balloon":
			switch rest {
			case "maximum":
				s.balloonMax, s.hasBalloonMax = v, true
			case "available":
				s.balloonAvail, s.hasBalloonAvail = v, true
			case "usable":
				s.balloonUsable, s.hasUsable = v, true
			}
		case "vcpu":
			if rest == "current" {
				s.vcpuCurrent, s.hasVCPU = int(v), true
				continue
			}
			if _, field, ok := indexed(rest); ok {
				switch field {
				case "time":
					s.vcpuTime += v
					s.hasVCPUTime = true
				case "delay":
					s.vcpuDelay += v
					s.hasDelay = true
				case "wait":
					s.vcpuWait += v
					s.hasWait = true
				}
			}
		case "block":
			idx, field, ok := indexed(rest)
			if !ok {
				continue
			}
			b := s.block(idx)
			switch field {
			case "rd.bytes":
				b.rdBytes, b.hasRd = v, true
			case "rd.reqs":
				b.rdReqs, b.hasRdReqs = v, true
			case "wr.bytes":
				b.wrBytes, b.hasWr = v, true
			case "wr.reqs":
				b.wrReqs, b.hasWrReqs = v, true
			case "allocation":
				b.allocation, b.hasAllocation = v, true
			case "capacity":
				b.capacity, b.hasCapacity = v, true
			}
		case "net":
			idx, field, ok := indexed(rest)
			if !ok {
				continue
			}
			n := s.net(idx)
			switch field {
			case "rx.bytes":
				n.rxBytes, n.hasRx = v, true
			case "rx.pkts":
				n.rxPkts, n.hasRxPkts = v, true
			case "tx.bytes":
				n.txBytes, n.hasTx = v, true
			case "tx.pkts":
				n.txPkts, n.hasTxPkts = v, true
			}
		}
	}
}

// maxDevices bounds the device index accepted from a record, so a bogus
// index cannot make the parser allocate without limit.
const maxDevices = 1024

// indexed splits "3.rd.bytes" into 3 and "rd.bytes".
func indexed(s string) (int, string, bool) {
	num, field, ok := strings.Cut(s, ".")
	if !ok {
		return 0, "", false
	}
	i, err := strconv.Atoi(num)
	if err != nil || i < 0 || i >= maxDevices {
		return 0, "", false
	}
	return i, field, true
}

func (s *domStats) block(i int) *blockStats {
	for len(s.blocks) <= i {
		s.blocks = append(s.blocks, blockStats{})
	}
	return &s.blocks[i]
}

func (s *domStats) net(i int) *netStats {
	for len(s.nets) <= i {
		s.nets = append(s.nets, netStats{})
	}
	return &s.nets[i]
}
