// Package libvirt is NovaCron's actuator driver for KVM/QEMU (and Xen)
// hosts managed by libvirt, at the end of the pipeline: the actuator's
// reconciler calls it, through the provider-neutral novacron.Driver
// interface, to start, stop, reboot, resize and migrate VMs. It also
// offers libvirt-specific operations as methods: creating VMs from a
// template catalogue (domain XML built with libvirt.org/go/libvirtxml,
// disks from storage pools, NICs on networks or bridges, an optional
// cloud-init NoCloud ISO), deleting them, suspending and resuming, storage
// volumes, attaching and detaching disks and NICs, and live migration with
// a bandwidth limit, progress, cancellation and a timeout.
//
// VM IDs are domain UUIDs, the vm_id the libvirt collector reports. The
// driver finds a VM by asking every configured host; a VM running on one
// host wins over a stale definition left on another.
//
// Every operation is idempotent (starting a running VM succeeds and does
// nothing; deleting a missing VM succeeds) and every failure is a
// *novacron.Error: ENOTFOUND, ECONFLICT (the VM's state does not allow
// it), EUNSUPPORTED (this hypervisor driver cannot), EINVALID (bad
// request) or EUNAVAILABLE (a host did not answer: retry).
package libvirt
