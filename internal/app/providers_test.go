package app

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron/api"
	awscoll "github.com/novacron/novacron/collectors/aws"
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

// TestRunWithAWS is `novacron run` configured for AWS (EC2 and CloudWatch
// through moto): the account's instances appear in the fleet, the
// simulated fleet stays off, and the EC2 driver is loaded.
func TestRunWithAWS(t *testing.T) {
	m := testserver.MotoServer(t)
	m.Reset(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTESTING")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx := t.Context()
	ec2c := ec2.NewFromConfig(aws.Config{Region: testserver.MotoRegion,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTESTING", "secret", ""), BaseEndpoint: aws.String(m.URL())})
	imgs, err := ec2c.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Filters: []ec2types.Filter{{Name: aws.String("architecture"), Values: []string{"x86_64"}}},
	})
	require.NoError(t, err)
	require.NotEmpty(t, imgs.Images)
	_, err = ec2c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: imgs.Images[0].ImageId, InstanceType: ec2types.InstanceTypeT3Micro,
		MinCount: aws.Int32(2), MaxCount: aws.Int32(2),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance,
			Tags: []ec2types.Tag{{Key: aws.String("tenant"), Value: aws.String("acme")}}}},
	})
	require.NoError(t, err)

	cfg := testConfig(t)
	ac := &cfg.Collectors.AWS
	ac.Enabled = true
	ac.Endpoint = m.URL()
	ac.CloudWatchProtocol = awscoll.ProtocolQuery
	ac.Regions = []string{testserver.MotoRegion}
	dc := &cfg.Actuator.Drivers.AWS
	dc.Enabled = true
	dc.Regions = []string{testserver.MotoRegion}
	dc.Endpoint = m.URL()
	require.False(t, cfg.SimEnabled())
	a := openApp(t, cfg)
	require.Nil(t, a.SimFleet())

	base, tok := a.APIURL(), a.Token()
	var fleet api.FleetSummary
	require.Eventually(t, func() bool {
		return apiGet(t, base, tok, "/api/v1/fleet?provider=aws", &fleet) == http.StatusOK && fleet.Total == 2
	}, time.Minute, 200*time.Millisecond)
	require.Equal(t, 2, fleet.ByProvider["aws"], "no simulated VMs")
	require.Equal(t, "t3.micro", fleet.VMs[0].Size.InstanceType)
	require.NotNil(t, a.actuator, "the actuator runs with the EC2 driver")
}
