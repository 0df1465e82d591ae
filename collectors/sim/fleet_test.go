package sim

import (
	"context"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/catalog"
)

// t0 is a Monday at midnight UTC.
var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func newFleet(t testing.TB, mod func(*Config)) *Fleet {
	t.Helper()
	cfg := NewDefaultConfig()
	if mod != nil {
		mod(cfg)
	}
	f, err := NewFleet(*cfg, t0)
	require.NoError(t, err)
	return f
}

func noIncidents(c *Config) { c.Incidents = nil }

type point struct {
	t time.Time
	v float64
}

// trace steps f over [from, to) and returns the samples of the series named
// name whose label lname has value lvalue (the first such series per step;
// use a label that identifies one series).
func trace(t testing.TB, f *Fleet, from, to time.Time, step time.Duration, name, lname, lvalue string) []point {
	t.Helper()
	var out []point
	require.NoError(t, f.Generate(from, to, step, func(batch []novacron.Series) error {
		if s, ok := find(batch, name, lname, lvalue); ok {
			out = append(out, point{time.UnixMilli(s.Samples[0].T), s.Samples[0].V})
		}
		return nil
	}))
	return out
}

func find(batch []novacron.Series, name, lname, lvalue string) (novacron.Series, bool) {
	for _, s := range batch {
		// Labels are sorted, so the name comes first: skip quickly.
		if s.Labels[0].Value != name {
			continue
		}
		if s.Labels.Get(novacron.MetricNameLabel) == name && s.Labels.Get(lname) == lvalue {
			return s, true
		}
	}
	return novacron.Series{}, false
}

func mean(ps []point) float64 {
	var sum float64
	for _, p := range ps {
		sum += p.v
	}
	return sum / float64(len(ps))
}

// rate is the average per-second increase of a counter trace.
func rate(ps []point) float64 {
	return (ps[len(ps)-1].v - ps[0].v) / ps[len(ps)-1].t.Sub(ps[0].t).Seconds()
}

func batchHash(batch []novacron.Series) uint64 {
	h := fnv.New64a()
	for _, s := range batch {
		lh := s.Labels.Hash()
		h.Write([]byte{byte(lh), byte(lh >> 8), byte(lh >> 16), byte(lh >> 24), byte(lh >> 32), byte(lh >> 40), byte(lh >> 48), byte(lh >> 56)})
		for _, smp := range s.Samples {
			h.Write([]byte{byte(smp.T), byte(smp.T >> 8), byte(smp.T >> 16)})
			b := math.Float64bits(smp.V)
			h.Write([]byte{byte(b), byte(b >> 8), byte(b >> 16), byte(b >> 24), byte(b >> 32), byte(b >> 40), byte(b >> 48), byte(b >> 56)})
		}
	}
	return h.Sum64()
}

func fingerprint(t *testing.T, seed uint64) []uint64 {
	f := newFleet(t, func(c *Config) { c.Seed = seed })
	var out []uint64
	require.NoError(t, f.Generate(t0, t0.Add(6*time.Hour), 5*time.Minute, func(b []novacron.Series) error {
		out = append(out, batchHash(b))
		return nil
	}))
	return out
}

func TestSameSeedSameOutput(t *testing.T) {
	a, b := fingerprint(t, 7), fingerprint(t, 7)
	require.Len(t, a, 72)
	require.Equal(t, a, b)
	c := fingerprint(t, 8)
	require.NotEqual(t, a[0], c[0], "a different seed must give a different fleet")
	require.NotEqual(t, a[len(a)-1], c[len(c)-1])
}

func TestSameActionsSameOutput(t *testing.T) {
	run := func() []uint64 {
		f := newFleet(t, nil)
		ctx := context.Background()
		var out []uint64
		gen := func(from, to time.Time) {
			require.NoError(t, f.Generate(from, to, time.Minute, func(b []novacron.Series) error {
				out = append(out, batchHash(b))
				return nil
			}))
		}
		gen(t0, t0.Add(time.Hour))
		require.NoError(t, f.Migrate(ctx, "vm-0003", "host-05"))
		require.NoError(t, f.Resize(ctx, "vm-0004", novacron.Size{InstanceType: "sim.xlarge"}))
		require.NoError(t, f.Reboot(ctx, "vm-0005"))
		gen(t0.Add(time.Hour), t0.Add(2*time.Hour))
		return out
	}
	require.Equal(t, run(), run())
}

func TestGenerateMatchesStep(t *testing.T) {
	a, b := newFleet(t, nil), newFleet(t, nil)
	var gen [][]novacron.Series
	require.NoError(t, a.Generate(t0, t0.Add(10*time.Minute), time.Minute, func(batch []novacron.Series) error {
		gen = append(gen, batch)
		return nil
	}))
	require.Len(t, gen, 10)
	for i, batch := range gen {
		require.Equal(t, batchHash(batch), batchHash(b.Step(t0.Add(time.Duration(i)*time.Minute))), "step %d", i)
	}
}

func TestGenerateStopsOnError(t *testing.T) {
	f := newFleet(t, nil)
	calls := 0
	err := f.Generate(t0, t0.Add(time.Hour), time.Minute, func([]novacron.Series) error {
		calls++
		if calls == 3 {
			return context.Canceled
		}
		return nil
	})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 3, calls)
	require.Equal(t, novacron.EINVALID, novacron.ErrorCode(f.Generate(t0, t0.Add(time.Hour), 0, nil)))
}

func TestSeriesFollowCatalog(t *testing.T) {
	f := newFleet(t, nil)
	require.NoError(t, f.Stop(context.Background(), "vm-0002", 0))
	batch := f.Step(t0)
	seen := map[string]bool{}
	names := map[string]bool{}
	for _, s := range batch {
		key := s.Labels.String()
		require.False(t, seen[key], "duplicate series %s", key)
		seen[key] = true
		require.True(t, slices.IsSortedFunc(s.Labels, func(a, b novacron.Label) int { return strings.Compare(a.Name, b.Name) }), key)
		require.Equal(t, len(s.Labels), cap(s.Labels), "labels must have cap == len so appends copy")
		name := s.Labels.Get(novacron.MetricNameLabel)
		names[name] = true
		m, ok := catalog.Lookup(name)
		require.True(t, ok, "%s is not in the catalogue", name)
		ident := catalog.HostIdentityLabels()
		if m.Subject == catalog.SubjectVM {
			ident = catalog.VMIdentityLabels()
		}
		for _, l := range append(ident, m.Labels...) {
			require.NotEmpty(t, s.Labels.Get(l), "%s lacks label %s", key, l)
		}
		require.Len(t, s.Labels, 1+len(ident)+len(m.Labels), key)
		require.Equal(t, "sim", s.Labels.Get(catalog.LabelProvider))
		require.Len(t, s.Samples, 1)
		require.Equal(t, t0.UnixMilli(), s.Samples[0].T)
		require.False(t, math.IsNaN(s.Samples[0].V) || math.IsInf(s.Samples[0].V, 0), key)
		if m.Unit == "ratio" {
			require.GreaterOrEqual(t, s.Samples[0].V, 0.0, key)
			require.LessOrEqual(t, s.Samples[0].V, 1.0, key)
		}
	}
	for _, m := range catalog.Metrics() {
		if m.Subject != catalog.SubjectCollector {
			require.True(t, names[m.Name], "the sim reports no %s", m.Name)
		}
	}
}

// webVMs returns the IDs of the web VMs of f.
func webVMs(f *Fleet) []string {
	var ids []string
	for _, v := range f.Inventory(t0).VMs {
		if v.Tags["role"] == "web" {
			ids = append(ids, v.ID)
		}
	}
	return ids
}

// fleetMean steps f over [from, to) and returns, per VM ID in ids, the
// mean of metric name.
func fleetMean(t *testing.T, f *Fleet, from, to time.Time, name string, ids []string) map[string]float64 {
	sums := map[string]float64{}
	n := 0
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	require.NoError(t, f.Generate(from, to, 5*time.Minute, func(batch []novacron.Series) error {
		n++
		for _, s := range batch {
			if id := s.Labels.Get(catalog.LabelVMID); want[id] && s.Labels.Get(novacron.MetricNameLabel) == name {
				sums[id] += s.Samples[0].V
			}
		}
		return nil
	}))
	for id := range sums {
		sums[id] /= float64(n)
	}
	return sums
}

func TestDailyCycle(t *testing.T) {
	f := newFleet(t, noIncidents)
	ids := webVMs(f)
	require.GreaterOrEqual(t, len(ids), 10)
	night := fleetMean(t, f, t0.Add(1*time.Hour), t0.Add(5*time.Hour), catalog.VMCPUUsageRatio, ids)
	day := fleetMean(t, f, t0.Add(12*time.Hour), t0.Add(16*time.Hour), catalog.VMCPUUsageRatio, ids)
	var dn, nn float64
	for _, id := range ids {
		dn += day[id]
		nn += night[id]
		require.Greater(t, day[id], night[id], "web VM %s: daytime CPU must exceed night CPU", id)
	}
	require.Greater(t, dn, 2*nn, "fleet-wide web daytime CPU must be well above night")
}

func TestWeeklyCycle(t *testing.T) {
	f := newFleet(t, noIncidents)
	ids := webVMs(f)
	wed := t0.Add(2 * 24 * time.Hour)
	sat := t0.Add(5 * 24 * time.Hour)
	weekday := fleetMean(t, f, wed.Add(10*time.Hour), wed.Add(16*time.Hour), catalog.VMCPUUsageRatio, ids)
	weekend := fleetMean(t, f, sat.Add(10*time.Hour), sat.Add(16*time.Hour), catalog.VMCPUUsageRatio, ids)
	var a, b float64
	for _, id := range ids {
		a += weekday[id]
		b += weekend[id]
	}
	require.Greater(t, a, 1.4*b, "weekday office hours must be busier than Saturday's")
}

func TestDefaultScheduleHasEveryKindOnTheFirstDay(t *testing.T) {
	f := newFleet(t, nil)
	kinds := map[string]bool{}
	for _, in := range f.Incidents() {
		require.True(t, in.Start.Add(in.Duration).Before(t0.Add(24*time.Hour)) || in.Start.Add(in.Duration).Equal(t0.Add(24*time.Hour)))
		kinds[in.Kind] = true
		if in.Kind == IncidentNoisyNeighbor {
			require.True(t, strings.HasPrefix(in.Target, "host-"), in.Target)
		} else {
			_, err := f.VM(context.Background(), in.Target)
			require.NoError(t, err)
		}
	}
	for _, k := range IncidentKinds() {
		require.True(t, kinds[k], "default schedule lacks %s", k)
	}
	require.Empty(t, newFleet(t, noIncidents).Incidents())
}

func incidentOf(t *testing.T, f *Fleet, kind string) Incident {
	for _, in := range f.Incidents() {
		if in.Kind == kind {
			return in
		}
	}
	t.Fatalf("no %s incident", kind)
	return Incident{}
}

// split separates a trace into points before the incident window and in it.
func split(ps []point, in Incident) (before, during []point) {
	for _, p := range ps {
		switch {
		case in.Active(p.t):
			during = append(during, p)
		case p.t.Before(in.Start):
			before = append(before, p)
		}
	}
	return before, during
}

func TestIncidents(t *testing.T) {
	end := t0.Add(24 * time.Hour)
	const step = 2 * time.Minute
	t.Run(IncidentCPURunaway, func(t *testing.T) {
		f := newFleet(t, nil)
		in := incidentOf(t, f, IncidentCPURunaway)
		before, during := split(trace(t, f, t0, end, step, catalog.VMCPUUsageRatio, catalog.LabelVMID, in.Target), in)
		require.NotEmpty(t, during)
		require.Less(t, mean(before), 0.8)
		for _, p := range during {
			require.Greater(t, p.v, 0.9, "runaway CPU at %s", p.t)
		}
	})
	t.Run(IncidentMemoryLeak, func(t *testing.T) {
		f := newFleet(t, nil)
		in := incidentOf(t, f, IncidentMemoryLeak)
		vm, err := f.VM(context.Background(), in.Target)
		require.NoError(t, err)
		before, during := split(trace(t, f, t0, end, step, catalog.VMMemoryUsedBytes, catalog.LabelVMID, in.Target), in)
		for i := 1; i < len(during); i++ {
			require.GreaterOrEqual(t, during[i].v, during[i-1].v, "leak must only grow (at %s)", during[i].t)
		}
		grown := during[len(during)-1].v - during[0].v
		require.Greater(t, grown, 0.3*float64(vm.Size.MemoryBytes))
		require.Greater(t, during[len(during)-1].v, 0.9*float64(vm.Size.MemoryBytes))
		require.Less(t, mean(before), 0.8*float64(vm.Size.MemoryBytes))
	})
	t.Run(IncidentDiskFill, func(t *testing.T) {
		f := newFleet(t, nil)
		in := incidentOf(t, f, IncidentDiskFill)
		before, during := split(trace(t, f, t0, end, step, catalog.VMDiskUsageRatio, catalog.LabelVMID, in.Target), in)
		for i := 1; i < len(during); i++ {
			require.Greater(t, during[i].v, during[i-1].v, "disk use must climb (at %s)", during[i].t)
		}
		require.Less(t, before[len(before)-1].v, 0.8)
		require.Greater(t, during[len(during)-1].v, 0.98)
	})
	t.Run(IncidentIdle, func(t *testing.T) {
		f := newFleet(t, nil)
		in := incidentOf(t, f, IncidentIdle)
		before, during := split(trace(t, f, t0, end, step, catalog.VMCPUUsageRatio, catalog.LabelVMID, in.Target), in)
		require.Greater(t, mean(before), 0.03)
		for _, p := range during {
			require.Less(t, p.v, 0.01, "idle CPU at %s", p.t)
		}
	})
	t.Run(IncidentNoisyNeighbor, func(t *testing.T) {
		f := newFleet(t, nil)
		in := incidentOf(t, f, IncidentNoisyNeighbor)
		// Steal per second of each VM on the host, before and during.
		var ids []string
		for _, v := range f.Inventory(t0).VMs {
			if v.Host == in.Target {
				ids = append(ids, v.ID)
			}
		}
		require.NotEmpty(t, ids)
		before := map[string][]point{}
		during := map[string][]point{}
		var hostBefore, hostDuring []point
		require.NoError(t, f.Generate(in.Start.Add(-2*time.Hour), in.Start.Add(in.Duration), step, func(batch []novacron.Series) error {
			for _, s := range batch {
				p := point{time.UnixMilli(s.Samples[0].T), s.Samples[0].V}
				dst := before
				if in.Active(p.t) {
					dst = during
				}
				switch s.Labels.Get(novacron.MetricNameLabel) {
				case catalog.VMCPUStealSecondsTotal:
					if id := s.Labels.Get(catalog.LabelVMID); slices.Contains(ids, id) {
						dst[id] = append(dst[id], p)
					}
				case catalog.HostCPUUsageRatio:
					if s.Labels.Get(catalog.LabelHost) == in.Target {
						if in.Active(p.t) {
							hostDuring = append(hostDuring, p)
						} else {
							hostBefore = append(hostBefore, p)
						}
					}
				}
			}
			return nil
		}))
		for _, id := range ids {
			require.Greater(t, rate(during[id]), 5*rate(before[id]), "steal of %s must rise", id)
		}
		require.Greater(t, mean(hostDuring), mean(hostBefore)+0.2)
	})
}

func TestCountersAreMonotonicAndResetOnReboot(t *testing.T) {
	f := newFleet(t, nil)
	last := map[uint64]float64{}
	counters := 0
	var cpuKey uint64
	check := func(batch []novacron.Series) error {
		for _, s := range batch {
			if !strings.HasSuffix(s.Labels.Get(novacron.MetricNameLabel), "_total") {
				continue
			}
			counters++
			k := s.Labels.Hash()
			if v := s.Samples[0].V; v < last[k] {
				t.Fatalf("%s went down from %v to %v", s.Labels, last[k], v)
			}
			last[k] = s.Samples[0].V
			if s.Labels.Get(novacron.MetricNameLabel) == catalog.VMCPUSecondsTotal && s.Labels.Get(catalog.LabelVMID) == "vm-0001" {
				cpuKey = k
			}
		}
		return nil
	}
	require.NoError(t, f.Generate(t0, t0.Add(24*time.Hour), 2*time.Minute, check))
	require.Equal(t, 720*(60*10+8), counters, "every running VM has 10 counters, every host 1")
	require.Greater(t, last[cpuKey], 60.0)
	require.NoError(t, f.Reboot(context.Background(), "vm-0001"))
	s, ok := find(f.Step(t0.Add(24*time.Hour+time.Minute)), catalog.VMCPUSecondsTotal, catalog.LabelVMID, "vm-0001")
	require.True(t, ok)
	require.Less(t, s.Samples[0].V, last[cpuKey], "a reboot restarts the counter")
	require.Less(t, s.Samples[0].V, 60.0)
}

func TestStepBackwardsHoldsCounters(t *testing.T) {
	f := newFleet(t, nil)
	f.Step(t0)
	a, _ := find(f.Step(t0.Add(time.Hour)), catalog.VMCPUSecondsTotal, catalog.LabelVMID, "vm-0001")
	b, _ := find(f.Step(t0.Add(30*time.Minute)), catalog.VMCPUSecondsTotal, catalog.LabelVMID, "vm-0001")
	require.Equal(t, a.Samples[0].V, b.Samples[0].V)
	require.Equal(t, t0.Add(time.Hour), f.Now())
}

// pickVM returns a running VM with at least minCPUs vCPUs of the given role.
func pickVM(t *testing.T, f *Fleet, role string, minCPUs int) novacron.VM {
	for _, v := range f.Inventory(t0).VMs {
		if v.Tags["role"] == role && v.Size.VCPUs >= minCPUs {
			return v
		}
	}
	t.Fatalf("no %s VM with %d vCPUs", role, minCPUs)
	return novacron.VM{}
}

func TestResizeChangesUtilisation(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		factor int // new vCPUs = old * factor / 2
		higher bool
	}{
		{"fewer vcpus", 1, true},
		{"more vcpus", 4, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, resized := newFleet(t, noIncidents), newFleet(t, noIncidents)
			v := pickVM(t, base, "web", 4)
			base.Step(t0.Add(9 * time.Hour))
			resized.Step(t0.Add(9 * time.Hour))
			size := novacron.Size{VCPUs: v.Size.VCPUs * tc.factor / 2, MemoryBytes: v.Size.MemoryBytes}
			require.NoError(t, resized.Resize(ctx, v.ID, size))
			from, to := t0.Add(9*time.Hour+time.Minute), t0.Add(12*time.Hour)
			a := trace(t, base, from, to, time.Minute, catalog.VMCPUUsageRatio, catalog.LabelVMID, v.ID)
			b := trace(t, resized, from, to, time.Minute, catalog.VMCPUUsageRatio, catalog.LabelVMID, v.ID)
			if tc.higher {
				require.Greater(t, mean(b), 1.5*mean(a))
			} else {
				require.Less(t, mean(b), 0.75*mean(a))
			}
			got, err := resized.VM(ctx, v.ID)
			require.NoError(t, err)
			require.Equal(t, size.VCPUs, got.Size.VCPUs)
			require.Equal(t, v.Generation+1, got.Generation)
			vcpus := trace(t, resized, to, to.Add(time.Minute), time.Minute, catalog.VMVCPUs, catalog.LabelVMID, v.ID)
			require.Equal(t, float64(size.VCPUs), vcpus[0].v)
		})
	}
}

func TestResizeByInstanceTypeUpdatesInfo(t *testing.T) {
	f := newFleet(t, noIncidents)
	require.NoError(t, f.Resize(context.Background(), "vm-0001", novacron.Size{InstanceType: "sim.2xlarge"}))
	s, ok := find(f.Step(t0), catalog.VMInfo, catalog.LabelVMID, "vm-0001")
	require.True(t, ok)
	require.Equal(t, "sim.2xlarge", s.Labels.Get(catalog.LabelInstanceType))
	v, err := f.VM(context.Background(), "vm-0001")
	require.NoError(t, err)
	require.Equal(t, 16, v.Size.VCPUs)
	require.Equal(t, int64(32*gib), v.Size.MemoryBytes)
}

func TestMigrateMovesLoad(t *testing.T) {
	ctx := context.Background()
	base, moved := newFleet(t, noIncidents), newFleet(t, noIncidents)
	v := pickVM(t, base, "batch", 8)
	to := "host-01"
	if v.Host == to {
		to = "host-02"
	}
	require.NoError(t, moved.Migrate(ctx, v.ID, to))

	got, err := moved.VM(ctx, v.ID)
	require.NoError(t, err)
	require.Equal(t, to, got.Host)
	require.Equal(t, v.Generation+1, got.Generation)
	inv := moved.Inventory(t0)
	require.Equal(t, to, inv.VMs[slices.IndexFunc(inv.VMs, func(x novacron.VM) bool { return x.ID == v.ID })].Host)

	// Batch jobs run at night: compare the hosts' CPU then.
	from, end := t0.Add(2*time.Hour), t0.Add(4*time.Hour)
	srcBase := trace(t, base, from, end, 5*time.Minute, catalog.HostCPUUsageRatio, catalog.LabelHost, v.Host)
	dstBase := trace(t, newFleet(t, noIncidents), from, end, 5*time.Minute, catalog.HostCPUUsageRatio, catalog.LabelHost, to)
	batches := [][]novacron.Series{}
	require.NoError(t, moved.Generate(from, end, 5*time.Minute, func(b []novacron.Series) error {
		batches = append(batches, b)
		return nil
	}))
	var srcMoved, dstMoved []point
	for _, b := range batches {
		s, _ := find(b, catalog.HostCPUUsageRatio, catalog.LabelHost, v.Host)
		srcMoved = append(srcMoved, point{v: s.Samples[0].V})
		d, _ := find(b, catalog.HostCPUUsageRatio, catalog.LabelHost, to)
		dstMoved = append(dstMoved, point{v: d.Samples[0].V})
		cpu, ok := find(b, catalog.VMCPUUsageRatio, catalog.LabelVMID, v.ID)
		require.True(t, ok)
		require.Equal(t, to, cpu.Labels.Get(catalog.LabelHost), "the VM's series move to the new host")
	}
	require.Less(t, mean(srcMoved), mean(srcBase)-0.05, "source host must lose the VM's load")
	require.Greater(t, mean(dstMoved), mean(dstBase)+0.05, "destination host must gain it")
}

func TestMigrateEscapesNoisyNeighbor(t *testing.T) {
	ctx := context.Background()
	noisy := func(c *Config) {
		c.Incidents = []IncidentConfig{{Kind: IncidentNoisyNeighbor, Target: "host-01", Duration: 6 * time.Hour}}
	}
	stay, leave := newFleet(t, noisy), newFleet(t, noisy)
	var id string
	for _, v := range stay.Inventory(t0).VMs {
		if v.Host == "host-01" && v.Tags["role"] != "idle" {
			id = v.ID
			break
		}
	}
	require.NotEmpty(t, id)
	stay.Step(t0.Add(time.Hour))
	leave.Step(t0.Add(time.Hour))
	require.NoError(t, leave.Migrate(ctx, id, "host-02"))
	from, to := t0.Add(time.Hour+time.Minute), t0.Add(3*time.Hour)
	a := trace(t, stay, from, to, time.Minute, catalog.VMCPUStealSecondsTotal, catalog.LabelVMID, id)
	b := trace(t, leave, from, to, time.Minute, catalog.VMCPUStealSecondsTotal, catalog.LabelVMID, id)
	require.Less(t, rate(b), rate(a)/5, "steal must end after leaving the noisy host")
}

func TestStopAndStart(t *testing.T) {
	ctx := context.Background()
	f := newFleet(t, noIncidents)
	f.Step(t0)
	v := pickVM(t, f, "web", 1)
	hostVMs := func(batch []novacron.Series) float64 {
		s, _ := find(batch, catalog.HostVMs, catalog.LabelHost, v.Host)
		return s.Samples[0].V
	}
	before := hostVMs(f.Step(t0.Add(time.Minute)))
	require.NoError(t, f.Stop(ctx, v.ID, time.Minute))
	batch := f.Step(t0.Add(2 * time.Minute))
	up, _ := find(batch, catalog.VMUp, catalog.LabelVMID, v.ID)
	require.Equal(t, 0.0, up.Samples[0].V)
	for _, s := range batch {
		if s.Labels.Get(catalog.LabelVMID) != v.ID {
			continue
		}
		name := s.Labels.Get(novacron.MetricNameLabel)
		require.NotContains(t, []string{catalog.VMCPUUsageRatio, catalog.VMCPUSecondsTotal, catalog.VMMemoryUsedBytes, catalog.VMNetworkReceiveBytesTotal}, name, "a stopped VM reports no runtime metrics")
		if name == catalog.VMPowerState {
			require.Equal(t, b2f(s.Labels.Get(catalog.LabelState) == "stopped"), s.Samples[0].V, s.Labels.String())
		}
	}
	require.Equal(t, before-1, hostVMs(batch))
	got, err := f.VM(ctx, v.ID)
	require.NoError(t, err)
	require.Equal(t, novacron.PowerStopped, got.State)

	require.NoError(t, f.Start(ctx, v.ID))
	f.Step(t0.Add(3 * time.Minute))
	cpu, ok := find(f.Step(t0.Add(4*time.Minute)), catalog.VMCPUSecondsTotal, catalog.LabelVMID, v.ID)
	require.True(t, ok)
	require.Less(t, cpu.Samples[0].V, 60.0*float64(v.Size.VCPUs), "counters restart after boot")
	require.Greater(t, cpu.Samples[0].V, 0.0)
}

func TestRebootEndsRunaway(t *testing.T) {
	f := newFleet(t, func(c *Config) {
		c.Incidents = []IncidentConfig{{Kind: IncidentCPURunaway, Target: "vm-0001", At: time.Hour, Duration: 4 * time.Hour}}
	})
	f.Step(t0.Add(2 * time.Hour))
	s, _ := find(f.Step(t0.Add(2*time.Hour+time.Minute)), catalog.VMCPUUsageRatio, catalog.LabelVMID, "vm-0001")
	require.Greater(t, s.Samples[0].V, 0.9)
	require.NoError(t, f.Reboot(context.Background(), "vm-0001"))
	s, _ = find(f.Step(t0.Add(2*time.Hour+2*time.Minute)), catalog.VMCPUUsageRatio, catalog.LabelVMID, "vm-0001")
	require.Less(t, s.Samples[0].V, 0.8)
}

func TestDriverErrors(t *testing.T) {
	ctx := context.Background()
	f := newFleet(t, noIncidents)
	require.NoError(t, f.Stop(ctx, "vm-0002", 0))
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	big := novacron.Size{VCPUs: 200, MemoryBytes: 8 * gib}
	for _, tc := range []struct {
		name string
		err  error
		code string
	}{
		{"start unknown", f.Start(ctx, "vm-9999"), novacron.ENOTFOUND},
		{"stop unknown", f.Stop(ctx, "nope", 0), novacron.ENOTFOUND},
		{"reboot unknown", f.Reboot(ctx, "nope"), novacron.ENOTFOUND},
		{"resize unknown", f.Resize(ctx, "nope", novacron.Size{InstanceType: "sim.small"}), novacron.ENOTFOUND},
		{"migrate unknown vm", f.Migrate(ctx, "nope", "host-01"), novacron.ENOTFOUND},
		{"migrate unknown host", f.Migrate(ctx, "vm-0001", "host-99"), novacron.ENOTFOUND},
		{"vm unknown", func() error { _, err := f.VM(ctx, "nope"); return err }(), novacron.ENOTFOUND},
		{"resize zero", f.Resize(ctx, "vm-0001", novacron.Size{}), novacron.EINVALID},
		{"resize negative", f.Resize(ctx, "vm-0001", novacron.Size{VCPUs: -1, MemoryBytes: gib}), novacron.EINVALID},
		{"resize tiny memory", f.Resize(ctx, "vm-0001", novacron.Size{VCPUs: 2, MemoryBytes: 1024}), novacron.EINVALID},
		{"resize unknown type", f.Resize(ctx, "vm-0001", novacron.Size{InstanceType: "m5.large"}), novacron.EINVALID},
		{"resize type mismatch", f.Resize(ctx, "vm-0001", novacron.Size{InstanceType: "sim.small", VCPUs: 4}), novacron.EINVALID},
		{"resize larger than host", f.Resize(ctx, "vm-0001", big), novacron.ECONFLICT},
		{"reboot stopped", f.Reboot(ctx, "vm-0002"), novacron.ECONFLICT},
		{"stop negative timeout", f.Stop(ctx, "vm-0001", -time.Second), novacron.EINVALID},
		{"cancelled", f.Start(cancelled, "vm-0001"), novacron.EUNAVAILABLE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e *novacron.Error
			require.ErrorAs(t, tc.err, &e)
			require.Equal(t, tc.code, e.Code, tc.err.Error())
		})
	}
	v, err := f.VM(ctx, "vm-0001")
	require.NoError(t, err)
	require.Zero(t, v.Generation, "failed actions change nothing")
}

func TestMigrateToFullHostConflicts(t *testing.T) {
	ctx := context.Background()
	f := newFleet(t, noIncidents)
	var err error
	for _, v := range f.Inventory(t0).VMs {
		if err = f.Migrate(ctx, v.ID, "host-01"); err != nil {
			break
		}
	}
	require.Error(t, err, "60 VMs cannot all fit one host")
	require.Equal(t, novacron.ECONFLICT, novacron.ErrorCode(err))
}

func TestActionsAreIdempotent(t *testing.T) {
	ctx := context.Background()
	f := newFleet(t, noIncidents)
	v, err := f.VM(ctx, "vm-0001")
	require.NoError(t, err)
	require.NoError(t, f.Start(ctx, v.ID))
	require.NoError(t, f.Resize(ctx, v.ID, v.Size))
	require.NoError(t, f.Migrate(ctx, v.ID, v.Host))
	evs, _ := f.TakeEvents(nil)
	require.Empty(t, evs, "no-op actions record no events")
	got, err := f.VM(ctx, v.ID)
	require.NoError(t, err)
	require.Equal(t, v, got)

	require.NoError(t, f.Stop(ctx, v.ID, 0))
	require.NoError(t, f.Stop(ctx, v.ID, 0))
	evs, _ = f.TakeEvents(nil)
	require.Len(t, evs, 1)
	require.Equal(t, novacron.EventVMLifecycle, evs[0].Kind)
	require.Equal(t, v.ID, evs[0].VMID)
	require.Equal(t, "stop", evs[0].Details["action"])
	require.Equal(t, "sim/vm-0001/lifecycle/1", evs[0].ID)
}

func TestInventory(t *testing.T) {
	f := newFleet(t, nil)
	inv := f.Inventory(t0)
	require.Equal(t, "sim", inv.Source)
	require.Len(t, inv.VMs, 60)
	require.Len(t, inv.Hosts, 8)
	hosts := map[string]novacron.Host{}
	for _, h := range inv.Hosts {
		hosts[h.ID] = h
		require.Positive(t, h.CPUs)
		require.Positive(t, h.MemoryBytes)
	}
	roles := map[string]int{}
	for _, v := range inv.VMs {
		h, ok := hosts[v.Host]
		require.True(t, ok, "VM %s on unknown host %s", v.ID, v.Host)
		require.Equal(t, h.Zone, v.Zone)
		require.Equal(t, novacron.PowerRunning, v.State)
		require.Positive(t, v.Size.VCPUs)
		require.NotEmpty(t, v.Size.InstanceType)
		require.NotEmpty(t, v.Tenant)
		require.Len(t, v.Disks, 1)
		require.Positive(t, v.Disks[0].CapacityBytes)
		roles[v.Tags["role"]]++
	}
	for _, r := range []string{"web", "batch", "db", "idle"} {
		require.Positive(t, roles[r], "no %s VMs", r)
	}
}
