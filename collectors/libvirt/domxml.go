package libvirt

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"libvirt.org/go/libvirtxml"

	novacron "github.com/novacron/novacron"
)

// maxTags bounds the tags read from one domain's metadata.
const maxTags = 64

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
		tags, err := parseTags(d.Metadata.XML)
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

// parseTags reads NovaCron's tags from the inner XML of a domain's
// <metadata>: every <tag name="..." value="..."/> in TagsNamespace, at any
// depth. Other namespaces' metadata are ignored. Names and values are
// trimmed; empty names are skipped; the last of duplicate names wins.
func parseTags(inner string) (map[string]string, error) {
	dec := xml.NewDecoder(strings.NewReader(inner))
	var tags map[string]string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return tags, nil
		}
		if err != nil {
			return tags, fmt.Errorf("parse domain metadata: %w", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Space != TagsNamespace || se.Name.Local != "tag" {
			continue
		}
		var name, value string
		for _, a := range se.Attr {
			switch a.Name.Local {
			case "name":
				name = strings.TrimSpace(a.Value)
			case "value":
				value = strings.TrimSpace(a.Value)
			}
		}
		if name == "" {
			continue
		}
		if tags == nil {
			tags = map[string]string{}
		}
		if _, seen := tags[name]; !seen && len(tags) >= maxTags {
			continue
		}
		tags[name] = value
	}
}

// TagsXML renders tags as the <metadata> child that the collector reads
// (see TagsNamespace), in name order, for tools that define domains.
func TagsXML(tags map[string]string) string {
	var b strings.Builder
	b.WriteString(`<novacron:tags xmlns:novacron="` + TagsNamespace + `">`)
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		b.WriteString(`<novacron:tag name="`)
		_ = xml.EscapeText(&b, []byte(k))
		b.WriteString(`" value="`)
		_ = xml.EscapeText(&b, []byte(tags[k]))
		b.WriteString(`"/>`)
	}
	b.WriteString(`</novacron:tags>`)
	return b.String()
}
