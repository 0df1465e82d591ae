// Package buildinfo holds the version stamped into the binary at build
// time, for `novacron version`, the API and the novacron_build_info metric.
package buildinfo

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Version is set with -ldflags "-X .../buildinfo.Version=v1.2.3".
var Version = "dev"

// Revision returns the VCS revision the binary was built from, if known.
func Revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// String is the one-line version string.
func String() string {
	return "novacron " + Version + " (revision " + Revision() + ", " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")"
}

// NewCollector returns the novacron_build_info gauge (always 1).
func NewCollector() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "novacron_build_info",
		Help: "NovaCron build information; always 1.",
		ConstLabels: prometheus.Labels{
			"version": Version, "revision": Revision(), "goversion": runtime.Version(),
		},
	})
	g.Set(1)
	return g
}
