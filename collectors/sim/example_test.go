package sim_test

import (
	"context"
	"fmt"
	"time"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/sim"
	"github.com/novacron/novacron/internal/catalog"
)

// A small fleet backfilled for an hour, with a VM stopped half-way.
func ExampleFleet_Generate() {
	cfg := sim.NewDefaultConfig()
	cfg.Hosts, cfg.VMs = 1, 3
	cfg.Incidents = nil
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	fleet, err := sim.NewFleet(*cfg, start)
	if err != nil {
		panic(err)
	}
	count := func(batch []novacron.Series) error {
		up := 0.0
		for _, s := range batch {
			if s.Labels.Get(novacron.MetricNameLabel) == catalog.VMUp {
				up += s.Samples[0].V
			}
		}
		fmt.Printf("%s: %d series, %v VMs up\n", time.UnixMilli(batch[0].Samples[0].T).UTC().Format("15:04"), len(batch), up)
		return nil
	}
	_ = fleet.Generate(start, start.Add(time.Hour), 30*time.Minute, count)
	_ = fleet.Stop(context.Background(), "vm-0002", time.Minute)
	_ = fleet.Generate(start.Add(time.Hour), start.Add(90*time.Minute), 30*time.Minute, count)
	vm, _ := fleet.VM(context.Background(), "vm-0002")
	fmt.Println(vm.ID, vm.State)
	// Output:
	// 00:00: 85 series, 3 VMs up
	// 00:30: 85 series, 3 VMs up
	// 01:00: 72 series, 2 VMs up
	// vm-0002 stopped
}
