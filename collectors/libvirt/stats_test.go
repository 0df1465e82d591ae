package libvirt

import (
	"testing"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"github.com/stretchr/testify/require"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/libvirt/conn"
	"github.com/novacron/novacron/internal/catalog"
)

func p(field string, v any) libvirt.TypedParam {
	return libvirt.TypedParam{Field: field, Value: libvirt.TypedParamValue{I: v}}
}

// A QEMU record as libvirt 9 sends it, trimmed to what the mapping reads.
var qemuRecord = []libvirt.TypedParam{
	p("state.state", int32(1)), p("state.reason", int32(1)),
	p("cpu.time", uint64(9_000_000_000)),
	p("balloon.current", uint64(2097152)), p("balloon.maximum", uint64(2097152)),
	p("balloon.available", uint64(2000000)), p("balloon.usable", uint64(1500000)),
	p("vcpu.current", uint32(2)), p("vcpu.maximum", uint32(4)),
	p("vcpu.0.state", int32(1)), p("vcpu.0.time", uint64(3_000_000_000)), p("vcpu.0.wait", uint64(0)), p("vcpu.0.delay", uint64(100_000_000)),
	p("vcpu.1.state", int32(1)), p("vcpu.1.time", uint64(5_000_000_000)), p("vcpu.1.wait", uint64(0)), p("vcpu.1.delay", uint64(300_000_000)),
	p("net.count", uint32(1)), p("net.0.name", "vnet3"), p("net.0.rx.bytes", uint64(1000)), p("net.0.rx.pkts", uint64(10)),
	p("net.0.tx.bytes", uint64(2000)), p("net.0.tx.pkts", uint64(20)),
	p("block.count", uint32(1)), p("block.0.name", "vda"), p("block.0.rd.reqs", uint64(5)), p("block.0.rd.bytes", uint64(4096)),
	p("block.0.wr.reqs", uint64(7)), p("block.0.wr.bytes", uint64(8192)), p("block.0.allocation", uint64(1<<30)), p("block.0.capacity", uint64(4<<30)),
	p("block.99999.rd.bytes", uint64(1)), p("weird", uint64(1)), p("vcpu.x.time", uint64(1)), p("cpu.time", "not a number"),
}

func TestParseStats(t *testing.T) {
	var s domStats
	s.parse(qemuRecord)
	require.True(t, s.hasState)
	require.Equal(t, stateRunning, s.state)
	require.Equal(t, uint64(8_000_000_000), s.vcpuTime)
	require.Equal(t, uint64(400_000_000), s.vcpuDelay)
	require.Equal(t, 2, s.vcpuCurrent)
	require.Equal(t, uint64(2097152), s.balloonMax)
	require.Equal(t, []blockStats{{name: "vda", rdBytes: 4096, rdReqs: 5, wrBytes: 8192, wrReqs: 7, allocation: 1 << 30, capacity: 4 << 30,
		hasRd: true, hasWr: true, hasAllocation: true, hasCapacity: true, hasRdReqs: true, hasWrReqs: true}}, s.blocks)
	require.Len(t, s.nets, 1)
	require.Equal(t, "vnet3", s.nets[0].name)

	s.parse([]libvirt.TypedParam{p("state.state", int32(5))})
	require.Empty(t, s.blocks, "reused scratch is reset")
	require.False(t, s.hasVCPUTime)
}

func TestEmitVMMapsIntoTheCatalogue(t *testing.T) {
	cfg := NewDefaultConfig()
	h := &host{name: "kvm-1", region: "dc1", cfg: cfg, labels: map[string]novacron.Labels{}}
	v := &vm{id: "u-1", dom: libvirt.Domain{Name: "web"}, info: domainInfo{tags: map[string]string{"tenant": "acme"}}, state: novacron.PowerRunning, vcpus: 2, memory: 2 << 30}
	var st domStats
	st.parse(qemuRecord)
	t0 := time.Unix(1000, 0)
	e := &emitter{t: t0.UnixMilli()}
	h.emitVM(e, v, &st)
	get := func(e *emitter, metric string, extra ...string) (float64, bool) {
		s, ok := find(e.series, metric, extra...)
		if !ok {
			return 0, false
		}
		return s.Samples[0].V, true
	}
	f := func(metric string, want float64, extra ...string) {
		t.Helper()
		v, ok := get(e, metric, extra...)
		require.True(t, ok, metric)
		require.InDelta(t, want, v, 1e-9, metric)
	}
	f(catalog.VMUp, 1)
	f(catalog.VMPowerState, 1, "state", "running")
	f(catalog.VMPowerState, 0, "state", "crashed")
	f(catalog.VMVCPUs, 2)
	f(catalog.VMMemoryBytes, 2<<30)
	f(catalog.VMCPUSecondsTotal, 8)
	f(catalog.VMCPUStealSecondsTotal, 0.4)
	f(catalog.VMMemoryUsedBytes, 500000*1024)
	f(catalog.VMMemoryUsageRatio, 500000*1024/float64(2<<30))
	f(catalog.VMDiskReadBytesTotal, 4096, "device", "vda")
	f(catalog.VMDiskWriteOpsTotal, 7, "device", "vda")
	f(catalog.VMDiskCapacityBytes, 4<<30, "device", "vda")
	f(catalog.VMDiskUsageRatio, 0.25, "device", "vda")
	f(catalog.VMNetworkTransmitPacketsTotal, 20, "interface", "vnet3")
	_, hasRatio := get(e, catalog.VMCPUUsageRatio)
	require.False(t, hasRatio, "no ratio from a single sample")
	for _, s := range e.series {
		m, ok := catalog.Lookup(s.Labels.Get(novacron.MetricNameLabel))
		require.True(t, ok)
		require.Equal(t, "acme", s.Labels.Get("tenant"))
		require.Equal(t, "dc1", s.Labels.Get("region"))
		require.Empty(t, s.Labels.Get("zone"))
		for _, l := range m.Labels {
			if l == catalog.LabelInstanceType {
				continue // libvirt has no instance types: the label is left out
			}
			require.NotEmpty(t, s.Labels.Get(l), "%s carries %s", s.Labels, l)
		}
	}

	// Two seconds later the vCPUs used 3 more seconds: 0.75 of 2 vCPUs.
	qemuRecord2 := append([]libvirt.TypedParam(nil), qemuRecord...)
	qemuRecord2 = append(qemuRecord2, p("vcpu.2.time", uint64(3_000_000_000)))
	st.parse(qemuRecord2)
	e = &emitter{t: t0.Add(2 * time.Second).UnixMilli()}
	h.emitVM(e, v, &st)
	f(catalog.VMCPUUsageRatio, 0.75)

	// A stopped VM keeps its identity series and loses runtime ones.
	v.state = novacron.PowerStopped
	e = &emitter{t: t0.Add(4 * time.Second).UnixMilli()}
	h.emitVM(e, v, &st)
	f(catalog.VMUp, 0)
	f(catalog.VMPowerState, 1, "state", "stopped")
	_, ok := get(e, catalog.VMCPUSecondsTotal)
	require.False(t, ok)
}

func TestPowerStateMapping(t *testing.T) {
	for s, want := range map[int]novacron.PowerState{stateNoState: novacron.PowerUnknown, stateRunning: novacron.PowerRunning, stateBlocked: novacron.PowerRunning,
		statePaused: novacron.PowerSuspended, stateShutdown: novacron.PowerRunning, stateShutoff: novacron.PowerStopped, stateCrashed: novacron.PowerCrashed,
		statePMSuspended: novacron.PowerSuspended, 42: novacron.PowerUnknown} {
		require.Equal(t, want, powerState(s), "state %d", s)
	}
}

func TestLifecycleEvents(t *testing.T) {
	now := time.Unix(1700000000, 0)
	dom := libvirt.Domain{Name: "web", UUID: libvirt.UUID{0x12, 0x34}}
	f := func(event, detail int32, wantOK bool, what string, state novacron.PowerState) {
		t.Helper()
		ev, ok := lifecycleEvent("kvm-1", libvirt.DomainEventLifecycleMsg{Dom: dom, Event: event, Detail: detail}, now)
		require.Equal(t, wantOK, ok)
		if !ok {
			return
		}
		require.Equal(t, novacron.EventVMLifecycle, ev.Kind)
		require.Equal(t, "12340000-0000-0000-0000-000000000000", ev.VMID)
		require.Equal(t, "kvm-1", ev.Host)
		require.Equal(t, what, ev.Details["event"])
		require.Equal(t, string(state), ev.Details["to_state"])
		require.Contains(t, ev.ID, "libvirt/kvm-1/12340000-0000-0000-0000-000000000000/"+what)
	}
	f(int32(libvirt.DomainEventStarted), int32(libvirt.DomainEventStartedBooted), true, "started", novacron.PowerRunning)
	f(int32(libvirt.DomainEventStarted), int32(libvirt.DomainEventStartedMigrated), true, "migrated", novacron.PowerRunning)
	f(int32(libvirt.DomainEventStopped), int32(libvirt.DomainEventStoppedDestroyed), true, "stopped", novacron.PowerStopped)
	f(int32(libvirt.DomainEventStopped), int32(libvirt.DomainEventStoppedCrashed), true, "crashed", novacron.PowerCrashed)
	f(int32(libvirt.DomainEventStopped), int32(libvirt.DomainEventStoppedMigrated), true, "migrated_away", novacron.PowerStopped)
	f(int32(libvirt.DomainEventCrashed), 0, true, "crashed", novacron.PowerCrashed)
	f(int32(libvirt.DomainEventSuspended), int32(libvirt.DomainEventSuspendedPaused), true, "suspended", novacron.PowerSuspended)
	f(int32(libvirt.DomainEventSuspended), int32(libvirt.DomainEventSuspendedMigrated), false, "", "")
	f(int32(libvirt.DomainEventResumed), 0, true, "resumed", novacron.PowerRunning)
	f(int32(libvirt.DomainEventDefined), 0, false, "", "")
	f(int32(libvirt.DomainEventShutdown), 0, false, "", "")
	f(99, 0, false, "", "")
}

func TestParseDomainXMLAndTags(t *testing.T) {
	info, err := parseDomainXML(`<domain type="kvm"><name>db</name><uuid>u</uuid><memory unit="MiB">512</memory><vcpu current="2">8</vcpu>
<metadata><other xmlns="urn:x"><tag name="ignored" value="1"/></other><novacron:tags xmlns:novacron="` + TagsNamespace + `">
<novacron:tag name=" tenant " value=" acme "/><novacron:tag name="" value="x"/></novacron:tags></metadata>
<devices><disk type="file" device="cdrom"><target dev="hdc"/></disk><disk type="file" device="disk"><target dev="vda"/></disk>
<interface type="bridge"><mac address="52:54:00:01:02:03"/><source bridge="br0"/></interface></devices></domain>`)
	require.NoError(t, err)
	require.Equal(t, domainInfo{name: "db", uuid: "u", vcpus: 2, memoryBytes: 512 << 20, disks: []novacron.Disk{{Name: "vda"}},
		nics: []novacron.NIC{{Name: "net0", MAC: "52:54:00:01:02:03", Network: "br0"}}, tags: map[string]string{"tenant": "acme"}}, info)
	_, err = parseDomainXML("<domain")
	require.Error(t, err)

	tags := map[string]string{"tenant": `a"&<b`, "role": "web"}
	got, err := conn.ParseTags(conn.TagsXML(tags))
	require.NoError(t, err)
	require.Equal(t, tags, got, "tags round-trip through XML")
}

func FuzzParseStats(f *testing.F) {
	f.Add("block.0.rd.bytes", uint64(1), "block.0.name", "vda")
	f.Add("vcpu.3.time", uint64(5), "net.1.name", "eth0")
	f.Add("block.1023.capacity", uint64(9), "block.-1.name", "x")
	f.Fuzz(func(t *testing.T, f1 string, v uint64, f2, name string) {
		var s domStats
		s.parse([]libvirt.TypedParam{p(f1, v), p(f2, name), p(f1, int32(v)), p(f2, float64(v))})
		require.LessOrEqual(t, len(s.blocks), maxDevices)
		require.LessOrEqual(t, len(s.nets), maxDevices)
	})
}

func FuzzParseDomainXML(f *testing.F) {
	f.Add(`<domain><name>x</name><metadata><t:tags xmlns:t="` + TagsNamespace + `"><t:tag name="a" value="b"/></t:tags></metadata></domain>`)
	f.Add(`<domain><vcpu>4</vcpu><memory unit="GiB">2</memory></domain>`)
	f.Fuzz(func(t *testing.T, doc string) {
		if len(doc) > 1<<16 {
			return
		}
		info, err := parseDomainXML(doc)
		if err == nil {
			require.LessOrEqual(t, len(info.tags), 64)
		}
	})
}
