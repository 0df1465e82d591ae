package novacron

import "time"

// PowerState is the observed power state of a VM, provider-neutral.
type PowerState string

// Power states every driver maps its provider's states into.
const (
	PowerRunning   PowerState = "running"
	PowerStopped   PowerState = "stopped"
	PowerSuspended PowerState = "suspended"
	PowerCrashed   PowerState = "crashed"
	PowerUnknown   PowerState = "unknown"
)

// Size is the compute shape of a VM.
type Size struct {
	// VCPUs is the number of virtual CPUs.
	VCPUs int `json:"vcpus"`
	// MemoryBytes is the configured memory in bytes.
	MemoryBytes int64 `json:"memory_bytes"`
	// InstanceType is the provider's size name ("m5.large"), empty when the
	// provider has none (libvirt).
	InstanceType string `json:"instance_type,omitempty"`
}

// VM is one virtual machine as seen in inventory.
type VM struct {
	// ID is unique within the provider ("i-0abc", a libvirt UUID, "vm-0012").
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Provider string            `json:"provider"`
	Region   string            `json:"region,omitempty"`
	Zone     string            `json:"zone,omitempty"`
	Host     string            `json:"host,omitempty"`
	Tenant   string            `json:"tenant,omitempty"`
	State    PowerState        `json:"state"`
	Size     Size              `json:"size"`
	Disks    []Disk            `json:"disks,omitempty"`
	NICs     []NIC             `json:"nics,omitempty"`
	Tags     map[string]string `json:"tags,omitempty"`
	// Generation increases every time the VM's desired configuration
	// changes (resize, migrate); actions use it to stay idempotent.
	Generation int64     `json:"generation"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Disk is one block device of a VM.
type Disk struct {
	Name          string `json:"name"`
	CapacityBytes int64  `json:"capacity_bytes"`
}

// NIC is one network interface of a VM.
type NIC struct {
	Name    string `json:"name"`
	MAC     string `json:"mac,omitempty"`
	Network string `json:"network,omitempty"`
}

// Host is a hypervisor host (or, for clouds, an availability zone stands in).
type Host struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Provider    string            `json:"provider"`
	Region      string            `json:"region,omitempty"`
	Zone        string            `json:"zone,omitempty"`
	CPUs        int               `json:"cpus"`
	MemoryBytes int64             `json:"memory_bytes"`
	Tags        map[string]string `json:"tags,omitempty"`
	UpdatedAt   time.Time         `json:"updated_at"`
}

// Inventory is a full snapshot of what one collector sees. A newer snapshot
// from the same Source replaces the older one entirely.
type Inventory struct {
	// Source names the collector instance ("sim", "libvirt/host-a").
	Source string    `json:"source"`
	Time   time.Time `json:"time"`
	VMs    []VM      `json:"vms"`
	Hosts  []Host    `json:"hosts"`
}
