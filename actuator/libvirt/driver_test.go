package libvirt

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/libvirt/libvirttest"
	"github.com/novacron/novacron/internal/testserver"
)

func requireCode(t *testing.T, code string, err error) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code, novacron.ErrorCode(err), "%v", err)
}

// testDriver returns a driver on a private test driver node with the
// domains, a network and a storage pool.
func testDriver(t *testing.T, name string, domains ...libvirttest.Domain) (*Driver, string) {
	t.Helper()
	d := testserver.Libvirt(t)
	uri := d.TestURI(t, name, libvirttest.Node("/pool-"+name, domains...))
	cfg := NewDefaultConfig()
	cfg.Timeout = 10 * time.Second
	cfg.Hosts = []HostConfig{{Name: "host-a", URI: uri}}
	cfg.Templates = map[string]Template{
		"small": {VCPUs: 1, MaxVCPUs: 4, MemoryBytes: 256 << 20, MaxMemoryBytes: 1 << 30, DomainType: "test",
			Disks: []TemplateDisk{{Pool: "default-pool", SizeBytes: 1 << 30}}, NICs: []TemplateNIC{{Network: "default"}}},
		"nodisk": {VCPUs: 2, MemoryBytes: 512 << 20, DomainType: "test"},
	}
	drv, err := New(*cfg, Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = drv.Shutdown(context.Background()) })
	return drv, uri
}

func TestLifecycleOnTestDriver(t *testing.T) {
	ctx := context.Background()
	id := libvirttest.UUIDFor(0xd1, 1)
	drv, _ := testDriver(t, "lifecycle", libvirttest.Domain{Name: "web-1", UUID: id, VCPUs: 2, MemoryKiB: 1 << 20,
		Tags: map[string]string{"tenant": "acme"}, Disks: []string{"vda"}, NICs: []string{"eth0"}})
	require.Equal(t, "libvirt", drv.Provider())

	vm, err := drv.VM(ctx, id)
	require.NoError(t, err)
	require.Equal(t, novacron.VM{ID: id, Name: "web-1", Provider: "libvirt", Host: "host-a", Tenant: "acme", State: novacron.PowerRunning,
		Size: novacron.Size{VCPUs: 2, MemoryBytes: 1 << 30}, Disks: []novacron.Disk{{Name: "vda"}},
		NICs: []novacron.NIC{{Name: "eth0", MAC: "52:54:00:00:00:00", Network: "default"}}, Tags: map[string]string{"tenant": "acme"},
		UpdatedAt: vm.UpdatedAt}, vm)

	state := func() novacron.PowerState {
		t.Helper()
		vm, err := drv.VM(ctx, id)
		require.NoError(t, err)
		return vm.State
	}
	require.NoError(t, drv.Start(ctx, id), "start a running VM does nothing")
	require.Equal(t, novacron.PowerRunning, state())

	require.NoError(t, drv.Suspend(ctx, id))
	require.Equal(t, novacron.PowerSuspended, state())
	require.NoError(t, drv.Suspend(ctx, id), "suspend twice")
	requireCode(t, novacron.ECONFLICT, drv.Reboot(ctx, id))
	require.NoError(t, drv.Resume(ctx, id))
	require.NoError(t, drv.Resume(ctx, id), "resume twice")
	require.Equal(t, novacron.PowerRunning, state())
	require.NoError(t, drv.Reboot(ctx, id))

	require.NoError(t, drv.Stop(ctx, id, time.Second))
	require.Equal(t, novacron.PowerStopped, state())
	require.NoError(t, drv.Stop(ctx, id, time.Second), "stop a stopped VM does nothing")
	requireCode(t, novacron.ECONFLICT, drv.Reboot(ctx, id))
	requireCode(t, novacron.ECONFLICT, drv.Suspend(ctx, id))
	requireCode(t, novacron.ECONFLICT, drv.Resume(ctx, id))
	requireCode(t, novacron.EINVALID, drv.Stop(ctx, id, -time.Second))

	// Resize while stopped: persistent only, maximums raised as needed.
	require.NoError(t, drv.Resize(ctx, id, novacron.Size{VCPUs: 3, MemoryBytes: 2 << 30}))
	vm, err = drv.VM(ctx, id)
	require.NoError(t, err)
	require.Equal(t, novacron.Size{VCPUs: 3, MemoryBytes: 2 << 30}, vm.Size)
	require.NoError(t, drv.Resize(ctx, id, novacron.Size{VCPUs: 3, MemoryBytes: 2 << 30}), "same size again")
	require.NoError(t, drv.Resize(ctx, id, novacron.Size{InstanceType: "nodisk"}))
	vm, err = drv.VM(ctx, id)
	require.NoError(t, err)
	require.Equal(t, novacron.Size{VCPUs: 2, MemoryBytes: 512 << 20}, vm.Size)
	requireCode(t, novacron.EINVALID, drv.Resize(ctx, id, novacron.Size{VCPUs: 0, MemoryBytes: 1 << 30}))
	requireCode(t, novacron.EINVALID, drv.Resize(ctx, id, novacron.Size{InstanceType: "huge"}))

	require.NoError(t, drv.Start(ctx, id))
	require.Equal(t, novacron.PowerRunning, state())
	require.NoError(t, drv.Start(ctx, id))

	// Live resize beyond the live maximum: saved, with a clear conflict.
	err = drv.Resize(ctx, id, novacron.Size{VCPUs: 8, MemoryBytes: 512 << 20})
	requireCode(t, novacron.ECONFLICT, err)
	require.Contains(t, novacron.ErrorMessage(err), "saved for the next boot")
	require.Contains(t, novacron.ErrorMessage(err), "exceed the live maximum")

	require.NoError(t, drv.Delete(ctx, id, DeleteOptions{}))
	requireCode(t, novacron.ENOTFOUND, drv.Start(ctx, id))
	require.NoError(t, drv.Delete(ctx, id, DeleteOptions{}), "delete a missing VM does nothing")
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	drv, _ := testDriver(t, "badinput")
	missing := libvirttest.UUIDFor(0xdead, 1)
	requireCode(t, novacron.ENOTFOUND, drv.Start(ctx, missing))
	_, err := drv.VM(ctx, missing)
	requireCode(t, novacron.ENOTFOUND, err)
	requireCode(t, novacron.EINVALID, drv.Start(ctx, "not-a-uuid"))
	requireCode(t, novacron.ENOTFOUND, drv.Migrate(ctx, missing, "nowhere"))

	_, err = drv.Create(ctx, CreateRequest{Name: "x y", Template: "tiny", Host: "mars"})
	requireCode(t, novacron.EINVALID, err)
	require.Contains(t, novacron.ErrorMessage(err), `name "x y"`)
	require.Contains(t, novacron.ErrorMessage(err), `template "tiny" is not configured`)
	require.Contains(t, novacron.ErrorMessage(err), `host "mars" is not configured`)

	// Unreachable hosts: a refused socket and an unknown host name. A VM
	// not found on the hosts that answered may be on those: unavailable.
	cfg := NewDefaultConfig()
	cfg.Timeout = 2 * time.Second
	cfg.Hosts = []HostConfig{
		drv.cfg.Hosts[0],
		{Name: "refused", URI: filepath.Join(t.TempDir(), "none.sock")},
		{Name: "unknown", URI: "qemu+tcp://no-such-host.invalid/system"},
	}
	drv2, err := New(*cfg, Settings{})
	require.NoError(t, err)
	defer drv2.Shutdown(ctx)
	err = drv2.Start(ctx, missing)
	requireCode(t, novacron.EUNAVAILABLE, err)
	_, err = drv2.CreateVolume(ctx, "default-pool", "refused", VolumeSpec{Name: "v", CapacityBytes: 1})
	requireCode(t, novacron.EUNAVAILABLE, err)
	require.Contains(t, err.Error(), "none.sock")

	cfg.Hosts = nil
	_, err = New(*cfg, Settings{})
	require.ErrorContains(t, err, "hosts: must list at least one host")
}

func TestCreateVolumesDevices(t *testing.T) {
	ctx := context.Background()
	drv, _ := testDriver(t, "create")
	vm, err := drv.Create(ctx, CreateRequest{Name: "app-1", Template: "small", Host: "host-a", Tags: map[string]string{"tenant": "globex"}, Start: true})
	require.NoError(t, err)
	require.Equal(t, "app-1", vm.Name)
	require.Equal(t, novacron.PowerRunning, vm.State)
	require.Equal(t, "globex", vm.Tenant)
	require.Equal(t, novacron.Size{VCPUs: 1, MemoryBytes: 256 << 20}, vm.Size)
	require.Equal(t, []novacron.Disk{{Name: "vda"}}, vm.Disks)
	require.Len(t, vm.NICs, 1)
	require.Equal(t, "default", vm.NICs[0].Network)

	again, err := drv.Create(ctx, CreateRequest{Name: "app-1", Template: "small", Host: "host-a"})
	require.NoError(t, err, "create is idempotent by name")
	require.Equal(t, vm.ID, again.ID)

	vol, err := drv.VolumeInfo(ctx, "default-pool", "host-a", "app-1-vda.qcow2")
	require.NoError(t, err)
	require.Equal(t, int64(1<<30), vol.CapacityBytes)

	// Live resize within the maximums.
	require.NoError(t, drv.Resize(ctx, vm.ID, novacron.Size{VCPUs: 2, MemoryBytes: 512 << 20}))
	got, err := drv.VM(ctx, vm.ID)
	require.NoError(t, err)
	require.Equal(t, novacron.Size{VCPUs: 2, MemoryBytes: 512 << 20}, got.Size)

	// Volumes.
	data, err := drv.CreateVolume(ctx, "default-pool", "host-a", VolumeSpec{Name: "data-1", CapacityBytes: 64 << 20, Format: "raw"})
	require.NoError(t, err)
	require.Equal(t, int64(64<<20), data.CapacityBytes)
	_, err = drv.CreateVolume(ctx, "default-pool", "host-a", VolumeSpec{Name: "data-1", CapacityBytes: 64 << 20, Format: "raw"})
	require.NoError(t, err, "same volume again")
	_, err = drv.CreateVolume(ctx, "default-pool", "host-a", VolumeSpec{Name: "data-1", CapacityBytes: 32 << 20})
	requireCode(t, novacron.ECONFLICT, err)
	_, err = drv.CreateVolume(ctx, "no-pool", "host-a", VolumeSpec{Name: "x", CapacityBytes: 1})
	requireCode(t, novacron.ENOTFOUND, err)
	// The test driver cannot resize volumes (the QEMU test does): a
	// typed refusal.
	requireCode(t, novacron.EUNSUPPORTED, drv.ResizeVolume(ctx, "default-pool", "host-a", "data-1", 128<<20, false))

	// The test driver cannot attach devices (the QEMU test does): a typed
	// refusal, after the idempotence checks that need no change.
	requireCode(t, novacron.EUNSUPPORTED, drv.AttachDisk(ctx, vm.ID, DiskSpec{Pool: "default-pool", Volume: "data-1", Target: "vdb"}))
	requireCode(t, novacron.ECONFLICT, drv.AttachDisk(ctx, vm.ID, DiskSpec{Pool: "default-pool", Volume: "data-1", Target: "vda"}))
	require.NoError(t, drv.DetachDisk(ctx, vm.ID, "vdz"), "detach a disk that is not there")
	require.NoError(t, drv.DetachNIC(ctx, vm.ID, "52:54:00:ff:ff:ff"), "detach a NIC that is not there")

	// Delete with storage removes the VM's own volume, not others.
	require.NoError(t, drv.Delete(ctx, vm.ID, DeleteOptions{RemoveStorage: true}))
	_, err = drv.VolumeInfo(ctx, "default-pool", "host-a", "app-1-vda.qcow2")
	requireCode(t, novacron.ENOTFOUND, err)
	_, err = drv.VolumeInfo(ctx, "default-pool", "host-a", "data-1")
	require.NoError(t, err)
	require.NoError(t, drv.DeleteVolume(ctx, "default-pool", "host-a", "data-1"))
	require.NoError(t, drv.DeleteVolume(ctx, "default-pool", "host-a", "data-1"), "delete twice")
}
