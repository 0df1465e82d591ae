package libvirt

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/novacron/novacron/collectors/libvirt/conn"
	"github.com/novacron/novacron/internal/confutil"
)

// TagsNamespace is the XML namespace of NovaCron's tags in a domain's
// <metadata> (see conn.TagsNamespace).
const TagsNamespace = conn.TagsNamespace

// Config configures the libvirt collector. YAML keys are snake_case.
type Config struct {
	// Enabled turns the collector on. Default false: a binary lists the
	// collector but runs it only when asked to.
	Enabled bool `yaml:"enabled"`
	// Hosts are the libvirt daemons to collect from. At least one when
	// enabled.
	Hosts []HostConfig `yaml:"hosts"`
	// Interval is the time between two collections. Default 15s; at least
	// 100ms.
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds one host's collection (connecting included) in one
	// cycle; a host that does not answer in time counts as down and is
	// reconnected. Default 10s; must be positive and not longer than
	// interval.
	Timeout time.Duration `yaml:"timeout"`
	// InventoryInterval is how often every domain's XML is read again for
	// the inventory. Domains are also read when they appear, after their
	// lifecycle events and when their size changes, and an inventory is
	// delivered whenever something in it changed. Default 5m; 0 only reads
	// on those occasions.
	InventoryInterval time.Duration `yaml:"inventory_interval"`
	// Region is the region label of every host and VM. Default empty (the
	// label is left out).
	Region string `yaml:"region"`
	// Zone is the zone label of every host and VM. Default empty.
	Zone string `yaml:"zone"`
	// TenantTag names the domain metadata tag whose value is the tenant
	// label. Default "tenant"; empty leaves the tenant label out.
	TenantTag string `yaml:"tenant_tag"`
	// Events subscribes to each host's domain lifecycle events and
	// delivers them. Default true.
	Events bool `yaml:"events"`
	// Reconnect is the backoff between attempts to reach a host that is
	// down.
	Reconnect BackoffConfig `yaml:"reconnect"`
}

// HostConfig is one libvirt daemon.
type HostConfig struct {
	// Name is the host label of the host and its VMs, and the host ID in
	// inventory. Default: the host part of the URI, or this machine's host
	// name for a local daemon. Names must be unique.
	Name string `yaml:"name"`
	// URI is libvirt's connection URI: "qemu:///system" (local socket),
	// "qemu+unix:///system?socket=/path", "qemu+tls://host/system"
	// (certificates as libvirt's own clients find them, or ?pkipath=),
	// "qemu+tcp://host/system", "qemu+ssh://user@host/system"
	// (?keyfile=, ?known_hosts=), "xen:///system", or the absolute path of
	// a daemon's unix socket. Required.
	URI string `yaml:"uri"`
	// Region overrides the collector's region for this host. Default empty.
	Region string `yaml:"region"`
	// Zone overrides the collector's zone for this host. Default empty.
	Zone string `yaml:"zone"`
}

// BackoffConfig is an exponential backoff with jitter.
type BackoffConfig struct {
	// Initial is the wait after the first failure. Default 1s; positive.
	Initial time.Duration `yaml:"initial"`
	// Max caps the wait, which doubles after each failure. Default 1m; not
	// below initial.
	Max time.Duration `yaml:"max"`
}

// NewDefaultConfig returns the default configuration (disabled, no hosts).
func NewDefaultConfig() *Config {
	return &Config{
		Interval:          15 * time.Second,
		Timeout:           10 * time.Second,
		InventoryInterval: 5 * time.Minute,
		TenantTag:         "tenant",
		Events:            true,
		Reconnect:         BackoffConfig{Initial: time.Second, Max: time.Minute},
	}
}

// Validate reports every problem with the configuration, worded with the
// YAML keys. It does not change the configuration.
func (c *Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, confutil.Errorf(field, format, args...))
	}
	if c.Enabled && len(c.Hosts) == 0 {
		add("hosts", "must list at least one host when enabled")
	}
	names := map[string]int{}
	for i, h := range c.Hosts {
		key := fmt.Sprintf("hosts[%d]", i)
		if strings.TrimSpace(h.URI) == "" {
			add(key+".uri", "must not be empty")
		} else if _, err := conn.ParseURI(h.URI); err != nil {
			add(key+".uri", "%v", err)
		}
		if h.Name != "" {
			if strings.TrimSpace(h.Name) != h.Name {
				add(key+".name", "must not start or end with spaces, got %q", h.Name)
			}
			if j, dup := names[h.Name]; dup {
				add(key+".name", "duplicate %q (also hosts[%d].name)", h.Name, j)
			}
			names[h.Name] = i
		}
	}
	if c.Interval < 100*time.Millisecond {
		add("interval", "must be at least 100ms, got %s", c.Interval)
	}
	if c.Timeout <= 0 {
		add("timeout", "must be positive, got %s", c.Timeout)
	} else if c.Interval > 0 && c.Timeout > c.Interval {
		add("timeout", "must not be longer than interval (%s), got %s", c.Interval, c.Timeout)
	}
	if c.InventoryInterval < 0 {
		add("inventory_interval", "must not be negative, got %s", c.InventoryInterval)
	}
	if c.Reconnect.Initial <= 0 {
		add("reconnect.initial", "must be positive, got %s", c.Reconnect.Initial)
	}
	if c.Reconnect.Max < c.Reconnect.Initial {
		add("reconnect.max", "must not be below reconnect.initial (%s), got %s", c.Reconnect.Initial, c.Reconnect.Max)
	}
	return errors.Join(errs...)
}
