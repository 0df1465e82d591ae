package aws

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	novacron "github.com/novacron/novacron"
)

// instance is what the collector keeps of one EC2 instance between
// discoveries.
type instance struct {
	vm         novacron.VM
	tagLabels  novacron.Labels // tag_<key> labels for novacron_vm_info
	monitoring bool            // detailed (1-minute) monitoring enabled
}

// PowerState maps an EC2 instance state name to a novacron.PowerState, as
// docs/metrics.md says: running; stopped and terminated → stopped;
// pending, stopping and shutting-down → unknown.
func PowerState(name ec2types.InstanceStateName) novacron.PowerState {
	switch name {
	case ec2types.InstanceStateNameRunning:
		return novacron.PowerRunning
	case ec2types.InstanceStateNameStopped, ec2types.InstanceStateNameTerminated:
		return novacron.PowerStopped
	default:
		return novacron.PowerUnknown
	}
}

// discover lists the target's instances (DescribeInstances, every page,
// with the configured filters), leaving out terminated ones, and fills in
// vCPUs and memory from the instance types.
func (c *Collector) discover(ctx context.Context, t *target, st *targetState, now time.Time) ([]*instance, error) {
	in := &ec2.DescribeInstancesInput{MaxResults: aws.Int32(1000)}
	for _, name := range slices.Sorted(maps.Keys(c.cfg.Filters)) {
		in.Filters = append(in.Filters, ec2types.Filter{Name: aws.String(name), Values: c.cfg.Filters[name]})
	}
	var out []*instance
	p := ec2.NewDescribeInstancesPaginator(t.ec2, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("DescribeInstances in %s (account %s): %s: %w", t.region, t.account, describeErr(err), err)
		}
		for _, r := range page.Reservations {
			for i := range r.Instances {
				inst := &r.Instances[i]
				if inst.State == nil || inst.State.Name == ec2types.InstanceStateNameTerminated || inst.InstanceId == nil {
					continue
				}
				out = append(out, c.toInstance(t, inst, now))
			}
		}
	}
	if err := c.fillTypes(ctx, t, st, out); err != nil {
		// Sizes are a nicety: the instances are still reported, without
		// memory (and with vCPUs from CpuOptions).
		c.log.Warn("aws DescribeInstanceTypes failed; memory sizes unknown this round", "account", t.account, "region", t.region, "err", describeErr(err))
		c.m.errCollect.Inc()
	}
	slices.SortFunc(out, func(a, b *instance) int {
		switch {
		case a.vm.ID < b.vm.ID:
			return -1
		case a.vm.ID > b.vm.ID:
			return 1
		}
		return 0
	})
	return out, nil
}

func (c *Collector) toInstance(t *target, inst *ec2types.Instance, now time.Time) *instance {
	tags := map[string]string{}
	for _, tg := range inst.Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	id := aws.ToString(inst.InstanceId)
	name := tags[c.cfg.NameTag]
	if name == "" {
		name = id
	}
	tenant := tags[c.cfg.TenantTag]
	if tenant == "" {
		tenant = t.account
	}
	zone := ""
	if inst.Placement != nil {
		zone = aws.ToString(inst.Placement.AvailabilityZone)
	}
	vm := novacron.VM{
		ID:        id,
		Name:      name,
		Provider:  Provider,
		Region:    t.region,
		Zone:      zone,
		Host:      zone,
		Tenant:    tenant,
		State:     PowerState(inst.State.Name),
		Size:      novacron.Size{InstanceType: string(inst.InstanceType)},
		UpdatedAt: now,
	}
	if co := inst.CpuOptions; co != nil && co.CoreCount != nil {
		tpc := aws.ToInt32(co.ThreadsPerCore)
		if tpc == 0 {
			tpc = 1
		}
		vm.Size.VCPUs = int(aws.ToInt32(co.CoreCount) * tpc)
	}
	for _, bd := range inst.BlockDeviceMappings {
		vm.Disks = append(vm.Disks, novacron.Disk{Name: aws.ToString(bd.DeviceName)})
	}
	for _, ni := range inst.NetworkInterfaces {
		nic := novacron.NIC{MAC: aws.ToString(ni.MacAddress), Network: aws.ToString(ni.SubnetId)}
		if ni.Attachment != nil && ni.Attachment.DeviceIndex != nil {
			nic.Name = "eth" + strconv.Itoa(int(*ni.Attachment.DeviceIndex))
		} else {
			nic.Name = aws.ToString(ni.NetworkInterfaceId)
		}
		vm.NICs = append(vm.NICs, nic)
	}
	var tagLabels novacron.Labels
	for _, k := range c.cfg.TagLabels {
		if v, ok := tags[k]; ok {
			if vm.Tags == nil {
				vm.Tags = map[string]string{}
			}
			vm.Tags[k] = v
			if v != "" {
				tagLabels = append(tagLabels, novacron.Label{Name: TagLabelName(k), Value: v})
			}
		}
	}
	return &instance{
		vm:         vm,
		tagLabels:  tagLabels,
		monitoring: inst.Monitoring != nil && inst.Monitoring.State == ec2types.MonitoringStateEnabled,
	}
}

// fillTypes sets vCPUs and memory from DescribeInstanceTypes, asking only
// for types not seen before in this target (the answer never changes).
func (c *Collector) fillTypes(ctx context.Context, t *target, st *targetState, insts []*instance) error {
	var missing []ec2types.InstanceType
	for _, in := range insts {
		it := ec2types.InstanceType(in.vm.Size.InstanceType)
		if _, ok := st.types[it]; !ok && it != "" && !slices.Contains(missing, it) {
			missing = append(missing, it)
		}
	}
	var firstErr error
	for len(missing) > 0 {
		n := min(len(missing), 100)
		batch := missing[:n]
		missing = missing[n:]
		out, err := t.ec2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: batch})
		if err != nil {
			firstErr = err
			continue
		}
		for _, info := range out.InstanceTypes {
			var sz typeSize
			if info.VCpuInfo != nil {
				sz.vcpus = int(aws.ToInt32(info.VCpuInfo.DefaultVCpus))
			}
			if info.MemoryInfo != nil {
				sz.memory = aws.ToInt64(info.MemoryInfo.SizeInMiB) << 20
			}
			st.types[info.InstanceType] = sz
		}
	}
	for _, in := range insts {
		if sz, ok := st.types[ec2types.InstanceType(in.vm.Size.InstanceType)]; ok {
			if in.vm.Size.VCPUs == 0 {
				in.vm.Size.VCPUs = sz.vcpus
			}
			in.vm.Size.MemoryBytes = sz.memory
		}
	}
	return firstErr
}

// typeSize is what DescribeInstanceTypes tells of one instance type.
type typeSize struct {
	vcpus  int
	memory int64
}

// inventory builds the target's snapshot: its VMs and one Host per zone,
// as clouds hide their hypervisors.
func inventory(t *target, insts []*instance, now time.Time) novacron.Inventory {
	inv := novacron.Inventory{Source: Provider + "/" + t.account + "/" + t.region, Time: now}
	zones := map[string]bool{}
	for _, in := range insts {
		inv.VMs = append(inv.VMs, in.vm)
		if z := in.vm.Zone; z != "" && !zones[z] {
			zones[z] = true
			inv.Hosts = append(inv.Hosts, novacron.Host{ID: z, Name: z, Provider: Provider, Region: t.region, Zone: z, UpdatedAt: now})
		}
	}
	return inv
}
