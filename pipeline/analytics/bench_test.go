package analytics

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/sim"
)

// BenchmarkProcess measures the stage's model work alone: decoded samples
// of a simulated fleet through the default rules, derived series and
// events included, no bus and no storage.
//
//	go test -run '^$' -bench Process -count 6 ./pipeline/analytics | benchstat -
func BenchmarkProcess(b *testing.B) {
	for _, vms := range []int{100, 1000} {
		b.Run(fmt.Sprintf("vms=%d", vms), func(b *testing.B) {
			start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
			sc := sim.NewDefaultConfig()
			sc.VMs, sc.Hosts, sc.Interval, sc.Incidents = vms, max(vms/10, 1), 15*time.Second, nil
			f, err := sim.NewFleet(*sc, start)
			if err != nil {
				b.Fatal(err)
			}
			// Pre-generate an hour of batches; the loop replays them with
			// shifted timestamps so every sample is new to the models.
			var batches [][]novacron.Series
			_ = f.Generate(start, start.Add(time.Hour), 15*time.Second, func(batch []novacron.Series) error {
				batches = append(batches, batch)
				return nil
			})
			cfg := NewDefaultConfig()
			cfg.MaxClockSkew = 0
			p, _ := NewProcessor(cfg, nil, Source)
			var out Output
			orig := make([][]int64, len(batches))
			keys := make([][]uint64, len(batches))
			for k, batch := range batches {
				for _, s := range batch {
					orig[k] = append(orig[k], s.Samples[0].T)
					keys[k] = append(keys[k], s.Labels.Hash()) // the stage reads it from the record key
				}
			}
			samples := 0
			i := 0
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				k := i % len(batches)
				shift := int64(i/len(batches)) * time.Hour.Milliseconds()
				for j, s := range batches[k] {
					s.Samples[0].T = orig[k][j] + shift
					p.ProcessKeyed(int32(keys[k][j]%16), keys[k][j], s, &out)
					samples += len(s.Samples)
				}
				out.Reset()
				i++
			}
			b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
			b.ReportMetric(float64(samples)/float64(b.N), "samples/op")
		})
	}
}

// BenchmarkStateBytes reports the model state per modelled series (the
// snapshot size) and the heap per series, labels and map included.
func BenchmarkStateBytes(b *testing.B) {
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	sc := sim.NewDefaultConfig()
	sc.VMs, sc.Hosts, sc.Interval, sc.Incidents = 2000, 200, time.Minute, nil
	f, _ := sim.NewFleet(*sc, start)
	for b.Loop() {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		cfg := NewDefaultConfig()
		cfg.MaxClockSkew = 0
		p, _ := NewProcessor(cfg, nil, Source)
		var out Output
		_ = f.Generate(start, start.Add(30*time.Minute), time.Minute, func(batch []novacron.Series) error {
			for _, s := range batch {
				p.Process(0, s, &out)
			}
			out.Reset()
			return nil
		})
		runtime.GC()
		runtime.ReadMemStats(&m1)
		snap, _ := p.Snapshot(0)
		modelled := 0
		for _, st := range p.parts[0].series {
			if st.rule >= 0 {
				modelled++
			}
		}
		b.ReportMetric(float64(len(snap))/float64(modelled), "snapshot_bytes/modelled_series")
		b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/float64(p.SeriesCount()), "heap_bytes/series")
		b.ReportMetric(float64(modelled), "modelled_series")
		b.ReportMetric(float64(p.SeriesCount()), "series")
		runtime.KeepAlive(p)
	}
}
