package libvirt

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron/collectors/sim/simtest"
)

func TestDefaultConfigValidates(t *testing.T) {
	require.NoError(t, NewDefaultConfig().Validate())
	require.Equal(t, "libvirt", NewFactory().Type())
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.Enabled = true
	cfg.Interval = time.Millisecond
	cfg.Timeout = 0
	cfg.InventoryInterval = -time.Second
	cfg.Reconnect = BackoffConfig{Initial: 0, Max: -1}
	err := cfg.Validate()
	for _, want := range []string{"hosts: must list at least one host", "interval: must be at least 100ms", "timeout: must be positive",
		"inventory_interval: must not be negative", "reconnect.initial: must be positive", "reconnect.max: must not be below"} {
		require.ErrorContains(t, err, want)
	}

	cfg = NewDefaultConfig()
	cfg.Timeout = time.Minute
	cfg.Hosts = []HostConfig{{Name: "a", URI: "qemu:///system"}, {Name: "a", URI: "qemu+bogus://x/system"}, {URI: ""}, {URI: "nonsense"}, {URI: "qemu+tls:///system"}}
	err = cfg.Validate()
	for _, want := range []string{"timeout: must not be longer than interval", `hosts[1].name: duplicate "a"`, `hosts[1].uri: URI "qemu+bogus://x/system": unsupported transport`,
		"hosts[2].uri: must not be empty", `hosts[3].uri: URI "nonsense" has no scheme`, "hosts[4].uri: URI \"qemu+tls:///system\": transport tls needs a host"} {
		require.ErrorContains(t, err, want)
	}
}

func TestShutdownWithoutStart(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.Hosts = []HostConfig{{Name: "x", URI: "qemu:///system"}}
	c, err := New(*cfg, Settings{}, &simtest.Sink{})
	require.NoError(t, err)
	require.NoError(t, c.Shutdown(context.Background()))
	require.NoError(t, c.Shutdown(context.Background()))
	require.Error(t, c.Start(context.Background()), "no start after shutdown")

	_, err = New(*cfg, Settings{}, nil)
	require.ErrorContains(t, err, "sink is nil")
	cfg.Hosts = append(cfg.Hosts, HostConfig{URI: "qemu+tls://x/system"})
	_, err = New(*cfg, Settings{}, &simtest.Sink{})
	require.ErrorContains(t, err, `both have host name "x"`)
}
