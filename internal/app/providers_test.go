package app

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron/api"
	libvirtcoll "github.com/novacron/novacron/collectors/libvirt"
	"github.com/novacron/novacron/collectors/libvirt/libvirttest"
	"github.com/novacron/novacron/internal/testserver"
)

// TestRunWithLibvirtHost is `novacron run` configured for a libvirt host
// (the test driver behind a real session libvirtd): its domains appear in
// the fleet and their metrics are queryable, and the simulated fleet
// stays off because a real collector is configured.
func TestRunWithLibvirtHost(t *testing.T) {
	d := testserver.Libvirt(t)
	var doms []libvirttest.Domain
	for i := range 3 {
		doms = append(doms, libvirttest.Domain{Name: fmt.Sprintf("app-%d", i), VCPUs: 2,
			Tags: map[string]string{"tenant": "acme"}, Disks: []string{"vda"}, NICs: []string{"eth0"}})
	}
	uri := d.TestURI(t, "app-run", libvirttest.Node("", doms...))

	cfg := testConfig(t)
	cfg.Collectors.Libvirt.Enabled = true
	cfg.Collectors.Libvirt.Interval = 500 * time.Millisecond
	cfg.Collectors.Libvirt.Timeout = 500 * time.Millisecond
	cfg.Collectors.Libvirt.Hosts = []libvirtcoll.HostConfig{{Name: "kvm-1", URI: uri}}
	require.False(t, cfg.SimEnabled(), "the simulated fleet is off once a real collector is enabled")
	a := openApp(t, cfg)
	require.Nil(t, a.SimFleet())

	base, tok := a.APIURL(), a.Token()
	var fleet api.FleetSummary
	require.Eventually(t, func() bool {
		return apiGet(t, base, tok, "/api/v1/fleet?provider=libvirt", &fleet) == http.StatusOK && fleet.Total == 3
	}, time.Minute, 200*time.Millisecond)
	require.Equal(t, "kvm-1", fleet.VMs[0].Host)
	require.Equal(t, 3, fleet.ByProvider["libvirt"], "no simulated VMs")
	now := func() time.Time { return time.Now() }
	waitValue(t, base, tok, `count(novacron_vm_vcpus{provider="libvirt",host="kvm-1"})`, now, 3, time.Minute)
}
