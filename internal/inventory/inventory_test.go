package inventory

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
)

func fleet(source string, t time.Time, n int) novacron.Inventory {
	inv := novacron.Inventory{Source: source, Time: t}
	for i := range n {
		inv.VMs = append(inv.VMs, novacron.VM{
			ID: fmt.Sprintf("%s-vm-%02d", source, i), Name: fmt.Sprintf("vm-%02d", n-1-i), Provider: source,
			Host: fmt.Sprintf("host-%d", i%3), State: novacron.PowerRunning, Size: novacron.Size{VCPUs: i%4 + 1},
			Tags: map[string]string{"team": []string{"web", "db"}[i%2]},
		})
	}
	inv.Hosts = []novacron.Host{{ID: "h1", Name: "host-1", Provider: source}, {ID: "h0", Name: "host-0", Provider: source}}
	return inv
}

func TestStoreFilterSortPage(t *testing.T) {
	s := NewStore()
	ctx := context.Background()
	now := time.Unix(1000, 0)
	require.NoError(t, s.ConsumeInventory(ctx, fleet("sim", now, 10)))
	require.NoError(t, s.ConsumeInventory(ctx, fleet("aws", now, 4)))

	all, total := s.VMs(VMFilter{}, "", 0, 0)
	require.Equal(t, 14, total)
	require.Len(t, all, 14)
	require.Equal(t, "vm-00", all[0].Name)

	vms, total := s.VMs(VMFilter{Provider: "sim", Host: "host-0"}, "-vcpus", 0, 2)
	require.Equal(t, 4, total) // indices 0,3,6,9
	require.Len(t, vms, 2)
	require.GreaterOrEqual(t, vms[0].Size.VCPUs, vms[1].Size.VCPUs)

	vms, total = s.VMs(VMFilter{Tags: map[string]string{"team": "db"}, Query: "SIM-VM"}, "id", 1, 2)
	require.Equal(t, 5, total)
	require.Equal(t, []string{"sim-vm-03", "sim-vm-05"}, []string{vms[0].ID, vms[1].ID})

	vms, _ = s.VMs(VMFilter{}, "", 100, 10)
	require.Empty(t, vms)

	require.Len(t, s.Hosts("aws"), 2)
	require.Equal(t, "host-0", s.Hosts("aws")[0].Name)
}

func TestStoreIgnoresOlderSnapshots(t *testing.T) {
	s := NewStore()
	ctx := context.Background()
	require.NoError(t, s.ConsumeInventory(ctx, fleet("sim", time.Unix(2000, 0), 3)))
	require.NoError(t, s.ConsumeInventory(ctx, fleet("sim", time.Unix(1000, 0), 7)))
	_, total := s.VMs(VMFilter{}, "", 0, 0)
	require.Equal(t, 3, total, "a re-delivered older snapshot must not replace a newer one")
	require.NoError(t, s.ConsumeInventory(ctx, fleet("sim", time.Unix(3000, 0), 5)))
	_, total = s.VMs(VMFilter{}, "", 0, 0)
	require.Equal(t, 5, total)
	vm, ok := s.VM("sim-vm-04")
	require.True(t, ok)
	require.Equal(t, "vm-00", vm.Name)
	require.True(t, ValidSort("-memory_bytes"))
	require.False(t, ValidSort("colour"))
}
