package sim

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/novacron/novacron/internal/confutil"
)

// Incident kinds.
const (
	// IncidentCPURunaway pins a VM's CPU near 100% of its vCPUs (a process
	// spinning). A reboot of the VM ends it.
	IncidentCPURunaway = "cpu_runaway"
	// IncidentMemoryLeak makes a VM's memory use grow steadily until it
	// nearly fills the VM. A reboot of the VM ends it.
	IncidentMemoryLeak = "memory_leak"
	// IncidentNoisyNeighbor loads a host from outside NovaCron's view: the
	// VMs on it see CPU steal and need more CPU for the same work. Migrating
	// a VM off the host ends the effect for that VM.
	IncidentNoisyNeighbor = "noisy_neighbor"
	// IncidentDiskFill makes a VM's disk usage climb to nearly 100% over
	// the incident; when it ends the space is freed (log rotation).
	IncidentDiskFill = "disk_fill"
	// IncidentIdle makes a VM go idle: CPU, disk and network near zero.
	IncidentIdle = "idle"
)

// IncidentKinds returns every incident kind.
func IncidentKinds() []string {
	return []string{IncidentCPURunaway, IncidentMemoryLeak, IncidentNoisyNeighbor, IncidentDiskFill, IncidentIdle}
}

// Config configures the simulated fleet. YAML keys are snake_case.
type Config struct {
	// Seed makes the fleet: sizes, placement, personalities and noise. The
	// same seed, start time and sequence of actions give the same output.
	// Default 1; every value, 0 included, is a valid seed.
	Seed uint64 `yaml:"seed"`
	// Hosts is the number of hypervisor hosts. Default 8; at least 1.
	Hosts int `yaml:"hosts"`
	// VMs is the number of VMs placed on the hosts. Default 60; 0 gives a
	// fleet of empty hosts.
	VMs int `yaml:"vms"`
	// Interval is the simulated time between two samples. Default 15s;
	// must be a positive whole number of milliseconds.
	Interval time.Duration `yaml:"interval"`
	// Speed is how many simulated seconds pass per real second: 60 runs an
	// hour per minute. Default 1; must be positive, and interval/speed (the
	// real time between samples) at least 1ms. When delivery is slower than
	// that, the simulation slows down rather than skipping samples.
	Speed float64 `yaml:"speed"`
	// StartTime is the simulated time of the first sample, RFC 3339
	// ("2026-03-02T00:00:00Z"). Default (zero): the real time when the
	// collector is created.
	StartTime time.Time `yaml:"start_time"`
	// InventoryInterval is the simulated time between two inventory
	// snapshots. An inventory is also sent at start and after every action.
	// Default 5m; 0 sends one only at start and after actions.
	InventoryInterval time.Duration `yaml:"inventory_interval"`
	// Region is the region label of every host and VM. Default "sim-1".
	Region string `yaml:"region"`
	// Zones are the zones hosts are spread over, round-robin. Default
	// ["sim-1a", "sim-1b"]; at least one.
	Zones []string `yaml:"zones"`
	// Tenants are assigned to VMs at random. Default ["acme", "globex",
	// "initech"]; empty leaves the tenant label empty.
	Tenants []string `yaml:"tenants"`
	// Mix weighs the VM personalities. Default web 0.45, batch 0.2, db 0.15,
	// idle 0.2; weights are relative, at least one must be positive.
	Mix Mix `yaml:"mix"`
	// Incidents are scheduled faults. Default: one of each kind within the
	// first simulated day (DefaultIncidents); an empty list disables them.
	Incidents []IncidentConfig `yaml:"incidents"`
}

// Mix weighs the VM personalities.
type Mix struct {
	// Web VMs follow office hours with a weekend dip. Default 0.45.
	Web float64 `yaml:"web"`
	// Batch VMs run jobs at night. Default 0.2.
	Batch float64 `yaml:"batch"`
	// DB VMs are steady, memory- and disk-heavy. Default 0.15.
	DB float64 `yaml:"db"`
	// Idle VMs barely use anything. Default 0.2.
	Idle float64 `yaml:"idle"`
}

// IncidentConfig schedules one incident.
type IncidentConfig struct {
	// Kind is cpu_runaway, memory_leak, noisy_neighbor, disk_fill or idle.
	Kind string `yaml:"kind"`
	// Target is a VM ID ("vm-0007") or, for noisy_neighbor, a host ID
	// ("host-03"). Default (empty): picked from the seed among VMs whose
	// personality suits the kind.
	Target string `yaml:"target"`
	// At is when the incident starts, after start_time. Default 0.
	At time.Duration `yaml:"at"`
	// Duration is how long it lasts; must be positive.
	Duration time.Duration `yaml:"duration"`
	// Every repeats the incident with this period. Default 0: once. When
	// set it must be longer than duration.
	Every time.Duration `yaml:"every"`
}

// DefaultIncidents returns the default schedule: each kind once within the
// first simulated day, targets picked from the seed.
func DefaultIncidents() []IncidentConfig {
	return []IncidentConfig{
		{Kind: IncidentCPURunaway, At: 2 * time.Hour, Duration: 2 * time.Hour},
		{Kind: IncidentMemoryLeak, At: 4 * time.Hour, Duration: 6 * time.Hour},
		{Kind: IncidentIdle, At: 6 * time.Hour, Duration: 12 * time.Hour},
		{Kind: IncidentNoisyNeighbor, At: 8 * time.Hour, Duration: 2 * time.Hour},
		{Kind: IncidentDiskFill, At: 12 * time.Hour, Duration: 8 * time.Hour},
	}
}

// NewDefaultConfig returns the default configuration.
func NewDefaultConfig() *Config {
	return &Config{
		Seed:              1,
		Hosts:             8,
		VMs:               60,
		Interval:          15 * time.Second,
		Speed:             1,
		InventoryInterval: 5 * time.Minute,
		Region:            "sim-1",
		Zones:             []string{"sim-1a", "sim-1b"},
		Tenants:           []string{"acme", "globex", "initech"},
		Mix:               Mix{Web: 0.45, Batch: 0.2, DB: 0.15, Idle: 0.2},
		Incidents:         DefaultIncidents(),
	}
}

// Limits that keep a fleet within what one process can simulate.
const (
	maxHosts = 100_000
	maxVMs   = 1_000_000
)

// Validate reports every problem with the configuration, worded with the
// YAML keys. It does not change the configuration.
func (c *Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, confutil.Errorf(field, format, args...))
	}
	if c.Hosts < 1 || c.Hosts > maxHosts {
		add("hosts", "must be between 1 and %d, got %d", maxHosts, c.Hosts)
	}
	if c.VMs < 0 || c.VMs > maxVMs {
		add("vms", "must be between 0 and %d, got %d", maxVMs, c.VMs)
	}
	intervalOK := true
	if c.Interval <= 0 || c.Interval%time.Millisecond != 0 {
		add("interval", "must be a positive whole number of milliseconds, got %s", c.Interval)
		intervalOK = false
	}
	switch {
	case math.IsNaN(c.Speed) || math.IsInf(c.Speed, 0) || c.Speed <= 0:
		add("speed", "must be a positive number, got %v", c.Speed)
	case intervalOK && float64(c.Interval)/c.Speed < float64(time.Millisecond):
		add("speed", "%v makes the real time between samples (interval/speed) shorter than 1ms", c.Speed)
	}
	if c.InventoryInterval < 0 {
		add("inventory_interval", "must not be negative, got %s", c.InventoryInterval)
	}
	if strings.TrimSpace(c.Region) == "" {
		add("region", "must not be empty")
	}
	if len(c.Zones) == 0 {
		add("zones", "must list at least one zone")
	}
	errs = append(errs, checkNames("zones", c.Zones)...)
	errs = append(errs, checkNames("tenants", c.Tenants)...)
	m := c.Mix
	for _, w := range []struct {
		key string
		v   float64
	}{{"web", m.Web}, {"batch", m.Batch}, {"db", m.DB}, {"idle", m.Idle}} {
		if math.IsNaN(w.v) || math.IsInf(w.v, 0) || w.v < 0 {
			add("mix."+w.key, "must be a non-negative number, got %v", w.v)
		}
	}
	if !(m.Web > 0 || m.Batch > 0 || m.DB > 0 || m.Idle > 0) {
		add("mix", "at least one weight must be positive")
	}
	for i, inc := range c.Incidents {
		if err := inc.validate(c.Hosts, c.VMs); err != nil {
			errs = append(errs, confutil.Prefix(fmt.Sprintf("incidents[%d]", i), err))
		}
	}
	return errors.Join(errs...)
}

func checkNames(key string, names []string) []error {
	var errs []error
	for i, n := range names {
		if strings.TrimSpace(n) == "" {
			errs = append(errs, confutil.Errorf(fmt.Sprintf("%s[%d]", key, i), "must not be empty"))
		} else if slices.Index(names, n) < i {
			errs = append(errs, confutil.Errorf(fmt.Sprintf("%s[%d]", key, i), "duplicate %q", n))
		}
	}
	return errs
}

func (ic IncidentConfig) validate(hosts, vms int) error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, confutil.Errorf(field, format, args...))
	}
	if !slices.Contains(IncidentKinds(), ic.Kind) {
		add("kind", "unknown kind %q, want one of %s", ic.Kind, strings.Join(IncidentKinds(), ", "))
	}
	if ic.Target != "" && slices.Contains(IncidentKinds(), ic.Kind) {
		if ic.Kind == IncidentNoisyNeighbor {
			if _, ok := parseID(ic.Target, hostPrefix, hosts); !ok {
				add("target", "%q is not a host of this fleet (host-01 … %s)", ic.Target, hostID(hosts-1))
			}
		} else if _, ok := parseID(ic.Target, vmPrefix, vms); !ok {
			if vms == 0 {
				add("target", "%q is not a VM of this fleet: it has no VMs", ic.Target)
			} else {
				add("target", "%q is not a VM of this fleet (vm-0001 … %s)", ic.Target, vmID(vms-1))
			}
		}
	}
	if ic.At < 0 {
		add("at", "must not be negative, got %s", ic.At)
	}
	if ic.Duration <= 0 {
		add("duration", "must be positive, got %s", ic.Duration)
	}
	if ic.Every < 0 || (ic.Every > 0 && ic.Every <= ic.Duration) {
		add("every", "must be 0 (once) or longer than duration (%s), got %s", ic.Duration, ic.Every)
	}
	return errors.Join(errs...)
}

const (
	vmPrefix   = "vm-"
	hostPrefix = "host-"
)

// vmID returns the ID of the VM with index i: vm-0001 for i = 0.
func vmID(i int) string { return fmt.Sprintf("%s%04d", vmPrefix, i+1) }

// hostID returns the ID of the host with index i: host-01 for i = 0.
func hostID(i int) string { return fmt.Sprintf("%s%02d", hostPrefix, i+1) }

// parseID returns the index of an ID made by vmID or hostID, when it is
// below n.
func parseID(id, prefix string, n int) (int, bool) {
	num, ok := strings.CutPrefix(id, prefix)
	if !ok {
		return 0, false
	}
	v, err := strconv.Atoi(num)
	if err != nil || v < 1 || v > n {
		return 0, false
	}
	i := v - 1
	want := vmID(i)
	if prefix == hostPrefix {
		want = hostID(i)
	}
	return i, want == id
}
