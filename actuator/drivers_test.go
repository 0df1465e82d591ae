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

// motoEC2 is an EC2 driver and a plain EC2 client on the shared moto.
type motoEC2 struct {
	client *ec2.Client
	drv    *awsdriver.Driver
	image  *string
}

func newMotoEC2(t *testing.T) *motoEC2 {
	t.Helper()
	m := testserver.MotoServer(t)
	creds := credentials.NewStaticCredentialsProvider("AKIDTESTING", "secret", "")
	client := ec2.NewFromConfig(aws.Config{Region: testserver.MotoRegion, Credentials: creds, BaseEndpoint: aws.String(m.URL())})
	imgs, err := client.DescribeImages(context.Background(), &ec2.DescribeImagesInput{Filters: []ec2types.Filter{{Name: aws.String("architecture"), Values: []string{"x86_64"}}}, MaxResults: aws.Int32(5)})
	require.NoError(t, err)
	require.NotEmpty(t, imgs.Images)
	acfg := awsdriver.NewDefaultConfig()
	acfg.Endpoint = m.URL()
	acfg.Regions = []string{testserver.MotoRegion}
	acfg.PollInterval, acfg.WaitTimeout, acfg.MaxAttempts = 20*time.Millisecond, 20*time.Second, 2
	drv, err := awsdriver.New(*acfg, awsdriver.Settings{Credentials: creds})
	require.NoError(t, err)
	return &motoEC2{client: client, drv: drv, image: imgs.Images[0].ImageId}
}

// run launches an instance of type typ and returns its ID.
func (m *motoEC2) run(t *testing.T, typ ec2types.InstanceType) string {
	t.Helper()
	out, err := m.client.RunInstances(context.Background(), &ec2.RunInstancesInput{ImageId: m.image, InstanceType: typ, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	require.NoError(t, err)
	return *out.Instances[0].InstanceId
}

// instance returns the instance as EC2 (moto) describes it.
func (m *motoEC2) instance(t *testing.T, id string) ec2types.Instance {
	t.Helper()
	out, err := m.client.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	require.NoError(t, err)
	return out.Reservations[0].Instances[0]
}

// TestAWSDriverStopStart runs a stop and a start through the EC2 driver
// against moto.
func TestAWSDriverStopStart(t *testing.T) {
	ctx := context.Background()
	m := newMotoEC2(t)
	id := m.run(t, ec2types.InstanceTypeT3Micro)
	state := func() ec2types.InstanceStateName { return m.instance(t, id).State.Name }

	a, err := actuator.New(driverConfig(), actuator.Settings{}, actuator.Deps{DB: sqliteDB(t), Drivers: map[string]novacron.Driver{"aws": m.drv}})
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

var _ actuator.SizeResolver = (*awsdriver.Driver)(nil)

// TestAWSDriverResizeInVCPUs runs resizes planned in vCPUs through the
// actuator's executor and the EC2 driver against moto. An approve-mode
// policy adding 2 vCPUs plans t3.medium → t3.xlarge (the smallest t3 with
// 4 vCPUs and the current 4 GiB); once approved the instance is stopped,
// retyped and started; an operator's rollback restores t3.medium. An
// auto-mode resize whose signal does not improve is rolled back by the
// actuator itself. An instance already at the family's largest type gets
// no plan.
func TestAWSDriverResizeInVCPUs(t *testing.T) {
	ctx := context.Background()
	m := newMotoEC2(t)
	approved, auto, largest := m.run(t, ec2types.InstanceTypeT3Medium), m.run(t, ec2types.InstanceTypeT3Medium), m.run(t, ec2types.InstanceTypeT32xlarge)

	cfg := testConfig(actuator.ModeApprove)
	cfg.Cooldown = 0
	grow := alertPolicy("grow", "Saturated", actuator.ActionSpec{Kind: novacron.ActionResize, AddVCPUs: 2, MaxVCPUs: 16})
	growAuto := alertPolicy("grow-auto", "SaturatedNow", actuator.ActionSpec{Kind: novacron.ActionResize, AddVCPUs: 2, MaxVCPUs: 16})
	growAuto.Mode = actuator.ModeAuto
	growAuto.Verify = actuator.VerifySpec{Query: `max(novacron_vm_cpu_usage_ratio{vm_id="$vm_id"})`, Below: 0.85}
	cfg.Policies = []actuator.Policy{grow, growAuto}
	// The signal stays saturated whatever the size: verification fails.
	busy := actuator.QueryFunc(func(context.Context, string, time.Time) (float64, error) { return 0.97, nil })
	a, err := actuator.New(cfg, actuator.Settings{}, actuator.Deps{DB: sqliteDB(t), Drivers: map[string]novacron.Driver{"aws": m.drv}, Query: busy})
	require.NoError(t, err)
	require.NoError(t, a.Start(ctx))
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	r := apiRouter(a)
	running := ec2types.InstanceStateNameRunning

	// Approve mode: planned in vCPUs, named by type, run once approved.
	require.NoError(t, a.ConsumeEvents(ctx, []novacron.Event{alert("Saturated", "aws", approved)}))
	acts, err := a.List(ctx, actuator.ActionFilter{VMID: approved})
	require.NoError(t, err)
	require.Len(t, acts, 1)
	act := acts[0]
	require.Equal(t, actuator.StateProposed, act.State)
	require.Equal(t, actuator.Target{VCPUs: 2, MemoryBytes: 4 << 30, InstanceType: "t3.medium"}, act.Original)
	require.Equal(t, actuator.Target{VCPUs: 4, MemoryBytes: 16 << 30, InstanceType: "t3.xlarge"}, act.Desired)
	require.Contains(t, act.Explanation, "resize from t3.medium (2 vCPUs) to t3.xlarge (4 vCPUs)")
	require.Equal(t, ec2types.InstanceTypeT3Medium, m.instance(t, approved).InstanceType, "nothing happens before approval")

	w := do(t, r, "POST", "/api/v1/remediation/actions/"+act.ID+"/approve", opToken, map[string]string{"comment": "needs room"})
	require.Equal(t, 200, w.Code, w.Body.String())
	done := waitState(t, a, act.ID, actuator.StateSucceeded, actuator.StateFailed, actuator.StateRolledBack)
	require.Equal(t, actuator.StateSucceeded, done.State, "%s %s", done.Result, done.LastError)
	in := m.instance(t, approved)
	require.Equal(t, ec2types.InstanceTypeT3Xlarge, in.InstanceType)
	require.Equal(t, running, in.State.Name, "started again after the type change")

	w = do(t, r, "POST", "/api/v1/remediation/actions/"+act.ID+"/rollback", opToken, map[string]string{"comment": "too expensive"})
	require.Equal(t, 200, w.Code, w.Body.String())
	done = waitState(t, a, act.ID, actuator.StateRolledBack, actuator.StateFailed)
	require.Equal(t, actuator.StateRolledBack, done.State, "%s %s", done.Result, done.LastError)
	in = m.instance(t, approved)
	require.Equal(t, ec2types.InstanceTypeT3Medium, in.InstanceType, "the previous type restored")
	require.Equal(t, running, in.State.Name)

	// Auto mode: executed at once; the signal did not improve, so the
	// actuator rolls the type back by itself.
	require.NoError(t, a.ConsumeEvents(ctx, []novacron.Event{alert("SaturatedNow", "aws", auto)}))
	acts, err = a.List(ctx, actuator.ActionFilter{VMID: auto})
	require.NoError(t, err)
	require.Len(t, acts, 1)
	done = waitState(t, a, acts[0].ID, actuator.StateRolledBack, actuator.StateFailed, actuator.StateSucceeded)
	require.Equal(t, actuator.StateRolledBack, done.State, "%s %s", done.Result, done.LastError)
	require.Contains(t, done.Result, "did not improve")
	in = m.instance(t, auto)
	require.Equal(t, ec2types.InstanceTypeT3Medium, in.InstanceType, "rolled back to the previous type")
	require.Equal(t, running, in.State.Name)
	audit, err := a.Audit(ctx, actuator.AuditFilter{ActionID: done.ID})
	require.NoError(t, err)
	var events []string
	for _, e := range audit {
		events = append(events, e.Event)
	}
	require.Contains(t, events, "verify", "the driver showed t3.xlarge before the rollback")
	require.Contains(t, events, "rollback")

	// No t3 has 10 vCPUs: nothing is planned, nothing changes.
	require.NoError(t, a.ConsumeEvents(ctx, []novacron.Event{alert("Saturated", "aws", largest)}))
	acts, err = a.List(ctx, actuator.ActionFilter{VMID: largest})
	require.NoError(t, err)
	require.Empty(t, acts)
	require.Equal(t, ec2types.InstanceTypeT32xlarge, m.instance(t, largest).InstanceType)
}
