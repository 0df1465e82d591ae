package libvirt

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/novacron/novacron/collectors/libvirt/libvirttest"
	"github.com/novacron/novacron/collectors/sim/simtest"
	"github.com/novacron/novacron/internal/testserver"
)

// BenchmarkCollect measures one collection cycle of one host with 500
// domains on the test driver, through a session daemon: the bulk stats
// call, node stats and the mapping into series. Results are kept in
// benchmarks/libvirt/. Compare runs with:
//
//	go test -run XXX -bench Collect -count 6 ./collectors/libvirt/ | tee new.txt && benchstat old.txt new.txt
func BenchmarkCollect(b *testing.B) {
	d := testserver.Libvirt(b)
	for _, n := range []int{500} {
		b.Run(fmt.Sprintf("domains=%d", n), func(b *testing.B) {
			doms := make([]libvirttest.Domain, n)
			for i := range doms {
				doms[i] = libvirttest.Domain{Name: fmt.Sprintf("vm-%04d", i), UUID: libvirttest.UUIDFor(0xbe, i),
					Tags: map[string]string{"tenant": "acme"}, Disks: []string{"vda"}, NICs: []string{"eth0"}}
			}
			cfg := NewDefaultConfig()
			cfg.Enabled = true
			cfg.Timeout = 10 * time.Second
			cfg.InventoryInterval = 0
			cfg.Events = false
			cfg.Hosts = []HostConfig{{Name: "bench", URI: d.TestURI(b, fmt.Sprintf("bench-%d", n), libvirttest.Node("", doms...))}}
			c, err := New(*cfg, Settings{}, &simtest.Sink{})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			defer c.hosts[0].close(ctx)
			batch, _ := c.collect(ctx) // connects and reads every domain's XML once
			if len(batch) < n*8 {
				b.Fatalf("first cycle gave %d series for %d domains", len(batch), n)
			}
			series := 0
			b.ReportAllocs()
			for b.Loop() {
				batch, _ := c.collect(ctx)
				series += len(batch)
			}
			b.ReportMetric(float64(series)/float64(b.N), "series/cycle")
		})
	}
}
