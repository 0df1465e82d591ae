package sim

import (
	"bytes"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func decode(t testing.TB, data []byte) (*Config, error) {
	t.Helper()
	cfg := NewDefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

func TestDefaultConfigValidates(t *testing.T) {
	require.NoError(t, NewDefaultConfig().Validate())
	require.NoError(t, NewFactory().NewDefaultConfig().Validate())
	require.Equal(t, "sim", NewFactory().Type())
}

func TestConfigFromYAML(t *testing.T) {
	data, err := os.ReadFile("testdata/sim.good.yaml")
	require.NoError(t, err)
	cfg, err := decode(t, data)
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	require.Equal(t, uint64(42), cfg.Seed)
	require.Equal(t, 30*time.Second, cfg.Interval)
	require.Equal(t, 60.0, cfg.Speed)
	require.Equal(t, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), cfg.StartTime.UTC())
	require.Equal(t, []string{"eu-sim-a"}, cfg.Zones)
	require.Equal(t, Mix{Web: 1, DB: 1}, cfg.Mix)
	require.Equal(t, []IncidentConfig{
		{Kind: IncidentCPURunaway, Target: "vm-0003", At: time.Hour, Duration: 30 * time.Minute, Every: 24 * time.Hour},
		{Kind: IncidentNoisyNeighbor, Target: "host-02", At: 2 * time.Hour, Duration: time.Hour},
	}, cfg.Incidents)

	f, err := NewFleet(*cfg, cfg.StartTime)
	require.NoError(t, err)
	for _, v := range f.Inventory(t0).VMs {
		require.Contains(t, []string{"web", "db"}, v.Tags["role"], "mix weights of 0 exclude a personality")
		require.Equal(t, "eu-sim-a", v.Zone)
	}
	in := f.Incidents()[0]
	require.True(t, in.Active(t0.Add(25*time.Hour+10*time.Minute)), "every repeats the window")
	require.False(t, in.Active(t0.Add(25*time.Hour+40*time.Minute)))
}

func TestEmptyIncidentListDisables(t *testing.T) {
	data, err := os.ReadFile("testdata/no-incidents.good.yaml")
	require.NoError(t, err)
	cfg, err := decode(t, data)
	require.NoError(t, err)
	require.NoError(t, cfg.Validate())
	require.Empty(t, cfg.Incidents)
	_, err = decode(t, []byte("vms: 3\n"))
	require.NoError(t, err)
}

func TestUnknownKeyRejected(t *testing.T) {
	_, err := decode(t, []byte("vm_count: 3\n"))
	require.ErrorContains(t, err, "vm_count")
}

func TestValidateReportsEveryProblem(t *testing.T) {
	f := func(mod func(*Config), want ...string) {
		t.Helper()
		cfg := NewDefaultConfig()
		mod(cfg)
		before := *cfg
		before.Incidents = append([]IncidentConfig(nil), cfg.Incidents...)
		err := cfg.Validate()
		require.Error(t, err)
		for _, w := range want {
			require.ErrorContains(t, err, w)
		}
		require.Equal(t, len(want), strings.Count(err.Error(), "\n")+1, "one line per problem: %v", err)
		require.Equal(t, before, *cfg, "Validate must not change the config")
	}
	f(func(c *Config) { c.Hosts = 0 }, "hosts: must be between 1")
	f(func(c *Config) { c.VMs = -1 }, "vms: must be between 0")
	f(func(c *Config) { c.Interval = 0 }, "interval: must be a positive whole number of milliseconds")
	f(func(c *Config) { c.Interval = 1500 * time.Microsecond }, "interval:")
	f(func(c *Config) { c.Speed = 0 }, "speed: must be a positive number")
	f(func(c *Config) { c.Speed = math.Inf(1) }, "speed:")
	f(func(c *Config) { c.Speed = 1e6 }, "speed: 1e+06 makes the real time between samples")
	f(func(c *Config) { c.InventoryInterval = -time.Second }, "inventory_interval:")
	f(func(c *Config) { c.Region = " " }, "region: must not be empty")
	f(func(c *Config) { c.Zones = nil }, "zones: must list at least one zone")
	f(func(c *Config) { c.Zones = []string{"a", "a"} }, `zones[1]: duplicate "a"`)
	f(func(c *Config) { c.Tenants = []string{""} }, "tenants[0]: must not be empty")
	f(func(c *Config) { c.Mix = Mix{} }, "mix: at least one weight must be positive")
	f(func(c *Config) { c.Mix.DB = -1 }, "mix.db: must be a non-negative number")
	f(func(c *Config) { c.Incidents[0].Kind = "meteor" }, `incidents[0].kind: unknown kind "meteor"`)
	f(func(c *Config) { c.Incidents[1].Target = "vm-0061" }, `incidents[1].target: "vm-0061" is not a VM of this fleet (vm-0001 … vm-0060)`)
	f(func(c *Config) { c.Incidents[1].Target = "vm-1" }, `incidents[1].target: "vm-1"`)
	f(func(c *Config) { c.Incidents[3].Target = "vm-0001" }, `incidents[3].target: "vm-0001" is not a host of this fleet (host-01 … host-08)`)
	f(func(c *Config) { c.Incidents[2].Duration = 0 }, "incidents[2].duration: must be positive")
	f(func(c *Config) { c.Incidents[2].At = -time.Hour }, "incidents[2].at: must not be negative")
	f(func(c *Config) { c.Incidents[2].Every = time.Hour }, "incidents[2].every: must be 0 (once) or longer than duration (12h0m0s)")
	f(func(c *Config) { c.Hosts, c.VMs, c.Speed = 0, -5, -1 },
		"hosts:", "vms:", "speed:")
}

func FuzzConfig(f *testing.F) {
	for _, name := range []string{"testdata/sim.good.yaml", "testdata/no-incidents.good.yaml"} {
		data, err := os.ReadFile(name)
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte("hosts: 2\nvms: 3\nincidents: [{kind: idle, duration: 1m}]\n"))
	f.Add([]byte("speed: .nan\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		cfg, err := decode(t, data)
		if err != nil || cfg.Validate() != nil {
			return
		}
		if cfg.Hosts > 50 || cfg.VMs > 200 {
			return // valid but too slow to build for every input
		}
		fleet, err := NewFleet(*cfg, t0)
		require.NoError(t, err, "a valid config must build a fleet")
		fleet.Step(t0)
		fleet.Step(t0.Add(cfg.Interval))
	})
}
