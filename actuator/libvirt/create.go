package libvirt

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/libvirt/conn"
)

// CreateRequest asks for a new VM.
type CreateRequest struct {
	// Name is the domain name: letters, digits, '_', '.', '-'. Required.
	Name string
	// Template names a configured template. Required.
	Template string
	// Host is the configured host to create the VM on. Required.
	Host string
	// Tags are written to the domain's metadata, where the collector reads
	// them (the "tenant" tag becomes the tenant label).
	Tags map[string]string
	// CloudInit, when set, is written to a NoCloud ISO (volume label
	// cidata) in the template's cloud_init_pool and attached as a CD-ROM.
	CloudInit *CloudInit
	// Start boots the VM once it is defined.
	Start bool
}

// CloudInit is the data of a cloud-init NoCloud seed.
type CloudInit struct {
	// UserData is the user-data file (usually starting "#cloud-config").
	UserData string
	// MetaData is the meta-data file. Default: instance-id and
	// local-hostname set from the VM's UUID and name.
	MetaData string
	// NetworkConfig is the network-config file. Default: none.
	NetworkConfig string
}

// Create defines a VM from a template on a host: its disks are created as
// volumes in their storage pools (existing volumes of the right name are
// reused), its domain XML is built from the template, and it is started
// when asked. Creating a VM whose name already exists on the host does
// nothing but return it (and start it when asked).
func (d *Driver) Create(ctx context.Context, req CreateRequest) (novacron.VM, error) {
	tpl, h, err := d.checkCreate(req)
	if err != nil {
		return novacron.VM{}, err
	}
	var existing libvirt.Domain
	err = d.do(ctx, h, func(c *conn.Client) error {
		var err error
		existing, err = c.DomainLookupByName(req.Name)
		return err
	}, "create vm %s on %s", req.Name, req.Host)
	switch novacron.ErrorCode(err) {
	case "":
		id := uuidString(existing.UUID)
		if req.Start {
			if err := d.Start(ctx, id); err != nil {
				return novacron.VM{}, err
			}
		}
		return d.VM(ctx, id)
	case novacron.ENOTFOUND:
	default:
		return novacron.VM{}, err
	}

	uuid := newUUID()
	x := buildDomain(req, tpl, uuid)
	for i, td := range tpl.Disks {
		target := diskTarget(i, td.Bus)
		path, err := d.ensureVolume(ctx, h, td, req.Name+"-"+target)
		if err != nil {
			return novacron.VM{}, fmt.Errorf("create vm %s: disk %s: %w", req.Name, target, err)
		}
		disk := fileDisk(path, target, td)
		if i == 0 {
			// Boot from the first disk, never from the cloud-init CD-ROM.
			disk.Boot = &libvirtxml.DomainDeviceBoot{Order: 1}
		}
		x.Devices.Disks = append(x.Devices.Disks, disk)
	}
	if req.CloudInit != nil {
		path, err := d.uploadSeed(ctx, h, tpl, req, uuid)
		if err != nil {
			return novacron.VM{}, err
		}
		// i440fx ("pc", the default) has IDE; q35 has SATA.
		bus, dev := "ide", "hdd"
		switch {
		case tpl.DomainType == "xen":
			bus, dev = "xen", "xvdz"
		case strings.Contains(tpl.Machine, "q35"):
			bus, dev = "sata", "sdz"
		}
		x.Devices.Disks = append(x.Devices.Disks, libvirtxml.DomainDisk{
			Device:   "cdrom",
			Driver:   &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"},
			Source:   &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: path}},
			Target:   &libvirtxml.DomainDiskTarget{Dev: dev, Bus: bus},
			ReadOnly: &libvirtxml.DomainDiskReadOnly{},
		})
	}
	doc, err := x.Marshal()
	if err != nil {
		return novacron.VM{}, &novacron.Error{Code: novacron.EINTERNAL, Message: "create vm " + req.Name + ": build XML", Err: err}
	}
	var dom libvirt.Domain
	if err := d.do(ctx, h, func(c *conn.Client) error {
		var err error
		dom, err = c.DomainDefineXMLFlags(doc, 0)
		return err
	}, "create vm %s on %s: define", req.Name, req.Host); err != nil {
		return novacron.VM{}, err
	}
	id := uuidString(dom.UUID)
	d.log.Info("libvirt vm created", "vm_id", id, "name", req.Name, "host", req.Host, "template", req.Template)
	if req.Start {
		if err := d.do(ctx, h, func(c *conn.Client) error { return c.DomainCreate(dom) }, "create vm %s: start", req.Name); err != nil {
			return novacron.VM{}, err
		}
	}
	return d.VM(ctx, id)
}

func (d *Driver) checkCreate(req CreateRequest) (Template, *hostConn, error) {
	var problems []string
	if !nameRE.MatchString(req.Name) {
		problems = append(problems, fmt.Sprintf("name %q must be 1 to 63 letters, digits, '_', '.' or '-'", req.Name))
	}
	tpl, ok := d.cfg.Templates[req.Template]
	if !ok {
		problems = append(problems, fmt.Sprintf("template %q is not configured (have %s)", req.Template, strings.Join(d.Templates(), ", ")))
	}
	h, ok := d.byName[req.Host]
	if !ok {
		problems = append(problems, fmt.Sprintf("host %q is not configured (have %s)", req.Host, strings.Join(d.Hosts(), ", ")))
	}
	if req.CloudInit != nil && tpl.CloudInitPool == "" && len(tpl.Disks) == 0 {
		problems = append(problems, fmt.Sprintf("template %q has no cloud_init_pool and no disk pool for the cloud-init ISO", req.Template))
	}
	for k := range req.Tags {
		if strings.TrimSpace(k) == "" {
			problems = append(problems, "tag names must not be empty")
			break
		}
	}
	if len(problems) > 0 {
		return tpl, nil, novacron.Errorf(novacron.EINVALID, "create vm: %s", strings.Join(problems, "; "))
	}
	return tpl, h, nil
}

// buildDomain builds the domain XML of a template, without disks.
func buildDomain(req CreateRequest, t Template, uuid string) *libvirtxml.Domain {
	typ := t.DomainType
	if typ == "" {
		typ = "kvm"
	}
	arch := t.Arch
	if arch == "" {
		arch = "x86_64"
	}
	maxV := max(t.MaxVCPUs, t.VCPUs)
	maxMem := max(t.MaxMemoryBytes, t.MemoryBytes)
	x := &libvirtxml.Domain{
		Type:          typ,
		Name:          req.Name,
		UUID:          uuid,
		Memory:        &libvirtxml.DomainMemory{Value: uint(maxMem >> 10), Unit: "KiB"},
		CurrentMemory: &libvirtxml.DomainCurrentMemory{Value: uint(t.MemoryBytes >> 10), Unit: "KiB"},
		VCPU:          &libvirtxml.DomainVCPU{Placement: "static", Value: uint(maxV)},
		OS: &libvirtxml.DomainOS{
			Type: &libvirtxml.DomainOSType{Type: "hvm", Arch: arch, Machine: t.Machine},
		},
		OnPoweroff: "destroy",
		OnReboot:   "restart",
		OnCrash:    "destroy",
		Devices:    &libvirtxml.DomainDeviceList{Emulator: t.Emulator},
	}
	if maxV > t.VCPUs {
		x.VCPU.Current = uint(t.VCPUs)
	}
	if len(req.Tags) > 0 {
		x.Metadata = &libvirtxml.DomainMetadata{XML: conn.TagsXML(req.Tags)}
	}
	if typ != "test" {
		x.Features = &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}}
		x.Devices.MemBalloon = &libvirtxml.DomainMemBalloon{Model: "virtio"}
		x.Devices.Serials = []libvirtxml.DomainSerial{{Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}}}}
	}
	for _, n := range t.NICs {
		model := n.Model
		if model == "" {
			model = "virtio"
		}
		iface := libvirtxml.DomainInterface{
			MAC:    &libvirtxml.DomainInterfaceMAC{Address: newMAC()},
			Source: &libvirtxml.DomainInterfaceSource{},
			Model:  &libvirtxml.DomainInterfaceModel{Type: model},
		}
		if n.Network != "" {
			iface.Source.Network = &libvirtxml.DomainInterfaceSourceNetwork{Network: n.Network}
		} else {
			iface.Source.Bridge = &libvirtxml.DomainInterfaceSourceBridge{Bridge: n.Bridge}
		}
		x.Devices.Interfaces = append(x.Devices.Interfaces, iface)
	}
	return x
}

// diskTarget names the i-th disk for its bus: vda..., sda..., hda...,
// xvda....
func diskTarget(i int, bus string) string {
	prefix := "vd"
	switch bus {
	case "sata", "scsi":
		prefix = "sd"
	case "ide":
		prefix = "hd"
	case "xen":
		prefix = "xvd"
	}
	return prefix + string(rune('a'+i))
}

func fileDisk(path, target string, td TemplateDisk) libvirtxml.DomainDisk {
	bus := td.Bus
	if bus == "" {
		bus = "virtio"
	}
	format := td.Format
	if format == "" {
		format = "qcow2"
	}
	if td.Volume != "" && td.Format == "" {
		format = "raw"
	}
	return libvirtxml.DomainDisk{
		Device: "disk",
		Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: format},
		Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: path}},
		Target: &libvirtxml.DomainDiskTarget{Dev: target, Bus: bus},
	}
}

// ensureVolume returns the path of the template disk's volume, creating
// it (named name, with the template's format) unless it exists.
func (d *Driver) ensureVolume(ctx context.Context, h *hostConn, td TemplateDisk, name string) (string, error) {
	if td.Volume != "" {
		name = td.Volume
	} else {
		format := td.Format
		if format == "" {
			format = "qcow2"
		}
		name += "." + format
		if _, err := d.CreateVolume(ctx, td.Pool, h.cfg.Name, VolumeSpec{Name: name, CapacityBytes: td.SizeBytes, Format: format}); err != nil {
			return "", err
		}
	}
	var path string
	err := d.do(ctx, h, func(c *conn.Client) error {
		pool, err := c.StoragePoolLookupByName(td.Pool)
		if err != nil {
			return err
		}
		vol, err := c.StorageVolLookupByName(pool, name)
		if err != nil {
			return err
		}
		path, err = c.StorageVolGetPath(vol)
		return err
	}, "volume %s in pool %s on %s", name, td.Pool, h.cfg.Name)
	return path, err
}

// uploadSeed writes the cloud-init ISO to a volume and returns its path.
func (d *Driver) uploadSeed(ctx context.Context, h *hostConn, tpl Template, req CreateRequest, uuid string) (string, error) {
	pool := tpl.CloudInitPool
	if pool == "" {
		pool = tpl.Disks[0].Pool
	}
	meta := req.CloudInit.MetaData
	if meta == "" {
		meta = fmt.Sprintf("instance-id: %s\nlocal-hostname: %s\n", uuid, req.Name)
	}
	files := []isoFile{{Name: "meta-data", Data: []byte(meta)}, {Name: "user-data", Data: []byte(req.CloudInit.UserData)}}
	if req.CloudInit.NetworkConfig != "" {
		files = append(files, isoFile{Name: "network-config", Data: []byte(req.CloudInit.NetworkConfig)})
	}
	iso, err := buildISO("cidata", files)
	if err != nil {
		return "", novacron.Errorf(novacron.EINVALID, "create vm %s: cloud-init: %v", req.Name, err)
	}
	name := req.Name + "-cidata.iso"
	if _, err := d.CreateVolume(ctx, pool, h.cfg.Name, VolumeSpec{Name: name, CapacityBytes: int64(len(iso)), Format: "raw"}); err != nil {
		return "", fmt.Errorf("create vm %s: cloud-init volume: %w", req.Name, err)
	}
	var path string
	err = d.do(ctx, h, func(c *conn.Client) error {
		p, err := c.StoragePoolLookupByName(pool)
		if err != nil {
			return err
		}
		vol, err := c.StorageVolLookupByName(p, name)
		if err != nil {
			return err
		}
		if err := c.StorageVolUpload(vol, bytes.NewReader(iso), 0, uint64(len(iso)), 0); err != nil {
			return err
		}
		path, err = c.StorageVolGetPath(vol)
		return err
	}, "create vm %s: upload cloud-init ISO to pool %s", req.Name, pool)
	return path, err
}

// DeleteOptions tune Delete.
type DeleteOptions struct {
	// RemoveStorage also deletes the VM's disk volumes that belong to a
	// storage pool (CD-ROMs included, volumes named in a template's
	// disks[].volume excluded: they are shared).
	RemoveStorage bool
}

// Delete forces the VM off and undefines it, with its managed save,
// snapshot metadata and NVRAM; with RemoveStorage it also deletes its
// volumes. Deleting a VM that does not exist does nothing.
func (d *Driver) Delete(ctx context.Context, id string, opts DeleteOptions) error {
	l, err := d.locate(ctx, id)
	if novacron.ErrorCode(err) == novacron.ENOTFOUND {
		return nil
	}
	if err != nil {
		return err
	}
	x, err := d.domainXML(ctx, l, true)
	if err != nil {
		return err
	}
	if active(l.state) {
		err := d.do(ctx, l.h, func(c *conn.Client) error { return c.DomainDestroy(l.dom) }, "delete vm %s: force off", id)
		if err != nil && novacron.ErrorCode(err) != novacron.ECONFLICT {
			return err
		}
	}
	err = d.do(ctx, l.h, func(c *conn.Client) error {
		err := c.DomainUndefineFlags(l.dom, libvirt.DomainUndefineManagedSave|libvirt.DomainUndefineSnapshotsMetadata|
			libvirt.DomainUndefineNvram|libvirt.DomainUndefineCheckpointsMetadata)
		if errIs(err, libvirt.ErrNoSupport) || errIs(err, libvirt.ErrArgumentUnsupported) || errIs(err, libvirt.ErrInvalidArg) {
			err = c.DomainUndefine(l.dom)
		}
		if errIs(err, libvirt.ErrNoDomain) {
			return nil
		}
		return err
	}, "delete vm %s: undefine", id)
	if err != nil {
		return err
	}
	d.log.Info("libvirt vm deleted", "vm_id", id, "host", l.h.cfg.Name, "remove_storage", opts.RemoveStorage)
	if !opts.RemoveStorage || x.Devices == nil {
		return nil
	}
	shared := map[string]bool{}
	for _, t := range d.cfg.Templates {
		for _, td := range t.Disks {
			if td.Volume != "" {
				shared[td.Volume] = true
			}
		}
	}
	var failed []string
	for _, disk := range x.Devices.Disks {
		if disk.Source == nil || disk.Source.File == nil || disk.Source.File.File == "" {
			continue
		}
		path := disk.Source.File.File
		err := d.do(ctx, l.h, func(c *conn.Client) error {
			vol, err := c.StorageVolLookupByPath(path)
			if errIs(err, libvirt.ErrNoStorageVol) {
				return nil // not in a pool: not ours to delete
			}
			if err != nil {
				return err
			}
			if shared[vol.Name] {
				return nil
			}
			err = c.StorageVolDelete(vol, 0)
			if errIs(err, libvirt.ErrNoStorageVol) {
				return nil
			}
			return err
		}, "delete vm %s: volume %s", id, path)
		if err != nil {
			failed = append(failed, novacron.ErrorMessage(err))
		}
	}
	if len(failed) > 0 {
		return novacron.Errorf(novacron.EUNAVAILABLE, "delete vm %s: undefined, but volumes remain: %s", id, strings.Join(failed, "; "))
	}
	return nil
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newMAC returns a random MAC in QEMU's locally administered range.
func newMAC() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", b[0], b[1], b[2])
}
