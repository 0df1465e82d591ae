package aws

import (
	"context"
	"slices"
	"testing"
	"time"

	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/sim/simtest"
	"github.com/novacron/novacron/internal/catalog"
)

// find returns the series of the sink's batches with the metric name and
// vm_id (and the extra label values), samples of every batch concatenated.
func find(sink *simtest.Sink, name, vmID string, extra ...novacron.Label) (novacron.Labels, []novacron.Sample) {
	var ls novacron.Labels
	var out []novacron.Sample
	for _, b := range sink.Batches() {
		for _, s := range b {
			if s.Labels.Get(novacron.MetricNameLabel) != name || s.Labels.Get(catalog.LabelVMID) != vmID {
				continue
			}
			ok := true
			for _, e := range extra {
				ok = ok && s.Labels.Get(e.Name) == e.Value
			}
			if ok {
				ls = s.Labels
				out = append(out, s.Samples...)
			}
		}
	}
	return ls, out
}

func TestShutdownWithoutStart(t *testing.T) {
	c, _ := newTestCollector(t, NewDefaultConfig(), Settings{})
	require.NoError(t, c.Shutdown(context.Background()))
	require.NoError(t, c.Shutdown(context.Background()))
	require.Error(t, c.Start(context.Background()), "no start after shutdown")
}

func TestNewRejectsBadInput(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.Regions = nil
	_, err := New(*cfg, Settings{Credentials: testCreds}, &simtest.Sink{})
	require.ErrorContains(t, err, "regions:")
	_, err = New(*NewDefaultConfig(), Settings{Credentials: testCreds}, nil)
	require.ErrorContains(t, err, "sink is nil")
}

func TestMetricsRegisterAndLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	newTestCollector(t, NewDefaultConfig(), Settings{Registerer: reg})
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
	n, err := testutil.GatherAndCount(reg, "novacron_aws_api_requests_total")
	require.NoError(t, err)
	require.Equal(t, len(apis)*3, n, "every API and result starts at 0")
	_, err = New(*NewDefaultConfig(), Settings{Registerer: reg, Credentials: testCreds}, &simtest.Sink{})
	require.Error(t, err, "a second aws collector on one registry clashes")
}

// TestCollectEndToEnd runs discovery and a metric cycle against moto
// through the real SDK: filtered discovery, tag labels, inventory, core
// EC2 metrics, listed EBS and agent metrics, unit conversions.
func TestCollectEndToEnd(t *testing.T) {
	e := newMotoEnv(t)
	web := e.runInstances(t, 2, ec2types.InstanceTypeM5Large, map[string]string{"team": "web", "Name": "web", "tenant": "acme", "cost-center": "cc1"})
	other := e.runInstances(t, 1, ec2types.InstanceTypeT3Micro, map[string]string{"team": "batch"})
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	// Two complete 5-minute periods inside the window [11:40, 11:55).
	p1, p2 := now.Add(-20*time.Minute), now.Add(-15*time.Minute)
	id := web[0]
	dims := map[string]string{"InstanceId": id}
	e.put(t, NamespaceEC2, "CPUUtilization", dims, cwtypes.StandardUnitPercent, []point{{p1, 50}, {p1.Add(time.Minute), 30}, {p2, 12.5}})
	e.put(t, NamespaceEC2, "NetworkIn", dims, cwtypes.StandardUnitBytes, []point{{p1, 1000}, {p1.Add(2 * time.Minute), 500}, {p2, 250}})
	e.put(t, NamespaceEC2, "EBSWriteBytes", dims, cwtypes.StandardUnitBytes, []point{{p1, 4096}, {p2, 8192}})
	e.put(t, NamespaceEC2, "CPUUtilization", map[string]string{"InstanceId": other[0]}, cwtypes.StandardUnitPercent, []point{{p1, 99}})
	e.put(t, "CWAgent", "mem_used", map[string]string{"InstanceId": id, "InstanceType": "m5.large"}, cwtypes.StandardUnitBytes, []point{{p2, 2 << 30}})
	e.put(t, "CWAgent", "disk_used", map[string]string{"InstanceId": id, "device": "nvme0n1p1", "path": "/", "fstype": "xfs"}, cwtypes.StandardUnitBytes, []point{{p2, 1 << 30}})
	e.put(t, "CWAgent", "disk_total", map[string]string{"InstanceId": id, "device": "nvme0n1p1", "path": "/", "fstype": "xfs"}, cwtypes.StandardUnitBytes, []point{{p2, 4 << 30}})

	cfg := e.config()
	cfg.Filters = map[string][]string{"tag:team": {"web"}}
	cfg.TagLabels = []string{"cost-center", "missing"}
	reg := prometheus.NewPedanticRegistry()
	clk := &clock{t: now}
	c, sink := newTestCollector(t, cfg, Settings{Now: clk.Now, Registerer: reg})
	c.Collect(context.Background())

	invs := sink.Inventories()
	require.Len(t, invs, 1)
	inv := invs[0]
	require.Equal(t, "aws/default/us-east-1", inv.Source)
	require.Len(t, inv.VMs, 2, "the filter leaves the batch instance out")
	require.Len(t, inv.Hosts, 1)
	require.Equal(t, inv.VMs[0].Zone, inv.Hosts[0].ID, "the zone stands in for the host")
	for _, vm := range inv.VMs {
		require.Contains(t, web, vm.ID)
		require.Equal(t, "aws", vm.Provider)
		require.Equal(t, "web", vm.Name)
		require.Equal(t, "acme", vm.Tenant)
		require.Equal(t, novacron.PowerRunning, vm.State)
		require.Equal(t, novacron.Size{VCPUs: 2, MemoryBytes: 8 << 30, InstanceType: "m5.large"}, vm.Size)
		require.Equal(t, map[string]string{"cost-center": "cc1"}, vm.Tags, "only allow-listed tags")
	}

	info, s := find(sink, catalog.VMInfo, id)
	require.Len(t, s, 1)
	require.Equal(t, "m5.large", info.Get(catalog.LabelInstanceType))
	require.Equal(t, "cc1", info.Get("tag_cost_center"))
	require.Equal(t, inv.VMs[0].Zone, info.Get(catalog.LabelHost))
	require.Equal(t, "us-east-1", info.Get(catalog.LabelRegion))
	require.Equal(t, "acme", info.Get(catalog.LabelTenant))
	require.Equal(t, now.UnixMilli(), s[0].T)
	_, s = find(sink, catalog.VMUp, id)
	require.Equal(t, []novacron.Sample{{T: now.UnixMilli(), V: 1}}, s)
	_, s = find(sink, catalog.VMPowerState, id, novacron.Label{Name: catalog.LabelState, Value: "running"})
	require.Equal(t, 1.0, s[0].V)

	cpuLabels, s := find(sink, catalog.VMCPUUsageRatio, id)
	require.Empty(t, cpuLabels.Get(catalog.LabelInstanceType), "instance_type is only on vm_info")
	require.Equal(t, []novacron.Sample{{T: p1.UnixMilli(), V: 0.4}, {T: p2.UnixMilli(), V: 0.125}}, s, "Average per period, percent to ratio")
	_, s = find(sink, catalog.VMCPUSecondsTotal, id)
	require.Equal(t, []novacron.Sample{{T: p1.UnixMilli(), V: 0.4 * 2 * 300}, {T: p2.UnixMilli(), V: 0.4*2*300 + 0.125*2*300}}, s)
	_, s = find(sink, catalog.VMNetworkReceiveBytesTotal, id)
	require.Equal(t, []novacron.Sample{{T: p1.UnixMilli(), V: 1500}, {T: p2.UnixMilli(), V: 1750}}, s, "Sum per period integrated into a counter")
	_, s = find(sink, catalog.VMDiskWriteBytesTotal, id, novacron.Label{Name: catalog.LabelDevice, Value: DeviceEBS})
	require.Equal(t, []novacron.Sample{{T: p1.UnixMilli(), V: 4096}, {T: p2.UnixMilli(), V: 4096 + 8192}}, s)
	_, s = find(sink, catalog.VMMemoryUsedBytes, id)
	require.Equal(t, []novacron.Sample{{T: p2.UnixMilli(), V: 2 << 30}}, s)
	_, s = find(sink, catalog.VMMemoryUsageRatio, id)
	require.Equal(t, []novacron.Sample{{T: p2.UnixMilli(), V: 0.25}}, s)
	_, s = find(sink, catalog.VMDiskUsageRatio, id, novacron.Label{Name: catalog.LabelDevice, Value: "nvme0n1p1"})
	require.Equal(t, []novacron.Sample{{T: p2.UnixMilli(), V: 0.25}}, s)
	_, s = find(sink, catalog.VMCPUUsageRatio, other[0])
	require.Empty(t, s, "filtered out")

	// One GetMetricData call carried every query.
	require.Equal(t, 1.0, testutil.ToFloat64(c.m.requests.WithLabelValues(APIGetMetricData, resultOK)))
	requested := testutil.ToFloat64(c.m.metricsRequested.WithLabelValues(APIGetMetricData))
	// 2 instances × 6 core metrics + EBSWriteBytes, mem_used, disk_used and disk_total of the first.
	require.Equal(t, 16.0, requested)
	require.InDelta(t, requested*0.01/1000, testutil.ToFloat64(c.m.cost.WithLabelValues(APIGetMetricData)), 1e-12)
	require.Equal(t, 2.0, testutil.ToFloat64(c.m.requests.WithLabelValues(APIListMetrics, resultOK)), "EC2 and agent namespaces")

	// The next cycle, one interval on, has no new complete period: no
	// GetMetricData call, and ListMetrics comes from the cache.
	clk.Set(now.Add(time.Minute))
	c.Collect(context.Background())
	require.Equal(t, 1.0, testutil.ToFloat64(c.m.requests.WithLabelValues(APIGetMetricData, resultOK)))
	require.Equal(t, 2.0, testutil.ToFloat64(c.m.requests.WithLabelValues(APIListMetrics, resultOK)))
	// Five minutes on, one new period is read and nothing is delivered twice.
	clk.Set(now.Add(5 * time.Minute))
	c.Collect(context.Background())
	require.Equal(t, 2.0, testutil.ToFloat64(c.m.requests.WithLabelValues(APIGetMetricData, resultOK)))
	_, s = find(sink, catalog.VMCPUUsageRatio, id)
	require.Len(t, s, 2, "no sample twice")
	require.Len(t, sink.Inventories(), 2, "discovery_interval passed: a second snapshot")
}

// TestStartConsumeShutdown runs the component lifecycle against moto.
func TestStartConsumeShutdown(t *testing.T) {
	e := newMotoEnv(t)
	e.runInstances(t, 1, ec2types.InstanceTypeT3Micro, nil)
	c, sink := newTestCollector(t, e.config(), Settings{})
	ctx := context.Background()
	require.NoError(t, c.Start(ctx))
	require.Error(t, c.Start(ctx), "start twice")
	require.Eventually(t, func() bool { return len(sink.Inventories()) > 0 && len(sink.Batches()) > 0 }, 30*time.Second, 20*time.Millisecond)
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, c.Shutdown(sctx))
	require.NoError(t, c.Shutdown(sctx))
	inv := sink.Inventories()[0]
	require.Len(t, inv.VMs, 1)
	require.True(t, slices.ContainsFunc(sink.Batches()[0], func(s novacron.Series) bool {
		return s.Labels.Get(novacron.MetricNameLabel) == catalog.VMInfo
	}))
}
