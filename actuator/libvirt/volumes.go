package libvirt

import (
	"context"
	"slices"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/libvirt/conn"
)

// VolumeSpec describes a storage volume to create.
type VolumeSpec struct {
	// Name is the volume name in its pool. Required.
	Name string
	// CapacityBytes is the size the guest sees. Required, positive.
	CapacityBytes int64
	// Format is qcow2 or raw (for directory pools). Default qcow2.
	Format string
}

// Volume is a storage volume.
type Volume struct {
	Name          string
	Pool          string
	Path          string
	CapacityBytes int64
}

func (d *Driver) host(name string) (*hostConn, error) {
	h, ok := d.byName[name]
	if !ok {
		return nil, novacron.Errorf(novacron.ENOTFOUND, "host %q is not configured (have %v)", name, d.Hosts())
	}
	return h, nil
}

// CreateVolume creates a volume in a storage pool of a host. When a volume
// of that name exists with the same capacity it is returned as is; with
// another capacity the error is ECONFLICT.
func (d *Driver) CreateVolume(ctx context.Context, pool, host string, spec VolumeSpec) (Volume, error) {
	h, err := d.host(host)
	if err != nil {
		return Volume{}, err
	}
	if !nameRE.MatchString(spec.Name) || spec.CapacityBytes <= 0 {
		return Volume{}, novacron.Errorf(novacron.EINVALID, "create volume %q in pool %s: needs a name of letters, digits, '_', '.', '-' and a positive capacity, got %d", spec.Name, pool, spec.CapacityBytes)
	}
	format := spec.Format
	if format == "" {
		format = "qcow2"
	}
	if !slices.Contains(diskFormats, format) {
		return Volume{}, novacron.Errorf(novacron.EINVALID, "create volume %s in pool %s: format %q, want qcow2 or raw", spec.Name, pool, format)
	}
	doc, err := (&libvirtxml.StorageVolume{
		Name:     spec.Name,
		Capacity: &libvirtxml.StorageVolumeSize{Value: uint64(spec.CapacityBytes), Unit: "bytes"},
		Target:   &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: format}},
	}).Marshal()
	if err != nil {
		return Volume{}, &novacron.Error{Code: novacron.EINTERNAL, Message: "build volume XML", Err: err}
	}
	var v Volume
	err = d.do(ctx, h, func(c *conn.Client) error {
		p, err := c.StoragePoolLookupByName(pool)
		if err != nil {
			return err
		}
		vol, err := c.StorageVolLookupByName(p, spec.Name)
		if err == nil {
			_, capacity, _, err := c.StorageVolGetInfo(vol)
			if err != nil {
				return err
			}
			if int64(capacity) != spec.CapacityBytes {
				return novacron.Errorf(novacron.ECONFLICT, "volume exists with %d bytes, not %d", capacity, spec.CapacityBytes)
			}
		} else if errIs(err, libvirt.ErrNoStorageVol) {
			if vol, err = c.StorageVolCreateXML(p, doc, 0); err != nil {
				return err
			}
		} else {
			return err
		}
		v, err = volumeOf(c, vol, pool)
		return err
	}, "create volume %s in pool %s on %s", spec.Name, pool, host)
	return v, err
}

func volumeOf(c *conn.Client, vol libvirt.StorageVol, pool string) (Volume, error) {
	path, err := c.StorageVolGetPath(vol)
	if err != nil {
		return Volume{}, err
	}
	_, capacity, _, err := c.StorageVolGetInfo(vol)
	if err != nil {
		return Volume{}, err
	}
	return Volume{Name: vol.Name, Pool: pool, Path: path, CapacityBytes: int64(capacity)}, nil
}

// VolumeInfo returns a volume of a pool.
func (d *Driver) VolumeInfo(ctx context.Context, pool, host, name string) (Volume, error) {
	h, err := d.host(host)
	if err != nil {
		return Volume{}, err
	}
	var v Volume
	err = d.do(ctx, h, func(c *conn.Client) error {
		p, err := c.StoragePoolLookupByName(pool)
		if err != nil {
			return err
		}
		vol, err := c.StorageVolLookupByName(p, name)
		if err != nil {
			return err
		}
		v, err = volumeOf(c, vol, pool)
		return err
	}, "volume %s in pool %s on %s", name, pool, host)
	return v, err
}

// ResizeVolume grows (or, with a capacity below the current one, shrinks)
// a volume. Resizing to the current capacity does nothing. Shrinking can
// destroy data and needs shrink true.
func (d *Driver) ResizeVolume(ctx context.Context, pool, host, name string, capacityBytes int64, shrink bool) error {
	h, err := d.host(host)
	if err != nil {
		return err
	}
	if capacityBytes <= 0 {
		return novacron.Errorf(novacron.EINVALID, "resize volume %s: capacity must be positive, got %d", name, capacityBytes)
	}
	return d.do(ctx, h, func(c *conn.Client) error {
		p, err := c.StoragePoolLookupByName(pool)
		if err != nil {
			return err
		}
		vol, err := c.StorageVolLookupByName(p, name)
		if err != nil {
			return err
		}
		_, capacity, _, err := c.StorageVolGetInfo(vol)
		if err != nil {
			return err
		}
		switch {
		case int64(capacity) == capacityBytes:
			return nil
		case int64(capacity) > capacityBytes && !shrink:
			return novacron.Errorf(novacron.ECONFLICT, "would shrink from %d to %d bytes; pass shrink to allow it", capacity, capacityBytes)
		}
		var flags libvirt.StorageVolResizeFlags
		if int64(capacity) > capacityBytes {
			flags = libvirt.StorageVolResizeShrink
		}
		return c.StorageVolResize(vol, uint64(capacityBytes), flags)
	}, "resize volume %s in pool %s on %s", name, pool, host)
}

// DeleteVolume deletes a volume. Deleting a missing volume does nothing.
func (d *Driver) DeleteVolume(ctx context.Context, pool, host, name string) error {
	h, err := d.host(host)
	if err != nil {
		return err
	}
	return d.do(ctx, h, func(c *conn.Client) error {
		p, err := c.StoragePoolLookupByName(pool)
		if err != nil {
			return err
		}
		vol, err := c.StorageVolLookupByName(p, name)
		if errIs(err, libvirt.ErrNoStorageVol) {
			return nil
		}
		if err != nil {
			return err
		}
		return c.StorageVolDelete(vol, 0)
	}, "delete volume %s in pool %s on %s", name, pool, host)
}

// DiskSpec is a disk to attach.
type DiskSpec struct {
	// Pool and Volume name an existing volume. Required.
	Pool, Volume string
	// Target is the guest device name ("vdb"). Required.
	Target string
	// Bus is virtio, sata, scsi, ide or xen. Default virtio.
	Bus string
	// Format is the volume's format. Default raw.
	Format string
}

// NICSpec is a network interface to attach. Exactly one of Network and
// Bridge is set.
type NICSpec struct {
	Network, Bridge string
	// MAC identifies the NIC. Default: a random 52:54:00 address, returned
	// by AttachNIC. Give one to make a retried attach idempotent.
	MAC string
	// Model is the NIC model. Default virtio.
	Model string
}

// deviceFlags says where a device change applies: the persistent
// configuration always, and the running VM too when it is active.
func deviceFlags(l located) uint32 {
	f := libvirt.DomainDeviceModifyConfig
	if active(l.state) {
		f |= libvirt.DomainDeviceModifyLive
	}
	return uint32(f)
}

// AttachDisk attaches an existing volume to a VM, live when it runs and
// persistently always. Attaching the same volume at the same target again
// does nothing; another disk at that target is a conflict.
func (d *Driver) AttachDisk(ctx context.Context, id string, spec DiskSpec) error {
	if spec.Pool == "" || spec.Volume == "" || spec.Target == "" {
		return novacron.Errorf(novacron.EINVALID, "attach disk to vm %s: pool, volume and target are required", id)
	}
	if spec.Bus != "" && !slices.Contains(diskBuses, spec.Bus) {
		return novacron.Errorf(novacron.EINVALID, "attach disk to vm %s: unknown bus %q", id, spec.Bus)
	}
	l, err := d.locate(ctx, id)
	if err != nil {
		return err
	}
	vol, err := d.VolumeInfo(ctx, spec.Pool, l.h.cfg.Name, spec.Volume)
	if err != nil {
		return err
	}
	x, err := d.domainXML(ctx, l, true)
	if err != nil {
		return err
	}
	if x.Devices != nil {
		for _, disk := range x.Devices.Disks {
			if disk.Target == nil || disk.Target.Dev != spec.Target {
				continue
			}
			if disk.Source != nil && disk.Source.File != nil && disk.Source.File.File == vol.Path {
				return nil
			}
			return novacron.Errorf(novacron.ECONFLICT, "attach disk to vm %s: target %s is taken by another disk", id, spec.Target)
		}
	}
	format := spec.Format
	if format == "" {
		format = "raw"
	}
	disk := fileDisk(vol.Path, spec.Target, TemplateDisk{Bus: spec.Bus, Format: format})
	doc, err := disk.Marshal()
	if err != nil {
		return &novacron.Error{Code: novacron.EINTERNAL, Message: "build disk XML", Err: err}
	}
	return d.do(ctx, l.h, func(c *conn.Client) error {
		return c.DomainAttachDeviceFlags(l.dom, doc, deviceFlags(l))
	}, "attach disk %s to vm %s", spec.Target, id)
}

// DetachDisk detaches the disk at target from a VM, live when it runs and
// persistently always. Detaching a disk that is not there does nothing.
// The volume is kept.
func (d *Driver) DetachDisk(ctx context.Context, id, target string) error {
	l, err := d.locate(ctx, id)
	if err != nil {
		return err
	}
	x, err := d.domainXML(ctx, l, true)
	if err != nil {
		return err
	}
	if x.Devices == nil {
		return nil
	}
	for _, disk := range x.Devices.Disks {
		if disk.Target == nil || disk.Target.Dev != target {
			continue
		}
		doc, err := disk.Marshal()
		if err != nil {
			return &novacron.Error{Code: novacron.EINTERNAL, Message: "build disk XML", Err: err}
		}
		return d.do(ctx, l.h, func(c *conn.Client) error {
			return c.DomainDetachDeviceFlags(l.dom, doc, deviceFlags(l))
		}, "detach disk %s from vm %s", target, id)
	}
	return nil
}

// AttachNIC attaches a network interface to a VM, live when it runs and
// persistently always, and returns its MAC. Attaching a NIC whose MAC is
// already there does nothing.
func (d *Driver) AttachNIC(ctx context.Context, id string, spec NICSpec) (string, error) {
	if (spec.Network == "") == (spec.Bridge == "") {
		return "", novacron.Errorf(novacron.EINVALID, "attach nic to vm %s: set exactly one of network and bridge", id)
	}
	l, err := d.locate(ctx, id)
	if err != nil {
		return "", err
	}
	if spec.MAC == "" {
		spec.MAC = newMAC()
	} else if x, err := d.domainXML(ctx, l, true); err != nil {
		return "", err
	} else if x.Devices != nil {
		for _, n := range x.Devices.Interfaces {
			if n.MAC != nil && n.MAC.Address == spec.MAC {
				return spec.MAC, nil
			}
		}
	}
	model := spec.Model
	if model == "" {
		model = "virtio"
	}
	iface := libvirtxml.DomainInterface{
		MAC:    &libvirtxml.DomainInterfaceMAC{Address: spec.MAC},
		Source: &libvirtxml.DomainInterfaceSource{},
		Model:  &libvirtxml.DomainInterfaceModel{Type: model},
	}
	if spec.Network != "" {
		iface.Source.Network = &libvirtxml.DomainInterfaceSourceNetwork{Network: spec.Network}
	} else {
		iface.Source.Bridge = &libvirtxml.DomainInterfaceSourceBridge{Bridge: spec.Bridge}
	}
	doc, err := iface.Marshal()
	if err != nil {
		return "", &novacron.Error{Code: novacron.EINTERNAL, Message: "build interface XML", Err: err}
	}
	err = d.do(ctx, l.h, func(c *conn.Client) error {
		return c.DomainAttachDeviceFlags(l.dom, doc, deviceFlags(l))
	}, "attach nic %s to vm %s", spec.MAC, id)
	return spec.MAC, err
}

// DetachNIC detaches the interface with the MAC from a VM, live when it
// runs and persistently always. Detaching a NIC that is not there does
// nothing.
func (d *Driver) DetachNIC(ctx context.Context, id, mac string) error {
	l, err := d.locate(ctx, id)
	if err != nil {
		return err
	}
	x, err := d.domainXML(ctx, l, true)
	if err != nil {
		return err
	}
	if x.Devices == nil {
		return nil
	}
	for _, n := range x.Devices.Interfaces {
		if n.MAC == nil || n.MAC.Address != mac {
			continue
		}
		doc, err := n.Marshal()
		if err != nil {
			return &novacron.Error{Code: novacron.EINTERNAL, Message: "build interface XML", Err: err}
		}
		return d.do(ctx, l.h, func(c *conn.Client) error {
			return c.DomainDetachDeviceFlags(l.dom, doc, deviceFlags(l))
		}, "detach nic %s from vm %s", mac, id)
	}
	return nil
}
