package aws

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	novacron "github.com/novacron/novacron"
)

const mib = 1 << 20

// typeInfo is what the driver needs to know of an instance type.
type typeInfo struct {
	name      ec2types.InstanceType
	vcpus     int
	memory    int64 // bytes
	archs     []ec2types.ArchitectureType
	bareMetal bool
}

func (t typeInfo) size() novacron.Size {
	return novacron.Size{VCPUs: t.vcpus, MemoryBytes: t.memory, InstanceType: string(t.name)}
}

func (t typeInfo) supports(arch ec2types.ArchitectureType) bool {
	return arch == "" || len(t.archs) == 0 || slices.Contains(t.archs, arch)
}

func newTypeInfo(it ec2types.InstanceTypeInfo) typeInfo {
	t := typeInfo{name: it.InstanceType, bareMetal: aws.ToBool(it.BareMetal)}
	if it.VCpuInfo != nil {
		t.vcpus = int(aws.ToInt32(it.VCpuInfo.DefaultVCpus))
	}
	if it.MemoryInfo != nil {
		t.memory = aws.ToInt64(it.MemoryInfo.SizeInMiB) * mib
	}
	if it.ProcessorInfo != nil {
		t.archs = it.ProcessorInfo.SupportedArchitectures
	}
	return t
}

// family returns the family of an instance type: "t3" of "t3.medium",
// "m7gd" of "m7gd.xlarge". The family name carries the generation and
// the processor (the "g" of Graviton, the "a" of AMD), so types of one
// family share both.
func family(t ec2types.InstanceType) (string, bool) {
	f, _, ok := strings.Cut(string(t), ".")
	return f, ok && f != ""
}

// instanceType returns what the driver knows of type t in region,
// asking DescribeInstanceTypes the first time. Types are immutable, so
// they are kept for the driver's life. An unknown type is EINVALID.
func (d *Driver) instanceType(ctx context.Context, c *ec2.Client, region string, t ec2types.InstanceType) (typeInfo, error) {
	key := region + "/" + string(t)
	d.mu.Lock()
	info, ok := d.types[key]
	d.mu.Unlock()
	if ok {
		return info, nil
	}
	out, err := c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []ec2types.InstanceType{t}})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && strings.HasPrefix(ae.ErrorCode(), "InvalidInstanceType") {
			return typeInfo{}, novacron.Errorf(novacron.EINVALID, "instance type %q does not exist in %s", t, region)
		}
		return typeInfo{}, mapErr(string(t), "describe instance type", err)
	}
	for _, it := range out.InstanceTypes {
		if it.InstanceType == t {
			info = newTypeInfo(it)
			d.mu.Lock()
			d.types[key] = info
			d.mu.Unlock()
			return info, nil
		}
	}
	return typeInfo{}, novacron.Errorf(novacron.EINVALID, "instance type %q does not exist in %s", t, region)
}

// familyTypes returns the instance types of family fam in region, asking
// DescribeInstanceTypes (filter instance-type=fam.*, every page) the
// first time.
func (d *Driver) familyTypes(ctx context.Context, c *ec2.Client, region, fam string) ([]typeInfo, error) {
	key := region + "/" + fam
	d.mu.Lock()
	infos, ok := d.families[key]
	d.mu.Unlock()
	if ok {
		return infos, nil
	}
	p := ec2.NewDescribeInstanceTypesPaginator(c, &ec2.DescribeInstanceTypesInput{
		Filters: []ec2types.Filter{{Name: aws.String("instance-type"), Values: []string{fam + ".*"}}},
	})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, mapErr(fam, "list the instance types of family", err)
		}
		for _, it := range out.InstanceTypes {
			if f, _ := family(it.InstanceType); f == fam {
				infos = append(infos, newTypeInfo(it))
			}
		}
	}
	slices.SortFunc(infos, func(a, b typeInfo) int {
		switch {
		case a.vcpus != b.vcpus:
			return a.vcpus - b.vcpus
		case a.memory != b.memory:
			if a.memory < b.memory {
				return -1
			}
			return 1
		case a.bareMetal != b.bareMetal:
			if b.bareMetal {
				return -1 // a virtualised type before the metal one of the same shape
			}
			return 1
		}
		return strings.Compare(string(a.name), string(b.name))
	})
	d.mu.Lock()
	d.families[key] = infos
	for _, t := range infos {
		d.types[region+"/"+string(t.name)] = t
	}
	d.mu.Unlock()
	return infos, nil
}

// ResolveSize returns the size Resize would give instance id for the
// request: the instance type named by size.InstanceType, or else the
// smallest type of the instance's family that supports its architecture
// and has at least size.VCPUs vCPUs (0: the current count) and at least
// size.MemoryBytes of memory (0: the current memory). Smallest means
// fewest vCPUs, then least memory, a virtualised type before a metal one
// of the same shape. The result names the type and its default vCPUs and
// memory; it may be the current type, when that is the smallest fit.
//
// Errors: EINVALID for a negative or empty request, an unknown type or
// one the instance's architecture cannot run; EUNSUPPORTED, naming the
// instance and the request, when no type of the family is large enough;
// the instance lookup's errors (ENOTFOUND, EUNAVAILABLE, ...). The
// actuator calls it when it plans a resize, so that the plan names the
// instance type it will set.
func (d *Driver) ResolveSize(ctx context.Context, id string, size novacron.Size) (novacron.Size, error) {
	c, in, err := d.describe(ctx, id)
	if err != nil {
		return novacron.Size{}, err
	}
	t, err := d.resolve(ctx, c, id, in, size)
	if err != nil {
		return novacron.Size{}, err
	}
	return t.size(), nil
}

func (d *Driver) resolve(ctx context.Context, c *ec2.Client, id string, in *ec2types.Instance, size novacron.Size) (typeInfo, error) {
	region := d.region(id)
	arch := ec2types.ArchitectureType(in.Architecture)
	if size.VCPUs < 0 || size.MemoryBytes < 0 {
		return typeInfo{}, novacron.Errorf(novacron.EINVALID, "resize of %s: vcpus and memory_bytes must not be negative, got %d and %d", id, size.VCPUs, size.MemoryBytes)
	}
	if size.InstanceType != "" {
		t, err := d.instanceType(ctx, c, region, ec2types.InstanceType(size.InstanceType))
		if err != nil {
			return typeInfo{}, err
		}
		if !t.supports(arch) {
			return typeInfo{}, novacron.Errorf(novacron.EINVALID, "instance type %s does not support %s's architecture %s (it supports %v)", t.name, id, arch, t.archs)
		}
		return t, nil
	}
	if size.VCPUs == 0 && size.MemoryBytes == 0 {
		return typeInfo{}, novacron.Errorf(novacron.EINVALID, "resize of %s needs an instance type, vcpus or memory_bytes", id)
	}
	cur, err := d.instanceType(ctx, c, region, in.InstanceType)
	if err != nil {
		return typeInfo{}, err
	}
	fam, ok := family(in.InstanceType)
	if !ok {
		return typeInfo{}, novacron.Errorf(novacron.EUNSUPPORTED, "instance %s has type %q, which names no family: resize it by instance type", id, in.InstanceType)
	}
	wantCPU, wantMem := size.VCPUs, size.MemoryBytes
	if wantCPU == 0 {
		wantCPU = cur.vcpus
	}
	if wantMem == 0 {
		wantMem = cur.memory
	}
	types, err := d.familyTypes(ctx, c, region, fam)
	if err != nil {
		return typeInfo{}, err
	}
	var largest typeInfo
	for _, t := range types {
		if !t.supports(arch) {
			continue
		}
		if t.vcpus >= wantCPU && t.memory >= wantMem {
			return t, nil
		}
		largest = t
	}
	msg := fmt.Sprintf("no %s instance type for %s has at least %d vCPUs and %s of memory (requested %s)", fam, id, wantCPU, gib(wantMem), describeSize(size))
	if largest.name != "" {
		msg += fmt.Sprintf("; the largest is %s with %d vCPUs and %s", largest.name, largest.vcpus, gib(largest.memory))
	}
	return typeInfo{}, &novacron.Error{Code: novacron.EUNSUPPORTED, Message: msg}
}

func gib(b int64) string {
	return fmt.Sprintf("%g GiB", float64(b)/(1<<30))
}

func describeSize(s novacron.Size) string {
	var parts []string
	if s.VCPUs > 0 {
		parts = append(parts, fmt.Sprintf("%d vCPUs", s.VCPUs))
	}
	if s.MemoryBytes > 0 {
		parts = append(parts, gib(s.MemoryBytes))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}
