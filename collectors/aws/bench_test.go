package aws

import (
	"fmt"
	"testing"
	"time"

	novacron "github.com/novacron/novacron"
)

// BenchmarkConvert measures turning one cycle's GetMetricData answers for
// a fleet into catalogue series (the collector's own CPU per cycle; the
// AWS round trips are measured by benchmarks/aws/cmd/awscost).
//
//	go test -run '^$' -bench Convert -count 6 ./collectors/aws/ | benchstat -
func BenchmarkConvert(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			c := &Collector{cfg: *NewDefaultConfig()}
			var insts []*instance
			for i := range n {
				insts = append(insts, &instance{vm: novacron.VM{
					ID: fmt.Sprintf("i-%017x", i), Name: "web", Provider: Provider, Region: "us-east-1",
					Zone: "us-east-1a", Host: "us-east-1a", Tenant: "acme", State: novacron.PowerRunning,
					Size: novacron.Size{VCPUs: 2, MemoryBytes: 8 << 30, InstanceType: "m5.large"},
				}})
			}
			qs := c.plan(insts, nil)
			t0 := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				st := newTargetState()
				st.insts = insts
				pts := make(map[*query][]point, len(qs))
				for _, q := range qs {
					pts[q] = []point{{t0.Add(time.Duration(i) * time.Minute), 42}}
				}
				_ = c.stateSeries(st, t0, c.convert(st, qs, pts, nil))
				i++
			}
		})
	}
}
