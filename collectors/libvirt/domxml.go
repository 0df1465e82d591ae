package libvirt

import (
	"fmt"
	"strings"

	"libvirt.org/go/libvirtxml"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/libvirt/conn"
)

// domainInfo is what the inventory needs from a domain's XML.
type domainInfo struct {
	name        string
	uuid        string
	vcpus       int
	memoryBytes int64
	disks       []novacron.Disk
	nics        []novacron.NIC
	tags        map[string]string
}

// parseDomainXML reads a domain's XML description.
func parseDomainXML(doc string) (domainInfo, error) {
	var d libvirtxml.Domain
	if err := d.Unmarshal(doc); err != nil {
		return domainInfo{}, fmt.Errorf("parse domain XML: %w", err)
	}
	info := domainInfo{name: d.Name, uuid: d.UUID}
	if d.VCPU != nil {
		info.vcpus = int(d.VCPU.Value)
		if d.VCPU.Current > 0 {
			info.vcpus = int(d.VCPU.Current)
		}
	}
	if d.Memory != nil {
		info.memoryBytes = memBytes(d.Memory.Value, d.Memory.Unit)
	}
	if d.Devices != nil {
		for _, disk := range d.Devices.Disks {
			if disk.Device != "" && disk.Device != "disk" {
				continue // cdrom, floppy, lun
			}
			if disk.Target == nil || disk.Target.Dev == "" {
				continue
			}
			info.disks = append(info.disks, novacron.Disk{Name: disk.Target.Dev})
		}
		for i, nic := range d.Devices.Interfaces {
			n := novacron.NIC{Name: fmt.Sprintf("net%d", i)}
			if nic.Target != nil && nic.Target.Dev != "" {
				n.Name = nic.Target.Dev
			}
			if nic.MAC != nil {
				n.MAC = nic.MAC.Address
			}
			if src := nic.Source; src != nil {
				switch {
				case src.Network != nil:
					n.Network = src.Network.Network
				case src.Bridge != nil:
					n.Network = src.Bridge.Bridge
				case src.Direct != nil:
					n.Network = src.Direct.Dev
				}
			}
			info.nics = append(info.nics, n)
		}
	}
	if d.Metadata != nil {
		tags, err := conn.ParseTags(d.Metadata.XML)
		if err != nil {
			return info, err
		}
		info.tags = tags
	}
	return info, nil
}

// memBytes converts a libvirt memory value to bytes; libvirt's default
// unit is KiB.
func memBytes(v uint, unit string) int64 {
	mul := int64(1024)
	switch strings.ToLower(unit) {
	case "b", "bytes":
		mul = 1
	case "k", "kib", "":
		mul = 1 << 10
	case "kb":
		mul = 1000
	case "m", "mib":
		mul = 1 << 20
	case "mb":
		mul = 1000 * 1000
	case "g", "gib":
		mul = 1 << 30
	case "gb":
		mul = 1000 * 1000 * 1000
	case "t", "tib":
		mul = 1 << 40
	case "tb":
		mul = 1000 * 1000 * 1000 * 1000
	}
	return int64(v) * mul
}
