package aws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	novacron "github.com/novacron/novacron"
)

// Provider is the provider name the driver acts on.
const Provider = "aws"

// Settings are what the binary injects into the driver.
type Settings struct {
	// Logger receives one line per action taken. Nil discards.
	Logger *slog.Logger
	// Credentials replaces the standard chain's base credentials. Nil:
	// the chain.
	Credentials aws.CredentialsProvider
	// HTTPClient sends the API requests. Nil: the SDK's default.
	HTTPClient aws.HTTPClient
}

// Driver performs VM actions on EC2 instances. It implements
// novacron.Driver; every method is idempotent and safe for concurrent use
// on different instances. VM IDs are instance IDs ("i-0abc…"), looked up
// in the configured regions in order (the region found is remembered).
type Driver struct {
	cfg     Config
	log     *slog.Logger
	clients map[string]*ec2.Client // by region

	mu       sync.Mutex
	regionOf map[string]string     // instance ID → region
	types    map[string]typeInfo   // "region/type" → the type
	families map[string][]typeInfo // "region/family" → its types, smallest first
}

var _ novacron.Driver = (*Driver)(nil)

// New builds a driver. It returns the validation errors of cfg and an
// error when the AWS configuration cannot be loaded; it makes no AWS call.
func New(cfg Config, set Settings) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("aws driver config: %w", err)
	}
	log := set.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(cfg.Regions[0]),
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
				o.StandardOptions = append(o.StandardOptions, func(so *retry.StandardOptions) { so.MaxAttempts = cfg.MaxAttempts })
			})
		}),
	}
	if cfg.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(cfg.Profile))
	}
	if set.Credentials != nil {
		opts = append(opts, awsconfig.WithCredentialsProvider(set.Credentials))
	}
	if set.HTTPClient != nil {
		opts = append(opts, awsconfig.WithHTTPClient(set.HTTPClient))
	}
	base, err := awsconfig.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("aws driver: load AWS configuration (profile %q): %w", cfg.Profile, err)
	}
	if cfg.Endpoint != "" {
		base.BaseEndpoint = aws.String(cfg.Endpoint)
	}
	if cfg.RoleARN != "" {
		prov := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(base), cfg.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "novacron-actuator"
			if cfg.ExternalID != "" {
				o.ExternalID = aws.String(cfg.ExternalID)
			}
		})
		base.Credentials = aws.NewCredentialsCache(prov)
	}
	d := &Driver{cfg: cfg, log: log.With("component", "actuator/aws"), clients: map[string]*ec2.Client{}, regionOf: map[string]string{},
		types: map[string]typeInfo{}, families: map[string][]typeInfo{}}
	for _, r := range cfg.Regions {
		d.clients[r] = ec2.NewFromConfig(base, func(o *ec2.Options) { o.Region = r })
	}
	return d, nil
}

// Provider returns "aws".
func (d *Driver) Provider() string { return Provider }

// mapErr turns an AWS error into a *novacron.Error.
func mapErr(id, what string, err error) error {
	if err == nil {
		return nil
	}
	var ne *novacron.Error
	if errors.As(err, &ne) {
		return err
	}
	code := novacron.EINTERNAL
	msg := fmt.Sprintf("%s %s failed", what, id)
	var ae smithy.APIError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code = novacron.EUNAVAILABLE
	case retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary:
		code, msg = novacron.EUNAVAILABLE, msg+": AWS throttled the request"
	case errors.As(err, &ae):
		c := ae.ErrorCode()
		msg = fmt.Sprintf("%s: %s: %s", msg, c, ae.ErrorMessage())
		switch {
		case strings.HasPrefix(c, "InvalidInstanceID.NotFound"):
			code = novacron.ENOTFOUND
		case c == "IncorrectInstanceState", c == "IncorrectState", c == "UnsupportedOperation", c == "UnsupportedHibernationConfiguration":
			code = novacron.ECONFLICT
		case c == "AuthFailure", c == "UnauthorizedOperation", c == "AccessDenied", strings.HasPrefix(c, "InvalidClientTokenId"), c == "ExpiredToken":
			code = novacron.EUNAUTHORIZED
		case c == "InsufficientInstanceCapacity", c == "InternalError", c == "ServiceUnavailable", c == "Unavailable":
			code = novacron.EUNAVAILABLE
		case strings.HasPrefix(c, "Invalid"), strings.HasPrefix(c, "Missing"):
			code = novacron.EINVALID
		}
	default:
		// Transport failures (connection refused, DNS): retry later.
		code = novacron.EUNAVAILABLE
	}
	return &novacron.Error{Code: code, Message: msg, Err: err}
}

// describe finds the instance in the configured regions.
func (d *Driver) describe(ctx context.Context, id string) (*ec2.Client, *ec2types.Instance, error) {
	if !strings.HasPrefix(id, "i-") {
		return nil, nil, novacron.Errorf(novacron.EINVALID, "%q is not an EC2 instance ID (i-…)", id)
	}
	d.mu.Lock()
	known := d.regionOf[id]
	d.mu.Unlock()
	regions := d.cfg.Regions
	if known != "" {
		regions = append([]string{known}, slices.DeleteFunc(slices.Clone(regions), func(r string) bool { return r == known })...)
	}
	for _, r := range regions {
		c := d.clients[r]
		out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			if novacron.ErrorCode(mapErr(id, "describe", err)) == novacron.ENOTFOUND {
				continue
			}
			return nil, nil, mapErr(id, "describe instance", err)
		}
		for _, res := range out.Reservations {
			for i := range res.Instances {
				if aws.ToString(res.Instances[i].InstanceId) == id {
					d.mu.Lock()
					d.regionOf[id] = r
					d.mu.Unlock()
					return c, &res.Instances[i], nil
				}
			}
		}
	}
	return nil, nil, novacron.Errorf(novacron.ENOTFOUND, "instance %s not found in %s", id, strings.Join(d.cfg.Regions, ", "))
}

func stateOf(in *ec2types.Instance) ec2types.InstanceStateName {
	if in.State == nil {
		return ""
	}
	return in.State.Name
}

// VM returns the observed state of the instance. Its size is its
// instance type with the type's memory and vCPUs (the instance's CPU
// options when EC2 reports them, else the type's default), so that the
// actuator can plan resizes in vCPUs.
func (d *Driver) VM(ctx context.Context, id string) (novacron.VM, error) {
	c, in, err := d.describe(ctx, id)
	if err != nil {
		return novacron.VM{}, err
	}
	vm := novacron.VM{ID: id, Name: id, Provider: Provider, Size: novacron.Size{InstanceType: string(in.InstanceType)}, UpdatedAt: time.Now()}
	vm.Region = d.region(id)
	if in.InstanceType != "" {
		t, err := d.instanceType(ctx, c, vm.Region, in.InstanceType)
		if err != nil {
			return novacron.VM{}, fmt.Errorf("instance %s: %w", id, err)
		}
		vm.Size.VCPUs, vm.Size.MemoryBytes = t.vcpus, t.memory
	}
	if in.Placement != nil {
		vm.Zone = aws.ToString(in.Placement.AvailabilityZone)
		vm.Host = vm.Zone
	}
	switch stateOf(in) {
	case ec2types.InstanceStateNameRunning:
		vm.State = novacron.PowerRunning
	case ec2types.InstanceStateNameStopped, ec2types.InstanceStateNameTerminated:
		vm.State = novacron.PowerStopped
	default:
		vm.State = novacron.PowerUnknown
	}
	if co := in.CpuOptions; co != nil && co.CoreCount != nil {
		vm.Size.VCPUs = int(aws.ToInt32(co.CoreCount) * max(aws.ToInt32(co.ThreadsPerCore), 1))
	}
	for _, t := range in.Tags {
		if vm.Tags == nil {
			vm.Tags = map[string]string{}
		}
		vm.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		if aws.ToString(t.Key) == "Name" && aws.ToString(t.Value) != "" {
			vm.Name = aws.ToString(t.Value)
		}
	}
	return vm, nil
}

func (d *Driver) waitRunning(ctx context.Context, c *ec2.Client, id string) error {
	w := ec2.NewInstanceRunningWaiter(c, func(o *ec2.InstanceRunningWaiterOptions) {
		o.MinDelay = d.cfg.PollInterval
		o.MaxDelay = max(d.cfg.PollInterval, 120*time.Second)
	})
	if err := w.Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, d.cfg.WaitTimeout); err != nil {
		return d.waitErr(id, "running", err)
	}
	return nil
}

func (d *Driver) waitStopped(ctx context.Context, c *ec2.Client, id string, timeout time.Duration) error {
	w := ec2.NewInstanceStoppedWaiter(c, func(o *ec2.InstanceStoppedWaiterOptions) {
		o.MinDelay = d.cfg.PollInterval
		o.MaxDelay = max(d.cfg.PollInterval, 120*time.Second)
	})
	if err := w.Wait(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}, timeout); err != nil {
		return d.waitErr(id, "stopped", err)
	}
	return nil
}

func (d *Driver) waitErr(id, state string, err error) error {
	if strings.Contains(err.Error(), "exceeded max wait time") {
		return &novacron.Error{Code: novacron.EUNAVAILABLE, Message: fmt.Sprintf("instance %s not %s within %s", id, state, d.cfg.WaitTimeout), Err: err}
	}
	if strings.Contains(err.Error(), "waiter state transitioned to Failure") {
		return &novacron.Error{Code: novacron.ECONFLICT, Message: fmt.Sprintf("instance %s cannot become %s (terminated or failed)", id, state), Err: err}
	}
	return mapErr(id, "wait for "+state, err)
}

func gone(s ec2types.InstanceStateName) bool {
	return s == ec2types.InstanceStateNameTerminated || s == ec2types.InstanceStateNameShuttingDown
}

// Start powers the instance on and waits until it runs. A running
// instance is left alone; a stopping one is first waited for.
func (d *Driver) Start(ctx context.Context, id string) error {
	c, in, err := d.describe(ctx, id)
	if err != nil {
		return err
	}
	switch s := stateOf(in); {
	case s == ec2types.InstanceStateNameRunning:
		return nil
	case gone(s):
		return novacron.Errorf(novacron.ECONFLICT, "instance %s is %s and cannot start", id, s)
	case s == ec2types.InstanceStateNamePending:
		return d.waitRunning(ctx, c, id)
	case s == ec2types.InstanceStateNameStopping:
		if err := d.waitStopped(ctx, c, id, d.cfg.WaitTimeout); err != nil {
			return err
		}
	}
	if _, err := c.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}}); err != nil {
		return mapErr(id, "start instance", err)
	}
	d.log.Info("aws instance starting", "vm_id", id)
	return d.waitRunning(ctx, c, id)
}

// Stop shuts the instance down and waits until it is stopped. With
// hibernate configured, instances launched with hibernation enabled are
// hibernated instead. When the graceful stop takes longer than timeout
// (zero: wait_timeout), the instance is forced off.
func (d *Driver) Stop(ctx context.Context, id string, timeout time.Duration) error {
	return d.stop(ctx, id, timeout, d.cfg.Hibernate, false)
}

// Hibernate stops the instance with hibernation (RAM saved to its EBS root
// volume), whatever the hibernate option says. The instance must have been
// launched with hibernation configured, else the error is ECONFLICT.
func (d *Driver) Hibernate(ctx context.Context, id string) error {
	return d.stop(ctx, id, 0, true, true)
}

func (d *Driver) stop(ctx context.Context, id string, timeout time.Duration, hibernate, mustHibernate bool) error {
	if timeout <= 0 {
		timeout = d.cfg.WaitTimeout
	}
	c, in, err := d.describe(ctx, id)
	if err != nil {
		return err
	}
	configured := in.HibernationOptions != nil && aws.ToBool(in.HibernationOptions.Configured)
	if mustHibernate && !configured {
		return novacron.Errorf(novacron.ECONFLICT, "instance %s was not launched with hibernation configured", id)
	}
	switch s := stateOf(in); {
	case s == ec2types.InstanceStateNameStopped:
		return nil
	case gone(s):
		return novacron.Errorf(novacron.ECONFLICT, "instance %s is %s", id, s)
	case s == ec2types.InstanceStateNameStopping:
		return d.waitStopped(ctx, c, id, d.cfg.WaitTimeout)
	case s == ec2types.InstanceStateNamePending:
		if err := d.waitRunning(ctx, c, id); err != nil {
			return err
		}
	}
	in2 := &ec2.StopInstancesInput{InstanceIds: []string{id}}
	if hibernate && configured {
		in2.Hibernate = aws.Bool(true)
	}
	if _, err := c.StopInstances(ctx, in2); err != nil {
		return mapErr(id, "stop instance", err)
	}
	d.log.Info("aws instance stopping", "vm_id", id, "hibernate", aws.ToBool(in2.Hibernate))
	err = d.waitStopped(ctx, c, id, timeout)
	if novacron.ErrorCode(err) != novacron.EUNAVAILABLE || ctx.Err() != nil || aws.ToBool(in2.Hibernate) {
		return err
	}
	d.log.Warn("aws instance did not stop in time; forcing it off", "vm_id", id, "timeout", timeout)
	if _, err := c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}, Force: aws.Bool(true)}); err != nil {
		return mapErr(id, "force stop instance", err)
	}
	return d.waitStopped(ctx, c, id, d.cfg.WaitTimeout)
}

// Reboot restarts the guest of a running instance (RebootInstances, no
// wait: the instance stays running). A stopped instance is ECONFLICT.
func (d *Driver) Reboot(ctx context.Context, id string) error {
	c, in, err := d.describe(ctx, id)
	if err != nil {
		return err
	}
	if s := stateOf(in); s != ec2types.InstanceStateNameRunning {
		return novacron.Errorf(novacron.ECONFLICT, "instance %s is %s, not running: nothing to reboot", id, s)
	}
	if _, err := c.RebootInstances(ctx, &ec2.RebootInstancesInput{InstanceIds: []string{id}}); err != nil {
		return mapErr(id, "reboot instance", err)
	}
	d.log.Info("aws instance rebooted", "vm_id", id)
	return nil
}

// Resize changes the instance type. The type is size.InstanceType when
// set (VCPUs and MemoryBytes are then ignored: the type decides them);
// otherwise it is the smallest type of the instance's family with at
// least size.VCPUs vCPUs and size.MemoryBytes of memory, zero meaning the
// current value (see ResolveSize). The type must exist and support the
// instance's architecture; EUNSUPPORTED when no type of the family fits.
// A running instance is stopped, modified and started again; if that
// start fails, the old type is restored and the instance started with it,
// and the error is returned. An instance already of that type is left
// alone.
func (d *Driver) Resize(ctx context.Context, id string, size novacron.Size) error {
	c, in, err := d.describe(ctx, id)
	if err != nil {
		return err
	}
	old := in.InstanceType
	if size.InstanceType != "" && ec2types.InstanceType(size.InstanceType) == old {
		return nil
	}
	if gone(stateOf(in)) {
		return novacron.Errorf(novacron.ECONFLICT, "instance %s is %s", id, stateOf(in))
	}
	t, err := d.resolve(ctx, c, id, in, size)
	if err != nil {
		return err
	}
	want := t.name
	if old == want {
		return nil
	}
	wasRunning := stateOf(in) != ec2types.InstanceStateNameStopped
	if wasRunning {
		if err := d.stop(ctx, id, 0, false, false); err != nil {
			return err
		}
	}
	if err := d.setType(ctx, c, id, want); err != nil {
		return err
	}
	d.log.Info("aws instance resized", "vm_id", id, "from", old, "to", want)
	if !wasRunning {
		return nil
	}
	startErr := d.Start(ctx, id)
	if startErr == nil {
		return nil
	}
	d.log.Warn("aws instance failed to start with its new type; restoring the old one", "vm_id", id, "type", want, "old_type", old, "err", startErr)
	if err := d.setType(ctx, c, id, old); err != nil {
		return fmt.Errorf("restore type %s of %s after failed start (%w): %w", old, id, startErr, err)
	}
	if err := d.Start(ctx, id); err != nil {
		return fmt.Errorf("start %s with its old type %s after failed start with %s (%w): %w", id, old, want, startErr, err)
	}
	return &novacron.Error{Code: novacron.ErrorCode(startErr), Message: fmt.Sprintf("instance %s did not start as %s; restored %s", id, want, old), Err: startErr}
}

func (d *Driver) setType(ctx context.Context, c *ec2.Client, id string, t ec2types.InstanceType) error {
	_, err := c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{
		InstanceId:   aws.String(id),
		InstanceType: &ec2types.AttributeValue{Value: aws.String(string(t))},
	})
	return mapErr(id, "set instance type "+string(t)+" of", err)
}

func (d *Driver) region(id string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.regionOf[id]
}

// Migrate is not possible on EC2, which hides its hosts: EUNSUPPORTED.
func (d *Driver) Migrate(_ context.Context, id, _ string) error {
	return novacron.Errorf(novacron.EUNSUPPORTED, "EC2 cannot move instance %s to a chosen host", id)
}

// Tag sets tags on the instance (CreateTags; existing keys are
// overwritten, others kept). Setting tags already there is harmless.
func (d *Driver) Tag(ctx context.Context, id string, tags map[string]string) error {
	if len(tags) == 0 {
		return nil
	}
	c, _, err := d.describe(ctx, id)
	if err != nil {
		return err
	}
	var ts []ec2types.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		if k == "" || strings.HasPrefix(strings.ToLower(k), "aws:") {
			return novacron.Errorf(novacron.EINVALID, "tag key %q is not allowed (empty or aws: prefix)", k)
		}
		ts = append(ts, ec2types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: ts}); err != nil {
		return mapErr(id, "tag instance", err)
	}
	return nil
}
