package aws

import (
	"maps"
	"slices"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/catalog"
)

// convert turns the datapoints of each query into catalogue series,
// appending to dst. Samples keep CloudWatch's timestamps (the start of
// each period). Points not newer than the last one delivered for the same
// query are skipped, so a window read twice delivers nothing twice.
//
//   - CPUUtilization (percent) → novacron_vm_cpu_usage_ratio (÷100) and
//     novacron_vm_cpu_seconds_total (+ ratio × vCPUs × period);
//   - Sum statistics (bytes, packets, operations per period) → counters:
//     the running sum since the collector started;
//   - agent memory and disk bytes → gauges, and the usage ratios where
//     the capacity is known at the same time;
//   - StatusCheckFailed → kept for the power state.
func (c *Collector) convert(st *targetState, qs []*query, pts map[*query][]point, dst []novacron.Series) []novacron.Series {
	periodSec := c.cfg.Period.Seconds()
	type devKey struct{ vm, dev string }
	used := map[devKey]map[int64]float64{}
	total := map[devKey]map[int64]float64{}
	vmOf := map[devKey]*novacron.VM{}
	for _, q := range qs {
		list := pts[q]
		if len(list) == 0 {
			continue
		}
		key := q.key()
		last, seen := st.last[key]
		fresh := list[:0:0]
		for _, p := range list {
			if !seen || p.t.After(last) {
				fresh = append(fresh, p)
			}
		}
		if len(fresh) == 0 {
			continue
		}
		st.last[key] = fresh[len(fresh)-1].t
		vm := &q.inst.vm
		samples := func(f func(point) float64) []novacron.Sample {
			out := make([]novacron.Sample, len(fresh))
			for i, p := range fresh {
				out[i] = novacron.Sample{T: p.t.UnixMilli(), V: f(p)}
			}
			return out
		}
		counter := func(f func(point) float64) []novacron.Sample {
			sum := st.counters[key]
			out := samples(func(p point) float64 { sum += f(p); return sum })
			st.counters[key] = sum
			return out
		}
		dev := novacron.Label{Name: catalog.LabelDevice, Value: q.device}
		vcpus := float64(vm.Size.VCPUs)
		switch q.spec.kind {
		case kindCPU:
			dst = append(dst, novacron.Series{Labels: vmLabels(vm, catalog.VMCPUUsageRatio), Samples: samples(func(p point) float64 { return p.v / 100 })})
			if vcpus > 0 {
				dst = append(dst, novacron.Series{Labels: vmLabels(vm, catalog.VMCPUSecondsTotal), Samples: counter(func(p point) float64 { return p.v / 100 * vcpus * periodSec })})
			}
		case kindSteal:
			if vcpus > 0 {
				dst = append(dst, novacron.Series{Labels: vmLabels(vm, catalog.VMCPUStealSecondsTotal), Samples: counter(func(p point) float64 { return p.v / 100 * vcpus * periodSec })})
			}
		case kindStatus:
			st.status[vm.ID] = fresh[len(fresh)-1].v
		case kindNetRxBytes:
			dst = append(dst, novacron.Series{Labels: vmLabels(vm, catalog.VMNetworkReceiveBytesTotal), Samples: counter(value)})
		case kindNetTxBytes:
			dst = append(dst, novacron.Series{Labels: vmLabels(vm, catalog.VMNetworkTransmitBytesTotal), Samples: counter(value)})
		case kindNetRxPackets:
			dst = append(dst, novacron.Series{Labels: vmLabels(vm, catalog.VMNetworkReceivePacketsTotal), Samples: counter(value)})
		case kindNetTxPackets:
			dst = append(dst, novacron.Series{Labels: vmLabels(vm, catalog.VMNetworkTransmitPacketsTotal), Samples: counter(value)})
		case kindDiskRdBytes:
			dst = append(dst, novacron.Series{Labels: vmLabels(vm, catalog.VMDiskReadBytesTotal, dev), Samples: counter(value)})
		case kindDiskWrBytes:
			dst = append(dst, novacron.Series{Labels: vmLabels(vm, catalog.VMDiskWriteBytesTotal, dev), Samples: counter(value)})
		case kindDiskRdOps:
			dst = append(dst, novacron.Series{Labels: vmLabels(vm, catalog.VMDiskReadOpsTotal, dev), Samples: counter(value)})
		case kindDiskWrOps:
			dst = append(dst, novacron.Series{Labels: vmLabels(vm, catalog.VMDiskWriteOpsTotal, dev), Samples: counter(value)})
		case kindMemUsed:
			dst = append(dst, novacron.Series{Labels: vmLabels(vm, catalog.VMMemoryUsedBytes), Samples: samples(value)})
			if mem := float64(vm.Size.MemoryBytes); mem > 0 {
				dst = append(dst, novacron.Series{Labels: vmLabels(vm, catalog.VMMemoryUsageRatio), Samples: samples(func(p point) float64 { return p.v / mem })})
			}
		case kindDiskUsed, kindDiskTotal:
			name, into := catalog.VMDiskUsedBytes, used
			if q.spec.kind == kindDiskTotal {
				name, into = catalog.VMDiskCapacityBytes, total
			}
			dst = append(dst, novacron.Series{Labels: vmLabels(vm, name, dev), Samples: samples(value)})
			k := devKey{vm.ID, q.device}
			vmOf[k] = vm
			if into[k] == nil {
				into[k] = map[int64]float64{}
			}
			for _, p := range fresh {
				into[k][p.t.UnixMilli()] = p.v
			}
		}
	}
	for k, u := range used {
		tot := total[k]
		var ss []novacron.Sample
		for _, p := range sortedTimes(u) {
			if capacity := tot[p]; capacity > 0 {
				ss = append(ss, novacron.Sample{T: p, V: u[p] / capacity})
			}
		}
		if len(ss) > 0 {
			dst = append(dst, novacron.Series{Labels: vmLabels(vmOf[k], catalog.VMDiskUsageRatio, novacron.Label{Name: catalog.LabelDevice, Value: k.dev}), Samples: ss})
		}
	}
	return dst
}

func value(p point) float64 { return p.v }

// sortedTimes returns the map's timestamps in order.
func sortedTimes(m map[int64]float64) []int64 {
	return slices.Sorted(maps.Keys(m))
}
