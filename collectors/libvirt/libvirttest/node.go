// Package libvirttest builds inputs for tests of NovaCron's libvirt
// adapters: node descriptions for libvirt's test driver (test:///<file>),
// each an in-memory hypervisor with the domains a test needs.
package libvirttest

import (
	"fmt"
	"strings"
)

// Domain describes one domain of a test node.
type Domain struct {
	// Name is the domain name; UUID its UUID (empty: derived from Index).
	Name string
	UUID string
	// VCPUs and MemoryKiB size it; defaults 2 and 1 GiB.
	VCPUs     int
	MemoryKiB int
	// Tags become NovaCron tags in the domain's metadata.
	Tags map[string]string
	// Disks are target device names ("vda"); NICs interface names ("eth0").
	Disks []string
	NICs  []string
}

// UUIDFor returns a deterministic UUID for a test domain: seed and index
// become its first and last groups.
func UUIDFor(seed, i int) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", seed, i)
}

// Node returns a <node> document for the test driver with the domains, a
// "default" network and a "default-pool" directory storage pool at
// poolDir (no pool when empty). The test driver starts every domain of
// the file.
func Node(poolDir string, domains ...Domain) string {
	var b strings.Builder
	b.WriteString(`<node>
  <cpu><nodes>1</nodes><sockets>1</sockets><cores>8</cores><threads>1</threads><active>8</active><mhz>2400</mhz><model>x86_64</model></cpu>
  <memory>16777216</memory>
  <network><name>default</name><uuid>dd8fe884-6c02-601e-7551-cca97df1c5df</uuid><bridge name="virbr0"/><forward/><ip address="192.168.122.1" netmask="255.255.255.0"/></network>
`)
	if poolDir != "" {
		fmt.Fprintf(&b, `  <pool type="dir"><name>default-pool</name><uuid>35bb2ad9-388a-cdfe-461a-b8907f6e53fe</uuid><target><path>%s</path></target></pool>
`, poolDir)
	}
	for i, d := range domains {
		vcpus, mem := d.VCPUs, d.MemoryKiB
		if vcpus == 0 {
			vcpus = 2
		}
		if mem == 0 {
			mem = 1 << 20
		}
		uuid := d.UUID
		if uuid == "" {
			uuid = UUIDFor(0, i+1)
		}
		fmt.Fprintf(&b, "  <domain type=\"test\"><name>%s</name><uuid>%s</uuid><memory>%d</memory><currentMemory>%d</currentMemory><vcpu>%d</vcpu><os><type>hvm</type></os>\n",
			d.Name, uuid, mem, mem, vcpus)
		if len(d.Tags) > 0 {
			b.WriteString(`    <metadata><novacron:tags xmlns:novacron="https://novacron.io/xmlns/libvirt/1">`)
			for k, v := range d.Tags {
				fmt.Fprintf(&b, `<novacron:tag name=%q value=%q/>`, k, v)
			}
			b.WriteString("</novacron:tags></metadata>\n")
		}
		b.WriteString("    <devices>\n")
		for _, disk := range d.Disks {
			fmt.Fprintf(&b, "      <disk type=\"file\" device=\"disk\"><source file=\"/guest/%s-%s.img\"/><target dev=%q bus=\"virtio\"/></disk>\n", d.Name, disk, disk)
		}
		for j, nic := range d.NICs {
			fmt.Fprintf(&b, "      <interface type=\"network\"><mac address=\"52:54:00:%02x:%02x:%02x\"/><source network=\"default\"/><target dev=%q/></interface>\n", i>>8&0xff, i&0xff, j, nic)
		}
		b.WriteString("    </devices>\n  </domain>\n")
	}
	b.WriteString("</node>\n")
	return b.String()
}
