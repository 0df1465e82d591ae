package sim

import (
	"fmt"
	"testing"
	"time"

	novacron "github.com/novacron/novacron"
)

// Compare runs with:
//
//	go test -run XXX -bench . -count 6 ./collectors/sim/ | tee new.txt && benchstat old.txt new.txt
func BenchmarkStep(b *testing.B) {
	for _, bc := range []struct{ hosts, vms int }{{8, 60}, {400, 5000}} {
		b.Run(fmt.Sprintf("hosts=%d/vms=%d", bc.hosts, bc.vms), func(b *testing.B) {
			f := newFleet(b, func(c *Config) { c.Hosts, c.VMs = bc.hosts, bc.vms })
			t := t0
			series := 0
			b.ReportAllocs()
			for b.Loop() {
				series += len(f.Step(t))
				t = t.Add(15 * time.Second)
			}
			b.ReportMetric(float64(series)/b.Elapsed().Seconds(), "series/s")
		})
	}
}

func BenchmarkAppendStep(b *testing.B) {
	f := newFleet(b, func(c *Config) { c.Hosts, c.VMs = 400, 5000 })
	t := t0
	var dst []novacron.Series
	b.ReportAllocs()
	for b.Loop() {
		dst = f.AppendStep(dst[:0], t)
		t = t.Add(15 * time.Second)
	}
}
