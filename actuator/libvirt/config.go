package libvirt

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/novacron/novacron/collectors/libvirt/conn"
	"github.com/novacron/novacron/internal/confutil"
)

// Config configures the libvirt driver. YAML keys are snake_case.
type Config struct {
	// Hosts are the libvirt daemons the driver acts on. At least one.
	Hosts []HostConfig `yaml:"hosts"`
	// Timeout bounds each libvirt call (a migration is bounded by
	// migration.timeout instead). Default 30s; positive.
	Timeout time.Duration `yaml:"timeout"`
	// ShutdownTimeout is how long Stop waits for a guest to shut down
	// before forcing it off, when the caller gives no timeout. Default 2m;
	// positive.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Migration configures live migration.
	Migration MigrationConfig `yaml:"migration"`
	// Templates are the VM shapes Create builds from, by name. Default
	// none.
	Templates map[string]Template `yaml:"templates"`
}

// HostConfig is one libvirt daemon.
type HostConfig struct {
	// Name is the host ID, as in the collector's host label. Required and
	// unique.
	Name string `yaml:"name"`
	// URI is how NovaCron connects to the daemon; see the collector's
	// hosts[].uri. Required.
	URI string `yaml:"uri"`
	// MigrationURI is how another host's daemon connects to this one
	// during a peer-to-peer migration ("qemu+tls://kvm-02/system").
	// Default: uri.
	MigrationURI string `yaml:"migration_uri"`
	// MigrationAddress is the address QEMU on this host listens on for
	// migration data ("10.0.0.12"). Default empty: libvirt picks the
	// host's name.
	MigrationAddress string `yaml:"migration_address"`
}

// MigrationConfig configures live migration.
type MigrationConfig struct {
	// BandwidthMiBps caps the migration stream in MiB/s. Default 0: no
	// cap.
	BandwidthMiBps uint64 `yaml:"bandwidth_mibps"`
	// Timeout aborts a migration that has not finished. Default 10m;
	// positive.
	Timeout time.Duration `yaml:"timeout"`
	// Unsafe lets libvirt migrate VMs whose disks it cannot prove safe to
	// migrate (a disk cache mode other than none on storage it does not
	// know to be shared). Default false.
	Unsafe bool `yaml:"unsafe"`
	// ProgressInterval is how often a migration's progress is read. Default
	// 1s; positive.
	ProgressInterval time.Duration `yaml:"progress_interval"`
}

// Template is a VM shape.
type Template struct {
	// VCPUs is the vCPUs at creation. Required, at least 1.
	VCPUs int `yaml:"vcpus"`
	// MaxVCPUs is the most vCPUs the VM can be given live. Default (0):
	// vcpus.
	MaxVCPUs int `yaml:"max_vcpus"`
	// MemoryBytes is the memory at creation. Required, at least 1 MiB.
	MemoryBytes int64 `yaml:"memory_bytes"`
	// MaxMemoryBytes is the most memory the VM can be given live (by the
	// balloon). Default (0): memory_bytes.
	MaxMemoryBytes int64 `yaml:"max_memory_bytes"`
	// DomainType is libvirt's domain type: kvm, qemu (software
	// emulation), xen or test. Default kvm.
	DomainType string `yaml:"domain_type"`
	// Arch is the guest architecture. Default x86_64.
	Arch string `yaml:"arch"`
	// Machine is the machine type. Default empty: the hypervisor's default.
	Machine string `yaml:"machine"`
	// Emulator is the emulator binary. Default empty: the hypervisor's
	// default.
	Emulator string `yaml:"emulator"`
	// Disks are created (or, with volume, attached) in order as vda, vdb...
	Disks []TemplateDisk `yaml:"disks"`
	// NICs are attached in order.
	NICs []TemplateNIC `yaml:"nics"`
	// CloudInitPool is the storage pool where a cloud-init ISO is
	// uploaded when Create gets cloud-init data. Default: the first disk's
	// pool.
	CloudInitPool string `yaml:"cloud_init_pool"`
}

// TemplateDisk is one disk of a template.
type TemplateDisk struct {
	// Pool is the storage pool. Required.
	Pool string `yaml:"pool"`
	// SizeBytes is the capacity of a new volume named <vm>-<target>.
	// Required unless volume is set.
	SizeBytes int64 `yaml:"size_bytes"`
	// Format is the new volume's format: qcow2 or raw. Default qcow2.
	Format string `yaml:"format"`
	// Volume attaches an existing volume of the pool instead of creating
	// one (a shared read-mostly image). Default empty.
	Volume string `yaml:"volume"`
	// Bus is the disk bus: virtio, sata, scsi, ide or xen. Default virtio.
	Bus string `yaml:"bus"`
}

// TemplateNIC is one network interface of a template. Exactly one of
// network and bridge is set.
type TemplateNIC struct {
	// Network is a libvirt network name ("default").
	Network string `yaml:"network"`
	// Bridge is a host bridge ("br0").
	Bridge string `yaml:"bridge"`
	// Model is the NIC model. Default virtio.
	Model string `yaml:"model"`
}

// NewDefaultConfig returns the default configuration (no hosts, no
// templates).
func NewDefaultConfig() *Config {
	return &Config{
		Timeout:         30 * time.Second,
		ShutdownTimeout: 2 * time.Minute,
		Migration:       MigrationConfig{Timeout: 10 * time.Minute, ProgressInterval: time.Second},
	}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// Validate reports every problem with the configuration, worded with the
// YAML keys. It does not change the configuration.
func (c *Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, confutil.Errorf(field, format, args...))
	}
	if len(c.Hosts) == 0 {
		add("hosts", "must list at least one host")
	}
	names := map[string]int{}
	for i, h := range c.Hosts {
		key := fmt.Sprintf("hosts[%d]", i)
		if h.Name == "" {
			add(key+".name", "must not be empty")
		} else if j, dup := names[h.Name]; dup {
			add(key+".name", "duplicate %q (also hosts[%d].name)", h.Name, j)
		} else {
			names[h.Name] = i
		}
		if h.URI == "" {
			add(key+".uri", "must not be empty")
		} else if _, err := conn.ParseURI(h.URI); err != nil {
			add(key+".uri", "%v", err)
		}
		if h.MigrationURI != "" {
			if _, err := conn.ParseURI(h.MigrationURI); err != nil {
				add(key+".migration_uri", "%v", err)
			}
		}
		if strings.ContainsAny(h.MigrationAddress, "/ ") {
			add(key+".migration_address", "must be a host name or IP address, got %q", h.MigrationAddress)
		}
	}
	if c.Timeout <= 0 {
		add("timeout", "must be positive, got %s", c.Timeout)
	}
	if c.ShutdownTimeout <= 0 {
		add("shutdown_timeout", "must be positive, got %s", c.ShutdownTimeout)
	}
	if c.Migration.Timeout <= 0 {
		add("migration.timeout", "must be positive, got %s", c.Migration.Timeout)
	}
	if c.Migration.ProgressInterval <= 0 {
		add("migration.progress_interval", "must be positive, got %s", c.Migration.ProgressInterval)
	}
	for _, name := range sortedNames(c.Templates) {
		if !nameRE.MatchString(name) {
			add("templates", "template name %q must be letters, digits, '_', '.' or '-'", name)
		}
		if err := c.Templates[name].validate(); err != nil {
			errs = append(errs, confutil.Prefix("templates."+name, err))
		}
	}
	return errors.Join(errs...)
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

var (
	domainTypes = []string{"kvm", "qemu", "xen", "test"}
	diskBuses   = []string{"virtio", "sata", "scsi", "ide", "xen"}
	diskFormats = []string{"qcow2", "raw"}
)

func (t Template) validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, confutil.Errorf(field, format, args...))
	}
	if t.VCPUs < 1 || t.VCPUs > 4096 {
		add("vcpus", "must be between 1 and 4096, got %d", t.VCPUs)
	}
	if t.MaxVCPUs != 0 && t.MaxVCPUs < t.VCPUs {
		add("max_vcpus", "must be 0 (vcpus) or at least vcpus (%d), got %d", t.VCPUs, t.MaxVCPUs)
	}
	if t.MemoryBytes < 1<<20 {
		add("memory_bytes", "must be at least 1 MiB (1048576), got %d", t.MemoryBytes)
	}
	if t.MaxMemoryBytes != 0 && t.MaxMemoryBytes < t.MemoryBytes {
		add("max_memory_bytes", "must be 0 (memory_bytes) or at least memory_bytes (%d), got %d", t.MemoryBytes, t.MaxMemoryBytes)
	}
	if t.DomainType != "" && !slices.Contains(domainTypes, t.DomainType) {
		add("domain_type", "unknown %q, want one of %s", t.DomainType, strings.Join(domainTypes, ", "))
	}
	for i, d := range t.Disks {
		key := fmt.Sprintf("disks[%d]", i)
		if d.Pool == "" {
			add(key+".pool", "must not be empty")
		}
		if d.Volume == "" && d.SizeBytes <= 0 {
			add(key+".size_bytes", "must be positive unless volume is set, got %d", d.SizeBytes)
		}
		if d.Volume != "" && d.SizeBytes != 0 {
			add(key+".size_bytes", "must be 0 when volume is set (the volume keeps its size)")
		}
		if d.Format != "" && !slices.Contains(diskFormats, d.Format) {
			add(key+".format", "unknown %q, want qcow2 or raw", d.Format)
		}
		if d.Bus != "" && !slices.Contains(diskBuses, d.Bus) {
			add(key+".bus", "unknown %q, want one of %s", d.Bus, strings.Join(diskBuses, ", "))
		}
	}
	if len(t.Disks) > 26 {
		add("disks", "at most 26 disks, got %d", len(t.Disks))
	}
	for i, n := range t.NICs {
		if (n.Network == "") == (n.Bridge == "") {
			add(fmt.Sprintf("nics[%d]", i), "set exactly one of network and bridge")
		}
	}
	return errors.Join(errs...)
}
