package libvirt

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/stretchr/testify/require"

	novacron "github.com/novacron/novacron"
	collector "github.com/novacron/novacron/collectors/libvirt"
	"github.com/novacron/novacron/collectors/sim/simtest"
	"github.com/novacron/novacron/internal/catalog"
	"github.com/novacron/novacron/internal/testserver"
)

// tlog writes log lines to the test log.
type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// definePool defines and starts a directory storage pool named "files" on
// the daemon's files folder, through a direct connection.
func definePool(t *testing.T, d *testserver.Libvirtd) {
	t.Helper()
	u, err := url.Parse(d.URI("qemu:///session"))
	require.NoError(t, err)
	l, err := golibvirt.ConnectToURI(u)
	require.NoError(t, err)
	defer l.Disconnect()
	pool, err := l.StoragePoolDefineXML(fmt.Sprintf(`<pool type="dir"><name>files</name><target><path>%s</path></target></pool>`, d.FilesDir()), 0)
	require.NoError(t, err)
	require.NoError(t, l.StoragePoolCreate(pool, 0))
}

// TestQEMUGuest boots a real guest under software emulation (a boot
// sector spinning on one vCPU), reads its CPU time through the collector,
// changes its vCPUs live, and migrates it to a second daemon, where the
// collector then reports it. Devices and volume resizes are exercised on
// the real QEMU and storage drivers on the way.
func TestQEMUGuest(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a guest")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src := testserver.Libvirt(t)
	dst := testserver.NewLibvirtd(t)
	for _, d := range []*testserver.Libvirtd{src, dst} {
		// The boot sector padded to 1 MiB: firmware ignores disks of one
		// sector.
		img := append(testserver.BootSector(), make([]byte, 1<<20-512)...)
		_, err := d.WriteFile("boot.img", img)
		require.NoError(t, err)
		definePool(t, d)
	}
	srcURI, dstURI := src.URI("qemu:///session"), dst.URI("qemu:///session")

	cfg := NewDefaultConfig()
	cfg.Hosts = []HostConfig{
		{Name: "kvm-a", URI: srcURI, MigrationAddress: "127.0.0.1"},
		{Name: "kvm-b", URI: dstURI, MigrationAddress: "127.0.0.1"},
	}
	cfg.Migration.Unsafe = true // the disk is a plain file both daemons see
	cfg.Migration.ProgressInterval = 50 * time.Millisecond
	cfg.Templates = map[string]Template{"tiny": {
		VCPUs: 1, MaxVCPUs: 2, MemoryBytes: 64 << 20, DomainType: "qemu", Machine: "pc",
		Disks: []TemplateDisk{{Pool: "files", Volume: "boot.img", Format: "raw"}},
	}}
	drv, err := New(*cfg, Settings{})
	require.NoError(t, err)
	defer drv.Shutdown(ctx)

	vm, err := drv.Create(ctx, CreateRequest{Name: "spin", Template: "tiny", Host: "kvm-a",
		Tags: map[string]string{"tenant": "acme"}, CloudInit: &CloudInit{UserData: "#cloud-config\n"}})
	require.NoError(t, err)
	defer drv.Delete(context.Background(), vm.ID, DeleteOptions{RemoveStorage: true})
	require.Equal(t, novacron.PowerStopped, vm.State)

	// Devices and volumes on the stopped VM: persistent changes.
	_, err = drv.CreateVolume(ctx, "files", "kvm-a", VolumeSpec{Name: "data.raw", CapacityBytes: 1 << 20, Format: "raw"})
	require.NoError(t, err)
	require.NoError(t, drv.ResizeVolume(ctx, "files", "kvm-a", "data.raw", 2<<20, false))
	vol, err := drv.VolumeInfo(ctx, "files", "kvm-a", "data.raw")
	require.NoError(t, err)
	require.Equal(t, int64(2<<20), vol.CapacityBytes)
	require.NoError(t, drv.AttachDisk(ctx, vm.ID, DiskSpec{Pool: "files", Volume: "data.raw", Target: "vdb"}))
	require.NoError(t, drv.AttachDisk(ctx, vm.ID, DiskSpec{Pool: "files", Volume: "data.raw", Target: "vdb"}))
	mac, err := drv.AttachNIC(ctx, vm.ID, NICSpec{Network: "default"})
	require.NoError(t, err)
	got, err := drv.VM(ctx, vm.ID)
	require.NoError(t, err)
	require.Equal(t, []novacron.Disk{{Name: "vda"}, {Name: "vdb"}}, got.Disks, "the cloud-init CD-ROM is not a disk")
	require.Len(t, got.NICs, 1)
	require.NoError(t, drv.DetachNIC(ctx, vm.ID, mac))
	require.NoError(t, drv.DetachDisk(ctx, vm.ID, "vdb"))
	require.NoError(t, drv.DeleteVolume(ctx, "files", "kvm-a", "data.raw"))

	// Boot and collect.
	require.NoError(t, drv.Start(ctx, vm.ID))
	require.NoError(t, drv.Start(ctx, vm.ID))
	ccfg := collector.NewDefaultConfig()
	ccfg.Enabled = true
	// Generous per-host timeout: on a loaded machine a cycle that times out
	// drops the connection, and events during the reconnect are missed.
	ccfg.Interval = time.Second
	ccfg.Timeout = time.Second
	ccfg.Hosts = []collector.HostConfig{{Name: "kvm-a", URI: srcURI}, {Name: "kvm-b", URI: dstURI}}
	sink := &simtest.Sink{}
	col, err := collector.New(*ccfg, collector.Settings{Logger: slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))}, sink)
	require.NoError(t, err)
	require.NoError(t, col.Start(ctx))
	defer col.Shutdown(context.Background())

	cpuOn := func(host string) (float64, bool) {
		b := sink.Batches()
		if len(b) == 0 {
			return 0, false
		}
		for _, s := range b[len(b)-1] {
			if s.Labels.Get(novacron.MetricNameLabel) == catalog.VMCPUSecondsTotal && s.Labels.Get("vm_id") == vm.ID && s.Labels.Get("host") == host {
				return s.Samples[0].V, true
			}
		}
		return 0, false
	}
	var first float64
	require.NoError(t, sink.WaitFor(ctx, func(*simtest.Sink) bool { v, ok := cpuOn("kvm-a"); first = v; return ok && v > 0 }))
	require.NoError(t, sink.WaitFor(ctx, func(*simtest.Sink) bool { v, ok := cpuOn("kvm-a"); return ok && v > first+0.2 }),
		"the spinning guest's CPU time grows")
	ratioOK := func(*simtest.Sink) bool {
		b := sink.Batches()
		for _, s := range b[len(b)-1] {
			if s.Labels.Get(novacron.MetricNameLabel) == catalog.VMCPUUsageRatio && s.Labels.Get("vm_id") == vm.ID {
				// One spinning vCPU of one: near 1 on an idle machine, less
				// on a shared, loaded one; never 0.
				return s.Samples[0].V > 0.05
			}
		}
		return false
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	err = sink.WaitFor(wctx, ratioOK)
	wcancel()
	if err != nil {
		b := sink.Batches()
		for _, s := range b[len(b)-1] {
			if s.Labels.Get("vm_id") == vm.ID || s.Labels.Get("vm_id") == "" {
				t.Logf("%s %v", s.Labels, s.Samples)
			}
		}
	}
	require.NoError(t, err, "the busy vCPU shows in the usage ratio")

	// Live vCPU change within the maximum, then beyond it.
	require.NoError(t, drv.Resize(ctx, vm.ID, novacron.Size{VCPUs: 2, MemoryBytes: 64 << 20}))
	got, err = drv.VM(ctx, vm.ID)
	require.NoError(t, err)
	require.Equal(t, 2, got.Size.VCPUs)
	vcpusOn := func(host string, want float64) func(*simtest.Sink) bool {
		return func(s *simtest.Sink) bool {
			b := s.Batches()
			for _, s := range b[len(b)-1] {
				if s.Labels.Get(novacron.MetricNameLabel) == catalog.VMVCPUs && s.Labels.Get("vm_id") == vm.ID && s.Labels.Get("host") == host {
					return s.Samples[0].V == want
				}
			}
			return false
		}
	}
	require.NoError(t, sink.WaitFor(ctx, vcpusOn("kvm-a", 2)), "the collector sees 2 vCPUs")
	err = drv.Resize(ctx, vm.ID, novacron.Size{VCPUs: 3, MemoryBytes: 64 << 20})
	requireCode(t, novacron.ECONFLICT, err)
	require.Contains(t, novacron.ErrorMessage(err), "3 vCPUs exceed the live maximum of 2")
	require.NoError(t, drv.Resize(ctx, vm.ID, novacron.Size{VCPUs: 2, MemoryBytes: 64 << 20}), "back within the maximum (persistent 3 -> 2)")

	// Live migration, with progress, to the second daemon.
	var progress []MigrationProgress
	require.NoError(t, drv.MigrateWithOptions(ctx, vm.ID, "kvm-b", MigrateOptions{BandwidthMiBps: 1000, Progress: func(p MigrationProgress) { progress = append(progress, p) }}))
	got, err = drv.VM(ctx, vm.ID)
	require.NoError(t, err)
	require.Equal(t, "kvm-b", got.Host)
	require.Equal(t, novacron.PowerRunning, got.State)
	require.NoError(t, drv.Migrate(ctx, vm.ID, "kvm-b"), "migrating to where it is does nothing")
	t.Logf("migration progress snapshots: %d", len(progress))

	require.NoError(t, sink.WaitFor(ctx, func(*simtest.Sink) bool { v, ok := cpuOn("kvm-b"); return ok && v > 0 }),
		"the collector reports the guest on the new host")
	require.NoError(t, sink.WaitFor(ctx, func(s *simtest.Sink) bool {
		var in, out bool
		for _, e := range s.Events() {
			if e.VMID == vm.ID && e.Details["event"] == "migrated" && e.Host == "kvm-b" {
				in = true
			}
			if e.VMID == vm.ID && e.Details["event"] == "migrated_away" && e.Host == "kvm-a" {
				out = true
			}
		}
		return in && out
	}), "migration events from both hosts")
	require.NoError(t, sink.WaitFor(ctx, func(s *simtest.Sink) bool {
		invs := s.Inventories()
		for _, v := range invs[len(invs)-1].VMs {
			if v.ID == vm.ID {
				return v.Host == "kvm-b" && v.Tenant == "acme"
			}
		}
		return false
	}), "the inventory moves the VM")

	// A guest that ignores ACPI is forced off after the timeout.
	began := time.Now()
	require.NoError(t, drv.Stop(ctx, vm.ID, 300*time.Millisecond))
	require.Less(t, time.Since(began), 20*time.Second)
	got, err = drv.VM(ctx, vm.ID)
	require.NoError(t, err)
	require.Equal(t, novacron.PowerStopped, got.State)
	require.NoError(t, sink.WaitFor(ctx, func(s *simtest.Sink) bool {
		for _, e := range s.Events() {
			if e.VMID == vm.ID && e.Details["event"] == "stopped" && e.Host == "kvm-b" {
				return true
			}
		}
		return false
	}), "the stop event")
	require.NoError(t, drv.Delete(ctx, vm.ID, DeleteOptions{RemoveStorage: true}))
	_, err = drv.VolumeInfo(ctx, "files", "kvm-a", "boot.img")
	require.NoError(t, err, "a template's shared volume survives delete")
}
