package libvirt

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDriverConfigValidate(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.Hosts = []HostConfig{{Name: "a", URI: "qemu:///system"}}
	require.NoError(t, cfg.Validate())

	cfg = NewDefaultConfig()
	cfg.Timeout = 0
	cfg.ShutdownTimeout = -time.Second
	cfg.Migration = MigrationConfig{}
	cfg.Hosts = []HostConfig{{Name: "a", URI: "qemu:///system"}, {Name: "a", URI: "nope", MigrationURI: "x", MigrationAddress: "a b"}, {}}
	cfg.Templates = map[string]Template{
		"bad name": {VCPUs: 1, MemoryBytes: 1 << 20},
		"t": {VCPUs: 0, MaxVCPUs: -1, MemoryBytes: 1, MaxMemoryBytes: 0, DomainType: "vmware",
			Disks: []TemplateDisk{{}, {Pool: "p", Volume: "v", SizeBytes: 1, Format: "vmdk", Bus: "usb"}},
			NICs:  []TemplateNIC{{}, {Network: "n", Bridge: "b"}}},
	}
	err := cfg.Validate()
	for _, want := range []string{
		"timeout: must be positive", "shutdown_timeout: must be positive", "migration.timeout: must be positive", "migration.progress_interval: must be positive",
		`hosts[1].name: duplicate "a"`, `hosts[1].uri: URI "nope" has no scheme`, "hosts[1].migration_uri:", "hosts[1].migration_address:",
		"hosts[2].name: must not be empty", "hosts[2].uri: must not be empty",
		`template name "bad name"`, "templates.t.vcpus:", "templates.t.max_vcpus:", "templates.t.memory_bytes:", "templates.t.domain_type: unknown \"vmware\"",
		"templates.t.disks[0].pool: must not be empty", "templates.t.disks[0].size_bytes:", "templates.t.disks[1].size_bytes: must be 0 when volume is set",
		"templates.t.disks[1].format:", "templates.t.disks[1].bus:", "templates.t.nics[0]: set exactly one", "templates.t.nics[1]: set exactly one",
	} {
		require.ErrorContains(t, err, want)
	}
	require.ErrorContains(t, NewDefaultConfig().Validate(), "hosts: must list at least one host")
}

func TestDiskTargetsAndMACs(t *testing.T) {
	require.Equal(t, "vda", diskTarget(0, ""))
	require.Equal(t, "sdb", diskTarget(1, "sata"))
	require.Equal(t, "hdc", diskTarget(2, "ide"))
	require.Equal(t, "xvdd", diskTarget(3, "xen"))
	require.Regexp(t, `^52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$`, newMAC())
	u := newUUID()
	_, err := parseUUID(u)
	require.NoError(t, err)
	_, err = parseUUID("zz")
	require.Error(t, err)
}
