// Package libvirt is the collector for KVM/QEMU (and Xen) hosts managed by
// libvirt, at the start of NovaCron's pipeline: it reads one or many
// libvirt daemons and delivers series, inventory snapshots and VM
// lifecycle events to a novacron.Sink, which publishes them on the bus.
//
// Every interval, for each host, it makes one bulk domain-stats call
// (virConnectGetAllDomainStats: state, cpu-total, balloon, vcpu, interface
// and block groups) and reads the node's CPU and memory statistics, then
// maps the result into the metric catalogue (docs/metrics.md,
// internal/catalog) with provider="libvirt" and vm_id set to the domain
// UUID. Counters stay counters (nanoseconds become seconds, KiB become
// bytes); ratios are computed from two successive samples.
//
// Inventory (name, UUID, vCPUs, memory, disks, NICs, host, tags) comes from
// the domain XML, read when a domain first appears, after a lifecycle
// event, when its size changes, and every inventory_interval. Tags are the
// <novacron:tag name="..." value="..."/> elements of the domain's
// <metadata> in the TagsNamespace; the tenant label comes from the tag
// named by tenant_tag.
//
// Hosts are independent: each has its own connection, reconnected with
// exponential backoff, and its own deadline per cycle, so a host that goes
// away (or hangs) only turns its novacron_host_up to 0; the others keep
// being collected. Lifecycle events (started, stopped, crashed, suspended,
// resumed, migrated) arrive through libvirt's event callbacks and are
// delivered as novacron.Event at once.
//
// Connections use github.com/digitalocean/go-libvirt, a pure Go client of
// libvirt's RPC protocol: no cgo, no libvirt client library needed.
package libvirt
