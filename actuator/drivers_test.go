package actuator_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/require"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/actuator"
	awsdriver "github.com/novacron/novacron/actuator/aws"
	"github.com/novacron/novacron/actuator/libvirt"
	"github.com/novacron/novacron/collectors/libvirt/libvirttest"
	"github.com/novacron/novacron/internal/testserver"
)

// alertPolicy is a policy acting on Alertmanager alerts of one name.
func alertPolicy(name, alertname string, spec actuator.ActionSpec) actuator.Policy {
	return actuator.Policy{Name: name, Match: actuator.Match{Kinds: []string{actuator.EventAlert}, Labels: map[string]string{"alertname": alertname}}, Action: spec}
}

func alert(alertname, provider, vmID string) novacron.Event {
	return novacron.Event{SchemaVersion: novacron.EventSchemaVersion, ID: "alertmanager/" + alertname + "/" + vmID, Kind: actuator.EventAlert,
		Time: time.Now(), Source: "alertmanager", VMID: vmID, Severity: "warning",
		Labels: map[string]string{"alertname": alertname, "vm_id": vmID, "provider": provider}}
}

// driverConfig is an auto-mode actuator acting on the shrink, stop and
// start alerts, without cooldown so one VM can take several actions.
func driverConfig() actuator.Config {
	cfg := testConfig(actuator.ModeAuto)
	cfg.Cooldown = 0
	cfg.Policies = []actuator.Policy{
		alertPolicy("shrink", "Oversized", actuator.ActionSpec{Kind: novacron.ActionResize, VCPUs: 2}),
		alertPolicy("idle", "Idle", actuator.ActionSpec{Kind: novacron.ActionStop}),
		alertPolicy("wake", "Wanted", actuator.ActionSpec{Kind: novacron.ActionStart}),
	}
	return cfg
}

// actOn feeds the alert and waits for the one action it plans on vmID to
// succeed.
func actOn(t *testing.T, a *actuator.Actuator, ev novacron.Event, kind novacron.ActionKind) actuator.Action {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, a.ConsumeEvents(ctx, []novacron.Event{ev}))
	acts, err := a.List(ctx, actuator.ActionFilter{VMID: ev.VMID, Kind: string(kind)})
	require.NoError(t, err)
	require.Len(t, acts, 1, "one %s planned", kind)
	done := waitState(t, a, acts[0].ID, actuator.StateSucceeded, actuator.StateFailed, actuator.StateRolledBack)
	require.Equal(t, actuator.StateSucceeded, done.State, "%s: %s %s", kind, done.Result, done.LastError)
	return done
}

// TestLibvirtDriverResizeStopStart runs actions through the libvirt
// driver against the libvirt test driver behind a session libvirtd.
func TestLibvirtDriverResizeStopStart(t *testing.T) {
	ctx := context.Background()
	d := testserver.Libvirt(t)
	id := libvirttest.UUIDFor(0xac, 1)
	uri := d.TestURI(t, "actuator", libvirttest.Node("", libvirttest.Domain{Name: "web-1", UUID: id, VCPUs: 4, MemoryKiB: 1 << 20}))
	lcfg := libvirt.NewDefaultConfig()
	lcfg.Timeout = 10 * time.Second
	lcfg.Hosts = []libvirt.HostConfig{{Name: "host-a", URI: uri}}
	drv, err := libvirt.New(*lcfg, libvirt.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = drv.Shutdown(context.Background()) })

	a, err := actuator.New(driverConfig(), actuator.Settings{}, actuator.Deps{DB: sqliteDB(t), Drivers: map[string]novacron.Driver{"libvirt": drv}})
	require.NoError(t, err)
	require.NoError(t, a.Start(ctx))
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })

	act := actOn(t, a, alert("Oversized", "libvirt", id), novacron.ActionResize)
	require.Equal(t, 4, act.Original.VCPUs)
	vm, err := drv.VM(ctx, id)
	require.NoError(t, err)
	require.Equal(t, 2, vm.Size.VCPUs, "resized live on the hypervisor")
	require.Equal(t, int64(1<<30), vm.Size.MemoryBytes, "memory kept")
	require.Equal(t, novacron.PowerRunning, vm.State)

	actOn(t, a, alert("Idle", "libvirt", id), novacron.ActionStop)
	vm, err = drv.VM(ctx, id)
	require.NoError(t, err)
	require.Equal(t, novacron.PowerStopped, vm.State)

	actOn(t, a, alert("Wanted", "libvirt", id), novacron.ActionStart)
	vm, err = drv.VM(ctx, id)
	require.NoError(t, err)
	require.Equal(t, novacron.PowerRunning, vm.State)
	require.Equal(t, 2, vm.Size.VCPUs)
}

// TestAWSDriverStopStart runs a stop and a start through the EC2 driver
// against moto.
func TestAWSDriverStopStart(t *testing.T) {
	ctx := context.Background()
	m := testserver.MotoServer(t)
	creds := credentials.NewStaticCredentialsProvider("AKIDTESTING", "secret", "")
	client := ec2.NewFromConfig(aws.Config{Region: testserver.MotoRegion, Credentials: creds, BaseEndpoint: aws.String(m.URL())})
	imgs, err := client.DescribeImages(ctx, &ec2.DescribeImagesInput{Filters: []ec2types.Filter{{Name: aws.String("architecture"), Values: []string{"x86_64"}}}, MaxResults: aws.Int32(5)})
	require.NoError(t, err)
	require.NotEmpty(t, imgs.Images)
	out, err := client.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: imgs.Images[0].ImageId, InstanceType: ec2types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	require.NoError(t, err)
	id := *out.Instances[0].InstanceId
	state := func() ec2types.InstanceStateName {
		t.Helper()
		out, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		require.NoError(t, err)
		return out.Reservations[0].Instances[0].State.Name
	}

	acfg := awsdriver.NewDefaultConfig()
	acfg.Endpoint = m.URL()
	acfg.Regions = []string{testserver.MotoRegion}
	acfg.PollInterval, acfg.WaitTimeout, acfg.MaxAttempts = 20*time.Millisecond, 20*time.Second, 2
	drv, err := awsdriver.New(*acfg, awsdriver.Settings{Credentials: creds})
	require.NoError(t, err)

	a, err := actuator.New(driverConfig(), actuator.Settings{}, actuator.Deps{DB: sqliteDB(t), Drivers: map[string]novacron.Driver{"aws": drv}})
	require.NoError(t, err)
	require.NoError(t, a.Start(ctx))
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })

	require.Equal(t, ec2types.InstanceStateNameRunning, state())
	act := actOn(t, a, alert("Idle", "aws", id), novacron.ActionStop)
	require.Equal(t, novacron.PowerRunning, act.Original.Power)
	require.Equal(t, ec2types.InstanceStateNameStopped, state())

	actOn(t, a, alert("Wanted", "aws", id), novacron.ActionStart)
	require.Equal(t, ec2types.InstanceStateNameRunning, state())
}
