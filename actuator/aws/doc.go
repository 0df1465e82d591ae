// Package aws is the actuator's Amazon EC2 driver: it carries out VM
// actions decided upstream (start, stop with an optional hibernate,
// reboot, resize, tag) on EC2 instances, at the end of the pipeline. A
// resize names an instance type, or vCPUs and memory that it maps to the
// smallest type of the instance's family (ResolveSize, from
// DescribeInstanceTypes). It implements novacron.Driver: every action reads the
// instance's observed state first and does nothing when it already
// matches, waits on state with the SDK's waiters, and reports failures as
// *novacron.Error with the domain's codes.
package aws
