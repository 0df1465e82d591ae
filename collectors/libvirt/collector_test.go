package libvirt

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/libvirt/libvirttest"
	"github.com/novacron/novacron/collectors/sim/simtest"
	"github.com/novacron/novacron/internal/catalog"
	"github.com/novacron/novacron/internal/testserver"
)

// find returns the series of metric whose labels include every pair of
// match (name, value, name, value, ...).
func find(batch []novacron.Series, metric string, match ...string) (novacron.Series, bool) {
next:
	for _, s := range batch {
		if s.Labels.Get(novacron.MetricNameLabel) != metric {
			continue
		}
		for i := 0; i+1 < len(match); i += 2 {
			if s.Labels.Get(match[i]) != match[i+1] {
				continue next
			}
		}
		return s, true
	}
	return novacron.Series{}, false
}

func value(t *testing.T, batch []novacron.Series, metric string, match ...string) float64 {
	t.Helper()
	s, ok := find(batch, metric, match...)
	require.True(t, ok, "no %s %v in batch", metric, match)
	return s.Samples[0].V
}

func TestCollectTestDriverAndBadHosts(t *testing.T) {
	d := testserver.Libvirt(t)
	uriA := d.TestURI(t, "collect-a", libvirttest.Node("",
		libvirttest.Domain{Name: "web-1", UUID: libvirttest.UUIDFor(0xa, 1), VCPUs: 2, MemoryKiB: 1 << 20,
			Tags: map[string]string{"tenant": "acme", "role": "web"}, Disks: []string{"vda"}, NICs: []string{"eth0"}},
		libvirttest.Domain{Name: "db-1", UUID: libvirttest.UUIDFor(0xa, 2), VCPUs: 4, MemoryKiB: 4 << 20},
	))
	uriB := d.TestURI(t, "collect-b", libvirttest.Node("",
		libvirttest.Domain{Name: "batch-1", UUID: libvirttest.UUIDFor(0xb, 1), VCPUs: 1, MemoryKiB: 512 << 10},
	))
	cfg := NewDefaultConfig()
	cfg.Enabled = true
	cfg.Interval = 200 * time.Millisecond
	cfg.Timeout = 200 * time.Millisecond
	cfg.Region = "dc1"
	cfg.Reconnect = BackoffConfig{Initial: 50 * time.Millisecond, Max: 100 * time.Millisecond}
	cfg.Hosts = []HostConfig{
		{Name: "host-a", URI: uriA, Zone: "rack-1"},
		{Name: "host-b", URI: uriB},
		{Name: "refused", URI: filepath.Join(t.TempDir(), "no-daemon.sock")},
		{Name: "unknown", URI: "qemu+tcp://no-such-host.invalid/system"},
	}
	reg := prometheus.NewPedanticRegistry()
	sink := &simtest.Sink{}
	c, err := New(*cfg, Settings{Registerer: reg}, sink)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, c.Start(ctx))
	defer func() { require.NoError(t, c.Shutdown(ctx)) }()

	require.NoError(t, sink.WaitFor(ctx, func(s *simtest.Sink) bool { return len(s.Batches()) >= 3 && len(s.Inventories()) >= 1 }))
	batch := sink.Batches()[2]
	require.Equal(t, 1.0, value(t, batch, catalog.HostUp, "host", "host-a"))
	require.Equal(t, 1.0, value(t, batch, catalog.HostUp, "host", "host-b"))
	require.Equal(t, 0.0, value(t, batch, catalog.HostUp, "host", "refused"))
	require.Equal(t, 0.0, value(t, batch, catalog.HostUp, "host", "unknown"))
	require.Equal(t, 8.0, value(t, batch, catalog.HostCPUs, "host", "host-a"))
	require.Equal(t, 2.0, value(t, batch, catalog.HostVMs, "host", "host-a"))
	require.Equal(t, 6.0, value(t, batch, catalog.HostVCPUsAllocated, "host", "host-a"))

	web, ok := find(batch, catalog.VMUp, "vm", "web-1")
	require.True(t, ok)
	require.Equal(t, 1.0, web.Samples[0].V)
	want := novacron.Labels{
		{Name: novacron.MetricNameLabel, Value: catalog.VMUp}, {Name: "host", Value: "host-a"}, {Name: "provider", Value: "libvirt"},
		{Name: "region", Value: "dc1"}, {Name: "tenant", Value: "acme"}, {Name: "vm", Value: "web-1"},
		{Name: "vm_id", Value: libvirttest.UUIDFor(0xa, 1)}, {Name: "zone", Value: "rack-1"},
	}
	require.Equal(t, want, web.Labels)
	require.Equal(t, 2.0, value(t, batch, catalog.VMVCPUs, "vm", "web-1"))
	require.Equal(t, float64(1<<30), value(t, batch, catalog.VMMemoryBytes, "vm", "web-1"))
	require.Equal(t, 1.0, value(t, batch, catalog.VMPowerState, "vm", "db-1", "state", "running"))
	require.Equal(t, 0.0, value(t, batch, catalog.VMPowerState, "vm", "db-1", "state", "stopped"))
	_, hasTenant := find(batch, catalog.VMUp, "vm", "db-1", "tenant", "")
	require.True(t, hasTenant, "a VM without a tenant tag has no tenant label")
	for _, s := range batch {
		m, ok := catalog.Lookup(s.Labels.Get(novacron.MetricNameLabel))
		require.True(t, ok, "%s is in the catalogue", s.Labels)
		if m.Subject == catalog.SubjectVM {
			for _, l := range []string{"provider", "host", "vm_id", "vm"} {
				require.NotEmpty(t, s.Labels.Get(l), "%s has %s", s.Labels, l)
			}
		}
	}

	inv := sink.Inventories()[len(sink.Inventories())-1]
	require.Equal(t, "libvirt", inv.Source)
	require.Len(t, inv.VMs, 3)
	var webVM novacron.VM
	for _, v := range inv.VMs {
		if v.Name == "web-1" {
			webVM = v
		}
	}
	require.Equal(t, libvirttest.UUIDFor(0xa, 1), webVM.ID)
	require.Equal(t, "host-a", webVM.Host)
	require.Equal(t, "acme", webVM.Tenant)
	require.Equal(t, map[string]string{"tenant": "acme", "role": "web"}, webVM.Tags)
	require.Equal(t, novacron.Size{VCPUs: 2, MemoryBytes: 1 << 30}, webVM.Size)
	require.Equal(t, []novacron.Disk{{Name: "vda"}}, webVM.Disks)
	require.Equal(t, []novacron.NIC{{Name: "eth0", MAC: "52:54:00:00:00:00", Network: "default"}}, webVM.NICs)
	require.Equal(t, novacron.PowerRunning, webVM.State)
	hostIDs := []string{}
	for _, h := range inv.Hosts {
		hostIDs = append(hostIDs, h.ID)
	}
	require.ElementsMatch(t, []string{"host-a", "host-b"}, hostIDs, "hosts never reached are not in inventory")

	require.GreaterOrEqual(t, testutil.ToFloat64(c.m.ErrCollect), 4.0, "the two bad hosts fail every cycle")
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}
