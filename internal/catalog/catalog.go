package catalog

import "slices"

// Label names. Every VM series carries the VM identity labels
// (VMIdentityLabels), every host series the host identity labels
// (HostIdentityLabels); a few metrics add one more label, listed in their
// Metric.Labels.
const (
	// LabelProvider is the collector's provider: "sim", "libvirt",
	// "vsphere", "aws", "azure", "gcp".
	LabelProvider = "provider"
	// LabelRegion is the provider's region (cloud) or site/datacenter name.
	LabelRegion = "region"
	// LabelZone is the availability zone, or the cluster within a site.
	LabelZone = "zone"
	// LabelHost is the hypervisor host ID; clouds use the zone instead.
	LabelHost = "host"
	// LabelTenant is the owning tenant, project or account, from a tag.
	LabelTenant = "tenant"
	// LabelVMID is the provider's stable VM ID (novacron.VM.ID).
	LabelVMID = "vm_id"
	// LabelVM is the VM's display name (novacron.VM.Name).
	LabelVM = "vm"
	// LabelInstanceType is the provider's size name, on novacron_vm_info only.
	LabelInstanceType = "instance_type"
	// LabelState is a power state (novacron.PowerState) on
	// novacron_vm_power_state.
	LabelState = "state"
	// LabelDevice is a block device ("vda", "nvme0n1", "/dev/sdb").
	LabelDevice = "device"
	// LabelInterface is a network interface ("eth0", "vnet3").
	LabelInterface = "interface"
	// LabelCollector names the collector type on collector service metrics.
	LabelCollector = "collector"
	// LabelStage says where a collector error happened: StageCollect or
	// StageDeliver.
	LabelStage = "stage"
)

// Values of LabelStage.
const (
	// StageCollect is reading from the source.
	StageCollect = "collect"
	// StageDeliver is handing series, inventory or events to the sink.
	StageDeliver = "deliver"
)

// VM metric names.
const (
	VMInfo                        = "novacron_vm_info"
	VMUp                          = "novacron_vm_up"
	VMPowerState                  = "novacron_vm_power_state"
	VMVCPUs                       = "novacron_vm_vcpus"
	VMCPUUsageRatio               = "novacron_vm_cpu_usage_ratio"
	VMCPUSecondsTotal             = "novacron_vm_cpu_seconds_total"
	VMCPUStealSecondsTotal        = "novacron_vm_cpu_steal_seconds_total"
	VMMemoryBytes                 = "novacron_vm_memory_bytes"
	VMMemoryUsedBytes             = "novacron_vm_memory_used_bytes"
	VMMemoryUsageRatio            = "novacron_vm_memory_usage_ratio"
	VMDiskReadBytesTotal          = "novacron_vm_disk_read_bytes_total"
	VMDiskWriteBytesTotal         = "novacron_vm_disk_write_bytes_total"
	VMDiskReadOpsTotal            = "novacron_vm_disk_read_ops_total"
	VMDiskWriteOpsTotal           = "novacron_vm_disk_write_ops_total"
	VMDiskUsedBytes               = "novacron_vm_disk_used_bytes"
	VMDiskCapacityBytes           = "novacron_vm_disk_capacity_bytes"
	VMDiskUsageRatio              = "novacron_vm_disk_usage_ratio"
	VMNetworkReceiveBytesTotal    = "novacron_vm_network_receive_bytes_total"
	VMNetworkTransmitBytesTotal   = "novacron_vm_network_transmit_bytes_total"
	VMNetworkReceivePacketsTotal  = "novacron_vm_network_receive_packets_total"
	VMNetworkTransmitPacketsTotal = "novacron_vm_network_transmit_packets_total"
)

// Host metric names.
const (
	HostUp                   = "novacron_host_up"
	HostCPUs                 = "novacron_host_cpus"
	HostCPUUsageRatio        = "novacron_host_cpu_usage_ratio"
	HostCPUSecondsTotal      = "novacron_host_cpu_seconds_total"
	HostMemoryBytes          = "novacron_host_memory_bytes"
	HostMemoryUsedBytes      = "novacron_host_memory_used_bytes"
	HostMemoryUsageRatio     = "novacron_host_memory_usage_ratio"
	HostVMs                  = "novacron_host_vms"
	HostVCPUsAllocated       = "novacron_host_vcpus_allocated"
	HostMemoryAllocatedBytes = "novacron_host_memory_allocated_bytes"
)

// Collector service metric names. Every collector registers them with a
// constant LabelCollector label and the help text below, so several
// collectors can share one registry.
const (
	CollectorSeriesTotal          = "novacron_collector_series_total"
	CollectorSamplesTotal         = "novacron_collector_samples_total"
	CollectorCycleDurationSeconds = "novacron_collector_cycle_duration_seconds"
	CollectorErrorsTotal          = "novacron_collector_errors_total"

	CollectorSeriesTotalHelp          = "Series delivered to the sink by the collector."
	CollectorSamplesTotalHelp         = "Samples delivered to the sink by the collector."
	CollectorCycleDurationSecondsHelp = "Wall-clock time of one collection cycle, from reading the source to the sink's acknowledgement."
	CollectorErrorsTotalHelp          = "Collection cycles or deliveries that failed, by stage (collect or deliver)."
)

// Type is a Prometheus metric type.
type Type string

// Metric types used in the catalogue.
const (
	Gauge     Type = "gauge"
	Counter   Type = "counter"
	Histogram Type = "histogram"
)

// Subject is what a metric describes, and so which identity labels it has.
type Subject string

// Subjects.
const (
	SubjectVM        Subject = "vm"
	SubjectHost      Subject = "host"
	SubjectCollector Subject = "collector"
)

// Metric describes one catalogue entry.
type Metric struct {
	Name    string
	Type    Type
	Subject Subject
	// Unit is the base unit ("seconds", "bytes", "ratio") or "" for counts
	// and states.
	Unit string
	Help string
	// Labels are the labels the metric has beyond its subject's identity
	// labels.
	Labels []string
}

// VMIdentityLabels returns the labels every VM series carries, sorted.
func VMIdentityLabels() []string {
	return []string{LabelHost, LabelProvider, LabelRegion, LabelTenant, LabelVM, LabelVMID, LabelZone}
}

// HostIdentityLabels returns the labels every host series carries, sorted.
func HostIdentityLabels() []string {
	return []string{LabelHost, LabelProvider, LabelRegion, LabelZone}
}

var metrics = []Metric{
	{VMInfo, Gauge, SubjectVM, "", "Always 1; carries slowly changing VM attributes such as instance_type.", []string{LabelInstanceType}},
	{VMUp, Gauge, SubjectVM, "", "1 when the VM is running, 0 otherwise.", nil},
	{VMPowerState, Gauge, SubjectVM, "", "1 for the VM's current power state, 0 for each other state.", []string{LabelState}},
	{VMVCPUs, Gauge, SubjectVM, "", "Virtual CPUs allocated to the VM.", nil},
	{VMCPUUsageRatio, Gauge, SubjectVM, "ratio", "CPU used by the VM as a fraction (0..1) of its allocated vCPUs, averaged over the sample period.", nil},
	{VMCPUSecondsTotal, Counter, SubjectVM, "seconds", "CPU time consumed by the VM's vCPUs, summed over vCPUs.", nil},
	{VMCPUStealSecondsTotal, Counter, SubjectVM, "seconds", "Time the VM's vCPUs were ready to run but not scheduled by the hypervisor (steal), summed over vCPUs.", nil},
	{VMMemoryBytes, Gauge, SubjectVM, "bytes", "Memory configured for the VM.", nil},
	{VMMemoryUsedBytes, Gauge, SubjectVM, "bytes", "Memory in use by the guest (configured minus available), excluding reclaimable caches.", nil},
	{VMMemoryUsageRatio, Gauge, SubjectVM, "ratio", "novacron_vm_memory_used_bytes / novacron_vm_memory_bytes.", nil},
	{VMDiskReadBytesTotal, Counter, SubjectVM, "bytes", "Bytes read from the VM's block device.", []string{LabelDevice}},
	{VMDiskWriteBytesTotal, Counter, SubjectVM, "bytes", "Bytes written to the VM's block device.", []string{LabelDevice}},
	{VMDiskReadOpsTotal, Counter, SubjectVM, "", "Read operations completed on the VM's block device.", []string{LabelDevice}},
	{VMDiskWriteOpsTotal, Counter, SubjectVM, "", "Write operations completed on the VM's block device.", []string{LabelDevice}},
	{VMDiskUsedBytes, Gauge, SubjectVM, "bytes", "Bytes used on the device's file system as the guest sees it.", []string{LabelDevice}},
	{VMDiskCapacityBytes, Gauge, SubjectVM, "bytes", "Capacity of the device (or its file system when only that is known).", []string{LabelDevice}},
	{VMDiskUsageRatio, Gauge, SubjectVM, "ratio", "novacron_vm_disk_used_bytes / novacron_vm_disk_capacity_bytes.", []string{LabelDevice}},
	{VMNetworkReceiveBytesTotal, Counter, SubjectVM, "bytes", "Bytes received by the VM's network interface.", []string{LabelInterface}},
	{VMNetworkTransmitBytesTotal, Counter, SubjectVM, "bytes", "Bytes transmitted by the VM's network interface.", []string{LabelInterface}},
	{VMNetworkReceivePacketsTotal, Counter, SubjectVM, "", "Packets received by the VM's network interface.", []string{LabelInterface}},
	{VMNetworkTransmitPacketsTotal, Counter, SubjectVM, "", "Packets transmitted by the VM's network interface.", []string{LabelInterface}},

	{HostUp, Gauge, SubjectHost, "", "1 when the host answers its collector, 0 otherwise.", nil},
	{HostCPUs, Gauge, SubjectHost, "", "Logical CPUs of the host.", nil},
	{HostCPUUsageRatio, Gauge, SubjectHost, "ratio", "CPU busy on the host as a fraction (0..1) of its logical CPUs, averaged over the sample period.", nil},
	{HostCPUSecondsTotal, Counter, SubjectHost, "seconds", "Busy CPU time of the host, summed over logical CPUs.", nil},
	{HostMemoryBytes, Gauge, SubjectHost, "bytes", "Physical memory of the host.", nil},
	{HostMemoryUsedBytes, Gauge, SubjectHost, "bytes", "Physical memory in use on the host, excluding reclaimable caches.", nil},
	{HostMemoryUsageRatio, Gauge, SubjectHost, "ratio", "novacron_host_memory_used_bytes / novacron_host_memory_bytes.", nil},
	{HostVMs, Gauge, SubjectHost, "", "VMs running on the host.", nil},
	{HostVCPUsAllocated, Gauge, SubjectHost, "", "Sum of the vCPUs of the VMs running on the host (compare with novacron_host_cpus for overcommit).", nil},
	{HostMemoryAllocatedBytes, Gauge, SubjectHost, "bytes", "Sum of the configured memory of the VMs running on the host.", nil},

	{CollectorSeriesTotal, Counter, SubjectCollector, "", CollectorSeriesTotalHelp, []string{LabelCollector}},
	{CollectorSamplesTotal, Counter, SubjectCollector, "", CollectorSamplesTotalHelp, []string{LabelCollector}},
	{CollectorCycleDurationSeconds, Histogram, SubjectCollector, "seconds", CollectorCycleDurationSecondsHelp, []string{LabelCollector}},
	{CollectorErrorsTotal, Counter, SubjectCollector, "", CollectorErrorsTotalHelp, []string{LabelCollector, LabelStage}},
}

// Metrics returns a copy of the catalogue, VM metrics first, then host and
// collector metrics.
func Metrics() []Metric {
	out := slices.Clone(metrics)
	for i := range out {
		out[i].Labels = slices.Clone(out[i].Labels)
	}
	return out
}

// Lookup returns the catalogue entry for a metric name.
func Lookup(name string) (Metric, bool) {
	for _, m := range metrics {
		if m.Name == name {
			m.Labels = slices.Clone(m.Labels)
			return m, true
		}
	}
	return Metric{}, false
}
