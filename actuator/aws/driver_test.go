package aws

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/require"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/testserver"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testserver.StopMoto()
	os.Exit(code)
}

var testCreds = credentials.NewStaticCredentialsProvider("AKIDTESTING", "secret", "")

type env struct {
	moto *testserver.Moto
	ec2  *ec2.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	m := testserver.MotoServer(t)
	m.Reset(t)
	return &env{moto: m, ec2: ec2.NewFromConfig(aws.Config{Region: testserver.MotoRegion, Credentials: testCreds, BaseEndpoint: aws.String(m.URL())})}
}

func (e *env) driver(t *testing.T, endpoint string, mod func(*Config)) *Driver {
	t.Helper()
	cfg := NewDefaultConfig()
	cfg.Endpoint = e.moto.URL()
	if endpoint != "" {
		cfg.Endpoint = endpoint
	}
	cfg.Regions = []string{"eu-west-1", testserver.MotoRegion}
	cfg.PollInterval = 20 * time.Millisecond
	cfg.WaitTimeout = 20 * time.Second
	cfg.MaxAttempts = 2
	if mod != nil {
		mod(cfg)
	}
	d, err := New(*cfg, Settings{Credentials: testCreds})
	require.NoError(t, err)
	return d
}

// imageID is an x86_64 AMI of moto's, found once.
var imageID string

func (e *env) run(t *testing.T, typ ec2types.InstanceType, hibernation bool) string {
	t.Helper()
	ctx := context.Background()
	if imageID == "" {
		// Listing moto's ~1,000 AMIs takes seconds; they survive resets.
		imgs, err := e.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{Filters: []ec2types.Filter{{Name: aws.String("architecture"), Values: []string{"x86_64"}}}})
		require.NoError(t, err)
		imageID = *imgs.Images[0].ImageId
	}
	in := &ec2.RunInstancesInput{ImageId: aws.String(imageID), InstanceType: typ, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}
	if hibernation {
		in.HibernationOptions = &ec2types.HibernationOptionsRequest{Configured: aws.Bool(true)}
	}
	out, err := e.ec2.RunInstances(ctx, in)
	require.NoError(t, err)
	return *out.Instances[0].InstanceId
}

func (e *env) instance(t *testing.T, id string) ec2types.Instance {
	t.Helper()
	out, err := e.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	require.NoError(t, err)
	return out.Reservations[0].Instances[0]
}

func requireCode(t *testing.T, code string, err error) {
	t.Helper()
	require.Error(t, err)
	var ne *novacron.Error
	require.ErrorAs(t, err, &ne)
	require.Equal(t, code, ne.Code, "%v", err)
}

func TestConfig(t *testing.T) {
	require.NoError(t, NewDefaultConfig().Validate())
	cfg := NewDefaultConfig()
	cfg.Regions = []string{"nowhere", "us-east-1", "us-east-1"}
	cfg.RoleARN = "role"
	cfg.Endpoint = "ftp://x"
	cfg.WaitTimeout = 0
	cfg.PollInterval = time.Millisecond
	cfg.MaxAttempts = 0
	err := cfg.Validate()
	for _, want := range []string{"regions[0]:", "regions[2]: duplicate", "role_arn:", "endpoint:", "wait_timeout:", "poll_interval:", "max_attempts:"} {
		require.ErrorContains(t, err, want)
	}
	_, err = New(*cfg, Settings{})
	require.ErrorContains(t, err, "aws driver config")
}

func TestStartStopRebootAreIdempotent(t *testing.T) {
	e := newEnv(t)
	id := e.run(t, ec2types.InstanceTypeT3Micro, false)
	d := e.driver(t, "", nil)
	ctx := context.Background()
	require.Equal(t, "aws", d.Provider())

	vm, err := d.VM(ctx, id)
	require.NoError(t, err)
	require.Equal(t, novacron.PowerRunning, vm.State)
	require.Equal(t, "us-east-1", vm.Region, "found in the second region searched")
	require.Equal(t, novacron.Size{VCPUs: 2, MemoryBytes: 1 << 30, InstanceType: "t3.micro"}, vm.Size, "the type's vCPUs and memory")

	require.NoError(t, d.Start(ctx, id), "already running")
	require.NoError(t, d.Reboot(ctx, id))
	require.NoError(t, d.Stop(ctx, id, time.Minute))
	require.Equal(t, ec2types.InstanceStateNameStopped, e.instance(t, id).State.Name)
	require.NoError(t, d.Stop(ctx, id, time.Minute), "already stopped")
	requireCode(t, novacron.ECONFLICT, d.Reboot(ctx, id))
	require.NoError(t, d.Start(ctx, id))
	require.Equal(t, ec2types.InstanceStateNameRunning, e.instance(t, id).State.Name)

	requireCode(t, novacron.EUNSUPPORTED, d.Migrate(ctx, id, "us-east-1b"))
	requireCode(t, novacron.ENOTFOUND, d.Start(ctx, "i-0000000000000dead"))
	requireCode(t, novacron.EINVALID, d.Start(ctx, "vm-0001"))

	_, err = e.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	require.NoError(t, err)
	requireCode(t, novacron.ECONFLICT, d.Start(ctx, id))
}

func TestHibernate(t *testing.T) {
	e := newEnv(t)
	plain := e.run(t, ec2types.InstanceTypeT3Micro, false)
	hib := e.run(t, ec2types.InstanceTypeT3Micro, true)
	ctx := context.Background()
	d := e.driver(t, "", func(c *Config) { c.Hibernate = true })
	requireCode(t, novacron.ECONFLICT, d.Hibernate(ctx, plain))
	require.NoError(t, d.Stop(ctx, plain, 0), "hibernate option falls back to a stop")
	require.NoError(t, d.Hibernate(ctx, hib))
	require.Equal(t, ec2types.InstanceStateNameStopped, e.instance(t, hib).State.Name)
}

func TestTag(t *testing.T) {
	e := newEnv(t)
	id := e.run(t, ec2types.InstanceTypeT3Micro, false)
	d := e.driver(t, "", nil)
	ctx := context.Background()
	require.NoError(t, d.Tag(ctx, id, map[string]string{"novacron/owner": "ops", "Name": "web-1"}))
	require.NoError(t, d.Tag(ctx, id, map[string]string{"novacron/owner": "ops"}), "again")
	vm, err := d.VM(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "web-1", vm.Name)
	require.Equal(t, "ops", vm.Tags["novacron/owner"])
	requireCode(t, novacron.EINVALID, d.Tag(ctx, id, map[string]string{"aws:x": "y"}))
}

func TestResize(t *testing.T) {
	e := newEnv(t)
	id := e.run(t, ec2types.InstanceTypeT3Micro, false)
	d := e.driver(t, "", nil)
	ctx := context.Background()
	require.NoError(t, d.Resize(ctx, id, novacron.Size{InstanceType: "m5.large"}))
	in := e.instance(t, id)
	require.Equal(t, ec2types.InstanceTypeM5Large, in.InstanceType)
	require.Equal(t, ec2types.InstanceStateNameRunning, in.State.Name, "started again")
	require.NoError(t, d.Resize(ctx, id, novacron.Size{InstanceType: "m5.large"}), "already that type")

	requireCode(t, novacron.EINVALID, d.Resize(ctx, id, novacron.Size{InstanceType: "m6g.large"}))
	requireCode(t, novacron.EINVALID, d.Resize(ctx, id, novacron.Size{}))
	requireCode(t, novacron.EINVALID, d.Resize(ctx, id, novacron.Size{InstanceType: "nope.huge"}))
	require.Equal(t, ec2types.InstanceTypeM5Large, e.instance(t, id).InstanceType, "refused resizes change nothing")
	require.Equal(t, ec2types.InstanceStateNameRunning, e.instance(t, id).State.Name)
}

// TestResizeBySize resizes by vCPUs and memory: the driver picks the
// smallest type of the instance's family (from DescribeInstanceTypes)
// with at least the requested vCPUs and at least the requested, else the
// current, memory.
func TestResizeBySize(t *testing.T) {
	e := newEnv(t)
	id := e.run(t, ec2types.InstanceTypeT3Medium, false)
	d := e.driver(t, "", nil)
	ctx := context.Background()
	const gib = 1 << 30

	resolve := func(req novacron.Size, want string) {
		t.Helper()
		got, err := d.ResolveSize(ctx, id, req)
		require.NoError(t, err, "%+v", req)
		require.Equal(t, want, got.InstanceType, "%+v", req)
	}
	resolve(novacron.Size{VCPUs: 4}, "t3.xlarge")
	resolve(novacron.Size{VCPUs: 3}, "t3.xlarge")
	resolve(novacron.Size{VCPUs: 2}, "t3.medium") // the current memory (4 GiB) is kept
	resolve(novacron.Size{VCPUs: 1}, "t3.medium") // no t3 has one vCPU; memory still kept
	resolve(novacron.Size{VCPUs: 2, MemoryBytes: 1 * gib}, "t3.micro")
	resolve(novacron.Size{VCPUs: 2, MemoryBytes: 5 * gib}, "t3.large")
	resolve(novacron.Size{MemoryBytes: 20 * gib}, "t3.2xlarge")
	resolve(novacron.Size{VCPUs: 4, InstanceType: "m5.large"}, "m5.large") // a type wins
	got, err := d.ResolveSize(ctx, id, novacron.Size{VCPUs: 4})
	require.NoError(t, err)
	require.Equal(t, novacron.Size{VCPUs: 4, MemoryBytes: 16 * gib, InstanceType: "t3.xlarge"}, got)

	err = d.Resize(ctx, id, novacron.Size{VCPUs: 10})
	requireCode(t, novacron.EUNSUPPORTED, err)
	require.ErrorContains(t, err, id)
	require.ErrorContains(t, err, "no t3 instance type")
	require.ErrorContains(t, err, "at least 10 vCPUs")
	require.ErrorContains(t, err, "the largest is t3.2xlarge")
	requireCode(t, novacron.EINVALID, d.Resize(ctx, id, novacron.Size{VCPUs: -1}))
	require.Equal(t, ec2types.InstanceTypeT3Medium, e.instance(t, id).InstanceType, "refused resizes change nothing")

	require.NoError(t, d.Resize(ctx, id, novacron.Size{VCPUs: 4, MemoryBytes: 4 * gib}))
	in := e.instance(t, id)
	require.Equal(t, ec2types.InstanceTypeT3Xlarge, in.InstanceType)
	require.Equal(t, ec2types.InstanceStateNameRunning, in.State.Name, "started again")
	vm, err := d.VM(ctx, id)
	require.NoError(t, err)
	require.Equal(t, novacron.Size{VCPUs: 4, MemoryBytes: 16 * gib, InstanceType: "t3.xlarge"}, vm.Size)

	require.NoError(t, d.Resize(ctx, id, novacron.Size{VCPUs: 4}), "already the smallest fit")
	require.NoError(t, d.Resize(ctx, id, novacron.Size{InstanceType: "t3.medium"}), "back by type")
	require.Equal(t, ec2types.InstanceTypeT3Medium, e.instance(t, id).InstanceType)
}

// TestResolveSizeWithinFamily picks from the instance's own family
// (m5: 2, 4, 8, 16, ... vCPUs, and m5.metal of the m5.24xlarge's shape)
// and refuses a type of another architecture.
func TestResolveSizeWithinFamily(t *testing.T) {
	e := newEnv(t)
	id := e.run(t, ec2types.InstanceTypeM5Large, false)
	d := e.driver(t, "", nil)
	got, err := d.ResolveSize(context.Background(), id, novacron.Size{VCPUs: 6})
	require.NoError(t, err)
	require.Equal(t, "m5.2xlarge", got.InstanceType, "the smallest m5 with at least 6 vCPUs")
	got, err = d.ResolveSize(context.Background(), id, novacron.Size{VCPUs: 96})
	require.NoError(t, err)
	require.Equal(t, "m5.24xlarge", got.InstanceType, "a virtualised type before the metal one of the same shape")
	_, err = d.ResolveSize(context.Background(), id, novacron.Size{InstanceType: "m6g.large"})
	requireCode(t, novacron.EINVALID, err)
}

// TestResizeRestoresTypeWhenStartFails makes the first start after the
// type change fail with InsufficientInstanceCapacity, as EC2 does when a
// zone has none of the type left: the old type is restored and started.
func TestResizeRestoresTypeWhenStartFails(t *testing.T) {
	e := newEnv(t)
	id := e.run(t, ec2types.InstanceTypeT3Micro, false)
	u, _ := url.Parse(e.moto.URL())
	rp := httputil.NewSingleHostReverseProxy(u)
	var starts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if v, _ := url.ParseQuery(string(body)); v.Get("Action") == "StartInstances" && starts.Add(1) == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `<Response><Errors><Error><Code>InsufficientInstanceCapacity</Code><Message>We currently do not have sufficient m5.large capacity.</Message></Error></Errors><RequestID>r</RequestID></Response>`)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	d := e.driver(t, srv.URL, func(c *Config) { c.MaxAttempts = 1 })
	err := d.Resize(context.Background(), id, novacron.Size{InstanceType: "m5.large"})
	requireCode(t, novacron.EUNAVAILABLE, err)
	require.ErrorContains(t, err, "InsufficientInstanceCapacity")
	in := e.instance(t, id)
	require.Equal(t, ec2types.InstanceTypeT3Micro, in.InstanceType, "old type restored")
	require.Equal(t, ec2types.InstanceStateNameRunning, in.State.Name, "running again")
	require.Equal(t, int32(2), starts.Load())
}

func TestInvalidCredentials(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `<Response><Errors><Error><Code>AuthFailure</Code><Message>AWS was not able to validate the provided access credentials</Message></Error></Errors><RequestID>r</RequestID></Response>`)
	}))
	t.Cleanup(srv.Close)
	d := e.driver(t, srv.URL, nil)
	err := d.Start(context.Background(), "i-0123456789abcdef0")
	requireCode(t, novacron.EUNAUTHORIZED, err)
	require.Contains(t, novacron.ErrorMessage(err), "AuthFailure")
}
