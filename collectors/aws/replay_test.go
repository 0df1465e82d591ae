package aws

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/require"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/catalog"
	"github.com/novacron/novacron/internal/testserver"
)

// nabDir holds real CloudWatch series (NAB realAWSCloudwatch), beside the
// repository.
var nabDir = filepath.Join(testserver.RepoRoot(), "..", "shared", "datasets", "nab-dev", "realAWSCloudwatch")

func readNAB(t *testing.T, file string) []point {
	t.Helper()
	f, err := os.Open(filepath.Join(nabDir, file))
	if err != nil {
		t.Skipf("NAB data set not available: %v", err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"timestamp", "value"}, rows[0])
	var pts []point
	for _, r := range rows[1:] {
		ts, err := time.Parse(time.DateTime, r[0])
		require.NoError(t, err, file)
		v, err := strconv.ParseFloat(r[1], 64)
		require.NoError(t, err, file)
		pts = append(pts, point{t: ts, v: v})
	}
	return pts
}

// TestReplayRealCloudWatchSeries puts the real CloudWatch series into moto
// with PutMetricData, each under an EC2 metric of its own instance, and
// collects them back through the real SDK: every timestamp and value comes
// back unchanged (gauges exactly value/100 for percentages, counters
// exactly the running sum of the values).
//
// The series are 5-minutely but not aligned to 5-minute boundaries
// (14:29, 14:34, ...), so the collector reads them at a 1-minute period,
// where each bucket holds one datapoint and its start is the datapoint's
// own timestamp. The ELB request counts and the RDS CPU series stand in
// for EC2 metrics of the same kind (a per-period count, a percentage).
func TestReplayRealCloudWatchSeries(t *testing.T) {
	series := []struct {
		file, metric string
		unit         cwtypes.StandardUnit
		catalog      string
		extra        []novacron.Label
	}{
		{"ec2_cpu_utilization_77c1ca.csv", "CPUUtilization", cwtypes.StandardUnitPercent, catalog.VMCPUUsageRatio, nil},
		{"ec2_cpu_utilization_825cc2.csv", "CPUUtilization", cwtypes.StandardUnitPercent, catalog.VMCPUUsageRatio, nil},
		{"ec2_cpu_utilization_ac20cd.csv", "CPUUtilization", cwtypes.StandardUnitPercent, catalog.VMCPUUsageRatio, nil},
		{"ec2_cpu_utilization_c6585a.csv", "CPUUtilization", cwtypes.StandardUnitPercent, catalog.VMCPUUsageRatio, nil},
		{"rds_cpu_utilization_e47b3b.csv", "CPUUtilization", cwtypes.StandardUnitPercent, catalog.VMCPUUsageRatio, nil},
		{"ec2_disk_write_bytes_c0d644.csv", "DiskWriteBytes", cwtypes.StandardUnitBytes, catalog.VMDiskWriteBytesTotal,
			[]novacron.Label{{Name: catalog.LabelDevice, Value: DeviceInstanceStore}}},
		{"ec2_network_in_257a54.csv", "NetworkIn", cwtypes.StandardUnitBytes, catalog.VMNetworkReceiveBytesTotal, nil},
		{"iio_us-east-1_i-a2eb1cd9_NetworkIn.csv", "NetworkIn", cwtypes.StandardUnitBytes, catalog.VMNetworkReceiveBytesTotal, nil},
		{"elb_request_count_8c0756.csv", "NetworkPacketsIn", cwtypes.StandardUnitCount, catalog.VMNetworkReceivePacketsTotal, nil},
	}
	data := make([][]point, len(series))
	for i, s := range series {
		data[i] = readNAB(t, s.file)
	}
	e := newMotoEnv(t)
	t0 := time.Now()
	ids := e.runInstances(t, len(series), ec2types.InstanceTypeT3Micro, map[string]string{"replay": "nab"})
	windows := map[time.Time]bool{} // ends of the 2-hour windows holding data
	const window = 2 * time.Hour
	for i, s := range series {
		e.put(t, NamespaceEC2, s.metric, map[string]string{"InstanceId": ids[i]}, s.unit, data[i])
		for _, p := range data[i] {
			windows[p.t.Truncate(window).Add(window)] = true
		}
	}

	t.Logf("put: %s", time.Since(t0))
	t0 = time.Now()
	cfg := e.config()
	cfg.Period = time.Minute
	cfg.Delay = 0
	cfg.Lookback = window
	cfg.CloudWatchProtocol = ProtocolJSON
	cfg.Interval = time.Minute
	cfg.DiscoveryInterval = 100000 * time.Hour
	cfg.ListMetricsTTL = 100000 * time.Hour
	clk := &clock{}
	c, sink := newTestCollector(t, cfg, Settings{Now: clk.Now})
	ends := make([]time.Time, 0, len(windows))
	for end := range windows {
		ends = append(ends, end)
	}
	slicesSortTimes(ends)
	for _, end := range ends {
		clk.Set(end)
		c.Collect(context.Background())
	}

	t.Logf("collect %d: %s", len(ends), time.Since(t0))
	for i, s := range series {
		_, got := find(sink, s.catalog, ids[i], s.extra...)
		want := make([]novacron.Sample, len(data[i]))
		sum := 0.0
		for j, p := range data[i] {
			v := p.v
			if s.unit == cwtypes.StandardUnitPercent {
				v = p.v / 100
			} else {
				sum += p.v
				v = sum
			}
			want[j] = novacron.Sample{T: p.t.UnixMilli(), V: v}
		}
		require.Equal(t, want, got, s.file)
	}
}
